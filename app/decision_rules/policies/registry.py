"""The policies a protocol can name, by name."""

from app.decision_rules.policies.policy import Policy
from app.decision_rules.policies.rule_table import RuleTable
from app.decision_rules.policies.thompson_sampling import ThompsonSamplingPolicy
from app.protocols.document import Protocol

POLICIES: dict[str, Policy] = {
    policy.name: policy for policy in (RuleTable(), ThompsonSamplingPolicy())
}

# What a protocol without a learning policy gets: its rule table.
DEFAULT_POLICY = RuleTable.name


class UnknownPolicyError(LookupError):
    def __init__(self, name: str) -> None:
        known = ", ".join(sorted(POLICIES))
        super().__init__(f"unknown policy {name!r} (known: {known})")
        self.name = name


def policy_named(name: str) -> Policy:
    try:
        return POLICIES[name]
    except KeyError:
        raise UnknownPolicyError(name) from None


def policy_for(protocol: Protocol) -> Policy:
    """The study's policy under this protocol version: the learning policy it declares,
    or the rule table."""
    learning = protocol.policy.thompson_sampling
    return policy_named(learning.kind if learning is not None else DEFAULT_POLICY)
