"""OIDC sign-in (``/api/auth/oidc/login`` -> the provider -> ``/api/auth/oidc/callback``) and
the admin's links from an OIDC identity to a citywatch account.

Which account: only the one an admin linked to the identity (issuer, subject); the
provider's name and e-mail claims pick nothing. Which roles: the account's, narrowed to
those the ``oidc_roles_claim`` lists when that setting is on (the provider can take
roles away, never add them). With ``totp_required``, supervisors and admins must have
signed in at the provider with a second factor (``amr`` holds mfa, otp or hwk).
Every sign-in, accepted or refused, is audited with the subject and the reason.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from itsdangerous import BadSignature

from citywatch.governance.auth import Action, governed
from citywatch.governance.oidc_links import link_identity, linked_account, unlink_identity
from citywatch.governance.roles import Role
from citywatch.governance.sessions import create_session, end_session
from citywatch.governance.users import find_user, get_user
from citywatch.service.deps import acting, audit_event, client_of, service_of
from citywatch.service.identity import COOKIE, Service, session_cookie
from citywatch.service.models import OidcSubject
from citywatch.service.oidc import CALLBACK_PATH, STATE_COOKIE, OidcClient, OidcRefused
from citywatch.service.pages.render import render

router = APIRouter(prefix="/api")
_MFA = {"mfa", "otp", "hwk"}
_TOTP_ROLES = {Role.SUPERVISOR, Role.ADMIN}
_STATE_PATH = "/api/auth/oidc"


def _client(service: Service) -> OidcClient:
    if service.oidc is None:
        raise HTTPException(404, "OIDC sign-in is not configured on this service (oidc_issuer)")
    return service.oidc


@router.get("/auth/oidc/login")
def oidc_login(request: Request) -> RedirectResponse:
    """Start an OIDC sign-in: redirect to the provider (state, nonce and PKCE kept in storage)."""
    service = service_of(request)
    oidc = _client(service)
    redirect_uri = service.settings.oidc.redirect_url or str(request.base_url).rstrip("/") + CALLBACK_PATH
    try:
        url, state = oidc.start(redirect_uri)
    except OidcRefused as exc:
        raise HTTPException(503, str(exc)) from exc
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        STATE_COOKIE,
        service.state_signer.sign(state).decode(),
        max_age=600,
        path=_STATE_PATH,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
        secure=service.tls,
    )
    return response


@router.get("/auth/oidc/callback")
def oidc_callback(
    request: Request,
    state: Annotated[str, Query(max_length=200)] = "",
    code: Annotated[str, Query(max_length=4000)] = "",
    error: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Finish an OIDC sign-in: check everything, then open a session as the linked account."""
    service = service_of(request)
    oidc = _client(service)
    client = client_of(request)
    subject = ""
    try:
        if error:
            raise OidcRefused(f"the identity provider said: {error}")
        if not state or not code:
            raise OidcRefused("the provider's answer has no code or no state")
        if state != _browser_state(service, request):
            raise OidcRefused("the state does not match the sign-in this browser started")
        pending = oidc.claim_pending(state)
        verified = oidc.verify(oidc.exchange(code, pending), pending.nonce)
        subject = verified.subject
        user, roles = _account(service, verified.subject, verified.claims)
    except OidcRefused as exc:
        shown = f"oidc:{subject[:64]}" if subject else "oidc:?"
        audit_event(
            request,
            "sign_in",
            "refused",
            user=shown,
            detail=str(exc),
            client=client,
            auth="oidc",
            subject=subject,
        )
        refused: Response = JSONResponse({"error": str(exc)}, status_code=401)
        if _navigation(request):  # a person in a browser: the sign-in page, saying why
            shown_msg = _sentence(str(exc))
            refused = render(request, "signin.html", 401, message=shown_msg, error=True, next="/cases")
        refused.delete_cookie(STATE_COOKIE, path=_STATE_PATH)
        return refused
    old = session_cookie({"cookie": request.headers.get("cookie", "")})
    old_id = service.unsign(old) if old else None
    if old_id:
        end_session(service.storage, old_id)  # a new id at every sign-in: no session fixation
    narrowed = roles if service.settings.oidc.roles_claim else None
    session_id, session = create_session(service.storage, user, client, subject=subject, roles=narrowed)
    role = ",".join(sorted(roles))
    audit_event(
        request,
        "sign_in",
        "ok",
        user=user,
        role=role,
        client=client,
        auth="oidc",
        subject=subject,
        issuer=oidc.issuer,
    )
    response: Response = JSONResponse(
        {"user": user, "roles": roles, "auth": "oidc", "csrf_token": session.csrf}
    )
    if _navigation(request):  # a person in a browser lands on the console, not on JSON
        response = RedirectResponse("/cases", status_code=303)
    response.delete_cookie(STATE_COOKIE, path=_STATE_PATH)
    response.set_cookie(
        COOKIE,
        service.sign(session_id),
        max_age=int(service.settings.auth.session_max_s),
        path="/",
        httponly=True,
        samesite="strict",
        secure=service.tls,
    )
    return response


