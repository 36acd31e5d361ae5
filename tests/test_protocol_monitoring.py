"""The protocol's monitoring section: defaults, and precise problems for bad references."""

import pytest

from app.protocols import ProtocolInvalid, parse_protocol
from tests.test_protocol_invalid import full, minimal


def test_defaults_need_no_section() -> None:
    protocol = parse_protocol(minimal())
    assert protocol.monitoring.non_response is None
    assert protocol.monitoring.unreachable.days == 3
    assert protocol.monitoring.fatigue.response is None


def test_the_full_example_declares_every_flag() -> None:
    monitoring = parse_protocol(full()).monitoring
    assert monitoring.non_response is not None
    assert monitoring.non_response.min_improvement == 0.3
    assert monitoring.fatigue.response is not None
    assert monitoring.fatigue.response.prompt_budget_factor == 0.5


@pytest.mark.parametrize(
    ("section", "path", "message"),
    [
        ({"trend_items": ["*.painn"]}, "monitoring.trend_items[0]", "no questionnaire has"),
        ({"trend_items": ["evening.mood"]}, "monitoring.trend_items[0]", "not a numeric item"),
        (
            {"non_response": {"item": "morning.nope"}},
            "monitoring.non_response.item",
            "has no item 'nope'",
        ),
        (
            {"non_response": {"item": "*.pain", "min_improvement": 1.5}},
            "monitoring.non_response.min_improvement",
            "less than or equal to 1",
        ),
        (
            {"fatigue": {"response": {"prompt_budget_factor": 0}}},
            "monitoring.fatigue.response.prompt_budget_factor",
            "greater than 0",
        ),
    ],
)
def test_bad_monitoring_is_located(section: dict[str, object], path: str, message: str) -> None:
    document = full()
    document["monitoring"] = section
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(document)
    found = {p.path: p.message for p in caught.value.problems}
    assert path in found, found
    assert message in found[path]


def test_alias_bombs_are_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 10)}]")
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol("\n".join(lines))
    assert "more than 50 aliases" in str(caught.value)
