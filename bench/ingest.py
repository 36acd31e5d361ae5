"""Benchmark: EMA ingestion throughput of the real service against a no-validation ceiling.

Starts Kairos with uvicorn on a scratch PostgreSQL database, drives `POST
/v1/me/ema-responses` with concurrent HTTP clients sending realistic batches (questionnaires
of the chronic-pain example protocol, unique client ids, participants spread over the
clients), then does the same against bench/ceiling_app.py: the same JSON, the same rows,
the same server settings, no checks at all. Prints accepted items per second, request
latency (p50, p99) and the service's resident memory sampled every second.

Memory is "flat" when the resident set stops growing once warmed up: the benchmark reports
its growth over the last three quarters of the measured seconds (the last 90 s of the
default 2 minutes), after the first quarter as warm-up; the target is under 2 MiB.

    python bench/ingest.py                      # 2 minutes per phase
    python bench/ingest.py --seconds 20         # a quick look
    python bench/ingest.py --only kairos --seconds 240 --rounds 1   # a memory soak

Needs PostgreSQL (default: postgresql+psycopg://postgres@127.0.0.1:5432/test; a scratch
database is created next to it and dropped afterwards).
"""

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.alerts.routing import declare_poll_only  # noqa: E402
from app.audit.service import CLI_ACTOR  # noqa: E402
from app.core.clock import SimulatedClock  # noqa: E402
from app.core.db import create_db_engine, create_scratch_postgres, make_session_factory  # noqa: E402
from app.core.migrations import upgrade_to_head  # noqa: E402
from app.protocols.example_files import CHRONIC_PAIN_JITAI, example_text  # noqa: E402
from app.studies.models import StudyStatus  # noqa: E402
from app.studies.service import create_study  # noqa: E402
from app.study_operations import participants as operations  # noqa: E402
from app.study_operations.protocol_versions import upload_version  # noqa: E402