def _navigation(request: Request) -> bool:
    """A browser's page load (it asks for HTML), not an API client reading the JSON answer."""
    return "text/html" in request.headers.get("accept", "")


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def _browser_state(service: Service, request: Request) -> str | None:
    signed = request.cookies.get(STATE_COOKIE)
    if not signed:
        return None
    try:
        return service.state_signer.unsign(signed).decode()
    except (BadSignature, UnicodeDecodeError):
        return None


def _account(service: Service, subject: str, claims: dict[str, object]) -> tuple[str, list[str]]:
    """The linked, active account of ``subject`` and the roles this sign-in gets."""
    oidc = _client(service)
    link = linked_account(service.storage, oidc.issuer, subject)
    if link is None:
        raise OidcRefused(
            f"no citywatch account is linked to the OIDC subject {subject[:100]!r}; an admin links it "
            "with `citywatch users link-oidc NAME SUBJECT`"
        )
    user = find_user(service.storage, link.user)
    if user is None or not user.active:
        raise OidcRefused(f"the linked account {link.user!r} may no longer sign in")
    roles = list(user.roles)
    claim = service.settings.oidc.roles_claim
    if claim:
        listed = claims.get(claim)
        if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
            raise OidcRefused(f"the ID token has no list of roles in the claim {claim!r} (oidc_roles_claim)")
        roles = [r for r in roles if r in listed]
        if not roles:
            raise OidcRefused(
                f"the claim {claim!r} lists none of the account's roles ({', '.join(user.roles)})"
            )
    if service.settings.auth.totp_required and {Role(r) for r in roles} & _TOTP_ROLES:
        amr = claims.get("amr")
        if not isinstance(amr, list) or not _MFA & {str(a) for a in amr}:
            raise OidcRefused(
                "supervisors and admins must sign in at the provider with a second factor (amr)"
            )
    return user.id, roles


@router.post("/users/{name}/oidc")
def link(name: str, body: OidcSubject, request: Request) -> dict[str, object]:
    """Link an OIDC subject (of the configured issuer) to the account ``name`` (admin)."""
    issuer = _client(service_of(request)).issuer
    with acting(request) as (settings, storage):
        params = {"command": "users link-oidc", "name": name[:64], "subject": body.subject}
        with governed(settings, storage, Action.USERS_MANAGE, None, None, params) as run:
            user = get_user(storage, name)
            row = link_identity(storage, issuer, body.subject, user.id, run.actor.user)
            run.result_count = 1
    return {"user": row.user, "issuer": row.issuer, "subject": row.subject, "linked_by": row.linked_by}


@router.post("/users/{name}/oidc/unlink")
def unlink(name: str, body: OidcSubject, request: Request) -> dict[str, object]:
    issuer = _client(service_of(request)).issuer
    with acting(request) as (settings, storage):
        params = {"command": "users link-oidc --unlink", "name": name[:64], "subject": body.subject}
        with governed(settings, storage, Action.USERS_MANAGE, None, None, params) as run:
            user = get_user(storage, name)
            existing = linked_account(storage, issuer, body.subject)
            if existing is None or existing.user != user.id:
                raise HTTPException(404, f"OIDC subject {body.subject!r} is not linked to {user.id!r}")
            unlink_identity(storage, issuer, body.subject)
            run.result_count = 1
    return {"user": user.id, "subject": body.subject, "unlinked": True}
