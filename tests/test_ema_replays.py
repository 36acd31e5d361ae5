"""Replays judged exactly: a client id stored before a batch is a duplicate, never judged.

Ingestion inserts first and looks up stored client ids only when an insert was skipped or
an item rejected; these tests pin the cases where that second look changes the verdict,
and a generated test holds random sequences of batches to the sequential rules.
"""

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.ema.ingest import EmaSubmission, submit_responses
from app.ema.models import EmaAnswer, EmaResponse
from app.participants.models import Participant
from app.scheduling.models import ScheduledItem
from tests.conftest import World, is_postgres_run
from tests.support.ingest import Phone, ema_prompt, morning, pain_study, phone


@pytest.fixture
def me(world: World) -> Phone:
    return phone(world, pain_study(world))


def _statuses(result: dict[str, Any]) -> list[str]:
    return [r["status"] for r in result["items"]]


def test_a_replayed_answer_to_a_prompt_is_a_duplicate_not_already_answered(
    world: World, me: Phone
) -> None:
    item = {**morning(world.clock.now()), "prompt_id": str(ema_prompt(world, me))}
    first = me.post("ema-responses", [item])
    again = me.post("ema-responses", [item])
    assert _statuses(again) == ["duplicate"]
    assert again["items"][0]["id"] == first["items"][0]["id"]


def test_a_stored_client_id_is_a_duplicate_even_if_the_replay_is_now_invalid(
    world: World, me: Phone
) -> None:
    item = morning(world.clock.now())
    first = me.post("ema-responses", [item])
    changed = {**item, "answers": {**item["answers"], "pain": 11}}
    again = me.post("ema-responses", [changed, morning(world.clock.now())])
    assert _statuses(again) == ["duplicate", "accepted"]
    assert again["items"][0]["id"] == first["items"][0]["id"]


def test_a_stored_client_id_claims_no_prompt(world: World, me: Phone) -> None:
    """The replayed item names a prompt it did not answer the first time; the new item
    answering that prompt is accepted, as if the replay had been recognized first."""
    stored = morning(world.clock.now())
    me.post("ema-responses", [stored])
    prompt = str(ema_prompt(world, me))
    replay = {**stored, "prompt_id": prompt}
    new = {**morning(world.clock.now()), "prompt_id": prompt}
    result = me.post("ema-responses", [replay, new])
    assert _statuses(result) == ["duplicate", "accepted"]
    with world.session_factory() as session:
        answering = session.scalars(
            sa.select(EmaResponse.client_id).where(EmaResponse.prompt_id == uuid.UUID(prompt))
        ).all()
        assert answering == [new["client_id"]]
        assert session.get_one(ScheduledItem, uuid.UUID(prompt)).answered_at is not None


def test_the_first_item_of_a_repeated_client_id_wins_once_a_replay_frees_its_prompt(
    world: World, me: Phone
) -> None:
    stored = morning(world.clock.now())
    me.post("ema-responses", [stored])
    prompt = str(ema_prompt(world, me))
    replay = {**stored, "prompt_id": prompt}
    first = {**morning(world.clock.now(), client_id="z", pain=1), "prompt_id": prompt}
    second = morning(world.clock.now(), client_id="z", pain=2)
    result = me.post("ema-responses", [replay, first, second])
    assert _statuses(result) == ["duplicate", "accepted", "duplicate"]
    assert result["items"][1]["id"] == result["items"][2]["id"]
    with world.session_factory() as session:
        row = session.execute(
            sa.select(EmaResponse.id, EmaResponse.prompt_id).where(EmaResponse.client_id == "z")
        ).one()
        assert (str(row.id), str(row.prompt_id)) == (result["items"][1]["id"], prompt)
        pains = session.scalars(
            sa.select(EmaAnswer.value).where(
                EmaAnswer.response_id == row.id, EmaAnswer.item_id == "pain"
            )
        ).all()
        assert pains == [1]


