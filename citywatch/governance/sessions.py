"""Sign-in sessions and the cookie key, kept in storage so any service instance serves any session.

A session is one object ``auth/sessions/<sha256(id)>.json`` under the storage root:
the id itself (256 random bits) exists only in the person's cookie, so reading the
storage does not hand out sessions. A session ends when unused for
``session_idle_s``, ``session_max_s`` after sign-in, or at sign-out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import asdict, dataclass

from citywatch.errors import BadInputError, NotFoundError
from citywatch.schemas import utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage

SESSIONS_DIR = "auth/sessions"
COOKIE_KEY = "auth/cookie.key"
_TOUCH_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Session:
    user: str
    created_at: str  # ISO 8601 UTC
    last_seen: str
    csrf: str  # sent back in X-CSRF-Token by cookie-authenticated writes
    client: str
    subject: str = ""  # OIDC sign-in: the provider's subject ("" = password sign-in)
    roles: list[str] | None = None  # OIDC roles claim: the account's roles are narrowed to these

    def created(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.created_at)

    def seen(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.last_seen)


def _key(session_id: str) -> str:
    return f"{SESSIONS_DIR}/{hashlib.sha256(session_id.encode()).hexdigest()}.json"


def cookie_key(settings: Settings, storage: Storage) -> bytes:
    """The key that signs session cookies: the setting, else one random key per storage root."""
    if settings.auth.session_secret is not None:
        return settings.auth.session_secret.get_secret_value().encode()
    url = storage.url(COOKIE_KEY)
    storage.create_exclusive(url, secrets.token_hex(32).encode())  # no-op when it exists
    return storage.read_bytes(url).strip()


def create_session(
    storage: Storage,
    user: str,
    client: str,
    now: dt.datetime | None = None,
    *,
    subject: str = "",
    roles: list[str] | None = None,
) -> tuple[str, Session]:
    """A new session for ``user``: (its id, for the cookie only; the stored record)."""
    now = now or utcnow()
    session_id = secrets.token_urlsafe(32)
    stamp = now.isoformat()
    session = Session(
        user=user,
        created_at=stamp,
        last_seen=stamp,
        csrf=secrets.token_urlsafe(24),
        client=client,
        subject=subject,
        roles=roles,
    )
    storage.write_bytes(_key(session_id), json.dumps(asdict(session)).encode())
    return session_id, session


def load_session(
    storage: Storage, settings: Settings, session_id: str, now: dt.datetime | None = None
) -> Session | None:
    """The live session with this id, else None (an expired one is deleted)."""
    now = now or utcnow()
    try:
        data = json.loads(storage.read_bytes(storage.url(_key(session_id))))
        session = Session(**data)
        created, seen = session.created(), session.seen()
    except (NotFoundError, ValueError, TypeError):
        return None
    if now - created > dt.timedelta(seconds=settings.auth.session_max_s) or now - seen > dt.timedelta(
        seconds=settings.auth.session_idle_s
    ):
        end_session(storage, session_id)
        return None
    if (now - seen).total_seconds() >= min(_TOUCH_EVERY_S, settings.auth.session_idle_s / 10):
        touched = Session(**{**asdict(session), "last_seen": now.isoformat()})
        storage.write_bytes(_key(session_id), json.dumps(asdict(touched)).encode())
        return touched
    return session


def end_session(storage: Storage, session_id: str) -> None:
    if not session_id or len(session_id) > 200:
        raise BadInputError("session id is malformed")
    storage.delete(storage.url(_key(session_id)))


def end_user_sessions(storage: Storage, user: str) -> int:
    """End every session of ``user`` (a new password, a deactivation); returns how many ended.

    Sessions are stored by the hash of their id, so this reads each one to find its user.
    """
    try:
        found = storage.list_files(storage.url(SESSIONS_DIR))
    except NotFoundError:
        return 0
    ended = 0
    for info in found:
        try:
            owner = json.loads(storage.read_bytes(info.url)).get("user")
        except (NotFoundError, ValueError, AttributeError):
            continue  # ended meanwhile, or not a session record
        if owner == user:
            storage.delete(info.url)
            ended += 1
    return ended
