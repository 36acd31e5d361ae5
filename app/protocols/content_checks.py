"""Semantic checks of ids, references, questionnaire items, probabilities and the design
sections (SMART, personalization, outcomes)."""

import math
from collections.abc import Iterable, Mapping, Sequence

from app.protocols.attributes import (
    AttributeSpec,
    ChoiceAttribute,
    MultiChoiceAttribute,
    NumberAttribute,
    TextAttribute,
)
from app.protocols.care import Adaptation, ReviewFlag
from app.protocols.cel_rules import suggestion
from app.protocols.document import Protocol
from app.protocols.interventions import Category
from app.protocols.policy import Assignment, ProbabilityBounds, Rule
from app.protocols.problems import Problems, path_of
from app.protocols.questionnaires import (
    DurationItem,
    Item,
    MultipleChoiceItem,
    NumericRatingItem,
    Questionnaire,
    SingleChoiceItem,
    answer_scale,
    on_grid,
)
from app.protocols.score_checks import check_scores, check_stratify
from app.protocols.smart import Smart, TrackAssignment

PROBABILITY_TOLERANCE = 1e-9


def check_content(protocol: Protocol, problems: Problems) -> None:
    _check_duplicate_ids(protocol, problems)
    for i, questionnaire in enumerate(protocol.questionnaires):
        _check_questionnaire(questionnaire, path_of("questionnaires", i), problems)
        check_stratify(
            questionnaire, protocol.participant_attributes, path_of("questionnaires", i), problems
        )
    for name, spec in protocol.participant_attributes.items():
        _check_attribute(spec, path_of("participant_attributes", name), problems)
    _check_schedule_references(protocol, problems)
    _check_options(protocol, problems)
    _check_policy_assignments(protocol, problems)
    if protocol.smart is not None:
        _check_smart(protocol.smart, protocol, problems)
    _check_personalization(protocol, problems)
    _check_outcomes(protocol, problems)
    _check_monitoring(protocol, problems)
    _check_care(protocol, problems)


def _duplicates(base: str, field: str, ids: Sequence[str], what: str, problems: Problems) -> None:
    first: dict[str, int] = {}
    for i, value in enumerate(ids):
        if value in first:
            problems.add(
                path_of(base, i, field),
                f"duplicate {what} '{value}' (also at {path_of(base, first[value])})",
            )
        else:
            first[value] = i


def _check_duplicate_ids(protocol: Protocol, problems: Problems) -> None:
    _duplicates(
        "questionnaires", "id", [q.id for q in protocol.questionnaires], "questionnaire", problems
    )
    for i, q in enumerate(protocol.questionnaires):
        _duplicates(
            path_of("questionnaires", i, "items"), "id", [x.id for x in q.items], "item", problems
        )
    _duplicates("ema_schedules", "id", [s.id for s in protocol.ema_schedules], "schedule", problems)
    _duplicates(
        "decision_points",
        "id",
        [d.id for d in protocol.decision_points],
        "decision point",
        problems,
    )
    _duplicates(
        "tailoring_variables",
        "name",
        [v.name for v in protocol.tailoring_variables],
        "variable",
        problems,
    )
    _duplicates(
        "intervention_options",
        "id",
        [o.id for o in protocol.intervention_options],
        "option",
        problems,
    )
    _duplicates("policy.rules", "id", [r.id for r in protocol.policy.rules], "rule", problems)
    if protocol.smart is not None:
        _duplicates("smart.stages", "id", [s.id for s in protocol.smart.stages], "stage", problems)
    _duplicates(
        "proximal_outcomes",
        "name",
        [o.name for o in protocol.proximal_outcomes],
        "outcome",
        problems,
    )


def _check_questionnaire(questionnaire: Questionnaire, base: str, problems: Problems) -> None:
    check_scores(questionnaire, base, problems)
    for j, item in enumerate(questionnaire.items):
        path = path_of(base, "items", j)
        if isinstance(item, NumericRatingItem):
            _check_rating(item, path, problems)
        elif isinstance(item, SingleChoiceItem | MultipleChoiceItem):
            _check_choices([c.value for c in item.choices], path, problems)
        elif isinstance(item, DurationItem) and item.max_minutes <= item.min_minutes:
            problems.add(
                path_of(path, "max_minutes"),
                f"max_minutes {item.max_minutes} must be greater than min_minutes "
                f"{item.min_minutes}",
            )


