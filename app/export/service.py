"""Running an export: the rows, the data dictionary, the provenance and the audit record."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app import __version__
from app.audit.service import Actor, record
from app.core.clock import Clock
from app.core.db import lift_statement_timeout
from app.core.errors import InvalidInputError, NotFoundError
from app.export.columns import Column, Filters
from app.export.datasets import DATASETS, Dataset
from app.export.formats import WRITERS, ExportFormat
from app.export.protocols import covered_versions
from app.protocols.store import load_protocol
from app.studies.models import Study


def get_dataset(name: str) -> Dataset:
    dataset = DATASETS.get(name)
    if dataset is None:
        raise NotFoundError(
            f"no dataset '{name}'; the datasets are: {', '.join(sorted(DATASETS))}",
            code="dataset_not_found",
        )
    return dataset


def check_filters(filters: Filters) -> None:
    if filters.start and filters.end and filters.start >= filters.end:
        raise InvalidInputError(
            "the time range is empty or inverted: start must be before end",
            field="start",
            code="inverted_time_range",
        )


@dataclass(frozen=True)
class PreparedExport:
    dataset: Dataset
    format: ExportFormat
    filters: Filters
    columns: list[Column]
    dictionary: dict[str, Any]
    provenance: dict[str, Any]
    exported_at: datetime

    @property
    def filename(self) -> str:
        return f"{self.provenance['study_slug']}-{self.dataset.name}.{self.format.value}"


def _protocol_definitions(session: Session, study: Study, filters: Filters) -> list[dict[str, Any]]:
    """Each protocol version's definitions of tailoring variables and outcomes."""
    definitions = []
    for row in covered_versions(session, study, filters):
        protocol = load_protocol(row)
        definitions.append(
            {
                "version": row.version,
                "content_hash": row.content_hash,
                "tailoring_variables": [
                    v.model_dump(mode="json") for v in protocol.tailoring_variables
                ],
                "proximal_outcomes": [
                    o.model_dump(mode="json") for o in protocol.proximal_outcomes
                ],
                "intervention_options": [
                    {"id": o.id, "category": o.category} for o in protocol.intervention_options
                ],
            }
        )
    return definitions


def prepare_export(
    session: Session,
    clock: Clock,
    actor: Actor,
    study: Study,
    dataset_name: str,
    export_format: ExportFormat,
    filters: Filters,
    *,
    audit: bool = True,
) -> PreparedExport:
    """Check the request, describe the export and audit it (the caller commits)."""
    dataset = get_dataset(dataset_name)
    check_filters(filters)
    columns = dataset.columns(session, study, filters)
    protocols = _protocol_definitions(session, study, filters)
    provenance = {
        "kairos_version": __version__,
        "exported_at": clock.now().isoformat(),
        "exported_by": actor.label,
        "study_id": str(study.id),
        "study_slug": study.slug,
        "dataset": dataset.name,
        "format": export_format.value,
        "filters": filters.as_dict(),
        "protocol_versions": [p["version"] for p in protocols],
    }
    dictionary = {
        "dataset": dataset.name,
        "description": dataset.description,
        "columns": [c.as_dict() for c in columns],
        "protocols": protocols,
    }
    if audit:
        _audit(session, clock, actor, study, dataset, export_format, filters)
    return PreparedExport(
        dataset, export_format, filters, columns, dictionary, provenance, clock.now()
    )


def _audit(
    session: Session,
    clock: Clock,
    actor: Actor,
    study: Study,
    dataset: Dataset,
    export_format: ExportFormat,
    filters: Filters,
) -> None:
    record(
        session,
        clock,
        actor,
        f"export.{dataset.name}",
        resource_type="export",
        study_id=study.id,
        detail={"format": export_format.value, "filters": filters.as_dict()},
    )


def stream_export(session: Session, study: Study, prepared: PreparedExport) -> Iterator[bytes]:
    # An export is a long read at any size; no statement timeout for its transaction.
    lift_statement_timeout(session.connection())
    rows = prepared.dataset.rows(
        session, study, prepared.filters, prepared.columns, prepared.exported_at
    )
    metadata = {
        "kairos:data_dictionary": prepared.dictionary,
        "kairos:provenance": prepared.provenance,
    }
    yield from WRITERS[prepared.format](prepared.columns, rows, metadata)
