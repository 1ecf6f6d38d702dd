"""The users YAML file: the legacy direct-mode users list, and the import format of the users table.

::

    users:
      - name: alice
        roles: [investigator]
      - name: sam
        roles: [supervisor]

Once the users table (:mod:`citywatch.governance.users`) holds anyone, it is the only
list of users: ``citywatch users import FILE`` copies a file like this into it.
"""

from __future__ import annotations

import posixpath
import re

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from citywatch.errors import BadInputError, ForbiddenError, NotFoundError, TransientError
from citywatch.governance.roles import Role
from citywatch.storage import STORAGE_IO_ERRORS, Storage

USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
USERS_KEY = "users.yaml"


# --- users file --------------------------------------------------------------------
class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Login name, as given in CITYWATCH_USER / --user.")
    roles: list[Role] = Field(min_length=1, description="One or more of the four roles.")
    active: bool = Field(True, description="False: kept for the audit trail, may do nothing.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not USER_NAME.fullmatch(value):
            raise ValueError("use 1-64 letters, digits, '.', '_', '@' or '-'")
        return value


class UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: list[UserEntry] = Field(min_length=1)

    @field_validator("users")
    @classmethod
    def _unique(cls, users: list[UserEntry]) -> list[UserEntry]:
        seen: set[str] = set()
        for user in users:
            if user.name.casefold() in seen:
                raise ValueError(f"user {user.name!r} is listed twice")
            seen.add(user.name.casefold())
        return users


def users_file_url(storage: Storage) -> str:
    configured = storage.settings.storage.users_file
    return storage.resolve(configured) if configured else storage.url(USERS_KEY)


def parse_users(text: str, source: str) -> UsersFile:
    """Validate users-file YAML; errors name the file, the entry and the problem."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise BadInputError(f"users file {source} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise BadInputError(f"users file {source} must be a mapping with a 'users' list")
    try:
        return UsersFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}" for err in exc.errors()
        )
        raise BadInputError(f"users file {source} is invalid: {problems}") from exc


def load_users(storage: Storage) -> UsersFile:
    url = users_file_url(storage)
    try:
        data = storage.read_bytes(url)
    except NotFoundError as exc:
        raise ForbiddenError(
            f"no users file at {url}: list who may do what there (docs/governance.md), or "
            "run `citywatch sample` for the demo users"
        ) from exc
    return parse_users(data.decode("utf-8", errors="replace"), url)


# --- demo users --------------------------------------------------------------------
DEMO_USERS_YAML = """\
# DEMO USERS for the synthetic sample footage only: replace this file before any real
# use. Who acts is CITYWATCH_USER (or --user); see docs/governance.md.
users:
  - name: demo-analyst
    roles: [analyst]
  - name: demo-investigator
    roles: [investigator]
  - name: demo-supervisor
    roles: [supervisor]
  - name: demo-supervisor-2
    roles: [supervisor]
  - name: demo-admin
    roles: [admin]
"""


def write_demo_users(storage: Storage) -> str:
    """Write the demo users file unless one exists (never overwrites); return its URL."""
    url = users_file_url(storage)
    if storage.exists(url):
        return url
    parse_users(DEMO_USERS_YAML, "DEMO_USERS_YAML")  # keeps the constant honest
    fs, path = storage.fs(url)
    try:
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        fs.pipe_file(path, DEMO_USERS_YAML.encode())
    except STORAGE_IO_ERRORS as exc:
        raise TransientError(f"could not write the demo users file {url}: {exc}") from exc
    return url
