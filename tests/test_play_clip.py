"""The console player's clip (tasks/export/preview.py) and its in-memory tokens (service/clips.py).

Two contiguous 6 s segments of a camera with a privacy mask, written with PyAV: the clip
around a moment spans both, starts ``play.before_s`` before it (or where the footage
starts, with the gap said), has the mask applied to every frame, and puts its index first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from citywatch.cameras import CameraConfig
from citywatch.schemas import SegmentRow, rows_to_arrow, utcnow
from citywatch.service.clips import ClipCache
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import cameras_table, segments_table, upsert
from citywatch.tasks.export.preview import PreviewClip, render_preview

T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
W, H, FPS, SEGMENT_S = 160, 120, 10, 6
MASK = [(80.0, 0.0), (159.0, 0.0), (159.0, 40.0), (80.0, 40.0)]


def _segment(k: int) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.time_base = Fraction(1, FPS)
        for i in range(SEGMENT_S * FPS):
            image = np.full((H, W, 3), 200, np.uint8)
            image[60:, :] = 40 + 80 * k  # the lower half: which segment a frame came from
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()


@pytest.fixture()
def footage(tmp_path: Path) -> tuple[Storage, Settings]:
    settings = Settings(
        storage__root=str(tmp_path / "root"),
        storage__state_dir=str(tmp_path / "state"),
        redact__mode="fill",
        play__before_s=5,
        play__after_s=4,
        play__lead_s=3,
    )
    storage = Storage(settings)
    camera = CameraConfig(id="cam-a", name="A Street", frame_size=(W, H), privacy_masks=[MASK]).to_row()
    upsert(cameras_table(storage.db), rows_to_arrow([camera], type(camera).SCHEMA))
    rows = []
    for k in range(2):
        start = T0 + dt.timedelta(seconds=SEGMENT_S * k)
        data = _segment(k)
        uri = storage.write_bytes(f"footage/cam-a/{start:%Y%m%dT%H%M%SZ}.mp4", data)
        rows.append(
            SegmentRow(
                id=f"cam-a/{start:%Y%m%dT%H%M%SZ}", camera_id="cam-a", uri=uri, start=start,
                end=start + dt.timedelta(seconds=SEGMENT_S - 1 / FPS), size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(), state="done", error="", model="m",
                frames_decoded=SEGMENT_S * FPS, frames_analysed=12, faces=0, updated_at=utcnow(),
            )
        )  # fmt: skip
    upsert(segments_table(storage.db), rows_to_arrow(rows, SegmentRow.SCHEMA))
    return storage, settings


def _frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def test_the_clip_spans_segments_from_before_the_moment_with_the_mask_applied(footage) -> None:  # noqa: ANN001
    storage, settings = footage
    moment = T0 + dt.timedelta(seconds=5.5)
    clip = render_preview(storage, settings, "cam-a", moment)
    assert clip.first_ts == T0 + dt.timedelta(seconds=0.5) and clip.gaps == ()
    assert abs((clip.last_ts - (moment + dt.timedelta(seconds=4))).total_seconds()) <= 0.1
    assert clip.moment_s == pytest.approx(5.0) and clip.start_s(3) == pytest.approx(2.0)
    assert clip.masks == 1 and clip.camera_name == "A Street"
    assert clip.data.index(b"moov") < clip.data.index(b"mdat")  # a browser can start at once
    frames = _frames(clip.data)
    assert len(frames) == clip.frames == 91
    lower = [int(f[100, 20].mean()) for f in frames]
    assert lower[0] < 80 < lower[-1]  # both segments are in it
    for f in frames:
        assert f[5:35, 85:155].max() <= 12  # the privacy mask, filled
        assert f[5:35, 10:70].min() >= 185  # the rest untouched


def test_near_the_start_of_the_footage_the_clip_starts_there_and_says_so(footage) -> None:  # noqa: ANN001
    storage, settings = footage
    clip = render_preview(storage, settings, "cam-a", T0 + dt.timedelta(seconds=1))
    assert clip.first_ts == T0 and clip.start_s(3) == 0.0
    assert [(g.start, g.end) for g in clip.gaps] == [(T0 - dt.timedelta(seconds=4), T0)]


def _clip(size: int) -> PreviewClip:
    return PreviewClip(b"x" * size, "cam-a", "A", T0, T0, T0, 1, 0, ())


def test_a_clip_token_serves_only_its_user_and_case() -> None:
    cache = ClipCache(max_bytes=1000)
    token = cache.keep("face", "s1", _clip(10), "ivy", "C-1")
    assert cache.fetch(token, "ivy", "C-1") is not None
    assert cache.fetch(token, "sam", "C-1") is None  # another user
    assert cache.fetch(token, "ivy", "C-2") is None  # another case
    assert cache.fetch("../../etc/passwd", "ivy", "C-1") is None
    assert cache.fetch(token[:-1] + ("A" if token[-1] != "A" else "B"), "ivy", "C-1") is None
    assert cache.clip("face", "s1") is not None and cache.clip("plate", "s1") is None


def test_the_least_recently_played_clip_goes_first_and_the_last_one_stays() -> None:
    cache = ClipCache(max_bytes=1000)
    first = cache.keep("face", "s1", _clip(600), "ivy", "C-1")
    cache.keep("face", "s2", _clip(300), "ivy", "C-1")
    cache.clip("face", "s1")  # played again: most recent
    cache.keep("face", "s3", _clip(300), "ivy", "C-1")
    assert cache.clip("face", "s2") is None and cache.fetch(first, "ivy", "C-1") is not None
    big = cache.keep("face", "s4", _clip(5000), "ivy", "C-1")  # larger than the budget: kept alone
    assert cache.fetch(big, "ivy", "C-1") is not None and cache.clip("face", "s1") is None


def _face_row(storage: Storage, moment: dt.datetime) -> str:
    """One faces row on cam-a at ``moment`` (only what the player reads is meaningful)."""
    from citywatch.schemas import FaceRow
    from citywatch.tables import open_table

    row = FaceRow(
        id="cam-a/20261120T080000Z#t0000@0005500", segment_id="cam-a/20261120T080000Z", camera_id="cam-a",
        ts=moment, bbox=(10.0, 10.0, 30.0, 30.0), det_score=0.9, quality=0.9,
        embedding=np.zeros(4, np.float32), track_id="cam-a/20261120T080000Z#t0000", track_start=moment,
        track_end=moment, thumb_uri=storage.write_bytes("thumbs/x.jpg", b"jpeg"), lat=None, lon=None,
        model="m",
    )  # fmt: skip
    upsert(open_table(storage.db, "faces", FaceRow.schema(4)), rows_to_arrow([row], FaceRow.schema(4)))
    return row.id


def test_the_player_streams_byte_ranges_to_its_user_and_audits_each_play(footage) -> None:  # noqa: ANN001
    import re

    from citywatch.governance.audit_log import AuditLog
    from tests.console_support import FORM, signed_in
    from tests.service_support import add_users

    storage, settings = footage
    add_users(settings)
    face = _face_row(storage, T0 + dt.timedelta(seconds=5.5))
    ivy, headers = signed_in(settings, "ivy")
    case = {"case_id": "C-PLAY", "title": "t", "legal_basis": "a robbery on Main St, to identify the suspect"}
    assert ivy.post("/cases", data=case, files=FORM, headers=headers).status_code == 200
    query = {"case": "C-PLAY", "kind": "face", "id": face}
    page = ivy.get("/play", params=query, headers=headers)
    assert page.status_code == 200 and 'data-start="2.000"' in page.text
    assert str(storage.root) not in page.text and "footage/" not in page.text
    src = re.search(r'src="(/media/clip\?[^"]+)"', page.text)
    assert src is not None
    url = src.group(1).replace("&amp;", "&")
    whole = ivy.get(url)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    part = ivy.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"
    assert ivy.get(url, headers={"Range": "bytes=-10"}).content == whole.content[-10:]
    # the token is ivy's: another investigator gets nothing; bad ids and kinds are refused
    sue, _ = signed_in(settings, "sue")
    assert sue.get(url).status_code == 404
    assert ivy.get("/play", params={**query, "id": "no such row"}).status_code == 400
    assert ivy.get("/play", params={**query, "kind": "person"}).status_code == 400
    assert ivy.get("/play", params={**query, "id": "cam-a/x#t0000@0000001"}).status_code == 404
    ann, _ = signed_in(settings, "ann")
    assert ann.get("/play", params=query).status_code == 403
    assert ann.get(url).status_code == 403
    rows = AuditLog(storage).list(action="media_view", limit=100)
    assert [(r.user, r.outcome, r.case_id) for r in rows if r.user == "ivy"][0] == ("ivy", "ok", "C-PLAY")
    assert any(r.user == "ann" and r.outcome == "refused" for r in rows)
