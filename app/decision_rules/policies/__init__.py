"""Decision policies: what proposes the option probabilities at a decision point.

Add one as a module here with a class that has a ``name`` and ``propose`` (see
``policy.Policy``), and register it in ``registry.POLICIES``.
"""

from app.decision_rules.policies.policy import Policy, Proposal
from app.decision_rules.policies.registry import (
    POLICIES,
    UnknownPolicyError,
    policy_for,
    policy_named,
)

__all__ = ["POLICIES", "Policy", "Proposal", "UnknownPolicyError", "policy_for", "policy_named"]
