"""Upload checks of the dose constraint (``policy.dose``): every problem names its field."""

from app.protocols.cel_rules import suggestion
from app.protocols.document import Protocol, Rule
from app.protocols.problems import Problems, path_of

BASE = "policy.dose"


def qualifies(protocol: Protocol, rule: Rule) -> bool:
    """Whether the rule randomizes between options that deliver something and exactly one
    option of category none (what a dose can be adjusted on)."""
    if rule.randomize is None:
        return False
    known = {o.id for o in protocol.intervention_options}
    options = [o for o in rule.randomize if o in known]
    nothing = [o for o in options if protocol.option(o).delivers_nothing]
    return len(nothing) == 1 and len(options) > 1


def check_dose(protocol: Protocol, problems: Problems) -> None:
    config = protocol.policy.dose
    if config is None:
        return
    rule_ids = [r.id for r in protocol.policy.rules]
    learning = protocol.policy.thompson_sampling
    for i, rule_id in enumerate(config.rules):
        path = path_of(BASE, "rules", i)
        if rule_id not in rule_ids:
            problems.add(path, f"unknown rule '{rule_id}'{suggestion(rule_id, rule_ids)}")
        elif learning is not None and rule_id == learning.rule:
            problems.add(
                path,
                f"rule '{rule_id}' is learned by policy.thompson_sampling, whose probability "
                "is its own; a rule is either learned or dose-constrained",
            )
        elif not qualifies(protocol, protocol.policy.rule(rule_id)):
            problems.add(
                path,
                f"rule '{rule_id}' must randomize between options that deliver something and "
                "exactly one option of category none",
            )
    if not config.rules and not any(
        qualifies(protocol, r)
        for r in protocol.policy.rules
        if learning is None or r.id != learning.rule
    ):
        problems.add(
            path_of(BASE, "rules"),
            "no rule randomizes between options that deliver something and one option of "
            "category none, so there is nothing to adjust",
        )
