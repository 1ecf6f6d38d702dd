"""The users table: who may sign in, with which roles (argon2id password hashes).

Names are compared exactly after Unicode NFKC normalisation (``demo-ſupervisor`` is
``demo-supervisor``; ``Demo-Supervisor`` is nobody). A new name is refused when it
differs from an existing one only by case or by confusable characters (``0``/``o``,
``1``/``l``/``I``, ``rn``/``m``, ...), so no two accounts can pass for one another.
The legacy users YAML (:mod:`citywatch.governance.users_file`) is an import format.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, ClassVar

import pyarrow as pa

from citywatch.errors import BadInputError, NotFoundError
from citywatch.filters import eq
from citywatch.governance.passwords import hash_password
from citywatch.governance.roles import Role
from citywatch.governance.sessions import end_user_sessions
from citywatch.governance.users_file import USER_NAME, UsersFile
from citywatch.schemas import TS, arrow_to_rows, rows_to_arrow, utcnow
from citywatch.storage import Storage
from citywatch.tables import has_table, insert_missing, open_table, upsert

if TYPE_CHECKING:
    import lancedb
    from lancedb.table import Table

# confusable sequences, applied after casefolding (longest first)
_CONFUSABLES: tuple[tuple[str, str], ...] = (
    ("rn", "m"),
    ("vv", "w"),
    ("cl", "d"),
    ("0", "o"),
    ("1", "l"),
    ("i", "l"),
    ("|", "l"),
    ("5", "s"),
    ("_", "-"),
    (".", "-"),
)


@dataclass(frozen=True, slots=True)
class UserRow:
    """One account. ``id`` is the canonical (NFKC) name."""

    id: str
    roles: list[str]
    active: bool
    password_hash: str  # argon2id; "" = no password set (imported, cannot sign in yet)
    os_account: str  # direct mode: the OS login this user is bound to ("" = none)
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime

    TABLE: ClassVar[str] = "users"
    SCHEMA: ClassVar[pa.Schema] = pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("roles", pa.list_(pa.string())),
            pa.field("active", pa.bool_()),
            pa.field("password_hash", pa.string()),
            pa.field("os_account", pa.string()),
            pa.field("created_by", pa.string()),
            pa.field("created_at", TS),
            pa.field("updated_at", TS),
        ]
    )

    @property
    def name(self) -> str:
        return self.id

    def role_tuple(self) -> tuple[Role, ...]:
        return tuple(Role(r) for r in self.roles)

    def public(self) -> dict[str, object]:
        """What the API shows (never the hash)."""
        return {
            "name": self.id,
            "roles": list(self.roles),
            "active": self.active,
            "has_password": bool(self.password_hash),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


OS_ACCOUNT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")


def canonical_name(text: str) -> str:
    """The NFKC form of a user name, validated (1-64 of letters, digits, '.', '_', '@', '-')."""
    if not isinstance(text, str):
        raise BadInputError("user name must be text")
    name = unicodedata.normalize("NFKC", text)
    if not USER_NAME.fullmatch(name):
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise BadInputError(
            f"user name {shown!r} is invalid: use 1-64 ASCII letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def skeleton(name: str) -> str:
    """A name's look-alike key: two names with one skeleton could pass for each other."""
    out = unicodedata.normalize("NFKC", name).casefold()
    for seq, target in _CONFUSABLES:
        out = out.replace(seq, target)
    return out


def users_table(db: lancedb.DBConnection) -> Table:
    return open_table(db, UserRow.TABLE, UserRow.SCHEMA)


def users_in_table(storage: Storage) -> bool:
    """Whether the users table holds anyone (then it, not the YAML file, says who is who)."""
    return has_table(storage.db, UserRow.TABLE) and users_table(storage.db).count_rows() > 0


def list_users(storage: Storage) -> list[UserRow]:
    if not has_table(storage.db, UserRow.TABLE):
        return []
    rows = arrow_to_rows(users_table(storage.db).to_arrow(), UserRow)
    return sorted(rows, key=lambda r: r.id)


