"""The console's result and case pages through TestClient: face results grouped by camera
or ordered by time, the range export form's input checks."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from citywatch.governance.audit_log import AuditLog
from citywatch.settings import Settings
from citywatch.storage import Storage
from tests.console_support import FORM, WHY, message, signed_in
from tests.service_support import add_users, service_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = service_settings(tmp_path / "root")
    add_users(s)
    return s


def test_face_results_are_grouped_by_camera_or_ordered_by_time(settings: Settings) -> None:
    from citywatch.service.pages.render import ENV
    from citywatch.service.pages.routes_face import arrange, thumb_url
    from citywatch.service.pages.routes_play import play_url
    from citywatch.sightings import Sighting

    t0 = dt.datetime(2026, 11, 20, 13, 0, tzinfo=dt.UTC)

    def seen(rank: int, camera: str, minute: int) -> Sighting:
        ts = t0 + dt.timedelta(minutes=minute)
        return Sighting(
            rank, f"f{rank}", camera, f"Cam {camera}", ts, ts, ts, 0.1 * rank, 1 - 0.1 * rank,
            (0, 0, 1, 1), "s3://x", "s3://y", None, None,
        )  # fmt: skip

    found = [seen(1, "b", 30), seen(2, "a", 5), seen(3, "b", 10), seen(4, "a", 50)]
    paris = ZoneInfo("Europe/Paris")

    def shown(order: str) -> tuple[list[str], list[str]]:
        html = ENV.get_template("face_results.html").render(
            case=type("Case", (), {"id": "C-1"})(), sightings=found, groups=arrange(found, order),
            order=order, marks=[], window=None, threshold=0.5, model="m", zone=paris, thumb=thumb_url,
            play=play_url,
        )  # fmt: skip
        headings = re.findall(r'<h3 class="group">(.*?)</h3>', html)
        return headings, re.findall(r'data-sighting="([^"]+)"', html)

    assert shown("closest") == ([], ["f1", "f2", "f3", "f4"])
    assert shown("time") == ([], ["f2", "f3", "f1", "f4"])
    # the camera of the closest sighting first; each camera's sightings in time order
    assert shown("camera") == (["Cam b (2)", "Cam a (2)"], ["f3", "f1", "f2", "f4"])
    # the search form offers the choice; a bad one is refused before anything runs
    client, headers = signed_in(settings, "ivy")
    case = {"case_id": "C-1", "title": "t", "legal_basis": WHY}
    client.post("/cases", data=case, files=FORM, headers=headers)
    form = client.get("/search/face?case=C-1").text
    assert '<option value="camera">grouped by camera</option>' in form
    assert '<option value="time">ordered by time</option>' in form
    photo = {"probe": ("p.png", b"not an image", "image/png")}
    r = client.post("/search/face", data={"case_id": "C-1", "order": "size"}, files=photo, headers=headers)
    assert r.status_code == 400 and message(r.text) == "order 'size' must be one of closest, camera, time"


def test_range_export_form_on_the_case_page_checks_its_input(settings: Settings) -> None:
    client, headers = signed_in(settings, "ivy")
    case = {"case_id": "C-1", "title": "t", "legal_basis": WHY}
    client.post("/cases", data=case, files=FORM, headers=headers)
    page = client.get("/case?case=C-1").text
    assert 'action="/exports/range"' in page and 'name="camera_id"' in page and "Export a time range" in page
    window = {"case_id": "C-1", "camera_id": "cam-01", "tz": "Europe/Paris"}
    for data, said in (
        ({**window, "camera_id": ""}, "choose the camera to export from"),
        (
            {**window, "since": "2026-11-20T10:00"},
            "give both the start and the end of the time range to export",
        ),
        (
            {**window, "since": "2026-11-20T10:00", "until": "2026-11-20T09:00"},
            "the time range's end must be after its start",
        ),
        (
            {**window, "camera_id": "../etc", "since": "2026-11-20T10:00", "until": "2026-11-20T10:01"},
            "camera id '../etc' is not a camera id",
        ),
        ({**window, "since": "noon", "until": "2026-11-20T10:01"}, "from 'noon' is not a date and time"),
    ):
        r = client.post("/exports/range", data=data, files=FORM, headers=headers)
        assert r.status_code == 400 and message(r.text).startswith(said), message(r.text)
    analyst, analyst_headers = signed_in(settings, "ann")
    refused = analyst.post("/exports/range", data=window, files=FORM, headers=analyst_headers)
    assert refused.status_code == 403
    assert not [x for x in AuditLog(Storage(settings)).rows() if x.action == "export" and x.outcome == "ok"]
