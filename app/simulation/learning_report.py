"""The simulation report's section on a learning policy (``policy.thompson_sampling``):
what it learned, week by week. For each study week, the learned rule's decisions, the mean
probability of treating, the share decided on the fallback probability and the mean
proximal outcome; and, for each feature of the model, the mean probability of treating
at decisions below and at or above the feature's median (the contexts the policy should
tell apart when the effect depends on them)."""

import html
import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.decision_rules.models import Decision, PolicyPosterior
from app.decision_rules.outcomes import proximal_outcomes
from app.protocols.document import Protocol


def learning_section(session: Session, protocol: Protocol, now: Any) -> dict[str, Any] | None:
    """The section, or None when the protocol has no learning policy."""
    config = protocol.policy.thompson_sampling
    if config is None:
        return None
    decisions = list(
        session.scalars(
            sa.select(Decision)
            .where(Decision.rule_id == config.rule, Decision.available.is_(True))
            .order_by(Decision.decided_at, Decision.id)
        )
    )
    outcomes = proximal_outcomes(session, decisions, now=now, names=[config.outcome])
    posteriors = session.scalar(sa.select(sa.func.count()).select_from(PolicyPosterior)) or 0
    rows = [
        _Row(
            d.study_day or 0,
            sum(d.probabilities.get(t, 0.0) for t in config.treat_options),
            d,
            o.get(config.outcome),
        )
        for d, o in zip(decisions, outcomes, strict=True)
    ]
    by_week: dict[int, list[_Row]] = defaultdict(list)
    for row in rows:
        by_week[row.day // 7].append(row)
    return {
        "rule": config.rule,
        "treat": ", ".join(config.treat_options),
        "outcome": config.outcome,
        "better": config.better,
        "posteriors": posteriors,
        "mean_outcome": _mean([r.outcome for r in rows]),
        "by_week": [_week(week, found) for week, found in sorted(by_week.items())],
        "by_context": {feature: _contexts(feature, rows, by_week) for feature in config.features},
    }


class _Row:
    __slots__ = ("day", "decision", "outcome", "p")

    def __init__(self, day: int, p: float, decision: Decision, outcome: Any) -> None:
        self.day, self.p, self.decision = day, float(p), decision
        self.outcome = float(outcome) if isinstance(outcome, int | float) else None

    def feature(self, name: str) -> float | None:
        value = (self.decision.tailoring or {}).get(name)
        return float(value) if isinstance(value, int | float) else None

    @property
    def fallback(self) -> bool:
        return bool((self.decision.learning or {}).get("fallback"))


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.fmean(present), 4) if present else None


def _week(week: int, rows: Sequence[_Row]) -> dict[str, Any]:
    return {
        "week": week,
        "decisions": len(rows),
        "mean_probability": _mean([r.p for r in rows]),
        "fallback_share": round(sum(r.fallback for r in rows) / len(rows), 4),
        "mean_outcome": _mean([r.outcome for r in rows]),
    }


def _contexts(feature: str, rows: Sequence[_Row], by_week: dict[int, list[_Row]]) -> dict[str, Any]:
    values = [v for r in rows if (v := r.feature(feature)) is not None]
    if not values:
        return {"split_at": None, "weeks": []}
    split = statistics.median(values)
    weeks = []
    for week, found in sorted(by_week.items()):
        low = [r.p for r in found if (v := r.feature(feature)) is not None and v < split]
        high = [r.p for r in found if (v := r.feature(feature)) is not None and v >= split]
        weeks.append(
            {
                "week": week,
                "below": _mean(low),
                "below_n": len(low),
                "at_or_above": _mean(high),
                "at_or_above_n": len(high),
            }
        )
    return {"split_at": split, "weeks": weeks}


def render_learning_html(section: dict[str, Any], table: Any) -> str:
    """The section as HTML (``table`` renders a header and rows)."""
    parts = [
        f"<h2>Learning policy: rule {html.escape(section['rule'])}, "
        f"P(treat with {html.escape(section['treat'])}) by study week</h2>",
        f"<p>{section['posteriors']} posteriors stored; mean {html.escape(section['outcome'])} "
        f"at the rule's decisions: {section['mean_outcome']} ({section['better']} is "
        "better).</p>",
        table(
            ["week", "decisions", "mean P(treat)", "fallback share", "mean outcome"],
            [
                [
                    w["week"],
                    w["decisions"],
                    w["mean_probability"],
                    w["fallback_share"],
                    w["mean_outcome"],
                ]
                for w in section["by_week"]
            ],
        ),
    ]
    for feature, context in section["by_context"].items():
        parts += [
            f"<h3>P(treat) by {html.escape(feature)} (split at its median, "
            f"{json.dumps(context['split_at'])})</h3>",
            table(
                ["week", "below", "n", "at or above", "n"],
                [
                    [w["week"], w["below"], w["below_n"], w["at_or_above"], w["at_or_above_n"]]
                    for w in context["weeks"]
                ],
            ),
        ]
    return "\n".join(parts)
