"""The phone app's data: EMA responses, wearable summaries and engagement events.

Writes are batches judged item by item (see docs/ingestion.md); reads are the app's
history view. The business rules live in app/ema, app/sensing and app/engagement.
"""

import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from app.alerts.sends import CareSendConfig, deliver_sends, pending_sends
from app.alerts.webhook import WebhookConfig, deliver_due
from app.api.auth import Me, ParticipantCaller
from app.api.deps import DEFAULT_LIMIT, ClockDep, LimitQuery, SessionDep, SettingsDep
from app.api.problems import problem_responses
from app.api.schemas.batches import BatchResult, Rejection, batch_result
from app.api.schemas.common import Instant, Text
from app.api.schemas.ingest import (
    EmaBatchIn,
    EngagementBatchIn,
    OmhBodyIn,
    OmhDataPointIn,
    WearableBatchIn,
    WearableSummaryIn,
)
from app.api.schemas.participant_data import (
    EmaResponseOut,
    EmaResponsePage,
    EngagementEventOut,
    EngagementEventPage,
    WearableSummaryOut,
    WearableSummaryPage,
)
from app.core.batches import ItemResult, rejected
from app.core.clock import Clock
from app.core.config import Settings
from app.core.errors import TooLargeError
from app.core.pagination import PeriodPage
from app.ema.history import ResponseWithAnswers, list_responses
from app.ema.ingest import EmaSubmission, submit_responses
from app.engagement.history import list_events
from app.engagement.ingest import EventInput, record_events
from app.engagement.models import EngagementEvent, EngagementKind
from app.protocols.tailoring import WearableMetric
from app.sensing.history import list_summaries
from app.sensing.ingest import SummaryInput, submit_summaries
from app.sensing.models import WearableSummary
from app.sensing.omh import summary_from_omh

router = APIRouter(prefix="/v1/me", tags=["app data"], responses=problem_responses(401, 403, 422))

_BATCH_RULES = """
Each item is judged on its own: the response lists, per index, `accepted`, `duplicate`
(already stored: nothing changed) or `rejected` with the fields at fault. The status is
200 even when items were rejected; only a malformed envelope (not `{"items": [...]}`) is a
422. Sending the same batch again changes nothing. More than `KAIROS_MAX_BATCH_ITEMS`
items (5000 by default) or a body over `KAIROS_MAX_REQUEST_BYTES` is a 413 whose `limit`
says the limit. Times later than now (plus the allowed clock difference) or before
enrollment are rejected. Accepted means committed. Role: the participant's app.
"""

CursorQuery = Annotated[uuid.UUID | None, Query(description="`next_cursor` of the previous page.")]
SinceQuery = Annotated[
    Instant | None,
    Query(description="Only data at or after this time (RFC 3339, with its offset)."),
]
UntilQuery = Annotated[
    Instant | None,
    Query(description="Only data before this time (RFC 3339, with its offset)."),
]


def period_page(
    limit: LimitQuery = DEFAULT_LIMIT,
    cursor: CursorQuery = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
) -> PeriodPage:
    return PeriodPage(after=cursor, limit=limit, since=since, until=until)


# The paging and period query parameters every history endpoint takes.
PageQuery = Annotated[PeriodPage, Depends(period_page)]


def check_size(settings: Settings, count: int) -> None:
    if count > settings.max_batch_items:
        raise TooLargeError(
            f"the batch has {count} items; at most {settings.max_batch_items} are accepted "
            "at once: send the rest in further batches",
            code="batch_too_large",
            limit=settings.max_batch_items,
        )


Item = TypeVar("Item")
Input = TypeVar("Input")


def _store_batch(
    items: Sequence[Item],
    build: Callable[[int, Item], Input | ItemResult],
    store: Callable[..., list[ItemResult]],
    caller: ParticipantCaller,
    session: Session,
    clock: Clock,
    settings: Settings,
) -> BatchResult:
    """Judge a batch's items (schema, then domain), store the accepted ones and commit."""
    check_size(settings, len(items))
    schema_rejections, inputs = _split(items, build)
    skew = timedelta(minutes=settings.clock_skew_minutes)
    results = store(session, clock, caller.participant, inputs, skew=skew)
    session.commit()
    return batch_result(_merge(schema_rejections, results, len(items)))


