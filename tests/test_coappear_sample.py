"""Companions and a recurring unknown face on the indexed sample (issue 20, "must hold").

The sample's ground truth names a companion pair (``companions``: a person and the
unknown face walking beside them past several cameras) and a recurring unknown face
(``recurring``: no probe, at several cameras). From the person's sightings (a face
search with their probe, through ``citywatch coappear``) the companion is the top group;
a recurring-faces search over the cameras and window of the recurring face finds it as
exactly one group; grouping every face of the sample scores BCubed >= 0.95.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from citywatch.cli.main import main
from citywatch.flows.coappear import group_threshold, recurring_search
from citywatch.flows.search import face_search
from citywatch.geometry import Box
from citywatch.sample.dataset import load_ground_truth
from citywatch.sample.truth import AppearanceTruth, GroundTruth
from citywatch.sightings import Sighting
from citywatch.storage import Storage
from citywatch.tasks.search.coappear import load_faces
from citywatch.tasks.search.faces import SearchFilters
from citywatch.tasks.search.grouping import group_tracks, groupable, track_templates
from citywatch.tasks.search.recurring import RecurringScope
from tests.conftest import CASE, Indexed, as_user

pytestmark = pytest.mark.slow
SLACK = dt.timedelta(seconds=1.5)
WHY = "automated end-to-end test: who walked with the subject"


def ground_truth(root: Path) -> GroundTruth:
    return load_ground_truth(root / "sample" / "ground_truth.json")


def test_sample_truth_has_a_companion_pair_and_a_recurring_face(sample_dir: Path) -> None:
    truth = ground_truth(sample_dir)
    assert len(truth.companions) == 1
    person, companion = truth.companions[0]
    assert truth.companion_of(person) == companion
    walks = {(a.key, a.camera_id): a for a in truth.appearances_of(person)}
    beside = truth.appearances_of(companion)
    assert len({a.camera_id for a in beside}) >= 3
    for a in beside:  # same camera and segment, starting within a few seconds, faces apart
        lead = walks[(a.key, a.camera_id)]
        assert abs((a.start - lead.start).total_seconds()) <= 3.0
    assert truth.person(companion).probe is None
    (recurring,) = truth.recurring
    assert recurring not in (person, companion)
    assert truth.person(recurring).probe is None and truth.person(recurring).probe_kind == "none"
    assert len({a.camera_id for a in truth.appearances_of(recurring)}) >= 3
    assert all(p.person_id != recurring for p in truth.people if p.probe_is_main)


def _iou(a: Box, b: tuple[int, int, int, int]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def who(truth: GroundTruth, camera_id: str, ts: dt.datetime, bbox: Box) -> str:
    """The sample person whose face is at ``bbox`` on ``camera_id`` at ``ts`` ('' if none)."""
    starts = {s.key: s.start for s in truth.segments}
    best, best_iou = "", 0.3
    for a in truth.appearances:
        if a.camera_id != camera_id or not a.start - SLACK <= ts <= a.end + SLACK:
            continue
        at = (ts - starts[a.key]).total_seconds()
        box = min(a.boxes, key=lambda b: abs(b.t - at))
        if abs(box.t - at) <= 0.5:
            overlap = _iou(bbox, (box.x1, box.y1, box.x2, box.y2))
            if overlap > best_iou:
                best, best_iou = a.person_id, overlap
    return best


def sighting_of(truth: GroundTruth, s: Sighting) -> str:
    return who(truth, s.camera_id, s.ts, s.bbox)


def test_companion_is_the_top_group(
    indexed: Indexed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = ground_truth(indexed.root)
    person, companion = truth.companions[0]
    investigator = as_user(indexed.settings, "demo-investigator")
    probe = str(indexed.root / (truth.person(person).probe or ""))
    found = face_search(probe, SearchFilters(), investigator, **CASE)
    subject = [s.face_id for s in found.sightings if sighting_of(truth, s) == person]
    assert len({s.camera_id for s in found.sightings}) >= 3 and subject
    monkeypatch.setenv("CITYWATCH_STORAGE__ROOT", str(indexed.root))
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(indexed.settings.storage.state_dir))
    monkeypatch.setenv("CITYWATCH_USER", "demo-investigator")
    monkeypatch.delenv("CITYWATCH_API_URL", raising=False)
    sightings = [arg for face_id in subject for arg in ("--sighting", face_id)]
    assert main(["coappear", "--json", "--case", CASE["case_id"], "--why", WHY, *sightings]) == 0
    groups = json.loads(capsys.readouterr().out)["groups"]
    assert groups, "no companion found"
    top = groups[0]
    people = {
        who(
            truth, s["camera_id"], dt.datetime.fromisoformat(s["ts"].replace("Z", "+00:00")), tuple(s["bbox"])
        )
        for s in top["sightings"]
    }
    assert people == {companion}, f"top group is {people}, not {companion}"
    beside: list[AppearanceTruth] = list(truth.appearances_of(companion))
    assert sorted(top["cameras"]) == sorted({a.camera_id for a in beside})
    assert len(top["accompanies"]) >= 3 and top["count"] >= len(beside)
    for rest in groups[1:]:  # the companion is in one group, and it accompanies most
        assert len(rest["accompanies"]) < len(top["accompanies"])


def _recurring_scope(truth: GroundTruth, person_id: str, min_count: int) -> RecurringScope:
    seen = truth.appearances_of(person_id)
    since = min(a.start for a in seen) - dt.timedelta(seconds=5)
    until = max(a.end for a in seen) + dt.timedelta(seconds=5)
    return RecurringScope(tuple(sorted({a.camera_id for a in seen})), since, until, min_count)


def test_recurring_face_is_one_group(indexed: Indexed) -> None:
    truth = ground_truth(indexed.root)
    (recurring,) = truth.recurring
    investigator = as_user(indexed.settings, "demo-investigator")
    scope = _recurring_scope(truth, recurring, min_count=2)
    result = recurring_search(investigator, scope, case_id=CASE["case_id"], justification=WHY)
    labelled = [[sighting_of(truth, s) for s in g.sightings] for g in result.groups]
    with_it = [i for i, people in enumerate(labelled) if recurring in people]
    assert len(with_it) == 1, f"the recurring face is in {len(with_it)} groups: {labelled}"
    group = result.groups[with_it[0]]
    assert set(labelled[with_it[0]]) == {recurring}, labelled[with_it[0]]
    seen = truth.appearances_of(recurring)
    assert set(group.cameras) == {a.camera_id for a in seen}
    for a in seen:  # every walk of it is among the group's sightings
        assert any(
            s.camera_id == a.camera_id and a.start - SLACK <= s.ts <= a.end + SLACK for s in group.sightings
        )


def bcubed(groups: list[list[str]]) -> tuple[float, float]:
    """BCubed precision and recall of groups of labelled items (one label per item)."""
    items = [(gi, label) for gi, group in enumerate(groups) for label in group]
    size = {label: sum(1 for _, x in items if x == label) for _, label in items}
    precision = recall = 0.0
    for gi, label in items:
        same = sum(1 for x in groups[gi] if x == label)
        precision += same / len(groups[gi])
        recall += same / size[label]
    return precision / len(items), recall / len(items)


@dataclass(frozen=True)
class SampleGrouping:
    precision: float
    recall: float
    split: dict[str, list[tuple[str, int, float]]]  # person -> (camera, face px, quality) per group


@pytest.fixture(scope="module")
def sample_grouping(indexed: Indexed) -> SampleGrouping:
    """Every face track of the sample grouped at the default threshold, as recurring faces
    are (tasks/search/grouping.py, before the min-count cut); labels from the truth."""
    truth = ground_truth(indexed.root)
    threshold = group_threshold(indexed.settings)
    everything = track_templates(load_faces(Storage(indexed.settings), "TRUE"))
    templates = groupable(everything, indexed.settings.coappear.min_track_quality)
    left_out = [(t.face.camera_id, round(t.face.quality, 2)) for t in everything if t not in templates]
    grouped = group_tracks(templates, threshold)
    labelled = [[who(truth, t.face.camera_id, t.face.ts, t.face.bbox) for t in g] for g in grouped]
    unmatched = sum(1 for g in labelled for label in g if not label)
    groups = [kept for kept in ([label for label in g if label] for g in labelled) if kept]
    precision, recall = bcubed(groups)
    people = {label for g in groups for label in g}
    assert set(truth.recurring) <= people and {p for pair in truth.companions for p in pair} <= people
    split = {
        person: [
            (t.face.camera_id, round(t.face.bbox[3] - t.face.bbox[1]), round(t.face.quality, 2))
            for g, labels in zip(grouped, labelled)
            for t, label in zip(g, labels)
            if label == person
        ]
        for person in sorted(people)
        if sum(1 for g in groups if person in g) > 1
    }
    print(
        f"\nsample faces: {sum(len(g) for g in groups)} tracks of {len(people)} people "
        f"({unmatched} unmatched left out) in {len(groups)} groups at {threshold}: "
        f"BCubed precision {precision:.3f} recall {recall:.3f}; split: {split}; "
        f"too poor to group (camera, quality): {left_out}"
    )
    return SampleGrouping(precision, recall, split)


def test_grouping_the_sample_faces_bcubed_precision(sample_grouping: SampleGrouping) -> None:
    assert sample_grouping.precision >= 0.95


def test_grouping_the_sample_faces_bcubed_recall(sample_grouping: SampleGrouping) -> None:
    assert sample_grouping.recall >= 0.95, f"split people: {sample_grouping.split}"
