"""A study's care routes: who receives which alerts, configured by coordinators.

The routes are replaced as a whole (one PUT), audited with what they were and what they
became. A study whose protocol declares escalation items must have at least one route, or
an explicit, audited poll-only declaration, before it is active: a crisis answer that
nobody is sent is the failure this guards against.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.alerts.models import CareRoute, CareTeamSettings, RouteChannel
from app.audit.service import Actor, record
from app.core.clock import Clock
from app.core.errors import ConflictError, InvalidInputError
from app.protocols.document import Protocol
from app.studies.models import Study


@dataclass(frozen=True)
class RouteSpec:
    level: int
    label: str
    channel: RouteChannel
    address: str | None
    severities: tuple[str, ...]


@dataclass(frozen=True)
class CareTeam:
    routes: Sequence[CareRoute]
    poll_only: bool
    poll_only_reason: str | None


def care_team(session: Session, study: Study) -> CareTeam:
    routes = session.scalars(
        sa.select(CareRoute)
        .where(CareRoute.study_id == study.id)
        .order_by(CareRoute.level, CareRoute.created_at, CareRoute.id)
    ).all()
    settings = session.get(CareTeamSettings, study.id)
    return CareTeam(
        routes,
        poll_only=bool(settings and settings.poll_only),
        poll_only_reason=settings.poll_only_reason if settings else None,
    )


def replace_care_team(
    session: Session,
    clock: Clock,
    actor: Actor,
    study: Study,
    routes: Sequence[RouteSpec],
    *,
    poll_only: bool,
    poll_only_reason: str | None,
    configured_channels: frozenset[str],
) -> CareTeam:
    """Replace the study's routes (and its poll-only declaration); audited."""
    for index, spec in enumerate(routes):
        if spec.channel not in configured_channels:
            setting = (
                "KAIROS_SMTP_HOST"
                if spec.channel == RouteChannel.email
                else ("KAIROS_ALERT_WEBHOOK_URL")
            )
            raise InvalidInputError(
                f"routes.{index}.channel: {spec.channel} is not configured on this "
                f"deployment ({setting} is not set)",
                field=f"routes.{index}.channel",
                code="channel_not_configured",
            )
    if poll_only and routes:
        raise InvalidInputError(
            "poll_only: a study with routes is not poll-only; send no routes to declare it",
            field="poll_only",
            code="poll_only_with_routes",
        )
    if poll_only and not (poll_only_reason or "").strip():
        raise InvalidInputError(
            "poll_only_reason: say why nobody is sent this study's alerts (e.g. who polls "
            "them and how often)",
            field="poll_only_reason",
            code="poll_only_reason_required",
        )
    before = care_team(session, study)
    now = clock.now()
    session.execute(sa.delete(CareRoute).where(CareRoute.study_id == study.id))
    session.add_all(
        CareRoute(
            study_id=study.id,
            level=spec.level,
            label=spec.label,
            channel=spec.channel.value,
            address=spec.address,
            severities=list(spec.severities),
            created_at=now,
            created_by=actor.label,
        )
        for spec in routes
    )
    settings = session.get(CareTeamSettings, study.id)
    if settings is None:
        settings = CareTeamSettings(study_id=study.id)
        session.add(settings)
    settings.poll_only = poll_only
    settings.poll_only_reason = poll_only_reason if poll_only else None
    settings.updated_at = now
    settings.updated_by = actor.label
    session.flush()
    record(
        session,
        clock,
        actor,
        "care_team.replace",
        resource_type="study",
        resource_id=study.id,
        study_id=study.id,
        detail={
            "routes_before": [_describe(r) for r in before.routes],
            "routes": [_describe(r) for r in care_team(session, study).routes],
            "poll_only": poll_only,
            "poll_only_reason": settings.poll_only_reason,
        },
    )
    return care_team(session, study)


def declare_poll_only(
    session: Session, clock: Clock, actor: Actor, study: Study, reason: str
) -> CareTeam:
    """Declare (audited) that nobody is sent the study's alerts; they are only polled."""
    return replace_care_team(
        session,
        clock,
        actor,
        study,
        [],
        poll_only=True,
        poll_only_reason=reason,
        configured_channels=frozenset(),
    )


def _describe(route: CareRoute) -> dict[str, object]:
    return {
        "level": route.level,
        "label": route.label,
        "channel": route.channel,
        "address": route.address,
        "severities": route.severities,
    }


def escalation_items(protocol: Protocol) -> list[str]:
    """The protocol's items that declare an escalation, as "<questionnaire>.<item>"."""
    return [
        f"{q.id}.{item.id}"
        for q in protocol.questionnaires
        for item in q.items
        if item.escalation is not None
    ]


def ensure_routed(session: Session, study: Study, protocol: Protocol | None) -> None:
    """Refuse (409) to run ``study`` on ``protocol`` when its escalation items would reach
    nobody: no route and no poll-only declaration."""
    items = escalation_items(protocol) if protocol is not None else []
    if not items:
        return
    team = care_team(session, study)
    if team.routes or team.poll_only:
        return
    raise ConflictError(
        f"study {study.slug} cannot be active: its protocol has escalation items "
        f"({', '.join(items)}) and no care route receives their alerts; configure routes "
        f"with PUT /v1/studies/{study.id}/care-team, or declare poll-only there",
        field="status",
        code="care_routes_required",
    )


__all__ = [
    "CareTeam",
    "RouteSpec",
    "care_team",
    "declare_poll_only",
    "ensure_routed",
    "escalation_items",
    "replace_care_team",
]