def _split(
    items: Sequence[Item], build: Callable[[int, Item], Input | ItemResult]
) -> tuple[dict[int, ItemResult], list[Input]]:
    """The items the schema rejected (by index), and the domain inputs built from the rest."""
    rejections: dict[int, ItemResult] = {}
    inputs: list[Input] = []
    for index, item in enumerate(items):
        built = build(index, item)
        if isinstance(built, ItemResult):
            rejections[index] = built
        else:
            inputs.append(built)
    return rejections, inputs


def _domain_input(kind: Callable[..., Input]) -> Callable[[int, Any], Input | ItemResult]:
    """A builder for batch items whose schema fields are exactly the domain input's fields
    besides its ``index`` (tests/test_batch_inputs.py holds the two equal)."""

    def build(index: int, item: Any) -> Input | ItemResult:
        if isinstance(item, Rejection):
            return rejected(index, item.client_id, item.problems)
        return kind(index=index, **dict(item))

    return build


def _merge(
    schema_rejections: dict[int, ItemResult], domain_results: list[ItemResult], total: int
) -> list[ItemResult]:
    by_index = {**schema_rejections, **{r.index: r for r in domain_results}}
    return [by_index[i] for i in range(total)]


@router.post(
    "/ema-responses",
    response_model=BatchResult,
    response_model_exclude_unset=True,
    summary="Send EMA responses (a batch)",
    description="Stores the participant's answers to EMA questionnaires, checked against "
    "the questionnaire in their protocol version: unknown items, missing required items and "
    "answers off the item's scale, choices or length are rejected with the item's field. "
    "An answer to an expired prompt is kept and marked `late`; answering a prompt stops its "
    "reminders. Answers that match an escalation of the protocol raise an alert for the "
    "care team at once (sent to the study's care routes and the alert webhook, after the "
    "response); when the escalation declares a safety response, the item's result carries "
    "it (`safety_response`) for the app to show now." + _BATCH_RULES,
    responses=problem_responses(413),
)
def post_ema_responses(
    body: EmaBatchIn,
    background: BackgroundTasks,
    request: Request,
    caller: Me,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> Response:
    check_size(settings, len(body.items))
    schema_rejections, submissions = _split(body.items, _domain_input(EmaSubmission))
    webhook = WebhookConfig.from_settings(settings)
    outcome = submit_responses(
        session,
        clock,
        caller.participant,
        submissions,
        skew=timedelta(minutes=settings.clock_skew_minutes),
        webhook_configured=webhook is not None,
    )
    session.commit()
    if webhook is not None and outcome.alerts:
        # After the response is sent; the worker retries whatever this does not deliver.
        background.add_task(
            deliver_due,
            request.app.state.session_factory,
            clock,
            webhook,
            alert_ids=[a.id for a in outcome.alerts],
        )
    if send_ids := pending_sends(session, outcome.alerts):
        # Crisis alerts reach the care routes within seconds, not at the next tick.
        background.add_task(
            deliver_sends,
            request.app.state.session_factory,
            clock,
            CareSendConfig.from_settings(settings),
            send_ids=send_ids,
        )
    return _serialized(batch_result(_merge(schema_rejections, outcome.results, len(body.items))))


def _serialized(result: BatchResult) -> Response:
    """The body FastAPI would send for ``response_model=BatchResult`` with
    ``response_model_exclude_unset``, without validating our own result again in a
    further thread-pool hop (a sync route's response is checked in the pool)."""
    return Response(result.model_dump_json(exclude_unset=True), media_type="application/json")


@router.post(
    "/wearables",
    response_model=BatchResult,
    response_model_exclude_unset=True,
    summary="Send wearable summaries (a batch)",
    description="Stores summaries (steps, active minutes, sleep minutes and efficiency, "
    "resting heart rate) over a period: `start` plus `duration_minutes`, a `value` and its "
    "`unit`, which is checked and normalized. A summary for the same metric and period "
    "replaces the stored one (`replaced`); the same value again is a `duplicate`. Items may "
    "also be Open mHealth / IEEE 1752.1 data points (step-count, sleep-duration, "
    "heart-rate at rest), with or without their header." + _BATCH_RULES,
    responses=problem_responses(413),
)
def post_wearables(
    body: WearableBatchIn, caller: Me, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> BatchResult:
    return _store_batch(
        body.items, _summary_input, submit_summaries, caller, session, clock, settings
    )


def _summary_input(
    index: int, item: WearableSummaryIn | OmhDataPointIn | OmhBodyIn | Rejection
) -> SummaryInput | ItemResult:
    if isinstance(item, Rejection):
        return rejected(index, item.client_id, item.problems)
    if isinstance(item, WearableSummaryIn):
        return SummaryInput(
            index=index,
            client_id=item.client_id,
            metric=item.metric,
            unit=item.unit,
            start_at=item.start,
            end_at=item.end(),
            value=item.value,
            source_format="kairos",
        )
    if isinstance(item, OmhDataPointIn):
        header = item.header
        found = summary_from_omh(index, header.id, header.schema_id.name, item.body, "body.")
        client_id: str | None = header.id
    else:
        found = summary_from_omh(index, None, None, item.model_extra or {}, "")
        client_id = None
    return found if isinstance(found, SummaryInput) else rejected(index, client_id, found)


@router.post(
    "/events",
    response_model=BatchResult,
    response_model_exclude_unset=True,
    summary="Send engagement events (a batch)",
    description="Records what the participant did: prompt_received, prompt_opened, "
    "prompt_dismissed (with the `notification_id` or `prompt_id`), exercise_started, "
    "exercise_completed (with `exercise_id`, and `duration_seconds` when completed), "
    "helpfulness_rated (a `rating` 0-10 of the exercise or notification). Referenced "
    "notifications and prompts must be the participant's own." + _BATCH_RULES,
    responses=problem_responses(413),
)
def post_events(
    body: EngagementBatchIn,
    caller: Me,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> BatchResult:
    return _store_batch(
        body.items, _domain_input(EventInput), record_events, caller, session, clock, settings
    )


def response_out(found: ResponseWithAnswers) -> EmaResponseOut:
    r = found.response
    return EmaResponseOut(
        id=r.id,
        client_id=r.client_id,
        prompt_id=r.prompt_id,
        questionnaire_id=r.questionnaire_id,
        questionnaire_version=r.questionnaire_version,
        protocol_version=r.protocol_version,
        answered_at=r.answered_at,
        utc_offset_minutes=r.utc_offset_minutes,
        received_at=r.received_at,
        late=r.late,
        answers=found.answers,
    )


def summary_out(s: WearableSummary) -> WearableSummaryOut:
    return WearableSummaryOut(
        id=s.id,
        client_id=s.client_id,
        metric=s.metric,
        unit=s.unit,
        start=s.start_at,
        end=s.end_at,
        value=s.value,
        source_format=s.source_format,
        received_at=s.received_at,
        updated_at=s.updated_at,
    )


def event_out(e: EngagementEvent) -> EngagementEventOut:
    return EngagementEventOut.model_validate(e)


@router.get(
    "/ema-responses",
    response_model=EmaResponsePage,
    summary="The participant's own EMA responses",
    description="For the app's history view: the participant's responses with their "
    "answers, in the order they were received, a page at a time. Role: the participant's app.",
)
def get_ema_responses(
    caller: Me,
    session: SessionDep,
    page: PageQuery,
    questionnaire_id: Annotated[
        Text | None, Query(max_length=64, description="Only this questionnaire.")
    ] = None,
) -> EmaResponsePage:
    items, next_cursor = list_responses(
        session, caller.participant, page, questionnaire_id=questionnaire_id
    )
    return EmaResponsePage(items=[response_out(r) for r in items], next_cursor=next_cursor)


@router.get(
    "/wearables",
    response_model=WearableSummaryPage,
    summary="The participant's own wearable summaries",
    description="For the app's history view: summaries in normalized units, in the order "
    "they were first received; `since`/`until` bound the end of the period. Role: the "
    "participant's app.",
)
def get_wearables(
    caller: Me,
    session: SessionDep,
    page: PageQuery,
    metric: Annotated[WearableMetric | None, Query(description="Only this metric.")] = None,
) -> WearableSummaryPage:
    items, next_cursor = list_summaries(session, caller.participant, page, metric=metric)
    return WearableSummaryPage(items=[summary_out(s) for s in items], next_cursor=next_cursor)


@router.get(
    "/events",
    response_model=EngagementEventPage,
    summary="The participant's own engagement events",
    description="For the app's history view (exercises done, ratings given), in the order "
    "they were received; `since`/`until` bound when they occurred. Role: the participant's "
    "app.",
)
def get_events(
    caller: Me,
    session: SessionDep,
    page: PageQuery,
    kind: Annotated[EngagementKind | None, Query(description="Only this kind.")] = None,
) -> EngagementEventPage:
    items, next_cursor = list_events(session, caller.participant, page, kind=kind)
    return EngagementEventPage(items=[event_out(e) for e in items], next_cursor=next_cursor)
