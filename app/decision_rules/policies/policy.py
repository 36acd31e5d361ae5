"""What a policy is: given a decision's moment and tailoring values, the option
probabilities it proposes.

The engine keeps everything around the policy: availability and burden before it,
contraindications, SMART tracks, preferences and probability bounds after it (applied to
every policy's proposal alike), the seeded draw and the decision log. A policy only says
which options it would give with which probabilities, and why (its ``rule_id``), so a
learning policy plugs in without touching the trial-grade logging.
"""

from dataclasses import dataclass
from typing import Any, ClassVar
from typing import Protocol as Interface

import cel

from app.decision_rules.moment import Moment
from app.protocols.document import Protocol


@dataclass(frozen=True)
class Proposal:
    # The declared probabilities, before exclusions and bounds (logged as such).
    probabilities: dict[str, float]
    # Whether the draw is a micro-randomization (logged; bounds apply only then).
    randomize: bool
    # What produced the proposal, logged in the decision's rule_id.
    rule_id: str | None = None
    # What a learning policy did, logged in the decision's ``learning`` column.
    learning: dict[str, Any] | None = None


class Policy(Interface):
    name: ClassVar[str]

    def propose(self, protocol: Protocol, moment: Moment, context: cel.Context) -> Proposal | None:
        """The proposal for this decision, or None when the policy proposes nothing
        (the decision is logged as available with nothing delivered). ``context`` holds
        the tailoring values and built-ins, already converted for CEL. May raise; the
        engine then uses the protocol's fallback."""
        ...
