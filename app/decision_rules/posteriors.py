"""Stored posteriors of learning policies: reading the current one, and the update the
worker runs on the protocol's cadence.

Transactions: ``update_due_posteriors`` runs each update in its own short transaction; the
unique (study, version, scheduled_for) constraint makes an update happen once even with
several workers (the loser's insert fails and is rolled back). Work is durable without a
queue table: the due time follows from the cadence and the last stored posterior, so an
update missed while no worker ran happens at the next tick (one update covering the gap).

Which rows an update uses: decisions of the study under this protocol version that the
learned rule randomized (``randomized``, ``learning`` set, treat or nothing chosen), decided
after the previous posterior's ``inputs_to`` and early enough that the outcome window has
closed by the due time, with a numeric (or true/false) outcome at update time. Each row is
used once; its outcome is stored with the posterior, so late data (an EMA synced days
later) never changes a stored posterior.
"""

import logging
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, sessionmaker

from app.core.clock import Clock
from app.core.db import session_scope
from app.core.errors import ConflictError, NotFoundError
from app.core.ids import new_id
from app.decision_rules import learning, shrinkage
from app.decision_rules.learning import LearningRow, Posterior
from app.decision_rules.models import Decision, PolicyPosterior
from app.decision_rules.outcomes import proximal_outcomes
from app.protocols.document import Protocol
from app.protocols.learning import ThompsonSampling
from app.protocols.models import ProtocolVersion
from app.protocols.store import VersionKey, protocols_of_versions

logger = logging.getLogger(__name__)


# Parsed posteriors by id: they are immutable, and one with random effects holds every
# participant's sums (megabytes of JSON for a large study), so each batch of decisions
# must not parse it again.
_PARSED: dict[tuple[uuid.UUID, bool], Posterior] = {}
_PARSED_LIMIT = 32


def as_posterior(row: PolicyPosterior, config: ThompsonSampling | None = None) -> Posterior:
    """The posterior as the policy uses it; with the protocol's random effects (``config``)
    where the row has per-participant sums."""
    effects = config.random_effects if config is not None else None
    key = (row.id, effects is not None and row.participants is not None)
    found = _PARSED.get(key)
    if found is not None:
        return found
    deviation = None
    if key[1] and effects is not None:
        assert config is not None  # noqa: S101
        deviation = shrinkage.deviation_covariance(effects, len(config.treat_options))
    posterior = Posterior(
        id=str(row.id),
        mean=np.array(row.mean, dtype=np.float64),
        covariance=np.array(row.covariance, dtype=np.float64),
        rows_total=row.rows_total,
        deviation=deviation,
        noise_variance=row.noise_variance,
        participants=_sums_of(row.participants) if deviation is not None else {},
    )
    if len(_PARSED) >= _PARSED_LIMIT:
        _PARSED.clear()
    _PARSED[key] = posterior
    return posterior


def _sums_of(stored: Mapping[str, Any] | None) -> dict[str, shrinkage.Sums]:
    return {
        pid: shrinkage.Sums(
            np.array(s["ztz"], dtype=np.float64), np.array(s["zty"], dtype=np.float64), s["rows"]
        )
        for pid, s in (stored or {}).items()
    }


def _stored_sums(sums: Mapping[str, shrinkage.Sums]) -> dict[str, Any]:
    return {
        pid: {
            "ztz": [[float(v) for v in line] for line in s.ztz],
            "zty": [float(v) for v in s.zty],
            "rows": s.rows,
        }
        for pid, s in sorted(sums.items())
    }


def latest_rows(session: Session, keys: Iterable[VersionKey]) -> dict[VersionKey, PolicyPosterior]:
    """The latest stored posterior of each (study, version) that has one (one query)."""
    wanted = set(keys)
    if not wanted:
        return {}
    p = PolicyPosterior
    latest = (
        sa.select(p.study_id, p.protocol_version, sa.func.max(p.scheduled_for).label("at"))
        .where(p.study_id.in_({s for s, _ in wanted}))
        .group_by(p.study_id, p.protocol_version)
        .subquery()
    )
    rows = session.scalars(
        sa.select(p)
        # The rows used (a long list) are for researchers, not for deciding.
        .options(defer(p.inputs))
        .join(
            latest,
            sa.and_(
                p.study_id == latest.c.study_id,
                p.protocol_version == latest.c.protocol_version,
                p.scheduled_for == latest.c.at,
            ),
        )
    ).all()
    return {
        (r.study_id, r.protocol_version): r
        for r in rows
        if (r.study_id, r.protocol_version) in wanted
    }


