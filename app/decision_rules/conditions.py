"""Evaluating one protocol condition against a decision's CEL context."""

import cel

from app.protocols.cel_rules import compile_condition


class ExpressionError(Exception):
    """A protocol expression could not be evaluated; ``where`` is its place in the protocol."""

    def __init__(self, where: str, cause: Exception) -> None:
        super().__init__(f"{where}: {type(cause).__name__}: {cause}")
        self.where = where


def holds(expression: str, context: cel.Context, where: str) -> bool:
    """Whether the condition is true; ExpressionError if it fails or is not a boolean."""
    try:
        result = compile_condition(expression).execute(context)
    except Exception as exc:
        raise ExpressionError(where, exc) from exc
    if not isinstance(result, bool):
        raise ExpressionError(where, TypeError(f"condition gave {result!r}, not true or false"))
    return result
