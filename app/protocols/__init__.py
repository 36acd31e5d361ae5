"""Study protocol documents: models, parsing with complete validation, CEL checks and the
JSON Schema. See docs/protocols.md for the coordinator-facing reference."""

from app.protocols.document import Protocol
from app.protocols.loading import parse_protocol
from app.protocols.problems import ProtocolInvalid, ProtocolProblem

__all__ = ["Protocol", "ProtocolInvalid", "ProtocolProblem", "parse_protocol"]
