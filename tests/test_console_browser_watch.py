"""The watchlist in a real browser (Debian chromium), end to end with the real sweep.

An investigator asks, from a case, for a face entry with a photo of a sample person (a
different photo from the footage's); they cannot approve it themselves; a supervisor in a
second browser context approves it; the sweep the product runs (``sweep_once``, the
``watchlist-sweep`` flow's task) matches the indexed faces; the alert appears in the open
queue without a reload, the enrolled face beside the captured one, and is confirmed with a
note. Uses the ``console`` fixture of test_console_browser.py (a fresh copy of the indexed
sample per module: nothing has swept it, so every indexed row is past the sweep's watermark).
"""

from __future__ import annotations

import json

import pytest

from citywatch.governance.audit_log import AuditLog
from citywatch.sample.dataset import load_ground_truth
from citywatch.storage import Storage
from citywatch.tasks.sweep import sweep_once
from tests.browser import page
from tests.test_console_browser import SLACK, WHY, ZONE, Console, console, sign_in

pytestmark = pytest.mark.slow
__all__ = ["console"]  # the module-scoped fixture, used here too
CASE = "CR-WATCH-1"
LABEL = "robbery suspect (bank photo)"
IMAGES_LOADED = "() => [...document.querySelectorAll('{} img')].every(i => i.complete && i.naturalWidth > 0)"
APPROVE_MYSELF = """async (entry) => {
  const body = new FormData();
  body.set("entry_id", entry);
  body.set("justification", "I asked for it and approve it myself");
  const token = document.querySelector("meta[name=csrf-token]").content;
  const headers = {"X-CSRF-Token": token, "X-Console": "1"};
  const r = await fetch("/watchlist/approve", {method: "POST", body, headers});
  return [r.status, await r.text()];
}"""


def test_a_requested_face_entry_is_approved_swept_and_its_alert_confirmed(console: Console) -> None:
    truth = load_ground_truth(console.root / "sample" / "ground_truth.json")
    person = next(p for p in truth.people if p.person_id == "obama")
    passes = [a for a in truth.appearances if a.person_id == "obama"]
    with page(timezone_id=ZONE) as ivy:
        ivy.set_viewport_size({"width": 1280, "height": 720})
        sign_in(ivy, console.base, "ivy")
        ivy.fill("input[name=case_id]", CASE)
        ivy.fill("input[name=title]", "Robbery, Main St: the suspect")
        ivy.fill("textarea[name=legal_basis]", WHY)
        ivy.click("#new-case button[type=submit]")
        ivy.wait_for_url(f"**/case?case={CASE}")

        # request a face entry with a photo, through the case's form
        form = ivy.locator("#request-entry form")
        form.locator("select[name=kind]").select_option("face")
        form.locator("select[name=reason]").select_option("suspect")
        form.locator("input[name=label]").fill(LABEL)
        form.locator("input[name=expires]").fill("2d")
        form.locator("input[name=photo]").set_input_files(str(console.root / person.probe))
        form.locator("button[type=submit]").click()
        ivy.wait_for_selector("#entry-result .ok", timeout=120_000)
        assert "face entry" in ivy.inner_text("#entry-result")
        assert "a supervisor other than ivy must approve it" in ivy.inner_text("#entry-result")
        ivy.screenshot(path=str(console.shots / "watch-requested.png"), full_page=True)

        # the requester cannot approve it: no button, and the service refuses a direct request
        ivy.goto(f"{console.base}/watchlist")
        row = ivy.locator("#pending tr", has_text=LABEL)
        assert "needs another supervisor" in row.inner_text()
        assert row.locator("button", has_text="Approve").count() == 0
        entry = str(row.get_attribute("data-entry"))
        status, text = ivy.evaluate(APPROVE_MYSELF, entry)
        assert status == 403, text
        assert "may not" in text

    with page(timezone_id=ZONE) as sue:  # a second browser: another person
        sue.set_viewport_size({"width": 1280, "height": 720})
        sign_in(sue, console.base, "sue")
        sue.goto(f"{console.base}/watchlist")
        row = sue.locator(f"#pending tr[data-entry='{entry}']")
        row.locator("input[name=justification]").fill("the bank photo matches the case file")
        row.locator("button", has_text="Approve").click()
        sue.wait_for_selector("text=approved by sue")

        # the queue is open; the product's sweep runs and its alerts appear without a reload
        sue.goto(f"{console.base}/alerts")
        assert "No new alerts" in sue.inner_text("#queue")
        result = sweep_once(Storage(console.settings), console.settings)
        assert result.faces_read > 0 and result.alerts_new >= 1, result
        tile = sue.locator("li[data-alert]").first
        tile.wait_for(timeout=30_000)  # the queue polls every few seconds
        assert sue.locator("li[data-alert]").count() == result.alerts_new
        assert LABEL in tile.inner_text() and CASE in tile.inner_text()
        assert tile.locator(".compare img").count() == 2  # the enrolled face beside the captured one
        alert = str(tile.get_attribute("data-alert"))
        sue.wait_for_function(IMAGES_LOADED.format(f'li[data-alert="{alert}"]'))
        sue.screenshot(path=str(console.shots / "alerts-swept.png"), full_page=True)
        # the reviewer plays the moment of the capture (the player's page; opaque ids only)
        href = str(tile.locator("a", has_text="Play the clip").get_attribute("href"))
        assert href.startswith("/play?") and str(console.root) not in href
        clip = sue.context.new_page()
        clip.goto(f"{console.base}{href}")
        clip.wait_for_function("() => (document.querySelector('video') || {}).duration > 0")
        clip.screenshot(path=str(console.shots / "alert-clip.png"))
        clip.close()

        # confirm it: the note is required (nothing is sent without one)
        tile.locator("button", has_text="Confirm").click()
        assert tile.locator("input[name=note]").evaluate("e => !e.validity.valid")
        tile.locator("input[name=note]").fill("same face as the bank footage")
        tile.locator("button", has_text="Confirm").click()
        tile.locator(".ok").wait_for()
        assert "Confirmed by sue" in tile.inner_text()

    with page(timezone_id=ZONE) as ivy:  # an investigator sees the reviewed alert, cannot review
        sign_in(ivy, console.base, "ivy")
        ivy.goto(f"{console.base}/alerts?state=confirmed")
        seen = ivy.locator(f"li[data-alert='{alert}']")
        assert seen.count() == 1 and "confirmed by sue" in seen.inner_text()
        assert ivy.locator("button", has_text="Confirm").count() == 0

    from citywatch.governance.alerts import get_alert

    row = get_alert(Storage(console.settings), alert)
    assert row.watchlist_id == entry and row.state == "confirmed"
    assert any(p.camera_id == row.camera_id and p.start - SLACK <= row.ts <= p.end + SLACK for p in passes), (
        row.camera_id,
        row.ts,
    )
    log = AuditLog(Storage(console.settings))
    refused = log.list(user="ivy", action="watchlist_approve", limit=10)
    assert [r.outcome for r in refused] == ["refused"]
    reviews = log.list(user="sue", action="alert_review", limit=10)
    assert [(r.outcome, json.loads(r.params)["decision"]) for r in reviews] == [("ok", "confirmed")]
    views = log.list(user="sue", action="alert_read", limit=100)
    assert any("enrolled face" in r.params for r in views)