def rating_problems(item: NumericRatingItem) -> list[tuple[str, str]]:
    """(field, message) for each problem of a numeric rating scale."""
    out: list[tuple[str, str]] = []
    if not all(math.isfinite(v) for v in (item.min, item.max, item.step)):
        return [("", "min, max and step must be finite numbers")]
    if item.max <= item.min:
        return [("max", f"max {item.max} must be greater than min {item.min}")]
    if item.step <= 0:
        return [("step", f"step must be positive, got {item.step}")]
    if not on_grid(item.max, item.min, item.step):
        out.append(
            (
                "step",
                f"step {item.step} does not divide the range {item.min}..{item.max} "
                "into whole steps",
            )
        )
    for value in item.anchors:
        if not item.min <= value <= item.max:
            out.append((f"anchors.{value}", f"anchor {value} is outside {item.min}..{item.max}"))
        elif not on_grid(value, item.min, item.step):
            out.append((f"anchors.{value}", f"anchor {value} is not on the scale"))
    return out


def _check_rating(item: NumericRatingItem, path: str, problems: Problems) -> None:
    for field, message in rating_problems(item):
        problems.add(path_of(path, field), message)


def _check_choices(values: Sequence[str], path: str, problems: Problems) -> None:
    if not values:
        problems.add(path_of(path, "choices"), "at least one choice is needed")
    _duplicates(path_of(path, "choices"), "", list(values), "choice", problems)


def _check_attribute(spec: AttributeSpec, path: str, problems: Problems) -> None:
    if isinstance(spec, ChoiceAttribute | MultiChoiceAttribute):
        if not spec.choices:
            problems.add(path_of(path, "choices"), "at least one choice is needed")
        _duplicates(path_of(path, "choices"), "", list(spec.choices), "choice", problems)
    elif (
        isinstance(spec, NumberAttribute)
        and spec.min is not None
        and spec.max is not None
        and spec.max <= spec.min
    ):
        problems.add(path_of(path, "max"), f"max {spec.max} must be greater than min {spec.min}")


def _check_questionnaire_reference(
    protocol: Protocol, questionnaire_id: str, path: str, problems: Problems
) -> None:
    ids = [q.id for q in protocol.questionnaires]
    if questionnaire_id not in ids:
        problems.add(
            path,
            f"unknown questionnaire '{questionnaire_id}'{suggestion(questionnaire_id, ids)}",
        )


def item_reference_problem(protocol: Protocol, reference: str) -> str | None:
    """Why "<questionnaire>.<item>" (or "*.<item>") names no usable item, or None."""
    questionnaire_id, _, item_id = reference.partition(".")
    if questionnaire_id == "*":
        matches = protocol.items(reference)
        if not matches:
            every = sorted({i.id for q in protocol.questionnaires for i in q.referable})
            return f"no questionnaire has an item '{item_id}'{suggestion(item_id, every)}"
        scales = {answer_scale(item) for _, item in matches}
        if len(scales) > 1:
            where = ", ".join(f"{q.id}.{item.id}" for q, item in matches)
            return f"'{reference}' pools items that differ in type or scale ({where})"
        return None
    ids = [q.id for q in protocol.questionnaires]
    if questionnaire_id not in ids:
        return f"unknown questionnaire '{questionnaire_id}'{suggestion(questionnaire_id, ids)}"
    items = [i.id for i in protocol.questionnaire(questionnaire_id).referable]
    if item_id not in items:
        return (
            f"questionnaire '{questionnaire_id}' has no item '{item_id}'"
            f"{suggestion(item_id, items)}"
        )
    return None


def _check_schedule_references(protocol: Protocol, problems: Problems) -> None:
    for i, schedule in enumerate(protocol.ema_schedules):
        base = path_of("ema_schedules", i)
        _check_questionnaire_reference(
            protocol, schedule.questionnaire, path_of(base, "questionnaire"), problems
        )
    sections = {
        "ema_schedules": [s.triggers for s in protocol.ema_schedules],
        "decision_points": [d.triggers for d in protocol.decision_points],
    }
    for section, trigger_lists in sections.items():
        for i, triggers in enumerate(trigger_lists):
            for j, trigger in enumerate(triggers):
                if trigger.questionnaire is None:
                    continue
                path = path_of(section, i, "triggers", j, "questionnaire")
                if trigger.event != "ema_submitted":
                    problems.add(path, "only ema_submitted triggers can name a questionnaire")
                else:
                    _check_questionnaire_reference(protocol, trigger.questionnaire, path, problems)


