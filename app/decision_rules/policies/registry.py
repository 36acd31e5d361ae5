"""The policies a protocol can name, by name."""

from app.decision_rules.policies.policy import Policy
from app.decision_rules.policies.rule_table import RuleTable
from app.protocols.document import Protocol

POLICIES: dict[str, Policy] = {policy.name: policy for policy in (RuleTable(),)}

# What a protocol without a policy kind gets: today every protocol's policy is its rule
# table (a protocol field naming another policy arrives with the first learning policy).
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
    """The study's policy under this protocol version."""
    return policy_named(DEFAULT_POLICY)
