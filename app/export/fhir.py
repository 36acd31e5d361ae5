"""FHIR R4 export in the Bulk Data NDJSON layout: one file per resource type, one resource
per line, streamed a page at a time like the other exports.

- ``Questionnaire``: each questionnaire of each protocol version of the study, canonical
  ``urn:kairos:<study slug>:questionnaire:<id>`` with its version; items by type, required
  when not optional, choices as answerOption codings, branching as ``enableWhen`` where the
  CEL condition is a simple comparison of an earlier answer (joined by all && or all ||),
  else in an extension carrying the CEL text.
- ``QuestionnaireResponse``: each EMA response; ``questionnaire`` is the canonical with
  its version, ``subject`` the pseudonymous participant (an identifier, never a name),
  ``authored`` the answer time with the phone's UTC offset, one item per answered item
  (linkId = item id) with a typed answer. Scores are not items: they are left out.
- ``Observation``: pain ratings (items with id ``pain``, LOINC 72514-3), and wearable
  summaries: steps (LOINC 55423-8), sleep duration (93832-4, minutes) and resting heart
  rate (40443-4, /min), with UCUM units and the summary's period.
"""

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.ema.models import EmaAnswer, EmaResponse
from app.export.columns import Filters
from app.export.protocols import covered_versions
from app.participants.models import Participant
from app.protocols.questionnaires import (
    DurationItem,
    FreeTextItem,
    Item,
    MultipleChoiceItem,
    NumericRatingItem,
    Questionnaire,
    SingleChoiceItem,
    YesNoItem,
)
from app.protocols.store import load_protocol
from app.sensing.models import WearableSummary
from app.studies.models import Study

RESOURCE_TYPES = ("Questionnaire", "QuestionnaireResponse", "Observation")
MEDIA_TYPE = "application/fhir+ndjson"
STREAM_BATCH = 2_000
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CEL_EXTENSION = "urn:kairos:fhir:StructureDefinition:enable-when-cel"
PAIN_ITEM = "pain"

# Wearable metrics exported, with their LOINC code, display, UCUM unit and category.
WEARABLE_CODES: dict[str, tuple[str, str, str, str, str]] = {
    "steps": ("55423-8", "Number of steps in unspecified time Pedometer", "{steps}", "steps",
              "activity"),
    "sleep_minutes": ("93832-4", "Sleep duration", "min", "min", "activity"),
    "resting_heart_rate": ("40443-4", "Heart rate --resting", "/min", "beats/minute",
                           "vital-signs"),
}  # fmt: skip


def canonical(study: Study, questionnaire_id: str) -> str:
    return f"urn:kairos:{study.slug}:questionnaire:{questionnaire_id}"


def subject(study: Study, code: str) -> dict[str, Any]:
    """The pseudonymous participant: a logical reference by the study's code."""
    return {
        "identifier": {"system": f"urn:kairos:{study.slug}:participant", "value": code},
        "display": f"participant {code}",
    }


