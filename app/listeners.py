"""What listens to participant events, connected in one place: the API app, the worker,
the simulator and any other entry point call ``connect_listeners()`` (through
``app.wiring`` where they assemble more), so ingestion outside the API app triggers what it
triggers inside it."""

from app.scheduling.triggers import subscribe_all


def connect_listeners() -> None:
    """Participant events (EMA answers, completed exercises …) reach scheduling's triggers.
    Idempotent: connecting twice does not make a listener fire twice."""
    subscribe_all()
