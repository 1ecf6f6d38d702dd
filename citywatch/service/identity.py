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

    @property
    def role_text(self) -> str:
        return ",".join(sorted(r.value for r in self.roles))

    def context(self) -> RequestContext:
        scope = self.roles if self.method == "token" else None
        return RequestContext(self.user, self.method, self.client, token_id=self.token_id, roles=scope)


class Unauthenticated(Exception):
    """Credentials were presented but are not valid (-> 401 with this reason)."""


class Service:
    """What every request handler needs: settings, storage, the cookie signer."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = Storage(settings)
        self.signer = Signer(cookie_key(settings, self.storage), salt="citywatch-session")
        self.tls = bool(settings.service.tls_cert)

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
    return Identity(user.id, user.role_tuple(), "session", client, session_id=session_id, csrf=session.csrf)


def _active_user(service: Service, name: str):  # noqa: ANN202 - UserRow
    user = find_user(service.storage, name)
    if user is None or not user.active:
        raise Unauthenticated(f"user {name!r} may no longer sign in")
    return user
