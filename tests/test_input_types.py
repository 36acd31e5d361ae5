"""Every piece of text, free-form data and integer that enters the API is of a checked type.

The check is on the validators Pydantic builds for every path, query, header and body
parameter of every route: each string must pass through `check_text` (or `check_data`,
which checks whatever lies under it), and each integer must have bounds. A new field typed
plain `str`, `Any` or `int` fails here, naming the route and the field.
"""

from collections.abc import Iterator, Mapping
from typing import Annotated, Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import TypeAdapter

from app.api.main import create_app
from app.core.config import Settings
from app.core.text import INT64_MAX, check_data, check_text

_GUARDS = (check_text, check_data)
# Schema keys that hold no input validator (serializers describe output).
_SKIP = frozenset({"serialization", "metadata", "ref", "function", "custom_error_context"})


def _schemas_in(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        if isinstance(value.get("type"), str):
            yield value
        else:
            for item in value.values():
                yield from _schemas_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _schemas_in(item)


def _is_guard(node: dict[str, Any]) -> bool:
    return node["type"].startswith("function-") and node["function"]["function"] in _GUARDS


def _contains_guard(node: dict[str, Any]) -> bool:
    if _is_guard(node):
        return True
    return any(
        _contains_guard(child)
        for key, value in node.items()
        if key not in _SKIP
        for child in _schemas_in(value)
    )


def _unchecked(schema: Mapping[str, Any]) -> list[str]:
    """Where ``schema`` accepts unchecked text or unbounded integers."""
    definitions: dict[str, dict[str, Any]] = {}
    found: list[str] = []
    seen: set[tuple[str, bool]] = set()

    def walk(node: dict[str, Any], guarded: bool, where: str) -> None:
        kind = node["type"]
        if kind == "definitions":
            for definition in node["definitions"]:
                definitions[definition["ref"]] = definition
        if kind == "definition-ref":
            ref = node["schema_ref"]
            if (ref, guarded) not in seen:
                seen.add((ref, guarded))
                walk(definitions[ref], guarded, where)
            return
        guarded = guarded or _is_guard(node)
        if kind in ("str", "any") and not guarded:
            found.append(f"{where}: unchecked {kind}")
        if kind == "int" and not guarded:
            low, high = node.get("ge", node.get("gt")), node.get("le", node.get("lt"))
            if low is None or high is None or high > INT64_MAX:
                found.append(f"{where}: unbounded int")
        if kind == "model" and node.get("config", {}).get("extra_fields_behavior") == "allow":
            extras = node["schema"].get("extras_schema")
            if extras is None:
                found.append(f"{where}: extra fields of {node['cls'].__name__} unchecked")
        if kind == "chain":  # steps run in order: a checked value stays checked
            for step in node["steps"]:
                walk(step, guarded, where)
                guarded = guarded or _contains_guard(step)
            return
        if kind == "model":
            where = f"{where}({node['cls'].__name__})"
        for key, value in node.items():
            if key in _SKIP:
                continue
            if key == "fields" and isinstance(value, dict):
                for name, field in value.items():
                    walk(field, guarded, f"{where}.{name}")
                continue
            for child in _schemas_in(value):
                walk(child, guarded, where)

    walk(dict(schema), False, "")
    return found


def _params(dependant: Dependant) -> Iterator[tuple[str, Any]]:
    """Every parameter of a route and of its dependencies."""
    yield from (("path", p) for p in dependant.path_params)
    yield from (("query", p) for p in dependant.query_params)
    yield from (("header", p) for p in dependant.header_params)
    yield from (("cookie", p) for p in dependant.cookie_params)
    yield from (("body", p) for p in dependant.body_params)
    for sub in dependant.dependencies:
        yield from _params(sub)


def _api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.160)
            yield from _api_routes(route.original_router.routes)


def test_the_guard_finds_plain_types() -> None:
    assert _unchecked(TypeAdapter(str).core_schema) == [": unchecked str"]
    assert _unchecked(TypeAdapter(dict[str, Any]).core_schema)
    assert _unchecked(TypeAdapter(int).core_schema) == [": unbounded int"]


def test_every_input_is_of_a_checked_type(settings: Settings) -> None:
    app = create_app(settings)
    problems = []
    routes = list(_api_routes(app.routes))
    assert len(routes) > 50
    for route in routes:
        for where, param in _params(route.dependant):
            info = param.field_info
            annotation: Any = info.annotation
            if info.metadata:
                annotation = Annotated[(annotation, *info.metadata)]
            schema = TypeAdapter(annotation).core_schema
            for problem in _unchecked(schema):
                methods = ",".join(sorted(route.methods or ()))
                problems.append(f"{methods} {route.path} {where}.{param.name}{problem}")
    assert problems == [], "\n".join(problems)
