"""Which citywatch account an OpenID Connect identity signs in as: links made by an admin.

An OIDC sign-in is accepted only for an identity (issuer, subject) that an admin has
linked to an existing account (``citywatch users link-oidc NAME SUBJECT``); the
provider's name or e-mail claims never pick an account, and the provider grants no
roles (the account's roles are citywatch's). One identity links to one account, so one
person cannot hold two names through the provider (four eyes). A link is one object
``auth/oidc_links/<sha256(issuer, subject)>.json`` under the storage root, so every
service instance sees it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass

from citywatch.errors import BadInputError, NotFoundError
from citywatch.schemas import utcnow
from citywatch.storage import Storage

LINKS_DIR = "auth/oidc_links"
SUBJECT = re.compile(r"[\x21-\x7e]{1,255}")  # OIDC: at most 255 ASCII characters; printable here


@dataclass(frozen=True, slots=True)
class OidcLink:
    issuer: str
    subject: str
    user: str
    linked_by: str
    linked_at: str  # ISO 8601 UTC


def check_subject(subject: str) -> str:
    if not isinstance(subject, str) or not SUBJECT.fullmatch(subject):
        shown = subject[:80] if isinstance(subject, str) else type(subject).__name__
        raise BadInputError(f"OIDC subject {shown!r} is invalid: 1-255 printable ASCII characters, no spaces")
    return subject


def _key(issuer: str, subject: str) -> str:
    digest = hashlib.sha256(json.dumps([issuer, subject]).encode()).hexdigest()
    return f"{LINKS_DIR}/{digest}.json"


def linked_account(storage: Storage, issuer: str, subject: str) -> OidcLink | None:
    """The link of this identity, or None (no account signs in as it)."""
    try:
        data = json.loads(storage.read_bytes(storage.url(_key(issuer, subject))))
        link = OidcLink(**data)
    except (NotFoundError, ValueError, TypeError):
        return None
    return link if (link.issuer, link.subject) == (issuer, subject) else None


def link_identity(storage: Storage, issuer: str, subject: str, user: str, linked_by: str) -> OidcLink:
    """Link (issuer, subject) to the account ``user``; refused when it is linked to another one."""
    check_subject(subject)
    link = OidcLink(issuer, subject, user, linked_by, utcnow().isoformat())
    if storage.create_exclusive(storage.url(_key(issuer, subject)), json.dumps(asdict(link)).encode()):
        return link
    existing = linked_account(storage, issuer, subject)
    if existing is not None and existing.user == user:
        return existing
    other = existing.user if existing else "another account"
    raise BadInputError(
        f"OIDC subject {subject!r} is already linked to {other!r}: one identity signs in as one "
        "account (unlink it first)"
    )


def unlink_identity(storage: Storage, issuer: str, subject: str) -> OidcLink:
    check_subject(subject)
    link = linked_account(storage, issuer, subject)
    if link is None:
        raise NotFoundError(f"OIDC subject {subject!r} of {issuer} is linked to no account")
    storage.delete(storage.url(_key(issuer, subject)))
    return link
