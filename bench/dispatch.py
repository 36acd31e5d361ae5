"""Dispatch benchmark: N participants whose decision point is due at the same instant.

PostgreSQL, worker processes started like `kairos worker` (with a decider that delivers at
every decision point), the real firebase-admin client, and a fake FCM server on loopback
in its own process. Reports, for one and for two worker processes in the same run: the
time from the due instant until the last push was accepted, the median and p99 lag of the
pushes behind their due time, and the throughput.

    python bench/dispatch.py                       # 10,000 participants, 1 and 2 workers
    python bench/dispatch.py --participants 2000 --workers 1 2 3

KAIROS_DATABASE_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test) names a
server; a scratch database is created on it and dropped afterwards.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.core.db import create_db_engine, create_scratch_postgres, make_session_factory  # noqa: E402
from app.core.migrations import upgrade_to_head  # noqa: E402
from app.models import Base  # noqa: E402
from app.notifications.models import Notification, NotificationStatus  # noqa: E402
from tests.support.bulk import seed_due_decision_points  # noqa: E402
from tests.support.fake_fcm import LOG_FLUSH_SECONDS  # noqa: E402

SECRET = "bench-secret-key-that-is-long-enough-0123456789"  # noqa: S105 (a throwaway database)


def empty_tables(engine: sa.Engine) -> None:
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """All PostgreSQL server processes on this machine (the benchmark's connections among
    them): what the database cost, as far as /proc can tell."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            total += cpu_seconds(int(stat.parent.name))
    return total


def run(
    url: str,
    engine: sa.Engine,
    fcm: subprocess.Popen[str],
    fcm_port: int,
    log: Path,
    workers: int,
    count: int,
    lead: float,
) -> dict[str, float]:
    empty_tables(engine)
    log.write_text("")
    due = datetime.now(UTC) + timedelta(seconds=lead)
    factory = make_session_factory(engine)
    with factory() as session:
        seed_due_decision_points(session, count, due)
        session.commit()
    env = {
        **os.environ,
        "KAIROS_DATABASE_URL": url,
        "KAIROS_ENVIRONMENT": "test",
        "KAIROS_SECRET_KEY": SECRET,
        "KAIROS_FCM_ENDPOINT": f"http://127.0.0.1:{fcm_port}",
        "KAIROS_WORKER_TICK_SECONDS": "0.2",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.support.worker_process", f"bench-{i}"], cwd=REPO, env=env
        )
        for i in range(workers)
    ]
    cpu_before = (cpu_seconds(fcm.pid), postgres_cpu_seconds())
    try:
        deadline = time.monotonic() + lead + 600
        while time.monotonic() < deadline:
            with factory() as session:
                sent = session.scalar(
                    sa.select(sa.func.count()).where(Notification.status == NotificationStatus.sent)
                )
            if sent == count:
                break
            time.sleep(0.25)
        else:
            raise SystemExit(f"timed out: {sent} of {count} pushes sent")
        cpu = {
            "worker_cpu_s": sum(cpu_seconds(p.pid) for p in processes),
            "fcm_cpu_s": cpu_seconds(fcm.pid) - cpu_before[0],
            "postgres_cpu_s": postgres_cpu_seconds() - cpu_before[1],
        }
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
    time.sleep(4 * LOG_FLUSH_SECONDS)  # the fake FCM writes its log in the background
    accepted = [
        entry["at"]
        for entry in map(json.loads, log.read_text().splitlines())
        if entry["answer"] == "ok"
    ]
    lags = sorted(at - due.timestamp() for at in accepted)
    last = lags[-1]
    return {
        "workers": workers,
        "pushes": len(lags),
        "last_push_s": last,
        "median_lag_s": statistics.median(lags),
        "p99_lag_s": lags[int(0.99 * (len(lags) - 1))],
        "throughput_per_s": len(lags) / last,
        "first_push_s": lags[0],
        **cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--lead", type=float, default=8.0, help="seconds between seeding and the due instant"
    )
    args = parser.parse_args()
    server = os.environ.get(
        "KAIROS_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    scratch = create_scratch_postgres(server, "kairos_bench")
    url = scratch.url
    engine = create_db_engine(url)
    upgrade_to_head(engine)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "fcm.jsonl"
        fcm = subprocess.Popen(
            [sys.executable, "-m", "tests.support.fake_fcm", "--log", str(log)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert fcm.stdout is not None
        port = int(fcm.stdout.readline())
        try:
            results = [
                run(url, engine, fcm, port, log, n, args.participants, args.lead)
                for n in args.workers
            ]
        finally:
            fcm.terminate()
            fcm.wait(10)
            engine.dispose()
            scratch.drop()
    print(f"{args.participants} decision points due at one instant; fake FCM on loopback")
    print(
        "workers  pushes  first (s)  last push (s)  median lag (s)  p99 lag (s)  pushes/s  "
        "CPU s: workers  fake FCM  PostgreSQL"
    )
    for r in results:
        print(
            f"{r['workers']:>7}  {r['pushes']:>6}  {r['first_push_s']:>9.2f}  "
            f"{r['last_push_s']:>13.2f}  {r['median_lag_s']:>14.2f}  {r['p99_lag_s']:>11.2f}  "
            f"{r['throughput_per_s']:>8.0f}  {r['worker_cpu_s']:>14.1f}  {r['fcm_cpu_s']:>8.1f}  "
            f"{r['postgres_cpu_s']:>10.1f}"
        )
    print(f"load average after the run: {os.getloadavg()}")
    if len(results) >= 2:
        speedup = results[1]["throughput_per_s"] / results[0]["throughput_per_s"]
        print(
            f"speed-up {results[1]['workers']} vs {results[0]['workers']} workers: {speedup:.2f}x"
        )


if __name__ == "__main__":
    main()
