"""What listens to participant events, connected in one place: the API app, the worker,
the simulator and any other entry point call ``connect_listeners()`` (through
``app.wiring`` where they assemble more), so ingestion outside the API app triggers what it
triggers inside it."""

from app.decision_rules.onboarding import rescore_after_stratifying
from app.ema.strata import on_stratified
from app.scheduling.triggers import subscribe_all


def connect_listeners() -> None:
    """Participant events (EMA answers, completed exercises …) reach scheduling's triggers,
    and a stratified attribute has the PAI scored again. Idempotent: connecting twice does
    not make a listener fire twice."""
    subscribe_all()
    on_stratified(rescore_after_stratifying)
