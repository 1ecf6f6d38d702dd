"""The evidence export the end-to-end tests share: one redacted export of the indexed
sample (session-scoped, so tests/test_export_e2e.py and tests/test_export_evidence_e2e.py
look at the same export), and helpers to read its frames beside the source frames."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

from citywatch.cameras import parse_cameras
from citywatch.sample.dataset import load_ground_truth
from citywatch.storage import Storage
from citywatch.tasks.index.tracking import iou
from tests.conftest import settings_for

CASE = "CASE-E2E-1"
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Exported:
    root: Path
    settings: object
    result: object  # flows.redact_export.ExportResult
    manifest: dict
    log: dict
    person_id: str
    subject_boxes: list[tuple[dt.datetime, Box]]  # ground truth of the subject's face
    masks: list[list[list[int]]]


@pytest.fixture(scope="session")
def root(indexed, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    """A copy of the indexed sample whose segments table points at the copy's files."""
    copy = tmp_path_factory.mktemp("export") / "data"
    shutil.copytree(indexed.root, copy)
    table = Storage(settings_for(copy, copy.parent)).db.open_table("segments")
    for row in table.to_arrow().select(["id", "uri"]).to_pylist():
        moved = copy / Path(row["uri"]).relative_to(indexed.root)
        table.update(where=f"id = '{row['id']}'", values={"uri": str(moved)})
    return copy


def _truth_boxes(truth, appearance) -> list[tuple[dt.datetime, Box]]:  # noqa: ANN001
    start = next(s.start for s in truth.segments if s.key == appearance.key)
    return [(start + dt.timedelta(seconds=b.t), (b.x1, b.y1, b.x2, b.y2)) for b in appearance.boxes]


def _pick_sighting(root: Path, settings) -> tuple[str, float, str, list, list]:  # noqa: ANN001
    """A sighting on a masked camera that ends near a segment boundary, and its pad."""
    truth = load_ground_truth(root / "sample" / "ground_truth.json")
    cameras = parse_cameras((root / "cameras.yaml").read_text(), "cameras.yaml")
    masked = {c.id: [[list(p) for p in poly] for poly in c.privacy_masks] for c in cameras if c.privacy_masks}
    candidates = []
    for a in truth.appearances:
        segs = sorted((s for s in truth.segments if s.camera_id == a.camera_id), key=lambda s: s.start)
        keys = [s.key for s in segs]
        k = keys.index(a.key)
        if a.camera_id in masked and k + 1 < len(segs):
            candidates.append(((segs[k + 1].start - a.end).total_seconds(), a))
    assert candidates, "the sample needs a person on a masked camera before a segment boundary"
    _, appearance = min(candidates, key=lambda c: c[0])
    boxes = _truth_boxes(truth, appearance)

    def truth_overlap(face: dict) -> float:
        near = [b for t, b in boxes if abs((t - face["ts"]).total_seconds()) < 0.3]
        return max((iou(tuple(face["bbox"]), b) for b in near), default=0.0)

    faces = [
        f
        for f in Storage(settings).db.open_table("faces").to_arrow().to_pylist()
        if f["camera_id"] == appearance.camera_id and appearance.start <= f["ts"] <= appearance.end
    ]
    best = max(faces, key=truth_overlap)
    assert truth_overlap(best) > 0.3, f"{appearance.person_id} was not indexed"
    boundary = next(
        s.start for s in truth.segments if s.camera_id == appearance.camera_id and s.start > appearance.start
    )
    pad = max(1.0, (boundary - best["track_end"]).total_seconds() + 1.5)
    return best["id"], pad, appearance.person_id, boxes, masked[appearance.camera_id]


@pytest.fixture(scope="session")
def exported(root: Path, prefect_api: str) -> Exported:
    from citywatch.flows.redact_export import redact_export
    from citywatch.tasks.export.request import ExportRequest

    settings = settings_for(root, root.parent, user="demo-investigator")
    sighting, pad, person, boxes, masks = _pick_sighting(root, settings)
    result = redact_export(
        ExportRequest(
            case_id=CASE,
            justification="end-to-end test of the evidence export",
            sighting_id=sighting,
            pad_s=pad,
        ),
        settings,
    )
    manifest = json.loads(Path(result.manifest_uri).read_text())
    log = json.loads(Path(result.redaction_log_uri).read_text())
    return Exported(root, settings, result, manifest, log, person, boxes, masks)


# --- frames side by side --------------------------------------------------------------------
def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _source_frames(manifest: dict) -> Iterator[tuple[dt.datetime, np.ndarray]]:
    for src in manifest["sources"]:
        start, lo, hi = (_parse(src[k]) for k in ("segment_start", "used_from", "used_to"))
        with av.open(src["uri"]) as container:
            first = None
            for frame in container.decode(video=0):
                first = frame.time if first is None else first
                ts = start + dt.timedelta(seconds=frame.time - first)
                if lo <= ts <= hi:
                    yield ts, frame.to_ndarray(format="bgr24")


def _export_frames(path: str) -> Iterator[np.ndarray]:
    with av.open(path) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="bgr24")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture()
def cli_env(exported: Exported, monkeypatch: pytest.MonkeyPatch) -> Exported:
    monkeypatch.setenv("CITYWATCH_STORAGE__ROOT", str(exported.root))
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(exported.root.parent / "state"))
    monkeypatch.setenv("CITYWATCH_USER", "demo-investigator")
    return exported


@pytest.fixture()
def export_copy(exported: Exported, tmp_path: Path) -> Path:
    """The export's files in a folder of their own (tampering must not hurt other tests)."""
    folder = tmp_path / "evidence"
    shutil.copytree(Path(exported.result.manifest_uri).parent, folder)
    return folder
