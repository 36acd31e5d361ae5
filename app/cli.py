"""The `kairos` command line."""

import atexit
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
import uvicorn
from sqlalchemy.orm import Session

from app import __version__
from app.analysis.cli import analyze
from app.audit.service import CLI_ACTOR
from app.core.clock import SystemClock
from app.core.config import Settings, UnsafeSettingsError, load_settings
from app.core.db import engine_from_settings, make_session_factory, session_scope
from app.core.migrations import SchemaNotCurrentError, ensure_schema_current, upgrade_to_head
from app.observability.logs import configure_logging, logging_config
from app.staff.models import Role

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from app.protocols.document import Protocol
    from app.simulation.behaviour import Behaviour
    from app.studies.models import Study

cli = typer.Typer(
    name="kairos",
    help="Kairos: JITAI backend for chronic-pain care.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _settings() -> Settings:
    try:
        return load_settings()
    except UnsafeSettingsError as exc:
        typer.secho(f"Refusing to start: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    except ValueError as exc:
        typer.secho(f"Invalid settings: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc


@contextmanager
def _session_on_current_schema(settings: Settings) -> Iterator[Session]:
    """A committing session, or exit 2 saying to run `kairos migrate` first."""
    engine = engine_from_settings(settings)
    try:
        ensure_schema_current(engine)
        with session_scope(make_session_factory(engine)) as session:
            yield session
    except SchemaNotCurrentError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()


def _api_processes(settings: Settings, workers: int) -> int:
    """How many API processes to run, warning of what several of them change."""
    if workers > 1 and settings.is_sqlite:
        typer.secho("Several API workers need PostgreSQL; serving with one.", fg="yellow", err=True)
        return 1
    if workers > 1 and settings.throttle_storage_url.startswith("memory:"):
        typer.secho(
            f"KAIROS_THROTTLE_STORAGE_URL is memory://: each of the {workers} API processes "
            "counts failed enrollments on its own, so a guesser gets up to "
            f"{workers} times the enrollment budgets. Point them all at shared storage, "
            "e.g. KAIROS_THROTTLE_STORAGE_URL=redis://host:6379/0.",
            fg="yellow",
            err=True,
        )
    return workers


def _serve(settings: Settings, workers: int) -> None:
    workers = _api_processes(settings, workers)
    # Check the schema here, once, so a missing `kairos migrate` is one clear message.
    engine = engine_from_settings(settings)
    try:
        if settings.should_auto_migrate:
            upgrade_to_head(engine)
        else:
            ensure_schema_current(engine)
    except SchemaNotCurrentError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    typer.echo(
        f"Kairos {__version__} on http://{settings.host}:{settings.port}/docs "
        f"({engine.dialect.name})"
    )
    configure_logging(settings.log_level, settings.log_format)
    if settings.metrics != "off" and workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # The API processes count requests in files here; a scrape of any one sums them.
        directory = tempfile.mkdtemp(prefix="kairos-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    if settings.metrics_port is not None:
        _serve_metrics(settings, settings.metrics_port, with_database_state=True)
    uvicorn.run(
        "app.api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level=settings.log_level,
        log_config=logging_config(settings.log_level, settings.log_format),
        # The app applies X-Forwarded-* itself, from KAIROS_FORWARDED_ALLOW_IPS.
        proxy_headers=False,
    )


def _serve_metrics(settings: Settings, port: int, *, with_database_state: bool) -> "WSGIServer":
    """Prometheus metrics on their own port, without credentials (KAIROS_METRICS=PORT):
    this host's process metrics, and for `kairos serve` the database state."""
    from prometheus_client import start_http_server

    from app.core.metrics import exposition_registry
    from app.observability.state import DatabaseState

    extra = []
    if with_database_state:
        engine = engine_from_settings(settings, pool_size=1)
        extra.append(
            DatabaseState(
                make_session_factory(engine), SystemClock(), settings.metrics_query_timeout_seconds
            )
        )
    server, _thread = start_http_server(
        port, addr=settings.host, registry=exposition_registry(*extra)
    )
    typer.echo(f"Metrics on http://{settings.host}:{port}/metrics")
    return server


@cli.command()
def serve(
    workers: Annotated[int, typer.Option(min=1, help="API processes (PostgreSQL only).")] = 1,
) -> None:
    """Serve the API. On SQLite it also upgrades the schema and runs the worker in-process."""
    _serve(_settings(), workers)


@cli.command()
def migrate() -> None:
    """Upgrade the database schema to this version's head (safe to run concurrently)."""
    settings = _settings()
    engine = engine_from_settings(settings)
    try:
        before, after = upgrade_to_head(engine)
    finally:
        engine.dispose()
    if before == after:
        typer.echo(f"Schema already at {after}.")
    else:
        typer.echo(f"Schema upgraded from {before or 'empty'} to {after}.")


@cli.command()
def worker(
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="Serve this worker's Prometheus metrics on this port (KAIROS_HOST). "
            "Without it they reach Prometheus through a PROMETHEUS_MULTIPROC_DIR shared with "
            "the API in one PID namespace (not across containers: the files are named by "
            "process id, and each container's Kairos is PID 1).",
        ),
    ] = None,
) -> None:
    """Run the background worker (scheduling and push delivery) in the foreground."""
    from app.wiring import worker_from_settings

    settings = _settings()
    engine = engine_from_settings(settings)
    try:
        ensure_schema_current(engine)
    except SchemaNotCurrentError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level, settings.log_format)
    if metrics_port is not None:
        _serve_metrics(settings, metrics_port, with_database_state=False)
    worker_from_settings(make_session_factory(engine), SystemClock(), settings).run_forever()


@cli.command("create-api-key")
def create_api_key(
    role: Annotated[Role, typer.Option(help="admin, coordinator or researcher.")],
    name: Annotated[str, typer.Option(help="Who or what the key is for.")] = "",
) -> None:
    """Create a staff API key and print it (it is shown only once)."""
    from app.staff.service import create_api_key as create

    with _session_on_current_schema(_settings()) as session:
        api_key, key = create(
            session, SystemClock(), CLI_ACTOR, name=name or f"{role} key", role=role
        )
        key_id = api_key.id
    typer.echo(f"Created {role} API key {key_id}. Store it now; it is not shown again:")
    typer.echo(key)


@cli.command()
def demo(
    database: Annotated[Path, typer.Option(help="SQLite file for the demo (recreated).")] = Path(
        "kairos-demo.db"
    ),
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve after seeding.")
    ] = True,
    history_days: Annotated[
        int,
        typer.Option(
            min=0,
            max=84,
            help="Days of simulated history before now (0: none): simulated participants' "
            "answers, wearable data, decisions, pushes and flags.",
        ),
    ] = 21,
    history_participants: Annotated[
        int, typer.Option(min=1, max=200, help="Simulated participants in the history.")
    ] = 12,
) -> None:
    """Create a fresh demo database (study, simulated history, participants, keys), print
    how to use it, serve."""
    import time

    from app.demo import seed_demo, simulate_history

    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    os.environ["KAIROS_DATABASE_URL"] = f"sqlite:///{database.resolve()}"
    settings = _settings()
    if history_days:
        typer.echo(
            f"Simulating {history_days} days of {history_participants} participants "
            "(the real scheduling, decisions, pushes and ingestion; docs/simulation.md) …"
        )
        started = time.perf_counter()
        logging.getLogger("app").setLevel(logging.ERROR)
        pushes = simulate_history(
            database.resolve(),
            now=SystemClock().now(),
            days=history_days,
            participants=history_participants,
        )
        logging.getLogger("app").setLevel(logging.NOTSET)
        typer.echo(f"… {pushes:,} pushes in {time.perf_counter() - started:.0f} s.")
    engine = engine_from_settings(settings)
    try:
        upgrade_to_head(engine)
        with session_scope(make_session_factory(engine)) as session:
            creds = seed_demo(session, SystemClock(), settings)
    finally:
        engine.dispose()
    base = f"http://{settings.host}:{settings.port}"
    typer.echo(f"Demo study {creds.study_id} in {database}")
    typer.echo(
        json.dumps(
            {
                "api_keys": creds.api_keys,
                "participant_tokens": creds.participant_tokens,
                "enrollment_codes": creds.enrollment_codes,
            },
            indent=2,
        )
    )
    typer.echo(
        f"\nOpen {base}/docs, click Authorize and paste the admin key.\n"
        f"Try: curl -H 'Authorization: Bearer {creds.api_keys['admin']}' {base}/v1/studies\n"
        f"Enroll a phone: curl -X POST {base}/v1/enroll -H 'Content-Type: application/json' "
        f'-d \'{{"code": "{next(iter(creds.enrollment_codes.values()))}"}}\'\n'
    )
    if serve_after:
        _serve(settings, workers=1)


