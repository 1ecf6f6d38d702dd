"""The face match rule (citywatch/face_rule.py): track templates and face size decide,
the same way in search and in the watchlist sweep. Real embeddings of real photos
(obama.jpg enrolled / searched, obama2.jpg "captured", biden.jpg someone else)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
import pytest

from citywatch.face_rule import FaceRule
from citywatch.governance.alerts import list_alerts
from citywatch.models.base import FaceDetection
from citywatch.schemas import FaceRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import faces_table
from citywatch.tasks.index.faces import EmbeddedFace, FaceCandidate, link_tracks, track_template
from citywatch.tasks.search.faces import Probe, SearchFilters, search_faces
from citywatch.tasks.sweep import sweep_once
from citywatch.tasks.sweep.watermark import read_new_rows
from tests.watchlist_support import (
    NOW,
    THRESHOLD,
    Faces,
    enrol_active,
    face_row,
    faces,  # noqa: F401 - the module's fixture
    make_settings,
    write_faces,
)


def _embedded(vector: list[float], quality: float, track: int = 0) -> EmbeddedFace:
    face = FaceDetection(bbox=(0.0, 0.0, 60.0, 60.0), score=0.9, landmarks=())
    cand = FaceCandidate(0.0, (0.0, 0.0, 60.0, 60.0), 0.9, quality, np.zeros((4, 4, 3), np.uint8), face)
    return EmbeddedFace(cand, track, 0.0, 1.0, np.asarray(vector, np.float32), b"")


def test_template_is_the_quality_weighted_mean_scaled_to_the_faces_length() -> None:
    faces = [_embedded([1.0, 0.0], 0.75), _embedded([0.0, 1.0], 0.25)]
    template = track_template(faces)
    direction = np.asarray([0.75, 0.25]) / np.linalg.norm([0.75, 0.25])
    assert template == pytest.approx(direction, abs=1e-6)  # both faces have length 1
    assert track_template([faces[1]]) == pytest.approx([0.0, 1.0])  # one face: itself


def test_every_face_of_a_linked_track_carries_one_template() -> None:
    faces = [_embedded([1.0, 0.0], 0.9), _embedded([0.9, 0.1], 0.5), _embedded([0.0, 1.0], 0.1, track=1)]
    linked = link_tracks(faces, max_gap_s=0.1, max_distance=0.2, keep=3)
    by_track: dict[int, list[EmbeddedFace]] = {}
    for face in linked:
        by_track.setdefault(face.track_index, []).append(face)
    first = by_track[0]
    assert len(first) == 2 and all(np.array_equal(f.template, first[0].template) for f in first)
    assert first[0].template == pytest.approx(track_template(first))
    assert by_track[1][0].template == pytest.approx([0.0, 1.0])


def test_rule_reports_the_larger_distance_and_refuses_small_faces() -> None:
    rule = FaceRule(min_px=40, use_template=True)
    assert rule.distance(0.4, 0.5) == 0.5 and rule.distance(0.5, 0.4) == 0.5
    assert FaceRule(min_px=40, use_template=False).distance(0.4, 0.9) == 0.4
    assert rule.accepts_size(40) and not rule.accepts_size(39.9)


def test_face_px_is_the_face_box_smaller_side() -> None:
    row = FaceRow(
        id="f", segment_id="s", camera_id="c", ts=NOW, bbox=(10.0, 20.0, 62.0, 90.0), det_score=0.9,
        quality=0.5, embedding=np.ones(4, np.float32), track_id="t", track_start=NOW, track_end=NOW,
        thumb_uri="", lat=None, lon=None, model="m",
    )  # fmt: skip
    assert row.face_px == 52.0 and np.array_equal(row.template, row.embedding)


def _search(storage: Storage, settings: Settings, vector: np.ndarray) -> list[str]:
    probe = Probe("obama.jpg", "", FaceDetection((0, 0, 1, 1), 1.0, ()), vector, 1)
    found = search_faces(storage, settings, probe, SearchFilters(), top_k=10, threshold=THRESHOLD)
    return [s.face_id for s in found]


def _lucky_frame(faces: Faces) -> FaceRow:
    """A track whose one face looks like obama but whose template is biden's: a lucky frame."""
    return dataclasses.replace(face_row(faces, faces.obama, track=3, camera="cam-b"), template=faces.biden)


def _small(faces: Faces) -> FaceRow:
    """A clear obama face, 30 px wide."""
    return dataclasses.replace(
        face_row(faces, faces.obama, track=4, camera="cam-c"), bbox=(10.0, 10.0, 40.0, 44.0), face_px=30.0
    )


def test_search_needs_the_template_and_a_face_big_enough(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    enrolled = enrol_active(storage, faces)  # only for its embedding of obama.jpg
    probe = np.asarray(enrolled.embeddings[0], np.float32)
    good = face_row(faces, faces.obama, track=1)
    write_faces(storage, faces, [good, _lucky_frame(faces), _small(faces)])
    assert _search(storage, settings, probe) == [good.id]
    lax = make_settings(tmp_path, faces__match_template=False, faces__match_min_px=0)
    assert set(_search(storage, lax, probe)) == {good.id, _lucky_frame(faces).id, _small(faces).id}
    found = search_faces(
        storage, settings, Probe("p", "", FaceDetection((0, 0, 1, 1), 1.0, ()), probe, 1), SearchFilters(),
        top_k=10, threshold=THRESHOLD,
    )  # fmt: skip
    assert found[0].face_px == 50.0 and found[0].best_distance is not None
    assert found[0].distance >= found[0].best_distance


def test_sweep_applies_the_same_rule(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    enrol_active(storage, faces)
    write_faces(storage, faces, [face_row(faces, faces.obama, track=1), _lucky_frame(faces), _small(faces)])
    assert sweep_once(storage, settings, now=NOW).alerts_new == 1
    assert [a.track_id for a in list_alerts(storage)] == ["cam-a/S1#t0001"]

    lax = make_settings(tmp_path / "lax", faces__match_template=False, faces__match_min_px=0)
    lax_storage = Storage(lax)
    enrol_active(lax_storage, faces)
    write_faces(
        lax_storage, faces, [face_row(faces, faces.obama, track=1), _lucky_frame(faces), _small(faces)]
    )
    assert sweep_once(lax_storage, lax, now=NOW).alerts_new == 3


def test_an_older_faces_table_gets_templates_and_sizes_and_still_alerts(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    enrol_active(storage, faces)
    dim = faces.model.embedder.dim
    row = face_row(faces, faces.obama, track=1)
    old_schema = pa.schema([f for f in FaceRow.schema(dim) if f.name not in ("template", "face_px")])
    data = rows_to_arrow([row], FaceRow.schema(dim)).select(old_schema.names).cast(old_schema)
    lancedb.connect(storage.db.uri).create_table(FaceRow.TABLE, data=data, schema=old_schema)
    rows, _ = read_new_rows(storage, FaceRow.TABLE, None, NOW)  # the sweep's reader upgrades the table
    assert rows.column("face_px").to_pylist() == [50.0]
    assert rows.column("template").to_pylist() == rows.column("embedding").to_pylist()
    assert set(faces_table(storage.db, dim).schema.names) == set(FaceRow.schema(dim).names)
    assert sweep_once(storage, settings, now=NOW).alerts_new == 1
