"""Console follow-ups in a real browser (Debian chromium): OIDC sign-in lands on the console,
face results grouped by camera or ordered by time, and a time-range export from the case page.

Uses the ``console`` fixture of test_console_browser.py (a real service on a copy of the
indexed sample); screenshots go under ``CITYWATCH_SCREENSHOTS``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from citywatch.governance.audit_log import AuditLog
from citywatch.governance.oidc_links import link_identity
from citywatch.sample.dataset import load_ground_truth
from citywatch.storage import Storage
from tests.browser import page
from tests.oidc_provider import running_provider
from tests.service_support import add_users, running_service, service_settings
from tests.test_console_browser import SLACK, WHY, ZONE, Console, console, open_case, sign_in

pytestmark = pytest.mark.slow
__all__ = ["console"]  # the module-scoped fixture, used here too


def test_oidc_button_signs_in_and_lands_on_the_console(tmp_path: Path) -> None:
    shots = Path(os.environ.get("CITYWATCH_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with running_provider("console-browser", "console-browser-secret") as provider:
        secret = tmp_path / "secret"
        secret.write_text("console-browser-secret\n")
        secret.chmod(0o600)
        settings = service_settings(
            tmp_path / "root",
            oidc__issuer=provider.issuer,
            oidc__client_id="console-browser",
            oidc__client_secret_file=str(secret),
            oidc__display_name="City SSO",
        )
        add_users(settings)
        link_identity(Storage(settings), provider.issuer, "idp-ivy-0001", "ivy", "ada")
        provider.signed_in = "idp-ivy-0001"
        with running_service(settings) as base, page() as p:
            p.set_viewport_size({"width": 1280, "height": 720})
            p.goto(f"{base}/login")
            button = p.locator("#oidc-sign-in")
            assert button.inner_text() == "Sign in with City SSO"
            p.screenshot(path=str(shots / "signin-oidc.png"), full_page=True)
            button.click()  # -> the provider (signed in there already) -> the callback -> the console
            p.wait_for_url(f"{base}/cases")
            assert "ivy" in p.inner_text("header .who")
            p.screenshot(path=str(shots / "oidc-landed.png"), full_page=True)
    ok = [r for r in AuditLog(Storage(settings)).rows() if r.action == "sign_in" and r.outcome == "ok"]
    assert ok and ok[-1].user == "ivy"


def test_face_results_grouped_by_camera_then_ordered_by_time(console: Console) -> None:
    truth = load_ground_truth(console.root / "sample" / "ground_truth.json")
    person = next(p for p in truth.people if p.person_id == "obama")
    cameras = {a.camera_id for a in truth.appearances if a.person_id == "obama"}
    with page(timezone_id=ZONE) as p:
        p.set_viewport_size({"width": 1280, "height": 720})
        sign_in(p, console.base, "ivy")
        open_case(p, console.base, "CR-ORDER-1", "Follow-up")
        p.goto(f"{console.base}/search/face?case=CR-ORDER-1")
        p.set_input_files("#probe", str(console.root / person.probe))
        p.select_option("select[name=order]", "camera")
        p.click("#face-form button[type=submit]")
        p.wait_for_selector("#result-count", timeout=300_000)
        assert "grouped by camera" in p.inner_text("#result-count")
        groups = p.locator("ul.sightings")
        assert p.locator("h3.group").count() == groups.count() == len(cameras)
        for g in range(groups.count()):
            tiles = groups.nth(g).locator("li.tile")
            assert len({tiles.nth(i).get_attribute("data-camera") for i in range(tiles.count())}) == 1
            times = [str(tiles.nth(i).get_attribute("data-ts")) for i in range(tiles.count())]
            assert times == sorted(times, key=dt.datetime.fromisoformat)
        p.wait_for_function(
            "() => [...document.querySelectorAll('li.tile img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        p.screenshot(path=str(console.shots / "face-by-camera.png"), full_page=True)
        p.select_option("select[name=order]", "time")
        p.click("#face-form button[type=submit]")
        p.wait_for_function(
            "() => (document.querySelector('#result-count') || {}).innerText?.includes('ordered by time')",
            timeout=300_000,
        )
        assert p.locator("h3.group").count() == 0
        tiles = p.locator("li.tile[data-sighting]")
        times = [str(tiles.nth(i).get_attribute("data-ts")) for i in range(tiles.count())]
        assert len(times) > 1 and times == sorted(times, key=dt.datetime.fromisoformat)
        p.screenshot(path=str(console.shots / "face-by-time.png"), full_page=True)


def test_a_time_range_is_exported_from_the_case_page(console: Console) -> None:
    truth = load_ground_truth(console.root / "sample" / "ground_truth.json")
    seen = next(a for a in truth.appearances if a.person_id == "obama")
    paris = ZoneInfo(ZONE)
    start, end = (seen.start - SLACK).astimezone(paris), (seen.end + SLACK).astimezone(paris)
    with page(timezone_id=ZONE) as p:
        p.set_viewport_size({"width": 1280, "height": 720})
        sign_in(p, console.base, "ivy")
        open_case(p, console.base, "CR-RANGE-1", "Follow-up")
        form = p.locator("#range-export")
        assert ZONE in form.inner_text()
        form.locator("select[name=camera_id]").select_option(seen.camera_id)
        form.locator("input[name=since]").fill(start.strftime("%Y-%m-%dT%H:%M:%S"))
        form.locator("input[name=until]").fill(end.strftime("%Y-%m-%dT%H:%M:%S"))
        p.screenshot(path=str(console.shots / "range-export-form.png"), full_page=True)
        form.locator("button[type=submit]").click()
        p.wait_for_selector("#range-result .verified", timeout=300_000)
        assert "Verified" in p.inner_text("#range-result .verified")
        p.wait_for_function(
            "() => { const v = document.querySelector('#range-result video'); return v && v.duration > 0; }",
            timeout=60_000,
        )
        p.screenshot(path=str(console.shots / "range-export-done.png"), full_page=True)
    rows = AuditLog(Storage(console.settings)).list(case_id="CR-RANGE-1", limit=100)
    export = [r for r in rows if r.action == "export" and r.outcome == "ok" and r.user == "ivy"]
    assert export and export[0].justification == WHY
