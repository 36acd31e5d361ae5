"""Tailoring variables for a batch of participants at once.

Each variable of each participant becomes one row of a bounds table (its own window), and
variables that read the same data (the same EMA item, wearable metric, or the prompts
sent) share one aggregate query: the number of queries depends on the protocol's
variables, not on the number of participants.

Only data that existed at the decision time counts (each source says how, in
``app.decision_rules.sources``); windows run from their start (inclusive) to the decision
time (inclusive).
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.decision_rules.bounds import Bound
from app.decision_rules.calendar import baseline_end, start_of_local_day
from app.decision_rules.sources import SourceReader, Subject, reader_for
from app.protocols.document import Protocol, TailoringVariable, ValueType
from app.protocols.tailoring import window_span


@dataclass
class Tailoring:
    # Every variable by name: its value, the default when there was no data, or None.
    values: dict[str, Any] = field(default_factory=dict)
    # Variables without data that took their default.
    defaulted: list[str] = field(default_factory=list)
    # Variables without data and without a default: the participant is unavailable.
    missing: list[str] = field(default_factory=list)

    def present(self) -> dict[str, Any]:
        """The values rules can see (missing variables are left out of the CEL context)."""
        return {k: v for k, v in self.values.items() if k not in self.missing}


def convert(value: Any, value_type: ValueType) -> Any:
    """A raw value as the variable's CEL type: integer -> int, number -> float."""
    if value is None:
        return None
    if value_type is ValueType.integer and not isinstance(value, bool):
        return round(value)
    if value_type is ValueType.number and not isinstance(value, bool):
        return float(value)
    if value_type is ValueType.string_list:
        return list(value)
    return value


def finish(protocol: Protocol, raw: Mapping[str, Any]) -> Tailoring:
    """Apply defaults and types to raw values (None = no data)."""
    result = Tailoring()
    for variable in protocol.tailoring_variables:
        value = raw.get(variable.name)
        if value is None and variable.default is not None:
            value = variable.default
            result.defaulted.append(variable.name)
        elif value is None:
            result.missing.append(variable.name)
        result.values[variable.name] = convert(value, variable.type)
    return result


@dataclass(frozen=True)
class _Planned:
    """A queried variable with what is needed to place its window, worked out once per
    protocol rather than once per participant."""

    variable: TailoringVariable
    reader: SourceReader
    shape: tuple[str, ...]
    # A trailing window's length; None for "today" or a baseline.
    span: timedelta | None
    baseline_days: int | None


def _plan(protocol: Protocol) -> list[_Planned]:
    planned = []
    for variable in protocol.tailoring_variables:
        reader = reader_for(variable)
        shape = reader.shape(variable)
        if shape is None:
            continue
        baseline = getattr(variable, "baseline_days", None)
        window = getattr(variable, "window", None)
        span = window_span(window) if window is not None else None
        planned.append(_Planned(variable, reader, shape, span, baseline))
    return planned


def _window(subject: Subject, planned: _Planned) -> tuple[datetime, datetime] | None:
    """Start and end of the variable's window for the subject; None if it has none yet."""
    at = subject.at
    if planned.baseline_days is not None:
        if subject.enrolled_at is None:
            return None
        end = min(at, baseline_end(subject.enrolled_at, planned.baseline_days, subject.zone))
        # From the local midnight of the enrollment day, not the enrollment instant: a first
        # answer from a phone whose clock is a little slow (accepted inside the clock-skew
        # allowance) is stamped seconds before enrolling and still belongs to the baseline.
        return start_of_local_day(subject.enrolled_at, subject.zone), end
    if planned.span is None:
        return subject.today_start, at
    return at - planned.span, at


def compute_tailoring(session: Session, subjects: Sequence[Subject]) -> list[Tailoring]:
    """Every subject's tailoring variables at its decision time."""
    raw: list[dict[str, Any]] = [{} for _ in subjects]
    plans: dict[int, list[_Planned]] = {}
    groups: dict[tuple[str, ...], list[tuple[int, _Planned]]] = defaultdict(list)
    direct: dict[int, list[tuple[TailoringVariable, SourceReader]]] = {}
    for index, subject in enumerate(subjects):
        protocol = subject.protocol
        plan = plans.get(id(protocol))
        if plan is None:
            plan = plans[id(protocol)] = _plan(protocol)
        unqueried = direct.get(id(protocol))
        if unqueried is None:
            unqueried = direct[id(protocol)] = _unqueried(protocol)
        for variable, reader in unqueried:
            raw[index][variable.name] = reader.value(subject, variable)
        for planned in plan:
            groups[planned.shape].append((index, planned))
    for shape, requests in groups.items():
        bounds: list[Bound] = []
        for key, (index, planned) in enumerate(requests):
            subject = subjects[index]
            window = _window(subject, planned)
            if window is not None:
                bounds.append(Bound(key, subject.participant_id, window[0], window[1]))
        reader = requests[0][1].reader
        found = reader.query(session, shape, bounds) if bounds else {}
        for key, (index, planned) in enumerate(requests):
            raw[index][planned.variable.name] = reader.pick(planned.variable, found.get(key))
    return [finish(subject.protocol, values) for subject, values in zip(subjects, raw, strict=True)]


def _unqueried(protocol: Protocol) -> list[tuple[TailoringVariable, SourceReader]]:
    """The variables whose values need no query (the study day, attributes)."""
    pairs = [(variable, reader_for(variable)) for variable in protocol.tailoring_variables]
    return [(variable, reader) for variable, reader in pairs if reader.shape(variable) is None]


__all__ = ["Subject", "Tailoring", "compute_tailoring", "convert", "finish"]
