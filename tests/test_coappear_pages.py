"""The case workspace's "Who was with them" panel through TestClient (and one screenshot).

The root is tests/coappear_support.py's (who is where, and when) with synthetic
embeddings: one random direction per person, so no face model is loaded and the tests
stay fast. The panel runs the governed functions the API runs; analysts are refused by
the server, not by the page.
"""

from __future__ import annotations

import html as html_lib
import io
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from citywatch.governance.audit_log import AuditLog
from citywatch.governance.auth import write_demo_users
from citywatch.governance.cases import keep_evidence, new_case
from citywatch.schemas import CameraRow, FaceRow, rows_to_arrow
from citywatch.service.app import create_app
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import cameras_table, faces_table
from citywatch.tasks.retention import add_hold
from tests import coappear_support as truth
from tests.service_support import PASSWORD, add_users, service_settings, sign_in

FORM = {"x": ("", b"")}  # console.js sends FormData: multipart
JS = {"X-Console": "1"}
WHY = "robbery on 20 Nov: who was with the suspect"
CASE = {"case_id": truth.CASE_ID}
WINDOW = {"since": "2026-11-20T07:00", "until": "2026-11-20T10:00", "tz": "UTC"}
COLOURS = {truth.SUBJECT: "#4a6fa5", truth.COMPANION: "#c0504d", truth.BYSTANDER: "#9bbb59"}


def synthetic_embeddings(dim: int = 128, seed: int = 11) -> dict[str, list[np.ndarray]]:
    """One random unit direction per person (two views each), far apart from the others."""
    rng = np.random.default_rng(seed)
    people = {a.person for a in truth.APPEARANCES}
    out = {}
    for person in sorted(people):
        base = rng.normal(size=dim)
        base /= np.linalg.norm(base)
        out[person] = [base.astype(np.float32), (base + rng.normal(0, 0.01, dim)).astype(np.float32)]
    return out


def build_root(settings: Settings) -> Storage:
    """tests/coappear_support.py's root, each face with a real thumbnail: a coloured square."""
    from PIL import Image, ImageDraw

    storage = Storage(settings)
    write_demo_users(storage)
    cameras = [
        CameraRow(c, c.upper(), "north", None, None, "fixed", None, None, None, [], [], True)
        for c in truth.CAMERAS
    ]
    cameras_table(storage.db).add(rows_to_arrow(cameras, CameraRow.SCHEMA))
    rows = []
    for row in truth.face_rows(synthetic_embeddings(), truth.APPEARANCES):
        person = row.thumb_uri.split("/")[1]
        picture = Image.new("RGB", (96, 96), COLOURS.get(person, "#8064a2"))
        ImageDraw.Draw(picture).text((8, 40), person[:12], fill="white")
        out = io.BytesIO()
        picture.save(out, format="JPEG")
        rows.append(replace(row, thumb_uri=storage.write_bytes(row.thumb_uri, out.getvalue())))
    faces_table(storage.db, len(rows[0].embedding)).add(
        rows_to_arrow(rows, FaceRow.schema(len(rows[0].embedding)))
    )
    for index, app in enumerate(truth.APPEARANCES[: len(truth.SUBJECT_WALKS)]):
        add_hold(storage, truth.CASE_ID, truth.track_id(index, app), "demo-supervisor", "subject")
    return storage


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = service_settings(
        tmp_path_factory.mktemp("coappear-pages") / "data", faces__match_threshold=0.8
    )
    storage = build_root(settings)
    add_users(settings)
    new_case(storage, truth.CASE_ID, "Robbery on Main St", WHY, "ivy")
    new_case(storage, "EMPTY-1", "Nothing kept yet", WHY, "ivy")
    return settings


def signed_in(settings: Settings, name: str) -> tuple[TestClient, dict[str, str]]:
    client = TestClient(create_app(settings))
    return client, {**JS, **sign_in(client, name)}  # the session cookie serves the pages too


