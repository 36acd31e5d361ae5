"""Text parsing: YAML and JSON syntax errors, YAML 1.2 scalars, duplicate keys."""

from pathlib import Path

import pytest

from app.protocols import ProtocolInvalid, ProtocolProblem, parse_protocol
from app.protocols.loading import load_document

MINIMAL = (Path(__file__).resolve().parents[1] / "examples/protocols/minimal.yaml").read_text()


def problems(source: str | bytes, content_type: str | None = None) -> list[ProtocolProblem]:
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(source, content_type=content_type)
    return caught.value.problems


def test_yaml_syntax_error_is_one_problem_with_line_and_column() -> None:
    [problem] = problems("study:\n  name: [unclosed\n")
    assert problem.path == ""
    assert problem.message.startswith("invalid YAML at line 3, column 1")


def test_json_syntax_error_names_line_and_column() -> None:
    [problem] = problems('{\n  "study": ,\n}', content_type="application/json; charset=utf-8")
    assert problem == ProtocolProblem("", "invalid JSON at line 2, column 12: Expecting value")


def test_top_level_must_be_a_mapping() -> None:
    assert problems("- a\n- b\n") == [
        ProtocolProblem("", "expected a mapping at the top, got a list")
    ]
    assert problems("") == [ProtocolProblem("", "expected a mapping at the top, got empty")]


def test_not_utf8() -> None:
    [problem] = problems(b"\xff\xfe\x00")
    assert problem.message.startswith("not UTF-8 text")


def test_duplicate_keys_are_reported() -> None:
    [problem] = problems(MINIMAL.replace("  random_seed: 1\n", "  random_seed: 1\n  name: X\n"))
    assert "duplicate key 'name'" in problem.message
    assert "line 10" in problem.message


def test_unquoted_times_stay_times() -> None:
    # YAML 1.1 would read 19:00 as the integer 1140.
    protocol = parse_protocol(MINIMAL.replace('["19:00"]', "[19:00]"))
    assert protocol.ema_schedules[0].times[0].hour == 19


def test_yaml_1_2_scalars() -> None:
    assert load_document("a: no\nb: yes\nc: on\nd: true\ne: False") == {
        "a": "no",
        "b": "yes",
        "c": "on",
        "d": True,
        "e": False,
    }
    assert load_document("a: 012\nb: 0x1F\nc: -3\nd: 1.5\ne: 1e3\nf: .5\ng: 2026-03-01") == {
        "a": 12,
        "b": 31,
        "c": -3,
        "d": 1.5,
        "e": 1000.0,
        "f": 0.5,
        "g": "2026-03-01",
    }


def test_yaml_aliases_work() -> None:
    doc = load_document("a: &x {k: 1}\nb: *x\n")
    assert doc == {"a": {"k": 1}, "b": {"k": 1}}


def test_unsafe_yaml_tags_are_rejected() -> None:
    [problem] = problems("!!python/object/apply:os.system ['true']")
    assert problem.message.startswith("invalid YAML")
