"""The investigator console in a real browser (Debian chromium) against a real service.

On a copy of the indexed sample: sign in (a wrong password is shown as such), open a
case, search with a different photo of a sample person and see their sightings first
(cameras and times from ground truth, shown in the browser's time zone), keep one as
evidence and find it on the case page; a photo with two faces asks which one; an analyst
is refused the pages. Every request the pages make goes to the service itself. (A face
watchlist entry, the real sweep and its alert in the queue: test_console_browser_watch.py.)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from citywatch.governance.audit_log import AuditLog
from citywatch.sample.dataset import load_ground_truth
from citywatch.settings import Settings
from citywatch.storage import Storage
from tests.browser import page
from tests.sample_copy import relocate
from tests.service_support import PASSWORD, add_users, running_service, service_settings

pytestmark = pytest.mark.slow
SLACK = dt.timedelta(seconds=1.5)
ZONE = "Europe/Paris"
WHY = "robbery on Main St, 20 Nov: identify the suspect seen leaving"


@dataclass(frozen=True)
class Console:
    base: str
    root: Path
    settings: Settings
    shots: Path


@pytest.fixture(scope="module")
def console(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """A real uvicorn service on a copy of the indexed sample (with the state that signed its audit).

    ``CITYWATCH_CONSOLE_SAMPLE=DIR`` (development only) keeps the indexed sample in DIR
    after the first run and reuses it, skipping the ten-minute indexing on later runs.
    """
    cached = (
        Path(os.environ["CITYWATCH_CONSOLE_SAMPLE"]) if os.environ.get("CITYWATCH_CONSOLE_SAMPLE") else None
    )
    if cached is not None and (cached / "data").is_dir():
        request.getfixturevalue("prefect_api")
        source, keys = cached / "data", cached / "keys"
    else:
        indexed = request.getfixturevalue("indexed")
        source, keys = indexed.root, Path(indexed.settings.storage.state_dir) / "keys"
        if cached is not None:
            shutil.copytree(source, cached / "data")
            if keys.exists():
                shutil.copytree(keys, cached / "keys")
    root = tmp_path_factory.mktemp("console") / "data"
    shutil.copytree(source, root)
    settings = service_settings(root)
    if keys.exists():
        shutil.copytree(keys, Path(settings.storage.state_dir) / "keys")
    relocate(settings)  # the copy reads its own footage and thumbnails, not the original's
    add_users(settings)
    shots = Path(os.environ.get("CITYWATCH_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    with running_service(settings) as base:
        yield Console(base, root, settings, shots)


def open_case(p, base: str, case_id: str, title: str = "Follow-up", why: str = WHY) -> None:  # noqa: ANN001
    """Create a case on the cases page and land on its workspace."""
    p.goto(f"{base}/cases")
    p.fill("input[name=case_id]", case_id)
    p.fill("input[name=title]", title)
    p.fill("textarea[name=legal_basis]", why)
    p.click("#new-case button[type=submit]")
    p.wait_for_url(f"**/case?case={case_id}")


def sign_in(p, base: str, name: str) -> None:  # noqa: ANN001
    p.goto(f"{base}/login")
    p.fill("input[name=name]", name)
    p.fill("input[name=password]", PASSWORD)
    p.click("#signin button[type=submit]")
    p.wait_for_url(f"{base}/cases")


def test_investigator_searches_keeps_evidence_and_sees_it_on_the_case(console: Console) -> None:
    truth = load_ground_truth(console.root / "sample" / "ground_truth.json")
    person = next(p for p in truth.people if p.person_id == "obama")
    expected = [a for a in truth.appearances if a.person_id == "obama"]
    requests: list[str] = []
    with page(timezone_id=ZONE) as p:
        p.set_viewport_size({"width": 1280, "height": 720})
        p.on("request", lambda r: requests.append(r.url))
        errors: list[str] = []
        p.on("pageerror", lambda e: errors.append(str(e)))
        # HTTP statuses (the 401 sign-in form, a refused password) are checked by the test itself
        p.on(
            "console",
            lambda m: errors.append(m.text) if m.type == "error" and "resource" not in m.text else None,
        )

        # a page needs a sign-in; a wrong password is said so
        p.goto(f"{console.base}/cases")
        assert p.locator("h1").inner_text() == "Sign in"
        p.fill("input[name=name]", "ivy")
        p.fill("input[name=password]", "wrong horse")
        p.click("#signin button[type=submit]")
        p.wait_for_selector("#signin-msg")
        assert "name or password is wrong" in p.inner_text("#signin-msg").lower()
        p.screenshot(path=str(console.shots / "signin-error.png"), full_page=True)
        p.fill("input[name=password]", PASSWORD)
        p.click("#signin button[type=submit]")
        p.wait_for_selector("header .who")  # the sign-in form was served at /cases itself
        assert "ivy" in p.inner_text("header .who") and "session ends" in p.inner_text("header .who")

        # open a case
        p.fill("input[name=case_id]", "CR-2026-0117")
        p.fill("input[name=title]", "Robbery, Main St")
        p.fill("textarea[name=legal_basis]", WHY)
        p.screenshot(path=str(console.shots / "cases.png"), full_page=True)
        p.click("#new-case button[type=submit]")
        p.wait_for_url("**/case?case=CR-2026-0117")
        assert "Robbery, Main St" in p.inner_text("h1")
        p.click("text=Face search")
        p.wait_for_selector("#face-form")
        assert ZONE in p.inner_text("#face-form")
        p.set_input_files("#probe", str(console.root / person.probe))
        p.screenshot(path=str(console.shots / "face-search.png"), full_page=True)

        # the person's sightings come first, at the right cameras and times, in the browser's zone
        p.click("#face-form button[type=submit]")
        p.wait_for_selector("#result-count", timeout=300_000)
        tiles = p.locator("li.tile[data-sighting]")
        assert tiles.count() > 0
        top = tiles.first
        top_camera = top.get_attribute("data-camera")
        top_ts = dt.datetime.fromisoformat(str(top.get_attribute("data-ts")))
        assert any(a.camera_id == top_camera and a.start - SLACK <= top_ts <= a.end + SLACK for a in expected)
        shown = {tiles.nth(i).get_attribute("data-camera") for i in range(tiles.count())}
        assert shown == {a.camera_id for a in expected}
        assert "UTC+01:00" in top.inner_text() or "UTC+02:00" in top.inner_text()
        p.wait_for_function(
            "() => [...document.querySelectorAll('li.tile img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        assert p.locator(".timeline rect.mark").count() == tiles.count()
        p.screenshot(path=str(console.shots / "face-results.png"), full_page=True)

        # keep the top sighting as evidence; it is on the case page with its note
        top.locator("input[name=note]").fill("leaves the bank at the corner")
        top.locator("button", has_text="Keep as evidence").click()
        p.wait_for_selector("#kept-1 .ok")

        # export a redacted, signed clip of it: verified at once, and downloadable
        top.locator("button", has_text="Export redacted clip").click()
        p.wait_for_selector("#export-panel .verified", timeout=300_000)
        assert "Verified" in p.inner_text("#export-panel .verified")
        p.wait_for_function(  # the redacted clip plays in the page (range requests to the service)
            "() => { const v = document.querySelector('#export-panel video'); return v && v.duration > 0; }",
            timeout=60_000,
        )
        p.screenshot(path=str(console.shots / "export.png"), full_page=True)
        with p.expect_download() as download:
            p.click("#export-panel a:has-text('Download the clip')")
        clip = Path(download.value.path())
        assert clip.stat().st_size > 1000 and clip.read_bytes()[4:8] == b"ftyp"
        p.click("#kept-1 a")
        p.wait_for_url("**/case?case=CR-2026-0117*")
        evidence = p.locator("#evidence li.tile")
        assert evidence.count() == 1
        assert "leaves the bank at the corner" in evidence.inner_text()
        assert "face" in p.inner_text("#searches")
        assert "sighting" in p.inner_text("#exports")
        p.wait_for_function("() => document.querySelector('#evidence img').naturalWidth > 0")
        p.screenshot(path=str(console.shots / "case.png"), full_page=True)
        p.set_viewport_size({"width": 1920, "height": 1080})
        p.screenshot(path=str(console.shots / "case-1920.png"), full_page=True)

        # sign out: the pages need a sign-in again
        p.click("text=Sign out")
        p.wait_for_url("**/login?signed_out=1")
        p.goto(f"{console.base}/case?case=CR-2026-0117")
        assert p.locator("h1").inner_text() == "Sign in"
        assert not errors, errors

    # every request goes to the service; the rest are in-page data (the photo's preview, no favicon)
    network = [u for u in requests if not u.startswith(("blob:", "data:"))]
    assert network and all(u.startswith(console.base + "/") for u in network), network
    assert all(u.startswith((f"blob:{console.base}/", "data:")) for u in requests if u not in network)
    rows = AuditLog(Storage(console.settings)).list(case_id="CR-2026-0117", limit=1000)
    actions = {(r.user, r.action, r.outcome) for r in rows}
    assert {
        ("ivy", "case_open", "ok"),
        ("ivy", "search_face", "ok"),
        ("ivy", "evidence_keep", "ok"),
    } <= actions
    assert {("ivy", "media_view", "ok"), ("ivy", "export", "ok")} <= actions
    search = next(r for r in rows if r.action == "search_face")
    assert search.justification == WHY and json.loads(search.params)["via"]["auth"] == "session"


def test_a_photo_with_two_faces_asks_which_one(console: Console, tmp_path: Path) -> None:
    truth = load_ground_truth(console.root / "sample" / "ground_truth.json")
    probes = [p for p in truth.people if p.probe and p.in_footage][:2]
    images = [Image.open(console.root / p.probe).convert("RGB") for p in probes]
    height = max(i.height for i in images)
    both = Image.new("RGB", (sum(i.width for i in images) + 40, height), "white")
    both.paste(images[0], (0, 0))
    both.paste(images[1], (images[0].width + 40, 0))
    photo = tmp_path / "two.jpg"
    both.save(photo, quality=92)
    with page(timezone_id=ZONE) as p:
        p.set_viewport_size({"width": 1280, "height": 720})
        sign_in(p, console.base, "sam")
        p.goto(f"{console.base}/search/face?case=CR-2026-0117")
        p.set_input_files("#probe", str(photo))
        p.click("#face-form button[type=submit]")
        p.wait_for_selector(".picker", timeout=300_000)
        assert p.locator(".picker button[data-face]").count() == 2
        p.screenshot(path=str(console.shots / "face-picker.png"), full_page=True)
        p.locator(".picker button[data-face]").nth(1).click()
        p.wait_for_selector("#result-count", timeout=300_000)
        expected = {a.camera_id for a in truth.appearances if a.person_id == probes[1].person_id}
        top = p.locator("li.tile[data-sighting]").first
        assert top.get_attribute("data-camera") in expected


def test_an_analyst_is_refused_the_console(console: Console) -> None:
    with page() as p:
        p.set_viewport_size({"width": 1280, "height": 720})
        p.goto(f"{console.base}/login")
        p.fill("input[name=name]", "ann")
        p.fill("input[name=password]", PASSWORD)
        p.click("#signin button[type=submit]")
        p.wait_for_url(f"{console.base}/cases")
        assert p.locator("h1").inner_text() == "Not allowed"
        response = p.goto(f"{console.base}/search/face?case=CR-2026-0117")
        assert response is not None and response.status == 403
        assert "may not search_face" in p.inner_text("[role=alert]")
        p.screenshot(path=str(console.shots / "analyst-403.png"), full_page=True)
        thumb = p.goto(f"{console.base}/media/thumb?case=CR-2026-0117&kind=face&id=x")
        assert thumb is not None and thumb.status == 403
    refused = AuditLog(Storage(console.settings)).list(user="ann", limit=100)
    assert {r.action for r in refused if r.outcome == "refused"} >= {"case_open", "search_face", "media_view"}


def test_plate_search_shows_exact_and_fuzzy_matches(console: Console) -> None:
    from citywatch.plates import CONFUSABLE_PAIRS

    partner = {a: b for a, b in CONFUSABLE_PAIRS} | {b: a for a, b in CONFUSABLE_PAIRS}
    truth = load_ground_truth(console.root / "sample" / "ground_truth.json")
    vehicle = next(v for v in truth.vehicles if v.min_plate_px >= 80 and any(ch in partner for ch in v.plate))
    i = next(i for i, ch in enumerate(vehicle.plate) if ch in partner)
    variant = vehicle.plate[:i] + partner[vehicle.plate[i]] + vehicle.plate[i + 1 :]
    with page(timezone_id=ZONE) as p:
        p.set_viewport_size({"width": 1280, "height": 720})
        sign_in(p, console.base, "ivy")
        p.goto(f"{console.base}/search/plate?case=CR-2026-0117")
        p.fill("input[name=text]", variant)
        p.click("#plate-form button[type=submit]")
        p.wait_for_selector("#result-count", timeout=300_000)
        top = p.locator("li.tile[data-sighting]").first
        assert top.get_attribute("data-text") == vehicle.plate
        assert top.get_attribute("data-camera") == vehicle.camera_id
        assert "fuzzy" in top.inner_text()
        p.wait_for_function("() => document.querySelector('li.tile img').naturalWidth > 0")
        p.screenshot(path=str(console.shots / "plate-results.png"), full_page=True)
        p.fill("input[name=text]", vehicle.plate[:4] + "*")
        p.click("#plate-form button[type=submit]")
        p.wait_for_function("() => document.querySelector('#result-count').textContent.includes('*')")
        top = p.locator("li.tile[data-sighting]").first
        assert "exact" in top.inner_text() and str(top.get_attribute("data-text")).startswith(
            vehicle.plate[:4]
        )


def test_a_watchlist_entry_is_approved_by_another_supervisor(console: Console) -> None:
    with page(timezone_id=ZONE) as ivy:
        ivy.set_viewport_size({"width": 1280, "height": 720})
        sign_in(ivy, console.base, "ivy")
        ivy.goto(f"{console.base}/case?case=CR-2026-0117")
        form = ivy.locator("#request-entry form")
        form.locator("select[name=reason]").select_option("stolen_vehicle")
        form.locator("input[name=label]").fill("getaway car")
        form.locator("input[name=plate]").fill("KT1234")
        form.locator("button[type=submit]").click()
        ivy.wait_for_selector("#entry-result .ok")
        assert "a supervisor other than ivy must approve it" in ivy.inner_text("#entry-result")
        ivy.goto(f"{console.base}/watchlist")
        assert "needs another supervisor" in ivy.inner_text("#pending")
    with page() as sue:  # a second browser: another person
        sue.set_viewport_size({"width": 1280, "height": 720})
        sign_in(sue, console.base, "sue")
        sue.goto(f"{console.base}/watchlist")
        row = sue.locator("#pending tr", has_text="getaway car")
        row.locator("input[name=justification]").fill("plate seen at the robbery, case CR-2026-0117")
        sue.screenshot(path=str(console.shots / "watchlist.png"), full_page=True)
        row.locator("button", has_text="Approve").click()
        sue.wait_for_selector("text=approved by sue")
    with page() as ivy:
        sign_in(ivy, console.base, "ivy")
        ivy.goto(f"{console.base}/case?case=CR-2026-0117")
        assert "getaway car" in ivy.inner_text("#watchlist") and "active" in ivy.inner_text("#watchlist")


def test_camera_and_local_time_window_filters(console: Console) -> None:
    """The window is typed in the browser's zone (Paris) and compared in UTC."""
    from zoneinfo import ZoneInfo

    truth = load_ground_truth(console.root / "sample" / "ground_truth.json")
    person = next(p for p in truth.people if p.person_id == "obama")
    first = next(a for a in truth.appearances if a.person_id == "obama")
    paris = ZoneInfo(ZONE)
    start, end = (first.start - 2 * SLACK).astimezone(paris), (first.end + 2 * SLACK).astimezone(paris)
    with page(timezone_id=ZONE) as p:
        p.set_viewport_size({"width": 1920, "height": 1080})
        sign_in(p, console.base, "ivy")
        p.goto(f"{console.base}/search/face?case=CR-2026-0117")
        p.set_input_files("#probe", str(console.root / person.probe))
        p.check(f"input[name=camera][value='{first.camera_id}']")
        p.fill("input[name=since]", start.strftime("%Y-%m-%dT%H:%M:%S"))
        p.fill("input[name=until]", end.strftime("%Y-%m-%dT%H:%M:%S"))
        p.click("#face-form button[type=submit]")
        p.wait_for_selector("#result-count", timeout=300_000)
        tiles = p.locator("li.tile[data-sighting]")
        assert tiles.count() > 0
        for i in range(tiles.count()):
            assert tiles.nth(i).get_attribute("data-camera") == first.camera_id
            ts = dt.datetime.fromisoformat(str(tiles.nth(i).get_attribute("data-ts")))
            assert start <= ts <= end
        p.wait_for_function(
            "() => [...document.querySelectorAll('li.tile img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        p.screenshot(path=str(console.shots / "face-filtered-1920.png"), full_page=True)