def post(client: TestClient, headers: dict[str, str], path: str, data: dict[str, object]) -> str:
    r = client.post(path, data=data, files=FORM, headers=headers)
    assert r.status_code == 200, r.text
    return r.text


def thumb_ids(html: str) -> list[str]:
    return [html_lib.unescape(m) for m in re.findall(r'src="/media/thumb\?([^"]+)"', html)]


def group_ids(html: str, rank: int) -> list[str]:
    tile = html.split(f'data-group="{rank}"', 1)[1].split("</li>\n  {", 1)[0]
    part = tile.split('action="/case/group/search"', 1)[1].split("</form>", 1)[0]
    return [html_lib.unescape(v) for v in re.findall(r'name="sighting" value="([^"]+)"', part)]


def test_case_page_shows_the_panel_to_investigators_not_analysts(root: Settings) -> None:
    ivy, _ = signed_in(root, "ivy")
    page = ivy.get(f"/case?case={truth.CASE_ID}").text
    assert "<h2>Who was with them</h2>" in page and 'action="/case/companions"' in page
    assert 'name="window_s"' in page and 'value="10"' in page  # coappear.window_s
    assert 'action="/case/recurring"' in page and 'value="cam-d"' in page
    assert "/case/recurring/approve" not in page  # supervisors only
    sam, _ = signed_in(root, "sam")
    assert "/case/recurring/approve" in sam.get(f"/case?case={truth.CASE_ID}").text


def test_companions_panel_groups_thumbnails_and_audit(root: Settings) -> None:
    ivy, headers = signed_in(root, "ivy")
    html = post(ivy, headers, "/case/companions", CASE)
    assert "2 groups seen within ±10 s of the subject&#39;s 3 kept sightings" in html
    first = html.split('data-group="1"', 1)[1].split('data-group="2"', 1)[0]
    assert "3 sightings" in first and "with the subject 3 times" in first
    assert "CAM-A, CAM-B, CAM-C" in first and "first 2026-11-20 08:00:03 UTC+00:00" in first
    assert {i.rsplit("@", 1)[0] for i in group_ids(html, 1)} == truth.tracks_of(truth.COMPANION)
    # thumbnails by opaque id through the governed endpoint; no storage path in the page
    assert "thumbs/" not in html and "thumb_uri" not in html
    ids = thumb_ids(html)
    assert ids and all(i.startswith(f"case={truth.CASE_ID}&kind=face&id=") for i in ids)
    picture = ivy.get("/media/thumb?" + ids[0])
    assert picture.status_code == 200, (ids[0], picture.text)
    assert picture.headers["content-type"] == "image/jpeg"
    record = AuditLog(Storage(root)).list(case_id=truth.CASE_ID, action="search_coappear", limit=1)[0]
    assert (record.user, record.outcome, record.result_count) == ("ivy", "ok", 2)
    assert record.justification == WHY
    assert "companions (±10.0 s)" in ivy.get(f"/case?case={truth.CASE_ID}").text  # the case's searches


def test_kept_face_evidence_is_the_subject_too(root: Settings) -> None:
    storage = Storage(root)
    new_case(storage, "EV-1", "From evidence", WHY, "ivy")
    from citywatch.governance.cases import find_sighting

    subject = truth.track_id(0, truth.APPEARANCES[0])  # the subject on cam-a only
    keep_evidence(storage, "EV-1", find_sighting(storage, "face", f"{subject}@0"), "", "ivy")
    ivy, headers = signed_in(root, "ivy")
    html = post(ivy, headers, "/case/companions", {"case_id": "EV-1"})
    assert "of the subject&#39;s 1 kept sightings" in html
    tracks = {i.rsplit("@", 1)[0] for i in group_ids(html, 1)} | {
        i.rsplit("@", 1)[0] for i in group_ids(html, 2)
    }
    assert truth.tracks_of(truth.COMPANION) & tracks and truth.tracks_of(truth.BYSTANDER) <= tracks