def option_reference_problem(protocol: Protocol, option_id: str) -> str | None:
    ids = [o.id for o in protocol.intervention_options]
    if option_id in ids:
        return None
    return f"unknown option '{option_id}'{suggestion(option_id, ids)}"


def _check_options(protocol: Protocol, problems: Problems) -> None:
    for i, option in enumerate(protocol.intervention_options):
        base = path_of("intervention_options", i)
        if option.category is Category.none:
            for field in ("title", "body", "deep_link", "exercise_id"):
                if getattr(option, field) is not None:
                    problems.add(
                        path_of(base, field),
                        f"an option of category none delivers nothing, so a {field} is "
                        "pointless; remove it or choose another category",
                    )
        else:
            for field in ("title", "body"):
                if getattr(option, field) is None:
                    problems.add(
                        path_of(base, field),
                        f"a {field} is required for an option that sends a push "
                        f"(category {option.category.value})",
                    )


def probability_problems(
    probabilities: Mapping[str, float], bounds: ProbabilityBounds | None = None
) -> list[tuple[str, str]]:
    """(key, message) for each problem of a probability map ("" for the map itself)."""
    out: list[tuple[str, str]] = []
    if not probabilities:
        return [("", "no probabilities given")]
    for key, p in probabilities.items():
        if not math.isfinite(p) or not 0.0 <= p <= 1.0:
            out.append((key, f"probability {p} is outside [0, 1]"))
    if out:
        return out
    total = math.fsum(probabilities.values())
    if abs(total - 1.0) > PROBABILITY_TOLERANCE:
        out.append(("", f"probabilities sum to {total:.12g}, not 1"))
    if bounds is not None and bounds.min <= bounds.max:
        n = len(probabilities)
        if n * bounds.min > 1.0 + PROBABILITY_TOLERANCE:
            out.append(
                ("", f"{n} options cannot all get at least probability_bounds.min {bounds.min}")
            )
        if n * bounds.max < 1.0 - PROBABILITY_TOLERANCE:
            out.append(
                ("", f"{n} options at most probability_bounds.max {bounds.max} cannot sum to 1")
            )
    return out


def _check_assignment(
    assignment: Assignment | Rule | TrackAssignment,
    path: str,
    known: Iterable[str],
    what: str,
    problems: Problems,
    bounds: ProbabilityBounds | None = None,
) -> None:
    if isinstance(assignment, TrackAssignment):
        single, field = assignment.track, "track"
    else:
        single, field = assignment.option, "option"
    if (single is None) == (assignment.randomize is None):
        problems.add(path, f"give exactly one of {field} and randomize")
        return
    ids = list(known)
    if single is not None:
        if single not in ids:
            problems.add(
                path_of(path, field), f"unknown {what} '{single}'{suggestion(single, ids)}"
            )
        return
    randomize = assignment.randomize or {}
    for key in randomize:
        if key not in ids:
            problems.add(
                path_of(path, "randomize", key), f"unknown {what} '{key}'{suggestion(key, ids)}"
            )
    for key, message in probability_problems(randomize, bounds):
        problems.add(path_of(path, "randomize", key), message)


def _check_policy_assignments(protocol: Protocol, problems: Problems) -> None:
    policy = protocol.policy
    bounds = policy.probability_bounds
    bounds_ok = True
    for field in ("min", "max"):
        value = getattr(bounds, field)
        if not 0.0 <= value <= 1.0:
            problems.add(path_of("policy.probability_bounds", field), f"{value} is outside [0, 1]")
            bounds_ok = False
    if bounds.min > bounds.max:
        problems.add(
            "policy.probability_bounds",
            f"min {bounds.min} is greater than max {bounds.max}",
        )
        bounds_ok = False
    option_ids = [o.id for o in protocol.intervention_options]
    for i, rule in enumerate(policy.rules):
        _check_assignment(
            rule,
            path_of("policy.rules", i),
            option_ids,
            "option",
            problems,
            bounds if bounds_ok else None,
        )
    _check_assignment(policy.fallback, "policy.fallback", option_ids, "option", problems)
    for option_id in policy.fallback.option_ids():
        if option_id in option_ids and protocol.option(option_id).contraindicated_when:
            problems.add(
                "policy.fallback",
                f"option '{option_id}' has contraindications; the fallback must be "
                "deliverable to everyone (e.g. an option of category none)",
            )


