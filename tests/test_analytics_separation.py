"""The analyst has no path to an embedding: not through citywatch.analytics, not in the
derived dataset it reads (its schema and its bytes are checked), and in a deployment
(``analytics_root`` set) nothing but that dataset is opened at all.

(The bucket policies that keep analysts' credentials off the biometric prefixes:
tests/test_infra_policies.py.)
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from citywatch import analytics as cw
from citywatch.derived import DERIVED_SCHEMAS, HIDDEN_COLUMNS, DerivedDataset
from citywatch.errors import BadInputError
from citywatch.schemas import FaceRow, SegmentRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import faces_table, segments_table, table_names, upsert
from citywatch.tasks.publish import is_stale, publish_analytics
from tests.test_analytics import DIM, FACES, segment, write_tables

VECTOR = np.array([0.1234567, -0.7654321, 0.5555555, 0.3141592], np.float32)  # easy to find


def _root(tmp_path: Path) -> Settings:
    settings = Settings(storage__root=str(tmp_path / "data"))
    write_tables(settings)
    marked = dataclasses.replace(FACES[0], id="marked", embedding=VECTOR, thumb_uri="thumbs/marked-face.jpg")
    upsert(faces_table(Storage(settings).db, DIM), rows_to_arrow([marked], FaceRow.schema(DIM)))
    publish_analytics(Storage(settings))
    return settings


def _bytes_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_the_derived_dataset_holds_no_embedding_and_no_thumbnail(tmp_path: Path) -> None:
    settings = _root(tmp_path)
    derived = DerivedDataset(settings)
    assert derived.location == str(tmp_path / "data" / "analytics")
    assert set(table_names(derived.db)) == set(DERIVED_SCHEMAS)
    for name in DERIVED_SCHEMAS:
        table = derived.db.open_table(name)
        assert HIDDEN_COLUMNS.isdisjoint(table.schema.names), name
        assert table.schema.names == DERIVED_SCHEMAS[name].names  # nothing else, in any table
    faces = derived.db.open_table("faces").to_arrow()
    assert "marked" in faces.column("id").to_pylist()  # the row is there, for counting
    blob = _bytes_under(tmp_path / "data" / "analytics")
    assert VECTOR.tobytes() not in blob and b"marked-face.jpg" not in blob
    # ... while the biometric table beside it does hold them
    assert VECTOR.tobytes() in _bytes_under(tmp_path / "data" / "db" / "faces.lance")


def test_the_analytics_api_reaches_only_the_derived_dataset(tmp_path: Path) -> None:
    settings = _root(tmp_path)
    at = cw.open_tables(settings.model_copy(update={"user": "demo-analyst"}))
    assert at.location == str(tmp_path / "data" / "analytics")
    assert not any(isinstance(v, Storage) for v in vars(at).values())
    derived_url = DerivedDataset(settings).url
    for name, table in at._tables.items():  # what a curious analyst would poke at
        assert table is not None and name in DERIVED_SCHEMAS
        assert HIDDEN_COLUMNS.isdisjoint(table.schema.names)
        assert table.uri.startswith(derived_url), table.uri
    assert "embedding" not in at.faces().columns and "thumb_uri" not in at.plates().columns
    con = at.duckdb()
    assert {r[0] for r in con.sql("show tables").fetchall()} == set(DERIVED_SCHEMAS)
    with pytest.raises(BadInputError, match="not one analytics reads"):
        at.arrow("watchlist")  # type: ignore[arg-type]
    assert not hasattr(at, "read_thumbnail")  # no reading of files by path


def test_a_deployed_analyst_opens_nothing_but_the_dataset(tmp_path: Path) -> None:
    """analytics_root set: no root, no users, no audit log is touched (they are not there)."""
    _root(tmp_path)
    shared = tmp_path / "analyst-share"
    shutil.copytree(tmp_path / "data" / "analytics", shared)  # what the analysts' prefix holds
    nowhere = tmp_path / "no-root-here"
    analyst = Settings(storage__root=str(nowhere), storage__analytics_root=str(shared), user="ana")
    at = cw.open_tables(analyst)
    assert at.actor is None and at.location == str(shared)
    counts = cw.activity(at.faces(), at.cameras(), by=("camera",))
    assert dict(zip(counts["camera_id"], counts["tracks"], strict=True)) == {
        "cam-a": 2,
        "cam-b": 1,
        "cam-c": 0,
    }
    assert not nowhere.exists()  # nothing was read from or written to a storage root


def test_rows_deleted_upstream_leave_the_derived_history(tmp_path: Path) -> None:
    settings = _root(tmp_path)
    storage = Storage(settings)
    faces_table(storage.db, DIM).delete("id = 'marked'")  # what retention does
    publish_analytics(storage)
    faces = DerivedDataset(settings).db.open_table("faces")
    assert [v["version"] for v in faces.list_versions()] == [faces.version]  # no older version to check out
    assert "marked" not in faces.to_arrow().column("id").to_pylist()
    assert b"marked" not in _bytes_under(tmp_path / "data" / "analytics" / "db" / "faces.lance")


def test_a_dataset_behind_the_segments_table_is_stale(tmp_path: Path) -> None:
    """What makes an index run with nothing new republish (a publish that failed before)."""
    settings = _root(tmp_path)
    storage = Storage(settings)
    assert not is_stale(storage)
    upsert(segments_table(storage.db), rows_to_arrow([segment("cam-a", 120)], SegmentRow.SCHEMA))
    assert is_stale(storage)
    publish_analytics(storage)
    assert not is_stale(storage)
    empty = Storage(Settings(storage__root=str(tmp_path / "empty")))
    assert not is_stale(empty)  # nothing indexed: nothing to publish
