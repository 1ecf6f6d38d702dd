"""Play the moment, in a real browser (Debian chromium) against a real service.

On a copy of the indexed sample: an investigator clicks a face sighting and the footage
plays in a ``<video>`` from a few seconds before it (streamed with HTTP range requests,
the camera's privacy masks applied); the page and its requests name no storage path;
the play is audited; the same works from the case page's kept evidence; another user
cannot use the clip's token, and an analyst is refused the player.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlencode

import pytest

from citywatch.governance.audit_log import AuditLog
from citywatch.sample.dataset import load_ground_truth
from citywatch.storage import Storage
from tests.browser import page
from tests.test_console_browser import ZONE, Console, console, open_case, sign_in

pytestmark = pytest.mark.slow
__all__ = ["console"]  # the module-scoped fixture, used here too
CASE = "CR-PLAY-1"
MASKED = "cam-hennessy-rd"  # the sample camera with a privacy mask
TOLERANCE_S = 1.5
READY = """() => {
  const v = document.querySelector(arguments_selector);
  return v && v.duration > 0 && v.dataset.started && !v.seeking && v.readyState >= 2;
}"""


def _ready(selector: str) -> str:
    return READY.replace("arguments_selector", json.dumps(selector))


def _stored_locations(console: Console) -> list[str]:
    """Every footage and thumbnail location in the copy's tables: none may reach the browser."""
    db = Storage(console.settings).db
    segments = db.open_table("segments").to_arrow().column("uri").to_pylist()
    thumbs = db.open_table("faces").to_arrow().column("thumb_uri").to_pylist()
    return [str(console.root), *segments, *thumbs]


def test_clicking_a_sighting_plays_it_from_a_few_seconds_before(console: Console) -> None:
    truth = load_ground_truth(console.root / "sample" / "ground_truth.json")
    person = next(p for p in truth.people if p.person_id == "obama")
    lead = console.settings.play.lead_s
    requests: list[str] = []
    clip_answers: list[tuple[int, dict[str, str]]] = []
    with page(timezone_id=ZONE) as p:
        p.set_viewport_size({"width": 1280, "height": 720})
        p.on("request", lambda r: requests.append(r.url))
        p.on(
            "response",
            lambda r: clip_answers.append((r.status, r.headers)) if "/media/clip?" in r.url else None,
        )
        sign_in(p, console.base, "ivy")
        open_case(p, console.base, CASE, "Play the moment")
        p.goto(f"{console.base}/search/face?case={CASE}")
        p.set_input_files("#probe", str(console.root / person.probe))
        p.click("#face-form button[type=submit]")
        p.wait_for_selector("#result-count", timeout=300_000)

        # a sighting on the masked camera if there is one (the mask shows in the screenshot)
        masked = p.locator(f"li.tile[data-camera='{MASKED}']")
        tile = masked.first if masked.count() else p.locator("li.tile[data-sighting]").first
        sighting = str(tile.get_attribute("data-sighting"))
        moment = dt.datetime.fromisoformat(str(tile.get_attribute("data-ts")))
        tile.locator("a[data-play]").click()
        video = "#player-panel video"
        p.wait_for_function(_ready(video), timeout=120_000)
        now, clip_start, paused = p.eval_on_selector(
            video, "v => [v.currentTime, v.dataset.clipStart, v.paused]"
        )
        first = dt.datetime.fromisoformat(clip_start)
        wanted = max(0.0, (moment - first).total_seconds() - lead)  # lead s before, not before the clip
        assert abs(now - wanted) <= TOLERANCE_S, (now, wanted, paused)
        p.wait_for_function(  # it plays: frames come after the start
            f"() => document.querySelector('{video}').currentTime > {now + 0.3}", timeout=30_000
        )
        assert p.locator(video).evaluate("v => v.duration") > 0
        panel = p.inner_text("#player-panel")
        assert "privacy mask" in panel and "no role sees the raw view" in panel
        p.screenshot(path=str(console.shots / "play.png"), full_page=False)
        html = p.content()
        src = str(p.get_attribute(video, "src"))

        # from the case page's kept evidence too
        tile.locator("input[name=note]").fill("walks past the hotel entrance")
        tile.locator("button", has_text="Keep as evidence").click()
        p.wait_for_selector(f"{tile_selector(sighting)} .ok")
        p.goto(f"{console.base}/case?case={CASE}")
        p.locator("#evidence a[data-play]").first.click()
        p.wait_for_function(_ready("#evidence-player video"), timeout=120_000)
        p.screenshot(path=str(console.shots / "play-evidence.png"), full_page=True)
        html += p.content()
        # the link is a page of its own too (opened in a new tab, or without script)
        p.goto(console.base + str(p.locator("#evidence a[data-play]").first.get_attribute("href")))
        p.wait_for_function(_ready("main video"), timeout=120_000)
        assert p.locator("h1").inner_text() == "Play the moment"
        p.screenshot(path=str(console.shots / "play-page.png"), full_page=True)
        html += p.content()

    # streamed with byte ranges
    partial = [h for status, h in clip_answers if status == 206]
    assert partial, clip_answers
    assert all(h.get("content-range", "").startswith("bytes ") for h in partial)
    assert all(h.get("accept-ranges") == "bytes" for _, h in clip_answers)
    # opaque ids only: no storage path in the pages or in any request
    for location in _stored_locations(console):
        assert location not in html
        assert not any(location in url for url in requests)
    assert "/footage/" not in html and not any("/footage/" in u for u in requests)
    # each play audited: who, case, which sighting
    rows = AuditLog(Storage(console.settings)).list(case_id=CASE, action="media_view", limit=1000)
    plays = [json.loads(r.params) for r in rows if r.user == "ivy" and r.outcome == "ok"]
    plays = [params for params in plays if params.get("media") == "play"]
    assert len(plays) == 3 and {params["sighting"] for params in plays} == {sighting}

    # the clip's token is the signed-in investigator's: another user cannot use it
    with page() as other:
        sign_in(other, console.base, "sam")
        answer = other.goto(f"{console.base}{src}")
        assert answer is not None and answer.status == 404
    # an analyst is refused the player (and the clip), and the refusal is audited
    with page() as analyst:
        sign_in(analyst, console.base, "ann")
        query = urlencode({"case": CASE, "kind": "face", "id": sighting})
        answer = analyst.goto(f"{console.base}/play?{query}")
        assert answer is not None and answer.status == 403
        assert "may not media_view" in analyst.inner_text("[role=alert]")
        answer = analyst.goto(f"{console.base}{src}")
        assert answer is not None and answer.status == 403
    refused = AuditLog(Storage(console.settings)).list(user="ann", action="media_view", limit=100)
    assert any(r.outcome == "refused" for r in refused)


def tile_selector(sighting: str) -> str:
    return f"li.tile[data-sighting={json.dumps(sighting)}]"
