"""Identifiers are matched in full, and one malformed row never silences the sweep.

Issue 13, item 1: ``re.match`` with ``^...$`` accepted ``"cam-nl\\n"`` (``$`` matches
before a trailing newline). A footage folder of that name became a camera, after
which every sweep failed on it and no other camera raised an alert.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from citywatch.cameras import check_camera_id, parse_cameras
from citywatch.errors import BadInputError
from citywatch.footage import parse_segment, parse_stamp
from citywatch.governance.alerts import list_alerts
from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import parse_users
from citywatch.governance.watchlist import add_plate, approve
from citywatch.listing import ObjectInfo
from citywatch.schemas import PlateRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import plates_table, upsert
from citywatch.tasks.sweep import sweep_once
from tests.watchlist_support import NOW, make_settings, request

NL = "\n"


def _audit(storage: Storage) -> Callable[[], object]:
    return lambda: AuditLog(storage).record(user="u", role="r", action=f"search_face{NL}", outcome="ok")


@pytest.mark.parametrize(
    ("what", "check"),
    [
        ("camera id", lambda s: check_camera_id(f"cam-nl{NL}")),
        ("registry id", lambda s: parse_cameras('cameras:\n  - id: "cam-nl\\n"\n    name: x\n', "c.yaml")),
        (
            "footage folder",
            lambda s: parse_segment(
                ObjectInfo(f"/f/cam-nl{NL}/20261120T080000Z.mp4", f"cam-nl{NL}/20261120T080000Z.mp4", 1)
            ),
        ),
        ("start stamp", lambda s: parse_stamp(f"20261120T080000Z{NL}")),
        (
            "user name",
            lambda s: parse_users('users:\n  - name: "alice\\n"\n    roles: [admin]\n', "u.yaml"),
        ),
        ("audit action", lambda s: _audit(s)()),
    ],
)
def test_an_identifier_with_a_trailing_newline_is_refused(
    tmp_path: Path, what: str, check: Callable[[Storage], object]
) -> None:
    storage = Storage(Settings(storage__root=str(tmp_path)))
    with pytest.raises(BadInputError):
        check(storage)


def _plate(text: str, camera: str, track: int, at: dt.datetime) -> PlateRow:
    seg = f"{camera}/20261120T080000Z"
    return PlateRow(
        id=f"{seg}#p{track:04d}",
        segment_id=seg,
        camera_id=camera,
        ts=at,
        first_ts=at,
        last_ts=at + dt.timedelta(seconds=2),
        text=text,
        confidence=0.95,
        char_confidences=[0.95] * len(text),
        reads=4,
        low_confidence=False,
        bbox=(1.0, 2.0, 30.0, 12.0),
        track_id=f"{seg}#p{track:04d}",
        thumb_uri=f"thumbs/{seg}/p{track}.jpg",
        lat=22.3,
        lon=114.2,
        model="ocr",
    )


def test_a_row_with_a_bad_camera_id_is_skipped_and_named_and_the_rest_still_alert(tmp_path: Path) -> None:
    """Rows written with a malformed camera id (by a version that let one in) are
    skipped, named in the result, and the other cameras' rows still raise alerts,
    also once the alerts table exists (where the sweep used to fail every time)."""
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    entry = add_plate(
        storage,
        "AB1234",
        request(reason="stolen_vehicle", label="van"),
        default_max_distance=0.6,
        max_days=30,
        now=NOW,
    )
    approve(storage, entry.id, "bob", now=NOW)
    bad = _plate("AB1234", "cam-nl", 1, NOW)
    bad = dataclasses.replace(bad, camera_id=f"cam-nl{NL}")
    upsert(plates_table(storage.db), rows_to_arrow([bad, _plate("AB1234", "cam-b", 2, NOW)], PlateRow.SCHEMA))
    first = sweep_once(storage, settings, now=NOW)
    assert first.alerts_new == 1 and [s.row_id for s in first.skipped] == [repr(bad.id)]
    assert "camera id 'cam-nl\\n' is invalid" in first.skipped[0].reason
    # the next pass: another bad row and a new pass on cam-c, with alerts already there
    later = NOW + dt.timedelta(minutes=5)
    bad2 = dataclasses.replace(_plate("AB1234", "cam-nl", 3, later), camera_id=f"cam-nl{NL}")
    upsert(
        plates_table(storage.db), rows_to_arrow([bad2, _plate("AB1234", "cam-c", 4, later)], PlateRow.SCHEMA)
    )
    second = sweep_once(storage, settings, now=NOW)
    assert second.alerts_new == 1 and len(second.skipped) == 1
    assert sorted(a.camera_id for a in list_alerts(storage)) == ["cam-b", "cam-c"]
