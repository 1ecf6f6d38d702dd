"""End to end: a redacted evidence export of the sample, checked as an investigator would.

On a copy of the shared ``indexed`` sample: export one person's sighting on the
camera with a privacy mask, padded so the clip crosses into the next segment; then
run the real detector over every exported frame and its source frame:

- no face is found anywhere but on the subject, and none inside a privacy mask;
- outside the obscured regions (masks + blurred boxes from the redaction log) each
  frame stays within codec noise of the source: PSNR >= 30 dB in every frame
  (35 dB on average);
- the subject's face is found in >= 90 % of the frames where it is found in the source;
- no bystander's face from the sample's *ground truth* (not from a detector, which
  could miss the same face the redactor missed) is left clear in any exported frame:
  every truth box is far from its source pixels (PSNR < 25 dB, where an untouched face
  stays above 30 dB);
- ``export verify`` passes, also on "another machine" with only the public key; one
  flipped byte of the clip or the manifest, a re-signed manifest and a missing source
  each fail it naming the check; bad requests and a deleted segment get clear
  messages / a gap; the export holds its source segments for the case (audited).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from citywatch.cameras import parse_cameras
from citywatch.cli.main import main
from citywatch.models.faces import load_face_model
from citywatch.sample.dataset import load_ground_truth
from citywatch.storage import Storage
from citywatch.tasks.tracking import iou
from tests.conftest import settings_for

pytestmark = pytest.mark.slow
CASE = "CASE-E2E-1"
PSNR_MIN_DB, PSNR_MEAN_DB = 30.0, 35.0
CLEAR_FACE_DB = 25.0  # a truth face box this close to its source pixels was left clear
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


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def exported(root: Path, prefect_api: str) -> Exported:
    from citywatch.flows.redact_export import redact_export
    from citywatch.tasks.export_request import ExportRequest

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


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


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


@dataclass(frozen=True)
class BoxCheck:
    where: str
    psnr: float


@pytest.fixture(scope="module")
def bystander_boxes(exported: Exported) -> list[BoxCheck]:
    """Every ground-truth face box of anyone but the subject, in every exported frame it
    falls on, compared with the same pixels of the source frame."""
    truth = load_ground_truth(exported.root / "sample" / "ground_truth.json")
    m = exported.manifest
    keys = {f"footage/{s['segment_id']}.mp4" for s in m["sources"]}
    starts = {s.key: s.start for s in truth.segments}
    boxes = [
        (starts[a.key] + dt.timedelta(seconds=b.t), (b.x1, b.y1, b.x2, b.y2), a.person_id)
        for a in truth.appearances
        if a.camera_id == m["camera_id"] and a.key in keys and a.person_id != exported.person_id
        for b in a.boxes
    ]
    half_frame = dt.timedelta(seconds=0.5 / truth.fps)
    checks = []
    for n, ((ts, src), out) in enumerate(
        zip(_source_frames(m), _export_frames(exported.result.clip_uri), strict=True)
    ):
        for at, (x1, y1, x2, y2), person in boxes:
            if abs(ts - at) <= half_frame and x2 - x1 >= 4 and y2 - y1 >= 4:
                where = f"frame {n} ({ts:%H:%M:%S.%f}): {person} at {(x1, y1, x2, y2)}"
                checks.append(BoxCheck(where, _psnr(src[y1:y2, x1:x2], out[y1:y2, x1:x2])))
    return checks


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


def test_no_ground_truth_bystander_face_is_left_clear(bystander_boxes: list[BoxCheck]) -> None:
    assert len(bystander_boxes) >= 10, "the clip should show bystanders' faces"
    clear = [f"{b.where}: {b.psnr:.1f} dB" for b in bystander_boxes if b.psnr >= CLEAR_FACE_DB]
    assert clear == []


def test_subject_face_stays_clear(analysis: Analysis) -> None:
    assert analysis.subject_in_source >= 10
    assert analysis.subject_in_export >= 0.9 * analysis.subject_in_source


# --- verify -----------------------------------------------------------------------------------
@pytest.fixture()
def cli_env(exported: Exported, monkeypatch: pytest.MonkeyPatch) -> Exported:
    monkeypatch.setenv("CITYWATCH_STORAGE_ROOT", str(exported.root))
    monkeypatch.setenv("CITYWATCH_STATE_DIR", str(exported.root.parent / "state"))
    monkeypatch.setenv("CITYWATCH_USER", "demo-investigator")
    return exported


@pytest.fixture()
def export_copy(exported: Exported, tmp_path: Path) -> Path:
    """The export's files in a folder of their own (tampering must not hurt other tests)."""
    folder = tmp_path / "evidence"
    shutil.copytree(Path(exported.result.manifest_uri).parent, folder)
    return folder


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


