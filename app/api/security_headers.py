"""Security headers on every response (a pure ASGI middleware: a few appended headers).

- ``X-Content-Type-Options: nosniff`` everywhere: browsers take the content type as sent.
- ``Cache-Control: no-store`` on every ``/v1`` response and on every response to a request
  that carries credentials (``Authorization`` or ``X-API-Key``, e.g. an admin's
  ``/readyz``). That covers every response holding a token, a key or participant data (the
  enrollment token, API keys, exports, the audit log ...), including errors, and leaves
  the public, cacheable pages alone (``/healthz``, ``/openapi.json``, the docs). A
  ``Cache-Control`` a route set itself is replaced: nothing private is cached.
- The interactive docs (``/docs``, ``/redoc``, the OAuth2 redirect page) may not be framed
  (``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'``: no clickjacking of an
  admin's session) and get a Content-Security-Policy that admits what those pages load and
  nothing else: scripts and styles from the origins their own tags name (FastAPI takes
  Swagger UI and ReDoc from a CDN), inline scripts only by the SHA-256 of the ones the page
  holds, requests to this origin only. The policy is computed from the page as served, so
  it stays right when FastAPI's pages, the CDN or the root path change.
- ``Strict-Transport-Security: max-age=N`` everywhere when KAIROS_HSTS_SECONDS is set (the
  service is reached over HTTPS only, e.g. behind a TLS-terminating proxy).
"""

import base64
import hashlib
import re
from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")
FRAME_DENY = (b"x-frame-options", b"DENY")
_CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-api-key"})

_SCRIPT = re.compile(rb"<script\b([^>]*)>(.*?)</script\s*>", re.IGNORECASE | re.DOTALL)
_SRC = re.compile(rb"""\bsrc\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_LINK = re.compile(rb"<link\b([^>]*)>", re.IGNORECASE)
_HREF = re.compile(rb"""\bhref\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_REL = re.compile(rb"""\brel\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
# Stylesheets from Google Fonts (ReDoc) load their font files from here.
_FONT_ORIGINS = ("https://fonts.gstatic.com",)


def docs_csp(html: bytes) -> str:
    """The Content-Security-Policy for one of the docs pages, from the page itself."""
    scripts: dict[str, None] = {"'self'": None}
    styles: dict[str, None] = {"'self'": None}
    images: dict[str, None] = {"'self'": None, "data:": None}
    for attributes, body in _SCRIPT.findall(html):
        src = _SRC.search(attributes)
        if src is not None:
            scripts[_origin(src.group(1))] = None
        elif body.strip():
            digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
            scripts[f"'sha256-{digest}'"] = None
    for attributes in _LINK.findall(html):
        href, rel = _HREF.search(attributes), _REL.search(attributes)
        if href is None:
            continue
        kind = rel.group(1).lower() if rel is not None else b""
        if b"stylesheet" in kind:
            styles[_origin(href.group(1))] = None
        elif b"icon" in kind:
            images[_origin(href.group(1))] = None
    directives = [
        "default-src 'none'",
        "script-src " + " ".join(scripts),
        # Swagger UI and ReDoc set inline styles as they render.
        "style-src " + " ".join(styles) + " 'unsafe-inline'",
        "img-src " + " ".join(images),
        "font-src 'self' data: " + " ".join(_FONT_ORIGINS),
        "connect-src 'self'",
        # ReDoc runs its search index in a worker made from a blob.
        "worker-src 'self' blob:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ]
    return "; ".join(directives)


def _origin(url: bytes) -> str:
    parts = urlsplit(url.decode("latin-1"))
    if not parts.scheme or not parts.netloc:
        return "'self'"
    return f"{parts.scheme}://{parts.netloc}"


class SecurityHeadersMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        docs_paths: Collection[str] = (),
        hsts_seconds: int = 0,
        private_prefix: str = "/v1",
    ) -> None:
        self.app = app
        self.docs_paths = frozenset(docs_paths)
        self.private_prefix = private_prefix
        common = [NOSNIFF]
        if hsts_seconds > 0:
            common.append((b"strict-transport-security", f"max-age={hsts_seconds}".encode()))
        self.public_headers = common
        self.private_headers = [*common, NO_STORE]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in self.docs_paths:
            await self._docs_page(scope, receive, send)
            return
        private = path.startswith(self.private_prefix) or any(
            name in _CREDENTIAL_HEADERS for name, _ in scope["headers"]
        )
        extra = self.private_headers if private else self.public_headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                if private:
                    headers = [h for h in headers if h[0].lower() != b"cache-control"]
                message["headers"] = [*headers, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs_page(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Hold the (small) page until its body is complete: its CSP depends on it."""
        start: Message | None = None
        body = bytearray()

        async def send_buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            csp = docs_csp(bytes(body))
            start["headers"] = [
                *start.get("headers", []),
                *self.public_headers,
                FRAME_DENY,
                (b"content-security-policy", csp.encode()),
            ]
            await send(start)
            await send({"type": "http.response.body", "body": bytes(body)})

        await self.app(scope, receive, send_buffered)
