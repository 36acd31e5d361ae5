"""The ordered CEL rule table of the protocol (``policy.rules``): the first rule whose
``when`` holds gives the probabilities."""

from typing import ClassVar

import cel

from app.decision_rules.conditions import holds
from app.decision_rules.moment import Moment
from app.decision_rules.policies.policy import Proposal
from app.protocols.document import Protocol


class RuleTable:
    name: ClassVar[str] = "rule_table"

    def propose(self, protocol: Protocol, moment: Moment, context: cel.Context) -> Proposal | None:
        for index, rule in enumerate(protocol.policy.rules):
            if holds(rule.when, context, f"policy.rules[{index}].when"):
                return Proposal(
                    probabilities=rule.probabilities(),
                    randomize=rule.randomize is not None,
                    rule_id=rule.id,
                )
        return None
