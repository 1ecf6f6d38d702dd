"""Roles, guarded actions and which roles may perform each (docs/governance.md's table)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Role(StrEnum):
    ANALYST = "analyst"  # aggregates and notebooks; never a face or plate search
    INVESTIGATOR = "investigator"  # searches, exports, requests watchlist entries
    SUPERVISOR = "supervisor"  # investigator + approves watchlist entries, reviews alerts
    ADMIN = "admin"  # users, settings, indexing, retention, audit; no searches


class Action(StrEnum):
    """Every guarded action (the audit log's ``action`` column)."""

    ANALYTICS_READ = "analytics_read"
    SEARCH_FACE = "search_face"
    SEARCH_PLATE = "search_plate"
    SEARCH_COAPPEAR = "search_coappear"  # who was with the subject
    SEARCH_RECURRING = "search_recurring"  # unknown faces that keep coming back
    RECURRING_APPROVE = "recurring_approve"  # a recurring search over the default limits
    EXPORT = "export"
    WATCHLIST_READ = "watchlist_read"
    WATCHLIST_REQUEST = "watchlist_request"
    WATCHLIST_APPROVE = "watchlist_approve"
    WATCHLIST_REMOVE = "watchlist_remove"
    ALERT_READ = "alert_read"
    ALERT_REVIEW = "alert_review"
    CASE_HOLD = "case_hold"
    INDEX_RUN = "index_run"
    SWEEP_RUN = "sweep_run"
    RETENTION_RUN = "retention_run"
    CALIBRATE = "calibrate"
    USERS_MANAGE = "users_manage"
    AUDIT_READ = "audit_read"
    AUDIT_RESTORE = "audit_restore"
    AUDIT_CHECKPOINT = "audit_checkpoint"
    KEYS_MANAGE = "keys_manage"
    WEBHOOKS_MANAGE = "webhooks_manage"
    STATUS_READ = "status_read"  # pipeline status and metrics: counts, lags, no people
    CASE_OPEN = "case_open"
    EVIDENCE_KEEP = "evidence_keep"
    MEDIA_VIEW = "media_view"


_A, _I, _S, _D = Role.ANALYST, Role.INVESTIGATOR, Role.SUPERVISOR, Role.ADMIN

PERMISSIONS: Mapping[Action, frozenset[Role]] = {
    Action.ANALYTICS_READ: frozenset({_A, _I, _S}),
    Action.SEARCH_FACE: frozenset({_I, _S}),
    Action.SEARCH_PLATE: frozenset({_I, _S}),
    Action.SEARCH_COAPPEAR: frozenset({_I, _S}),
    Action.SEARCH_RECURRING: frozenset({_I, _S}),
    Action.RECURRING_APPROVE: frozenset({_S}),
    Action.EXPORT: frozenset({_I, _S}),
    Action.WATCHLIST_READ: frozenset({_I, _S}),
    Action.WATCHLIST_REQUEST: frozenset({_I, _S}),
    Action.WATCHLIST_APPROVE: frozenset({_S}),
    Action.WATCHLIST_REMOVE: frozenset({_S, _D}),
    Action.ALERT_READ: frozenset({_I, _S}),
    Action.ALERT_REVIEW: frozenset({_S}),
    Action.CASE_HOLD: frozenset({_S}),
    Action.INDEX_RUN: frozenset({_D}),
    Action.SWEEP_RUN: frozenset({_D}),
    Action.RETENTION_RUN: frozenset({_D}),
    Action.CALIBRATE: frozenset({_D}),
    Action.USERS_MANAGE: frozenset({_D}),
    Action.AUDIT_READ: frozenset({_S, _D}),
    Action.AUDIT_RESTORE: frozenset({_D}),
    Action.AUDIT_CHECKPOINT: frozenset({_D}),
    Action.KEYS_MANAGE: frozenset({_D}),
    Action.WEBHOOKS_MANAGE: frozenset({_D}),
    Action.STATUS_READ: frozenset({_D}),
    Action.CASE_OPEN: frozenset({_I, _S}),
    Action.EVIDENCE_KEEP: frozenset({_I, _S}),
    Action.MEDIA_VIEW: frozenset({_I, _S}),
}
"""Which roles may perform each action (docs/governance.md shows it as a table)."""

CASE_BOUND: frozenset[Action] = frozenset(
    {
        Action.SEARCH_FACE,
        Action.SEARCH_PLATE,
        Action.SEARCH_COAPPEAR,
        Action.SEARCH_RECURRING,
        Action.RECURRING_APPROVE,
        Action.EXPORT,
        Action.WATCHLIST_REQUEST,
        Action.WATCHLIST_APPROVE,
        Action.CASE_HOLD,
        Action.CASE_OPEN,
        Action.EVIDENCE_KEEP,
        Action.MEDIA_VIEW,
    }
)
"""Actions that need a case id and a written justification."""
