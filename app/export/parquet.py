"""The Parquet writer: a row group at a time, the data dictionary and provenance in the
file's key-value metadata. Apart from app.export.formats because pyarrow is heavy to import."""

import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from app.export.columns import Column, ColumnType, Row
from app.export.formats import column_chunks

PARQUET_ROW_GROUP = 20_000


_ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    ColumnType.string: pa.string(),
    ColumnType.integer: pa.int64(),
    ColumnType.number: pa.float64(),
    ColumnType.boolean: pa.bool_(),
    ColumnType.timestamp: pa.timestamp("us", tz="UTC"),
    ColumnType.json: pa.string(),
}


class _ChunkSink(io.RawIOBase):
    """A write-only file that hands over what was written so far (Parquet's output)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def write_parquet(
    columns: list[Column], rows: Iterable[Row], metadata: dict[str, Any]
) -> Iterator[bytes]:
    schema = pa.schema(
        [pa.field(c.name, _ARROW_TYPES[c.type]) for c in columns],
        metadata={key: json.dumps(value) for key, value in metadata.items()},
    )
    converters = [_ARROW_COLUMNS.get(c.type, list) for c in columns]
    sink = _ChunkSink()
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for chunk in column_chunks(rows, PARQUET_ROW_GROUP, len(columns)):
            arrays = [convert(values) for convert, values in zip(converters, chunk, strict=True)]
            writer.write_batch(pa.record_batch(arrays, schema=schema))
            yield sink.take()
    yield sink.take()


def _arrow_strings(values: Sequence[Any]) -> list[Any]:
    return [v if v is None or type(v) is str else str(v) for v in values]


def _arrow_numbers(values: Sequence[Any]) -> list[Any]:
    return [v if v is None or type(v) is float else float(v) for v in values]


# What Arrow needs converting, a column of a row group at a time (the rest as is).
_ARROW_COLUMNS: dict[ColumnType, Callable[[Sequence[Any]], list[Any]]] = {
    ColumnType.string: _arrow_strings,
    ColumnType.json: _arrow_strings,
    ColumnType.number: _arrow_numbers,
}
