"""What a simulation shows a coordinator: burden against the caps, availability and its
reasons, which rules fired and which never did, what was delivered with which
probabilities, SMART allocation, flags and alerts; and the decisions export of the
simulated study in exactly the real export's format."""

import html
import json
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from app.alerts.models import Alert
from app.audit.service import CLI_ACTOR
from app.core.clock import SimulatedClock
from app.decision_rules.evaluation import builtins
from app.decision_rules.models import Decision, SmartAssignment
from app.decision_rules.moment import Moment
from app.decision_rules.tailoring import convert
from app.ema.models import EmaResponse
from app.export.columns import Filters
from app.export.formats import ExportFormat
from app.export.service import prepare_export, stream_export
from app.monitoring.models import CareFlag
from app.notifications.models import Notification, NotificationStatus
from app.participants.models import Participant
from app.protocols.cel_rules import compile_condition, evaluate_condition
from app.protocols.document import Protocol
from app.protocols.policy import Rule
from app.scheduling.models import ItemKind, ItemStatus, ScheduledItem
from app.simulation import charts
from app.simulation.learning_report import learning_section, render_learning_html
from app.simulation.runner import Simulation
from app.studies.models import Study

PUSH_KINDS = ("ema_prompt", "reminder", "intervention")
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def build_report(sim: Simulation, *, seconds: float | None = None) -> dict[str, Any]:
    protocol = sim.protocol
    with sim.session_factory() as session:
        people = session.execute(
            sa.select(Participant.id, Participant.timezone, Participant.enrolled_at)
        ).all()
        zones = {p.id: ZoneInfo(p.timezone) for p in people}
        enrolled = {p.id: p.enrolled_at for p in people if p.enrolled_at is not None}
        pushes = session.execute(
            sa.select(Notification.participant_id, Notification.kind, Notification.sent_at).where(
                Notification.status == NotificationStatus.sent
            )
        ).all()
        decisions = session.execute(
            sa.select(
                Decision.participant_id,
                Decision.decided_at,
                Decision.decision_point_id,
                Decision.study_day,
                Decision.available,
                Decision.unavailable_reason,
                Decision.rule_id,
                Decision.option_id,
                Decision.randomized,
                Decision.probability,
                Decision.track,
            )
        ).all()
        prompts = Counter(
            status
            for (status,) in session.execute(
                sa.select(ScheduledItem.status).where(ScheduledItem.kind == ItemKind.ema_prompt)
            )
        )
        answered = session.scalar(sa.select(sa.func.count()).select_from(EmaResponse)) or 0
        tracks = Counter(
            f"{stage or '-'}/{track or '-'}"
            for stage, track in session.execute(
                sa.select(SmartAssignment.stage_id, SmartAssignment.track)
            )
        )
        learned = learning_section(session, protocol, sim.end)
        flags = Counter(k for (k,) in session.execute(sa.select(CareFlag.kind)))
        alerts = Counter(s for (s,) in session.execute(sa.select(Alert.severity)))
        fired_rows = session.execute(
            sa.select(
                Decision.rule_id,
                Decision.decision_point_id,
                Decision.local_time,
                Decision.stage,
                Decision.track,
                Decision.phase,
                Decision.pai_recommendation,
                Decision.tailoring,
                Participant.attributes,
            )
            .join(Participant, Participant.id == Decision.participant_id)
            .where(Decision.rule_id.is_not(None))
        ).all()
    fired = Counter(d.rule_id for d in decisions if d.rule_id is not None)
    never = [rule for rule in protocol.policy.rules if rule.id not in fired]
    return {
        "simulation": {
            "participants": len(sim.participants),
            "days": (sim.end - sim.start).days,
            "seed": sim.seed,
            "start": sim.start.isoformat(),
            "end": sim.end.isoformat(),
            "clock_steps": sim.steps_taken,
            **({"seconds": round(seconds, 1)} if seconds is not None else {}),
        },
        "burden": _burden(protocol, pushes, decisions, zones, enrolled),
        "ema": {
            "prompts_fired": prompts.get(ItemStatus.done, 0),
            "prompts_missed": prompts.get(ItemStatus.missed, 0),
            "responses": answered,
        },
        "availability": _availability(decisions),
        "rules": {
            "fired": dict(sorted(fired.items())),
            "never_fired": [rule.id for rule in never],
            "shadowed": _shadowed(protocol, never, fired_rows),
        },
        "deliveries": _deliveries(decisions),
        "smart": dict(sorted(tracks.items())),
        "flags": dict(sorted(flags.items())),
        "alerts": dict(sorted(alerts.items())),
        "rejected_uploads": sim.rejections,
        **({"learning": learned} if learned is not None else {}),
    }


