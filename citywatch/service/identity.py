"""Who is calling: a session cookie (signed, server-side session) or an API token."""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from itsdangerous import BadSignature, Signer

from citywatch.errors import ForbiddenError
from citywatch.governance.request_context import AuthMethod, RequestContext
from citywatch.governance.roles import Role
from citywatch.governance.sessions import cookie_key, load_session
from citywatch.governance.tokens import check_token
from citywatch.governance.users import find_user
from citywatch.service.oidc import OidcClient
from citywatch.settings import Settings
from citywatch.storage import Storage

COOKIE = "citywatch_session"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller, with the roles this request may use."""

    user: str
    roles: tuple[Role, ...]
    method: AuthMethod
    client: str
    token_id: str = ""
    session_id: str = ""  # only in memory, for sign-out
    csrf: str = ""
    subject: str = ""  # a session opened by OIDC sign-in: the provider's subject
    scoped: bool = False  # roles narrowed below the account's (an OIDC roles claim)

    @property
    def role_text(self) -> str:
        return ",".join(sorted(r.value for r in self.roles))

    def context(self) -> RequestContext:
        scope = self.roles if self.method == "token" or self.scoped else None
        method: AuthMethod = "oidc" if self.subject else self.method
        return RequestContext(
            self.user, method, self.client, token_id=self.token_id, subject=self.subject, roles=scope
        )


class Unauthenticated(Exception):
    """Credentials were presented but are not valid (-> 401 with this reason)."""


class Service:
    """What every request handler needs: settings, storage, the cookie signer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = Storage(settings)
        key = cookie_key(settings, self.storage)
        self.signer = Signer(key, salt="citywatch-session")
        self.state_signer = Signer(key, salt="citywatch-oidc-state")  # binds an OIDC sign-in to a browser
        self.tls = bool(settings.service.tls_cert)
        self.oidc = OidcClient(settings, self.storage) if settings.oidc.issuer else None

    def sign(self, session_id: str) -> str:
        return self.signer.sign(session_id).decode()

    def unsign(self, cookie: str) -> str | None:
        try:
            return self.signer.unsign(cookie).decode()
        except (BadSignature, UnicodeDecodeError):
            return None


def session_cookie(headers: dict[str, str]) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None


def authenticate(service: Service, headers: dict[str, str], client: str) -> Identity | None:
    """The caller, None when no credentials came; Unauthenticated when they are not valid."""
    auth = headers.get("authorization", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("Authorization must be 'Bearer <API token>'")
        try:
            token = check_token(service.storage, value.strip())
        except ForbiddenError as exc:
            raise Unauthenticated(str(exc)) from exc
        user = _active_user(service, token.user)
        roles = tuple(r for r in user.role_tuple() if r.value in token.roles)
        return Identity(token.user, roles, "token", client, token_id=token.id)
    cookie = session_cookie(headers)
    if cookie is None:
        return None
    session_id = service.unsign(cookie)
    if session_id is None:
        raise Unauthenticated("the session cookie is not valid; sign in again")
    session = load_session(service.storage, service.settings, session_id)
    if session is None:
        raise Unauthenticated("the session has ended; sign in again")
    user = _active_user(service, session.user)
    roles = user.role_tuple()
    if session.roles is not None:  # an OIDC roles claim narrowed this sign-in
        roles = tuple(r for r in roles if r.value in session.roles)
    return Identity(
        user.id,
        roles,
        "session",
        client,
        session_id=session_id,
        csrf=session.csrf,
        subject=session.subject,
        scoped=session.roles is not None,
    )


def _active_user(service: Service, name: str):  # noqa: ANN202 - UserRow
    user = find_user(service.storage, name)
    if user is None or not user.active:
        raise Unauthenticated(f"user {name!r} may no longer sign in")
    return user