# --- signatures and custody -------------------------------------------------------------------
def test_a_genuine_export_verifies_on_another_machine(
    cli_env: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["keys", "public"]) == 0
    public = tmp_path / "citywatch-export.keys"
    public.write_text(capsys.readouterr().out)
    elsewhere = tmp_path / "elsewhere"  # a fresh machine: no state dir, no keys, no storage root
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for name in ("CITYWATCH_STORAGE_ROOT", "CITYWATCH_STATE_DIR", "CITYWATCH_USER"):
        monkeypatch.delenv(name)
    manifest = cli_env.result.manifest_uri
    assert main(["export", "verify", manifest, "--public-key", str(public)]) == 0
    assert "export verified" in capsys.readouterr().out
    assert main(["export", "verify", manifest]) == 1  # no key trusted here
    assert "signature: no trusted public key" in capsys.readouterr().out
    assert list(elsewhere.rglob("*")) == []  # verify wrote nothing, no key


def test_a_manifest_resigned_with_another_key_fails_verify(
    cli_env: Exported, export_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from citywatch.governance.keys import FileKeyStore
    from citywatch.governance.manifest import render_manifest, sign

    path = export_copy / f"{cli_env.result.export_id}.manifest.json"
    document = json.loads(path.read_text())
    document["justification"] = "routine check"
    forger = FileKeyStore(tmp_path / "forger.pem", "export").ensure()
    document["signer"] = {"algorithm": "Ed25519", "key_id": forger.key_id, "fingerprint": forger.fingerprint}
    path.write_bytes(render_manifest(sign(document, forger)))
    assert main(["export", "verify", str(path)]) == 1
    failed = capsys.readouterr().out.split("FAILED", 1)[1]
    assert "signature:" in failed and forger.key_id in failed and "not a trusted key" in failed


def test_a_missing_source_fails_verify_unless_allowed(
    cli_env: Exported, capsys: pytest.CaptureFixture[str]
) -> None:
    source = Path(cli_env.manifest["sources"][0]["uri"])
    hidden = source.with_name(f".{source.name}.hidden")
    source.rename(hidden)
    try:
        assert main(["export", "verify", cli_env.result.manifest_uri]) == 1
        failed = capsys.readouterr().out.split("FAILED", 1)[1]
        assert (
            f"source {cli_env.manifest['sources'][0]['segment_id']}:" in failed
            and "no longer exists" in failed
        )
        assert main(["export", "verify", cli_env.result.manifest_uri, "--allow-missing-source"]) == 0
        assert "export verified" in capsys.readouterr().out
    finally:
        hidden.rename(source)


def test_the_export_holds_its_sources_for_the_case(cli_env: Exported) -> None:
    from citywatch.governance.audit_log import AuditLog
    from citywatch.tasks.retention import held_segments

    storage = Storage(cli_env.settings)
    sources = {s["segment_id"] for s in cli_env.manifest["sources"]}
    assert sources <= held_segments(storage)
    holds = [
        r
        for r in AuditLog(storage).rows()
        if r.action == "case_hold" and cli_env.result.export_id in r.params
    ]
    assert [(r.user, r.case_id, r.outcome) for r in holds] == [("demo-investigator", CASE, "ok")]
    assert all(s["sha256"] and len(s["sha256"]) == 64 for s in cli_env.manifest["sources"])
