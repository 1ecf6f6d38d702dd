"""End to end: what makes the sample's export evidence (see tests/export_support.py).

- no bystander's face from the sample's *ground truth* (not from a detector, which
  could miss the same face the redactor missed) is left clear in any exported frame:
  every truth box is far from its source pixels (PSNR < 25 dB, where an untouched face
  stays above 30 dB);
- the export verifies on "another machine" with only the public key; a re-signed
  manifest and a missing source each fail verify naming the check; the export holds
  its source segments for the case (audited).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from citywatch.cli.main import main
from citywatch.sample.dataset import load_ground_truth
from citywatch.storage import Storage
from tests.export_support import (  # noqa: F401 - fixtures
    CASE,
    Exported,
    _export_frames,
    _psnr,
    _source_frames,
    cli_env,
    export_copy,
    exported,
    root,
)

pytestmark = pytest.mark.slow
CLEAR_FACE_DB = 25.0  # a truth face box this close to its source pixels was left clear


@dataclass(frozen=True)
class BoxCheck:
    where: str
    psnr: float


def _box_at(boxes: list[tuple[dt.datetime, tuple[int, int, int, int]]], ts: dt.datetime):  # noqa: ANN202
    """The truth box at ``ts``, interpolated between two truth boxes at most 0.6 s apart."""
    for (ta, a), (tb, b) in zip(boxes, boxes[1:]):
        if ta <= ts <= tb and (tb - ta).total_seconds() <= 0.6:
            w = (ts - ta) / (tb - ta)
            return tuple(round(p + (q - p) * w) for p, q in zip(a, b))
    return None


@pytest.fixture(scope="module")
def bystander_boxes(exported: Exported) -> list[BoxCheck]:
    """Every ground-truth face of anyone but the subject, in every exported frame it is
    on (boxes between the truth's 0.5 s samples interpolated), against the source pixels."""
    truth = load_ground_truth(exported.root / "sample" / "ground_truth.json")
    m = exported.manifest
    keys = {f"footage/{s['segment_id']}.mp4" for s in m["sources"]}
    starts = {s.key: s.start for s in truth.segments}
    tracks = [
        (
            a.person_id,
            [(starts[a.key] + dt.timedelta(seconds=b.t), (b.x1, b.y1, b.x2, b.y2)) for b in a.boxes],
        )
        for a in truth.appearances
        if a.camera_id == m["camera_id"] and a.key in keys and a.person_id != exported.person_id
    ]
    checks = []
    for n, ((ts, src), out) in enumerate(
        zip(_source_frames(m), _export_frames(exported.result.clip_uri), strict=True)
    ):
        for person, boxes in tracks:
            box = _box_at(boxes, ts)
            if box is None:
                continue
            x1, y1, x2, y2 = (max(0, v) for v in box)
            if x2 - x1 >= 4 and y2 - y1 >= 4:
                where = f"frame {n} ({ts:%H:%M:%S.%f}): {person} at {(x1, y1, x2, y2)}"
                checks.append(BoxCheck(where, _psnr(src[y1:y2, x1:x2], out[y1:y2, x1:x2])))
    return checks


def test_no_ground_truth_bystander_face_is_left_clear(bystander_boxes: list[BoxCheck]) -> None:
    assert len(bystander_boxes) >= 10, "the clip should show bystanders' faces"
    clear = [f"{b.where}: {b.psnr:.1f} dB" for b in bystander_boxes if b.psnr >= CLEAR_FACE_DB]
    assert clear == []


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
    for name in ("CITYWATCH_STORAGE__ROOT", "CITYWATCH_STORAGE__STATE_DIR", "CITYWATCH_USER"):
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
