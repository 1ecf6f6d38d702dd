"""Sign-in, sign-out, who am I, TOTP enrolment and the caller's own API tokens."""

from __future__ import annotations

import unicodedata

from fastapi import APIRouter, HTTPException, Request, Response

from citywatch.governance.lockout import (
    check_not_locked,
    clear_failures,
    client_subject,
    record_failure,
    user_subject,
)
from citywatch.governance.passwords import verify_password
from citywatch.governance.roles import Role
from citywatch.governance.sessions import create_session, end_session
from citywatch.governance.tokens import create_token, list_tokens, revoke_token
from citywatch.governance.totp import enrol_totp, has_totp, verify_totp
from citywatch.governance.users import find_user
from citywatch.schemas import utcnow
from citywatch.service.deps import audit_event, client_of, identity_of, service_of
from citywatch.service.identity import COOKIE, session_cookie
from citywatch.service.models import Login, NewToken

router = APIRouter(prefix="/api")
_TOTP_ROLES = {Role.SUPERVISOR, Role.ADMIN}


@router.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/auth/login")
def login(body: Login, request: Request, response: Response) -> dict[str, object]:
    """Sign in with name, password (and TOTP code when needed); sets a fresh session cookie."""
    service = service_of(request)
    storage, settings = service.storage, service.settings
    client = client_of(request)
    name = unicodedata.normalize("NFKC", body.name)
    locked = check_not_locked(storage, settings, name, client)
    if locked is not None:
        audit_event(request, "sign_in", "refused", user=_shown(name), detail="locked out", client=client)
        raise HTTPException(429, f"too many failed sign-ins: locked until {locked.isoformat()}")
    user = find_user(storage, name)
    ok = verify_password(user.password_hash if user else "", body.password) and bool(user and user.active)
    problem = "name or password is wrong"
    if ok and user is not None:
        needs_totp = has_totp(storage, user.id) or (
            settings.auth.totp_required and bool(set(user.role_tuple()) & _TOTP_ROLES)
        )
        if needs_totp and not has_totp(storage, user.id):
            ok, problem = (
                False,
                "a TOTP second factor is required for this account; ask an admin to enrol one",
            )
        elif needs_totp and not (body.totp and verify_totp(storage, user.id, body.totp)):
            ok, problem = False, "a valid TOTP code is required (field 'totp'), each code works once"
    if not ok or user is None:
        record_failure(storage, user_subject(name))
        record_failure(storage, client_subject(client))
        audit_event(request, "sign_in", "refused", user=_shown(name), detail=problem, client=client)
        raise HTTPException(401, problem)
    clear_failures(storage, user_subject(user.id))
    old = session_cookie({"cookie": request.headers.get("cookie", "")})
    old_id = service.unsign(old) if old else None
    if old_id:
        end_session(storage, old_id)  # a new id at every sign-in: no session fixation
    session_id, session = create_session(storage, user.id, client)
    response.set_cookie(
        COOKIE,
        service.sign(session_id),
        max_age=int(settings.auth.session_max_s),
        path="/",
        httponly=True,
        samesite="strict",
        secure=service.tls,
    )
    role = ",".join(sorted(user.roles))
    audit_event(request, "sign_in", "ok", user=user.id, role=role, client=client, auth="session")
    return {"user": user.id, "roles": list(user.roles), "csrf_token": session.csrf}


def _shown(name: str) -> str:
    return "".join(ch for ch in name if ch.isprintable())[:64]


@router.post("/auth/logout")
def logout(request: Request, response: Response) -> dict[str, object]:
    identity = identity_of(request)
    if identity.session_id:
        end_session(service_of(request).storage, identity.session_id)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=service_of(request).tls)
    audit_event(request, "sign_out", "ok", user=identity.user, role=identity.role_text)
    return {"signed_out": identity.user}


@router.get("/me")
def me(request: Request) -> dict[str, object]:
    identity = identity_of(request)
    out: dict[str, object] = {
        "user": identity.user,
        "roles": [r.value for r in identity.roles],
        "auth": identity.context().method,
        "token_id": identity.token_id or None,
    }
    if identity.subject:
        out["oidc_subject"] = identity.subject
    return out


@router.post("/me/totp")
def enrol_own_totp(request: Request) -> dict[str, object]:
    """A new TOTP secret for the caller (shown once); sign-ins need a code from now on."""
    identity = identity_of(request)
    uri = enrol_totp(service_of(request).storage, identity.user)
    audit_event(request, "totp_enrol", "ok", user=identity.user, role=identity.role_text)
    return {"otpauth_uri": uri, "note": "shown once: add it to an authenticator app now"}


@router.post("/tokens")
def new_token(body: NewToken, request: Request) -> dict[str, object]:
    """An API token for the caller, with (a subset of) their roles; the token is shown once."""
    identity = identity_of(request)
    service = service_of(request)
    text, row = create_token(
        service.storage,
        identity.user,
        identity.roles,
        label=body.label,
        days=body.days,
        max_days=service.settings.auth.api_token_max_days,
        roles=body.roles,
    )
    audit_event(
        request,
        "token_create",
        "ok",
        user=identity.user,
        role=identity.role_text,
        token=row.id,
        label=row.label,
    )
    return {"token": text, **row.public(utcnow()), "note": "shown once: store it now"}


@router.get("/tokens")
def my_tokens(request: Request) -> list[dict[str, object]]:
    identity = identity_of(request)
    now = utcnow()
    return [t.public(now) for t in list_tokens(service_of(request).storage, identity.user)]


@router.delete("/tokens/{token_id}")
def revoke(token_id: str, request: Request) -> dict[str, object]:
    identity = identity_of(request)
    row = revoke_token(service_of(request).storage, token_id, identity.user)
    audit_event(request, "token_revoke", "ok", user=identity.user, role=identity.role_text, token=row.id)
    return row.public(utcnow())
