"""Upload checks of questionnaire scores (``questionnaires[].scores``): every problem names
its field."""

from collections.abc import Mapping

from app.protocols.attributes import AttributeSpec, ChoiceAttribute
from app.protocols.cel_rules import suggestion
from app.protocols.problems import Problems, path_of
from app.protocols.questionnaires import (
    DurationItem,
    NumericRatingItem,
    Questionnaire,
    ScoreMethod,
    SingleChoiceItem,
)


def check_scores(questionnaire: Questionnaire, base: str, problems: Problems) -> None:
    item_ids = [i.id for i in questionnaire.items]
    taken: set[str] = set(item_ids)
    for i, score in enumerate(questionnaire.scores):
        path = path_of(base, "scores", i)
        if score.id in taken:
            problems.add(
                path_of(path, "id"),
                f"'{score.id}' is already an item or score id of questionnaire "
                f"'{questionnaire.id}'",
            )
        taken.add(score.id)
        if len(set(score.items)) != len(score.items):
            problems.add(path_of(path, "items"), "an item is named twice")
        for j, item_id in enumerate(score.items):
            item = questionnaire.find_item(item_id)
            if item is None:
                problems.add(
                    path_of(path, "items", j),
                    f"questionnaire '{questionnaire.id}' has no item '{item_id}'"
                    f"{suggestion(item_id, item_ids)}",
                )
            elif isinstance(item, SingleChoiceItem) and item_id in score.recode:
                choices = [c.value for c in item.choices]
                missing = [c for c in choices if c not in score.recode[item_id]]
                unknown = [c for c in score.recode[item_id] if c not in choices]
                if missing:
                    problems.add(
                        path_of(path, "recode", item_id),
                        f"no number for the choice(s) {', '.join(missing)}",
                    )
                for value in unknown:
                    problems.add(
                        path_of(path, "recode", item_id, value),
                        f"'{value}' is not a choice of '{item_id}'{suggestion(value, choices)}",
                    )
            elif not isinstance(item, NumericRatingItem | DurationItem):
                problems.add(
                    path_of(path, "items", j),
                    f"'{item_id}' is a {item.type} item; a score adds numeric ratings and "
                    "durations (and single choices it recodes)",
                )
        for item_id in score.recode:
            if item_id not in score.items:
                problems.add(
                    path_of(path, "recode", item_id), f"'{item_id}' is not one of the score's items"
                )
            elif not isinstance(questionnaire.find_item(item_id), SingleChoiceItem):
                problems.add(
                    path_of(path, "recode", item_id),
                    "recode applies to single-choice items (numeric items count as answered)",
                )
        for j, item_id in enumerate(score.reverse):
            if item_id not in score.items:
                problems.add(
                    path_of(path, "reverse", j), f"'{item_id}' is not one of the score's items"
                )
        weights = score.weights or {}
        if score.method is ScoreMethod.weighted_sum:
            missing = [x for x in score.items if x not in weights]
            if missing:
                problems.add(
                    path_of(path, "weights"), f"no weight for {', '.join(sorted(missing))}"
                )
            for item_id, weight in weights.items():
                if item_id not in score.items:
                    problems.add(
                        path_of(path, "weights", item_id),
                        f"'{item_id}' is not one of the score's items",
                    )
                elif weight == 0:
                    problems.add(path_of(path, "weights", item_id), "a weight of 0 adds nothing")
        elif score.weights is not None:
            problems.add(path_of(path, "weights"), "weights apply to method weighted_sum only")
        if score.min_answered is not None and score.min_answered > len(score.items):
            problems.add(
                path_of(path, "min_answered"),
                f"{score.min_answered} is more than the score's {len(score.items)} items",
            )


def check_stratify(
    questionnaire: Questionnaire,
    attributes: Mapping[str, AttributeSpec],
    base: str,
    problems: Problems,
) -> None:
    """`stratify` sets a declared choice attribute to its choices from the questionnaire's
    scores."""
    stratify = questionnaire.stratify
    if stratify is None:
        return
    path = path_of(base, "stratify")
    spec = attributes.get(stratify.attribute)
    if not isinstance(spec, ChoiceAttribute):
        what = "is not declared" if spec is None else f"is of type {spec.type}"
        problems.add(
            path_of(path, "attribute"),
            f"participant attribute '{stratify.attribute}' {what}; stratify sets an attribute "
            f"of type choice{suggestion(stratify.attribute, sorted(attributes))}",
        )
        choices: tuple[str, ...] | None = None
    else:
        choices = spec.choices
    score_ids = [s.id for s in questionnaire.scores]
    for j, stratum in enumerate(stratify.strata):
        at = path_of(path, "strata", j)
        if stratum.score not in score_ids:
            problems.add(
                path_of(at, "score"),
                f"questionnaire '{questionnaire.id}' has no score '{stratum.score}'"
                f"{suggestion(stratum.score, score_ids)}",
            )
        if stratum.min is None and stratum.max is None:
            problems.add(at, "give min, max or both")
        elif stratum.min is not None and stratum.max is not None and stratum.min > stratum.max:
            problems.add(path_of(at, "max"), f"{stratum.max} is below min {stratum.min}")
        if choices is not None and stratum.value not in choices:
            problems.add(path_of(at, "value"), f"expected one of {list(choices)}")
    otherwise = stratify.otherwise
    if choices is not None and otherwise is not None and otherwise not in choices:
        problems.add(path_of(path, "otherwise"), f"expected one of {list(choices)}")