def current_posteriors(
    session: Session, protocols: Mapping[VersionKey, Protocol]
) -> dict[VersionKey, Posterior]:
    """The posterior each learning protocol's decisions use now."""
    keys = [k for k, p in protocols.items() if p.policy.thompson_sampling is not None]
    return {
        k: as_posterior(r, protocols[k].policy.thompson_sampling)
        for k, r in latest_rows(session, keys).items()
    }


def last_due(config: ThompsonSampling, zone: ZoneInfo, now: datetime) -> datetime:
    """The latest due time of the daily update at or before now (UTC)."""
    local = now.astimezone(zone)
    candidate = datetime.combine(local.date(), config.update.at, tzinfo=zone)
    if candidate > local:
        candidate = datetime.combine(
            local.date() - timedelta(days=1), config.update.at, tzinfo=zone
        )
    return candidate.astimezone(now.tzinfo)


@dataclass(frozen=True)
class UsedRow:
    decision_id: uuid.UUID
    decided_at: datetime
    row: LearningRow


@dataclass(frozen=True)
class LoggedDecision:
    """The columns of a decision-log row an update reads (lighter than the ORM row: an
    update may read millions)."""

    id: uuid.UUID
    study_id: uuid.UUID
    participant_id: uuid.UUID
    protocol_version: int | None
    option_id: str | None
    decided_at: datetime
    # The fields ``learning_row`` reads.
    fields: dict[str, Any]


_d = Decision
_LOGGED_COLUMNS = (
    _d.id,
    _d.study_id,
    _d.participant_id,
    _d.protocol_version,
    _d.option_id,
    _d.decided_at,
    _d.rule_id,
    _d.available,
    _d.randomized,
    _d.learning,
    _d.probabilities,
    _d.tailoring,
)


def _logged(row: Sequence[Any]) -> LoggedDecision:
    fields = dict(
        zip(
            ("rule_id", "available", "randomized", "learning", "probabilities", "tailoring"),
            row[6:],
            strict=True,
        )
    )
    fields["option_id"] = row[4]
    id_, study_id, participant_id, version, option_id, decided_at = row[:6]
    return LoggedDecision(id_, study_id, participant_id, version, option_id, decided_at, fields)


def learning_rows(
    config: ThompsonSampling,
    decisions: Sequence[LoggedDecision],
    outcomes: Sequence[Mapping[str, Any]],
) -> list[UsedRow]:
    """The rows an update uses, in (decided_at, id) order."""
    used = []
    for decision, values in sorted(
        zip(decisions, outcomes, strict=True), key=lambda pair: (pair[0].decided_at, pair[0].id)
    ):
        row = learning_row(config, decision.fields, values.get(config.outcome))
        if row is not None:
            used.append(UsedRow(decision.id, decision.decided_at, row))
    return used


def learning_row(
    config: ThompsonSampling, decision: Mapping[str, Any], outcome: Any
) -> LearningRow | None:
    """The row a decision gives the model, or None when it gives none. ``decision`` holds
    the decision-log (or export) fields rule_id, available, randomized, learning,
    option_id, probabilities and tailoring; the recompute procedure uses it too."""
    if decision["rule_id"] != config.rule or not decision["available"]:
        return None
    if not decision["randomized"] or not decision["learning"]:
        return None
    probabilities = decision["probabilities"] or {}
    treats = config.treat_options
    if decision["option_id"] not in probabilities or any(t not in probabilities for t in treats):
        return None
    if isinstance(outcome, bool):
        outcome = 1.0 if outcome else 0.0
    if not isinstance(outcome, int | float) or not math.isfinite(outcome):
        return None
    try:
        # A feature without data (or not a number) leaves the row out of the model.
        learning.feature_vector(config, decision["tailoring"] or {})
    except ValueError:
        return None
    first, *rest = treats
    return LearningRow(
        features=dict(decision["tailoring"] or {}),
        pi=float(probabilities[first]),
        treated=decision["option_id"] == first,
        outcome=float(outcome),
        more=tuple((float(probabilities[t]), decision["option_id"] == t) for t in rest),
    )