def test_bad_input_and_refusals_are_said_server_side(root: Settings) -> None:
    ivy, headers = signed_in(root, "ivy")
    r = ivy.post("/case/companions", data={**CASE, "window_s": "-3"}, files=FORM, headers=headers)
    assert r.status_code == 400 and "must be 0 or more" in r.text
    r = ivy.post("/case/companions", data={**CASE, "window_s": "ten"}, files=FORM, headers=headers)
    assert r.status_code == 400 and "is not a number" in html_lib.unescape(r.text)
    data = {**CASE, "camera": "cam-a", **WINDOW, "min_count": "2.5"}
    r = ivy.post("/case/recurring", data=data, files=FORM, headers=headers)
    assert r.status_code == 400 and "is not a whole number" in html_lib.unescape(r.text)
    r = ivy.post("/case/recurring", data={**CASE, **WINDOW}, files=FORM, headers=headers)
    assert r.status_code == 400 and "at least one camera" in r.text
    r = ivy.post("/case/companions", data={"case_id": "EMPTY-1"}, files=FORM, headers=headers)
    assert r.status_code == 400 and "keeps no face sightings yet" in html_lib.unescape(r.text)
    ann, ann_headers = signed_in(root, "ann")
    assert "Who was with them" not in ann.get(f"/case?case={truth.CASE_ID}").text
    for path, data in (
        ("/case/companions", CASE),
        ("/case/recurring", {**CASE, "camera": "cam-a", **WINDOW}),
        ("/case/group/search", {**CASE, "sighting": f"{truth.track_id(4, truth.APPEARANCES[4])}@0"}),
    ):
        refused = ann.post(path, data=data, files=FORM, headers=ann_headers)
        assert refused.status_code == 403, (path, refused.text)
    refusals = AuditLog(Storage(root)).list(user="ann", limit=20)
    assert ("search_coappear", "refused") in {(r.action, r.outcome) for r in refusals}


def test_recurring_within_limits_then_over_them_waits_for_a_supervisor(root: Settings) -> None:
    ivy, headers = signed_in(root, "ivy")
    cams = {"camera": list(truth.CAMERAS)}
    html = post(ivy, headers, "/case/recurring", {**CASE, **cams, **WINDOW, "min_count": "4"})
    assert "groups seen at least 4 times on 4 cameras" in html
    recurring = [g for g in range(1, 10) if f'data-group="{g}"' in html]
    found = [{i.rsplit("@", 1)[0] for i in group_ids(html, g)} for g in recurring]
    assert truth.tracks_of(truth.RECURRING) in found and "with the subject" not in html

    month = {**CASE, **cams, "since": "2026-11-01T00:00", "until": "2026-11-30T00:00", "tz": "UTC"}
    waiting = html_lib.unescape(post(ivy, headers, "/case/recurring", month))
    assert "Waits for a supervisor." in waiting and "a window of 29 days (the limit is 7)" in waiting
    request_id = re.search(r'data-pending="(sr-[0-9a-f]+)"', waiting).group(1)  # type: ignore[union-attr]
    approve = {**CASE, "request_id": request_id, "justification": "a month of footage is proportionate"}
    assert ivy.post("/case/recurring/approve", data=approve, files=FORM, headers=headers).status_code == 403
    sam, sam_headers = signed_in(root, "sam")
    approved = html_lib.unescape(post(sam, sam_headers, "/case/recurring/approve", approve))
    assert f"Request {request_id} of ivy is approved by sam" in approved
    ran = post(ivy, headers, "/case/recurring", {**month, "approval": request_id, "min_count": "4"})
    assert f"(approved request {request_id})" in ran
    actions = {
        (r.user, r.action, r.outcome) for r in AuditLog(Storage(root)).list(case_id=truth.CASE_ID, limit=100)
    }
    assert {("ivy", "search_recurring", "ok"), ("sam", "recurring_approve", "ok")} <= actions