cli.add_typer(analyze, name="analyze")

protocol_cli = typer.Typer(help="Protocol documents: validate, JSON Schema, upload.")
cli.add_typer(protocol_cli, name="protocol")


@protocol_cli.command("validate")
def protocol_validate(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON.")],
) -> None:
    """Validate a protocol file offline; lists every problem with its path. Exit 1 if invalid."""
    from app.protocols.loading import ProtocolInvalid, parse_protocol

    try:
        protocol = parse_protocol(file.read_bytes())
    except ProtocolInvalid as exc:
        _fail(file, [(p.path, p.message) for p in exc.problems], exc)
    typer.echo(f"{file}: valid ({protocol.study.name})")
    _print_warnings(protocol)


@protocol_cli.command("schema")
def protocol_schema() -> None:
    """Print the protocol document's JSON Schema (for editors that validate YAML/JSON)."""
    from app.protocols.schema import protocol_json_schema

    typer.echo(json.dumps(protocol_json_schema(), indent=2))


@protocol_cli.command("upload")
def protocol_upload(
    study: Annotated[str, typer.Option(help="The study's slug.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON.")],
    activate: Annotated[bool, typer.Option(help="Make it the active version.")] = False,
    note: Annotated[str, typer.Option(help="What changed, and why.")] = "",
    apply_to: Annotated[
        str | None,
        typer.Option(
            help="Activate it for 'new' participants only, or for 'all' still in the study "
            "(an amendment: they move to it now). Implies --activate."
        ),
    ] = None,
) -> None:
    """Upload a protocol file as the study's next version."""
    from app.study_operations.protocol_versions import ApplyTo

    choices = {"new": ApplyTo.new_participants, "all": ApplyTo.all_participants}
    if apply_to is not None and apply_to not in choices:
        typer.secho(f"--apply-to is 'new' or 'all', not {apply_to!r}", fg="red", err=True)
        raise typer.Exit(2)

    from app.core.errors import DomainError
    from app.study_operations.protocol_versions import upload_version

    try:
        with _session_on_current_schema(_settings()) as session:
            row = _study_by_slug(session, study)
            version = upload_version(
                session,
                SystemClock(),
                CLI_ACTOR,
                row,
                file.read_bytes(),
                note=note,
                activate=activate or apply_to is not None,
                apply_to=choices[apply_to or "new"],
            )
            number, active = version.version, row.active_protocol_version
    except DomainError as exc:
        typer.secho(f"{file}: {exc.detail}", fg="red", err=True)
        for path, message in exc.field_errors:
            typer.echo(f"  {path or '(document)'}: {message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Uploaded {file} as version {number} of {study} (active version: {active}).")
    from app.protocols.loading import parse_protocol

    _print_warnings(parse_protocol(file.read_bytes()))


