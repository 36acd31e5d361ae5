"""Logging: a request id in every line of a request, and text or JSON lines.

The request id comes from the client's ``X-Request-ID`` when it is sane (1-128 visible
characters of ``A-Z a-z 0-9 . _ : -``), else a new one is made (32 random hex digits). The
API returns it as ``X-Request-ID`` (app/api/observability.py) and keeps it in a context
variable for the request, which ``RequestIdFilter`` puts on every log record (threads that
run the route inherit it). Lines logged outside a request (the worker) carry
``request_id: null``.

``KAIROS_LOG_FORMAT=json`` writes one JSON object per line (python-json-logger): ``time``
(UTC, ISO 8601), ``level``, ``logger``, ``message``, ``request_id`` and, when there is one,
``exc_info`` (the traceback), plus any ``extra`` fields.
"""

import logging
import logging.config
import os
import re
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("kairos_request_id", default=None)


def request_id_from(value: bytes | None) -> str:
    """The client's request id when it is sane, else a new one."""
    if value is not None:
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if _SANE_REQUEST_ID.fullmatch(text):
            return text
    return os.urandom(16).hex()  # 128 random bits; a quarter of uuid4()'s cost


class RequestIdFilter(logging.Filter):
    """Puts the current request's id (or None) on every record as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class KairosJsonFormatter(JsonFormatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(
            ["levelname", "name", "message", "request_id"],
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            # uvicorn adds a coloured copy of its messages; and no taskName.
            reserved_attrs=[*RESERVED_ATTRS, "color_message", "taskName"],
        )


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def logging_config(level: str, log_format: str) -> dict[str, Any]:
    """A dictConfig for the root logger and uvicorn's loggers (passed to uvicorn.run, which
    applies it in every server process)."""
    formatter: dict[str, Any] = (
        {"()": KairosJsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "kairos",
        "filters": ["request_id"],
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {"kairos": formatter},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # uvicorn's own loggers go through the root handler, in the same format.
            name: {"handlers": [], "level": level.upper(), "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure_logging(level: str, log_format: str) -> None:
    logging.config.dictConfig(logging_config(level, log_format))
