"""One pure ASGI middleware per request: a request id, and (when metrics are on) a count and
the latency by route template and status class.

It is the hot path of ingestion, so it does little: two clock reads, one header scan, a
dictionary look-up of the already labelled metric children. The route label is the matched
route's template (``/v1/studies/{study_id}``, never a raw path with ids); requests that
match no route are counted under ``unmatched``. FastAPI puts the route in the scope for
its API routes only; for plain Starlette routes (``/docs``, ``/redoc``, ``/openapi.json``)
the template is found from the matched endpoint, once per endpoint.
"""

import time
from typing import Any

from prometheus_client.metrics import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.metrics import HTTP_DURATION, HTTP_REQUESTS
from app.observability.logs import REQUEST_ID_HEADER, request_id_from, request_id_var

_HEADER_NAME = REQUEST_ID_HEADER.lower().encode()
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


class RequestObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: bool) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._templates: dict[Any, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == _HEADER_NAME:
                incoming = value
                break
        request_id = request_id_from(incoming)
        # Not reset on the way out: each request runs in its own task, and the handler of
        # an unexpected error (outside this middleware) logs with the id still set.
        request_id_var.set(request_id)
        header = (_HEADER_NAME, request_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        if not self.metrics:
            await self.app(scope, receive, send_with_id)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or self._endpoint_template(scope)
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        key = (method, template, f"{status // 100}xx")
        children = self._children.get(key)
        if children is None:
            counter: Counter = HTTP_REQUESTS.labels(*key)
            histogram: Histogram = HTTP_DURATION.labels(method, template)
            children = self._children[key] = (counter, histogram)
        children[0].inc()
        children[1].observe(seconds)

    def _endpoint_template(self, scope: Scope) -> str:
        """The path template of the plain route whose endpoint handled the request (the
        docs pages and the OpenAPI document), else ``unmatched``."""
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return UNMATCHED
        template = self._templates.get(endpoint)
        if template is None:
            router = scope.get("router") or scope.get("app")
            template = next(
                (
                    route.path
                    for route in getattr(router, "routes", ())
                    if getattr(route, "endpoint", None) is endpoint
                    and isinstance(getattr(route, "path", None), str)
                ),
                UNMATCHED,
            )
            self._templates[endpoint] = template
        return template
