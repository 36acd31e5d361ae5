"""File formats for exports, each a generator of byte chunks over a row iterator.

Chunks are flushed every few thousand rows, so a response or a file grows while memory
stays bounded. Parquet carries the data dictionary and provenance in its key-value
metadata; text formats get them beside the data (endpoint, bundle, or sidecar file).
"""

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from itertools import islice
from typing import Any

from app.export.columns import Column, ColumnType, Row

ROWS_PER_CHUNK = 2_000


class ExportFormat(StrEnum):
    csv = "csv"
    ndjson = "ndjson"
    parquet = "parquet"

    @property
    def media_type(self) -> str:
        return {
            "csv": "text/csv; charset=utf-8",
            "ndjson": "application/x-ndjson",
            "parquet": "application/vnd.apache.parquet",
        }[self.value]


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _json_cell(value: Any, kind: ColumnType) -> Any:
    if value is None:
        return None
    if kind is ColumnType.timestamp:
        return _iso(value)
    if kind in (ColumnType.integer, ColumnType.number, ColumnType.boolean):
        return value
    return str(value)


def write_csv(
    columns: list[Column], rows: Iterable[Row], metadata: dict[str, Any]
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.name for c in columns])
    # Cells: None is empty, timestamps ISO 8601 with Z, booleans true/false, anything else
    # str(value). The csv module itself writes None as empty and other values with str()
    # (repr() for floats, the same text), so only timestamps and booleans are converted,
    # a column of a chunk at a time rather than a call per cell.
    converters = [
        (i, _CSV_COLUMNS[c.type]) for i, c in enumerate(columns) if c.type in _CSV_COLUMNS
    ]
    for chunk in column_chunks(rows, ROWS_PER_CHUNK, len(columns)):
        for i, convert in converters:
            chunk[i] = convert(chunk[i])
        writer.writerows(zip(*chunk, strict=True))
        yield _drain(buffer)
    yield _drain(buffer)


def column_chunks(rows: Iterable[Row], size: int, width: int) -> Iterator[list[Sequence[Any]]]:
    """The rows ``size`` at a time, transposed: one sequence of values per column."""
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        values: list[Sequence[Any]] = list(zip(*chunk, strict=True))
        if len(values) != width:
            raise ValueError(f"rows have {len(values)} values for {width} columns")
        yield values


def _csv_timestamps(values: Sequence[Any]) -> list[Any]:
    return [v if v is None else v.isoformat().replace("+00:00", "Z") for v in values]


def _csv_booleans(values: Sequence[Any]) -> list[Any]:
    return [v if v is None else "true" if v else "false" for v in values]


_CSV_COLUMNS: dict[ColumnType, Callable[[Sequence[Any]], list[Any]]] = {
    ColumnType.timestamp: _csv_timestamps,
    ColumnType.boolean: _csv_booleans,
}


def write_ndjson(
    columns: list[Column], rows: Iterable[Row], metadata: dict[str, Any]
) -> Iterator[bytes]:
    buffer = io.StringIO()
    names = [c.name for c in columns]
    kinds = [c.type for c in columns]
    for count, row in enumerate(rows, start=1):
        record = {n: _json_cell(v, k) for n, v, k in zip(names, row, kinds, strict=True)}
        buffer.write(json.dumps(record, ensure_ascii=False))
        buffer.write("\n")
        if count % ROWS_PER_CHUNK == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    return data


def write_parquet(
    columns: list[Column], rows: Iterable[Row], metadata: dict[str, Any]
) -> Iterator[bytes]:
    # Imported here: pyarrow adds some 50 MiB to every process that imports this module,
    # and only Parquet exports need it.
    from app.export import parquet

    return parquet.write_parquet(columns, rows, metadata)


WRITERS: dict[
    ExportFormat, Callable[[list[Column], Iterable[Row], dict[str, Any]], Iterator[bytes]]
] = {
    ExportFormat.csv: write_csv,
    ExportFormat.ndjson: write_ndjson,
    ExportFormat.parquet: write_parquet,
}
