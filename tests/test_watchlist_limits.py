"""Limits on what a watchlist entry or a probe may be (issue 13, items 5 and 8)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from citywatch.errors import BadInputError
from citywatch.governance.watchlist import add_plate, plate_rows_matched
from citywatch.images import decode_image
from citywatch.schemas import PlateRow, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import plates_table, upsert
from tests.test_identifiers import _plate
from tests.watchlist_support import NOW, make_settings, request


@pytest.mark.parametrize(
    ("pattern", "error"),
    [
        ("?*", "0 literal characters"),
        ("*A?", "1 literal"),
        ("AB*", "2 literal"),
        ("AB1*", None),
        ("A1", None),
    ],
)
def test_plate_patterns_need_a_few_literal_characters(
    tmp_path: Path, pattern: str, error: str | None
) -> None:
    storage = Storage(make_settings(tmp_path))
    add = lambda: add_plate(  # noqa: E731
        storage, pattern, request(reason="stolen_vehicle"), default_max_distance=0.6, max_days=30, now=NOW,
        min_literals=Settings().watchlist.plate_min_literals,
    )  # fmt: skip
    if error is None:
        assert add().plate_query == pattern  # exact plates may be short (A1 is a plate)
    else:
        with pytest.raises(BadInputError, match=f"{error}.*watchlist_plate_min_literals"):
            add()


def test_a_plate_entry_says_how_many_indexed_rows_it_would_have_matched(tmp_path: Path) -> None:
    storage = Storage(make_settings(tmp_path))
    rows = [_plate(text, "cam-a", i, NOW) for i, text in enumerate(["AB1234", "AB1299", "A81234", "CD5678"])]
    upsert(plates_table(storage.db), rows_to_arrow(rows, PlateRow.SCHEMA))
    entry = add_plate(
        storage, "AB12*", request(reason="stolen_vehicle"), default_max_distance=0.6, max_days=30, now=NOW
    )
    assert plate_rows_matched(storage, entry) == (3, 4)  # A81234: B read as 8 (0.3)


def _jpeg(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 120, 120)).save(buf, format="JPEG", quality=40)
    return buf.getvalue()


def test_a_probe_over_the_pixel_budget_is_refused_from_its_header() -> None:
    budget = Settings().search.probe_max_pixels
    assert budget == 25_000_000
    with pytest.raises(
        BadInputError, match=r"6000x4400 px .* the limit is 25,000,000 pixels \(probe_max_pixels\)"
    ):
        decode_image(_jpeg(6000, 4400), "big.jpg", max_pixels=budget)  # 26.4 MP: 39 MP cost 550 MB
    assert decode_image(_jpeg(5000, 4000), "ok.jpg", max_pixels=budget).shape == (4000, 5000, 3)