def find_user(storage: Storage, name: str) -> UserRow | None:
    """The user whose canonical name is exactly ``name`` after NFKC, else None."""
    try:
        wanted = canonical_name(name)
    except BadInputError:
        return None
    if not has_table(storage.db, UserRow.TABLE):
        return None
    found = users_table(storage.db).search().where(eq("id", wanted)).limit(1).to_arrow()
    rows = arrow_to_rows(found, UserRow)
    return rows[0] if rows else None


def get_user(storage: Storage, name: str) -> UserRow:
    row = find_user(storage, name)
    if row is None:
        raise NotFoundError(f"user {name!r} does not exist")
    return row


def check_roles(roles: Sequence[str]) -> list[str]:
    if not roles:
        raise BadInputError("a user needs at least one role (--role)")
    out: list[str] = []
    for role in roles:
        try:
            value = Role(role).value
        except ValueError as exc:
            raise BadInputError(f"role {role!r} is not one of {', '.join(r.value for r in Role)}") from exc
        if value not in out:
            out.append(value)
    return out


def _check_new_name(storage: Storage, name: str) -> str:
    canonical = canonical_name(name)
    key = skeleton(canonical)
    for existing in list_users(storage):
        if existing.id == canonical:
            raise BadInputError(f"user {canonical!r} already exists")
        if skeleton(existing.id) == key:
            raise BadInputError(
                f"user name {canonical!r} differs from the existing user {existing.id!r} only by case "
                "or look-alike characters; choose a clearly different name"
            )
    return canonical


def add_user(
    storage: Storage,
    name: str,
    roles: Sequence[str],
    password: str | None,
    created_by: str,
    *,
    os_account: str = "",
    now: dt.datetime | None = None,
) -> UserRow:
    """Create an account; ``password`` None leaves it unable to sign in until one is set."""
    now = now or utcnow()
    canonical = _check_new_name(storage, name)
    if os_account and not OS_ACCOUNT.fullmatch(os_account):
        raise BadInputError(
            f"OS account {os_account[:80]!r} is invalid: use 1-64 letters, digits, '.', '_', '-'"
        )
    row = UserRow(
        id=canonical,
        roles=check_roles(roles),
        active=True,
        password_hash=hash_password(password) if password is not None else "",
        os_account=os_account,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    if not insert_missing(users_table(storage.db), rows_to_arrow([row], UserRow.SCHEMA)):
        raise BadInputError(f"user {canonical!r} already exists")
    return row


def set_password(storage: Storage, name: str, password: str, now: dt.datetime | None = None) -> UserRow:
    """A new password for ``name``; every session they have ends (sign in again with it).

    Their API tokens stay: each is a separate, revocable credential (`DELETE /api/tokens/{id}`).
    """
    row = get_user(storage, name)
    updated = replace(row, password_hash=hash_password(password), updated_at=now or utcnow())
    upsert(users_table(storage.db), rows_to_arrow([updated], UserRow.SCHEMA))
    end_user_sessions(storage, updated.id)
    return updated


def set_active(storage: Storage, name: str, active: bool, now: dt.datetime | None = None) -> UserRow:
    row = get_user(storage, name)
    updated = replace(row, active=active, updated_at=now or utcnow())
    upsert(users_table(storage.db), rows_to_arrow([updated], UserRow.SCHEMA))
    if not active:
        end_user_sessions(storage, updated.id)
    return updated


def import_users(storage: Storage, users: UsersFile, created_by: str) -> list[tuple[str, str]]:
    """Copy a users YAML's entries into the table, without passwords: (name, what happened)."""
    out: list[tuple[str, str]] = []
    for entry in users.users:
        try:
            row = add_user(storage, entry.name, [r.value for r in entry.roles], None, created_by)
        except BadInputError as exc:
            out.append((entry.name, f"skipped: {exc}"))
            continue
        if not entry.active:
            set_active(storage, row.id, False)
        out.append((row.id, "imported (no password yet: `citywatch users passwd`)"))
    return out