def lines(resources: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for resource in resources:
        yield json.dumps(resource, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


# Questionnaire ---------------------------------------------------------------------------


def questionnaires(session: Session, study: Study, filters: Filters) -> Iterator[dict[str, Any]]:
    seen: set[tuple[str, int]] = set()
    for row in covered_versions(session, study, filters):
        for questionnaire in load_protocol(row).questionnaires:
            key = (questionnaire.id, questionnaire.version)
            if key in seen:
                continue
            seen.add(key)
            yield questionnaire_resource(study, questionnaire)


def questionnaire_resource(study: Study, questionnaire: Questionnaire) -> dict[str, Any]:
    return {
        "resourceType": "Questionnaire",
        # FHIR ids allow letters, digits, "-" and "." only.
        "id": f"{questionnaire.id}-v{questionnaire.version}".replace("_", "-"),
        "url": canonical(study, questionnaire.id),
        "version": str(questionnaire.version),
        "name": re.sub(r"[^A-Za-z0-9_]", "_", questionnaire.id),
        "title": questionnaire.title,
        "status": "active",
        "subjectType": ["Patient"],
        "item": [_item(item, questionnaire) for item in questionnaire.items],
        # An instrument of the library carries its source and terms of use.
        **({"description": questionnaire.citation} if questionnaire.citation else {}),
        **({"copyright": questionnaire.terms} if questionnaire.terms else {}),
    }


def _item(item: Item, questionnaire: Questionnaire) -> dict[str, Any]:
    out: dict[str, Any] = {
        "linkId": item.id,
        "text": item.text,
        "type": _item_type(item),
        "required": not item.optional,
    }
    if isinstance(item, SingleChoiceItem | MultipleChoiceItem):
        system = f"urn:kairos:questionnaire:{questionnaire.id}:{item.id}"
        out["answerOption"] = [
            {"valueCoding": {"system": system, "code": c.value, "display": c.label}}
            for c in item.choices
        ]
        out["repeats"] = isinstance(item, MultipleChoiceItem)
    if isinstance(item, FreeTextItem):
        out["maxLength"] = item.max_length
    if item.enable_when is not None:
        simple = _enable_when(item.enable_when, questionnaire)
        if simple is not None:
            conditions, behaviour = simple
            out["enableWhen"] = conditions
            if len(conditions) > 1:
                out["enableBehavior"] = behaviour
        else:
            out["extension"] = [{"url": CEL_EXTENSION, "valueString": item.enable_when}]
    return out


def _item_type(item: Item) -> str:
    if isinstance(item, NumericRatingItem):
        return "integer" if item.is_integer_scale else "decimal"
    if isinstance(item, DurationItem):
        return "integer"
    if isinstance(item, YesNoItem):
        return "boolean"
    if isinstance(item, SingleChoiceItem | MultipleChoiceItem):
        return "choice"
    return "text"


_COMPARISON = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*(==|!=|>=|<=|>|<)\s*(.+?)\s*$")
_OPERATORS = {"==": "=", "!=": "!=", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}


def _enable_when(
    condition: str, questionnaire: Questionnaire
) -> tuple[list[dict[str, Any]], str] | None:
    """FHIR enableWhen for a condition made of simple comparisons of earlier answers with
    literals, all joined by && (behaviour all) or all by || (any); else None."""
    if "&&" in condition and "||" in condition:
        return None
    behaviour, parts = (
        ("any", condition.split("||"))
        if "||" in condition
        else (
            "all",
            condition.split("&&"),
        )
    )
    conditions = []
    for part in parts:
        match = _COMPARISON.match(part)
        if match is None:
            return None
        name, operator, literal = match.groups()
        item = questionnaire.find_item(name)
        answer = _literal(literal, item, questionnaire)
        if item is None or answer is None:
            return None
        conditions.append({"question": name, "operator": _OPERATORS[operator], **answer})
    return conditions, behaviour


def _literal(text: str, item: Item | None, questionnaire: Questionnaire) -> dict[str, Any] | None:
    if isinstance(item, YesNoItem) and text in ("true", "false"):
        return {"answerBoolean": text == "true"}
    if isinstance(item, NumericRatingItem | DurationItem):
        try:
            number = float(text)
        except ValueError:
            return None
        if isinstance(item, DurationItem) or (
            isinstance(item, NumericRatingItem) and item.is_integer_scale and number.is_integer()
        ):
            return {"answerInteger": int(number)}
        return {"answerDecimal": number}
    if isinstance(item, SingleChoiceItem) and re.fullmatch(r"'[^']*'|\"[^\"]*\"", text):
        code = text[1:-1]
        system = f"urn:kairos:questionnaire:{questionnaire.id}:{item.id}"
        return {"answerCoding": {"system": system, "code": code}}
    return None


# QuestionnaireResponse -------------------------------------------------------------------


def _filtered(stmt: Any, column_pid: Any, column_time: Any, study: Study, f: Filters) -> Any:
    if f.participant_ids:
        stmt = stmt.where(column_pid.in_(f.participant_ids))
    if f.start is not None:
        stmt = stmt.where(column_time >= f.start)
    if f.end is not None:
        stmt = stmt.where(column_time < f.end)
    return stmt


def questionnaire_responses(
    session: Session, study: Study, filters: Filters
) -> Iterator[dict[str, Any]]:
    items = _items_by_version(session, study, filters)
    r, a = EmaResponse, EmaAnswer
    stmt = (
        sa.select(
            r.id,
            Participant.code,
            r.questionnaire_id,
            r.questionnaire_version,
            r.protocol_version,
            r.answered_at,
            r.utc_offset_minutes,
            a.item_id,
            a.value,
        )
        .join(Participant, Participant.id == r.participant_id)
        .join(a, a.response_id == r.id)
        .where(r.study_id == study.id)
        .order_by(r.id, a.item_id)
    )
    if filters.protocol_version is not None:
        stmt = stmt.where(r.protocol_version == filters.protocol_version)
    stmt = _filtered(stmt, r.participant_id, r.answered_at, study, filters)
    current: list[Any] | None = None
    answers: list[tuple[str, Any]] = []
    for row in session.execute(stmt.execution_options(yield_per=STREAM_BATCH)):
        if current is not None and current[0] != row[0]:
            yield _response(study, current, answers, items)
            answers = []
        current = list(row[:7])
        answers.append((row[7], row[8]))
    if current is not None:
        yield _response(study, current, answers, items)


def _items_by_version(
    session: Session, study: Study, filters: Filters
) -> dict[tuple[int, str], Questionnaire]:
    found = {}
    for row in covered_versions(session, study, filters):
        for questionnaire in load_protocol(row).questionnaires:
            found[(row.version, questionnaire.id)] = questionnaire
    return found


def _response(
    study: Study,
    head: Sequence[Any],
    answers: Sequence[tuple[str, Any]],
    questionnaires: Mapping[tuple[int, str], Questionnaire],
) -> dict[str, Any]:
    response_id, code, questionnaire_id, version, protocol_version, answered_at, offset = head
    questionnaire = questionnaires.get((protocol_version, questionnaire_id))
    order = {i.id: n for n, i in enumerate(questionnaire.items)} if questionnaire else {}
    items = []
    for item_id, value in sorted(answers, key=lambda pair: order.get(pair[0], len(order))):
        item = questionnaire.find_item(item_id) if questionnaire else None
        if item is None:
            continue  # a score, or an item of an unknown version: not an answer
        items.append({"linkId": item_id, "answer": _answer(item, value, questionnaire_id)})
    local = answered_at.astimezone(timezone(timedelta(minutes=offset)))
    return {
        "resourceType": "QuestionnaireResponse",
        "id": str(response_id),
        "questionnaire": f"{canonical(study, questionnaire_id)}|{version}",
        "status": "completed",
        "subject": subject(study, code),
        "authored": local.isoformat(),
        "item": items,
    }


def _answer(item: Item, value: Any, questionnaire_id: str) -> list[dict[str, Any]]:
    if isinstance(item, YesNoItem):
        return [{"valueBoolean": bool(value)}]
    if isinstance(item, NumericRatingItem):
        if item.is_integer_scale:
            return [{"valueInteger": int(value)}]
        return [{"valueDecimal": float(value)}]
    if isinstance(item, DurationItem):
        return [{"valueInteger": int(value)}]
    if isinstance(item, SingleChoiceItem | MultipleChoiceItem):
        system = f"urn:kairos:questionnaire:{questionnaire_id}:{item.id}"
        values = value if isinstance(value, list) else [value]
        return [{"valueCoding": {"system": system, "code": str(v)}} for v in values]
    return [{"valueString": str(value)}]


# Observation -----------------------------------------------------------------------------


def observations(session: Session, study: Study, filters: Filters) -> Iterator[dict[str, Any]]:
    yield from _pain_observations(session, study, filters)
    yield from _wearable_observations(session, study, filters)


def _category(code: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": CATEGORY, "code": code}]}]


def _pain_observations(
    session: Session, study: Study, filters: Filters
) -> Iterator[dict[str, Any]]:
    r, a = EmaResponse, EmaAnswer
    stmt = (
        sa.select(a.id, Participant.code, a.answered_at, r.utc_offset_minutes, a.numeric_value,
                  r.id)
        .join(r, r.id == a.response_id)
        .join(Participant, Participant.id == r.participant_id)
        .where(r.study_id == study.id, a.item_id == PAIN_ITEM, a.numeric_value.is_not(None))
        .order_by(a.id)
    )  # fmt: skip
    if filters.protocol_version is not None:
        stmt = stmt.where(r.protocol_version == filters.protocol_version)
    stmt = _filtered(stmt, r.participant_id, a.answered_at, study, filters)
    for answer_id, code, at, offset, value, response_id in session.execute(
        stmt.execution_options(yield_per=STREAM_BATCH)
    ):
        yield {
            "resourceType": "Observation",
            "id": f"pain-{answer_id}",
            "status": "final",
            "category": _category("survey"),
            "code": {
                "coding": [
                    {
                        "system": LOINC,
                        "code": "72514-3",
                        "display": "Pain severity - 0-10 verbal numeric rating [Score] - "
                        "Reported",
                    }
                ],
                "text": "Pain intensity (0-10)",
            },
            "subject": subject(study, code),
            "effectiveDateTime": _local(at, offset),
            "valueQuantity": {"value": value, "unit": "{score}", "system": UCUM,
                              "code": "{score}"},
            "derivedFrom": [{"reference": f"QuestionnaireResponse/{response_id}"}],
        }  # fmt: skip


def _local(at: datetime, offset: int) -> str:
    return at.astimezone(timezone(timedelta(minutes=offset))).isoformat()


def _wearable_observations(
    session: Session, study: Study, filters: Filters
) -> Iterator[dict[str, Any]]:
    w = WearableSummary
    stmt = (
        sa.select(w.id, Participant.code, w.metric, w.start_at, w.end_at, w.value)
        .join(Participant, Participant.id == w.participant_id)
        .where(w.study_id == study.id, w.metric.in_(list(WEARABLE_CODES)))
        .order_by(w.id)
    )
    stmt = _filtered(stmt, w.participant_id, w.end_at, study, filters)
    for summary_id, code, metric, start, end, value in session.execute(
        stmt.execution_options(yield_per=STREAM_BATCH)
    ):
        loinc, display, unit_code, unit, category = WEARABLE_CODES[metric]
        yield {
            "resourceType": "Observation",
            "id": f"wearable-{summary_id}",
            "status": "final",
            "category": _category(category),
            "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}]},
            "subject": subject(study, code),
            "effectivePeriod": {"start": _utc(start), "end": _utc(end)},
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit_code},
        }


def _utc(at: datetime) -> str:
    return at.astimezone(UTC_ZONE).isoformat()


UTC_ZONE = UTC

GENERATORS = {
    "Questionnaire": questionnaires,
    "QuestionnaireResponse": questionnaire_responses,
    "Observation": observations,
}
