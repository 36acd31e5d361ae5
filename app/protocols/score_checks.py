"""Upload checks of questionnaire scores (``questionnaires[].scores``): every problem names
its field."""

from app.protocols.cel_rules import suggestion
from app.protocols.problems import Problems, path_of
from app.protocols.questionnaires import (
    DurationItem,
    NumericRatingItem,
    Questionnaire,
    ScoreMethod,
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
            elif not isinstance(item, NumericRatingItem | DurationItem):
                problems.add(
                    path_of(path, "items", j),
                    f"'{item_id}' is a {item.type} item; a score adds numeric ratings and "
                    "durations",
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
