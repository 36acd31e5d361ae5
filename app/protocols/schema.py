"""The JSON Schema of protocol documents, for editors and `kairos protocol schema`."""

from typing import Any

from app.protocols.document import Protocol
from app.protocols.instruments import instrument_names

SCHEMA_ID = "urn:kairos:schema:protocol:1"


def protocol_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a protocol document. It checks structure only; the semantic
    checks (references, CEL, times) need `kairos protocol validate`."""
    schema = Protocol.model_json_schema(mode="validation")
    questionnaires = schema["properties"]["questionnaires"]
    questionnaires["items"] = {
        "anyOf": [questionnaires["items"], {"$ref": "#/$defs/InstrumentInclude"}]
    }
    schema["$defs"]["InstrumentInclude"] = _include_schema(schema["$defs"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Kairos study protocol",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def _include_schema(defs: dict[str, Any]) -> dict[str, Any]:
    """`{include: <instrument>}`: a questionnaire from the instrument library."""
    fields = defs["Questionnaire"]["properties"]
    return {
        "title": "InstrumentInclude",
        "description": "A questionnaire from the instrument library, by name, with optional "
        "overrides (docs/protocols.md, Instrument library).",
        "type": "object",
        "properties": {
            "include": {"enum": list(instrument_names()), "description": "The instrument."},
            "id": fields["id"],
            "title": fields["title"],
            "stratify": fields["stratify"],
        },
        "required": ["include"],
        "additionalProperties": False,
    }