def _burden(
    protocol: Protocol,
    pushes: Iterable[Any],
    decisions: Iterable[Any],
    zones: dict[uuid.UUID, ZoneInfo],
    enrolled: dict[uuid.UUID, datetime],
) -> dict[str, Any]:
    """Pushes per participant-day by kind, against the limits: interventions against
    max_prompts_per_day (or the participant's SMART track's cap that day), all pushes
    against max_pushes_per_day (against max_prompts_per_day when there is no budget)."""
    limits = protocol.policy.availability
    per_day: dict[tuple[uuid.UUID, str], Counter[str]] = defaultdict(Counter)
    by_study_day: dict[int, Counter[str]] = defaultdict(Counter)
    for participant_id, kind, sent_at in pushes:
        zone = zones[participant_id]
        day = sent_at.astimezone(zone).date()
        per_day[(participant_id, day.isoformat())][kind] += 1
        if participant_id in enrolled:
            by_study_day[(day - enrolled[participant_id].astimezone(zone).date()).days][kind] += 1
    participants = len(zones) or 1
    tracks = {
        (d.participant_id, d.decided_at.astimezone(zones[d.participant_id]).date().isoformat()): (
            d.track
        )
        for d in sorted(decisions, key=lambda d: d.decided_at)
    }

    def cap_on(key: tuple[uuid.UUID, str]) -> int | None:
        smart = protocol.smart
        track = smart.tracks.get(tracks.get(key) or "") if smart else None
        if track is not None and track.max_prompts_per_day is not None:
            return track.max_prompts_per_day
        return limits.max_prompts_per_day

    def stats(values: list[int]) -> dict[str, float]:
        return {
            "mean": round(sum(values) / len(values), 3) if values else 0.0,
            "max": max(values, default=0),
        }

    days = list(per_day.values())
    by_kind = {kind: stats([d[kind] for d in days]) for kind in PUSH_KINDS}
    # The burden kinds only: a safety response to a crisis answer is not burden.
    totals = [sum(d[k] for k in PUSH_KINDS) for d in days]
    budget = limits.max_pushes_per_day or limits.max_prompts_per_day
    over_cap = 0
    for key, counts in per_day.items():
        cap = cap_on(key)
        over_cap += cap is not None and counts["intervention"] > cap
    return {
        "participant_days": len(days),
        "pushes": {kind: sum(d[kind] for d in days) for kind in PUSH_KINDS},
        "pushes_per_participant_day": {**by_kind, "total": stats(totals)},
        # Mean pushes per participant on each study day, by kind.
        "by_study_day": [
            {"study_day": d, **{k: round(by_study_day[d][k] / participants, 3) for k in PUSH_KINDS}}
            for d in sorted(by_study_day)
        ],
        "max_prompts_per_day": limits.max_prompts_per_day,
        "max_pushes_per_day": limits.max_pushes_per_day,
        "participant_days_over_cap": {
            "interventions": over_cap,
            "all_pushes": sum(t > budget for t in totals) if budget else 0,
        },
    }


def _shadowed(protocol: Protocol, never: Sequence[Rule], rows: Sequence[Any]) -> dict[str, Any]:
    """For each rule that never fired: at how many decisions its condition held, and which
    earlier rule fired there instead (re-evaluated on each decision's logged values)."""
    types = {v.name: v.type for v in protocol.tailoring_variables}
    result: dict[str, Any] = {}
    for rule in never:
        program = compile_condition(rule.when)
        by: Counter[str] = Counter()
        for row in rows:
            moment = Moment(
                decision_point=row.decision_point_id,
                local=datetime.fromisoformat(row.local_time),
                attributes=row.attributes or {},
                stage=row.stage or "",
                track=row.track or "",
                phase=row.phase or "",
                pai_recommendation=row.pai_recommendation or "",
            )
            values = {
                name: convert(value, types[name])
                for name, value in (row.tailoring or {}).items()
                if value is not None and name in types
            }
            try:
                held = evaluate_condition(program, {**builtins(moment), **values})
            except Exception:  # noqa: S112 - a condition that cannot run here did not hold
                continue
            if held:
                by[row.rule_id] += 1
        result[rule.id] = {
            "condition_held": sum(by.values()),
            "shadowed_by": dict(by.most_common()),
        }
    return result


