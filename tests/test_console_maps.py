"""The console's maps: the projection (a radius in metres is a true circle; tiles sit where
the cameras are), offline by default (no page names another host), and a configured tile
server allowed for images only. (In a browser, with sightings: test_console_browser_map.py.)"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from citywatch.schemas import CameraRow, rows_to_arrow
from citywatch.service.app import create_app
from citywatch.service.pages.maps import Located, map_view, world
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import cameras_table, upsert
from citywatch.tasks.search.plates import distance_m
from tests.service_support import PASSWORD, add_users, service_settings

FORM = {"x": ("", b"")}
JS = {"X-Console": "1"}
WHY = "suspect in the 2026-11-20 robbery on Main St"
TILES = "https://tiles.city.example:8443/osm/{z}/{x}/{y}.png"
CAMERAS = [  # (id, lat, lon, kind)
    ("cam-central", 22.2829, 114.1553, "fixed"),
    ("cam-mongkok", 22.3186, 114.1694, "fixed"),
    ("cam-causeway", 22.2800, 114.1833, "fixed"),
    ("car-patrol-1", None, None, "mobile"),
]
# URLs in pages: attributes, CSS url(), and anything that looks like //host
EXTERNAL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+""")


def camera(cid: str, lat: float | None, lon: float | None, kind: str) -> CameraRow:
    name = cid.removeprefix("cam-").title()
    return CameraRow(cid, name, "Central", lat, lon, kind, None, None, None, [], [], True)


def rows() -> list[CameraRow]:
    return [camera(*c) for c in CAMERAS]


def test_a_radius_is_a_circle_through_the_points_that_far_away() -> None:
    settings = Settings()
    a, b = rows()[0], rows()[1]
    metres = distance_m(a.lat, a.lon, b.lat, b.lon)  # type: ignore[arg-type]
    view = map_view(settings, rows(), near=(a.lat, a.lon, metres))  # type: ignore[arg-type]
    assert view is not None and view.circle is not None and not view.tiles
    spot = {s.camera_id: s for s in view.cameras}
    assert spot["cam-central"].x == pytest.approx(view.circle.x, abs=0.2)
    reach = math.dist((spot["cam-mongkok"].x, spot["cam-mongkok"].y), (view.circle.x, view.circle.y))
    assert reach == pytest.approx(view.circle.r, rel=0.02)
    for s in view.cameras:  # everything inside the frame
        assert 0 <= s.x <= view.width and 0 <= s.y <= view.height


def test_sightings_count_on_their_camera_and_a_patrol_car_at_its_gps_position() -> None:
    found = [
        Located("cam-central", 22.2829, 114.1553, "#1"),
        Located("cam-central", 22.2829, 114.1553, "#2"),
        Located("car-patrol-1", 22.2955, 114.1721, "AB1234"),
    ]
    view = map_view(Settings(), rows(), found, what="pass")
    assert view is not None
    counts = {s.camera_id: s.count for s in view.cameras}
    assert counts == {"cam-central": 2, "cam-mongkok": 0, "cam-causeway": 0}
    (gps,) = view.sightings
    assert gps.label == "AB1234" and "22.29550, 114.17210" in gps.title
    assert "3 passes" in view.label


def test_tiles_lie_under_the_cameras_they_show() -> None:
    view = map_view(Settings(map__tiles_url=TILES), rows())
    assert view is not None and view.tiles and len(view.tiles) <= 20
    zoom = {int(t.href.split("/")[-3]) for t in view.tiles}
    assert len(zoom) == 1
    z = zoom.pop()
    located = sorted(c for c in CAMERAS if c[1] is not None)
    for spot, (_cid, lat, lon, _kind) in zip(sorted(view.cameras, key=lambda s: s.camera_id), located):
        wx, wy = world(lat, lon)
        tx, ty = int(wx * 2**z // 256), int(wy * 2**z // 256)
        tile = next(t for t in view.tiles if t.href.endswith(f"/{z}/{tx}/{ty}.png"))
        assert tile.x <= spot.x <= tile.x + tile.size and tile.y <= spot.y <= tile.y + tile.size
    assert all(t.href.startswith("https://tiles.city.example:8443/osm/") for t in view.tiles)


@pytest.mark.parametrize(
    "url",
    [
        "https://tiles.example/{z}/{x}.png",  # no {y}
        "ftp://tiles.example/{z}/{x}/{y}.png",
        "https://user:pw@tiles.example/{z}/{x}/{y}.png",
        "https://tiles.example/{z}/{x}/{y}.png; script-src *",
        "https://tiles.example/{z}/{x}/{y}.png'",
        "tiles.example/{z}/{x}/{y}.png",
    ],
)
def test_a_bad_tile_url_is_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYWATCH_MAP__TILES_URL", url)
    with pytest.raises(ValidationError, match="tiles_url"):
        Settings()


def test_the_name_in_the_issue_is_refused_with_the_sectioned_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYWATCH_MAP_TILES_URL", TILES)
    with pytest.raises(ValidationError, match="CITYWATCH_MAP__TILES_URL"):
        Settings()


def _pages(tmp_path: Path, **extra: object) -> dict[str, tuple[str, str]]:
    """Every console page an investigator opens (text and CSP), on a root with cameras."""
    settings = service_settings(tmp_path / "root", **extra)
    add_users(settings)
    upsert(cameras_table(Storage(settings).db), rows_to_arrow(rows(), CameraRow.SCHEMA))
    client = TestClient(create_app(settings))
    out = {"/login": client.get("/login")}
    r = client.post("/login", data={"name": "ivy", "password": PASSWORD}, files=FORM, headers=JS)
    assert r.status_code == 200, r.text
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/cases").text)
    assert token is not None
    case = {"case_id": "CR-MAP-1", "title": "Map", "legal_basis": WHY}
    r = client.post("/cases", data=case, files=FORM, headers={**JS, "X-CSRF-Token": token.group(1)})
    assert r.status_code == 200, r.text
    for path in (
        "/cases",
        "/case?case=CR-MAP-1",
        "/search/face?case=CR-MAP-1",
        "/search/plate?case=CR-MAP-1",
        "/watchlist",
        "/alerts",
        "/static/console.js",
        "/static/console.css",
    ):
        out[path] = client.get(path)
    for path, response in out.items():
        assert response.status_code in (200, 401), (path, response.status_code)
    return {p: (r.text, r.headers.get("content-security-policy", "")) for p, r in out.items()}


def test_with_no_tile_server_no_page_names_another_host(tmp_path: Path) -> None:
    pages = _pages(tmp_path)
    assert 'class="map"' in pages["/search/face?case=CR-MAP-1"][0]
    assert "<image" not in pages["/search/plate?case=CR-MAP-1"][0]
    for path, (text, csp) in pages.items():
        assert not EXTERNAL.findall(text), (path, EXTERNAL.findall(text))
        assert not EXTERNAL.findall(csp), (path, csp)


def test_a_tile_server_is_allowed_for_images_only(tmp_path: Path) -> None:
    pages = _pages(tmp_path, map__tiles_url=TILES)
    text, csp = pages["/search/plate?case=CR-MAP-1"]
    assert '<image class="tile-img" href="https://tiles.city.example:8443/osm/' in text
    policy = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert policy["img-src"] == "'self' data: blob: https://tiles.city.example:8443"
    assert all("tiles.city.example" not in v for k, v in policy.items() if k != "img-src")
    for path, (text, _csp) in pages.items():
        assert set(EXTERNAL.findall(text)) <= {"https://tiles.city.example"}, path
