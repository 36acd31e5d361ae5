"""Semantic checks of times: windows, spacing, study days, quiet hours and time zones."""

import difflib
from collections.abc import Sequence
from functools import lru_cache
from zoneinfo import available_timezones

from app.core.timezones import is_known_timezone
from app.protocols.document import Protocol
from app.protocols.primitives import format_minute, minute_of_day
from app.protocols.problems import Problems, path_of
from app.protocols.timing import (
    DecisionPoint,
    EmaSchedule,
    Event,
    QuietHours,
    TimeWindow,
    Timing,
)


def check_timing(protocol: Protocol, problems: Problems) -> None:
    _check_timezone(protocol.study.default_timezone, problems)
    for i, schedule in enumerate(protocol.ema_schedules):
        base = path_of("ema_schedules", i)
        _check_timing_block(schedule, base, protocol.study.last_day, problems)
        _check_reminders(schedule, base, problems)
        _check_trigger_loops(schedule, base, problems)
    for i, point in enumerate(protocol.decision_points):
        base = path_of("decision_points", i)
        _check_timing_block(point, base, protocol.study.last_day, problems)
        for j, trigger in enumerate(point.triggers):
            if trigger.event is Event.prompt_opened:
                problems.add(
                    path_of(base, "triggers", j, "event"),
                    "a decision point cannot be triggered by prompt_opened: every delivered "
                    "prompt would start another decision",
                )
    quiet = protocol.policy.availability.quiet_hours
    if quiet is not None:
        _check_quiet_hours(quiet, protocol.decision_points, problems)


@lru_cache(maxsize=1)
def _zone_names() -> list[str]:
    return sorted(available_timezones())


def _check_timezone(name: str, problems: Problems) -> None:
    if not is_known_timezone(name):
        close = difflib.get_close_matches(name, _zone_names(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ' (e.g. "Europe/Berlin")'
        problems.add("study.default_timezone", f"unknown IANA time zone '{name}'{hint}")


def windows_overlap(a: TimeWindow, b: TimeWindow) -> bool:
    """Whether two windows share a minute (windows include start and exclude end)."""
    return a.start_minute < b.end_minute and b.start_minute < a.end_minute


def _check_timing_block(block: Timing, base: str, last_day: int, problems: Problems) -> None:
    if not (block.times or block.random_windows or block.triggers):
        problems.add(base, "nothing would ever happen: give times, random_windows or triggers")
    if not block.days_of_week:
        problems.add(path_of(base, "days_of_week"), "no days given; omit it for every day")
    elif len(set(block.days_of_week)) != len(block.days_of_week):
        problems.add(path_of(base, "days_of_week"), "a day is listed more than once")
    _check_days(block, base, last_day, problems)

    seen: dict[int, int] = {}
    for j, t in enumerate(block.times):
        minute = minute_of_day(t)
        if minute in seen:
            problems.add(
                path_of(base, "times", j), f"{format_minute(minute)} is listed more than once"
            )
        seen.setdefault(minute, j)

    windows = block.random_windows
    for j, window in enumerate(windows):
        wpath = path_of(base, "random_windows", j)
        if window.end_minute <= window.start_minute:
            problems.add(
                path_of(wpath, "end"),
                f"window ends at {format_minute(window.end_minute)}, not after its start "
                f"{format_minute(window.start_minute)}; windows cannot cross midnight, "
                "split it into two windows",
            )
            continue
        for k in range(j):
            other = windows[k]
            if other.end_minute > other.start_minute and windows_overlap(window, other):
                problems.add(wpath, f"overlaps random_windows[{k}] of the same {_kind(block)}")
        for t_index, t in enumerate(block.times):
            if window.contains(minute_of_day(t)):
                problems.add(
                    path_of(base, "times", t_index),
                    f"{format_minute(minute_of_day(t))} falls inside random_windows[{j}] "
                    f"({format_minute(window.start_minute)}-{format_minute(window.end_minute)})",
                )
        length = window.end_minute - window.start_minute
        needed = (window.count - 1) * block.min_spacing_minutes
        if window.count > length:
            # Fewer minutes than moments: two would share a minute (one instant).
            problems.add(
                path_of(wpath, "count"),
                f"{window.count} random times need {window.count} distinct minutes, but the "
                f"window is {length} minutes long; lower count or widen the window",
            )
        elif needed > length:
            problems.add(
                wpath,
                f"{window.count} random times {block.min_spacing_minutes} minutes apart need "
                f"{needed} minutes, but the window is {length} minutes long; lower "
                "min_spacing_minutes or count, or widen the window",
            )


def _kind(block: Timing) -> str:
    return "EMA schedule" if isinstance(block, EmaSchedule) else "decision point"


def _check_days(block: Timing, base: str, last_day: int, problems: Problems) -> None:
    if block.start_day > last_day:
        problems.add(
            path_of(base, "start_day"),
            f"day {block.start_day} is after the study's last day {last_day} "
            "(days count from 0 at enrollment)",
        )
    if block.end_day is None:
        return
    if block.end_day < block.start_day:
        problems.add(
            path_of(base, "end_day"),
            f"end_day {block.end_day} is before start_day {block.start_day}",
        )
    elif block.end_day > last_day:
        problems.add(
            path_of(base, "end_day"),
            f"day {block.end_day} is after the study's last day {last_day} "
            "(days count from 0 at enrollment; duration_days - 1 is the last)",
        )


def _check_reminders(schedule: EmaSchedule, base: str, problems: Problems) -> None:
    reminders = schedule.reminders
    last = reminders.count * reminders.every_minutes
    if reminders.count and last >= schedule.expires_after_minutes:
        problems.add(
            path_of(base, "reminders"),
            f"the last reminder would come {last} minutes after the prompt, but the prompt "
            f"expires after {schedule.expires_after_minutes} minutes",
        )


def _check_trigger_loops(schedule: EmaSchedule, base: str, problems: Problems) -> None:
    for j, trigger in enumerate(schedule.triggers):
        if trigger.event is Event.ema_submitted and trigger.questionnaire in (
            None,
            schedule.questionnaire,
        ):
            problems.add(
                path_of(base, "triggers", j),
                "answering this schedule's own questionnaire would prompt it again without "
                "end; set `questionnaire` to a different questionnaire",
            )


def _check_quiet_hours(
    quiet: QuietHours, points: Sequence[DecisionPoint], problems: Problems
) -> None:
    path = "policy.availability.quiet_hours"
    if quiet.start == quiet.end:
        problems.add(path, "start and end are equal; omit quiet_hours for none")
        return
    if any(point.triggers for point in points):
        return  # triggered decision points can happen at any hour
    minutes = [minute_of_day(t) for point in points for t in point.times]
    for point in points:
        for window in point.random_windows:
            minutes.extend(range(window.start_minute, window.end_minute))
    if minutes and all(quiet.contains(m) for m in minutes):
        problems.add(
            path,
            f"quiet hours {format_minute(minute_of_day(quiet.start))}-"
            f"{format_minute(minute_of_day(quiet.end))} cover every decision point's times "
            "and windows, so nothing could ever be delivered",
        )