def update_posterior(
    session: Session,
    clock: Clock,
    study_id: uuid.UUID,
    version: int,
    protocol: Protocol,
    scheduled_for: datetime,
) -> PolicyPosterior:
    """Write the posterior due at ``scheduled_for``: the previous one (or the prior)
    updated with the rows new since."""
    config = protocol.policy.thompson_sampling
    assert config is not None  # noqa: S101
    previous = latest_rows(session, [(study_id, version)]).get((study_id, version))
    window = next(o for o in protocol.proximal_outcomes if o.name == config.outcome)
    cutoff = scheduled_for - timedelta(minutes=window.window_minutes_after)
    since = previous.inputs_to if previous is not None else None
    query = sa.select(*_LOGGED_COLUMNS).where(
        Decision.study_id == study_id,
        Decision.protocol_version == version,
        Decision.rule_id == config.rule,
        Decision.randomized.is_(True),
        Decision.decided_at <= cutoff,
    )
    if since is not None:
        query = query.where(Decision.decided_at > since)
    if previous is None:
        mean, covariance = learning.prior(config)
    else:
        start = as_posterior(previous, config)
        mean, covariance = start.mean, start.covariance
    size = len(mean)
    ztz, zty = np.zeros((size, size)), np.zeros(size)
    inputs: list[list[Any]] = []
    effects = config.random_effects
    participants = _sums_of(previous.participants if previous is not None else None)
    # A page at a time (a first update, or one catching up after weeks, reads millions of
    # decisions): the sufficient statistics add up, so memory stays bounded.
    for page in _pages(session, query):
        outcomes = proximal_outcomes(session, page, now=clock.now(), names=[config.outcome])
        used = learning_rows(config, page, outcomes)
        if not used:
            continue
        rows = [learning.design_row(config, u.row) for u in used]
        page_ztz, page_zty = learning.sums(rows, [u.row.outcome for u in used])
        ztz += page_ztz
        zty += page_zty
        inputs.extend([str(u.decision_id), u.row.outcome] for u in used)
        if effects is not None:
            _add_participant_sums(participants, page, used, rows, size)
    if effects is not None:
        # Every participant's deviation is integrated out again with the new sums: the
        # pooled posterior is recomputed from the prior, not updated from the last one.
        prior_mean, prior_covariance = learning.prior(config)
        mean, covariance = shrinkage.pooled(
            prior_mean,
            prior_covariance,
            participants.values(),
            shrinkage.deviation_covariance(effects, len(config.treat_options)),
            config.noise_variance,
        )
    elif inputs:
        mean, covariance = learning.update_from_sums(
            mean, covariance, ztz, zty, config.noise_variance
        )
    else:
        mean, covariance = mean.copy(), covariance.copy()
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(covariance))):
        raise ValueError("the updated posterior is not finite; the previous one stays in use")
    row = PolicyPosterior(
        id=new_id(),
        study_id=study_id,
        protocol_version=version,
        previous_id=previous.id if previous is not None else None,
        scheduled_for=scheduled_for,
        computed_at=clock.now(),
        inputs_from=since,
        inputs_to=cutoff,
        rows_used=len(inputs),
        rows_total=(previous.rows_total if previous is not None else 0) + len(inputs),
        noise_variance=config.noise_variance,
        mean=[float(v) for v in mean],
        covariance=[[float(v) for v in line] for line in covariance],
        inputs=inputs,
        participants=_stored_sums(participants) if effects is not None else None,
    )
    session.add(row)
    session.flush()
    return row


UPDATE_PAGE = 20_000


def _add_participant_sums(
    participants: dict[str, shrinkage.Sums],
    page: Sequence[LoggedDecision],
    used: Sequence[UsedRow],
    rows: Sequence[shrinkage.Vector],
    size: int,
) -> None:
    """Adds each used row to its participant's cumulative sums."""
    owner = {d.id: str(d.participant_id) for d in page}
    for u, z in zip(used, rows, strict=True):
        pid = owner[u.decision_id]
        before = participants.get(pid) or shrinkage.Sums(np.zeros((size, size)), np.zeros(size), 0)
        participants[pid] = before.plus(np.outer(z, z), z * u.row.outcome, 1)


def _pages(session: Session, query: sa.Select[Any]) -> Iterator[list[LoggedDecision]]:
    """The decisions of ``query`` in (decided_at, id) order, a page at a time: one query,
    streamed (a server-side cursor on PostgreSQL), so memory stays bounded without an
    index for keyset pages."""
    ordered = query.order_by(Decision.decided_at, Decision.id)
    result = session.execute(ordered.execution_options(yield_per=UPDATE_PAGE))
    for page in result.partitions():
        yield [_logged(row) for row in page]