@cli.command("export")
def export(
    study: Annotated[str, typer.Option(help="The study's slug.")],
    dataset: Annotated[str, typer.Option(help="e.g. decisions, ema_answers, participants.")],
    output: Annotated[Path, typer.Option(help="The data file to write.")],
    format: Annotated[str, typer.Option(help="csv, ndjson or parquet.")] = "csv",
    participant: Annotated[
        list[str] | None, typer.Option(help="Only this participant id (repeatable).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="ISO 8601 time with offset.")] = None,
    end: Annotated[str | None, typer.Option(help="ISO 8601 time with offset.")] = None,
    protocol_version: Annotated[int | None, typer.Option(help="Only this version.")] = None,
) -> None:
    """Export a dataset to a file, with its data dictionary and provenance beside it
    (OUTPUT.dictionary.json). Audited like an export through the API."""
    import uuid
    from datetime import datetime

    from app.core.errors import DomainError
    from app.export.columns import Filters
    from app.export.formats import ExportFormat
    from app.export.service import prepare_export, stream_export

    try:
        export_format = ExportFormat(format)
        filters = Filters(
            tuple(uuid.UUID(p) for p in participant or ()),
            datetime.fromisoformat(start) if start else None,
            datetime.fromisoformat(end) if end else None,
            protocol_version,
        )
    except ValueError as exc:
        typer.secho(f"invalid option: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    for when in (filters.start, filters.end):
        if when is not None and when.tzinfo is None:
            typer.secho(
                "--start and --end need a UTC offset, e.g. 2026-01-01T00:00:00+00:00",
                fg="red",
                err=True,
            )
            raise typer.Exit(2)
    try:
        with _session_on_current_schema(_settings()) as session:
            row = _study_by_slug(session, study)
            prepared = prepare_export(
                session, SystemClock(), CLI_ACTOR, row, dataset, export_format, filters
            )
            session.commit()
            with output.open("wb") as out:
                for chunk in stream_export(session, row, prepared):
                    out.write(chunk)
    except DomainError as exc:
        typer.secho(exc.detail, fg="red", err=True)
        raise typer.Exit(1) from exc
    sidecar = output.with_name(output.name + ".dictionary.json")
    sidecar.write_text(
        json.dumps(
            {"data_dictionary": prepared.dictionary, "provenance": prepared.provenance}, indent=2
        )
    )
    typer.echo(f"Wrote {output} and {sidecar}.")


def main() -> None:
    cli()


@cli.command("simulate")
def simulate_protocol(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON.")],
    out: Annotated[
        Path, typer.Option(help="Directory for report.json, report.html, decisions.csv.")
    ],
    participants: Annotated[int, typer.Option(min=1, max=5000)] = 50,
    days: Annotated[
        int | None,
        typer.Option(min=1, max=366, help="Days to simulate (default: the study's duration)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="The same seed gives the same output.")] = 1,
    behaviour: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Behaviour model (YAML); default built in."),
    ] = None,
    power: Annotated[
        bool,
        typer.Option(
            "--power",
            help="Also report the power of the WCLS test of the fully marginal effect, and the "
            "participants needed for 80%, by the formula of Liao et al. (2016) and by "
            "repeated simulation (slow: see --power-replicates).",
        ),
    ] = False,
    power_replicates: Annotated[
        int,
        typer.Option(
            min=1,
            max=10_000,
            help="Simulated trials at each number of participants (this run counts as one).",
        ),
    ] = 20,
    power_outcome: Annotated[
        str | None,
        typer.Option(help="Proximal outcome to power for (default: the protocol's first)."),
    ] = None,
    power_check: Annotated[
        bool,
        typer.Option(
            help="Simulate at the number of participants the formula needs, to see 80% "
            "come out (another --power-replicates trials of that size).",
        ),
    ] = True,
) -> None:
    """Run a protocol for synthetic participants on a virtual clock (the real scheduling,
    decision engine, outbox and ingestion, over a scratch database) and report what it did."""
    import logging
    import time

    from app.core.errors import InvalidInputError
    from app.simulation.behaviour import BehaviourInvalidError, load_behaviour
    from app.simulation.report import write_outputs
    from app.simulation.runner import simulate
    from app.study_operations.protocol_versions import validate_document

    logging.getLogger("app").setLevel(logging.ERROR)  # a simulated day misses nothing worth a line
    try:
        model = load_behaviour(behaviour)
    except BehaviourInvalidError as exc:
        _fail(behaviour, exc.problems, exc)
    started = time.perf_counter()
    source = file.read_text("utf-8")
    try:
        if days is None:
            days = min(366, validate_document(source).study.duration_days)
        sim = simulate(source, participants=participants, days=days, seed=seed, behaviour=model)
    except InvalidInputError as exc:
        _fail(file, exc.field_errors, exc)
    except BehaviourInvalidError as exc:  # a model that does not fit this protocol
        _fail(behaviour or "the default behaviour model", exc.problems, exc)
    outcome_column = None
    if power:
        from app.simulation.power_study import outcome_column_for

        try:
            outcome_column = outcome_column_for(sim.protocol, power_outcome)
        except ValueError as exc:
            sim.close()
            typer.secho(f"--power: {exc}", fg="red", err=True)
            raise typer.Exit(2) from exc
    try:
        report = write_outputs(sim, out, seconds=time.perf_counter() - started)
    finally:
        sim.close()
    never = report["rules"]["never_fired"]
    typer.echo(
        f"{participants} participants x {days} days in {report['simulation']['seconds']} s; "
        f"wrote {out}/report.json, report.html, decisions.csv"
        + (f"; rules that never fired: {', '.join(never)}" if never else "")
    )
    if outcome_column is not None:
        _simulate_power(
            file.read_text("utf-8"),
            sim.protocol,
            model,
            out,
            report,
            participants=participants,
            days=days,
            seed=seed,
            replicates=power_replicates,
            outcome=power_outcome,
            outcome_column=outcome_column,
            check=power_check,
        )


def _simulate_power(
    source: str,
    protocol: "Protocol",
    behaviour: "Behaviour",
    out: Path,
    report: dict[str, Any],
    *,
    participants: int,
    days: int,
    seed: int,
    replicates: int,
    outcome: str | None,
    outcome_column: str,
    check: bool,
) -> None:
    """The report's power section, from this run and further simulated trials."""
    from app.simulation.power_study import analyse_export, power_section, summary_line
    from app.simulation.report import write_report

    first = analyse_export(
        out / "decisions.csv",
        outcome_column=outcome_column,
        seed=seed,
        participants=participants,
    )
    try:
        section = power_section(
            source,
            protocol,
            behaviour,
            participants=participants,
            days=days,
            seed=seed,
            replicates=replicates,
            outcome=outcome,
            check=check,
            first=first,
            progress=lambda message: typer.echo(message, err=True),
        )
    except ValueError as exc:
        typer.secho(f"--power: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    report["power"] = section
    write_report(report, out)
    typer.echo(summary_line(section))


def _print_warnings(protocol: "Protocol") -> None:
    """What is allowed but probably not meant; never an error (the exit code stays 0)."""
    from app.protocols.warnings import protocol_warnings

    warnings = protocol_warnings(protocol)
    if warnings:
        typer.secho(f"{len(warnings)} warning(s):", fg="yellow", err=True)
    for warning in warnings:
        typer.echo(f"  {warning.path or '(document)'}: {warning.message}", err=True)


def _fail(source: object, problems: list[tuple[str, str]], cause: Exception) -> NoReturn:
    """Exit 1, listing every problem of a file with its path."""
    typer.secho(f"{source}: {len(problems)} problem(s)", fg="red", err=True)
    for path, message in problems:
        typer.echo(f"  {path or '(document)'}: {message}", err=True)
    raise typer.Exit(1) from cause


def _study_by_slug(session: Session, slug: str) -> "Study":
    """The study, or exit 2 naming the slug."""
    import sqlalchemy as sa

    from app.studies.models import Study

    row = session.scalar(sa.select(Study).where(Study.slug == slug))
    if row is None:
        typer.secho(f"no study with slug '{slug}'", fg="red", err=True)
        raise typer.Exit(2)
    return row
