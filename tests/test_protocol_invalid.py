"""Every kind of invalid protocol gives a precise problem at the expected path.

Each case takes a valid example as a dict, applies one mutation, and expects a problem
with exactly that path whose message contains the given text.
"""

import copy
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from app.protocols import ProtocolInvalid, ProtocolProblem, parse_protocol
from app.protocols.loading import load_document

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "protocols"

Mutation = Callable[[dict[str, Any]], None]


@cache
def _example(name: str) -> dict[str, Any]:
    document = load_document((EXAMPLES / name).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def minimal() -> dict[str, Any]:
    return copy.deepcopy(_example("minimal.yaml"))


def full() -> dict[str, Any]:
    return copy.deepcopy(_example("chronic_pain_jitai.yaml"))


_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _steps(path: str) -> list[str | int]:
    return [key if key else int(index) for key, index in _PART.findall(path)]


def _key(node: Any, step: str | int) -> Any:
    # "a.0.b" (from keyword-style paths) indexes lists too.
    return int(step) if isinstance(node, list) else step


def _parent(doc: Any, path: str) -> tuple[Any, Any]:
    *parents, last = _steps(path)
    node = doc
    for step in parents:
        node = node[_key(node, step)]
    return node, _key(node, last)


def get_path(doc: Any, path: str) -> Any:
    node, key = _parent(doc, path)
    return node[key]


def set_path(doc: Any, path: str, value: Any) -> None:
    node, key = _parent(doc, path)
    node[key] = value


def delete_path(doc: Any, path: str) -> None:
    node, key = _parent(doc, path)
    del node[key]


def sets(**changes: Any) -> Mutation:
    """A mutation setting paths; keyword names use __ for dots (a__b -> a.b)."""

    def mutate(doc: dict[str, Any]) -> None:
        for key, value in changes.items():
            set_path(doc, key.replace("__", "."), value)

    return mutate


def at(path: str, value: Any) -> Mutation:
    return lambda doc: set_path(doc, path, value)


def append(path: str, value: Any) -> Mutation:
    return lambda doc: get_path(doc, path).append(copy.deepcopy(value))


def duplicate(path: str) -> Mutation:
    """Append a copy of the list element at `path` to its list."""

    def mutate(doc: dict[str, Any]) -> None:
        container, key = _parent(doc, path)
        container.append(copy.deepcopy(container[key]))

    return mutate


def problems_of(doc: dict[str, Any]) -> list[ProtocolProblem]:
    try:
        parse_protocol(doc)
    except ProtocolInvalid as exc:
        return exc.problems
    return []


def assert_problem(doc: dict[str, Any], path: str, text: str) -> None:
    problems = problems_of(doc)
    assert any(p.path == path and text in p.message for p in problems), "\n".join(
        str(p) for p in problems
    )


def test_examples_are_valid() -> None:
    assert problems_of(minimal()) == []
    assert problems_of(full()) == []


SINGLE_CHOICE = {
    "id": "mood",
    "type": "single_choice",
    "text": "Mood?",
    "choices": [{"value": "low", "label": "Low"}, {"value": "high", "label": "High"}],
}

# (base, mutation, path, message fragment)
CASES: dict[str, tuple[Callable[[], dict[str, Any]], Mutation, str, str]] = {
    # --- CEL ---------------------------------------------------------------------------
    "cel syntax": (
        full,
        at("policy.rules[0].when", "interference_today >="),
        "policy.rules[0].when",
        "syntax error: the expression ends too early, expecting an operand (line:column 1:22)",
    ),
    "undefined variable with suggestion": (
        full,
        at("policy.rules[0].when", "interference_todya >= 6"),
        "policy.rules[0].when",
        "undefined variable 'interference_todya'; did you mean 'interference_today'?",
    ),
    "undefined variable without suggestion": (
        full,
        at("policy.rules[0].when", "zzz"),
        "policy.rules[0].when",
        "undefined variable 'zzz'",
    ),
    "attribute used without attributes.": (
        full,
        at("policy.rules[0].when", "trauma_history"),
        "policy.rules[0].when",
        "participant attributes are written attributes.trauma_history",
    ),
    "unknown function": (
        full,
        at("policy.rules[0].when", "min(steps_3h, 3) > 1"),
        "policy.rules[0].when",
        "unknown function 'min'",
    ),
    "non-boolean condition": (
        full,
        at("policy.rules[0].when", "steps_3h + 1"),
        "policy.rules[0].when",
        "condition must be true or false, but it gives an int",
    ),
    "double + int type error": (
        full,
        at("policy.rules[0].when", "interference_today + 1 > 3"),
        "policy.rules[0].when",
        "type error: Unsupported operation: float + int",
    ),
    "type error suggests double()": (
        full,
        at("smart.stages[0].responder_when", "pain_mean_7d <= 0.7 * pain_baseline"),
        "smart.stages[0].responder_when",
        "wrap the variable in double(...)",
    ),
    "string compared with number": (
        full,
        at("policy.rules[0].when", "stage > 3"),
        "policy.rules[0].when",
        "type error: No such overload",
    ),
    "type error only in a short-circuit branch": (
        full,
        at("policy.rules[0].when", "local_hour > 10 && steps_3h + 0.5 > 3.0"),
        "policy.rules[0].when",
        "type error",
    ),
    "availability condition": (
        full,
        at("policy.availability.conditions", ["days_enroled >= 1"]),
        "policy.availability.conditions[0]",
        "did you mean 'days_enrolled'?",
    ),
    "responder criterion cannot use decision point built-ins": (
        full,
        at("smart.stages[0].responder_when", "local_hour > 3"),
        "smart.stages[0].responder_when",
        "'local_hour' cannot be used here: responder criteria",
    ),
    "contraindication uses a tailoring variable": (
        full,
        at("intervention_options[2].contraindicated_when", "steps_3h < 10"),
        "intervention_options[2].contraindicated_when",
        "'steps_3h' cannot be used here: contraindications may only use participant",
    ),
    "contraindication names an unknown attribute": (
        full,
        at("intervention_options[2].contraindicated_when", "attributes.trauma_histroy"),
        "intervention_options[2].contraindicated_when",
        "unknown participant attribute 'trauma_histroy'; did you mean 'trauma_history'?",
    ),
    "contraindication reads an optional attribute unguarded": (
        full,
        at(
            "intervention_options[2].contraindicated_when",
            "size(attributes.preferred_categories) == 0",
        ),
        "intervention_options[2].contraindicated_when",
        "'preferred_categories' is optional and may be missing; guard it with has(",
    ),
    "escalation sees only value": (
        full,
        at("questionnaires[0].items[0].escalation.when", "value >= 10 && steps_3h > 0"),
        "questionnaires[0].items[0].escalation.when",
        "escalations see only `value`",
    ),
    "escalation must be boolean": (
        full,
        at("questionnaires[0].items[0].escalation.when", "value"),
        "questionnaires[0].items[0].escalation.when",
        "condition must be true or false",
    ),
    "escalation on a yes/no compared with a number": (
        full,
        at("questionnaires[2].items[5].escalation.when", "value > 0"),
        "questionnaires[2].items[5].escalation.when",
        "type error",
    ),
    # --- probabilities and options -----------------------------------------------------
    "probabilities do not sum to 1": (
        minimal,
        at("policy.rules[0].randomize", {"movement": 0.5, "nothing": 0.4}),
        "policy.rules[0].randomize",
        "probabilities sum to 0.9, not 1",
    ),
    "probability outside [0, 1]": (
        minimal,
        at("policy.rules[0].randomize", {"movement": 1.5, "nothing": -0.5}),
        "policy.rules[0].randomize.movement",
        "probability 1.5 is outside [0, 1]",
    ),
    "empty randomization": (
        minimal,
        at("policy.rules[0].randomize", {}),
        "policy.rules[0].randomize",
        "no probabilities given",
    ),
    "unknown option in a rule": (
        minimal,
        at("policy.rules[0].randomize", {"movment": 0.5, "nothing": 0.5}),
        "policy.rules[0].randomize.movment",
        "unknown option 'movment'; did you mean 'movement'?",
    ),
    "unknown fixed option in a rule": (
        minimal,
        sets(**{"policy__rules[0]": {"id": "r", "when": "true", "option": "walk"}}),
        "policy.rules[0].option",
        "unknown option 'walk'",
    ),
    "unknown option in the fallback": (
        minimal,
        at("policy.fallback", {"option": "nothin"}),
        "policy.fallback.option",
        "unknown option 'nothin'; did you mean 'nothing'?",
    ),
    "fallback probabilities": (
        minimal,
        at("policy.fallback", {"randomize": {"nothing": 0.3}}),
        "policy.fallback.randomize",
        "sum to 0.3",
    ),
    "rule with option and randomize": (
        minimal,
        at("policy.rules[0].option", "nothing"),
        "policy.rules[0]",
        "give exactly one of option and randomize",
    ),
    "rule with neither option nor randomize": (
        minimal,
        lambda doc: delete_path(doc, "policy.rules[0].randomize"),
        "policy.rules[0]",
        "give exactly one of option and randomize",
    ),
    "fallback contraindicated": (
        full,
        at("policy.fallback", {"option": "mindfulness"}),
        "policy.fallback",
        "the fallback must be deliverable to everyone",
    ),
    "bounds min > max": (
        minimal,
        at("policy.probability_bounds", {"min": 0.8, "max": 0.2}),
        "policy.probability_bounds",
        "min 0.8 is greater than max 0.2",
    ),
    "bounds outside [0, 1]": (
        minimal,
        at("policy.probability_bounds", {"min": -0.1, "max": 0.9}),
        "policy.probability_bounds.min",
        "-0.1 is outside [0, 1]",
    ),
    "bounds impossible for a rule": (
        full,
        at("policy.probability_bounds", {"min": 0.4, "max": 0.9}),
        "policy.rules[4].randomize",
        "3 options cannot all get at least probability_bounds.min 0.4",
    ),
    "none option with a title": (
        minimal,
        at("intervention_options[1].title", "Hello"),
        "intervention_options[1].title",
        "category none delivers nothing",
    ),
    "push option without a body": (
        minimal,
        lambda doc: delete_path(doc, "intervention_options[0].body"),
        "intervention_options[0].body",
        "a body is required",
    ),
    "placeholder is not a tailoring variable": (
        full,
        at("intervention_options[0].title", "Interference {interferance_today}"),
        "intervention_options[0].title",
        "placeholder {interferance_today} is not a tailoring variable; did you mean "
        "'interference_today'?",
    ),
    "placeholder with bad braces": (
        full,
        at("intervention_options[0].body", "Interference {interference_today"),
        "intervention_options[0].body",
        "bad placeholder",
    ),
    "placeholder with a bad format": (
        full,
        at("intervention_options[0].body", "{interference_today:d}"),
        "intervention_options[0].body",
        "placeholder {interference_today:d}",
    ),
    # --- references --------------------------------------------------------------------
    "unknown questionnaire in a schedule": (
        minimal,
        at("ema_schedules[0].questionnaire", "daly"),
        "ema_schedules[0].questionnaire",
        "unknown questionnaire 'daly'; did you mean 'daily'?",
    ),
    "unknown questionnaire in a trigger": (
        full,
        at("decision_points[0].triggers", [{"event": "ema_submitted", "questionnaire": "x"}]),
        "decision_points[0].triggers[0].questionnaire",
        "unknown questionnaire 'x'",
    ),
    "questionnaire filter on a non-EMA trigger": (
        full,
        at("decision_points[0].triggers", [{"event": "wearable_received", "questionnaire": "x"}]),
        "decision_points[0].triggers[0].questionnaire",
        "only ema_submitted triggers can name a questionnaire",
    ),
    "unknown item in a tailoring variable": (
        full,
        at("tailoring_variables[3].item", "morning.sleep_duraton"),
        "tailoring_variables[3].item",
        "questionnaire 'morning' has no item 'sleep_duraton'; did you mean 'sleep_duration'?",
    ),
    "unknown questionnaire in a tailoring variable": (
        full,
        at("tailoring_variables[3].item", "mornin.sleep_duration"),
        "tailoring_variables[3].item",
        "unknown questionnaire 'mornin'",
    ),
    "unknown item in an outcome": (
        full,
        at("proximal_outcomes[0].item", "*.interferance"),
        "proximal_outcomes[0].item",
        "no questionnaire has an item 'interferance'; did you mean 'interference'?",
    ),
    "wildcard pools different scales": (
        full,
        sets(**{"questionnaires[1]__items[0]__max": 5, "questionnaires[1]__items[0]__anchors": {}}),
        "tailoring_variables[6].item",
        "'*.pain' pools items that differ in type or scale",
    ),
    "unknown option in an outcome": (
        full,
        at("proximal_outcomes[1].options", ["activity"]),
        "proximal_outcomes[1].options[0]",
        "unknown option 'activity'",
    ),
    "unknown attribute in a tailoring variable": (
        full,
        append(
            "tailoring_variables",
            {"name": "trauma", "type": "boolean", "source": "attribute", "attribute": "trauma"},
        ),
        "tailoring_variables[8].attribute",
        "unknown participant attribute 'trauma'; did you mean 'trauma_history'?",
    ),
    # --- duplicates --------------------------------------------------------------------
    "duplicate item": (
        minimal,
        duplicate("questionnaires[0].items[0]"),
        "questionnaires[0].items[1].id",
        "duplicate item 'pain' (also at questionnaires[0].items[0])",
    ),
    "duplicate questionnaire": (
        minimal,
        duplicate("questionnaires[0]"),
        "questionnaires[1].id",
        "duplicate questionnaire 'daily'",
    ),
    "duplicate option": (
        minimal,
        duplicate("intervention_options[0]"),
        "intervention_options[2].id",
        "duplicate option 'movement'",
    ),
    "duplicate rule": (
        minimal,
        duplicate("policy.rules[0]"),
        "policy.rules[1].id",
        "duplicate rule 'everyone'",
    ),
    "duplicate variable": (
        full,
        duplicate("tailoring_variables[0]"),
        "tailoring_variables[8].name",
        "duplicate variable 'interference_today'",
    ),
    "duplicate decision point": (
        minimal,
        duplicate("decision_points[0]"),
        "decision_points[1].id",
        "duplicate decision point 'afternoon'",
    ),
    "duplicate schedule": (
        minimal,
        duplicate("ema_schedules[0]"),
        "ema_schedules[1].id",
        "duplicate schedule 'evening'",
    ),
    "duplicate stage": (
        full,
        sets(**{"smart__stages[1]__id": "stage_1"}),
        "smart.stages[1].id",
        "duplicate stage 'stage_1'",
    ),
    "duplicate outcome": (
        full,
        duplicate("proximal_outcomes[0]"),
        "proximal_outcomes[3].name",
        "duplicate outcome 'next_interference'",
    ),
    "duplicate fixed time": (
        minimal,
        at("decision_points[0].times", ["15:00", "15:00"]),
        "decision_points[0].times[1]",
        "15:00 is listed more than once",
    ),
    # --- times -------------------------------------------------------------------------
    "overlapping windows": (
        minimal,
        at(
            "decision_points[0].random_windows",
            [{"start": "12:00", "end": "14:00"}, {"start": "13:00", "end": "15:00"}],
        ),
        "decision_points[0].random_windows[1]",
        "overlaps random_windows[0] of the same decision point",
    ),
    "fixed time inside a window": (
        minimal,
        at("ema_schedules[0].random_windows", [{"start": "18:00", "end": "20:00"}]),
        "ema_schedules[0].times[0]",
        "19:00 falls inside random_windows[0] (18:00-20:00)",
    ),
    "window crossing midnight": (
        minimal,
        at("decision_points[0].random_windows", [{"start": "22:00", "end": "02:00"}]),
        "decision_points[0].random_windows[0].end",
        "windows cannot cross midnight",
    ),
    "empty window": (
        minimal,
        at("decision_points[0].random_windows", [{"start": "16:00", "end": "16:00"}]),
        "decision_points[0].random_windows[0].end",
        "not after its start 16:00",
    ),
    "spacing too large for the window": (
        minimal,
        sets(
            ema_schedules__0__random_windows=[{"start": "12:00", "end": "13:00", "count": 3}],
            ema_schedules__0__min_spacing_minutes=45,
        ),
        "ema_schedules[0].random_windows[0]",
        "3 random times 45 minutes apart need 90 minutes, but the window is 60 minutes",
    ),
    "more random times than minutes in the window": (
        minimal,
        at("decision_points[0].random_windows", [{"start": "16:00", "end": "16:02", "count": 3}]),
        "decision_points[0].random_windows[0].count",
        "3 random times need 3 distinct minutes, but the window is 2 minutes long",
    ),
    "quiet hours cover every decision point": (
        minimal,
        at("policy.availability", {"quiet_hours": {"start": "14:00", "end": "16:00"}}),
        "policy.availability.quiet_hours",
        "nothing could ever be delivered",
    ),
    "quiet hours across midnight cover every decision point": (
        minimal,
        sets(
            decision_points__0__times=["23:00", "06:00"],
            policy__availability={"quiet_hours": {"start": "22:00", "end": "07:30"}},
        ),
        "policy.availability.quiet_hours",
        "nothing could ever be delivered",
    ),
    "quiet hours of zero length": (
        minimal,
        at("policy.availability", {"quiet_hours": {"start": "14:00", "end": "14:00"}}),
        "policy.availability.quiet_hours",
        "start and end are equal",
    ),
    "unknown time zone": (
        minimal,
        at("study.default_timezone", "Europe/Berln"),
        "study.default_timezone",
        "unknown IANA time zone 'Europe/Berln'; did you mean 'Europe/Berlin'?",
    ),
    "bad HH:MM": (
        minimal,
        at("ema_schedules[0].times[0]", "25:00"),
        "ema_schedules[0].times[0]",
        "expected a local time as HH:MM between 00:00 and 23:59, got '25:00'",
    ),
    "HH:MM without leading zero": (
        minimal,
        at("decision_points[0].times[0]", "9:00"),
        "decision_points[0].times[0]",
        "HH:MM",
    ),
    "end_day before start_day": (
        minimal,
        sets(ema_schedules__0__start_day=10, ema_schedules__0__end_day=5),
        "ema_schedules[0].end_day",
        "end_day 5 is before start_day 10",
    ),
    "end_day after the study": (
        minimal,
        at("decision_points[0].end_day", 28),
        "decision_points[0].end_day",
        "day 28 is after the study's last day 27",
    ),
    "start_day after the study": (
        minimal,
        at("decision_points[0].start_day", 30),
        "decision_points[0].start_day",
        "day 30 is after the study's last day 27",
    ),
    "no days of week": (
        minimal,
        at("decision_points[0].days_of_week", []),
        "decision_points[0].days_of_week",
        "no days given",
    ),
    "schedule that never fires": (
        minimal,
        at("ema_schedules[0].times", []),
        "ema_schedules[0]",
        "nothing would ever happen",
    ),
    "reminders after expiry": (
        minimal,
        sets(
            ema_schedules__0__reminders={"count": 3, "every_minutes": 20},
            ema_schedules__0__expires_after_minutes=60,
        ),
        "ema_schedules[0].reminders",
        "the last reminder would come 60 minutes after the prompt",
    ),
    "schedule triggered by its own questionnaire": (
        minimal,
        at("ema_schedules[0].triggers", [{"event": "ema_submitted"}]),
        "ema_schedules[0].triggers[0]",
        "would prompt it again without end",
    ),
    "decision point triggered by prompt_opened": (
        minimal,
        at("decision_points[0].triggers", [{"event": "prompt_opened"}]),
        "decision_points[0].triggers[0].event",
        "every delivered prompt would start another decision",
    ),
    # --- questionnaire items -----------------------------------------------------------
    "rating max <= min": (
        minimal,
        at("questionnaires[0].items[0].max", 0),
        "questionnaires[0].items[0].max",
        "max 0 must be greater than min 0",
    ),
    "rating step does not divide the range": (
        minimal,
        at("questionnaires[0].items[0].step", 3),
        "questionnaires[0].items[0].step",
        "step 3 does not divide the range 0..10",
    ),
    "rating step not positive": (
        minimal,
        at("questionnaires[0].items[0].step", 0),
        "questionnaires[0].items[0].step",
        "step must be positive",
    ),
    "anchor outside the scale": (
        minimal,
        at("questionnaires[0].items[0].anchors", {0: "No pain", 11: "Worst"}),
        "questionnaires[0].items[0].anchors.11",
        "anchor 11 is outside 0..10",
    ),
    "anchor off the step grid": (
        minimal,
        at("questionnaires[0].items[0].anchors", {0.5: "Hm"}),
        "questionnaires[0].items[0].anchors.0.5",
        "anchor 0.5 is not on the scale",
    ),
    "choice item without choices": (
        minimal,
        append("questionnaires[0].items", {**SINGLE_CHOICE, "choices": []}),
        "questionnaires[0].items[1].choices",
        "at least one choice is needed",
    ),
    "choice item with duplicate choices": (
        minimal,
        append(
            "questionnaires[0].items",
            {
                **SINGLE_CHOICE,
                "type": "multiple_choice",
                "choices": [{"value": "a", "label": "A"}, {"value": "a", "label": "Also A"}],
            },
        ),
        "questionnaires[0].items[1].choices[1]",
        "duplicate choice 'a'",
    ),
    "duration max <= min": (
        minimal,
        append(
            "questionnaires[0].items",
            {
                "id": "sleep",
                "type": "duration",
                "text": "Sleep?",
                "min_minutes": 60,
                "max_minutes": 30,
            },
        ),
        "questionnaires[0].items[1].max_minutes",
        "max_minutes 30 must be greater than min_minutes 60",
    ),
    "choice attribute without choices": (
        full,
        at("participant_attributes.pain_phenotype.choices", []),
        "participant_attributes.pain_phenotype.choices",
        "at least one choice is needed",
    ),
    "number attribute max <= min": (
        full,
        at("participant_attributes.age.max", 10),
        "participant_attributes.age.max",
        "max 10 must be greater than min 18",
    ),
    # --- tailoring variables -----------------------------------------------------------
    "variable named like a built-in": (
        full,
        at("tailoring_variables[5].name", "stage"),
        "tailoring_variables[5].name",
        "'stage' is a built-in variable",
    ),
    "variable named like a CEL type": (
        full,
        at("tailoring_variables[5].name", "int"),
        "tailoring_variables[5].name",
        "reserved word",
    ),
    "variable type does not fit the source": (
        full,
        at("tailoring_variables[1].type", "integer"),
        "tailoring_variables[1].type",
        "declared integer, but mean of numeric_rating item '*.acceptance' gives number",
    ),
    "mean of a choice item": (
        full,
        append(
            "tailoring_variables",
            {
                "name": "mood_mean",
                "type": "number",
                "source": "ema",
                "item": "morning.mood",
                "aggregate": "mean",
                "window": "24h",
            },
        ),
        "tailoring_variables[8].aggregate",
        "mean needs a numeric_rating or duration item, but 'morning.mood' is single_choice",
    ),
    "attribute variable of the wrong type": (
        full,
        append(
            "tailoring_variables",
            {
                "name": "pheno",
                "type": "number",
                "source": "attribute",
                "attribute": "pain_phenotype",
            },
        ),
        "tailoring_variables[8].type",
        "declared number, but attribute 'pain_phenotype' (choice) gives string",
    ),
    "window and baseline_days together": (
        full,
        at("tailoring_variables[7].window", "7d"),
        "tailoring_variables[7]",
        "give exactly one of window and baseline_days",
    ),
    "default of the wrong type": (
        full,
        at("tailoring_variables[2].default", "none"),
        "tailoring_variables[2].default",
        "default 'none' is not a integer",
    ),
    # --- SMART -------------------------------------------------------------------------
    "unknown track": (
        full,
        at("smart.stages[0].next.responders", {"track": "maintian"}),
        "smart.stages[0].next.responders.track",
        "unknown track 'maintian'; did you mean 'maintain'?",
    ),
    "unknown track in a randomization": (
        full,
        at("smart.stages[0].next.non_responders.randomize", {"intensfy": 0.5, "maintain": 0.5}),
        "smart.stages[0].next.non_responders.randomize.intensfy",
        "unknown track 'intensfy'",
    ),
    "track probabilities": (
        full,
        at("smart.stages[0].next.non_responders.randomize", {"intensify": 0.7, "maintain": 0.5}),
        "smart.stages[0].next.non_responders.randomize",
        "sum to 1.2",
    ),
    "unknown option on a track": (
        full,
        at("smart.tracks.step_down.options", ["pain_acceptance", "yoga"]),
        "smart.tracks.step_down.options[1]",
        "unknown option 'yoga'",
    ),
    "stage next without responder criterion": (
        full,
        lambda doc: delete_path(doc, "smart.stages[0].responder_when"),
        "smart.stages[0].responder_when",
        "needs responder_when",
    ),
    "last stage with next": (
        full,
        lambda doc: set_path(doc, "smart.stages[1].next", get_path(doc, "smart.stages[0].next")),
        "smart.stages[1].next",
        "the last stage has no next stage",
    ),
    "stage without duration before the last": (
        full,
        lambda doc: delete_path(doc, "smart.stages[0].duration_days"),
        "smart.stages[0].duration_days",
        "only the last stage may omit duration_days",
    ),
    "stages longer than the study": (
        full,
        at("smart.stages[0].duration_days", 100),
        "smart.stages",
        "stages last 100 days, longer than the study (84)",
    ),
    # --- personalization ---------------------------------------------------------------
    "PAI treatment is not an option": (
        full,
        lambda doc: get_path(doc, "personalization.pai.treatments").update(
            {"yoga": {"intercept": 1.0}}
        ),
        "personalization.pai.treatments.yoga",
        "unknown option 'yoga'",
    ),
    "PAI coefficient of an undeclared attribute": (
        full,
        at("personalization.pai.treatments.cbt_skill.coefficients", {"weight_kg": 0.1}),
        "personalization.pai.treatments.cbt_skill.coefficients.weight_kg",
        "unknown participant attribute 'weight_kg'",
    ),
    "PAI coefficient of an optional attribute": (
        full,
        sets(
            participant_attributes__bmi={"type": "number"},
            personalization__pai__treatments__cbt_skill__coefficients={"bmi": 0.1},
        ),
        "personalization.pai.treatments.cbt_skill.coefficients.bmi",
        "attribute 'bmi' is optional",
    ),
    "PAI coefficient of a multi_choice attribute": (
        full,
        at(
            "personalization.pai.treatments.cbt_skill.coefficients",
            {"preferred_categories": 0.1},
        ),
        "personalization.pai.treatments.cbt_skill.coefficients.preferred_categories",
        "a PAI uses number, boolean or choice",
    ),
    "PAI choice attribute without a value": (
        full,
        at("personalization.pai.treatments.cbt_skill.coefficients", {"pain_phenotype": 0.1}),
        "personalization.pai.treatments.cbt_skill.coefficients.pain_phenotype",
        "write one coefficient per value as 'pain_phenotype=nociceptive'",
    ),
    "PAI unknown choice value": (
        full,
        at("personalization.pai.treatments.cbt_skill.coefficients", {"pain_phenotype=mixed": 1}),
        "personalization.pai.treatments.cbt_skill.coefficients.pain_phenotype=mixed",
        "'mixed' is not a choice of 'pain_phenotype'",
    ),
    "PAI with one treatment": (
        full,
        lambda doc: get_path(doc, "personalization.pai.treatments").pop("cbt_skill"),
        "personalization.pai.treatments",
        "at least two treatments",
    ),
    "preferences attribute of the wrong type": (
        full,
        at("personalization.preferences.attribute", "pain_phenotype"),
        "personalization.preferences.attribute",
        "must be of type multi_choice",
    ),
    "preference choices that are not categories": (
        full,
        at("participant_attributes.preferred_categories.choices", ["pain_acceptance", "yoga"]),
        "personalization.preferences.attribute",
        "choice 'yoga' of attribute 'preferred_categories' is not an option category",
    ),
    # --- structure (Pydantic) ----------------------------------------------------------
    "unknown field": (
        minimal,
        at("study.nmae", "x"),
        "study.nmae",
        "unknown field",
    ),
    "missing field": (
        minimal,
        lambda doc: delete_path(doc, "study.duration_days"),
        "study.duration_days",
        "required field is missing",
    ),
    "unknown item type": (
        minimal,
        at("questionnaires[0].items[0].type", "slider"),
        "questionnaires[0].items[0]",
        "Input tag 'slider' found using 'type' does not match",
    ),
    "field of a tagged item": (
        minimal,
        at("questionnaires[0].items[0].min", "zero"),
        "questionnaires[0].items[0].min",
        "Input should be a valid number",
    ),
    "boolean where a number belongs": (
        minimal,
        at("questionnaires[0].items[0].max", True),
        "questionnaires[0].items[0].max",
        "Input should be a valid number",
    ),
    "format version": (
        minimal,
        at("kairos_protocol", 2),
        "kairos_protocol",
        "Input should be 1",
    ),
    "bad window": (
        full,
        at("tailoring_variables[2].window", "3 hours"),
        "tailoring_variables[2].window",
        "String should match pattern",
    ),
    "bad identifier": (
        minimal,
        at("intervention_options[0].id", "walk.now"),
        "intervention_options[0].id",
        "String should match pattern",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_document_reports_precise_problem(case: str) -> None:
    base, mutate, path, text = CASES[case]
    doc = base()
    mutate(doc)
    assert_problem(doc, path, text)


def test_several_problems_are_all_reported() -> None:
    doc = full()
    set_path(doc, "study.default_timezone", "Mars/Olympus")
    set_path(doc, "policy.rules[0].when", "interference_todya >= 6")
    set_path(doc, "policy.rules[1].randomize", {"activity_pacing": 0.5, "nothing": 0.6})
    set_path(doc, "questionnaires[0].items[0].step", 3)
    set_path(doc, "decision_points[1].random_windows[0].end", "10:00")
    problems = problems_of(doc)
    paths = {p.path for p in problems}
    assert {
        "study.default_timezone",
        "policy.rules[0].when",
        "policy.rules[1].randomize",
        "questionnaires[0].items[0].step",
        "decision_points[1].random_windows[0].end",
    } <= paths


def test_several_structural_problems_are_all_reported() -> None:
    doc = minimal()
    set_path(doc, "study.random_seed", "abc")
    set_path(doc, "questionnaires[0].items[0].typo", 1)
    set_path(doc, "decision_points[0].times[0]", "7pm")
    delete_path(doc, "policy.fallback")
    paths = {p.path for p in problems_of(doc)}
    assert paths == {
        "study.random_seed",
        "questionnaires[0].items[0].typo",
        "decision_points[0].times[0]",
        "policy.fallback",
    }


def test_problem_str_and_invalid_str() -> None:
    doc = minimal()
    set_path(doc, "study.default_timezone", "Nowhere")
    set_path(doc, "ema_schedules[0].questionnaire", "nope")
    with pytest.raises(ProtocolInvalid) as caught:
        parse_protocol(doc)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.problems) == 2
    assert "ema_schedules[0].questionnaire: unknown questionnaire 'nope'" in lines
    assert any(line.startswith("study.default_timezone: unknown IANA time zone") for line in lines)
