"""API tokens: made by a signed-in person for themselves, shown once, stored hashed.

A token reads ``cwt_<id>_<secret>``. The table keeps the id, the owner, the roles it
may use (a subset of the owner's roles, narrowed again to the owner's current roles
at every use), its expiry and its revocation; the secret only as a sha256 (it is 256
random bits, so a fast hash is enough). Every use is audited with the token id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

from citywatch.errors import BadInputError, ForbiddenError, NotFoundError
from citywatch.filters import eq
from citywatch.governance.roles import Role
from citywatch.schemas import TS, arrow_to_rows, rows_to_arrow, utcnow
from citywatch.storage import Storage
from citywatch.tables import has_table, insert_missing, open_table, upsert

if TYPE_CHECKING:
    import lancedb
    from lancedb.table import Table

TOKEN = re.compile(r"cwt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
TOKEN_ID = re.compile(r"[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: str
    user: str
    label: str
    roles: list[str]
    secret_sha256: str
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_by: str

    TABLE: ClassVar[str] = "api_tokens"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("user", pa.string()),
            pa.field("label", pa.string()),
            pa.field("roles", pa.list_(pa.string())),
            pa.field("secret_sha256", pa.string()),
            pa.field("created_at", TS),
            pa.field("expires_at", TS),
            pa.field("revoked_at", TS),
            pa.field("revoked_by", pa.string()),
        ]
    )

    def public(self, now: dt.datetime) -> dict[str, object]:
        state = "revoked" if self.revoked_at else ("expired" if now >= self.expires_at else "active")
        return {
            "id": self.id,
            "user": self.user,
            "label": self.label,
            "roles": list(self.roles),
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "state": state,
        }


def tokens_table(db: lancedb.DBConnection) -> Table:
    return open_table(db, TokenRow.TABLE, TokenRow.SCHEMA)


def create_token(
    storage: Storage,
    user: str,
    user_roles: tuple[Role, ...],
    *,
    label: str,
    days: float,
    max_days: int,
    roles: list[str] | None = None,
    now: dt.datetime | None = None,
) -> tuple[str, TokenRow]:
    """A new token for ``user``: (the token text, shown once; its row)."""
    now = now or utcnow()
    if not 0 < days <= max_days:
        raise BadInputError(f"token lifetime {days:g} days must be more than 0 and at most {max_days}")
    owned = [r.value for r in user_roles]
    wanted = owned if roles is None else roles
    for role in wanted:
        if role not in owned:
            raise ForbiddenError(f"a token may carry only your own roles ({', '.join(owned)}); not {role!r}")
    if not wanted:
        raise BadInputError("a token needs at least one role")
    secret = secrets.token_urlsafe(32)
    token_id = uuid.uuid4().hex[:16]
    row = TokenRow(
        id=token_id,
        user=user,
        label=label,
        roles=list(dict.fromkeys(wanted)),
        secret_sha256=hashlib.sha256(secret.encode()).hexdigest(),
        created_at=now,
        expires_at=now + dt.timedelta(days=days),
        revoked_at=None,
        revoked_by="",
    )
    insert_missing(tokens_table(storage.db), rows_to_arrow([row], TokenRow.SCHEMA))
    return f"cwt_{token_id}_{secret}", row


def get_token(storage: Storage, token_id: str) -> TokenRow:
    if TOKEN_ID.fullmatch(token_id or "") and has_table(storage.db, TokenRow.TABLE):
        found = tokens_table(storage.db).search().where(eq("id", token_id)).limit(1)
        rows = arrow_to_rows(found.to_arrow(), TokenRow)
        if rows:
            return rows[0]
    raise NotFoundError(f"API token {token_id!r} does not exist")


def check_token(storage: Storage, text: str, now: dt.datetime | None = None) -> TokenRow:
    """The live token ``text`` names, else ForbiddenError (the message never echoes the token)."""
    now = now or utcnow()
    match = TOKEN.fullmatch(text or "")
    if not match:
        raise ForbiddenError("the API token is malformed")
    try:
        row = get_token(storage, match.group(1))
    except NotFoundError as exc:
        raise ForbiddenError("the API token is not valid") from exc
    digest = hashlib.sha256(match.group(2).encode()).hexdigest()
    if not hmac.compare_digest(digest, row.secret_sha256):
        raise ForbiddenError("the API token is not valid")
    if row.revoked_at is not None:
        raise ForbiddenError(f"API token {row.id} was revoked")
    if now >= row.expires_at:
        raise ForbiddenError(f"API token {row.id} expired at {row.expires_at.isoformat()}")
    return row


def list_tokens(storage: Storage, user: str) -> list[TokenRow]:
    if not has_table(storage.db, TokenRow.TABLE):
        return []
    found = tokens_table(storage.db).search().where(eq("user", user)).limit(None)
    return sorted(arrow_to_rows(found.to_arrow(), TokenRow), key=lambda r: r.created_at)


def revoke_token(storage: Storage, token_id: str, by: str, now: dt.datetime | None = None) -> TokenRow:
    """Revoke one of ``by``'s own tokens."""
    row = get_token(storage, token_id)
    if row.user != by:
        raise NotFoundError(f"API token {token_id!r} does not exist")  # others' tokens are not disclosed
    if row.revoked_at is not None:
        return row
    updated = replace(row, revoked_at=now or utcnow(), revoked_by=by)
    upsert(tokens_table(storage.db), rows_to_arrow([updated], TokenRow.SCHEMA))
    return updated
