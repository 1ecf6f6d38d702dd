"""Rows (frozen dataclasses) to and from Arrow tables, and the time rows are stamped with."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Row = TypeVar("Row", bound="DataclassInstance")  # any row type (a dataclass)


def _plain(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.astype(np.float32).tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


def rows_to_arrow(rows: Sequence[DataclassInstance], schema: pa.Schema) -> pa.Table:
    """Rows (dataclasses) -> an Arrow table of ``schema``."""
    records = [{f.name: _plain(getattr(row, f.name)) for f in dataclasses.fields(row)} for row in rows]
    return pa.Table.from_pylist(records, schema=schema)


def arrow_to_rows(table: pa.Table, row_type: type[Row]) -> list[Row]:
    """An Arrow table -> rows of ``row_type`` (extra columns such as _distance ignored)."""
    names = [f.name for f in dataclasses.fields(row_type)]
    out: list[Row] = []
    for record in table.select(names).to_pylist():
        for vector in ("embedding", "template"):
            if vector in record and record[vector] is not None:
                record[vector] = np.asarray(record[vector], dtype=np.float32)
        if "bbox" in record and record["bbox"] is not None:
            record["bbox"] = tuple(record["bbox"])
        out.append(row_type(**record))
    return out


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
