"""Removing a watchlist entry purges its template from the table's history too.

LanceDB keeps every version of a table: without a purge, ``checkout(earlier)`` (or the
data files on disk) would still hold a removed entry's face embeddings or plate. The
checks look the way someone with the storage credentials would: every version the
table still lists, and the raw bytes of every file under ``db/watchlist.lance``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from citywatch.governance.watchlist import add_plate, remove, watchlist_table
from citywatch.schemas import WatchlistRow, arrow_to_rows
from citywatch.storage import Storage
from tests.watchlist_support import (
    NOW,
    Faces,
    enrol_active,
    faces,  # noqa: F401 - the module's fixture
    make_settings,
    request,
)


def _files_bytes(root: Path) -> bytes:
    files = sorted((root / "db" / "watchlist.lance").rglob("*"))
    return b"".join(p.read_bytes() for p in files if p.is_file())


def _rows_in_every_version(storage: Storage) -> list[WatchlistRow]:
    table = watchlist_table(storage.db)
    rows: list[WatchlistRow] = []
    for version in table.list_versions():
        table.checkout(version["version"])
        rows += arrow_to_rows(table.to_arrow(), WatchlistRow)
    table.checkout_latest()
    return rows


def test_a_removed_entrys_template_is_gone_from_every_version(tmp_path: Path, faces: Faces) -> None:
    settings = make_settings(tmp_path)
    storage = Storage(settings)
    face = enrol_active(storage, faces, label="Person A")
    kept = add_plate(  # another entry, untouched
        storage, "KK5555", request(label="other van"), default_max_distance=1.0, max_days=30, now=NOW
    )
    plate = add_plate(
        storage, "XY9876", request(label="stolen van"), default_max_distance=1.0, max_days=30, now=NOW
    )
    table = watchlist_table(storage.db)
    earlier = table.version
    vector = np.asarray(face.embeddings[0], dtype=np.float32).tobytes()
    assert vector in _files_bytes(tmp_path / "data") and b"XY9876" in _files_bytes(tmp_path / "data")

    remove(storage, face.id, "carol", "found safe", now=NOW)
    remove(storage, plate.id, "carol", "van recovered", now=NOW)

    for row in _rows_in_every_version(storage):
        if row.id in (face.id, plate.id):
            assert row.embeddings == [] and row.plate_query == ""
    versions = [v["version"] for v in watchlist_table(storage.db).list_versions()]
    assert earlier not in versions  # that version held the template: it is gone
    blob = _files_bytes(tmp_path / "data")
    assert vector not in blob and b"XY9876" not in blob
    # what stays: the entries' history, and the other entry's template
    rows = {r.id: r for r in arrow_to_rows(watchlist_table(storage.db).to_arrow(), WatchlistRow)}
    assert rows[face.id].removed_by == "carol" and rows[plate.id].removal_note == "van recovered"
    assert rows[kept.id].plate_query == "KK5555" and b"KK5555" in blob
