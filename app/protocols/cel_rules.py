"""Compiling and checking the CEL expressions of a protocol.

The `cel` binding parses and evaluates but has no static type checker, so an expression
is checked in four steps: syntax, names in scope, allowed functions, then evaluation on
sample contexts built from the declared types (which catches type errors such as
`double + int` and conditions that do not yield true/false).
"""

import difflib
import itertools
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cel

# Functions of the binding's native standard library that make sense in a protocol. The
# binding's Python-implemented extras (min, max, bool, math.*) are deliberately absent:
# the engine evaluates with the native library only.
ALLOWED_FUNCTIONS = frozenset(
    {
        "size",
        "int",
        "uint",
        "double",
        "string",
        "dyn",
        "type",
        "contains",
        "startsWith",
        "endsWith",
        "matches",
    }
)
# Operator overload ids as `Program.functions()` reports them; the comprehension macros
# (all, exists, exists_one, map, filter) and has() expand to these.
OPERATORS = frozenset(
    {
        "_&&_",
        "_||_",
        "!_",
        "-_",
        "_==_",
        "_!=_",
        "_<_",
        "_<=_",
        "_>_",
        "_>=_",
        "_+_",
        "_-_",
        "_*_",
        "_/_",
        "_%_",
        "_?_:_",
        "_[_]",
        "@in",
        "@not_strictly_false",
    }
)
# Type names are identifiers in CEL (`type(x) == int`), so `.variables()` lists them.
TYPE_NAMES = frozenset(
    {"int", "uint", "double", "string", "bool", "bytes", "list", "map", "null_type", "type"}
)
RESERVED_WORDS = frozenset(
    {
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    }
)
# Built-in variables that decision expressions (rules, availability, responder criteria)
# see next to the tailoring variables, with their CEL types.
BUILTIN_VARIABLES: Mapping[str, str] = {
    "attributes": "map",
    "stage": "string",
    "track": "string",
    "phase": "string",
    "decision_point": "string",
    "weekday": "string",
    "local_hour": "int",
    "pai_recommendation": "string",
}

_MACRO_BINDING = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
# Enough to cover every combination of 3-4 referenced variables; beyond that a fixed
# pseudo-random subset keeps an upload fast.
MAX_SAMPLE_CONTEXTS = 4096

NUMBER_HINT = (
    "number variables may hold whole or decimal values and CEL does not mix them in "
    "arithmetic: wrap the variable in double(...) and write decimals (e.g. "
    "double(pain_baseline) * 0.7, x + 1.0)"
)


@dataclass(frozen=True)
class Scope:
    """The names an expression may use, each with sample values of its declared type."""

    samples: Mapping[str, Sequence[Any]]
    # Names that exist elsewhere in the protocol but not here, with an explanation.
    out_of_scope: Mapping[str, str] = field(default_factory=dict)
    # Participant attribute name -> required; explains KeyErrors on `attributes.x`.
    attributes: Mapping[str, bool] = field(default_factory=dict)


@lru_cache(maxsize=4096)
def compile_condition(expr: str) -> cel.Program:
    """The compiled program for an expression (cached; ValueError on a syntax error)."""
    return cel.compile(expr)


def evaluate_condition(program: cel.Program, context: Mapping[str, Any]) -> bool:
    """Evaluate a condition; TypeError if it does not yield true or false. Errors raised
    by the binding (TypeError, RuntimeError, KeyError...) propagate: the engine falls back."""
    result = program.execute(dict(context))
    if not isinstance(result, bool):
        raise TypeError(f"condition gave {result!r}, not true or false")
    return result


def bound_names(expr: str) -> set[str]:
    """Names bound by comprehension macros, e.g. `x` in `list.exists(x, x > 1)`."""
    return set(_MACRO_BINDING.findall(expr))


