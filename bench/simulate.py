"""Simulator speed: the shipped example protocol for N synthetic participants over D days.

The target (issue 14) is 200 participants x 84 days in under 5 minutes on a 2-core machine.
Prints the wall time (and the process's CPU seconds), the clock steps, and decisions and
pushes per second of wall time.

    python bench/simulate.py --participants 200 --days 84
"""

import argparse
import logging
import resource
import time

import sqlalchemy as sa

from app.decision_rules.models import Decision
from app.protocols.example_files import CHRONIC_PAIN_JITAI, example_text
from app.simulation.behaviour import DEFAULT_BEHAVIOUR
from app.simulation.runner import simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--days", type=int, default=84)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.getLogger("app").setLevel(logging.ERROR)
    started = time.perf_counter()
    sim = simulate(
        example_text(CHRONIC_PAIN_JITAI),
        participants=args.participants,
        days=args.days,
        seed=args.seed,
        behaviour=DEFAULT_BEHAVIOUR,
    )
    seconds = time.perf_counter() - started
    with sim.session_factory() as session:
        decisions = session.scalar(sa.select(sa.func.count()).select_from(Decision)) or 0
    sim.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024
    # CPU seconds of this process: on a machine shared with other work, the wall time says
    # how busy the machine was as much as how fast the simulator is.
    cpu = usage.ru_utime + usage.ru_stime
    print(
        f"{args.participants} participants x {args.days} days: {seconds:.1f} s "
        f"({cpu:.1f} CPU s), "
        f"{sim.steps_taken:,} clock steps, {decisions:,} decisions "
        f"({decisions / seconds:,.0f}/s), {sim.pushes_accepted:,} pushes "
        f"({sim.pushes_accepted / seconds:,.0f}/s), peak RSS {peak:.0f} MB"
    )


if __name__ == "__main__":
    main()
