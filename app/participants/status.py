"""Which participant status changes are allowed, and why."""

from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.core.clock import Clock
from app.participants.models import Participant, ParticipantStatusChange
from app.participants.models import ParticipantStatus as S

# invited -> active happens only through enrollment (the app exchanging its code).
ALLOWED_TRANSITIONS: dict[S, frozenset[S]] = {
    S.invited: frozenset({S.withdrawn}),
    S.active: frozenset({S.paused, S.withdrawn, S.completed}),
    S.paused: frozenset({S.active, S.withdrawn, S.completed}),
    # Terminal: the data collected stays, the participant is no longer followed.
    S.withdrawn: frozenset(),
    S.completed: frozenset(),
}

# Statuses in which the phone app may no longer use the API at all.
LOCKED_OUT = frozenset({S.withdrawn})
# Statuses in which a (new) enrollment code may be issued and used.
ENROLLABLE = frozenset({S.invited, S.active, S.paused})


def transition_problem(current: S, target: S) -> str | None:
    """None when ``current -> target`` is allowed, otherwise the reason it is not."""
    if current == target:
        return f"the participant is already {current}"
    if target in ALLOWED_TRANSITIONS[current]:
        return None
    if current == S.invited and target in (S.active, S.paused, S.completed):
        return (
            "an invited participant becomes active by enrolling with the app, "
            "not by a status change"
        )
    allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[current])) or "none (final status)"
    return f"a {current} participant cannot become {target}; allowed: {allowed}"


def set_status(
    session: Session,
    clock: Clock,
    actor: Actor,
    participant: Participant,
    target: S,
    reason: str | None,
) -> None:
    now = clock.now()
    session.add(
        ParticipantStatusChange(
            participant_id=participant.id,
            from_status=participant.status,
            to_status=target,
            reason=reason,
            changed_by=actor.label,
            changed_at=now,
        )
    )
    participant.status = target
    participant.status_reason = reason
    participant.status_changed_at = now
    participant.updated_at = now
