"""`kairos analyze`: statistical analyses of exported trial data."""

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from app.analysis.decisions_csv import load_columns
from app.analysis.emee import OutcomeType, emee, method_of
from app.analysis.wcls import WclsResult, wcls

analyze = typer.Typer(
    help="Analyse exported trial data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# A callback keeps `mrt` a subcommand even while it is the only one: Typer otherwise collapses
# a single-command app into that command, and `kairos analyze mrt` would change meaning.
@analyze.callback()
def _group() -> None:
    """Analyse exported trial data."""


@analyze.command("mrt")
def mrt(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="Decisions CSV, one row per decision."
        ),
    ],
    outcome: Annotated[str, typer.Option(help="Proximal outcome column.")],
    id_column: Annotated[str, typer.Option("--id", help="Participant id column.")] = (
        "participant_id"
    ),
    treatment: Annotated[str, typer.Option(help="Treatment column (1 delivered, 0 not).")] = (
        "treated"
    ),
    rand_prob: Annotated[
        str, typer.Option(help="Column of the randomization probability of treatment.")
    ] = "probability",
    availability: Annotated[str, typer.Option(help="Availability column (1 or 0).")] = (
        "available"
    ),
    always_available: Annotated[
        bool,
        typer.Option(
            "--always-available", help="Treat every decision as available (no availability column)."
        ),
    ] = False,
    moderator: Annotated[
        list[str] | None,
        typer.Option(help="Moderator column (repeatable); none for the marginal effect."),
    ] = None,
    control: Annotated[list[str] | None, typer.Option(help="Control column (repeatable).")] = None,
    numerator_prob: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Constant numerator probability p~ (default: the randomization probability "
            "if that is constant, else 0.5).",
            show_default=False,
        ),
    ] = None,
    confidence: Annotated[float, typer.Option(min=0.0, max=1.0, help="Interval level.")] = 0.95,
    small_sample_correction: Annotated[
        bool, typer.Option(help="Mancl-DeRouen small-sample correction of the variance.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    outcome_type: Annotated[
        OutcomeType,
        typer.Option(
            help="continuous: WCLS (an additive effect); binary: EMEE, the log relative risk "
            "of a 0/1 outcome (numerator probability 0.5 by default)."
        ),
    ] = OutcomeType.continuous,
) -> None:
    """Estimate the causal excursion effect of treatment on a proximal outcome (WCLS, or
    EMEE for a binary outcome)."""
    moderators = moderator or []
    controls = control or []
    available_column = None if always_available else availability
    columns = [id_column, outcome, treatment, rand_prob, *moderators, *controls]
    if available_column is not None:
        columns.append(available_column)
    try:
        data = load_columns(file, columns)
        if available_column is not None:
            data = only_randomized(data, available_column, rand_prob)
        estimator = emee if outcome_type is OutcomeType.binary else wcls
        if outcome_type is OutcomeType.binary and numerator_prob is None:
            numerator_prob = 0.5
        result = estimator(
            data,
            id=id_column,
            outcome=outcome,
            treatment=treatment,
            rand_prob=rand_prob,
            availability=available_column,
            moderators=moderators,
            controls=controls,
            numerator_prob=numerator_prob,
            confidence=confidence,
            small_sample_correction=small_sample_correction,
        )
    except ValueError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "treatment": treatment,
                    "outcome": outcome,
                    **method_of(outcome_type),
                    **result.to_dict(),
                }
            )
        )
    else:
        typer.echo(
            format_table(result, treatment=treatment, outcome=outcome, outcome_type=outcome_type)
        )


def format_table(
    result: WclsResult,
    *,
    treatment: str,
    outcome: str,
    outcome_type: OutcomeType | None = None,
) -> str:
    """The result as a plain-text report for a terminal."""
    level = f"{result.confidence * 100:g}%"
    binary = outcome_type is OutcomeType.binary
    method = "EMEE, log relative risk" if binary else "WCLS"
    lines = [
        f"Causal excursion effect of {treatment!r} on {outcome!r} ({method})",
        f"{result.n_participants} participants, {result.n_decisions} available decision points "
        f"with an outcome ({result.n_rows} rows; {result.n_unavailable} unavailable; "
        f"{result.n_missing_outcome} missing the outcome, dropped)",
        "moderators: " + ", ".join(("(Intercept)", *result.moderators)),
        "controls:   " + ", ".join(("(Intercept)", *result.controls)),
        f"numerator probability {result.numerator_prob:g}; "
        + (
            ("small-sample corrected" if binary else "Mancl-DeRouen corrected")
            if result.small_sample_correction
            else "uncorrected"
        )
        + f" sandwich variance; F(1, {result.df}) reference",
        "",
    ]
    header = ("term", "estimate", "std.error", f"{level} CI", "F", "df1", "df2", "p-value")
    rows = [
        (
            c.name,
            f"{c.estimate:.4f}",
            f"{c.std_error:.4f}",
            f"({c.ci_low:.3f}, {c.ci_high:.3f})",
            f"{c.f_statistic:.3f}",
            "1",
            str(c.df),
            f"{c.p_value:.4g}",
        )
        for c in result.coefficients
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def only_randomized(data: dict[str, Any], availability: str, rand_prob: str) -> dict[str, Any]:
    """The data with decisions that were not micro-randomized (no probability, or 0 or 1:
    no rule matched, a fixed option, the fallback) counted as unavailable, as the API's
    analysis does: the MRT's positivity holds only where both arms had a chance."""
    available = np.asarray(data[availability], dtype=np.float64)
    p = np.asarray(data[rand_prob], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        randomized = np.isfinite(p) & (p > 0) & (p < 1)
    return {**data, availability: np.where(randomized, available, 0.0)}
