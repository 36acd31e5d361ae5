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
from app.simulation.runner import Simulation
from app.studies.models import Study

PUSH_KINDS = ("ema_prompt", "reminder", "intervention")
_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def build_report(sim: Simulation, *, seconds: float | None = None) -> dict[str, Any]:
    protocol = sim.protocol
    with sim.session_factory() as session:
        zones = {
            pid: ZoneInfo(tz)
            for pid, tz in session.execute(sa.select(Participant.id, Participant.timezone))
        }
        pushes = session.execute(
            sa.select(Notification.participant_id, Notification.kind, Notification.sent_at).where(
                Notification.status == NotificationStatus.sent
            )
        ).all()
        decisions = session.execute(
            sa.select(
                Decision.decision_point_id,
                Decision.study_day,
                Decision.available,
                Decision.unavailable_reason,
                Decision.rule_id,
                Decision.option_id,
                Decision.randomized,
                Decision.probability,
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
        flags = Counter(k for (k,) in session.execute(sa.select(CareFlag.kind)))
        alerts = Counter(s for (s,) in session.execute(sa.select(Alert.severity)))
        fired_rows = session.execute(
            sa.select(
                Decision.rule_id,
                Decision.decision_point_id,
                Decision.local_time,
                Decision.stage,
                Decision.track,
                Decision.pai_recommendation,
                Decision.tailoring,
                Participant.attributes,
            )
            .join(Participant, Participant.id == Decision.participant_id)
            .where(Decision.rule_id.is_not(None))
        ).all()
    cap = protocol.policy.availability.max_prompts_per_day
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
        "burden": _burden(pushes, zones, cap),
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
    }


def _burden(
    pushes: Iterable[Any], zones: dict[uuid.UUID, ZoneInfo], cap: int | None
) -> dict[str, Any]:
    per_day: dict[tuple[uuid.UUID, str], Counter[str]] = defaultdict(Counter)
    for participant_id, kind, sent_at in pushes:
        day = sent_at.astimezone(zones[participant_id]).date().isoformat()
        per_day[(participant_id, day)][kind] += 1
    days = list(per_day.values())

    def stats(values: list[int]) -> dict[str, float]:
        return {
            "mean": round(sum(values) / len(values), 3) if values else 0.0,
            "max": max(values, default=0),
        }

    by_kind = {kind: stats([d[kind] for d in days]) for kind in PUSH_KINDS}
    totals = [sum(d.values()) for d in days]
    return {
        "participant_days": len(days),
        "pushes": {kind: sum(d[kind] for d in days) for kind in PUSH_KINDS},
        "pushes_per_participant_day": {**by_kind, "total": stats(totals)},
        "max_prompts_per_day": cap,
        "participant_days_over_cap": {
            "interventions": sum(d["intervention"] > cap for d in days) if cap else 0,
            "all_pushes": sum(t > cap for t in totals) if cap else 0,
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
    for d in decisions:
        state = "available" if d.available else "unavailable"
        by_point[d.decision_point_id][state] += 1
        if d.study_day is not None:
            by_day[d.study_day][state] += 1
        if not d.available:
            reasons[_reason(d.unavailable_reason)] += 1

    def rate(counts: Counter[str]) -> dict[str, Any]:
        total = counts["available"] + counts["unavailable"]
        return {"decisions": total, "rate": round(counts["available"] / total, 4) if total else 0}

    return {
        "by_decision_point": {k: rate(v) for k, v in sorted(by_point.items())},
        "by_study_day": [{"study_day": k, **rate(v)} for k, v in sorted(by_day.items())],
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
    """A self-contained page (no scripts, no external files)."""
    sim = report["simulation"]
    burden = report["burden"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Kairos simulation</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;"
        "padding:.2em .6em;text-align:left}.bar{background:#4a7;height:.8em;display:inline-block}"
        ".warn{color:#b00}</style></head><body>",
        f"<h1>Simulation: {sim['participants']} participants, {sim['days']} days, "
        f"seed {sim['seed']}</h1>",
        "<h2>Pushes per participant-day</h2>",
        _table(
            ["kind", "mean", "max"],
            [[k, v["mean"], v["max"]] for k, v in burden["pushes_per_participant_day"].items()],
        ),
        f"<p>Cap (max_prompts_per_day): {burden['max_prompts_per_day']}; participant-days over "
        f"it: interventions {burden['participant_days_over_cap']['interventions']}, all pushes "
        f"{burden['participant_days_over_cap']['all_pushes']}.</p>",
        "<h2>Availability by study day</h2>",
        _bars({f"day {d['study_day']}": d["rate"] for d in report["availability"]["by_study_day"]}),
        "<h2>Why decisions were unavailable</h2>",
        _table(
            ["reason", "decisions"], list(report["availability"]["unavailable_reasons"].items())
        ),
        "<h2>Rules</h2>",
        _table(["rule", "fired"], list(report["rules"]["fired"].items())),
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
        _table(["option", "deliveries"], list(report["deliveries"]["options"].items())),
        "<h2>SMART stage/track</h2>",
        _table(["stage/track", "assignments"], list(report["smart"].items())),
        "<h2>Flags and alerts</h2>",
        _table(["flag", "raised"], list(report["flags"].items())),
        _table(["alert severity", "raised"], list(report["alerts"].items())),
    ]
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


def _bars(rates: dict[str, float]) -> str:
    rows = [
        [label, f"<span class='bar' style='width:{rate * 20:.1f}em'></span> {rate:.0%}"]
        for label, rate in rates.items()
    ]
    body = "".join(f"<tr><td>{html.escape(label)}</td><td>{bar}</td></tr>" for label, bar in rows)
    return f"<table>{body}</table>"
