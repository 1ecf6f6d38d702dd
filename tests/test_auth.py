"""Users, roles and the governed wrapper: who may do what, and every refusal is audited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from citywatch.errors import BadInputError, ForbiddenError, NotFoundError
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import (
    CASE_BOUND,
    DEMO_USERS_YAML,
    PERMISSIONS,
    Action,
    Actor,
    Role,
    authorize,
    check_four_eyes,
    governed,
    load_actor,
    parse_users,
    write_demo_users,
)
from citywatch.settings import Settings
from citywatch.storage import Storage

WHY = "suspect in the 2026-11-20 robbery on Main St"


def storage_for(root: Path, user: str | None = None, users_file: str | None = None) -> Storage:
    return Storage(Settings(storage__root=str(root), user=user, storage__users_file=users_file))


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    write_demo_users(storage_for(tmp_path))
    return tmp_path


def audit_rows(root: Path) -> list:  # noqa: ANN201 - list[AuditRow]
    return AuditLog(storage_for(root)).rows()


# --- the permission table --------------------------------------------------------------
@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        (Role.ANALYST, Action.ANALYTICS_READ, True),
        (Role.ANALYST, Action.SEARCH_FACE, False),
        (Role.ANALYST, Action.SEARCH_PLATE, False),
        (Role.ANALYST, Action.EXPORT, False),
        (Role.INVESTIGATOR, Action.SEARCH_FACE, True),
        (Role.INVESTIGATOR, Action.SEARCH_PLATE, True),
        (Role.INVESTIGATOR, Action.EXPORT, True),
        (Role.INVESTIGATOR, Action.WATCHLIST_REQUEST, True),
        (Role.INVESTIGATOR, Action.WATCHLIST_APPROVE, False),
        (Role.INVESTIGATOR, Action.ALERT_REVIEW, False),
        (Role.INVESTIGATOR, Action.AUDIT_READ, False),
        (Role.SUPERVISOR, Action.SEARCH_FACE, True),
        (Role.SUPERVISOR, Action.WATCHLIST_APPROVE, True),
        (Role.SUPERVISOR, Action.ALERT_REVIEW, True),
        (Role.SUPERVISOR, Action.AUDIT_READ, True),
        (Role.SUPERVISOR, Action.RETENTION_RUN, False),
        (Role.ADMIN, Action.SEARCH_FACE, False),  # separation of duties: admins do not search
        (Role.ADMIN, Action.WATCHLIST_APPROVE, False),
        (Role.ADMIN, Action.RETENTION_RUN, True),
        (Role.ADMIN, Action.INDEX_RUN, True),
        (Role.ADMIN, Action.AUDIT_READ, True),
        (Role.ADMIN, Action.CALIBRATE, True),
        (Role.ADMIN, Action.USERS_MANAGE, True),
    ],
)
def test_permission_table(role: Role, action: Action, allowed: bool) -> None:
    assert (role in PERMISSIONS[action]) is allowed


def test_every_action_has_roles_and_supervisor_covers_investigator() -> None:
    assert set(PERMISSIONS) == set(Action)
    assert all(PERMISSIONS[a] for a in Action)
    for action, roles in PERMISSIONS.items():
        if Role.INVESTIGATOR in roles:
            assert Role.SUPERVISOR in roles, action
    assert CASE_BOUND >= {
        Action.SEARCH_FACE,
        Action.SEARCH_PLATE,
        Action.EXPORT,
        Action.WATCHLIST_REQUEST,
        Action.WATCHLIST_APPROVE,
    }


# --- the users file -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("users: [{name: alice, roles: [detective]}]", "users.0.roles.0"),
        ("users: [{name: alice, roles: []}]", "users.0.roles"),
        ("users: [{name: alice, roles: [analyst], password: x}]", "users.0.password"),
        ("users: [{name: alice, roles: [analyst]}, {name: Alice, roles: [admin]}]", "listed twice"),
        ("users: [{name: '../x', roles: [analyst]}]", "users.0.name"),
        ("users: []", "users"),
        ("people: [{name: alice, roles: [analyst]}]", "people"),
        ("- alice", "must be a mapping"),
        ("users: [name: {", "not valid YAML"),
    ],
)
def test_users_file_errors_name_the_problem(text: str, error: str) -> None:
    with pytest.raises(BadInputError, match="users file site.yaml") as info:
        parse_users(text, "site.yaml")
    assert error in str(info.value)


def test_demo_users_cover_every_role_and_are_not_overwritten(tmp_path: Path) -> None:
    storage = storage_for(tmp_path)
    url = write_demo_users(storage)
    users = parse_users(Path(url).read_text(), url)
    assert {r for u in users.users for r in u.roles} == set(Role)
    assert {"demo-analyst", "demo-investigator", "demo-supervisor", "demo-admin"} <= {
        u.name for u in users.users
    }
    Path(url).write_text("users: [{name: chief, roles: [admin]}]\n")
    assert write_demo_users(storage) == url
    assert "chief" in Path(url).read_text()  # an operator's file is never replaced


@pytest.mark.parametrize(
    ("user", "users_yaml", "roles", "error"),
    [
        ("demo-investigator", None, (Role.INVESTIGATOR,), None),
        ("DEMO-Supervisor", None, (Role.SUPERVISOR,), None),
        (
            "both",
            "users: [{name: both, roles: [analyst, investigator]}]",
            (Role.ANALYST, Role.INVESTIGATOR),
            None,
        ),
        (None, None, (), "set CITYWATCH_USER"),
        ("mallory", None, (), "user 'mallory' is not in the users file"),
        ("gone", "users: [{name: gone, roles: [admin], active: false}]", (), "deactivated"),
    ],
)
def test_load_actor(
    root: Path, user: str | None, users_yaml: str | None, roles: tuple[Role, ...], error: str | None
) -> None:
    if users_yaml:
        (root / "users.yaml").write_text(users_yaml)
    storage = storage_for(root, user)
    if error:
        with pytest.raises(ForbiddenError, match=error):
            load_actor(storage.settings, storage)
    else:
        assert load_actor(storage.settings, storage).roles == roles


def test_missing_users_file_says_how_to_fix(tmp_path: Path) -> None:
    storage = storage_for(tmp_path, "alice", users_file=str(tmp_path / "site" / "people.yaml"))
    with pytest.raises(ForbiddenError, match=r"no users file at .*people\.yaml.*citywatch sample"):
        load_actor(storage.settings, storage)


# --- authorize --------------------------------------------------------------------------
INVESTIGATOR = Actor("ivy", (Role.INVESTIGATOR,))
ANALYST = Actor("ann", (Role.ANALYST,))


@pytest.mark.parametrize(
    ("actor", "action", "case_id", "why", "error", "message"),
    [
        (INVESTIGATOR, Action.SEARCH_FACE, "CASE-2026-17", WHY, None, ""),
        (INVESTIGATOR, Action.ANALYTICS_READ, None, None, None, ""),
        (
            ANALYST,
            Action.SEARCH_FACE,
            "CASE-1",
            WHY,
            ForbiddenError,
            "user 'ann' (role analyst) may not search_face: that needs the role investigator or supervisor",
        ),
        (INVESTIGATOR, Action.WATCHLIST_APPROVE, "CASE-1", WHY, ForbiddenError, "needs the role supervisor"),
        (INVESTIGATOR, Action.SEARCH_FACE, None, WHY, BadInputError, "needs a case id"),
        (INVESTIGATOR, Action.SEARCH_PLATE, "  ", WHY, BadInputError, "needs a case id"),
        (
            INVESTIGATOR,
            Action.EXPORT,
            "CASE 1; drop",
            WHY,
            BadInputError,
            "case id 'CASE 1; drop' is invalid",
        ),
        (INVESTIGATOR, Action.EXPORT, "../etc", WHY, BadInputError, "is invalid"),
        (INVESTIGATOR, Action.SEARCH_FACE, "CASE-1", "because", BadInputError, "at least 10 characters"),
        (INVESTIGATOR, Action.WATCHLIST_REQUEST, "CASE-1", None, BadInputError, "needs a justification"),
        (INVESTIGATOR, Action.SEARCH_FACE, "CASE-1", "x" * 1001, BadInputError, "the limit is 1000"),
    ],
)
def test_authorize(
    tmp_path: Path,
    actor: Actor,
    action: Action,
    case_id: str | None,
    why: str | None,
    error: type[Exception] | None,
    message: str,
) -> None:
    log = AuditLog(storage_for(tmp_path))
    if error is None:
        assert authorize(actor, action, case_id=case_id, justification=why, audit_log=log) == (
            case_id or "",
            why or "",
        )
        assert log.rows() == []  # allowed actions are recorded by governed(), with the outcome
        return
    with pytest.raises(error, match=re.escape(message)):
        authorize(actor, action, case_id=case_id, justification=why, audit_log=log)
    (row,) = log.rows()
    assert (row.user, row.role, row.action, row.outcome) == (
        actor.user,
        actor.role_text,
        action.value,
        "refused",
    )
    assert message in row.detail


@pytest.mark.parametrize(
    ("requester", "approver", "refused"),
    [
        ("ivy", "sam", False),
        ("sam", "sam", True),
        ("Sam", "sam", True),
    ],
)
def test_four_eyes(requester: str, approver: str, refused: bool) -> None:
    if refused:
        with pytest.raises(ForbiddenError, match="four-eyes"):
            check_four_eyes(requester, approver)
    else:
        check_four_eyes(requester, approver)


# --- governed ---------------------------------------------------------------------------
def test_governed_records_ok_with_the_result_count(root: Path) -> None:
    storage = storage_for(root, "demo-investigator")
    params = {"plate": "AB123CD", "cameras": ["cam-a"]}
    with governed(storage.settings, storage, Action.SEARCH_PLATE, "CASE-7", WHY, params) as run:
        assert run.actor.user == "demo-investigator"
        run.result_count = 3
    (row,) = audit_rows(root)
    assert run.audit_record == row
    assert (
        row.user,
        row.role,
        row.action,
        row.outcome,
        row.case_id,
        row.justification,
        row.result_count,
    ) == ("demo-investigator", "investigator", "search_plate", "ok", "CASE-7", WHY, 3)
    assert row.params == '{"cameras":["cam-a"],"plate":"AB123CD"}'


@pytest.mark.parametrize(
    ("user", "action", "case_id", "body_error", "raised", "outcome", "detail"),
    [
        (
            "demo-analyst",
            Action.SEARCH_FACE,
            "CASE-7",
            None,
            ForbiddenError,
            "refused",
            "may not search_face",
        ),
        ("mallory", Action.SEARCH_FACE, "CASE-7", None, ForbiddenError, "refused", "not in the users file"),
        (None, Action.INDEX_RUN, None, None, ForbiddenError, "refused", "set CITYWATCH_USER"),
        ("demo-investigator", Action.SEARCH_FACE, None, None, BadInputError, "refused", "needs a case id"),
        (
            "demo-investigator",
            Action.EXPORT,
            "CASE-7",
            NotFoundError("camera 'x' does not exist"),
            NotFoundError,
            "failed",
            "camera 'x' does not exist",
        ),
        (
            "demo-investigator",
            Action.EXPORT,
            "CASE-7",
            RuntimeError("disk full"),
            RuntimeError,
            "failed",
            "RuntimeError: disk full",
        ),
        (
            "demo-supervisor",
            Action.WATCHLIST_APPROVE,
            "CASE-7",
            ForbiddenError("four-eyes rule"),
            ForbiddenError,
            "refused",
            "four-eyes rule",
        ),
    ],
)
def test_governed_records_refusals_and_failures(
    root: Path,
    user: str | None,
    action: Action,
    case_id: str | None,
    body_error: Exception | None,
    raised: type[Exception],
    outcome: str,
    detail: str,
) -> None:
    storage = storage_for(root, user)
    ran = []
    with pytest.raises(raised, match=re.escape(detail.split(": ")[-1])):
        with governed(storage.settings, storage, action, case_id, WHY, {"n": 1}):
            ran.append(True)
            if body_error is not None:
                raise body_error
    assert ran == ([True] if body_error is not None else [])  # refused: the body never runs
    (row,) = audit_rows(root)
    assert (row.user, row.action, row.outcome) == (user or "", action.value, outcome)
    assert detail in row.detail


def test_governed_face_search_records_probe_hash_not_image(root: Path) -> None:
    """The face search is governed: audited with the probe's hash, never the image."""
    import hashlib

    from citywatch.flows.search import face_search
    from citywatch.sample.media import fetch_media
    from citywatch.tasks.search.faces import SearchFilters

    probe = fetch_media() / "obama.jpg"
    sha = hashlib.sha256(probe.read_bytes()).hexdigest()
    storage = storage_for(root, "demo-investigator")
    result = face_search(
        str(probe), SearchFilters(), storage.settings, top_k=5, case_id="CASE-7", justification=WHY
    )
    assert result.probe_sha256 == sha
    (row,) = audit_rows(root)
    assert (row.action, row.outcome, row.probe_sha256, row.result_count) == ("search_face", "ok", sha, 0)
    assert len(row.to_journal()) < 2000  # a hash and parameters, never the photo
    assert AuditLog(storage).verify().ok


def test_demo_users_yaml_is_valid() -> None:
    assert len(parse_users(DEMO_USERS_YAML, "demo").users) >= 4


def test_docs_role_table_matches_permissions() -> None:
    text = (Path(__file__).parents[1] / "docs" / "governance.md").read_text()
    section = text.split("## Roles", 1)[1].split("\n## ", 1)[0]
    documented: dict[Action, frozenset[Role]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            documented[Action(cells[0].strip("`"))] = frozenset(
                role for role, cell in zip(Role, cells[1:]) if cell == "yes"
            )
    assert documented == dict(PERMISSIONS)
