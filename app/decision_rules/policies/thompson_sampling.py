"""Thompson sampling for one rule of the rule table (``policy.thompson_sampling``).

The rule table still decides which rule applies; when it is the learned rule, P(treat) is
the posterior probability that the treatment effect at the current features is beyond the
declared threshold, clipped. Anything that goes wrong here (no posterior yet, too little
data, a missing feature, a numerical error) gives the declared fallback probability and
says why in the log: a learning policy must never stop a study.
"""

import math
from typing import Any, ClassVar

import cel
import numpy as np

from app.decision_rules import learning
from app.decision_rules.moment import Moment
from app.decision_rules.policies.policy import Proposal
from app.decision_rules.policies.rule_table import RuleTable
from app.decision_rules.probabilities import clip
from app.protocols.document import ProbabilityBounds, Protocol
from app.protocols.learning import ThompsonSampling

NO_POSTERIOR = "no posterior yet (before the first update)"


class ThompsonSamplingPolicy:
    name: ClassVar[str] = "thompson_sampling"

    def propose(self, protocol: Protocol, moment: Moment, context: cel.Context) -> Proposal | None:
        proposal = RuleTable().propose(protocol, moment, context)
        config = protocol.policy.thompson_sampling
        if proposal is None or config is None or proposal.rule_id != config.rule:
            return proposal
        treats = config.treat_options
        (nothing,) = (o for o in proposal.probabilities if o not in treats)
        if len(treats) > 1:
            record = learned_probabilities(protocol, config, moment, context.variables, proposal)
            clipped = record["probability_clipped"]
            return Proposal(
                probabilities={**{t: clipped[t] for t in treats}, nothing: clipped[""]},
                randomize=True,
                rule_id=proposal.rule_id,
                learning=record,
            )
        record = learned_probability(protocol, config, moment, context.variables)
        p = float(record["probability_clipped"])
        return Proposal(
            probabilities={treats[0]: p, nothing: 1.0 - p},
            randomize=True,
            rule_id=proposal.rule_id,
            learning=record,
        )


def _fallback_record(
    config: ThompsonSampling,
    posterior: learning.Posterior | None,
    values: dict[str, Any],
    fallback: float | dict[str, float],
) -> dict[str, Any]:
    """The record of a decision on the fallback probability; its ``fallback_reason`` is
    set when the posterior is missing or rests on too little data (else None: the caller
    goes on to compute the probability)."""
    reason = None
    if posterior is None:
        reason = NO_POSTERIOR
    elif posterior.rows_total < config.min_rows:
        reason = (
            f"too little data ({posterior.rows_total} rows with an outcome, "
            f"the minimum is {config.min_rows})"
        )
    return {
        "policy": ThompsonSamplingPolicy.name,
        "posterior_id": posterior.id if posterior is not None else None,
        "features": {name: values.get(name) for name in config.features},
        "effect_mean": None,
        "effect_variance": None,
        "probability_unclipped": fallback,
        "probability_clipped": fallback,
        "fallback": True,
        "fallback_reason": reason,
    }


def learned_probability(
    protocol: Protocol, config: ThompsonSampling, moment: Moment, values: dict[str, Any]
) -> dict[str, Any]:
    """The learning record of a decision: P(treat) and what it came from (never raises)."""
    posterior = moment.posterior
    record = _fallback_record(config, posterior, values, config.fallback_probability)
    if posterior is None or record["fallback_reason"] is not None:
        return record
    try:
        x = learning.feature_vector(config, values)
        mean, variance = learning.effect(config, posterior, x, moment.participant)
        # A degenerate posterior (NaN, a negative variance) must not reach the draw, nor
        # the JSON log (PostgreSQL's JSONB refuses NaN).
        if not (math.isfinite(mean) and math.isfinite(variance) and variance >= 0):
            raise ValueError(f"effect mean {mean} and variance {variance} are not usable")
        raw = learning.probability_beyond(config, mean, variance)
        if not 0.0 <= raw <= 1.0:
            raise ValueError(f"probability {raw} is not in [0, 1]")
        bounds = config.probability_bounds or protocol.policy.probability_bounds
        if config.smoothing is not None:
            smoothed = learning.smoothed_probability(config, mean, variance, bounds.min, bounds.max)
            record["probability_smoothed"] = smoothed
            clipped = learning.clip(smoothed, bounds.min, bounds.max)
        else:
            clipped = learning.clip(raw, bounds.min, bounds.max)
    except Exception as exc:
        return {**record, "fallback_reason": f"{type(exc).__name__}: {exc}"}
    if posterior.deviation is not None:
        # Per-participant: how much of the participant's own data the effect rests on.
        own = posterior.participants.get(moment.participant)
        record["participant_rows"] = own.rows if own is not None else 0
    return {
        **record,
        "effect_mean": mean,
        "effect_variance": variance,
        "probability_unclipped": raw,
        "probability_clipped": clipped,
        "fallback": False,
    }


def learned_probabilities(
    protocol: Protocol,
    config: ThompsonSampling,
    moment: Moment,
    values: dict[str, Any],
    proposal: Proposal,
) -> dict[str, Any]:
    """The learning record with several treat options: P(each option is the best, nothing
    included), clipped; the key "" is nothing. The fallback splits `fallback_probability`
    over the treat options in the rule's declared proportions (never raises)."""
    treats = config.treat_options
    declared = {t: proposal.probabilities.get(t, 0.0) for t in treats}
    total = sum(declared.values()) or 1.0
    share = config.fallback_probability
    fallback = {t: share * declared[t] / total for t in treats} | {"": 1.0 - share}
    posterior = moment.posterior
    record = _fallback_record(config, posterior, values, fallback)
    if posterior is None or record["fallback_reason"] is not None:
        return record
    try:
        x = learning.feature_vector(config, values)
        coefficients, covariance = learning.participant_coefficients(posterior, moment.participant)
        means, effect_covariance = learning.effects(coefficients, covariance, x)
        if not (np.all(np.isfinite(means)) and np.all(np.isfinite(effect_covariance))):
            raise ValueError("the effects' posterior is not finite")
        raw = learning.best_option_probabilities(config, means, effect_covariance)
        bounds = config.probability_bounds or protocol.policy.probability_bounds
        # clip() scales by a common factor, which cannot lift a zero: a posterior certain
        # that an option is never best still leaves it the lower bound.
        positive = {o: max(p, 1e-12) for o, p in raw.items()}
        clipped = clip(positive, ProbabilityBounds(min=bounds.min, max=bounds.max))
    except Exception as exc:
        return {**record, "fallback_reason": f"{type(exc).__name__}: {exc}"}
    if posterior.deviation is not None:
        own = posterior.participants.get(moment.participant)
        record["participant_rows"] = own.rows if own is not None else 0
    return {
        **record,
        "effect_mean": {t: float(m) for t, m in zip(treats, means, strict=True)},
        "effect_variance": {t: float(effect_covariance[j, j]) for j, t in enumerate(treats)},
        "probability_unclipped": raw,
        "probability_clipped": clipped,
        "fallback": False,
    }