def _check_smart(smart: Smart, protocol: Protocol, problems: Problems) -> None:
    tracks = list(smart.tracks)
    option_ids = [o.id for o in protocol.intervention_options]
    total = 0
    last = len(smart.stages) - 1
    for i, stage in enumerate(smart.stages):
        base = path_of("smart.stages", i)
        if stage.duration_days is None and i != last:
            problems.add(
                path_of(base, "duration_days"),
                "only the last stage may omit duration_days",
            )
        total += stage.duration_days or 0
        if stage.next is not None:
            if i == last:
                problems.add(path_of(base, "next"), "the last stage has no next stage")
            if stage.responder_when is None:
                problems.add(
                    path_of(base, "responder_when"),
                    "a stage with `next` needs responder_when to tell responders apart",
                )
            for group in ("responders", "non_responders"):
                _check_assignment(
                    getattr(stage.next, group),
                    path_of(base, "next", group),
                    tracks,
                    "track",
                    problems,
                )
        elif i != last:
            problems.add(
                path_of(base, "next"),
                "give `next` (responders / non_responders) for every stage but the last",
            )
    if total > protocol.study.duration_days:
        problems.add(
            "smart.stages",
            f"stages last {total} days, longer than the study ({protocol.study.duration_days})",
        )
    if smart.initial is not None:
        _check_assignment(smart.initial, "smart.initial", tracks, "track", problems)
    for name, track in smart.tracks.items():
        for j, option_id in enumerate(track.options or ()):
            if option_id not in option_ids:
                problems.add(
                    path_of("smart.tracks", name, "options", j),
                    f"unknown option '{option_id}'{suggestion(option_id, option_ids)}",
                )


def _check_personalization(protocol: Protocol, problems: Problems) -> None:
    attributes = protocol.participant_attributes
    names = sorted(attributes)
    preferences = protocol.personalization.preferences
    if preferences is not None:
        path = "personalization.preferences.attribute"
        spec = attributes.get(preferences.attribute)
        if spec is None:
            problems.add(
                path,
                f"unknown participant attribute '{preferences.attribute}'"
                f"{suggestion(preferences.attribute, names)}",
            )
        elif not isinstance(spec, MultiChoiceAttribute):
            problems.add(path, f"attribute '{preferences.attribute}' must be of type multi_choice")
        else:
            categories = {c.value for c in Category}
            for value in spec.choices:
                if value not in categories:
                    problems.add(
                        path,
                        f"choice '{value}' of attribute '{preferences.attribute}' is not an "
                        f"option category ({', '.join(sorted(categories))})",
                    )
    pai = protocol.personalization.pai
    if pai is None:
        return
    base = "personalization.pai"
    if len(pai.treatments) < 2:
        problems.add(path_of(base, "treatments"), "a PAI compares at least two treatments")
    option_ids = [o.id for o in protocol.intervention_options]
    for option_id, treatment in pai.treatments.items():
        tpath = path_of(base, "treatments", option_id)
        if option_id not in option_ids:
            problems.add(tpath, f"unknown option '{option_id}'{suggestion(option_id, option_ids)}")
        for term in treatment.coefficients:
            message = _pai_term_problem(term, attributes)
            if message:
                problems.add(path_of(tpath, "coefficients", term), message)


def _pai_term_problem(term: str, attributes: Mapping[str, AttributeSpec]) -> str | None:
    name, _, level = term.partition("=")
    spec = attributes.get(name)
    if spec is None:
        return f"unknown participant attribute '{name}'{suggestion(name, sorted(attributes))}"
    if isinstance(spec, MultiChoiceAttribute | TextAttribute):
        return f"attribute '{name}' is {spec.type}; a PAI uses number, boolean or choice"
    if isinstance(spec, ChoiceAttribute):
        if not level:
            return (
                f"'{name}' is a choice attribute; write one coefficient per value as "
                f"'{name}={spec.choices[0] if spec.choices else 'value'}'"
            )
        if level not in spec.choices:
            return f"'{level}' is not a choice of '{name}'{suggestion(level, spec.choices)}"
    elif level:
        return f"'{name}' is not a choice attribute; write '{name}' without '='"
    if not spec.required:
        return f"attribute '{name}' is optional; a PAI needs it for everyone, mark it required"
    return None


