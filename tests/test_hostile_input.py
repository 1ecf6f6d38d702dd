"""Hostile input: each gives a clear error (exit 2 bad input, 3 not allowed) and leaves
every table unchanged. Refusals are recorded in the audit log (that table grows by
design); every other table is compared before and after.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from citywatch.cli.main import main
from citywatch.sample.media import fetch_media

pytestmark = pytest.mark.slow

CASE = ["--case", "HOSTILE-1", "--why", "testing hostile input handling"]
INJECT = "x' OR '1'='1"


def _png_bomb(path: Path) -> str:
    """A valid PNG header claiming 60000x60000 px with almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
    return str(path)


def _files(tmp: Path) -> dict[str, str]:
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
        "bomb": _png_bomb(tmp / "bomb.png"),
        "tiny": str(tmp / "tiny.png"),
    }


HOSTILE: list[tuple[str, list[str], int, str]] = [
    # (name, argv after --user, exit code, words the message must contain)
    ("camera injection", ["search", "face", "{obama}", "--camera", INJECT, *CASE], 2, "camera"),
    ("camera traversal", ["search", "face", "{obama}", "--camera", "../etc", *CASE], 2, "camera"),
    ("unknown camera", ["search", "face", "{obama}", "--camera", "cam-nowhere", *CASE], 2, "no such camera"),
    ("district injection", ["search", "face", "{obama}", "--district", INJECT, *CASE], 2, "district"),
    ("since injection", ["search", "face", "{obama}", "--since", "1' OR 1=1", *CASE], 2, "--since"),
    ("until not a date", ["search", "face", "{obama}", "--until", "2026-13-45", *CASE], 2, "--until"),
    (
        "since after until",
        ["search", "face", "{obama}", "--since", "2026-02-01", "--until", "2026-01-01", *CASE],
        2,
        "after",
    ),
    ("face index out of range", ["search", "face", "{obama}", "--face", "7", *CASE], 2, "out of range"),
    ("probe empty", ["search", "face", "{empty}", *CASE], 2, "empty"),
    ("probe not an image", ["search", "face", "{text}", *CASE], 2, "not a readable image"),
    ("probe truncated", ["search", "face", "{truncated}", *CASE], 2, "could not be decoded"),
    ("probe too many bytes", ["search", "face", "{huge}", *CASE], 2, "limit"),
    ("probe decompression bomb", ["search", "face", "{bomb}", *CASE], 2, "pixels"),
    ("probe without a face", ["search", "face", "{tiny}", *CASE], 2, "no face"),
    ("probe traversal to /etc", ["search", "face", "/etc/passwd", *CASE], 2, "not a readable image"),
    ("probe missing", ["search", "face", "/nonexistent/x.jpg", *CASE], 2, "does not exist"),
    (
        "case traversal",
        ["search", "face", "{obama}", "--case", "../../etc", "--why", "testing hostile input handling"],
        2,
        "case",
    ),
    ("case missing", ["search", "face", "{obama}", "--why", "testing hostile input"], 2, "case"),
    (
        "justification too short",
        ["search", "face", "{obama}", "--case", "C-1", "--why", "x"],
        2,
        "justification",
    ),
    ("plate injection", ["search", "plate", INJECT, *CASE], 2, "not allowed"),
    ("plate sql", ["search", "plate", "AB;DROP TABLE plates", *CASE], 2, "not allowed"),
    ("plate empty", ["search", "plate", "", *CASE], 2, "plate"),
    ("plate too long", ["search", "plate", "A" * 100, *CASE], 2, "plate"),
    ("near malformed", ["search", "plate", "AB12*", "--near", "22.3,north,5", *CASE], 2, "--near"),
    ("near out of range", ["search", "plate", "AB12*", "--near", "95,114,10", *CASE], 2, "--near"),
    (
        "watchlist plate injection",
        [
            "watchlist",
            "add",
            "plate",
            INJECT,
            "--label",
            "x",
            "--reason",
            "suspect",
            "--expires",
            "1d",
            *CASE,
        ],
        2,
        "not allowed",
    ),
    (
        "watchlist expiry too far",
        [
            "watchlist",
            "add",
            "plate",
            "AB1234",
            "--label",
            "x",
            "--reason",
            "suspect",
            "--expires",
            "400d",
            *CASE,
        ],
        2,
        "expir",
    ),
    (
        "watchlist photo with 6 faces",
        [
            "watchlist",
            "add",
            "face",
            "--photo",
            "{group}",
            "--label",
            "x",
            "--reason",
            "missing",
            "--expires",
            "1d",
            *CASE,
        ],
        2,
        "6 faces",
    ),
    ("approve injection", ["watchlist", "approve", INJECT, "--why", "hostile approve"], 2, "does not exist"),
    ("export sighting injection", ["export", "--sighting", INJECT, *CASE], 2, "sighting"),
    (
        "export camera traversal",
        [
            "export",
            "--camera",
            "../x",
            "--since",
            "2026-11-20T08:00:00Z",
            "--until",
            "2026-11-20T08:00:10Z",
            *CASE,
        ],
        2,
        "camera",
    ),
    ("hold injection", ["hold", INJECT, *CASE], 2, "no face or plate rows"),
]


