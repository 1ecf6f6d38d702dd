"""Who may do what: the acting user, guarded actions, and the audited ``governed`` wrapper.

Identity is ``Settings.user``. With the citywatch service it is the person who signed
in (the service sets it, and a :class:`RequestContext` says how they signed in and
from where); in direct CLI mode it is CITYWATCH_USER or ``--user``. The user's roles
come from the users table (:mod:`citywatch.governance.users`, names compared exactly
after NFKC) once it holds anyone; before that, from the legacy users YAML file
(:mod:`citywatch.governance.users_file`).

Every guarded action goes through :func:`authorize`, which refuses (and audits the
refusal) unless one of the actor's roles allows it, and for case-bound actions
demands a case id and a written justification. Flows and commands use
:func:`governed`, which also records the outcome (ok / failed) and result count.
Roles, actions and the permission table are in :mod:`citywatch.governance.roles`.
See docs/governance.md for the role table.
"""

from __future__ import annotations

import getpass
import re
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from citywatch.errors import BadInputError, CitywatchError, ForbiddenError, mark_audited
from citywatch.governance.audit_log import AuditLog, Outcome
from citywatch.governance.request_context import current_request, with_request
from citywatch.governance.roles import CASE_BOUND, PERMISSIONS, Action, Role
from citywatch.governance.users import UserRow, find_user, list_users, users_in_table
from citywatch.governance.users_file import (
    DEMO_USERS_YAML,
    USER_NAME,
    USERS_KEY,
    UserEntry,
    UsersFile,
    load_users,
    parse_users,
    users_file_url,
    write_demo_users,
)
from citywatch.schemas import AuditRow
from citywatch.settings import Settings
from citywatch.storage import Storage

__all__ = [
    "CASE_BOUND",
    "DEMO_USERS_YAML",
    "PERMISSIONS",
    "USERS_KEY",
    "USER_NAME",
    "Action",
    "Actor",
    "GovernedRun",
    "Role",
    "UserEntry",
    "UsersFile",
    "authorize",
    "authorized",
    "check_case",
    "check_four_eyes",
    "governed",
    "is_allowed",
    "load_actor",
    "load_users",
    "parse_users",
    "roles_allowed",
    "users_file_url",
    "write_demo_users",
]

CASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")
MIN_JUSTIFICATION = 10
MAX_JUSTIFICATION = 1000


@dataclass(frozen=True, slots=True)
class Actor:
    """The user acting, with the roles the users file gives them."""

    user: str
    roles: tuple[Role, ...]

    @property
    def role_text(self) -> str:
        return ",".join(sorted(r.value for r in self.roles))


def load_actor(settings: Settings, storage: Storage) -> Actor:
    """The acting user (``settings.user``) with their roles.

    From the users table once it holds anyone (exact name after NFKC), else from the
    legacy users file. Under a service request, the request's user must be this user,
    and an API token's scope narrows the roles.
    """
    request = current_request()
    name = settings.user
    if request is None and not name and users_in_table(storage):
        name = os_bound_user(storage)
    if not name:
        raise ForbiddenError(
            f"no user given: set CITYWATCH_USER (or pass --user) to a name from {users_file_url(storage)}"
        )
    if users_in_table(storage):
        found = find_user(storage, name)
        if found is None:
            raise ForbiddenError(f"user {name!r} is not in the users table")
        if request is None:
            check_os_binding(storage, found)
        if not found.active:
            raise ForbiddenError(f"user {found.name!r} is deactivated")
        actor = Actor(found.name, found.role_tuple())
    elif request is not None:
        raise ForbiddenError("the service signs people in only from the users table, which is empty")
    else:
        actor = _actor_from_file(name, storage)
    if request is not None:
        if request.user != actor.user:
            raise ForbiddenError(f"request signed in as {request.user!r} cannot act as {actor.user!r}")
        if request.roles is not None:
            actor = Actor(actor.user, tuple(r for r in actor.roles if r in request.roles))
    return actor