def _availability(decisions: Sequence[Any]) -> dict[str, Any]:
    by_point: dict[str, Counter[str]] = defaultdict(Counter)
    by_day: dict[int, Counter[str]] = defaultdict(Counter)
    reasons: Counter[str] = Counter()
    day_reasons: dict[int, Counter[str]] = defaultdict(Counter)
    for d in decisions:
        state = "available" if d.available else "unavailable"
        by_point[d.decision_point_id][state] += 1
        if d.study_day is not None:
            by_day[d.study_day][state] += 1
        if not d.available:
            reasons[_reason(d.unavailable_reason)] += 1
            if d.study_day is not None:
                day_reasons[d.study_day][_reason(d.unavailable_reason)] += 1

    def rate(counts: Counter[str]) -> dict[str, Any]:
        total = counts["available"] + counts["unavailable"]
        return {"decisions": total, "rate": round(counts["available"] / total, 4) if total else 0}

    return {
        "by_decision_point": {k: rate(v) for k, v in sorted(by_point.items())},
        "by_study_day": [
            {"study_day": k, **rate(v), "unavailable_reasons": dict(sorted(day_reasons[k].items()))}
            for k, v in sorted(by_day.items())
        ],
        "unavailable_reasons": dict(reasons.most_common()),
    }


def _reason(text: str | None) -> str:
    """A reason without its numbers, so that e.g. every 'daily cap reached' counts as one."""
    return re.sub(r"\d+(\.\d+)?", "N", text or "unknown")


def _deliveries(decisions: Sequence[Any]) -> dict[str, Any]:
    options: Counter[str] = Counter()
    probabilities: dict[str, list[float]] = defaultdict(list)
    randomized = 0
    for d in decisions:
        if d.option_id is None:
            continue
        options[d.option_id] += 1
        if d.randomized:
            randomized += 1
            if d.probability is not None:
                probabilities[d.option_id].append(d.probability)
    return {
        "options": dict(sorted(options.items())),
        "randomized_decisions": randomized,
        "mean_probability": {
            k: round(sum(v) / len(v), 4) for k, v in sorted(probabilities.items())
        },
    }


def write_decisions_csv(sim: Simulation, path: Path) -> None:
    """The decisions export of the simulated study, ids renumbered from the seed so that
    the same seed writes the same file (the database's ids carry the wall clock)."""
    with sim.session_factory() as session:
        study = session.get_one(Study, sim.study_id)
        clock = SimulatedClock(sim.end)
        prepared = prepare_export(
            session,
            clock,
            CLI_ACTOR,
            study,
            "decisions",
            ExportFormat.csv,
            Filters(),
            audit=False,
        )
        data = b"".join(stream_export(session, study, prepared))
    names: dict[bytes, bytes] = {}

    def rename(match: re.Match[bytes]) -> bytes:
        found = match.group(0)
        if found not in names:
            names[found] = str(
                uuid.uuid5(uuid.NAMESPACE_URL, f"kairos-sim:{sim.seed}:{len(names)}")
            ).encode()
        return names[found]

    path.write_bytes(_UUID.sub(rename, data))


