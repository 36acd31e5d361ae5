"""Read selected columns of a decisions export (CSV) into numpy arrays, without pandas."""

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

# Spellings that R, pandas and spreadsheets write for "no value".
MISSING_TOKENS = frozenset({"", "na", "nan", "null", "none"})
_BOOLEANS = {"true": 1.0, "false": 0.0}


def _parse_number(text: str) -> float | None:
    """The value as a float (NaN when missing), or None when the text is not numeric."""
    token = text.strip().lower()
    if token in MISSING_TOKENS:
        return math.nan
    if token in _BOOLEANS:
        return _BOOLEANS[token]
    try:
        return float(token)
    except ValueError:
        return None


def _to_array(values: list[str]) -> npt.NDArray[np.float64] | npt.NDArray[np.str_]:
    numbers: list[float] = []
    for value in values:
        number = _parse_number(value)
        if number is None:
            # Identifiers such as UUIDs stay text; wcls() groups them as they are.
            return np.array([value.strip() for value in values], dtype=np.str_)
        numbers.append(number)
    return np.array(numbers, dtype=np.float64)


def load_columns(
    path: str | Path, columns: Sequence[str]
) -> dict[str, npt.NDArray[np.float64] | npt.NDArray[np.str_]]:
    """Read `columns` from the CSV file at `path`.

    A column whose every value is numeric (or missing: empty, NA, NaN, null, None; or
    true/false) becomes a float array with NaN for missing values; any other column
    becomes a string array. Raises ValueError naming a requested column the header lacks.
    """
    wanted = list(dict.fromkeys(columns))
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise ValueError(f"{path}: the file is empty (no header row)") from None
        missing = [name for name in wanted if name not in header]
        if missing:
            raise ValueError(
                f"{path}: column {missing[0]!r} not found; the columns are {', '.join(header)}"
            )
        indices = [header.index(name) for name in wanted]
        cells: list[list[str]] = [[] for _ in wanted]
        for line_number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < len(header):
                raise ValueError(
                    f"{path}, line {line_number}: {len(row)} fields, the header has {len(header)}"
                )
            for target, index in zip(cells, indices, strict=True):
                target.append(row[index])
    return {name: _to_array(values) for name, values in zip(wanted, cells, strict=True)}
