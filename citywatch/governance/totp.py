"""TOTP second factor (RFC 6238, pyotp): secrets and used codes kept in storage.

The secret is one object ``auth/totp/<sha256(name)>`` under the storage root (never a
table or a log); each accepted time step is claimed with a create-exclusive object,
so a code works once, on any instance.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pyotp

from citywatch.errors import NotFoundError
from citywatch.schemas import utcnow
from citywatch.storage import Storage

TOTP_DIR = "auth/totp"
USED_DIR = "auth/totp-used"
ISSUER = "citywatch"


def _secret_key(name: str) -> str:
    return f"{TOTP_DIR}/{hashlib.sha256(name.encode()).hexdigest()}"


def has_totp(storage: Storage, name: str) -> bool:
    return storage.exists(storage.url(_secret_key(name)))


def enrol_totp(storage: Storage, name: str) -> str:
    """A new secret for ``name`` (replacing any old one); returns its otpauth:// URI, shown once."""
    secret = pyotp.random_base32()
    storage.write_bytes(_secret_key(name), secret.encode())
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)


def verify_totp(storage: Storage, name: str, code: str, now: dt.datetime | None = None) -> bool:
    """True when ``code`` is the current (or adjacent) code and was not used before."""
    now = now or utcnow()
    if not isinstance(code, str) or not code.isdigit() or len(code) != 6:
        return False
    try:
        secret = storage.read_bytes(storage.url(_secret_key(name))).decode().strip()
    except NotFoundError:
        return False
    totp = pyotp.TOTP(secret)
    for offset in (0, -1, 1):
        moment = now + dt.timedelta(seconds=offset * totp.interval)
        if hmac.compare_digest(totp.at(moment), code):
            step = totp.timecode(moment)
            used = storage.url(f"{USED_DIR}/{hashlib.sha256(name.encode()).hexdigest()}/{step}")
            return storage.create_exclusive(used, b"")
    return False
