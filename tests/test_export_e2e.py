"""End to end: a redacted evidence export of the sample, checked as an investigator would.

On a copy of the shared ``indexed`` sample: export one person's sighting on the
camera with a privacy mask, padded so the clip crosses into the next segment; then
run the real detector over every exported frame and its source frame:

- no face is found anywhere but on the subject, and none inside a privacy mask;
- outside the obscured regions (masks + blurred boxes from the redaction log) each
  frame stays within codec noise of the source: PSNR >= 30 dB in every frame
  (35 dB on average);
- the subject's face is found in >= 90 % of the frames where it is found in the source;
- ``export verify`` passes, and one flipped byte of the clip or the manifest fails it
  naming the check; bad requests and a deleted segment get clear messages / a gap.

The export itself is tests/export_support.py's; ground-truth bystanders, verifying
elsewhere, re-signing and custody are in tests/test_export_evidence_e2e.py.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from citywatch.cli.main import main
from citywatch.models.faces import load_face_model
from citywatch.sample.dataset import load_ground_truth
from citywatch.storage import Storage
from citywatch.tasks.index.tracking import iou
from tests.export_support import (  # noqa: F401 - fixtures
    CASE,
    Box,
    Exported,
    _export_frames,
    _parse,
    _psnr,
    _source_frames,
    cli_env,
    export_copy,
    exported,
    root,
)

pytestmark = pytest.mark.slow
PSNR_MIN_DB, PSNR_MEAN_DB = 30.0, 35.0


def _subject_at(boxes: list[tuple[dt.datetime, Box]], ts: dt.datetime) -> Box | None:
    """The subject's true face box at ``ts``: interpolated between the truth's boxes
    (one per 0.5 s), extrapolated up to 0.6 s beyond the first and last one."""
    if len(boxes) < 2:
        return None
    pairs = list(zip(boxes, boxes[1:]))
    for (ta, a), (tb, b) in [pairs[0], *pairs, pairs[-1]]:
        w = (ts - ta) / (tb - ta)
        inside = 0 <= w <= 1
        before = (ta, a) == boxes[0] and w < 0 and (ta - ts).total_seconds() <= 0.6
        after = (tb, b) == boxes[-1] and w > 1 and (ts - tb).total_seconds() <= 0.6
        if inside or before or after:
            return tuple(av_ + (bv - av_) * w for av_, bv in zip(a, b))  # type: ignore[return-value]
    return None


@dataclass(frozen=True)
class Analysis:
    frames: int
    leaks: list[str]
    psnr: list[float]
    subject_in_source: int
    subject_in_export: int


@pytest.fixture(scope="module")
def analysis(exported: Exported) -> Analysis:
    detector = load_face_model().detector  # the indexing detector at its own settings
    log = exported.log
    obscured: dict[int, list[tuple[int, int, int, int]]] = {}
    for track in log["tracks"]:
        if track["role"] == "obscured":
            for f, x1, y1, x2, y2, _how in track["boxes"]:
                obscured.setdefault(f, []).append((x1, y1, x2, y2))
    mask = np.zeros((720, 1280), np.uint8)
    for poly in exported.masks:
        cv2.fillPoly(mask, [np.asarray(poly, np.int32)], 255)
    leaks, psnr = [], []
    in_source = in_export = n = 0
    for n, ((ts, src), out) in enumerate(
        zip(_source_frames(exported.manifest), _export_frames(exported.result.clip_uri), strict=True)
    ):
        subject = _subject_at(exported.subject_boxes, ts)
        src_subject = [
            d.bbox for d in (detector.detect(src) if subject else []) if iou(d.bbox, subject) > 0.3
        ]
        for det in detector.detect(out):
            cx, cy = (det.bbox[0] + det.bbox[2]) / 2, (det.bbox[1] + det.bbox[3]) / 2
            on_subject = subject is not None and iou(det.bbox, subject) > 0.3
            if mask[int(min(cy, 719)), int(min(cx, 1279))] or not on_subject:
                leaks.append(f"frame {n} ({ts:%H:%M:%S.%f}): face at {tuple(int(v) for v in det.bbox)}")
            elif src_subject and iou(det.bbox, src_subject[0]) > 0.3:
                in_export += 1
        in_source += bool(src_subject)
        untouched = mask == 0
        for x1, y1, x2, y2 in obscured.get(n, []):
            untouched[y1:y2, x1:x2] = False
        psnr.append(_psnr(src[untouched], out[untouched]))
    return Analysis(n + 1, leaks, psnr, in_source, in_export)


# --- the export -------------------------------------------------------------------------------
def test_clip_crosses_the_segment_boundary_without_a_gap(exported: Exported) -> None:
    m = exported.manifest
    assert len(m["sources"]) == 2 and m["gaps"] == []
    assert sum(s["clip_frames"] for s in m["sources"]) == m["encoding"]["frames"] == exported.log["frames"]
    assert m["case_id"] == CASE and m["exported_by"] == "demo-investigator"
    assert m["justification"] and m["request"]["kind"] == "sighting"
    assert m["subject"]["matched_by"] == "embedding" and m["redaction"]["tracks_obscured"] >= 1
    assert Path(exported.result.clip_uri).parent == exported.root / "exports" / CASE


def test_no_face_but_the_subject_and_none_in_masks(analysis: Analysis) -> None:
    assert analysis.frames > 100
    assert analysis.leaks == []


def test_pixels_outside_redactions_are_unchanged_within_codec_noise(analysis: Analysis) -> None:
    assert min(analysis.psnr) >= PSNR_MIN_DB, f"worst frame {min(analysis.psnr):.1f} dB"
    assert float(np.mean(analysis.psnr)) >= PSNR_MEAN_DB


def test_subject_face_stays_clear(analysis: Analysis) -> None:
    assert analysis.subject_in_source >= 10
    assert analysis.subject_in_export >= 0.9 * analysis.subject_in_source


def test_verify_passes(cli_env: Exported, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "verify", cli_env.result.manifest_uri]) == 0
    assert "export verified" in capsys.readouterr().out


@pytest.mark.parametrize(("suffix", "check"), [(".mp4", "clip"), (".manifest.json", "signature")])
def test_one_flipped_byte_fails_verify(
    cli_env: Exported, export_copy: Path, suffix: str, check: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = export_copy / f"{cli_env.result.export_id}{suffix}"
    data = bytearray(path.read_bytes())
    at = data.index(b'"case_id": "') + 12 if suffix.endswith("json") else len(data) // 2
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    assert main(["export", "verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "export verification FAILED" in out and f"{check}:" in out.split("FAILED", 1)[1]


# --- bad requests and gaps --------------------------------------------------------------------
def _export(*args: str) -> list[str]:
    return ["export", "--case", CASE, "--why", "end-to-end test of export errors", *args]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--camera", "cam-nope", "--since", "2026-11-20T08:00:00Z", "--until", "2026-11-20T08:00:10Z"],
            "camera 'cam-nope' is not registered",
        ),
        (
            [
                "--camera",
                "cam-nathan-rd",
                "--since",
                "2026-11-20T08:00:10Z",
                "--until",
                "2026-11-20T08:00:10Z",
            ],
            "is empty",
        ),
        (
            [
                "--camera",
                "cam-nathan-rd",
                "--since",
                "2026-11-21T08:00:00Z",
                "--until",
                "2026-11-21T08:01:00Z",
            ],
            "no usable footage",
        ),
        (["--sighting", "no-such-face"], "sighting 'no-such-face' does not exist"),
        (["--sighting", "x", "--since", "2026-11-20T08:00:00Z"], "go with --camera"),
    ],
    ids=["unknown-camera", "empty-range", "no-footage", "unknown-sighting", "mixed-modes"],
)
def test_bad_requests_say_what_is_wrong(
    cli_env: Exported, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_export(*args)) == 2
    assert message in capsys.readouterr().err


def test_alert_needs_the_alerts_table(cli_env: Exported, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow as pa

    db = Storage(cli_env.settings).db
    if "alerts" not in db.list_tables().tables:
        assert main(_export("--alert", "A-1")) == 2
        assert "no alerts table yet" in capsys.readouterr().err
        db.create_table("alerts", pa.table({"id": ["A-1"], "sighting_id": ["gone-face"]}))
    assert main(_export("--alert", "A-1")) == 2
    assert "sighting 'gone-face' does not exist" in capsys.readouterr().err


def test_a_deleted_segment_is_reported_as_a_gap(
    cli_env: Exported, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = load_ground_truth(cli_env.root / "sample" / "ground_truth.json")
    camera = next(s.camera_id for s in truth.segments if s.camera_id != cli_env.manifest["camera_id"])
    first, second = sorted((s for s in truth.segments if s.camera_id == camera), key=lambda s: s.start)[:2]
    (cli_env.root / second.key).unlink()
    probe = next(p for p in truth.people if p.probe)
    since, until = second.start - dt.timedelta(seconds=2), second.start + dt.timedelta(seconds=2)
    assert (
        main(
            _export(
                "--camera",
                camera,
                "--since",
                since.isoformat(),
                "--until",
                until.isoformat(),
                "--probe",
                str(cli_env.root / probe.probe),
                "--json",
            )
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    manifest = json.loads(Path(result["manifest_uri"]).read_text())
    assert [s["segment_id"] for s in manifest["sources"]] == [f"{camera}/{first.start:%Y%m%dT%H%M%SZ}"]
    (gap,) = manifest["gaps"]
    assert "is missing" in gap["reason"] and _parse(gap["end"]) == until
    assert manifest["request"]["probe_sha256"]
    assert main(["export", "verify", result["manifest_uri"]]) == 0
