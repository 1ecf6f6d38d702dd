"""HTML reports: hostile names stay text, and the embedded sightings JSON parses."""

from __future__ import annotations

import datetime as dt
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from citywatch.schemas import PlateRow
from citywatch.settings import Settings
from citywatch.sightings import PlateSighting, Sighting
from citywatch.storage import Storage
from citywatch.tasks.search.report import (
    ReportHeader,
    plate_json,
    render_plate_report,
    render_search_report,
    script_json,
    sighting_json,
)

T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
HOSTILE = "</script><script>alert(1)</script>"
HOSTILE_TOO = "<img src=x onerror=alert(2)> & \"quotes\" 'too' <!-- \u2028"


class _Page(HTMLParser):
    """What a browser would build: the tags, and the text of each script element."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        if tag == "script":
            self._in_script, self.scripts = True, [*self.scripts, ""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(Settings(storage__root=str(tmp_path)))


def _thumb(storage: Storage, key: str) -> str:
    ok, jpeg = cv2.imencode(".jpg", np.full((24, 24, 3), 128, np.uint8))
    assert ok
    return storage.write_bytes(key, jpeg.tobytes())


def _sighting(rank: int, thumb_uri: str, camera_name: str) -> Sighting:
    return Sighting(
        rank=rank,
        face_id=f"cam-a/20261120T080000Z#t000{rank}@0001000",
        camera_id="cam-a",
        camera_name=camera_name,
        ts=T0,
        track_start=T0,
        track_end=T0 + dt.timedelta(seconds=3),
        distance=0.31234,
        similarity=0.7123,
        bbox=(1.0, 2.0, 30.0, 40.0),
        segment_uri=f"/footage/cam-a/{HOSTILE_TOO}.mp4",
        thumb_uri=thumb_uri,
        lat=22.28,
        lon=114.15,
    )


def _plate(rank: int, thumb_uri: str, camera_name: str) -> PlateSighting:
    row = PlateRow(
        id=f"p{rank}",
        segment_id="cam-a/20261120T080000Z",
        camera_id="cam-a",
        ts=T0,
        first_ts=T0,
        last_ts=T0 + dt.timedelta(seconds=2),
        text="AB1234",
        confidence=0.9,
        char_confidences=[0.9] * 6,
        reads=4,
        low_confidence=False,
        bbox=(1.0, 2.0, 3.0, 4.0),
        track_id=f"p{rank}",
        thumb_uri=thumb_uri,
        lat=None,
        lon=None,
        model="ocr",
    )
    return PlateSighting(rank, row, camera_name, 0.0 if rank == 1 else 0.3, "/footage/x.mp4")


HEADER = ReportHeader(f"Face search {HOSTILE}", (("probe", HOSTILE_TOO), ("case", "C-1")), T0)


def _check_page(html: str, payload: list[dict[str, object]]) -> None:
    page = _parse(html)
    assert page.tags.count("script") == 1  # the hostile names opened no script element
    assert not [name for name, _ in page.attrs if name.startswith("on")]  # no event handler got in
    assert all(v.startswith("data:image/jpeg;base64,") for k, v in page.attrs if k == "src" and v)
    assert len(page.scripts) == 1
    assert json.loads(page.scripts[0]) == payload  # valid JSON, hostile strings round-trip
    assert HOSTILE not in html and "<img src=x" not in html and "<!--" not in html
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text
    assert "&lt;img src=x onerror=alert(2)&gt; &amp; &#34;quotes&#34; &#39;too&#39;" in html


def test_face_report_escapes_names_and_embeds_parseable_json(storage: Storage) -> None:
    sightings = [
        _sighting(1, _thumb(storage, "thumbs/a.jpg"), HOSTILE),
        _sighting(2, str(Path(storage.root) / "thumbs" / "gone.jpg"), HOSTILE_TOO),
    ]
    html = render_search_report(storage, HEADER, sightings)
    _check_page(html, [sighting_json(s) for s in sightings])
    assert html.count("data:image/jpeg;base64,") == 1
    assert "<em>thumbnail missing</em>" in html
    assert "reviewer must confirm" in html
    assert "<td>0.312</td><td>0.71</td>" in html
    assert "2026-11-20T08:00:00Z<br><small>track 2026-11-20T08:00:00Z .. 2026-11-20T08:00:03Z" in html


def test_plate_report_escapes_names_and_embeds_parseable_json(storage: Storage) -> None:
    sightings = [_plate(1, _thumb(storage, "thumbs/p.jpg"), HOSTILE), _plate(2, "", HOSTILE_TOO)]
    html = render_plate_report(storage, HEADER, sightings)
    _check_page(html, [plate_json(s) for s in sightings])
    assert "<td>exact</td>" in html and "<td>0.3 edits</td>" in html
    assert "<td>unknown</td>" in html


def test_empty_report_says_so(storage: Storage) -> None:
    html = render_search_report(storage, ReportHeader("Face search", (), T0), [])
    assert '<td colspan="8">no sighting</td>' in html
    assert json.loads(_parse(html).scripts[0]) == []


@pytest.mark.parametrize("value", [HOSTILE, HOSTILE_TOO, "plain", "a&b<c>d", "\u2028"])
def test_script_json_escapes_only_what_could_end_the_element(value: str) -> None:
    text = script_json({"name": value})
    assert not re.search(r"[<>&]", text)
    assert json.loads(text) == {"name": value}


def test_report_in_a_real_browser_shows_the_table_and_runs_no_injected_script(
    storage: Storage, tmp_path: Path
) -> None:
    """Open the report as an investigator would: headless chromium, screenshot kept."""
    from tests.browser import page

    sightings = [_sighting(1, _thumb(storage, "thumbs/a.jpg"), HOSTILE), _sighting(2, "", "Queen's Rd")]
    report = tmp_path / "report.html"
    report.write_text(render_search_report(storage, HEADER, sightings), encoding="utf-8")
    dialogs: list[str] = []
    with page() as browser_page:
        browser_page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        browser_page.goto(report.as_uri())
        assert HOSTILE in browser_page.inner_text("h1")  # shown as text
        rows = browser_page.locator("#sightings-table tbody tr")
        assert rows.count() == 2
        assert "Queen's Rd" in rows.nth(1).inner_text()
        assert browser_page.locator("img").first.evaluate("img => img.naturalWidth") == 24
        embedded = browser_page.evaluate(
            "JSON.parse(document.querySelector('script[type=\"application/json\"]').textContent)"
        )
        assert [s["rank"] for s in embedded] == [1, 2]
        browser_page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert dialogs == []  # no injected script ran
    assert (tmp_path / "report.png").stat().st_size > 5000
