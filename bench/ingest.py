"""Benchmark: EMA ingestion throughput of the real service against a no-validation ceiling.

Starts Kairos with uvicorn on a scratch PostgreSQL database, drives `POST
/v1/me/ema-responses` with concurrent HTTP clients sending realistic batches (questionnaires
of the chronic-pain example protocol, unique client ids, participants spread over the
clients), then does the same against bench/ceiling_app.py: the same JSON, the same rows,
the same server settings, no checks at all. Prints accepted items per second, request
latency (p50, p99) and the service's resident memory sampled every second.

    python bench/ingest.py                      # 2 minutes per phase
    python bench/ingest.py --seconds 20         # a quick look

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
import sqlalchemy as sa
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.audit.service import CLI_ACTOR  # noqa: E402
from app.core.clock import SystemClock  # noqa: E402
from app.core.db import create_db_engine, make_session_factory  # noqa: E402
from app.core.migrations import upgrade_to_head  # noqa: E402
from app.participants import enrollment, service  # noqa: E402
from app.protocols.example_files import CHRONIC_PAIN_JITAI, example_text  # noqa: E402
from app.protocols.versions import upload_version  # noqa: E402
from app.studies.models import StudyStatus  # noqa: E402
from app.studies.service import create_study  # noqa: E402

SECRET = "bench-secret-key-that-is-long-enough-0123456789"  # noqa: S105 - a scratch database
MOODS = ["very_low", "low", "neutral", "good", "very_good"]


@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)
    items: int = 0
    requests: int = 0
    errors: int = 0
    rss_kib: list[int] = field(default_factory=list)
    seconds: float = 0.0

    def row(self) -> dict[str, float]:
        lat = sorted(self.latencies)
        return {
            "items_per_s": self.items / self.seconds,
            "requests_per_s": self.requests / self.seconds,
            "p50_ms": 1000 * lat[len(lat) // 2] if lat else float("nan"),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
            "errors": self.errors,
            "rss_start_mib": self.rss_kib[0] / 1024 if self.rss_kib else float("nan"),
            "rss_end_mib": self.rss_kib[-1] / 1024 if self.rss_kib else float("nan"),
            "rss_max_mib": max(self.rss_kib) / 1024 if self.rss_kib else float("nan"),
        }


@dataclass(frozen=True)
class Seeded:
    study_id: uuid.UUID
    participants: list[tuple[uuid.UUID, str]]  # (participant id, token)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scratch_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    name = f"kairos_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def seed(url: str, participants: int) -> Seeded:
    engine = create_db_engine(url)
    upgrade_to_head(engine)
    clock = SystemClock()
    with make_session_factory(engine)() as session:
        study = create_study(
            session, clock, CLI_ACTOR, slug="bench", name="Bench", status=StudyStatus.active
        )
        session.flush()
        upload_version(session, clock, CLI_ACTOR, study, example_text(CHRONIC_PAIN_JITAI))
        enrolled = []
        for _ in range(participants):
            participant, code, _ = service.create_participant(
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
            _, token = enrollment.enroll(session, clock, code, secret_key=SECRET)
            enrolled.append((participant.id, token))
        session.commit()
        seeded = Seeded(study.id, enrolled)
    engine.dispose()
    return seeded


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
                "pain": rng.randint(0, 10),
                "interference": rng.randint(0, 10),
                "acceptance": rng.randint(0, 10),
                "mood": rng.choice(MOODS),
                "sleep_quality": rng.randint(0, 10),
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


async def drive(
    phase: Phase,
    pid: int,
    send: Callable[[httpx.AsyncClient, int, bytes], Awaitable[httpx.Response]],
    *,
    seconds: float,
    warmup: float,
    concurrency: int,
    batch_size: int,
) -> None:
    measuring = False
    stop_at = time.monotonic() + warmup + seconds

    async def client(worker: int) -> None:
        rng = random.Random(worker)  # noqa: S311 - test data
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
                phase.items += int(response.json()["accepted"])

    async def sample() -> None:
        nonlocal measuring
        await asyncio.sleep(warmup)
        measuring = True
        started = time.monotonic()
        while time.monotonic() < stop_at:
            phase.rss_kib.append(rss_kib(pid))
            await asyncio.sleep(1)
        phase.seconds = time.monotonic() - started

    await asyncio.gather(sample(), *(client(i) for i in range(concurrency)))


def empty_ema_tables(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE ema_answers, ema_responses, alerts CASCADE"))
    engine.dispose()


def run_phase(
    name: str,
    target: str,
    url: str,
    args: argparse.Namespace,
    make_send: Callable[
        [int], Callable[[httpx.AsyncClient, int, bytes], Awaitable[httpx.Response]]
    ],
) -> Phase:
    empty_ema_tables(url)
    port = free_port()
    server = start_server(target, url, port, args.pool_size)
    phase = Phase(name)
    try:
        asyncio.run(
            drive(
                phase,
                server.pid,
                make_send(port),
                seconds=args.seconds,
                warmup=args.warmup,
                concurrency=args.concurrency,
                batch_size=args.batch,
            )
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return phase


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=120, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=5, help="unmeasured seconds first")
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
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    url, drop = scratch_database(args.database_url)
    try:
        seeded = seed(url, args.participants)
        tokens = [token for _, token in seeded.participants]
        ids = [pid for pid, _ in seeded.participants]

        def kairos_send(
            port: int,
        ) -> Callable[[httpx.AsyncClient, int, bytes], Awaitable[httpx.Response]]:
            def send(
                http: httpx.AsyncClient, worker: int, body: bytes
            ) -> Awaitable[httpx.Response]:
                token = tokens[(worker + random.randrange(len(tokens))) % len(tokens)]  # noqa: S311
                return http.post(
                    f"http://127.0.0.1:{port}/v1/me/ema-responses",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                    },
                )

            return send

        def ceiling_send(
            port: int,
        ) -> Callable[[httpx.AsyncClient, int, bytes], Awaitable[httpx.Response]]:
            def send(
                http: httpx.AsyncClient, worker: int, body: bytes
            ) -> Awaitable[httpx.Response]:
                pid = ids[(worker + random.randrange(len(ids))) % len(ids)]  # noqa: S311
                return http.post(
                    f"http://127.0.0.1:{port}/ingest/{seeded.study_id}/{pid}",
                    content=body,
                    headers={"Content-Type": "application/json"},
                )

            return send

        ceiling = run_phase(
            "ceiling", "bench.ceiling_app:create_ceiling_app", url, args, ceiling_send
        )
        kairos = run_phase("kairos", "app.api.main:create_app", url, args, kairos_send)
    finally:
        drop()

    rows = {p.name: p.row() for p in (kairos, ceiling)}
    ratio = rows["kairos"]["items_per_s"] / rows["ceiling"]["items_per_s"]
    print(
        f"\n{args.concurrency} clients, batches of {args.batch} EMA responses (6 answers each), "
        f"{args.seconds:.0f} s measured per phase after {args.warmup:.0f} s warm-up, "
        f"{args.participants} participants, uvicorn 1 worker, pool {args.pool_size}\n"
    )
    header = (
        f"{'':10}{'items/s':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'RSS start':>11}{'RSS end':>9}{'RSS max':>9}"
    )
    print(header)
    for name, r in rows.items():
        print(
            f"{name:10}{r['items_per_s']:>10.0f}{r['requests_per_s']:>9.1f}{r['p50_ms']:>9.1f}"
            f"{r['p99_ms']:>9.1f}{r['errors']:>8.0f}{r['rss_start_mib']:>10.1f}M"
            f"{r['rss_end_mib']:>8.1f}M{r['rss_max_mib']:>8.1f}M"
        )
    print(f"\nkairos / ceiling: {ratio:.0%} (target: at least 60%)")
    if args.json:
        print(json.dumps({"rows": rows, "ratio": ratio, "args": vars(args)}, indent=2, default=str))


if __name__ == "__main__":
    main()
