"""The decisions dataset as arrays for the WCLS estimator, read straight from the log."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.orm import Session

from app.core.errors import InvalidInputError
from app.export.columns import Filters
from app.export.decisions import (
    OUTCOME_PREFIX,
    TAILORING_PREFIX,
    decision_columns,
    decision_rows,
)
from app.studies.models import Study


def mrt_arrays(
    session: Session,
    study: Study,
    filters: Filters,
    now: datetime,
    *,
    outcome: str,
    option: str | None,
    covariates: Sequence[str],
) -> dict[str, npt.NDArray[Any]]:
    """Columns participant_id, available, treated, probability, the outcome and each
    covariate (a tailoring variable). With ``option``, treated means "this option was
    chosen" and probability is that option's; otherwise any prompt versus none.
    ``available`` is 1 only where the decision was randomized (0 < probability < 1)."""
    columns = decision_columns(session, study, filters)
    names = [c.name for c in columns]
    problems = []
    if OUTCOME_PREFIX + outcome not in names:
        known = sorted(
            n.removeprefix(OUTCOME_PREFIX) for n in names if n.startswith(OUTCOME_PREFIX)
        )
        problems.append(("outcome", f"no proximal outcome '{outcome}'; the protocol has {known}"))
    for index, name in enumerate(covariates):
        if TAILORING_PREFIX + name not in names:
            problems.append(
                (f"covariates[{index}]", f"no tailoring variable '{name}' in the protocol")
            )
    if problems:
        raise InvalidInputError(
            "the analysis names data the study does not have",
            code="analysis_invalid",
            field_errors=problems,
        )
    at = {name: i for i, name in enumerate(names)}
    wanted = {
        "participant_id": "participant_id",
        "available": "available",
        outcome: OUTCOME_PREFIX + outcome,
        **{c: TAILORING_PREFIX + c for c in covariates},
    }
    data: dict[str, list[Any]] = {key: [] for key in (*wanted, "treated", "probability")}
    for row in decision_rows(session, study, filters, columns, now):
        for key, column in wanted.items():
            data[key].append(row[at[column]])
        if option is None:
            data["treated"].append(row[at["treated"]])
            data["probability"].append(row[at["probability"]])
        else:
            probabilities = json.loads(row[at["probabilities"]])
            data["treated"].append(int(row[at["action"]] == option))
            data["probability"].append(probabilities.get(option))
    # Only micro-randomized decision points inform the excursion effect: a decision whose
    # probability was 0 or 1 (a fixed rule, or the option not on offer) counts as unavailable.
    randomized = [
        bool(a) and p is not None and 0 < p < 1
        for a, p in zip(data.pop("available"), data["probability"], strict=True)
    ]
    arrays: dict[str, npt.NDArray[Any]] = {
        "participant_id": np.array([str(p) for p in data.pop("participant_id")], dtype=object),
        "available": np.array(randomized, dtype=float),
    }
    for key, values in data.items():
        arrays[key] = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    return arrays
