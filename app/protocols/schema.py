"""The JSON Schema of protocol documents, for editors and `kairos protocol schema`."""

from typing import Any

from app.protocols.document import Protocol

SCHEMA_ID = "urn:kairos:schema:protocol:1"


def protocol_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of a protocol document. It checks structure only; the semantic
    checks (references, CEL, times) need `kairos protocol validate`."""
    schema = Protocol.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Kairos study protocol",
        **{k: v for k, v in schema.items() if k != "title"},
    }
