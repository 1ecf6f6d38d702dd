"""The CLI as a user runs it: JSON output, probe errors, re-runs, bad segments."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from citywatch.cli.main import main
from citywatch.sample.dataset import load_ground_truth
from citywatch.sample.media import fetch_media

pytestmark = pytest.mark.slow


@pytest.fixture()
def cli_env(indexed, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("CITYWATCH_STORAGE__ROOT", str(indexed.root))
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(indexed.root.parent / "state"))
    monkeypatch.setenv("CITYWATCH_USER", "demo-investigator")
    return indexed


CASE_ARGS = ["--case", "TEST-1", "--why", "automated end-to-end test of citywatch"]


def test_search_json_output(cli_env, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    truth = load_ground_truth(cli_env.root / "sample" / "ground_truth.json")
    person = next(p for p in truth.people if p.person_id == "obama")
    assert (
        main(["search", "face", str(cli_env.root / person.probe), "--json", "--top-k", "3", *CASE_ARGS]) == 0
    )
    results = json.loads(capsys.readouterr().out)
    assert 1 <= len(results) <= 3
    for item in results:
        for key in ("camera_id", "ts", "distance", "similarity", "bbox", "segment_uri", "thumb_uri"):
            assert key in item
        assert item["ts"].endswith("Z")
        assert Path(item["segment_uri"]).is_file() and Path(item["thumb_uri"]).is_file()
    assert [r["distance"] for r in results] == sorted(r["distance"] for r in results)


def _write(path: Path, image: np.ndarray) -> str:
    cv2.imwrite(str(path), image)
    return str(path)


def test_probe_errors_exit_2(cli_env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    blank = _write(tmp_path / "blank.jpg", np.full((480, 640, 3), 128, np.uint8))
    assert main(["search", "face", blank, *CASE_ARGS]) == 2
    assert "no face found" in capsys.readouterr().err
    group = str(fetch_media() / "t1.jpg")
    assert main(["search", "face", group, *CASE_ARGS]) == 2
    err = capsys.readouterr().err
    assert "6 faces found" in err and "--face N" in err
    assert main(["search", "face", group, "--face", "1", "--json", *CASE_ARGS]) == 0
    capsys.readouterr()
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not an image")
    assert main(["search", "face", str(junk), *CASE_ARGS]) == 2
    assert "not a readable image" in capsys.readouterr().err
    assert main(["search", "face", str(tmp_path / "missing.jpg"), *CASE_ARGS]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.fixture()
def own_copy(indexed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN001, ANN201
    """A private copy of the indexed root, for tests that add footage."""
    root = tmp_path / "data"
    shutil.copytree(indexed.root, root)
    monkeypatch.setenv("CITYWATCH_STORAGE__ROOT", str(root))
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CITYWATCH_USER", "demo-admin")
    return root


def test_reindex_adds_nothing_then_new_and_bad_segments(own_copy: Path, capsys) -> None:  # noqa: ANN001
    import lancedb

    root = own_copy
    db = lancedb.connect(str(root / "db"))
    faces_before = db.open_table("faces").count_rows()
    assert main(["index"]) == 0
    out = capsys.readouterr().out
    assert "0 indexed now, 0 failed" in out
    assert db.open_table("faces").count_rows() == faces_before

    # a new segment (copy of an existing one, a day later), plus three broken files
    truth = load_ground_truth(root / "sample" / "ground_truth.json")
    seg = truth.segments[0]
    source = root / seg.key
    cam_dir = source.parent
    new = cam_dir / "20261121T080000Z.mp4"
    shutil.copy(source, new)
    (cam_dir / "20261121T090000Z.mp4").write_bytes(b"")
    data = source.read_bytes()
    (cam_dir / "20261121T100000Z.mp4").write_bytes(data[: len(data) // 2])
    (cam_dir / "20261121T110000Z.mp4").write_text("not a video at all\n")
    assert main(["index"]) == 1  # segments failed in this run: scripts must notice (issue 13)
    out = capsys.readouterr().out
    assert "1 indexed now, 3 failed" in out
    assert "empty (0 bytes)" in out
    assert out.count("FAILED") == 3
    segments = db.open_table("segments").to_arrow().to_pylist()
    states = {r["id"]: (r["state"], r["error"]) for r in segments}
    cam = seg.camera_id
    assert states[f"{cam}/20261121T080000Z"][0] == "done"
    for stamp in ("20261121T090000Z", "20261121T100000Z", "20261121T110000Z"):
        state, error = states[f"{cam}/{stamp}"]
        assert state == "failed" and error
    added = db.open_table("faces").count_rows() - faces_before
    original = db.open_table("faces").count_rows(f"segment_id = '{cam}/{source.stem}'")
    assert added == original  # the copied segment yields the same faces, once
    # a second run skips the failed ones and changes nothing
    assert main(["index"]) == 0
    assert "0 indexed now, 0 failed, 3 skipped" in capsys.readouterr().out