def os_bound_user(storage: Storage) -> str | None:
    """Direct mode: the one user whose ``os_account`` is the current OS login, if any."""
    login = getpass.getuser()
    names = [u.id for u in list_users(storage) if u.os_account == login]
    return names[0] if len(names) == 1 else None


def check_os_binding(storage: Storage, user: UserRow) -> None:
    """Direct mode on a single-user machine: once any account names an OS login, the acting
    user must be the account bound to the current OS login (``--user`` cannot pick another)."""
    if not any(u.os_account for u in list_users(storage)):
        return  # no account is bound yet (legacy roots, demos): no binding
    login = getpass.getuser()
    if user.os_account != login:
        raise ForbiddenError(
            f"user {user.id!r} is not bound to the OS login {login!r}: direct use acts only as the "
            "account whose os_account is this login (`citywatch users add NAME --os-account LOGIN`); "
            "use the citywatch service (CITYWATCH_API_URL, `citywatch login`) otherwise"
        )


def _actor_from_file(user: str, storage: Storage) -> Actor:
    users = load_users(storage)
    for entry in users.users:
        if entry.name.casefold() == user.casefold():
            if not entry.active:
                raise ForbiddenError(f"user {entry.name!r} is deactivated in {users_file_url(storage)}")
            return Actor(entry.name, tuple(entry.roles))
    raise ForbiddenError(f"user {user!r} is not in the users file {users_file_url(storage)}")


# --- checks --------------------------------------------------------------------------
def roles_allowed(action: Action) -> frozenset[Role]:
    return PERMISSIONS[Action(action)]


def is_allowed(roles: tuple[Role, ...] | list[Role], action: Action) -> bool:
    return bool(set(roles) & roles_allowed(action))


def check_case(action: Action, case_id: str | None, justification: str | None) -> tuple[str, str]:
    """Validated (case_id, justification); both are required for case-bound actions."""
    case = (case_id or "").strip()
    why = " ".join((justification or "").split())
    if case and not CASE_ID.fullmatch(case):
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
            case_id=printable(case_id),
            justification=printable(justification),
            params=with_request(params),
            probe_sha256=probe_sha256,
            detail=message,
        )
        raise mark_audited(ForbiddenError(message))
    try:
        return check_case(action, case_id, justification)
    except BadInputError as exc:
        audit_log.record(
            user=actor.user,
            role=actor.role_text,
            action=action.value,
            outcome="refused",
            case_id=printable(case_id),
            justification=printable(justification),
            params=with_request(params),
            probe_sha256=probe_sha256,
            detail=str(exc),
        )
        mark_audited(exc)
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
            user=printable(settings.user),
            role="",
            action=Action(action).value,
            outcome="refused",
            params=with_request(params),
            detail=str(exc),
        )
        mark_audited(exc)
        raise
    authorize(actor, action, case_id=None, justification=None, audit_log=audit_log, params=params)
    return actor


def check_four_eyes(requester: str, approver: str) -> None:
    """Approvals need a second person: refuse when approver and requester are one user."""
    if _same_person(requester, approver):
        raise ForbiddenError(
            f"user {approver!r} requested this and may not approve it too (four-eyes rule): "
            "another supervisor must approve"
        )


def _same_person(a: str, b: str) -> bool:
    return unicodedata.normalize("NFKC", a).casefold() == unicodedata.normalize("NFKC", b).casefold()


def printable(text: str | None) -> str:
    """``text`` fit for an audit field: non-printable characters dropped, length capped."""
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
            user=printable(settings.user),
            role="",
            action=action.value,
            outcome="refused",
            case_id=printable(case_id),
            justification=printable(justification),
            params=with_request(params),
            probe_sha256=sha,
            detail=str(exc),
        )
        mark_audited(exc)
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
        mark_audited(exc)
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
        params=with_request(params),
        probe_sha256=run.probe_sha256,
        result_count=max(0, run.result_count),
        detail=detail,
    )
