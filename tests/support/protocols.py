"""A small protocol for scheduling and delivery tests and benchmarks."""

from collections.abc import Sequence
from typing import Any

import yaml


def protocol_yaml(
    *,
    dp_times: Sequence[str] = ("09:00",),
    ema_times: Sequence[str] = ("20:00",),
    reminders: dict[str, int] | None = None,
    expires_after: int = 60,
    grace: int = 10,
    extra_decision_points: Sequence[dict[str, Any]] = (),
    extra_ema: Sequence[dict[str, Any]] = (),
    duration_days: int = 28,
) -> str:
    document: dict[str, Any] = {
        "kairos_protocol": 1,
        "study": {"name": "Scheduling test", "duration_days": duration_days, "random_seed": 11},
        "questionnaires": [
            {
                "id": "daily",
                "title": "Evening check-in",
                "items": [
                    {"id": "pain", "type": "numeric_rating", "text": "Pain?", "min": 0, "max": 10}
                ],
            },
            {
                "id": "after",
                "title": "After the exercise",
                "items": [
                    {"id": "pain", "type": "numeric_rating", "text": "Pain?", "min": 0, "max": 10}
                ],
            },
        ],
        "ema_schedules": [
            {
                "id": "evening",
                "questionnaire": "daily",
                "times": list(ema_times),
                "expires_after_minutes": expires_after,
                "reminders": reminders or {"count": 0},
            },
            *extra_ema,
        ]
        if ema_times
        else list(extra_ema),
        "decision_points": [
            {"id": "morning", "times": list(dp_times), "grace_minutes": grace},
            *extra_decision_points,
        ],
        "intervention_options": [
            {
                "id": "walk",
                "category": "movement",
                "title": "Time for a short walk",
                "body": "A few minutes of gentle movement can ease stiffness.",
                "deep_link": "kairos://exercise/walk",
            },
            {"id": "nothing", "category": "none"},
        ],
        "policy": {
            "rules": [{"id": "all", "when": "true", "randomize": {"walk": 0.5, "nothing": 0.5}}],
            "fallback": {"option": "nothing"},
        },
    }
    return yaml.safe_dump(document, sort_keys=False)


# An EMA prompt 30 minutes after every completed exercise.
AFTER_EXERCISE = {
    "id": "after_exercise",
    "questionnaire": "after",
    "triggers": [{"event": "exercise_completed", "delay_minutes": 30}],
}