def suggestion(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_expression(expr: str, scope: Scope, *, expect_bool: bool = True) -> list[str]:
    """Every problem found with one expression, as messages (empty when it is fine)."""
    try:
        program = cel.compile(expr)
    except ValueError as exc:
        return [f"syntax error: {_syntax_message(str(exc))}"]

    problems = _check_names(expr, program, scope)
    problems += _check_functions(program)
    if problems:
        return problems
    failure = _evaluate_samples(program, expr, scope, expect_bool)
    return [failure] if failure else []


def _syntax_message(raw: str) -> str:
    # The binding reports "Failed to parse expression '<expr>': ERROR: <input>:1:10: Syntax
    # error: ..." followed by a caret drawing; one line per problem reads better.
    match = re.search(r"ERROR: <input>:(\d+:\d+): (?:Syntax error: )?([^\n]*)", raw)
    if match is None:
        return raw.splitlines()[0] if raw else "invalid expression"
    detail = re.sub(r"expecting \{.*\}", "expecting an operand", match[2])
    detail = detail.replace("mismatched input '<EOF>'", "the expression ends too early,")
    return f"{detail} (line:column {match[1]})"


def _check_names(expr: str, program: cel.Program, scope: Scope) -> list[str]:
    problems = []
    allowed = set(scope.samples) | bound_names(expr) | TYPE_NAMES
    for name in program.variables():
        if name in allowed:
            continue
        if name in scope.out_of_scope:
            problems.append(f"'{name}' cannot be used here: {scope.out_of_scope[name]}")
        elif name in scope.attributes and "attributes" in scope.samples:
            problems.append(
                f"undefined variable '{name}'; participant attributes are written attributes.{name}"
            )
        else:
            problems.append(f"undefined variable '{name}'{suggestion(name, sorted(scope.samples))}")
    return problems


def _check_functions(program: cel.Program) -> list[str]:
    problems = []
    for name in program.functions():
        if name in OPERATORS or name in ALLOWED_FUNCTIONS:
            continue
        problems.append(
            f"unknown function '{name}'{suggestion(name, sorted(ALLOWED_FUNCTIONS))} "
            f"(allowed: {', '.join(sorted(ALLOWED_FUNCTIONS))}, the macros has, all, exists, "
            "exists_one, map, filter, and the operators)"
        )
    return problems


def sample_contexts(names: Sequence[str], scope: Scope) -> list[dict[str, Any]]:
    """Contexts covering every combination of the names' samples (or a fixed subset)."""
    pools = [list(scope.samples[name]) for name in names]
    total = 1
    for pool in pools:
        total *= len(pool)
    if total <= MAX_SAMPLE_CONTEXTS:
        combos: list[tuple[Any, ...]] = list(itertools.product(*pools))
    else:
        rng = random.Random(0)  # noqa: S311 - sampling test inputs, not security
        combos = [tuple(pool[i % len(pool)] for pool in pools) for i in range(8)]
        combos += [tuple(rng.choice(pool) for pool in pools) for _ in range(MAX_SAMPLE_CONTEXTS)]
    return [dict(zip(names, combo, strict=True)) for combo in combos]


def _evaluate_samples(
    program: cel.Program, expr: str, scope: Scope, expect_bool: bool
) -> str | None:
    names = [n for n in program.variables() if n in scope.samples]
    for context in sample_contexts(names, scope):
        try:
            result = program.execute(context)
        except KeyError as exc:
            return _missing_key_message(str(exc.args[0]) if exc.args else "", scope)
        except Exception as exc:  # the binding raises TypeError, RuntimeError, ...
            return _evaluation_message(exc, context)
        if expect_bool and not isinstance(result, bool):
            return (
                f"condition must be true or false, but it gives {_cel_type(result)} "
                f"(e.g. {result!r}{_describe(context)})"
            )
    return None


def _missing_key_message(key: str, scope: Scope) -> str:
    if key in scope.attributes:
        return (
            f"participant attribute '{key}' is optional and may be missing; guard it with "
            f"has(attributes.{key}) && ..."
        )
    if scope.attributes:
        return f"unknown participant attribute '{key}'{suggestion(key, sorted(scope.attributes))}"
    return f"no such key '{key}'"


def _evaluation_message(exc: Exception, context: Mapping[str, Any]) -> str:
    message = str(exc).strip() or type(exc).__name__
    kind = "type error" if isinstance(exc, TypeError) else "evaluation error"
    text = f"{kind}: {message}{_describe(context, prefix=' (with ', suffix=')')}"
    mixes_numbers = any(isinstance(v, float) for v in context.values()) or "float" in message
    if isinstance(exc, TypeError) and mixes_numbers:
        text += f"; {NUMBER_HINT}"
    return text


def _describe(context: Mapping[str, Any], prefix: str = " when ", suffix: str = "") -> str:
    shown = [f"{k} = {_literal(v)}" for k, v in context.items() if k != "attributes"]
    return f"{prefix}{', '.join(shown)}{suffix}" if shown else ""


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return repr(value)


def _cel_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int):
        return "an int"
    if isinstance(value, float):
        return "a double"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    if value is None:
        return "null"
    return type(value).__name__
