"""An older store opens after an upgrade: columns added since are filled for old rows
(tables.ADDED_COLUMNS); any other difference is still refused."""

from __future__ import annotations

from pathlib import Path

import lancedb
import pyarrow as pa
import pytest

from citywatch.errors import BadInputError
from citywatch.schemas import PlateRow, SegmentRow
from citywatch.tables import ADDED_COLUMNS, open_table


def _older(schema: pa.Schema, table: str) -> pa.Schema:
    dropped = [schema.get_field_index(col) for (name, col) in ADDED_COLUMNS if name == table]
    for index in sorted(dropped, reverse=True):
        schema = schema.remove(index)
    return schema


def _empty_row(schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([{f.name: ("x" if f.name == "id" else None) for f in schema}], schema=schema)


@pytest.mark.parametrize("row_type", [SegmentRow, PlateRow])
def test_an_older_table_gets_the_added_columns_with_their_old_row_values(
    tmp_path: Path, row_type: type
) -> None:
    db = lancedb.connect(str(tmp_path))
    old_schema = _older(row_type.SCHEMA, row_type.TABLE)
    assert old_schema != row_type.SCHEMA
    db.create_table(row_type.TABLE, data=_empty_row(old_schema), schema=old_schema)
    table = open_table(db, row_type.TABLE, row_type.SCHEMA)
    assert set(table.schema.names) == set(row_type.SCHEMA.names)
    row = table.to_arrow().to_pylist()[0]
    expected = {"plates_rejected_text": 0, "gate_score": 1.0}
    for (name, column), _ in ADDED_COLUMNS.items():
        if name == row_type.TABLE:
            assert row[column] == expected[column]
            assert table.schema.field(column).type == row_type.SCHEMA.field(column).type
    again = open_table(db, row_type.TABLE, row_type.SCHEMA)  # a second opening changes nothing
    assert again.version == table.version


def test_another_difference_is_still_refused(tmp_path: Path) -> None:
    db = lancedb.connect(str(tmp_path))
    schema = PlateRow.SCHEMA
    wrong = schema.set(schema.get_field_index("confidence"), pa.field("confidence", pa.string()))
    db.create_table(PlateRow.TABLE, data=_empty_row(wrong), schema=wrong)
    with pytest.raises(BadInputError, match="confidence.*fresh storage root or migrate"):
        open_table(db, PlateRow.TABLE, PlateRow.SCHEMA)
