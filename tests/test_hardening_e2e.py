"""End to end (issue 13, item 1): a camera with a bad id never silences the alerts.

On a copy of the indexed sample, a footage folder ``cam-nl\\n`` (a trailing newline)
appears, holding a copy of footage in which a watched plate passes; and a plate row with
that camera id is in the plates table, as a version that let such an id in wrote it.
Then, through the CLI against the real Prefect server: ``index`` skips the folder,
names it on one line and audits it, registering no camera; the plate is enrolled and
approved; ``sweep`` exits 0, skips the bad row, lists it and audits it, and alerts on
the watched plate where another camera saw it. The next sweep runs clean (the
watermark moved past the bad row).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from citywatch.cli.main import main
from citywatch.governance.alerts import list_alerts
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.watchlist import list_entries
from citywatch.sample.truth import VehicleTruth, load_ground_truth
from citywatch.schemas import CameraRow, PlateRow, SegmentRow, arrow_to_rows, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import cameras_table, plates_table, segments_table, upsert

pytestmark = pytest.mark.slow

BAD = "cam-nl\n"
WHY = ["--case", "TEST-13", "--why", "stolen van reported this morning"]


@pytest.fixture(scope="module")
def root(indexed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:  # noqa: ANN001
    """A copy of the indexed sample, with the machine state that signed its audit records."""
    root = tmp_path_factory.mktemp("bad-camera") / "data"
    shutil.copytree(indexed.root, root)
    keys = Path(indexed.settings.storage.state_dir) / "keys"
    if keys.is_dir():
        shutil.copytree(keys, root.parent / "state" / "keys")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(root.parent / "state"))
        yield root


def cli(root: Path, user: str, *args: str) -> int:
    return main(["--root", str(root), "--user", user, *args])


def watched_vehicle(root: Path, storage: Storage) -> tuple[VehicleTruth, PlateRow]:
    """A car whose plate the index read exactly, and that read's row."""
    truth = load_ground_truth(root / "sample" / "ground_truth.json")
    rows = arrow_to_rows(plates_table(storage.db).to_arrow(), PlateRow)
    for vehicle in sorted(truth.vehicles, key=lambda v: -v.min_plate_px):
        read = [r for r in rows if r.camera_id == vehicle.camera_id and r.text == vehicle.plate]
        if read and not read[0].low_confidence:
            return vehicle, read[0]
    raise AssertionError("the sample has no plate read exactly")


def test_a_camera_with_a_bad_id_never_stops_the_alerts_of_the_others(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = Storage(Settings(storage__root=str(root)))
    vehicle, read = watched_vehicle(root, storage)
    segments_before = segments_table(storage.db).count_rows()

    # the bad camera appears: a footage folder whose name ends in a newline, showing the car
    src = root / vehicle.key
    bad_folder = root / "footage" / BAD
    bad_folder.mkdir()
    shutil.copy(src, bad_folder / src.name)
    capsys.readouterr()
    assert cli(root, "demo-admin", "index") == 0
    out = capsys.readouterr().out
    skipped = [line for line in out.splitlines() if "not a valid camera id" in line]
    assert len(skipped) == 1 and repr(str(bad_folder / src.name)) in skipped[0], out
    cameras = {c.id for c in arrow_to_rows(cameras_table(storage.db).to_arrow(), CameraRow)}
    assert BAD not in cameras and BAD.strip() not in cameras
    assert segments_table(storage.db).count_rows() == segments_before
    assert not any(
        s.camera_id == BAD for s in arrow_to_rows(segments_table(storage.db).to_arrow(), SegmentRow)
    )
    index_audit = AuditLog(storage).rows()[-1]
    assert (index_audit.action, index_audit.user) == ("index_run", "demo-admin")
    assert "1 skipped" in index_audit.detail and "'cam-nl\\n' is not a valid camera id" in index_audit.detail

    # ...and a row with that camera id, as a version that let such an id in wrote it
    seg = f"{BAD}/{Path(read.segment_id).name}"
    bad_row = dataclasses.replace(
        read,
        id=read.id.replace(read.segment_id, seg),
        segment_id=seg,
        camera_id=BAD,
        track_id=read.track_id.replace(read.segment_id, seg),
    )
    upsert(plates_table(storage.db), rows_to_arrow([bad_row], PlateRow.SCHEMA))

    # the plate is watched: requested by one person, approved by another
    assert (
        cli(
            root,
            "demo-investigator",
            "watchlist",
            "add",
            "plate",
            vehicle.plate,
            "--label",
            "stolen van",
            "--reason",
            "stolen_vehicle",
            "--expires",
            "2d",
            *WHY,
        )
        == 0
    )
    (entry,) = [e for e in list_entries(storage) if e.plate_query == vehicle.plate]
    assert cli(root, "demo-supervisor", "watchlist", "approve", entry.id, "--why", "matches the report") == 0

    capsys.readouterr()
    assert cli(root, "demo-admin", "sweep") == 0
    out = capsys.readouterr().out
    listed = [line for line in out.splitlines() if "SKIPPED" in line]
    assert len(listed) == 1 and repr(bad_row.id) in listed[0] and "camera id" in listed[0], out
    alerts = [a for a in list_alerts(storage) if a.watchlist_id == entry.id]
    assert vehicle.camera_id in {a.camera_id for a in alerts} and BAD not in {a.camera_id for a in alerts}
    assert any(a.plate_text == vehicle.plate and a.segment_id == read.segment_id for a in alerts)
    sweep_audit = [r for r in AuditLog(storage).rows() if r.action == "sweep_run"]
    assert len(sweep_audit) == 1 and sweep_audit[0].user == "demo-admin"
    assert "1 new rows skipped" in sweep_audit[0].detail and repr(bad_row.id) in sweep_audit[0].detail

    # the watermark moved past the bad row: the next sweep is clean, and raises nothing twice
    capsys.readouterr()
    assert cli(root, "demo-admin", "sweep") == 0
    out = capsys.readouterr().out
    assert "SKIPPED" not in out and "0 new alerts" in out, out
    assert len([a for a in list_alerts(storage) if a.watchlist_id == entry.id]) == len(alerts)
    assert AuditLog(storage).verify().ok