def test_promote_a_group_to_a_face_search_and_a_watchlist_request(root: Settings) -> None:
    ivy, headers = signed_in(root, "ivy")
    groups = post(ivy, headers, "/case/companions", CASE)
    companion = group_ids(groups, 1)
    found = post(ivy, headers, "/case/group/search", {**CASE, "sighting": companion})
    assert 'id="result-count"' in found and "Keep as evidence" in found
    found_tracks = {m.rsplit("@", 1)[0] for m in re.findall(r'data-sighting="([^"]+)"', found)}
    assert found_tracks == truth.tracks_of(truth.COMPANION)
    entry = {**CASE, "sighting": companion, "label": "companion 1", "reason": "suspect", "expires": "3d"}
    asked = html_lib.unescape(post(ivy, headers, "/case/group/watchlist", entry))
    assert "Requested face entry “companion 1” (pending)" in asked
    r = ivy.post("/case/group/watchlist", data={**entry, "label": " "}, files=FORM, headers=headers)
    assert r.status_code == 400 and "label" in r.text
    records = AuditLog(Storage(root)).list(case_id=truth.CASE_ID, user="ivy", limit=100)
    sources = {
        (r.action, json.loads(r.params).get("source") == "group") for r in records if r.outcome == "ok"
    }
    assert {("search_face", True), ("watchlist_request", True)} <= sources


def test_screenshot_of_the_panel(root: Settings, tmp_path: Path) -> None:
    """The panel after "Who was with them?" in a real browser (saved for a person to look at)."""
    from tests.browser import page
    from tests.service_support import running_service

    shots = Path(os.environ.get("CITYWATCH_SCREENSHOTS", tmp_path))
    with running_service(root) as base, page(timezone_id="Europe/Paris") as tab:
        tab.goto(f"{base}/login")
        tab.fill("input[name=name]", "ivy")
        tab.fill("input[name=password]", PASSWORD)
        tab.click("#signin button[type=submit]")
        tab.wait_for_url(re.compile(r".*/cases$"))
        tab.goto(f"{base}/case?case={truth.CASE_ID}")
        tab.click("#companions-form button[type=submit]")
        tab.wait_for_selector("#groups-count")
        tab.click('[data-group="1"] details:first-of-type summary')
        tab.wait_for_load_state("networkidle")
        tab.locator("#coappear").screenshot(path=str(shots / "coappear-panel.png"))
        assert tab.locator("[data-group]").count() == 2
        assert "UTC+01:00" in tab.locator('[data-group="1"]').inner_text()


def stored(settings: Settings) -> tuple[dict[str, int], set[str]]:
    """Rows per table, and every file under the root outside the tables' own folders and the
    audit log's sequence and checkpoint files."""
    storage = Storage(settings)
    counts = {name: storage.db.open_table(name).count_rows() for name in storage.db.list_tables().tables}
    root = Path(settings.storage.root)
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".lance" not in str(p)}
    return counts, {f for f in files if not f.startswith("audit/")}


def test_groups_are_not_stored_anywhere(root: Settings) -> None:
    """Issue #20 "groups vanish when the case's retention ends": cases have no retention date,
    and there is nothing to delete: groups are computed per request. Only audit records (the
    inputs and a count, never the groups' members) are added by a run."""
    ivy, headers = signed_in(root, "ivy")
    ivy.get(f"/case?case={truth.CASE_ID}")
    before_counts, before_files = stored(root)
    companions = post(ivy, headers, "/case/companions", CASE)
    post(ivy, headers, "/case/recurring", {**CASE, "camera": list(truth.CAMERAS), **WINDOW})
    after_counts, after_files = stored(root)
    assert after_files == before_files  # no report, no cache, no export of the groups
    grown = {t for t in after_counts if after_counts[t] != before_counts.get(t, 0)}
    assert grown == {"audit"}  # no rows anywhere else (an empty table opened on the way is no group)
    members = set(group_ids(companions, 1))
    records = AuditLog(Storage(root)).list(case_id=truth.CASE_ID, limit=after_counts["audit"])
    runs = [r for r in records if r.action in ("search_coappear", "search_recurring")]
    assert runs and not any(m in r.params or m in r.detail for r in runs for m in members)
