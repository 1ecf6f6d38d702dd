"""Co-appearance and recurring faces on a root with known companions (real embeddings).

Who was with the subject, which face keeps coming back, the limits and the supervisor's
approval, the audit trail and the refusals (tests/coappear_support.py has the truth).
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from citywatch.errors import BadInputError, ForbiddenError, NotFoundError
from citywatch.flows.coappear import approve_recurring, companions_search, recurring_search
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.scope_approvals import ScopeRequestRow
from citywatch.schemas import FaceRow, arrow_to_rows
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import has_table
from citywatch.tasks.search import grouping
from citywatch.tasks.search.grouping import group_tracks, track_templates
from citywatch.tasks.search.recurring import RecurringScope
from tests import coappear_support as truth
from tests.conftest import as_user, settings_for

WHY = "robbery on 20 Nov: who was with the suspect"
HOUR = dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[np.ndarray]]:
    tmp = tmp_path_factory.mktemp("coappear-embed")
    return truth.people_embeddings(settings_for(tmp / "data", tmp))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, embeddings: dict[str, list[np.ndarray]]) -> Settings:
    tmp = tmp_path_factory.mktemp("coappear")
    settings = settings_for(tmp / "data", tmp, user="demo-investigator")
    truth.build_root(settings, embeddings)
    return settings


def scope(cameras: tuple[str, ...] = truth.CAMERAS, hours: float = 3, min_count: int = 3) -> RecurringScope:
    return RecurringScope(cameras, truth.T0 - HOUR, truth.T0 - HOUR + hours * HOUR, min_count)


def tracks(group: object) -> set[str]:
    return {s.face_id.rsplit("@", 1)[0] for s in group.sightings}  # type: ignore[attr-defined]


def last_record(settings: Settings, action: str) -> object:
    return AuditLog(Storage(settings)).list(case_id=truth.CASE_ID, action=action, limit=1)[0]


def test_companion_is_the_top_group_and_a_distant_person_is_absent(root: Settings) -> None:
    result = companions_search(root, case_id=truth.CASE_ID, justification=WHY)
    subject = {truth.track_id(i, a) for i, a in enumerate(truth.APPEARANCES[:3])}
    assert set(result.subject_tracks) == subject  # the case's kept sightings
    top = result.groups[0]
    assert tracks(top) == truth.tracks_of(truth.COMPANION)
    assert set(top.accompanies) == subject and top.cameras == ("cam-a", "cam-b", "cam-c")
    assert top.thumb_uri.startswith(f"thumbs/{truth.COMPANION}/")
    assert tracks(result.groups[1]) == truth.tracks_of(truth.BYSTANDER)
    assert len(result.groups[1].accompanies) == 1
    everyone = set().union(*(tracks(g) for g in result.groups))
    assert not everyone & truth.tracks_of(truth.NEVER_NEAR)
    assert not everyone & truth.tracks_of(truth.RECURRING)
    assert not everyone & truth.tracks_of(truth.SUBJECT)  # the subject's unkept track is no companion
    record = last_record(root, "search_coappear")
    assert (record.user, record.outcome, record.justification) == ("demo-investigator", "ok", WHY)
    assert record.result_count == len(result.groups) == 2


def test_companions_of_one_sighting_and_a_narrow_window(root: Settings) -> None:
    cam_b = truth.track_id(1, truth.APPEARANCES[1])
    face_id = f"{cam_b}@0"
    result = companions_search(root, case_id=truth.CASE_ID, justification=WHY, sightings=(face_id,))
    assert result.subject_tracks == (cam_b,)
    assert [g.cameras for g in result.groups] == [("cam-b",)]
    # the companion's faces fall inside the subject's tracks; the bystander's faces just before
    narrow = companions_search(root, case_id=truth.CASE_ID, justification=WHY, window_s=0)
    assert [tracks(g) for g in narrow.groups] == [truth.tracks_of(truth.COMPANION)]


def _faces(storage: Storage) -> object:
    return storage.db.open_table("faces").to_arrow()


def test_recurring_face_is_one_group(root: Settings) -> None:
    result = recurring_search(root, scope(min_count=4), case_id=truth.CASE_ID, justification=WHY)
    found = [tracks(g) for g in result.groups]
    assert truth.tracks_of(truth.RECURRING) in found  # exactly its four sightings, nobody else's
    assert all(len(g.sightings) >= 4 for g in result.groups)
    assert truth.tracks_of(truth.COMPANION) not in found  # seen 3 times: under --min-count 4
    hanks = next(g for g in result.groups if tracks(g) == truth.tracks_of(truth.RECURRING))
    assert hanks.cameras == truth.CAMERAS and hanks.count == 4
    record = last_record(root, "search_recurring")
    assert record.outcome == "ok" and record.result_count == len(result.groups)


def test_grouping_quality_bcubed(root: Settings) -> None:
    """BCubed precision and recall of grouping every track of the root (reported in docs)."""
    faces = arrow_to_rows(_faces(Storage(root)), FaceRow)
    templates = track_templates(faces)
    groups = group_tracks(templates, 0.55)
    person = {truth.track_id(i, a): a.person for i, a in enumerate(truth.APPEARANCES)}
    precision, recall = bcubed([[t.track_id for t in g] for g in groups], person)
    assert precision >= 0.95 and recall >= 0.95
    assert group_tracks(list(reversed(templates)), 0.55) == groups  # deterministic, order-free


def bcubed(groups: list[list[str]], label: dict[str, str]) -> tuple[float, float]:
    cluster_of = {item: i for i, g in enumerate(groups) for item in g}
    items = list(cluster_of)
    precision = recall = 0.0
    for item in items:
        same_cluster = [o for o in items if cluster_of[o] == cluster_of[item]]
        same_label = [o for o in items if label[o] == label[item]]
        both = sum(label[o] == label[item] for o in same_cluster)
        precision += both / len(same_cluster)
        recall += both / len(same_label)
    return precision / len(items), recall / len(items)


def test_over_the_limits_needs_a_supervisor(root: Settings) -> None:
    storage = Storage(root)
    tight = root.updated(coappear__recurring_max_cameras=2)
    with pytest.raises(BadInputError, match=r"4 cameras \(the limit is 2\).*supervisor"):
        recurring_search(tight, scope(), case_id=truth.CASE_ID, justification=WHY)
    with pytest.raises(BadInputError, match=r"window of 8 days \(the limit is 7\)"):
        recurring_search(root, scope(hours=8 * 24), case_id=truth.CASE_ID, justification=WHY)
    assert not has_table(storage.db, ScopeRequestRow.TABLE)  # nothing written
    assert last_record(root, "search_recurring").outcome == "failed"

    asked = recurring_search(tight, scope(), case_id=truth.CASE_ID, justification=WHY, request_approval=True)
    request_id = asked.pending_request
    assert request_id.startswith("sr-") and asked.groups == []
    assert request_id in last_record(root, "search_recurring").detail
    with pytest.raises(ForbiddenError, match="waits for a supervisor"):
        recurring_search(tight, scope(), case_id=truth.CASE_ID, justification=WHY, approval=request_id)
    with pytest.raises(ForbiddenError, match="may not recurring_approve"):  # an investigator cannot approve
        approve_recurring(root, request_id, case_id=truth.CASE_ID, justification=WHY)
    supervisor = as_user(root, "demo-supervisor")
    with pytest.raises(ForbiddenError, match="belongs to case"):
        approve_recurring(supervisor, request_id, case_id="OTHER-1", justification=WHY)
    row = approve_recurring(
        supervisor, request_id, case_id=truth.CASE_ID, justification="scope checked, proportionate"
    )
    assert (row.requested_by, row.approved_by) == ("demo-investigator", "demo-supervisor")
    approval = last_record(root, "recurring_approve")
    assert (approval.user, approval.outcome) == ("demo-supervisor", "ok")

    result = recurring_search(tight, scope(), case_id=truth.CASE_ID, justification=WHY, approval=request_id)
    assert result.approval == request_id and truth.tracks_of(truth.RECURRING) in [
        tracks(g) for g in result.groups
    ]
    with pytest.raises(ForbiddenError, match="beyond what"):
        recurring_search(tight, scope(hours=4), case_id=truth.CASE_ID, justification=WHY, approval=request_id)
    with pytest.raises(ForbiddenError, match="only they may use it"):
        recurring_search(
            as_user(tight, "demo-supervisor-2"),
            scope(),
            case_id=truth.CASE_ID,
            justification=WHY,
            approval=request_id,
        )


def test_four_eyes_a_supervisor_cannot_approve_their_own_request(root: Settings) -> None:
    tight = as_user(root, "demo-supervisor").updated(coappear__recurring_max_cameras=1)
    asked = recurring_search(tight, scope(), case_id=truth.CASE_ID, justification=WHY, request_approval=True)
    with pytest.raises(ForbiddenError, match="four-eyes"):
        approve_recurring(tight, asked.pending_request, case_id=truth.CASE_ID, justification=WHY)
    assert last_record(root, "recurring_approve").outcome == "refused"
    with pytest.raises(NotFoundError):
        approve_recurring(tight, "sr-000000000000", case_id=truth.CASE_ID, justification=WHY)


def test_analyst_and_missing_case_or_reason_are_refused_and_audited(root: Settings) -> None:
    analyst = as_user(root, "demo-analyst")
    with pytest.raises(ForbiddenError, match="may not search_coappear"):
        companions_search(analyst, case_id=truth.CASE_ID, justification=WHY)
    with pytest.raises(ForbiddenError, match="may not search_recurring"):
        recurring_search(analyst, scope(), case_id=truth.CASE_ID, justification=WHY)
    record = last_record(root, "search_recurring")
    assert (record.user, record.outcome) == ("demo-analyst", "refused")
    with pytest.raises(BadInputError, match="needs a case id"):
        companions_search(root, case_id="", justification=WHY)
    with pytest.raises(BadInputError, match="needs a justification"):
        recurring_search(root, scope(), case_id=truth.CASE_ID, justification="because")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"case_id": "EMPTY-1"}, "keeps no sightings"),
        ({"window_s": -1.0}, "must be 0 or more"),
        ({"window_s": float("nan")}, "must be 0 or more"),
        ({"sightings": ("no-such-face",)}, "no such face sighting"),
    ],
)
def test_companions_bad_input(root: Settings, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"case_id": truth.CASE_ID, "justification": WHY, **kwargs}
    with pytest.raises(BadInputError, match=message):
        companions_search(root, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (scope(cameras=()), "at least one camera"),
        (scope(cameras=("cam-z",)), "no such camera"),
        (scope(cameras=("Cam A",)), "camera id 'Cam A' is invalid"),
        (RecurringScope(truth.CAMERAS, truth.T0 + 50 * HOUR, truth.T0 + 60 * HOUR, 3), "no faces on"),
        (RecurringScope(truth.CAMERAS, truth.T0, truth.T0 - HOUR, 3), "must be before"),
        (scope(min_count=1), "at least 2 times"),
    ],
)
def test_recurring_bad_input(root: Settings, bad: RecurringScope, message: str) -> None:
    with pytest.raises(BadInputError, match=message):
        recurring_search(root, bad, case_id=truth.CASE_ID, justification=WHY)


def test_grouping_blockwise_matches_identities(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 0.09, (300, 128)).astype(np.float32)  # ~1.0 apart
    vectors = np.repeat(centres, 3, axis=0) + rng.normal(0, 0.01, (900, 128)).astype(np.float32)
    monkeypatch.setattr(grouping, "BLOCK_ROWS", 128)  # several blocks
    monkeypatch.setattr(grouping, "MAX_NEIGHBOURS", 4)
    labels = grouping.neighbour_components(vectors, 0.55)
    assert len(set(labels.tolist())) == 300
    assert all(len(set(labels[i * 3 : i * 3 + 3].tolist())) == 1 for i in range(300))
    assert grouping.neighbour_components(np.zeros((0, 128), np.float32), 0.55).shape == (0,)


def face_ids_of(person: str) -> tuple[str, ...]:
    return tuple(sorted(f"{t}@1" for t in truth.tracks_of(person)))


def test_promote_a_group_to_a_face_search_and_a_watchlist_request(root: Settings) -> None:
    from citywatch.flows.promote import group_search, group_watchlist_request
    from citywatch.tasks.search.faces import SearchFilters

    group = face_ids_of(truth.COMPANION)
    found = group_search(root, group, SearchFilters(), case_id=truth.CASE_ID, justification=WHY)
    tracks_found = {s.face_id.rsplit("@", 1)[0] for s in found.sightings}
    assert tracks_found == truth.tracks_of(truth.COMPANION)  # all of them, nobody else
    record = last_record(root, "search_face")
    assert record.probe_sha256 == found.probe_sha256
    assert json.loads(record.params)["source"] == "group"

    entry = group_watchlist_request(
        root,
        group,
        label="companion 1",
        reason="suspect",
        expires="7d",
        case_id=truth.CASE_ID,
        justification=WHY,
    )
    assert entry.status == "pending" and entry.photo_sha256[0].startswith("group:")
    assert entry.requested_by == "demo-investigator" and len(entry.embeddings) == 1
    request = last_record(root, "watchlist_request")
    assert request.outcome == "ok" and entry.id in request.detail

    mixed = group[:1] + face_ids_of(truth.RECURRING)[:1]
    with pytest.raises(BadInputError, match="do not look like one person"):
        group_search(root, mixed, SearchFilters(), case_id=truth.CASE_ID, justification=WHY)
    with pytest.raises(ForbiddenError, match="may not search_face"):
        group_search(
            as_user(root, "demo-analyst"), group, SearchFilters(), case_id=truth.CASE_ID, justification=WHY
        )


def test_any_of_stays_grouped_inside_all_of() -> None:
    from citywatch.filters import all_of, any_of, eq

    assert any_of() == "FALSE"
    assert all_of(eq("a", 1), any_of(eq("b", 2), eq("c", "x'y"))) == "a = 1 AND ((b = 2) OR (c = 'x''y'))"


def test_one_poor_view_does_not_chain_two_people() -> None:
    a = np.zeros(128, np.float32)
    b = a.copy()
    b[0] = 1.0  # two people 1.0 apart
    between = a.copy()
    between[0] = 0.5  # a blurred view 0.5 from both, under the 0.55 threshold
    near_a = a.copy()
    near_a[1] = 0.1
    vectors = np.stack([a, b, between, near_a])
    assert len(set(grouping.neighbour_components(vectors, 0.55).tolist())) == 1  # the chain
    labels = grouping.group_labels(vectors, 0.55).tolist()
    assert labels[0] == labels[3] != labels[1]  # split: the two people stay apart