def learning_versions(session: Session) -> dict[VersionKey, tuple[Protocol, datetime]]:
    """Every protocol version in use (assigned to a participant) with a learning policy,
    and when it was first used."""
    # Runs every tick: the documents come from the store's cache of locked versions, so
    # only the keys are read here.
    v = ProtocolVersion
    locked: dict[VersionKey, datetime] = {
        (study_id, version): locked_at
        for study_id, version, locked_at in session.execute(
            sa.select(v.study_id, v.version, v.locked_at).where(v.locked_at.is_not(None))
        )
        if locked_at is not None
    }
    protocols = protocols_of_versions(session, locked)
    return {
        key: (protocol, locked[key])
        for key, protocol in protocols.items()
        if protocol.policy.thompson_sampling is not None
    }


def update_due_posteriors(factory: sessionmaker[Session], clock: Clock) -> int:
    """Run every update that is due; the number written. One failing study is logged and
    does not hold up the others (its decisions keep using the last posterior)."""
    with session_scope(factory) as session:
        versions = learning_versions(session)
        latest = {k: r.scheduled_for for k, r in latest_rows(session, versions).items()}
    now = clock.now()
    written = 0
    for (study_id, version), (protocol, first_used) in versions.items():
        config = protocol.policy.thompson_sampling
        assert config is not None  # noqa: S101
        due = last_due(config, ZoneInfo(protocol.study.default_timezone), now)
        previous = latest.get((study_id, version))
        if due <= (previous if previous is not None else first_used):
            continue
        try:
            with session_scope(factory) as session:
                update_posterior(session, clock, study_id, version, protocol, due)
            written += 1
        except IntegrityError:
            # Another worker wrote this update first.
            continue
        except Exception:
            logger.exception("posterior update of study %s version %s failed", study_id, version)
    return written


def posterior_history(
    session: Session,
    study_id: uuid.UUID,
    *,
    version: int | None,
    after: uuid.UUID | None,
    limit: int,
) -> tuple[list[PolicyPosterior], uuid.UUID | None]:
    """A study's posteriors, newest first (of one protocol version, or all), a page after
    the posterior ``after``; and the cursor of the next page (None on the last)."""
    p = PolicyPosterior
    query = sa.select(p).where(p.study_id == study_id)
    if version is not None:
        query = query.where(p.protocol_version == version)
    if after is not None:
        cursor = get_posterior(session, study_id, after)
        query = query.where(
            sa.or_(
                p.scheduled_for < cursor.scheduled_for,
                sa.and_(p.scheduled_for == cursor.scheduled_for, p.id < cursor.id),
            )
        )
    rows = list(
        session.scalars(query.order_by(p.scheduled_for.desc(), p.id.desc()).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more else None


def get_posterior(
    session: Session, study_id: uuid.UUID, posterior_id: uuid.UUID
) -> PolicyPosterior:
    row = session.get(PolicyPosterior, posterior_id)
    if row is None or row.study_id != study_id:
        raise NotFoundError(
            f"study {study_id} has no posterior {posterior_id}", code="posterior_not_found"
        )
    return row


def current_posterior(session: Session, study_id: uuid.UUID, version: int) -> PolicyPosterior:
    """The posterior decisions under this version use now; NotFoundError before the first."""
    row = latest_rows(session, [(study_id, version)]).get((study_id, version))
    if row is None:
        raise NotFoundError(
            f"protocol version {version} of study {study_id} has no posterior yet (the "
            "learning policy uses its fallback probability until the first update)",
            code="posterior_not_found",
        )
    return row


@dataclass(frozen=True)
class ParticipantPosterior:
    """A participant's own coefficients under a posterior with random effects."""

    posterior: PolicyPosterior
    mean: list[float]
    covariance: list[list[float]]
    rows: int


def participant_posterior(
    session: Session, participant_id: uuid.UUID, study_id: uuid.UUID, version: int
) -> ParticipantPosterior:
    """The participant's coefficients under the current posterior of the version; 404
    before the first update, 409 when the policy is pooled (no random effects)."""
    row = current_posterior(session, study_id, version)
    config = protocols_of_versions(session, {(study_id, version)})[(study_id, version)]
    learned = config.policy.thompson_sampling
    posterior = as_posterior(row, learned)
    if posterior.deviation is None:
        raise ConflictError(
            f"protocol version {version} pools its posterior over participants (no "
            "random_effects): GET .../posteriors/current is everyone's",
            code="posterior_pooled",
        )
    own = posterior.participants.get(str(participant_id))
    mean, covariance = shrinkage.participant(
        posterior.mean, posterior.covariance, own, posterior.deviation, posterior.noise_variance
    )
    return ParticipantPosterior(
        row,
        [float(v) for v in mean],
        [[float(v) for v in line] for line in covariance],
        own.rows if own is not None else 0,
    )
