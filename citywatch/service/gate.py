"""The gate every request passes before any endpoint code or body parsing runs.

In order: find the endpoint and its row in :data:`citywatch.service.rules.RULES`
(none: 403, deny by default), refuse oversized bodies (413), wrong content types
(415) and JSON that is not UTF-8 (400), authenticate (401), check the row's roles
(403, audited) and, for cookie-authenticated writes, the CSRF header (403).
The caller's :class:`Identity` is left in ``request.state.identity``.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citywatch.governance.audit_log import AuditLog, Outcome
from citywatch.governance.roles import PERMISSIONS
from citywatch.service.identity import CSRF_HEADER, Identity, Service, Unauthenticated, authenticate
from citywatch.service.rules import Rule, rule_for

_SAFE = {"GET", "HEAD", "OPTIONS"}
_CONTENT_TYPES = {"json": "application/json", "multipart": "multipart/form-data"}


class Refusal(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


class Gate:
    """Pure ASGI middleware (it must see the request before FastAPI parses the body)."""

    def __init__(self, app: ASGIApp, service: Service, routes: Any) -> None:
        self.app = app
        self.service = service
        self.routes = routes  # the app's router.routes, matched as Starlette would

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route_path = self._route_path(scope)
        if route_path is None:  # no such endpoint (404) or method (405): the router says so
            await self.app(scope, receive, send)
            return
        try:
            rule = rule_for(scope["method"], route_path)
            if rule is None:
                raise Refusal(403, f"no access rule is declared for {scope['method']} {route_path}: refused")
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            self._check_type(rule, headers)
            body = await self._read_body(receive, headers)
            if rule.body == "json" and body:
                try:
                    body.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise Refusal(400, f"request body is not valid UTF-8 (byte {exc.start})") from exc
            client = scope["client"][0] if scope.get("client") else ""
            identity = await anyio.to_thread.run_sync(self._identify, rule, headers, client, scope)
        except Refusal as refusal:
            if is_page(scope):
                await _reply_page(send, refusal, scope)
            else:
                await _reply(send, refusal.status, str(refusal), refusal.headers)
            return
        scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, _replay(body, receive), send)

    def _route_path(self, scope: Scope) -> str | None:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return str(route.path)
        return None

    def _check_type(self, rule: Rule, headers: dict[str, str]) -> None:
        if rule.body == "none":
            return
        given = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        wanted = _CONTENT_TYPES[rule.body]
        if given != wanted:
            raise Refusal(415, f"content type {given or 'none'!r} is not accepted here: send {wanted}")

    async def _read_body(self, receive: Receive, headers: dict[str, str]) -> bytes:
        limit = self.service.settings.service.max_upload_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise Refusal(413, f"request body is {int(declared)} bytes; the limit is {limit}")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise Refusal(413, f"request body is over the limit of {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _identify(self, rule: Rule, headers: dict[str, str], client: str, scope: Scope) -> Identity | None:
        if rule.access == "public":
            return None
        try:
            identity = authenticate(self.service, headers, client)
        except Unauthenticated as exc:
            raise Refusal(401, str(exc), {"WWW-Authenticate": "Bearer"}) from exc
        if identity is None:
            raise Refusal(
                401,
                "sign in first (POST /api/auth/login) or send an API token",
                {"WWW-Authenticate": "Bearer"},
            )
        if rule.session_only and identity.method != "session":
            raise Refusal(403, "this needs a signed-in session, not an API token")
        if identity.method == "session" and scope["method"] not in _SAFE:
            if headers.get(CSRF_HEADER, "") != identity.csrf:
                raise Refusal(403, "missing or wrong X-CSRF-Token header (the one sign-in returned)")
        if rule.access == "action" and rule.action is not None:
            allowed = PERMISSIONS[rule.action]
            if not set(identity.roles) & allowed:
                needed = " or ".join(sorted(r.value for r in allowed))
                message = (
                    f"user {identity.user!r} (role {identity.role_text or 'none'}) may not "
                    f"{rule.action.value}: that needs the role {needed}"
                )
                self._audit(identity, rule.action.value, "refused", scope, message)
                raise Refusal(403, message)
        elif identity.method == "token":  # governed endpoints audit themselves, with the token id
            self._audit(identity, "token_use", "ok", scope, "")
        return identity

    def _audit(self, identity: Identity, action: str, outcome: Outcome, scope: Scope, detail: str) -> None:
        AuditLog(self.service.storage).record(
            user=identity.user,
            role=identity.role_text,
            action=action,
            outcome=outcome,
            params={
                "endpoint": f"{scope['method']} {scope['path'][:200]}",
                "via": identity.context().audit_params(),
            },
            detail=detail,
        )


async def _reply(send: Send, status: int, message: str, headers: dict[str, str]) -> None:
    body = json.dumps({"error": message}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def is_page(scope: Scope) -> bool:
    """A console page (HTML), not the JSON API."""
    return not str(scope.get("path", "")).startswith("/api/")


async def _reply_page(send: Send, refusal: Refusal, scope: Scope) -> None:
    from citywatch.service.pages.render import HEADERS, refusal_page

    fragment = any(k == b"x-console" and v == b"1" for k, v in scope.get("headers", []))
    path = str(scope.get("path", "/"))
    query = scope.get("query_string", b"").decode("latin-1")
    app = scope.get("app")
    service = getattr(getattr(app, "state", None), "service", None)
    settings = getattr(service, "settings", None)
    target = f"{path}?{query}" if query else path
    body = refusal_page(refusal.status, str(refusal), target, fragment, settings)
    raw = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in {**HEADERS, **refusal.headers}.items()]
    await send({"type": "http.response.start", "status": refusal.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body once, then the client's own messages (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
