"""What text and data Kairos accepts from outside: storable everywhere, encodable always.

Two kinds of character pass a JSON or YAML parser but no further:

- NUL (U+0000): PostgreSQL stores no NUL in text or JSONB (SQLite does), so a value that
  would be stored or compared must be refused before it reaches the database;
- lone surrogates (U+D800..U+DFFF, from escapes like ``"\\ud800"``): no UTF-8 encoding
  exists for them, so neither the database driver nor a response can carry them.

``check_text`` refuses both in one string; ``check_data`` walks JSON-like data (free
answers, attributes, protocol documents) without recursion, refusing them in keys and
values, numbers that no database column, JSON reader or CEL integer holds (integers
outside 64 bits, NaN and infinities), and nesting deeper than ``MAX_DATA_DEPTH``.
The API's text and data types (app/api/schemas/common.py) are built on these.
"""

import math
import re
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

MAX_DATA_DEPTH = 32
"""Nesting of lists and mappings in free-form data; protocols need about ten."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_BAD_CHARACTER = re.compile("[\x00\ud800-\udfff]")
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be accepted as text, or None when it can."""
    # ASCII text (known to CPython without a scan) can only hold a NUL: the common case
    # costs a flag test and a memchr.
    if value.isascii() and "\x00" not in value:
        return None
    found = _BAD_CHARACTER.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "text must not contain the NUL character (U+0000)"
    return (
        f"text must not contain a lone surrogate (U+{ord(found.group()):04X}); "
        "send UTF-8 text (characters outside the BMP as one \\u escape pair)"
    )


def json_nesting(text: str) -> int:
    """How deeply arrays and objects nest in JSON ``text``, found without parsing it (the
    parser recurses once per level), so that a limit can be checked before parsing."""
    brackets = _NOT_A_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_text(value: str) -> str:
    """A Pydantic after-validator: ``value`` unchanged, or ValueError saying why not."""
    if value.isascii() and "\x00" not in value:  # the common case, inline (ingestion)
        return value
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def data_problem(value: Any, max_depth: int = MAX_DATA_DEPTH) -> tuple[str, str] | None:
    """The first (path, reason) in JSON-like ``value`` that cannot be accepted, or None.

    ``path`` is relative to ``value`` (``a.b[2]``; empty for ``value`` itself).
    """
    for path, problem in _problems(value, max_depth):
        return path, problem
    return None


def check_data(value: Any) -> Any:
    """A Pydantic after-validator for free-form JSON data."""
    # The common cases cost one type check.
    kind = type(value)
    if kind is bool or value is None:
        return value
    if kind is str:
        return check_text(value)
    if kind is int:
        if INT64_MIN <= value <= INT64_MAX:
            return value
    elif kind is float and math.isfinite(value):
        return value
    found = data_problem(value)
    if found is not None:
        path, problem = found
        raise ValueError(f"{path}: {problem}" if path else problem)
    return value


def _problems(value: Any, max_depth: int) -> Iterator[tuple[str, str]]:
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, str):
            problem = text_problem(node)
            if problem is not None:
                yield path, problem
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if not INT64_MIN <= node <= INT64_MAX:
                yield path, "integers must lie within -2^63..2^63-1"
        elif isinstance(node, float):
            if not math.isfinite(node):
                yield path, "numbers must be finite (no NaN or Infinity)"
        elif isinstance(node, dict | list | tuple):
            if depth >= max_depth:
                yield path, f"nested too deeply: at most {max_depth} levels of lists and objects"
                continue
            if isinstance(node, dict):
                children = []
                for key, child in node.items():
                    key_text = str(key)
                    child_path = f"{path}.{key_text}" if path else key_text
                    if isinstance(key, str):
                        problem = text_problem(key)
                        if problem is not None:
                            yield path or "", f"a key: {problem}"
                            continue
                    children.append((child, child_path, depth + 1))
            else:
                children = [
                    (child, f"{path}[{index}]", depth + 1) for index, child in enumerate(node)
                ]
            stack.extend(reversed(children))
