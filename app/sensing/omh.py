"""Open mHealth / IEEE 1752.1 data points, read as wearable summaries.

Apps built on those schemas send step-count, sleep-duration and heart-rate bodies as they
are; each becomes one summary: a metric over an `effective_time_frame.time_interval`
(start and end, or either with a duration). The models follow the published schemas'
shapes (`step_count` as a number or `{value, unit}`, `sleep_duration` `{value, unit}`,
`heart_rate` `{value, unit: beats/min}`) and let the schemas' other properties through.
"""

from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, FiniteFloat, ValidationError

from app.core.batches import ItemProblem
from app.protocols.tailoring import WearableMetric
from app.sensing.ingest import SummaryInput

SUPPORTED_SCHEMAS = ("step-count", "sleep-duration", "heart-rate")
_MEASURE_KEYS = {
    "step_count": "step-count",
    "sleep_duration": "sleep-duration",
    "heart_rate": "heart-rate",
}
_DURATION_MINUTES = {
    "ms": 1 / 60_000,
    "sec": 1 / 60,
    "s": 1 / 60,
    "min": 1.0,
    "h": 60.0,
    "d": 1440.0,
}
# Statistics that describe a total (or, for heart rate, a typical value) over the period.
_TOTALS = {None, "sum", "count"}
_TYPICAL = {None, "average", "median"}


class _OmhModel(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class UnitValue(_OmhModel):
    value: FiniteFloat
    unit: str


class TimeInterval(_OmhModel):
    start_date_time: AwareDatetime | None = None
    end_date_time: AwareDatetime | None = None
    duration: UnitValue | None = None


class TimeFrame(_OmhModel):
    time_interval: TimeInterval | None = None
    date_time: AwareDatetime | None = None


class StepCount(_OmhModel):
    step_count: FiniteFloat | UnitValue
    effective_time_frame: TimeFrame
    descriptive_statistic: str | None = None


class SleepDuration(_OmhModel):
    sleep_duration: UnitValue
    effective_time_frame: TimeFrame
    descriptive_statistic: str | None = None


class HeartRate(_OmhModel):
    heart_rate: UnitValue
    effective_time_frame: TimeFrame
    descriptive_statistic: str | None = None
    temporal_relationship_to_physical_activity: str | None = None


OmhBody = StepCount | SleepDuration | HeartRate
_MODELS: dict[str, type[StepCount] | type[SleepDuration] | type[HeartRate]] = {
    "step-count": StepCount,
    "sleep-duration": SleepDuration,
    "heart-rate": HeartRate,
}


def schema_of_body(body: dict[str, Any]) -> str | None:
    """The schema a body without a header follows, recognised by its measure property."""
    return next((name for key, name in _MEASURE_KEYS.items() if key in body), None)


def summary_from_omh(
    index: int, client_id: str | None, schema_name: str | None, body: Any, prefix: str
) -> SummaryInput | list[ItemProblem]:
    """The summary in a step-count, sleep-duration or heart-rate body, or the problems.

    ``schema_name`` comes from the data point's header (None for a bare body, recognised by
    its measure property); ``prefix`` is the body's path in the item ("body." for a data
    point, "" for a bare body). Units are checked later, like those of any summary.
    """
    if not isinstance(body, dict):
        return [ItemProblem(prefix.rstrip(".") or "body", "an Open mHealth body must be an object")]
    name = schema_name or schema_of_body(body)
    if name not in _MODELS:
        return [
            ItemProblem(
                "header.schema_id.name" if schema_name else prefix.rstrip(".") or "body",
                f"Open mHealth schema '{name}' is not accepted; Kairos reads "
                f"{', '.join(SUPPORTED_SCHEMAS)}",
            )
        ]
    try:
        parsed: OmhBody = _MODELS[name].model_validate(body)
    except ValidationError as exc:
        return [
            ItemProblem(prefix + ".".join(str(p) for p in e["loc"]), e["msg"])
            for e in exc.errors(include_url=False)
        ]
    period = _period(parsed.effective_time_frame, f"{prefix}effective_time_frame")
    if isinstance(period, ItemProblem):
        return [period]
    if isinstance(parsed, StepCount):
        metric, measure, statistics = WearableMetric.steps, parsed.step_count, _TOTALS
    elif isinstance(parsed, SleepDuration):
        metric, measure, statistics = WearableMetric.sleep_minutes, parsed.sleep_duration, _TOTALS
    else:
        relation = parsed.temporal_relationship_to_physical_activity
        if relation != "at rest":
            return [
                ItemProblem(
                    f"{prefix}temporal_relationship_to_physical_activity",
                    "Kairos stores resting heart rate only: send heart-rate with "
                    f"temporal_relationship_to_physical_activity 'at rest' (got {relation!r})",
                )
            ]
        metric, measure, statistics = WearableMetric.resting_heart_rate, parsed.heart_rate, _TYPICAL
    if parsed.descriptive_statistic not in statistics:
        allowed = sorted(s for s in statistics if s is not None)
        return [
            ItemProblem(
                f"{prefix}descriptive_statistic",
                f"a {parsed.descriptive_statistic} is not a {metric} summary Kairos can store; "
                f"leave descriptive_statistic out or use one of {allowed}",
            )
        ]
    # step_count may be a bare number (step-count 1.x and 2.x) or {value, unit} (3.x).
    value, unit = (
        (measure.value, measure.unit) if isinstance(measure, UnitValue) else (measure, "steps")
    )
    measure_field = f"{prefix}{metric_property(parsed)}"
    return SummaryInput(
        index=index,
        client_id=client_id,
        metric=metric,
        unit=unit,
        start_at=period[0],
        end_at=period[1],
        value=value,
        source_format="omh",
        period_field=f"{prefix}effective_time_frame",
        unit_field=f"{measure_field}.unit",
        value_field=f"{measure_field}.value" if isinstance(measure, UnitValue) else measure_field,
    )


def metric_property(body: OmhBody) -> str:
    return next(key for key in _MEASURE_KEYS if key in type(body).model_fields)


def _period(frame: TimeFrame, path: str) -> tuple[datetime, datetime] | ItemProblem:
    if frame.time_interval is None:
        if frame.date_time is not None:
            # A single moment (e.g. one heart-rate reading): a period of no length.
            return frame.date_time, frame.date_time
        return ItemProblem(path, "give a time_interval (or a date_time)")
    interval = frame.time_interval
    path = f"{path}.time_interval"
    span = None
    if interval.duration is not None:
        factor = _DURATION_MINUTES.get(interval.duration.unit)
        if factor is None:
            return ItemProblem(
                f"{path}.duration.unit",
                f"duration unit '{interval.duration.unit}' is not accepted; use one of "
                f"{sorted(_DURATION_MINUTES)}",
            )
        minutes = interval.duration.value * factor
        if not 0 <= minutes <= 31 * 1440:
            return ItemProblem(f"{path}.duration", "a duration must be between 0 and 31 days")
        span = timedelta(minutes=minutes)
    start, end = interval.start_date_time, interval.end_date_time
    try:
        if start is not None and end is not None:
            return start, end
        if start is not None and span is not None:
            return start, start + span
        if end is not None and span is not None:
            return end - span, end
    except OverflowError:
        return ItemProblem(path, "the interval lies outside the supported dates")
    return ItemProblem(
        path,
        "give start_date_time and end_date_time, or one of them with a duration "
        "(date with part_of_day is not precise enough for a summary)",
    )
