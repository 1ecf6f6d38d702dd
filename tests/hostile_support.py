"""Shared pieces of the hostile-input tests: hostile files, footage folders with one
problem each, real ids of the hostile root, and a digest of every table."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import struct
import zlib
from dataclasses import replace
from pathlib import Path

from PIL import Image

from citywatch.sample.media import fetch_media
from citywatch.settings import Settings
from citywatch.storage import Storage


def png_bomb(path: Path, width: int = 60000, height: int = 60000) -> str:
    """A valid PNG header claiming ``width`` x ``height`` px with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
    return str(path)


def hostile_files(tmp: Path) -> dict[str, str]:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "empty.jpg").write_bytes(b"")
    (tmp / "text.jpg").write_text("GIF89a? no, just text")
    good = (fetch_media() / "obama.jpg").read_bytes()
    (tmp / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (tmp / "huge.jpg").write_bytes(b"\xff\xd8" + b"\x00" * (21 * 1024 * 1024))
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    (tmp / "tiny.png").write_bytes(buf.getvalue())
    return {
        "empty": str(tmp / "empty.jpg"),
        "text": str(tmp / "text.jpg"),
        "truncated": str(tmp / "truncated.jpg"),
        "huge": str(tmp / "huge.jpg"),
        "bomb": png_bomb(tmp / "bomb.png"),
        "big": png_bomb(tmp / "big.png", 8000, 5000),  # 40 MP: under PIL's limit, over ours
        "tiny": str(tmp / "tiny.png"),
        **footage_folders(tmp / "footage"),
    }


SEGMENT = "cam-queens-rd/20261121T080000Z"  # a sample camera, a day after the sample


def footage_folders(tmp: Path) -> dict[str, str]:
    """Footage folders for ``index --footage``, one problem each."""

    def folder(name: str, files: dict[str, bytes]) -> str:
        for key, data in files.items():
            (tmp / name / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name / key).write_bytes(data)
        return str(tmp / name)

    junk = b"not a video " * 10
    links = folder("links", {})
    (Path(links) / "cam-queens-rd").mkdir(parents=True)
    (Path(links) / SEGMENT).with_suffix(".mp4").symlink_to(fetch_media() / "obama.jpg")
    return {
        "conflict": folder("conflict", {f"{SEGMENT}.mp4": junk, f"{SEGMENT}.mkv": junk}),
        "corrupt": folder("corrupt", {f"{SEGMENT}.mp4": junk}),
        "newline": folder("newline", {"cam-nl\n/20261121T080000Z.mp4": junk}),
        "future": folder("future", {"cam-queens-rd/20991120T080000Z.mp4": junk}),
        "links": links,
    }


def tables_digest(root: Path) -> dict[str, str]:
    import lancedb

    db = lancedb.connect(str(root / "db"))
    out = {}
    for name in db.list_tables(limit=1000).tables:
        # the audit log records refusals by design; discovery marks are the listing's own
        # bookkeeping (where each camera folder's next listing starts), not data
        if name in ("audit", "discovery_marks"):
            continue
        table = db.open_table(name).to_arrow()
        rows = sorted(repr(r) for r in table.to_pylist())
        out[name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out


def pending_plate_entry(root: Path) -> None:
    """A real entry awaiting approval: its id with a newline added must not approve it."""
    from citywatch.governance.watchlist import add_plate
    from citywatch.schemas import utcnow
    from tests.watchlist_support import request

    now = utcnow()
    add_plate(
        Storage(Settings(storage__root=str(root))),
        "HK4321",
        replace(request(reason="stolen_vehicle"), expires_at=now + dt.timedelta(days=2)),
        default_max_distance=0.6,
        max_days=30,
        now=now,
    )


def real_ids(root: Path) -> dict[str, str]:
    """Real ids of the hostile root, for the rows that append a newline to one."""
    from citywatch.governance.alerts import alert_id
    from citywatch.governance.watchlist import list_entries

    storage = Storage(Settings(storage__root=str(root)))
    face = storage.db.open_table("faces").search().limit(1).to_list()[0]
    entry = list_entries(storage)[0].id
    return {
        "entry": entry,
        "alert": alert_id(entry, face["camera_id"], face["track_id"]),
        "track": face["track_id"],
        "sighting": face["id"],
    }