def write_outputs(sim: Simulation, out: Path, *, seconds: float | None = None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    report = build_report(sim, seconds=seconds)
    write_report(report, out)
    write_decisions_csv(sim, out / "decisions.csv")
    return report


def write_report(report: dict[str, Any], out: Path) -> None:
    """report.json and report.html (again, when a section such as ``power`` was added)."""
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    (out / "report.html").write_text(render_html(report))


def render_html(report: dict[str, Any]) -> str:
    """A self-contained page (no scripts, no external files): charts, then the figures."""
    sim = report["simulation"]
    burden = report["burden"]
    availability = report["availability"]
    deliveries = report["deliveries"]
    days = burden["by_study_day"]
    reasons = list(availability["unavailable_reasons"])[:7]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Kairos simulation</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:62em}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;"
        "padding:.2em .6em;text-align:left}.warn{color:#b00}svg{display:block;margin:.5em 0}"
        "</style></head><body>",
        f"<h1>Simulation: {sim['participants']} participants, {sim['days']} days, "
        f"seed {sim['seed']}</h1>",
        "<h2>Pushes per participant per day, by kind, against the limits</h2>",
        charts.stacked_columns(
            [(str(d["study_day"]), d) for d in days],
            list(PUSH_KINDS),
            y_label="mean pushes per participant (by study day)",
            lines={
                "intervention cap": burden["max_prompts_per_day"],
                "push budget": burden["max_pushes_per_day"],
            },
        ),
        _table(
            ["kind", "mean per participant-day", "max"],
            [[k, v["mean"], v["max"]] for k, v in burden["pushes_per_participant_day"].items()],
        ),
        f"<p>Cap on interventions (max_prompts_per_day, or the SMART track's): "
        f"{burden['max_prompts_per_day']}; budget of all pushes (max_pushes_per_day): "
        f"{burden['max_pushes_per_day']}. Participant-days over them: interventions "
        f"{burden['participant_days_over_cap']['interventions']}, all pushes "
        f"{burden['participant_days_over_cap']['all_pushes']}.</p>",
        "<h2>Availability and its reasons, by study day</h2>",
        charts.stacked_columns(
            [
                (
                    str(d["study_day"]),
                    {
                        "available": d["rate"],
                        **{
                            r: n / d["decisions"]
                            for r, n in d["unavailable_reasons"].items()
                            if r in reasons and d["decisions"]
                        },
                    },
                )
                for d in availability["by_study_day"]
            ],
            ["available", *reasons],
            y_label="share of decisions",
            y_max=1.0,
        ),
        _table(
            ["reason unavailable", "decisions"], list(availability["unavailable_reasons"].items())
        ),
        "<h2>Rules: how often each fired</h2>",
        charts.bars(report["rules"]["fired"]),
    ]
    for rule, seen in report["rules"]["shadowed"].items():
        earlier = ", ".join(f"{r} ({n})" for r, n in seen["shadowed_by"].items())
        reason = (
            f"its condition held at {seen['condition_held']} decisions, where {earlier} fired first"
            if seen["condition_held"]
            else "its condition never held"
        )
        parts.append(f"<p class='warn'>Never fired: {html.escape(rule)}: {html.escape(reason)}</p>")
    parts += [
        "<h2>Delivered options</h2>",
        charts.bars(deliveries["options"]),
        f"<p>{deliveries['randomized_decisions']} decisions were micro-randomized; the mean "
        "probability of each option where it was:</p>",
        charts.bars(deliveries["mean_probability"], number="{:.2f}"),
        "<h2>SMART stage/track</h2>",
        charts.bars(report["smart"]),
        "<h2>Flags and alerts raised</h2>",
        charts.bars(
            {
                **{f"flag: {k}": v for k, v in report["flags"].items()},
                **{f"alert: {k}": v for k, v in report["alerts"].items()},
            }
        ),
        "<h2>EMA</h2>",
        _table(["", "count"], list(report["ema"].items())),
    ]
    rejected = report.get("rejected_uploads") or {}
    if rejected:
        parts += [
            "<h2 class='warn'>Uploads the service rejected</h2>",
            _table(
                ["kind", "reason", "items"],
                [[k, r, n] for k, found in rejected.items() for r, n in found.items()],
            ),
        ]
    if "learning" in report:
        parts.append(render_learning_html(report["learning"], _table))
    if "power" in report:
        parts.append(render_power_html(report["power"]))
    parts.append("</body></html>")
    return "\n".join(parts)


def render_power_html(power: dict[str, Any]) -> str:
    """The power section (``kairos simulate --power``): the formula of Liao et al. (2016)
    beside the share of significant tests in repeated simulations."""
    inputs, at, needed = power["inputs"], power["at_simulated_n"], power["needed"]

    def simulated(section: dict[str, Any] | None) -> str:
        if section is None:
            return "not simulated"
        return f"{section['power']:.2f} ± {section['mc_se']:.2f} ({section['analysed']} runs)"

    rows = [
        [
            f"{at['participants']} (simulated)",
            f"{at['formula']:.2f}",
            simulated(at["simulation"]),
        ]
    ]
    if needed["participants"] is not None:
        rows.append(
            [
                f"{needed['participants']} (for {power['target_power']:.0%}, formula)",
                f"{needed['formula']:.2f}",
                simulated(needed.get("simulation")),
            ]
        )
    parts = [
        f"<h2>Power: {html.escape(power['outcome'])}</h2>",
        f"<p>{html.escape(power['test'])}, alpha {power['alpha']}. Formula inputs from "
        f"{inputs['from_replicates']} simulated trials: standardized effect "
        f"{inputs['standardized_effect']} (estimate {inputs['estimate']} over residual SD "
        f"{inputs['residual_sd']}), mean availability {inputs['mean_availability']:.0%} of "
        f"{inputs['decision_points_per_day']} decision point(s) a day over {inputs['days']} "
        f"days, mean randomization probability {inputs['mean_probability']}.</p>",
        _table(["participants", "power (formula)", "power (simulation)"], rows),
    ]
    if needed["participants"] is None:
        parts.append(f"<p class='warn'>{html.escape(needed['reason'])}</p>")
    return "\n".join(parts)


def _table(header: list[str], rows: list[Any]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
