"""Who may do what: users, roles, guarded actions, and the audited ``governed`` wrapper.

Identity is ``Settings.user`` (CITYWATCH_USER, or the CLI's ``--user``), looked up in
the users file (``Settings.users_file``, default ``<storage_root>/users.yaml``)::

    users:
      - name: alice
        roles: [investigator]
      - name: sam
        roles: [supervisor]

Every guarded action goes through :func:`authorize`, which refuses (and audits the
refusal) unless one of the actor's roles allows it, and for case-bound actions
demands a case id and a written justification. Flows and commands use
:func:`governed`, which also records the outcome (ok / failed) and result count.
See docs/governance.md for the role table.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from citywatch.errors import BadInputError, CitywatchError, ForbiddenError, NotFoundError, TransientError
from citywatch.governance.audit_log import AuditLog, AuditRow, Outcome
from citywatch.settings import Settings
from citywatch.storage import STORAGE_IO_ERRORS, Storage

CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_JUSTIFICATION = 10
MAX_JUSTIFICATION = 1000
USERS_KEY = "users.yaml"


class Role(StrEnum):
    ANALYST = "analyst"  # aggregates and notebooks; never a face or plate search
    INVESTIGATOR = "investigator"  # searches, exports, requests watchlist entries
    SUPERVISOR = "supervisor"  # investigator + approves watchlist entries, reviews alerts
    ADMIN = "admin"  # users, settings, indexing, retention, audit; no searches


class Action(StrEnum):
    """Every guarded action (the audit log's ``action`` column)."""

    ANALYTICS_READ = "analytics_read"
    SEARCH_FACE = "search_face"
    SEARCH_PLATE = "search_plate"
    EXPORT = "export"
    WATCHLIST_READ = "watchlist_read"
    WATCHLIST_REQUEST = "watchlist_request"
    WATCHLIST_APPROVE = "watchlist_approve"
    WATCHLIST_REMOVE = "watchlist_remove"
    ALERT_READ = "alert_read"
    ALERT_REVIEW = "alert_review"
    CASE_HOLD = "case_hold"
    INDEX_RUN = "index_run"
    SWEEP_RUN = "sweep_run"
    RETENTION_RUN = "retention_run"
    CALIBRATE = "calibrate"
    USERS_MANAGE = "users_manage"
    AUDIT_READ = "audit_read"
    AUDIT_RESTORE = "audit_restore"
    AUDIT_CHECKPOINT = "audit_checkpoint"
    KEYS_MANAGE = "keys_manage"
    WEBHOOKS_MANAGE = "webhooks_manage"


_A, _I, _S, _D = Role.ANALYST, Role.INVESTIGATOR, Role.SUPERVISOR, Role.ADMIN

PERMISSIONS: Mapping[Action, frozenset[Role]] = {
    Action.ANALYTICS_READ: frozenset({_A, _I, _S}),
    Action.SEARCH_FACE: frozenset({_I, _S}),
    Action.SEARCH_PLATE: frozenset({_I, _S}),
    Action.EXPORT: frozenset({_I, _S}),
    Action.WATCHLIST_READ: frozenset({_I, _S}),
    Action.WATCHLIST_REQUEST: frozenset({_I, _S}),
    Action.WATCHLIST_APPROVE: frozenset({_S}),
    Action.WATCHLIST_REMOVE: frozenset({_S, _D}),
    Action.ALERT_READ: frozenset({_I, _S}),
    Action.ALERT_REVIEW: frozenset({_S}),
    Action.CASE_HOLD: frozenset({_S}),
    Action.INDEX_RUN: frozenset({_D}),
    Action.SWEEP_RUN: frozenset({_D}),
    Action.RETENTION_RUN: frozenset({_D}),
    Action.CALIBRATE: frozenset({_D}),
    Action.USERS_MANAGE: frozenset({_D}),
    Action.AUDIT_READ: frozenset({_S, _D}),
    Action.AUDIT_RESTORE: frozenset({_D}),
    Action.AUDIT_CHECKPOINT: frozenset({_D}),
    Action.KEYS_MANAGE: frozenset({_D}),
    Action.WEBHOOKS_MANAGE: frozenset({_D}),
}
"""Which roles may perform each action (docs/governance.md shows it as a table)."""

CASE_BOUND: frozenset[Action] = frozenset(
    {
        Action.SEARCH_FACE,
        Action.SEARCH_PLATE,
        Action.EXPORT,
        Action.WATCHLIST_REQUEST,
        Action.WATCHLIST_APPROVE,
        Action.CASE_HOLD,
    }
)
"""Actions that need a case id and a written justification."""


# --- users file --------------------------------------------------------------------
class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Login name, as given in CITYWATCH_USER / --user.")
    roles: list[Role] = Field(min_length=1, description="One or more of the four roles.")
    active: bool = Field(True, description="False: kept for the audit trail, may do nothing.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not USER_NAME.match(value):
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


@dataclass(frozen=True, slots=True)
class Actor:
    """The user acting, with the roles the users file gives them."""

    user: str
    roles: tuple[Role, ...]

    @property
    def role_text(self) -> str:
        return ",".join(sorted(r.value for r in self.roles))


def users_file_url(storage: Storage) -> str:
    configured = storage.settings.users_file
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


def load_actor(settings: Settings, storage: Storage) -> Actor:
    """The acting user (``settings.user``) with their roles from the users file."""
    if not settings.user:
        raise ForbiddenError(
            f"no user given: set CITYWATCH_USER (or pass --user) to a name from {users_file_url(storage)}"
        )
    users = load_users(storage)
    for entry in users.users:
        if entry.name.casefold() == settings.user.casefold():
            if not entry.active:
                raise ForbiddenError(f"user {entry.name!r} is deactivated in {users_file_url(storage)}")
            return Actor(entry.name, tuple(entry.roles))
    raise ForbiddenError(f"user {settings.user!r} is not in the users file {users_file_url(storage)}")


# --- checks --------------------------------------------------------------------------
def roles_allowed(action: Action) -> frozenset[Role]:
    return PERMISSIONS[Action(action)]


def is_allowed(roles: tuple[Role, ...] | list[Role], action: Action) -> bool:
    return bool(set(roles) & roles_allowed(action))


def check_case(action: Action, case_id: str | None, justification: str | None) -> tuple[str, str]:
    """Validated (case_id, justification); both are required for case-bound actions."""
    case = (case_id or "").strip()
    why = " ".join((justification or "").split())
    if case and not CASE_ID.match(case):
        raise BadInputError(
            f"case id {case!r} is invalid: 1-64 letters, digits, '_', '.', '/' or '-', "
            "starting with a letter or digit"
        )
    if len(why) > MAX_JUSTIFICATION:
        raise BadInputError(f"justification is {len(why)} characters; the limit is {MAX_JUSTIFICATION}")
    if Action(action) in CASE_BOUND:
        if not case:
            raise BadInputError(
                f"{action} needs a case id (--case): every search, export and "
                "watchlist entry is tied to a case"
            )
        if len(why) < MIN_JUSTIFICATION:
            raise BadInputError(
                f"{action} needs a justification (--why) of at least {MIN_JUSTIFICATION} "
                f"characters saying why this is necessary; got {len(why)}"
            )
    return case, why


def authorize(
    actor: Actor,
    action: Action,
    *,
    case_id: str | None,
    justification: str | None,
    audit_log: AuditLog,
    params: Mapping[str, object] | None = None,
    probe_sha256: str = "",
) -> tuple[str, str]:
    """Allow ``action`` for ``actor`` or raise; every refusal is audited.

    Returns the validated (case_id, justification). Raises ``ForbiddenError`` when no
    role of the actor allows the action, ``BadInputError`` when a case-bound action
    lacks a valid case id or justification.
    """
    action = Action(action)
    allowed = roles_allowed(action)
    if not is_allowed(actor.roles, action):
        needed = " or ".join(sorted(r.value for r in allowed))
        message = (
            f"user {actor.user!r} (role {actor.role_text or 'none'}) may not "
            f"{action.value}: that needs the role {needed}"
        )
        audit_log.record(
            user=actor.user,
            role=actor.role_text,
            action=action.value,
            outcome="refused",
            case_id=_printable(case_id),
            justification=_printable(justification),
            params=params,
            probe_sha256=probe_sha256,
            detail=message,
        )
        raise ForbiddenError(message)
    try:
        return check_case(action, case_id, justification)
    except BadInputError as exc:
        audit_log.record(
            user=actor.user,
            role=actor.role_text,
            action=action.value,
            outcome="refused",
            case_id=_printable(case_id),
            justification=_printable(justification),
            params=params,
            probe_sha256=probe_sha256,
            detail=str(exc),
        )
        raise


def authorized(
    settings: Settings, storage: Storage, action: Action, params: Mapping[str, object] | None = None
) -> Actor:
    """The acting user if allowed ``action`` (not case-bound); refusals are audited.

    For frequent service actions (index and sweep runs every few seconds) whose
    successful runs are audited only when they change something.
    """
    audit_log = AuditLog(storage)
    try:
        actor = load_actor(settings, storage)
    except (ForbiddenError, BadInputError) as exc:
        audit_log.record(
            user=_printable(settings.user),
            role="",
            action=Action(action).value,
            outcome="refused",
            params=params,
            detail=str(exc),
        )
        raise
    authorize(actor, action, case_id=None, justification=None, audit_log=audit_log, params=params)
    return actor


def check_four_eyes(requester: str, approver: str) -> None:
    """Approvals need a second person: refuse when approver and requester are one user."""
    if requester.casefold() == approver.casefold():
        raise ForbiddenError(
            f"user {approver!r} requested this and may not approve it too (four-eyes rule): "
            "another supervisor must approve"
        )


def _printable(text: str | None) -> str:
    return "".join(ch for ch in (text or "") if ch.isprintable())[:MAX_JUSTIFICATION]


# --- the wrapper flows and commands use -----------------------------------------
@dataclass
class GovernedRun:
    """Handed to the body of :func:`governed`; the body fills in what it found."""

    actor: Actor
    action: Action
    case_id: str
    justification: str
    result_count: int = 0
    probe_sha256: str = ""
    detail: str = ""
    audit_record: AuditRow | None = None  # the outcome's record, set when the body is done


@contextmanager
def governed(
    settings: Settings,
    storage: Storage,
    action: Action,
    case_id: str | None,
    justification: str | None,
    params: Mapping[str, object] | None,
    probe_sha256: str | None = None,
) -> Iterator[GovernedRun]:
    """Authorize ``action``, run the body, audit the outcome.

    Refusals (unknown user, wrong role, missing case or justification) are recorded
    as ``refused`` before the error propagates; a body that raises is recorded as
    ``failed`` (``refused`` for a ``ForbiddenError``, e.g. the four-eyes rule); a body
    that returns is recorded as ``ok`` with ``run.result_count``. The ok record is
    written before the caller sees the results: no audit record, no results.
    """
    action = Action(action)
    audit_log = AuditLog(storage)
    sha = probe_sha256 or ""
    try:
        actor = load_actor(settings, storage)
    except (ForbiddenError, BadInputError) as exc:
        audit_log.record(
            user=_printable(settings.user),
            role="",
            action=action.value,
            outcome="refused",
            case_id=_printable(case_id),
            justification=_printable(justification),
            params=params,
            probe_sha256=sha,
            detail=str(exc),
        )
        raise
    case, why = authorize(
        actor,
        action,
        case_id=case_id,
        justification=justification,
        audit_log=audit_log,
        params=params,
        probe_sha256=sha,
    )
    run = GovernedRun(actor, action, case, why, probe_sha256=sha)
    try:
        yield run
    except BaseException as exc:
        outcome: Outcome = "refused" if isinstance(exc, ForbiddenError) else "failed"
        detail = str(exc) if isinstance(exc, CitywatchError) else f"{type(exc).__name__}: {exc}"
        run.audit_record = _finish(audit_log, run, params, outcome, detail)
        raise
    run.audit_record = _finish(audit_log, run, params, "ok", run.detail)


def _finish(
    audit_log: AuditLog, run: GovernedRun, params: Mapping[str, object] | None, outcome: Outcome, detail: str
) -> AuditRow:
    return audit_log.record(
        user=run.actor.user,
        role=run.actor.role_text,
        action=run.action.value,
        outcome=outcome,
        case_id=run.case_id,
        justification=run.justification,
        params=params,
        probe_sha256=run.probe_sha256,
        result_count=max(0, run.result_count),
        detail=detail,
    )


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
