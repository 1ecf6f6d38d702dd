"""The console's maps in a real browser (Debian chromium), on the indexed sample.

Face results: the cameras where the person was seen are highlighted with their counts.
Plate results near the patrol car's route: its passes at their GPS positions, inside the
search radius drawn as a circle. Offline by default (every request goes to the service);
with an operator's tile server configured (here a loopback one), tiles load from it and
from nowhere else, under the page's Content-Security-Policy. Uses the ``console``
fixture of test_console_browser.py; screenshots under ``CITYWATCH_SCREENSHOTS``.
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image, ImageDraw

from citywatch.sample.dataset import load_ground_truth
from tests.browser import page
from tests.service_support import running_service
from tests.test_console_browser import ZONE, Console, console, open_case, sign_in

pytestmark = pytest.mark.slow
__all__ = ["console"]  # the module-scoped fixture, used here too
CASE = "CR-MAP-1"
RADIUS_M = 200


def test_results_show_where_the_sightings_are(console: Console) -> None:
    truth = load_ground_truth(console.root / "sample" / "ground_truth.json")
    person = next(p for p in truth.people if p.person_id == "obama")
    cameras = {a.camera_id for a in truth.appearances if a.person_id == "obama"}
    patrol = [v for v in truth.vehicles if v.camera_id.startswith("car-") and v.lat is not None]
    here = patrol[0]
    requests: list[str] = []
    with page(timezone_id=ZONE) as p:
        p.set_viewport_size({"width": 1280, "height": 720})
        p.on("request", lambda r: requests.append(r.url))
        sign_in(p, console.base, "ivy")
        open_case(p, console.base, CASE, "Where were they")

        # face results: the person's cameras highlighted, with their counts
        p.goto(f"{console.base}/search/face?case={CASE}")
        assert p.locator("#face-form figure.map g.cam").count() >= 4  # the cameras, before a search
        p.set_input_files("#probe", str(console.root / person.probe))
        p.click("#face-form button[type=submit]")
        p.wait_for_selector("#result-count", timeout=300_000)
        tiles = p.locator("li.tile[data-sighting]")
        seen = p.locator(".results figure.map g.cam.seen")
        counts = {
            seen.nth(i).get_attribute("data-camera"): seen.nth(i).get_attribute("data-count")
            for i in range(seen.count())
        }
        assert set(counts) == cameras
        assert sum(int(str(n)) for n in counts.values()) == tiles.count()
        assert "Plain coordinates" in p.inner_text(".results figure.map figcaption")
        p.locator(".results figure.map").scroll_into_view_if_needed()
        p.screenshot(path=str(console.shots / "map-face-results.png"), full_page=True)

        # plate results near the patrol car: its passes at their GPS positions, in the circle
        p.goto(f"{console.base}/search/plate?case={CASE}")
        p.fill("input[name=text]", "?*")
        p.fill("input[name=near_lat]", f"{here.lat:.6f}")
        p.fill("input[name=near_lon]", f"{here.lon:.6f}")
        p.fill("input[name=near_m]", str(RADIUS_M))
        p.click("#plate-form button[type=submit]")
        p.wait_for_selector("#result-count", timeout=300_000)
        found = p.locator("li.tile[data-sighting]")
        assert found.count() > 0
        area = p.locator(".results figure.map")
        circle = area.locator("g.near circle").first
        assert area.locator("g.near").get_attribute("data-radius-m") == str(RADIUS_M)
        cx, cy, r = (float(str(circle.get_attribute(a))) for a in ("cx", "cy", "r"))
        gps = area.locator("g.gps")
        assert gps.count() == found.count()
        labels = {gps.nth(i).get_attribute("data-label") for i in range(gps.count())}
        assert labels == {found.nth(i).get_attribute("data-text") for i in range(found.count())}
        assert here.plate in labels
        for i in range(gps.count()):
            mark = gps.nth(i).locator("rect")
            x = float(str(mark.get_attribute("x"))) + 4
            y = float(str(mark.get_attribute("y"))) + 4
            assert math.dist((x, y), (cx, cy)) <= r + 0.5, gps.nth(i).get_attribute("data-label")
        assert area.locator("g.cam.seen").count() == 0  # no fixed camera in the radius
        area.scroll_into_view_if_needed()
        p.screenshot(path=str(console.shots / "map-plate-near.png"), full_page=True)
    assert requests and all(u.startswith((console.base + "/", "blob:", "data:")) for u in requests)


class _Tiles(BaseHTTPRequestHandler):
    asked: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.asked.append(self.path)
        picture = Image.new("RGB", (256, 256), (226, 233, 220))
        draw = ImageDraw.Draw(picture)
        draw.rectangle((0, 0, 255, 255), outline=(160, 170, 160))
        draw.text((8, 8), self.path, fill=(90, 100, 90))
        out = io.BytesIO()
        picture.save(out, format="PNG")
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(out.getvalue())))
        self.end_headers()
        self.wfile.write(out.getvalue())

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def tile_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_an_operators_tile_server_draws_beneath_and_nothing_else_is_fetched(console: Console) -> None:
    _Tiles.asked.clear()
    with (
        tile_server() as tiles,
        running_service(console.settings.updated(map__tiles_url=f"{tiles}/{{z}}/{{x}}/{{y}}.png")) as base,
    ):
        requests: list[str] = []
        refused: list[str] = []
        with page(timezone_id=ZONE) as p:
            p.set_viewport_size({"width": 1280, "height": 720})
            p.on("request", lambda r: requests.append(r.url))
            p.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
            sign_in(p, base, "ivy")
            open_case(p, base, "CR-MAP-2", "Where were they")
            p.goto(f"{base}/search/plate?case=CR-MAP-2")
            shown = p.locator("figure.map image.tile-img")
            assert shown.count() > 0
            for _ in range(100):  # an SVG image has no load state to wait for: the server says
                if len(_Tiles.asked) >= shown.count():
                    break
                p.wait_for_timeout(100)
            assert sorted(_Tiles.asked) == sorted(
                "/" + str(shown.nth(i).get_attribute("href")).split("/", 3)[3] for i in range(shown.count())
            )
            assert f"Map tiles from {tiles}" in p.inner_text("figure.map figcaption")
            p.locator("figure.map").scroll_into_view_if_needed()
            p.screenshot(path=str(console.shots / "map-tiles.png"), full_page=True)
        assert not refused, refused
        others = [u for u in requests if not u.startswith((base + "/", tiles + "/", "blob:", "data:"))]
        assert not others, others
