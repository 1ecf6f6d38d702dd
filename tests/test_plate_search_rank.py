"""Plate search ranks from narrow columns and distinct texts (issue 19 item 5): the same
sightings, in the same order, as scoring every whole row, on a real LanceDB table."""

from __future__ import annotations

import datetime as dt
import random

import numpy as np
import pytest

from citywatch.plates import match_score, parse_plate_query
from citywatch.schemas import PlateRow, arrow_to_rows, rows_to_arrow
from citywatch.settings import Settings
from citywatch.storage import Storage
from citywatch.tables import plates_table
from citywatch.tasks.search.plates import Near, distance_m, rank_plates
from tests.plate_support import plate_pass

T0 = dt.datetime(2026, 11, 20, 8, tzinfo=dt.UTC)
PLATES = ["AB1234", "AB1284", "A81234", "KT8080", "HX517", "HX5I7", "PM2468", "CY903", "ZZ1", "AB12"]


def rows(n: int) -> list[PlateRow]:
    rng = random.Random(7)
    out = []
    for i in range(n):
        text = rng.choice(PLATES)
        ts = T0 + dt.timedelta(seconds=rng.randrange(0, 3600))
        confidence = round(rng.uniform(0.5, 1.0), 2)  # ties on purpose
        out.append(plate_pass(i, f"cam-{i % 4}", ts, text, confidence, rng))
    return out


def reference(
    all_rows: list[PlateRow], query_text: str, near: Near | None, top_k: int
) -> list[tuple[float, str]]:
    """The former path: every whole row read and scored."""
    query = parse_plate_query(query_text)
    scored = []
    for row in all_rows:
        score = match_score(query, row.text)
        if score is None:
            continue
        if near and (
            row.lat is None
            or row.lon is None
            or distance_m(near.lat, near.lon, row.lat, row.lon) > near.radius_m
        ):
            continue
        scored.append((score, row))
    scored.sort(key=lambda item: (item[0], -item[1].confidence, item[1].ts))
    return [(score, row.id) for score, row in scored[:top_k]]


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201 - LanceDB table
    storage = Storage(Settings(storage__root=str(tmp_path_factory.mktemp("plates"))))
    t = plates_table(storage.db)
    t.add(rows_to_arrow(rows(3000), PlateRow.SCHEMA))
    return t


@pytest.mark.parametrize("text", ["AB1234", "HX517", "AB12*", "?Y903", "KT8O8O", "NOPE99"])
@pytest.mark.parametrize("near", [None, Near(22.28, 114.15, 600.0)])
@pytest.mark.parametrize("top_k", [5, 50, 5000])
def test_ranking_matches_scoring_every_row(table, text: str, near: Near | None, top_k: int) -> None:  # noqa: ANN001
    all_rows = arrow_to_rows(table.to_arrow(), PlateRow)
    got = rank_plates(table, parse_plate_query(text), None, near=near, top_k=top_k)
    assert [(score, row.id) for score, row in got] == reference(all_rows, text, near, top_k)
    assert all(isinstance(row, PlateRow) and row.camera_id.startswith("cam-") for _, row in got)


def test_ranking_respects_the_window(table) -> None:  # noqa: ANN001
    got = rank_plates(table, parse_plate_query("AB1234"), "camera_id = 'cam-1'", near=None, top_k=1000)
    assert got and {row.camera_id for _, row in got} == {"cam-1"}


def test_the_vectorised_bound_never_exceeds_the_distance() -> None:
    from citywatch.plates import match_score
    from citywatch.tasks.search.plates import lower_bounds

    rng = random.Random(11)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abo -.\t·é"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 20))) for _ in range(4000)]
    texts += ["AB1234", "A81234", "AB 1234", "ab-1234", "OB1234", "DB1234", "AB12345678901234567", "XAB12"]
    pruned = 0
    for text_query in ("AB1234", "HX517", "O0I1", "AB12*", "?Y903", "*8O8*", "A?1*4"):
        query = parse_plate_query(text_query, max_edits=2.0)
        bounds = lower_bounds(query.text, np.array(texts), pattern=query.is_pattern)
        for text, bound in zip(texts, bounds.tolist(), strict=True):
            score = match_score(query, text)
            if score is not None:  # within the edits: the bound must not have dropped it
                assert bound <= score + 1e-9, (text_query, text, bound, score)
        pruned += int((bounds > query.max_edits).sum())
    assert pruned > 10_000  # and it does drop most far texts
