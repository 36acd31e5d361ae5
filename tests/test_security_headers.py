"""Security headers, through the real app: nosniff everywhere, no-store on private
responses, unframeable docs with a CSP that admits what they load, HSTS when configured."""

import base64
import hashlib
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.core.clock import SimulatedClock
from app.core.config import Settings
from app.staff.models import Role
from tests.conftest import World, bearer

DOCS_PAGES = ["/docs", "/redoc", "/docs/oauth2-redirect"]


def _responses(world: World) -> dict[str, httpx.Response]:
    study = world.study()
    participant, token = world.enrolled_participant(study["id"])
    admin = world.staff(Role.admin)
    c = world.client
    return {
        "enroll (token)": c.post(
            "/v1/enroll",
            json={
                "code": c.post(
                    f"/v1/studies/{study['id']}/participants",
                    json={"timezone": "Europe/Berlin"},
                    headers=admin,
                ).json()["enrollment_code"]
            },
        ),
        "enroll unknown code": c.post("/v1/enroll", json={"code": "ZZZZZ-ZZZZZ"}),
        "me": c.get("/v1/me", headers=bearer(token)),
        "me without token": c.get("/v1/me"),
        "api key created": c.post(
            "/v1/api-keys", json={"name": "k", "role": "researcher"}, headers=admin
        ),
        "participant": c.get(
            f"/v1/studies/{study['id']}/participants/{participant['id']}", headers=admin
        ),
        "invalid body": c.post("/v1/studies", json={"slug": 5}, headers=admin),
        "body too large": c.post(
            "/v1/me/ema-responses",
            content=b"x" * (11 * 1024 * 1024),
            headers={**bearer(token), "content-type": "application/json"},
        ),
        "readyz as admin": c.get("/readyz", headers=admin),
    }


def test_private_responses_are_never_stored(world: World) -> None:
    for name, response in _responses(world).items():
        assert response.status_code < 500, (name, response.text)
        assert response.headers["cache-control"] == "no-store", name
        assert response.headers["x-content-type-options"] == "nosniff", name


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json", "/v2/nothing"])
def test_public_responses_say_nosniff_and_may_be_cached(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in response.headers
    assert "strict-transport-security" not in response.headers


def test_a_route_cannot_make_a_private_response_cacheable(
    settings: Settings, clock: SimulatedClock
) -> None:
    app = create_app(settings, clock)

    @app.get("/v1/cacheable-by-mistake", include_in_schema=False)
    def cacheable() -> JSONResponse:
        return JSONResponse({"token": "x"}, headers={"Cache-Control": "public, max-age=600"})

    response = TestClient(app).get("/v1/cacheable-by-mistake")
    assert response.headers.get_list("cache-control") == ["no-store"]


def test_hsts_when_configured(settings: Settings, clock: SimulatedClock) -> None:
    app = create_app(settings.model_copy(update={"hsts_seconds": 31536000}), clock)
    client = TestClient(app)
    for path in ["/healthz", "/v1/me", "/docs"]:
        response = client.get(path)
        assert response.headers["strict-transport-security"] == "max-age=31536000", path


class _Assets(HTMLParser):
    """What a browser would load for a page: script sources, inline scripts, links."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.inline: list[str] = []
        self.styles: list[str] = []
        self.icons: list[str] = []
        self._in_script = False
        self._script_body = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "script":
            if "src" in values:
                self.scripts.append(values["src"])
            else:
                self._in_script = True
                self._script_body = ""
        elif tag == "link":
            rel = values.get("rel", "")
            (self.styles if "stylesheet" in rel else self.icons).append(values["href"])

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self._script_body += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in_script:
            self._in_script = False
            if self._script_body.strip():
                self.inline.append(self._script_body)


def _directives(csp: str) -> dict[str, list[str]]:
    result = {}
    for part in csp.split(";"):
        name, *values = part.split()
        result[name] = values
    return result


def _allowed(url: str, sources: list[str]) -> bool:
    parts = urlsplit(url)
    if not parts.netloc:
        return "'self'" in sources
    return f"{parts.scheme}://{parts.netloc}" in sources


@pytest.mark.parametrize("path", DOCS_PAGES)
def test_docs_pages_cannot_be_framed_and_their_csp_admits_what_they_load(
    client: TestClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = _directives(response.headers["content-security-policy"])
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["default-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assets = _Assets()
    assets.feed(response.text)
    for src in assets.scripts:
        assert _allowed(src, csp["script-src"]), src
    for body in assets.inline:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp["script-src"]
    for href in assets.styles:
        assert _allowed(href, csp["style-src"]), href
    for href in assets.icons:
        assert _allowed(href, csp["img-src"]), href
    # The docs fetch the OpenAPI document (and "Try it out" calls the API) on this origin.
    assert csp["connect-src"] == ["'self'"]
    if path == "/docs":
        assert assets.scripts, "Swagger UI is loaded"
        assert assets.inline, "and its bootstrap script is checked"
        assert "swagger" in response.text.lower()


def test_docs_csp_follows_the_root_path(settings: Settings, clock: SimulatedClock) -> None:
    """Behind a proxy that mounts Kairos under a prefix the page (and its inline script's
    hash) changes; the policy is computed from the page, so it still matches."""
    app = create_app(settings, clock)
    plain = TestClient(app).get("/docs")
    prefixed = TestClient(app, root_path="/kairos").get("/docs")
    assert "/kairos/openapi.json" in prefixed.text
    assert plain.headers["content-security-policy"] != prefixed.headers["content-security-policy"]
    assets = _Assets()
    assets.feed(prefixed.text)
    digest = base64.b64encode(hashlib.sha256(assets.inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in prefixed.headers["content-security-policy"]