@dataclass
class Model:
    """The rules, item by item: stored client ids first, then the batch's own repeats,
    then validity (a pain off the scale, a prompt answered before or earlier in the batch)."""

    stored: dict[str, str | None] = field(default_factory=dict)  # client id -> prompt key
    answered: set[str] = field(default_factory=set)

    def batch(self, items: list[tuple[str, str | None, bool]]) -> list[str]:
        statuses: list[str] = []
        accepted: set[str] = set()
        claimed: set[str] = set()
        for client_id, prompt, valid in items:
            if client_id in self.stored or client_id in accepted:
                statuses.append("duplicate")
            elif not valid or (prompt is not None and (prompt in self.answered | claimed)):
                statuses.append("rejected")
            else:
                statuses.append("accepted")
                accepted.add(client_id)
                self.stored[client_id] = prompt
                if prompt is not None:
                    claimed.add(prompt)
        self.answered |= claimed
        return statuses


_item = st.tuples(
    st.sampled_from(["a", "b", "c", "d"]),
    st.sampled_from([None, None, "p", "q"]),
    st.booleans() | st.just(True),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(st.lists(_item, min_size=1, max_size=6), min_size=1, max_size=4))
def test_batches_follow_the_sequential_rules(
    world: World, batches: list[list[tuple[str, str | None, bool]]]
) -> None:
    world.reset()
    world.clock.set(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    me = phone(world, pain_study(world))
    prompts = {key: str(ema_prompt(world, me)) for key in ("p", "q")}
    model = Model()
    ids: dict[str, str] = {}
    for batch in batches:
        items = []
        for client_id, prompt, valid in batch:
            item = morning(
                world.clock.now() - timedelta(minutes=1),
                client_id=client_id,
                pain=5 if valid else 11,
            )
            if prompt is not None:
                item["prompt_id"] = prompts[prompt]
            items.append(item)
        result = me.post("ema-responses", items)
        assert _statuses(result) == model.batch(batch), batch
        for (client_id, _, _), outcome in zip(batch, result["items"], strict=True):
            if outcome["status"] != "rejected":
                assert ids.setdefault(client_id, outcome["id"]) == outcome["id"]
    with world.session_factory() as session:
        stored = dict(
            session.execute(sa.select(EmaResponse.client_id, EmaResponse.prompt_id)).all()
        )
        answered = session.scalars(
            sa.select(ScheduledItem.id).where(ScheduledItem.answered_at.is_not(None))
        ).all()
    assert set(stored) == set(model.stored)
    assert {str(p) for p in stored.values() if p} == {prompts[p] for p in model.answered}
    assert {str(p) for p in answered} == {prompts[p] for p in model.answered}


@pytest.mark.skipif(not is_postgres_run(), reason="row locks between sessions: PostgreSQL")
def test_a_batch_racing_the_same_client_ids_gets_duplicates_and_stores_nothing_twice(
    world: World, me: Phone
) -> None:
    """Two requests with the same new client ids: the second waits for the first's locks,
    then finds its rows taken; its items are duplicates of what the first stored, and no
    response or answer is stored twice."""
    now = world.clock.now()
    submissions = [
        EmaSubmission(
            index=i,
            client_id=f"race-{i}",
            prompt_id=None,
            questionnaire_id="morning",
            questionnaire_version=1,
            answered_at=now - timedelta(minutes=i + 1),
            answers=morning(now)["answers"],
        )
        for i in range(5)
    ]

    def submit(session: Any) -> Any:
        participant = session.get_one(Participant, uuid.UUID(me.id))
        return submit_responses(
            session,
            world.clock,
            participant,
            submissions,
            skew=timedelta(minutes=5),
            webhook_configured=False,
        )

    first_session = world.session_factory()
    first = submit(first_session)
    second: dict[str, Any] = {}

    def run_second() -> None:
        with world.session_factory() as session:
            second["outcome"] = submit(session)
            session.commit()

    racer = threading.Thread(target=run_second)
    racer.start()
    racer.join(timeout=1)
    assert racer.is_alive()  # waiting for the first batch's row locks
    first_session.commit()
    first_session.close()
    racer.join(timeout=30)
    assert not racer.is_alive()
    assert [r.status for r in first.results] == ["accepted"] * 5
    assert [r.status for r in second["outcome"].results] == ["duplicate"] * 5
    assert [r.id for r in second["outcome"].results] == [r.id for r in first.results]
    with world.session_factory() as session:
        responses = session.scalars(
            sa.select(EmaResponse.id).where(EmaResponse.client_id.like("race-%"))
        ).all()
        answers = session.scalar(
            sa.select(sa.func.count())
            .select_from(EmaAnswer)
            .where(EmaAnswer.response_id.in_(responses))
        )
    assert sorted(responses) == sorted(r.id for r in first.results)
    assert answers == 5 * 6
