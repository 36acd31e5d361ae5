"""Property tests of the protocol checks against simple reference implementations."""

import copy
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.protocols import ProtocolInvalid, parse_protocol
from app.protocols.content_checks import (
    PROBABILITY_TOLERANCE,
    probability_problems,
    rating_problems,
)
from app.protocols.document import NumericRatingItem, TimeWindow
from app.protocols.loading import load_document
from app.protocols.primitives import format_minute
from app.protocols.timing_checks import windows_overlap

probability = st.floats(min_value=-0.5, max_value=1.5, allow_nan=False)


@given(st.dictionaries(st.sampled_from("abcdef"), probability, min_size=1))
def test_probabilities_valid_iff_in_range_and_sum_to_one(probs: dict[str, float]) -> None:
    valid = all(0 <= p <= 1 for p in probs.values()) and (
        abs(math.fsum(probs.values()) - 1) <= PROBABILITY_TOLERANCE
    )
    assert (probability_problems(probs) == []) == valid


@given(st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=6))
def test_normalized_weights_are_valid_probabilities(weights: list[int]) -> None:
    assume(sum(weights) > 0)
    total = sum(weights)
    probs = {f"o{i}": w / total for i, w in enumerate(weights)}
    assert probability_problems(probs) == []


minute = st.integers(min_value=0, max_value=24 * 60 - 1)


@st.composite
def windows(draw: st.DrawFn) -> TimeWindow:
    start = draw(st.integers(min_value=0, max_value=24 * 60 - 2))
    end = draw(st.integers(min_value=start + 1, max_value=24 * 60 - 1))
    return TimeWindow.model_validate({"start": format_minute(start), "end": format_minute(end)})


@given(windows(), windows())
def test_window_overlap_agrees_with_minute_sets(a: TimeWindow, b: TimeWindow) -> None:
    minutes_a = set(range(a.start_minute, a.end_minute))
    minutes_b = set(range(b.start_minute, b.end_minute))
    assert windows_overlap(a, b) == bool(minutes_a & minutes_b)
    assert windows_overlap(a, b) == windows_overlap(b, a)


@given(windows(), minute)
def test_window_contains_agrees_with_minute_set(window: TimeWindow, m: int) -> None:
    assert window.contains(m) == (m in range(window.start_minute, window.end_minute))


# Ratings on a decimal grid: steps like 0.1 or 0.25 must not trip over float rounding.
steps = st.sampled_from(
    [Decimal("1"), Decimal("0.5"), Decimal("0.25"), Decimal("0.1"), Decimal("2"), Decimal("5")]
)


@st.composite
def rating_specs(draw: st.DrawFn) -> tuple[NumericRatingItem, Decimal, Decimal, Decimal]:
    step = draw(steps)
    low = draw(st.integers(min_value=-20, max_value=20)) * step
    count = draw(st.integers(min_value=1, max_value=50))
    high = low + count * step
    as_number: Any = int if step == step.to_integral_value() else float
    item = NumericRatingItem.model_validate(
        {
            "id": "r",
            "type": "numeric_rating",
            "text": "Rate",
            "min": as_number(low),
            "max": as_number(high),
            "step": as_number(step),
        }
    )
    return item, low, high, step


@given(rating_specs(), st.data())
def test_answers_on_the_grid_validate(spec: tuple[Any, ...], data: st.DataObject) -> None:
    item, low, high, step = spec
    assert rating_problems(item) == []
    k = data.draw(st.integers(min_value=0, max_value=int((high - low) / step)))
    value = low + k * step
    answer: float = int(value) if value == value.to_integral_value() else float(value)
    assert item.validate_answer(answer) is None
    assert item.validate_answer(float(value)) is None


@given(rating_specs(), st.data())
def test_answers_off_the_grid_or_outside_never_validate(
    spec: tuple[Any, ...], data: st.DataObject
) -> None:
    item, low, high, step = spec
    outside = data.draw(
        st.one_of(
            st.decimals(min_value=high + Decimal("0.001"), max_value=high + 100, places=3),
            st.decimals(min_value=low - 100, max_value=low - Decimal("0.001"), places=3),
        )
    )
    assert item.validate_answer(float(outside)) is not None
    k = data.draw(st.integers(min_value=0, max_value=int((high - low) / step) - 1))
    between = low + k * step + step / 2 if (high - low) / step >= 1 else None
    if between is not None and between < high:
        assert item.validate_answer(float(between)) is not None


@settings(max_examples=200)
@given(
    st.integers(min_value=-50, max_value=50),
    st.integers(min_value=-50, max_value=50),
    st.integers(min_value=-5, max_value=10),
)
def test_rating_spec_problems_agree_with_arithmetic(low: int, high: int, step: int) -> None:
    item = NumericRatingItem.model_validate(
        {"id": "r", "type": "numeric_rating", "text": "Rate", "min": low, "max": high, "step": step}
    )
    valid = high > low and step > 0 and (high - low) % step == 0
    assert (rating_problems(item) == []) == valid


def _leaf_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaf_paths(v, (*prefix, k))] or [prefix]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaf_paths(v, (*prefix, i))] or [prefix]
    return [prefix]


_EXAMPLE = Path(__file__).resolve().parents[1] / "examples/protocols/chronic_pain_jitai.yaml"
_FULL = load_document(_EXAMPLE.read_text(encoding="utf-8"))
_LEAVES = _leaf_paths(_FULL)
_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x", "25:00", "12:00", "true", "{", "*.pain", "nothing", "a.b"]),
    st.text(max_size=8),
    st.lists(st.integers(max_value=3), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_LEAVES), _junk), min_size=1, max_size=3))
def test_random_mutations_never_crash(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    doc = copy.deepcopy(_FULL)
    for path, value in mutations:
        node = doc
        for step in path[:-1]:
            node = node[step]
        if path:
            node[path[-1]] = value
    problems: list[Any] = []
    try:
        parse_protocol(doc)
    except ProtocolInvalid as exc:
        problems = exc.problems
        assert problems
    assert all(isinstance(p.path, str) and p.message for p in problems)
