"""CEL compilation, evaluation and the checks behind protocol validation."""

import pytest

from app.protocols.cel_rules import (
    Scope,
    bound_names,
    check_expression,
    compile_condition,
    evaluate_condition,
)

SCOPE = Scope(
    samples={
        "pain_interference": (0, 7, 2.5, 8.5),
        "steps": (0, 300),
        "flag": (True, False),
        "stage": ("stage_1", "stage_2"),
        "tags": ([], ["a"]),
        "attributes": ({"trauma_history": True, "age": 40}, {"trauma_history": False}),
    },
    attributes={"trauma_history": True, "age": False},
)


def test_compile_condition_is_cached() -> None:
    assert compile_condition("steps > 3") is compile_condition("steps > 3")


def test_evaluate_condition() -> None:
    program = compile_condition("pain_interference >= 6 && steps < 250")
    assert evaluate_condition(program, {"pain_interference": 6.5, "steps": 10}) is True
    assert evaluate_condition(program, {"pain_interference": 6, "steps": 300}) is False


def test_evaluate_condition_rejects_non_booleans() -> None:
    with pytest.raises(TypeError):
        evaluate_condition(compile_condition("steps + 1"), {"steps": 1})


def test_evaluate_condition_propagates_binding_errors() -> None:
    with pytest.raises(TypeError):
        evaluate_condition(compile_condition("x + 1 > 2"), {"x": 1.5})


@pytest.mark.parametrize(
    "expr",
    [
        "true",
        "pain_interference >= 6 && steps < 250",
        "flag || steps > 3",
        "stage == 'stage_1'",
        "'a' in tags",
        "size(tags) > 0 && tags.exists(t, t.startsWith('a'))",
        "tags.all(t, t != 'b')",
        "tags.filter(t, t == 'a').size() == 1",
        "tags.exists_one(t, t.matches('^a$'))",
        "attributes.trauma_history",
        "has(attributes.age) && attributes.age > 30",
        "double(steps) * 0.5 > 10.0",
        "int(pain_interference) > 5",
        "type(steps) == int",
        "stage.contains('1') || stage.endsWith('2')",
        "flag ? steps > 1 : steps > 2",
        "!flag",
        "steps % 2 == 0",
        "string(steps) != ''",
    ],
)
def test_valid_expressions(expr: str) -> None:
    assert check_expression(expr, SCOPE) == []


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("steps >", "syntax error: the expression ends too early"),
        (
            "pain_interfernce > 3",
            "undefined variable 'pain_interfernce'; did you mean 'pain_interference'?",
        ),
        ("trauma_history", "participant attributes are written attributes.trauma_history"),
        ("max(steps, 1) > 2", "unknown function 'max'"),
        ("bool(flag)", "unknown function 'bool'"),
        ("math.greatest(steps, 1) > 2", "unknown function 'greatest'"),
        ("steps", "condition must be true or false, but it gives an int"),
        ("stage", "but it gives a string"),
        ("pain_interference + 1 > 2", "type error: Unsupported operation: float + int"),
        ("pain_interference * 0.5 > 2.0", "type error"),
        ("flag && pain_interference + 1 > 2", "type error"),
        ("stage > 1", "type error: No such overload"),
        ("attributes.age > 3", "'age' is optional and may be missing"),
        ("attributes.ag > 3", "unknown participant attribute 'ag'; did you mean 'age'?"),
        ("10 / steps > 1", "evaluation error: division by zero"),
        ("stage.matches('[')", "evaluation error"),
    ],
)
def test_invalid_expressions(expr: str, fragment: str) -> None:
    problems = check_expression(expr, SCOPE)
    assert any(fragment in p for p in problems), problems


def test_type_error_names_the_failing_sample() -> None:
    [problem] = check_expression("pain_interference + 1 > 2", SCOPE)
    assert "(with pain_interference = 2.5)" in problem
    assert "double(" in problem


def test_out_of_scope_explanation() -> None:
    scope = Scope(samples={"value": (1, 2)}, out_of_scope={"steps": "not here"})
    assert check_expression("steps > 1", scope) == ["'steps' cannot be used here: not here"]


def test_non_boolean_allowed_when_not_a_condition() -> None:
    assert check_expression("steps + 1", SCOPE, expect_bool=False) == []


def test_comprehension_variables_are_bound() -> None:
    assert bound_names("tags.exists(t, t == 'a') && xs.map(y, y * 2)") == {"t", "y"}
    assert check_expression("tags.exists(t, t == 'a')", SCOPE) == []


def test_large_scopes_are_sampled_not_exhausted() -> None:
    many = {f"v{i}": (0, 1, 2.5, 3, 4.5, 5) for i in range(10)}
    scope = Scope(samples=many)
    expr = " && ".join(f"v{i} >= 0" for i in range(10))
    assert check_expression(expr, scope) == []
    assert check_expression(expr + " && v9 + 1 > 0", scope) != []
