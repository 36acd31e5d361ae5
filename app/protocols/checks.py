"""All semantic checks of a structurally valid protocol."""

from app.protocols.content_checks import check_content
from app.protocols.document import Protocol
from app.protocols.dose_checks import check_dose
from app.protocols.expression_checks import check_expressions
from app.protocols.learning_checks import check_learning
from app.protocols.problems import Problems, ProtocolProblem
from app.protocols.timing_checks import check_timing


def check_protocol(protocol: Protocol) -> list[ProtocolProblem]:
    """Every semantic problem of the protocol (empty when it is valid)."""
    problems = Problems()
    check_content(protocol, problems)
    check_timing(protocol, problems)
    check_expressions(protocol, problems)
    check_learning(protocol, problems)
    check_dose(protocol, problems)
    return problems.items
