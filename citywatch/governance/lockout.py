"""Failed sign-ins: counted in storage (one object per failure), so every instance sees them.

An account (or a client address, with four times the allowance) with
``login_max_failures`` failures inside ``login_window_s`` is locked for
``login_lockout_s`` after the last one. While locked, sign-ins are refused without
checking the password; a successful sign-in clears the account's failures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid

from citywatch.errors import NotFoundError
from citywatch.schemas import utcnow
from citywatch.settings import Settings
from citywatch.storage import Storage

FAILURES_DIR = "auth/failures"
CLIENT_FACTOR = 4
_NAME = re.compile(r"(\d{1,20})-[0-9a-f]{8}")


def _folder(subject: str) -> str:
    return f"{FAILURES_DIR}/{hashlib.sha256(subject.encode()).hexdigest()}"


def user_subject(name: str) -> str:
    return f"user:{name}"


def client_subject(address: str) -> str:
    return f"client:{address}"


def _failures(storage: Storage, subject: str) -> list[tuple[int, str]]:
    try:
        found = storage.list_files(storage.url(_folder(subject)))
    except NotFoundError:
        return []
    out = []
    for info in found:
        match = _NAME.fullmatch(info.key)
        if match:
            out.append((int(match.group(1)), info.url))
    return sorted(out)


def locked_until(
    storage: Storage, settings: Settings, subject: str, limit: int, now: dt.datetime | None = None
) -> dt.datetime | None:
    """When ``subject``'s lock ends, or None when it is not locked."""
    now = now or utcnow()
    stamps = [ns for ns, _ in _failures(storage, subject)]
    if len(stamps) < limit:
        return None
    newest, nth = stamps[-1], stamps[-limit]
    if (newest - nth) / 1e9 > settings.auth.login_window_s:
        return None
    until = dt.datetime.fromtimestamp(newest / 1e9, dt.UTC) + dt.timedelta(
        seconds=settings.auth.login_lockout_s
    )
    return until if until > now else None


def record_failure(storage: Storage, subject: str, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    ns = int(now.timestamp() * 1e9)
    storage.write_bytes(f"{_folder(subject)}/{ns:020d}-{uuid.uuid4().hex[:8]}", b"")


def clear_failures(storage: Storage, subject: str) -> None:
    for _, url in _failures(storage, subject):
        storage.delete(url)


def check_not_locked(storage: Storage, settings: Settings, name: str, client: str) -> dt.datetime | None:
    """The end of the lock on this account or this client address, whichever is later; None if free."""
    locks = [
        locked_until(storage, settings, user_subject(name), settings.auth.login_max_failures),
        locked_until(
            storage, settings, client_subject(client), settings.auth.login_max_failures * CLIENT_FACTOR
        ),
    ]
    found = [t for t in locks if t is not None]
    return max(found) if found else None