def _tables_digest(root: Path) -> dict[str, str]:
    import lancedb

    db = lancedb.connect(str(root / "db"))
    out = {}
    for name in db.list_tables(limit=1000).tables:
        if name == "audit":
            continue
        table = db.open_table(name).to_arrow()
        rows = sorted(repr(r) for r in table.to_pylist())
        out[name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return out


@pytest.fixture(scope="module")
def hostile_root(indexed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:  # noqa: ANN001
    """A copy of the indexed sample, with a copy of the machine state that signed its audit
    records (the audit key), used by every command of this module (CITYWATCH_STORAGE__STATE_DIR)."""
    root = tmp_path_factory.mktemp("hostile") / "data"
    shutil.copytree(indexed.root, root)
    state = root.parent / "state"
    keys = Path(indexed.settings.storage.state_dir) / "keys"
    if keys.is_dir():
        shutil.copytree(keys, state / "keys")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(state))
        yield root


@pytest.mark.parametrize(("name", "argv", "code", "words"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_refused_cleanly(
    hostile_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch,  # noqa: ANN001
    name: str,
    argv: list[str],
    code: int,
    words: str,
) -> None:
    monkeypatch.setenv("CITYWATCH_STORAGE__STATE_DIR", str(hostile_root.parent / "state"))
    files = {
        **_files(tmp_path / "files"),
        "obama": str(hostile_root / "sample/probes/obama.jpg"),
        "group": str(fetch_media() / "t1.jpg"),
    }
    args = [a.format(**files) if a.startswith("{") else a for a in argv]
    user = (
        "demo-supervisor"
        if args[0] in ("watchlist", "hold") and args[1:2] != ["add"]
        else "demo-investigator"
    )
    before = _tables_digest(hostile_root)
    assert main(["--root", str(hostile_root), "--user", user, *args]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words.lower() in err.lower(), err
    assert "Traceback" not in err
    assert _tables_digest(hostile_root) == before


def test_unknown_user_is_refused_and_audited(hostile_root: Path, capsys) -> None:  # noqa: ANN001
    from citywatch.governance.audit_log import AuditLog
    from citywatch.settings import Settings
    from citywatch.storage import Storage

    assert main(["--root", str(hostile_root), "--user", INJECT, "search", "plate", "AB1234", *CASE]) in (2, 3)
    assert "error:" in capsys.readouterr().err
    last = AuditLog(Storage(Settings(storage__root=str(hostile_root)))).rows()[-1]
    assert last.outcome == "refused"
    assert AuditLog(Storage(Settings(storage__root=str(hostile_root)))).verify().ok