def _check_outcomes(protocol: Protocol, problems: Problems) -> None:
    option_ids = [o.id for o in protocol.intervention_options]
    for i, outcome in enumerate(protocol.proximal_outcomes):
        base = path_of("proximal_outcomes", i)
        if outcome.source == "ema":
            message = item_reference_problem(protocol, outcome.item)
            if message:
                problems.add(path_of(base, "item"), message)
        for j, option_id in enumerate(outcome.options or ()):
            if option_id not in option_ids:
                problems.add(
                    path_of(base, "options", j),
                    f"unknown option '{option_id}'{suggestion(option_id, option_ids)}",
                )


def item_of(protocol: Protocol, reference: str) -> Item | None:
    if item_reference_problem(protocol, reference):
        return None
    return protocol.item(reference)


def _check_monitoring(protocol: Protocol, problems: Problems) -> None:
    monitoring = protocol.monitoring
    references = [
        (path_of("monitoring", "trend_items", i), r) for i, r in enumerate(monitoring.trend_items)
    ]
    if monitoring.non_response is not None:
        references.append(
            (path_of("monitoring", "non_response", "item"), monitoring.non_response.item)
        )
    for path, reference in references:
        message = item_reference_problem(protocol, reference)
        if message is None and not all(
            answer_scale(item)[0] in ("numeric_rating", "duration", "yes_no")
            for _, item in protocol.items(reference)
        ):
            message = f"'{reference}' is not a numeric item, so it has no mean to follow"
        if message is not None:
            problems.add(path, message)


def _check_care(protocol: Protocol, problems: Problems) -> None:
    """Phases, reviews and the declared adaptive design (docs/care-team.md)."""
    phases = protocol.phases
    if phases is not None:
        ids = [p.id for p in phases.steps]
        _duplicates("phases.steps", "id", ids, "phase", problems)
        if phases.initial is not None and phases.initial not in ids:
            problems.add(
                "phases.initial",
                f"unknown phase '{phases.initial}'{suggestion(phases.initial, ids)}",
            )
        option_ids = [o.id for o in protocol.intervention_options]
        fallback = [
            o
            for o in protocol.policy.fallback.option_ids()
            if o in option_ids and protocol.option(o).category != Category.none
        ]
        for i, phase in enumerate(phases.steps):
            for j, option_id in enumerate(phase.options or ()):
                if option_id not in option_ids:
                    problems.add(
                        path_of("phases.steps", i, "options", j),
                        f"unknown option '{option_id}'{suggestion(option_id, option_ids)}",
                    )
            missing = [o for o in fallback if phase.options is not None and o not in phase.options]
            if missing:
                problems.add(
                    path_of("phases.steps", i, "options"),
                    f"the fallback's option(s) {', '.join(missing)} must be allowed in every "
                    "phase (or make the fallback an option of category none)",
                )
    adaptation = protocol.adaptation
    if adaptation is not None:
        wants_smart = adaptation in (Adaptation.smart, Adaptation.both)
        wants_phases = adaptation in (Adaptation.phases, Adaptation.both)
        if wants_smart and protocol.smart is None:
            problems.add("smart", f"adaptation is {adaptation}, but no smart section is declared")
        if wants_phases and phases is None:
            problems.add("phases", f"adaptation is {adaptation}, but no phases section is declared")
        if not wants_smart and protocol.smart is not None:
            problems.add(
                "smart",
                "adaptation is phases (clinician-chosen phases only), but SMART stages are "
                "declared: remove smart, or declare adaptation: both",
            )
        if not wants_phases and phases is not None:
            problems.add(
                "phases",
                "adaptation is smart (randomized re-assignment only), but phases are "
                "declared: remove phases, or declare adaptation: both",
            )
    reviews = protocol.reviews
    if reviews is not None:
        for i, kind in enumerate(reviews.on_flags):
            if kind == ReviewFlag.non_response and protocol.monitoring.non_response is None:
                problems.add(
                    path_of("reviews", "on_flags", i),
                    "non_response flags are raised only with monitoring.non_response declared",
                )
