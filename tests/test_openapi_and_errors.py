from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api.main import create_app
from app.core.config import Settings
from tests.conftest import World

PUBLIC = {("get", "/healthz"), ("get", "/readyz"), ("post", "/v1/enroll")}


@pytest.fixture
def spec(settings: Settings) -> dict[str, Any]:
    result: dict[str, Any] = create_app(settings).openapi()
    return result


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def test_every_operation_is_documented(spec: dict[str, Any]) -> None:
    for method, path, op in _operations(spec):
        where = f"{method.upper()} {path}"
        assert op.get("summary"), f"{where} has no summary"
        assert op.get("description"), f"{where} has no description"
        assert op.get("tags"), f"{where} has no tag"
        is_public = (method, path) in PUBLIC
        assert bool(op.get("security")) != is_public, f"{where} security is wrong"
        for status, response in op["responses"].items():
            if status.startswith(("4", "5")):
                content = response["content"]
                assert list(content) == ["application/problem+json"], f"{where} {status}"


def _schema_has_example(spec: dict[str, Any], schema: dict[str, Any]) -> bool:
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if schema.get("type") == "array":
        return _schema_has_example(spec, schema["items"])
    return bool(schema.get("examples") or schema.get("example") or schema.get("enum"))


def test_every_schema_and_body_has_an_example(spec: dict[str, Any]) -> None:
    for name, schema in spec["components"]["schemas"].items():
        assert _schema_has_example(spec, schema), f"schema {name} has no example"
    for method, path, op in _operations(spec):
        bodies = [op["requestBody"]] if "requestBody" in op else []
        bodies += [r for s, r in op["responses"].items() if s.startswith("2") and "content" in r]
        for body in bodies:
            for media in body["content"].values():
                assert _schema_has_example(spec, media["schema"]), f"{method} {path}"


def test_security_schemes_allow_authorize_in_docs(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["BearerToken"]["description"],
    }
    assert schemes["ApiKeyHeader"]["in"] == "header"
    assert schemes["ApiKeyHeader"]["name"] == "X-API-Key"


def test_tags_are_described(spec: dict[str, Any]) -> None:
    described = {t["name"] for t in spec["tags"]}
    used = {tag for _, _, op in _operations(spec) for tag in op["tags"]}
    assert used <= described


def test_docs_page_is_served(client: TestClient) -> None:
    assert "swagger" in client.get("/docs").text.lower()
    assert client.get("/openapi.json").status_code == 200


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    missing = client.get("/v2/nothing")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["detail"] == "no such endpoint: GET /v2/nothing"
    wrong = client.put("/healthz")
    assert wrong.status_code == 405
    assert wrong.json()["status"] == 405


def test_unexpected_error_is_a_problem_500(world: World, settings: Settings) -> None:
    app = create_app(settings, world.clock)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("kaboom")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    body = response.json()
    assert body["title"] == "Internal server error"
    assert "kaboom" not in body["detail"]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ok"
    assert ready["schema_revision"] is not None
