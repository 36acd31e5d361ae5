"""Domain errors. Domain code raises these; the HTTP edge turns them into problem details."""

from typing import Any


class DomainError(Exception):
    """Base class.

    ``field`` names the input at fault, when there is one; ``field_errors`` lists several
    (field, reason) pairs when one request has many faults (e.g. a protocol document);
    ``code`` is a stable, machine-readable name for the problem that clients may branch on.
    """

    status_code = 400
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        field: str | None = None,
        code: str | None = None,
        field_errors: list[tuple[str, str]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.code = code
        self.field_errors = field_errors or []
        self.extra = extra


class NotFoundError(DomainError):
    status_code = 404
    title = "Not found"


class ConflictError(DomainError):
    status_code = 409
    title = "Conflict"


class InvalidInputError(DomainError):
    status_code = 422
    title = "Invalid input"


class GoneError(DomainError):
    """A credential or code that existed but can no longer be used."""

    status_code = 410
    title = "Gone"


class TooLargeError(DomainError):
    """More than a configured limit allows; ``limit`` (an extra) says how much is allowed."""

    status_code = 413
    title = "Payload too large"
