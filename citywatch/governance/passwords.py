"""Password hashing: argon2id (argon2-cffi's defaults, RFC 9106's second recommendation)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from citywatch.errors import BadInputError

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_HASHER = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4
_DUMMY = _HASHER.hash("citywatch-dummy-password")


def check_password_rules(password: str) -> str:
    """The password if acceptable, else BadInputError naming the rule (never the password)."""
    if not isinstance(password, str):
        raise BadInputError("password must be text")
    if len(password) < MIN_PASSWORD:
        raise BadInputError(f"password is {len(password)} characters; at least {MIN_PASSWORD} are needed")
    if len(password) > MAX_PASSWORD:
        raise BadInputError(f"password is longer than {MAX_PASSWORD} characters")
    if any(ord(ch) < 32 for ch in password):
        raise BadInputError("password contains control characters")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(check_password_rules(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """True when ``password`` matches; an empty hash (no password set) never matches.

    Costs one argon2 verification either way, so an unknown user or an account
    without a password answers as slowly as a wrong password.
    """
    if not stored_hash or not isinstance(password, str) or len(password) > MAX_PASSWORD:
        try:
            _HASHER.verify(_DUMMY, "not-the-password")
        except VerificationError:
            pass
        return False
    try:
        return bool(_HASHER.verify(stored_hash, password))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return bool(stored_hash) and _HASHER.check_needs_rehash(stored_hash)
