"""Upload checks of a learning policy (``policy.thompson_sampling``): every problem names
its field, like the other checks."""

from app.protocols.cel_rules import suggestion
from app.protocols.document import Protocol
from app.protocols.interventions import Category
from app.protocols.problems import Problems, path_of
from app.protocols.questionnaires import DurationItem, NumericRatingItem
from app.protocols.tailoring import ValueType

BASE = "policy.thompson_sampling"
_NUMERIC = (ValueType.number, ValueType.integer)


def check_learning(protocol: Protocol, problems: Problems) -> None:
    learning = protocol.policy.thompson_sampling
    if learning is None:
        return
    option_ids = [o.id for o in protocol.intervention_options]
    several = not isinstance(learning.treat, str)
    treats = learning.treat_options
    if not treats:
        problems.add(path_of(BASE, "treat"), "name at least one treat option")
    if len(set(treats)) != len(treats):
        problems.add(path_of(BASE, "treat"), "a treat option is named twice")
    for i, treat in enumerate(treats):
        path = path_of(BASE, "treat", i) if several else path_of(BASE, "treat")
        if treat not in option_ids:
            problems.add(path, f"unknown option '{treat}'{suggestion(treat, option_ids)}")
        elif protocol.option(treat).category is Category.none:
            problems.add(path, "a treat option must deliver something")
    if len(treats) > 1 and learning.smoothing is not None:
        problems.add(
            path_of(BASE, "smoothing"),
            "smoothing applies to one treat option against nothing; remove it or name one "
            "treat option",
        )
    _check_rule(protocol, problems)
    _check_outcome(protocol, problems)
    names = [v.name for v in protocol.tailoring_variables]
    for i, name in enumerate(learning.features):
        if name not in names:
            problems.add(
                path_of(BASE, "features", i),
                f"unknown tailoring variable '{name}'{suggestion(name, names)}",
            )
        elif protocol.variable(name).type not in _NUMERIC:
            problems.add(path_of(BASE, "features", i), f"'{name}' is not a number")
    size = 1 + len(learning.features)
    for block in ("baseline", "effect"):
        prior = getattr(learning.prior, block)
        for field in ("mean", "variance"):
            values = getattr(prior, field)
            if len(values) != size:
                problems.add(
                    path_of(BASE, "prior", block, field),
                    f"{len(values)} values given; the intercept and {len(learning.features)} "
                    f"features need {size}",
                )
    if learning.random_effects is not None:
        for field in ("baseline_variance", "effect_variance"):
            values = getattr(learning.random_effects, field)
            if len(values) != size:
                problems.add(
                    path_of(BASE, "random_effects", field),
                    f"{len(values)} values given; the intercept and {len(learning.features)} "
                    f"features need {size}",
                )
    bounds = learning.probability_bounds
    if bounds is not None and bounds.min > bounds.max:
        problems.add(
            path_of(BASE, "probability_bounds"),
            f"min {bounds.min} is greater than max {bounds.max}",
        )


def _check_rule(protocol: Protocol, problems: Problems) -> None:
    learning = protocol.policy.thompson_sampling
    assert learning is not None  # noqa: S101
    rule_ids = [r.id for r in protocol.policy.rules]
    if learning.rule not in rule_ids:
        problems.add(
            path_of(BASE, "rule"),
            f"unknown rule '{learning.rule}'{suggestion(learning.rule, rule_ids)}",
        )
        return
    rule = protocol.policy.rule(learning.rule)
    options = list(rule.randomize or {})
    treats = learning.treat_options
    others = [o for o in options if o not in treats]
    nothing = [
        o
        for o in others
        if o in {x.id for x in protocol.intervention_options}
        and protocol.option(o).category is Category.none
    ]
    if not set(treats) <= set(options) or len(options) != len(treats) + 1 or len(nothing) != 1:
        named = ", ".join(f"'{t}'" for t in treats)
        problems.add(
            path_of(BASE, "rule"),
            f"rule '{learning.rule}' must randomize between exactly {named} and one option "
            "of category none",
        )


def _check_outcome(protocol: Protocol, problems: Problems) -> None:
    learning = protocol.policy.thompson_sampling
    assert learning is not None  # noqa: S101
    outcomes = {o.name: o for o in protocol.proximal_outcomes}
    outcome = outcomes.get(learning.outcome)
    if outcome is None:
        problems.add(
            path_of(BASE, "outcome"),
            f"unknown proximal outcome '{learning.outcome}'"
            f"{suggestion(learning.outcome, list(outcomes))}",
        )
        return
    if outcome.options is not None:
        problems.add(
            path_of(BASE, "outcome"),
            f"'{learning.outcome}' is recorded only for some options; the model needs it "
            "for both arms (remove its options)",
        )
    if outcome.source == "ema":
        items = protocol.items(outcome.item)
        if items and not all(isinstance(i, NumericRatingItem | DurationItem) for _, i in items):
            problems.add(path_of(BASE, "outcome"), f"'{learning.outcome}' is not numeric")
