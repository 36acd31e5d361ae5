"""The policy seam: the rule table as the first policy, another policy plugged in through
the registry, and the decision record that logs what they proposed."""

import dataclasses
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

import cel
import pytest
import sqlalchemy as sa

from app.decision_rules import policies
from app.decision_rules.evaluation import builtins, evaluate
from app.decision_rules.models import Decision
from app.decision_rules.moment import Moment
from app.decision_rules.policies import Proposal, UnknownPolicyError, policy_for, policy_named
from app.decision_rules.policies.rule_table import RuleTable
from app.decision_rules.record import DecisionRecord
from app.decision_rules.tailoring import Tailoring, finish
from app.protocols.document import Protocol
from app.protocols.loading import parse_protocol
from tests.support.decisions import example_document

PROTOCOL: Protocol = parse_protocol(example_document())
# A Wednesday afternoon in the first stage, nothing that the early rules look for.
MOMENT = Moment("afternoon", datetime(2026, 3, 4, 15, 0, tzinfo=UTC), {}, stage="stage_1")
QUIET = {
    "interference_today": 2.0,
    "acceptance_today": 7.0,
    "steps_3h": 900,
    "sleep_last_night": 480,
    "prompts_today": 0,
    "days_enrolled": 5,
    "pain_mean_7d": 5.0,
    "pain_baseline": 6.0,
}


def tailoring(**changes: Any) -> Tailoring:
    return finish(PROTOCOL, {**QUIET, **changes})


def context(values: Tailoring, moment: Moment = MOMENT) -> cel.Context:
    return cel.Context({**values.present(), **builtins(moment)})


def test_the_rule_table_proposes_the_first_rule_that_holds() -> None:
    values = tailoring(interference_today=8.0, acceptance_today=2.0, steps_3h=100)
    proposal = RuleTable().propose(PROTOCOL, MOMENT, context(values))
    # Both the first and the second rule hold; the first one wins.
    assert proposal == Proposal(
        probabilities={"pain_acceptance": 0.6, "nothing": 0.4},
        randomize=True,
        rule_id="low_acceptance_high_interference",
    )


def test_the_rule_table_gives_a_fixed_option_as_a_certain_proposal() -> None:
    proposal = RuleTable().propose(PROTOCOL, MOMENT, context(tailoring()))
    assert proposal is not None
    assert proposal.rule_id == "otherwise"
    assert proposal.randomize is False
    assert proposal.probabilities == {"nothing": 1.0}


def test_every_protocol_gets_the_rule_table_and_an_unknown_name_is_an_error() -> None:
    assert isinstance(policy_for(PROTOCOL), RuleTable)
    assert policies.POLICIES["rule_table"] is policy_for(PROTOCOL)
    with pytest.raises(UnknownPolicyError, match=r"'bandit'.*known: rule_table"):
        policy_named("bandit")


class _Always:
    """A stand-in policy: always proposes the same options, counts its calls."""

    name: ClassVar[str] = "always"

    def __init__(self, probabilities: dict[str, float]) -> None:
        self.probabilities = probabilities
        self.calls = 0

    def propose(self, protocol: Protocol, moment: Moment, context: cel.Context) -> Proposal:
        self.calls += 1
        return Proposal(self.probabilities, randomize=True, rule_id="always:v1")


class _Broken:
    name: ClassVar[str] = "broken"

    def propose(self, protocol: Protocol, moment: Moment, context: cel.Context) -> Proposal:
        raise RuntimeError("model file missing")


def _use(monkeypatch: pytest.MonkeyPatch, policy: object) -> None:
    monkeypatch.setattr("app.decision_rules.evaluation.policy_for", lambda protocol: policy)


def test_another_policy_plugs_in_and_its_proposal_is_still_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = _Always({"mindfulness": 0.5, "cbt_skill": 0.5})
    _use(monkeypatch, policy)
    trauma = dataclasses.replace(MOMENT, attributes={"trauma_history": True})
    evaluation = evaluate(PROTOCOL, trauma, tailoring())
    assert policy.calls == 1
    assert evaluation.rule_id == "always:v1"
    assert evaluation.declared == {"mindfulness": 0.5, "cbt_skill": 0.5}
    # The engine's checks apply to any policy: mindfulness is contraindicated here.
    assert evaluation.excluded == {"mindfulness": "contraindicated"}
    assert evaluation.probabilities["mindfulness"] == 0.0
    assert evaluation.probabilities["cbt_skill"] == pytest.approx(1.0)


def test_a_policy_is_not_asked_when_the_participant_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    policy = _Always({"cbt_skill": 1.0})
    _use(monkeypatch, policy)
    capped = dataclasses.replace(MOMENT, prompts_today=99)
    evaluation = evaluate(PROTOCOL, capped, tailoring())
    assert not evaluation.available
    assert policy.calls == 0


def test_a_failing_policy_gives_the_fallback_with_its_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _use(monkeypatch, _Broken())
    evaluation = evaluate(PROTOCOL, MOMENT, tailoring())
    assert evaluation.fallback
    assert evaluation.error == "RuntimeError: model file missing"
    assert evaluation.probabilities == {"nothing": 1.0}


def test_the_decision_record_has_exactly_the_decision_log_columns() -> None:
    columns = {column.name for column in cast(sa.Table, Decision.__table__).columns}
    fields = {field.name for field in dataclasses.fields(DecisionRecord)}
    assert fields == columns