SECRET = "bench-secret-key-that-is-long-enough-0123456789"  # noqa: S105 - a scratch database
MOODS = ["very_low", "low", "neutral", "good", "very_good"]


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    items: int = 0
    requests: int = 0
    errors: int = 0
    rejected: int = 0  # items not accepted (would mean the batches are not realistic)
    rss_kib: list[int] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def rss_growth_mib(self) -> float:
        """Growth of the resident set after the first quarter of the measured seconds."""
        if len(self.rss_kib) < 4:
            return float("nan")
        return (self.rss_kib[-1] - self.rss_kib[len(self.rss_kib) // 4]) / 1024

    def row(self) -> dict[str, float]:
        lat = sorted(self.latencies)
        return {
            "items_per_s": self.items / self.seconds,
            "requests_per_s": self.requests / self.seconds,
            "p50_ms": 1000 * lat[len(lat) // 2] if lat else float("nan"),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
            "items_per_cpu_s": self.items / self.cpu_seconds if self.cpu_seconds else 0.0,
            "errors": self.errors,
            "rejected_items": self.rejected,
            "rss_start_mib": self.rss_kib[0] / 1024 if self.rss_kib else float("nan"),
            "rss_end_mib": self.rss_kib[-1] / 1024 if self.rss_kib else float("nan"),
            "rss_max_mib": max(self.rss_kib) / 1024 if self.rss_kib else float("nan"),
            "rss_growth_after_warmup_mib": self.rss_growth_mib(),
        }


@dataclass(frozen=True)
class Seeded:
    study_id: uuid.UUID
    participants: list[tuple[uuid.UUID, str]]  # (participant id, token)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(url: str, participants: int) -> Seeded:
    engine = create_db_engine(url)
    upgrade_to_head(engine)
    # Enrolled two days ago, so the batches' answers (the last hour) are after enrollment.
    clock = SimulatedClock(datetime.now(UTC) - timedelta(days=2))
    with make_session_factory(engine)() as session:
        study = create_study(
            session, clock, CLI_ACTOR, slug="bench", name="Bench", status=StudyStatus.active
        )
        session.flush()
        declare_poll_only(session, clock, CLI_ACTOR, study, "A benchmark study.")
        upload_version(session, clock, CLI_ACTOR, study, example_text(CHRONIC_PAIN_JITAI))
        enrolled = []
        for _ in range(participants):
            participant, code, _ = operations.create_participant(
                session,
                clock,
                CLI_ACTOR,
                study,
                timezone="Europe/Berlin",
                secret_key=SECRET,
                code_ttl_hours=24,
                attributes={
                    "trauma_history": False,
                    "pain_phenotype": "nociplastic",
                    "age": 50,
                    "baseline_interference": 6,
                },
            )
            _, token = operations.enroll(session, clock, code, secret_key=SECRET)
            enrolled.append((participant.id, token))
        session.commit()
        seeded = Seeded(study.id, enrolled)
    engine.dispose()
    return seeded


def _rating(rng: random.Random, mean: float) -> int:
    """A 0-10 rating around a participant's typical level (10/10 pain is rare, ~1%)."""
    return min(10, max(0, round(rng.gauss(mean, 2.0))))


def batch(size: int, rng: random.Random) -> bytes:
    """`size` morning check-ins answered over the last hours (a phone syncing after a while)."""
    now = datetime.now(UTC)
    items = [
        {
            "client_id": uuid.uuid4().hex,
            "questionnaire_id": "morning",
            "questionnaire_version": 1,
            "answered_at": (now - timedelta(seconds=rng.randint(5, 3600))).isoformat(),
            "answers": {
                "pain": _rating(rng, 5.0),
                "interference": _rating(rng, 4.5),
                "acceptance": _rating(rng, 5.5),
                "mood": rng.choice(MOODS),
                "sleep_quality": _rating(rng, 6.0),
                "sleep_duration": rng.randint(240, 600),
            },
        }
        for _ in range(size)
    ]
    return json.dumps({"items": items}).encode()


def start_server(target: str, url: str, port: int, pool_size: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "KAIROS_DATABASE_URL": url,
        "KAIROS_SECRET_KEY": SECRET,
        "KAIROS_ENVIRONMENT": "development",
        "KAIROS_AUTO_MIGRATE": "false",
        "KAIROS_RUN_WORKER": "false",
        "KAIROS_DB_POOL_SIZE": str(pool_size),
        "PYTHONPATH": str(ROOT),
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(command, env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{target} did not start")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Send = Callable[[httpx.AsyncClient, int, bytes], Awaitable[httpx.Response]]


async def drive(
    phase: Phase,
    pid: int,
    send: Send,
    *,
    seconds: float,
    warmup: float,
    concurrency: int,
    batch_size: int,
) -> None:
    """Load one server for ``warmup`` + ``seconds``; only the last ``seconds`` count."""
    measuring = False
    stop_at = time.monotonic() + warmup + seconds

    async def client(worker: int) -> None:
        rng = random.Random(worker + len(phase.latencies))  # noqa: S311 - test data
        async with httpx.AsyncClient(timeout=60) as http:
            while time.monotonic() < stop_at:
                body = batch(batch_size, rng)
                started = time.perf_counter()
                response = await send(http, worker, body)
                elapsed = time.perf_counter() - started
                if not measuring:
                    continue
                phase.requests += 1
                if response.status_code != 200:
                    phase.errors += 1
                    continue
                phase.latencies.append(elapsed)
                accepted = int(response.json()["accepted"])
                phase.items += accepted
                phase.rejected += batch_size - accepted

    async def sample() -> None:
        nonlocal measuring
        await asyncio.sleep(warmup)
        measuring = True
        started, cpu = time.monotonic(), cpu_seconds(pid)
        while time.monotonic() < stop_at:
            phase.rss_kib.append(rss_kib(pid))
            await asyncio.sleep(1)
        phase.seconds += time.monotonic() - started
        phase.cpu_seconds += cpu_seconds(pid) - cpu

    await asyncio.gather(sample(), *(client(i) for i in range(concurrency)))


def run(args: argparse.Namespace, url: str, seeded: Seeded) -> list[Phase]:
    """Both servers up; the load alternates between them in slices, so that whatever else
    runs on the machine weighs on both alike."""
    tokens = [token for _, token in seeded.participants]
    ids = [pid for pid, _ in seeded.participants]
    kairos_port, ceiling_port = free_port(), free_port()
    ceiling_route = {"json": "ingest-json", "executemany": "ingest"}[args.ceiling]

    def kairos_send(http: httpx.AsyncClient, worker: int, body: bytes) -> Awaitable[httpx.Response]:
        token = tokens[(worker + random.randrange(len(tokens))) % len(tokens)]  # noqa: S311
        return http.post(
            f"http://127.0.0.1:{kairos_port}/v1/me/ema-responses",
            content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )

    def ceiling_send(
        http: httpx.AsyncClient, worker: int, body: bytes
    ) -> Awaitable[httpx.Response]:
        pid = ids[(worker + random.randrange(len(ids))) % len(ids)]  # noqa: S311
        return http.post(
            f"http://127.0.0.1:{ceiling_port}/{ceiling_route}/{seeded.study_id}/{pid}",
            content=body,
            headers={"Content-Type": "application/json"},
        )

    targets = {
        "ceiling": ("bench.ceiling_app:create_ceiling_app", ceiling_port, ceiling_send),
        "kairos": ("app.api.main:create_app", kairos_port, kairos_send),
    }
    chosen = [name for name in targets if args.only in (None, name)]
    servers = {
        name: start_server(targets[name][0], url, targets[name][1], args.pool_size)
        for name in chosen
    }
    phases = {name: Phase(name) for name in chosen}
    try:
        for _ in range(args.rounds):
            for name in chosen:
                phase, server, send = phases[name], servers[name], targets[name][2]
                asyncio.run(
                    drive(
                        phase,
                        server.pid,
                        send,
                        seconds=args.seconds / args.rounds,
                        warmup=args.warmup,
                        concurrency=args.concurrency,
                        batch_size=args.batch,
                    )
                )
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
    return [phases[name] for name in ("kairos", "ceiling") if name in phases]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=120, help="measured seconds per server, in all"
    )
    parser.add_argument(
        "--rounds", type=int, default=6, help="alternate between the servers this many times"
    )
    parser.add_argument(
        "--warmup", type=float, default=3, help="unmeasured seconds at the start of each slice"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--batch", type=int, default=20, help="EMA responses per request")
    parser.add_argument("--participants", type=int, default=32)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "KAIROS_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="a PostgreSQL URL; a scratch database is created beside it",
    )
    parser.add_argument(
        "--only", choices=["kairos", "ceiling"], help="load one server (a memory soak, say)"
    )
    parser.add_argument(
        "--ceiling",
        choices=["executemany", "json"],
        default="executemany",
        help="how the ceiling inserts: SQLAlchemy's executemany (the minimal endpoint the "
        "target is set against), or one statement with the rows as JSON, as Kairos does on "
        "PostgreSQL (a stricter comparison)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    scratch = create_scratch_postgres(args.database_url, "kairos_bench")
    url, drop = scratch.url, scratch.drop
    try:
        phases = run(args, url, seed(url, args.participants))
    finally:
        drop()
    report(args, {p.name: p.row() for p in phases})
    for phase in phases:
        # One sample every 15 measured seconds: does it level off?
        trace = " ".join(f"{kib / 1024:.1f}" for kib in phase.rss_kib[::15])
        print(f"{phase.name} RSS (MiB) every 15 measured s: {trace}")


def report(args: argparse.Namespace, rows: dict[str, dict[str, float]]) -> None:
    print(
        f"\n{args.concurrency} clients, batches of {args.batch} EMA responses (6 answers each), "
        f"{args.seconds:.0f} s measured per server in {args.rounds} alternating slices "
        f"(each after {args.warmup:.0f} s warm-up), "
        f"{args.participants} participants, uvicorn 1 worker, pool {args.pool_size}, "
        f"ceiling inserting by {args.ceiling}\n"
    )
    header = (
        f"{'':10}{'items/s':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'rejected':>9}"
        f"{'RSS start':>11}{'RSS end':>9}{'RSS max':>9}{'growth':>9}"
    )
    print(header)
    for name, r in rows.items():
        print(
            f"{name:10}{r['items_per_s']:>10.0f}{r['requests_per_s']:>9.1f}{r['p50_ms']:>9.1f}"
            f"{r['p99_ms']:>9.1f}{r['errors']:>8.0f}{r['rejected_items']:>9.0f}"
            f"{r['rss_start_mib']:>10.1f}M"
            f"{r['rss_end_mib']:>8.1f}M{r['rss_max_mib']:>8.1f}M"
            f"{r['rss_growth_after_warmup_mib']:>+8.1f}M"
        )
    measured = args.seconds * 3 / 4
    print(
        f"(growth: RSS over the last {measured:.0f} measured seconds, after the first quarter "
        "as warm-up; flat means under 2 MiB)"
    )
    for name, r in rows.items():
        print(f"{name}: {r['items_per_cpu_s']:.0f} items per CPU-second of the server process")
    ratio = cpu_ratio = float("nan")
    if len(rows) == 2:
        ratio = rows["kairos"]["items_per_s"] / rows["ceiling"]["items_per_s"]
        cpu_ratio = rows["kairos"]["items_per_cpu_s"] / rows["ceiling"]["items_per_cpu_s"]
        print(
            f"\nkairos / ceiling: {ratio:.0%} of the items per second (target: at least 60%), "
            f"{cpu_ratio:.0%} of the items per server CPU-second"
        )
    if args.json:
        print(
            json.dumps(
                {"rows": rows, "ratio": ratio, "cpu_ratio": cpu_ratio, "args": vars(args)},
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
