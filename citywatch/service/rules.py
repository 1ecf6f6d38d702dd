"""The one table of who may call which endpoint. An endpoint without a row is refused.

Each row names the endpoint (method and path template), who may call it (anyone,
anyone signed in, or the roles allowed a governed :class:`Action`), and what body it
takes. The gate (:mod:`citywatch.service.gate`) enforces the row before the endpoint
runs; the governed code checks the action again and audits it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from citywatch.governance.roles import Action

Access = Literal["public", "signed_in", "action"]
Body = Literal["none", "json", "multipart"]


@dataclass(frozen=True, slots=True)
class Rule:
    access: Access
    action: Action | None = None
    body: Body = "none"
    session_only: bool = False  # not with an API token (a token cannot mint tokens)


def _act(action: Action, body: Body = "none") -> Rule:
    return Rule("action", action, body)


PUBLIC = Rule("public")
SIGNED_IN = Rule("signed_in")

RULES: Mapping[tuple[str, str], Rule] = {
    ("GET", "/api/health"): PUBLIC,
    ("GET", "/api/openapi.json"): PUBLIC,
    ("GET", "/api/docs"): PUBLIC,
    ("POST", "/api/auth/login"): Rule("public", body="json"),
    ("POST", "/api/auth/logout"): SIGNED_IN,
    ("GET", "/api/auth/oidc/login"): PUBLIC,
    ("GET", "/api/auth/oidc/callback"): PUBLIC,
    ("GET", "/api/me"): SIGNED_IN,
    ("POST", "/api/me/totp"): Rule("signed_in", session_only=True),
    ("GET", "/api/tokens"): SIGNED_IN,
    ("POST", "/api/tokens"): Rule("signed_in", body="json", session_only=True),
    ("DELETE", "/api/tokens/{token_id}"): SIGNED_IN,
    ("POST", "/api/search/face"): _act(Action.SEARCH_FACE, "multipart"),
    ("POST", "/api/search/plate"): _act(Action.SEARCH_PLATE, "json"),
    ("POST", "/api/search/companions"): _act(Action.SEARCH_COAPPEAR, "json"),
    ("POST", "/api/search/recurring"): _act(Action.SEARCH_RECURRING, "json"),
    ("POST", "/api/search/recurring/{request_id}/approve"): _act(Action.RECURRING_APPROVE, "json"),
    ("POST", "/api/search/group"): _act(Action.SEARCH_FACE, "json"),
    ("POST", "/api/watchlist/group"): _act(Action.WATCHLIST_REQUEST, "json"),
    ("GET", "/api/watchlist"): _act(Action.WATCHLIST_READ),
    ("GET", "/api/watchlist/{entry_id}"): _act(Action.WATCHLIST_READ),
    ("POST", "/api/watchlist/plate"): _act(Action.WATCHLIST_REQUEST, "json"),
    ("POST", "/api/watchlist/face"): _act(Action.WATCHLIST_REQUEST, "multipart"),
    ("POST", "/api/watchlist/{entry_id}/approve"): _act(Action.WATCHLIST_APPROVE, "json"),
    ("POST", "/api/watchlist/{entry_id}/remove"): _act(Action.WATCHLIST_REMOVE, "json"),
    ("GET", "/api/alerts"): _act(Action.ALERT_READ),
    ("GET", "/api/alerts/{alert_id}"): _act(Action.ALERT_READ),
    ("POST", "/api/alerts/{alert_id}/confirm"): _act(Action.ALERT_REVIEW, "json"),
    ("POST", "/api/alerts/{alert_id}/dismiss"): _act(Action.ALERT_REVIEW, "json"),
    ("GET", "/api/audit"): _act(Action.AUDIT_READ),
    ("POST", "/api/audit/verify"): _act(Action.AUDIT_READ, "json"),
    ("POST", "/api/exports"): _act(Action.EXPORT, "json"),
    ("POST", "/api/exports/verify"): _act(Action.EXPORT, "json"),
    ("POST", "/api/holds"): _act(Action.CASE_HOLD, "json"),
    ("GET", "/api/users"): _act(Action.USERS_MANAGE),
    ("POST", "/api/users"): _act(Action.USERS_MANAGE, "json"),
    ("POST", "/api/users/{name}/password"): _act(Action.USERS_MANAGE, "json"),
    ("POST", "/api/users/{name}/deactivate"): _act(Action.USERS_MANAGE),
    ("POST", "/api/users/{name}/totp"): _act(Action.USERS_MANAGE),
    ("POST", "/api/users/{name}/oidc"): _act(Action.USERS_MANAGE, "json"),
    ("POST", "/api/users/{name}/oidc/unlink"): _act(Action.USERS_MANAGE, "json"),
    ("GET", "/api/status"): _act(Action.STATUS_READ),
    ("GET", "/metrics"): _act(Action.STATUS_READ),
    # the console's pages (citywatch/service/pages/): the same actions as the API
    ("GET", "/"): PUBLIC,
    ("GET", "/static/{name}"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): Rule("public", body="multipart"),
    ("POST", "/logout"): SIGNED_IN,
    ("GET", "/cases"): _act(Action.CASE_OPEN),
    ("POST", "/cases"): _act(Action.CASE_OPEN, "multipart"),
    ("GET", "/case"): _act(Action.CASE_OPEN),
    ("GET", "/search/face"): _act(Action.SEARCH_FACE),
    ("POST", "/search/face"): _act(Action.SEARCH_FACE, "multipart"),
    ("GET", "/search/plate"): _act(Action.SEARCH_PLATE),
    ("POST", "/search/plate"): _act(Action.SEARCH_PLATE, "multipart"),
    ("GET", "/media/thumb"): _act(Action.MEDIA_VIEW),
    ("GET", "/play"): _act(Action.MEDIA_VIEW),
    ("GET", "/media/clip"): _act(Action.MEDIA_VIEW),
    ("POST", "/exports/request"): _act(Action.EXPORT, "multipart"),
    ("POST", "/exports/range"): _act(Action.EXPORT, "multipart"),
    ("GET", "/exports/file"): _act(Action.EXPORT),
    ("GET", "/audit"): _act(Action.AUDIT_READ),
    ("POST", "/audit/verify"): _act(Action.AUDIT_READ),
    ("GET", "/watchlist"): _act(Action.WATCHLIST_READ),
    ("POST", "/watchlist/request"): _act(Action.WATCHLIST_REQUEST, "multipart"),
    ("POST", "/watchlist/approve"): _act(Action.WATCHLIST_APPROVE, "multipart"),
    ("GET", "/alerts"): _act(Action.ALERT_READ),
    ("GET", "/alerts/queue"): _act(Action.ALERT_READ),
    ("POST", "/alerts/review"): _act(Action.ALERT_REVIEW, "multipart"),
    ("GET", "/media/alert"): _act(Action.ALERT_READ),
    ("GET", "/media/enrolled"): _act(Action.ALERT_READ),
    ("POST", "/evidence"): _act(Action.EVIDENCE_KEEP, "multipart"),
    # the case's "Who was with them" panel (pages/routes_coappear.py)
    ("POST", "/case/companions"): _act(Action.SEARCH_COAPPEAR, "multipart"),
    ("POST", "/case/recurring"): _act(Action.SEARCH_RECURRING, "multipart"),
    ("POST", "/case/recurring/approve"): _act(Action.RECURRING_APPROVE, "multipart"),
    ("POST", "/case/group/search"): _act(Action.SEARCH_FACE, "multipart"),
    ("POST", "/case/group/watchlist"): _act(Action.WATCHLIST_REQUEST, "multipart"),
}


def rule_for(method: str, path: str) -> Rule | None:
    return RULES.get((method.upper(), path))
