"""Reproducible draws: every random draw comes from a generator seeded by (study seed,
participant, what is drawn), so anyone can re-derive it from the decision log.

Re-deriving a decision draw by hand (see docs/decisions-engine.md):

    seed = derive_seed(study_seed, participant_id, decision_point_id, decision_index)
    u = random.Random(seed).random()
    # options in alphabetical order of id; the first whose cumulative probability
    # exceeds u is chosen
"""

import hashlib
import random
from collections.abc import Mapping


def derive_seed(*parts: object) -> int:
    """A 63-bit seed (fits a signed BIGINT) from the SHA-256 of the parts joined by "|"."""
    text = "|".join(str(part) for part in parts)
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def uniform(seed: int) -> float:
    """The first number in [0, 1) of Python's Mersenne Twister seeded with ``seed``; Python
    guarantees this stays the same across versions for integer seeds."""
    return random.Random(seed).random()  # noqa: S311 - reproducible randomization, not security


def choose(probabilities: Mapping[str, float], u: float) -> str:
    """The option that ``u`` falls on, walking the options in alphabetical order of id.

    Alphabetical order (not the protocol's) so that the choice can be re-derived from the
    logged probabilities alone, whatever key order the JSON column keeps.
    """
    candidates = sorted(option for option, p in probabilities.items() if p > 0)
    if not candidates:
        raise ValueError("no option has a positive probability")
    cumulative = 0.0
    for option in candidates:
        cumulative += probabilities[option]
        if u < cumulative:
            return option
    # u lies in the rounding gap just below 1: the last option with positive probability.
    return candidates[-1]
