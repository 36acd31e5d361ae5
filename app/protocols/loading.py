"""Parsing a protocol document from YAML, JSON or a dict, reporting every problem."""

import json
import re
from collections.abc import Hashable
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from app.core.text import MAX_DATA_DEPTH, data_problem, json_nesting
from app.protocols.cel_rules import suggestion
from app.protocols.checks import check_protocol
from app.protocols.document import Protocol
from app.protocols.instruments import INCLUDE_OVERRIDES, instrument, instrument_names
from app.protocols.problems import ProtocolInvalid, ProtocolProblem, path_of

__all__ = [
    "ProtocolInvalid",
    "ProtocolProblem",
    "expand_includes",
    "load_document",
    "load_stored",
    "parse_protocol",
    "structural_problems",
]


MAX_ALIASES = 50


class _ProtocolYamlLoader(yaml.SafeLoader):
    """YAML 1.2 core schema scalars instead of PyYAML's YAML 1.1 ones.

    YAML 1.1 reads `12:00` as the integer 720, `no` as false and `2026-03-01` as a date:
    all silent corruptions of times, choice values and texts in a protocol.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # PyYAML keeps the last of duplicate keys silently; a protocol must not.
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable):
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def _compose_node_counting_aliases(
        self, parent: yaml.Node | None, index: int
    ) -> yaml.Node | None:
        # Aliases nest: ten levels of ten aliases expand to 10^10 nodes ("billion laughs")
        # when the document is validated. Real protocols need a handful.
        if self.check_event(yaml.AliasEvent):
            self.alias_count = getattr(self, "alias_count", 0) + 1
            if self.alias_count > MAX_ALIASES:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"more than {MAX_ALIASES} aliases (*name); write the repeated parts out",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
        return super().compose_node(parent, index)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        # The composer recurses once per level: a document of 100,000 "[" would end in a
        # RecursionError after seconds. Real protocols nest about ten levels deep.
        depth = getattr(self, "depth", 0)
        if depth >= MAX_DATA_DEPTH and self.check_event(
            yaml.SequenceStartEvent, yaml.MappingStartEvent
        ):
            raise yaml.composer.ComposerError(
                None,
                None,
                f"nested too deeply: at most {MAX_DATA_DEPTH} levels of lists and mappings",
                self.peek_event().start_mark,  # type: ignore[no-untyped-call]
            )
        self.depth = depth + 1
        try:
            return self._compose_node_counting_aliases(parent, index)
        finally:
            self.depth = depth

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node)).replace("_", "").lower()
        sign = -1 if text.startswith("-") else 1
        digits = text.lstrip("+-")
        if digits.startswith("0x"):
            return sign * int(digits[2:], 16)
        if digits.startswith("0o"):
            return sign * int(digits[2:], 8)
        return sign * int(digits, 10)


_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_ProtocolYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ProtocolYamlLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_ProtocolYamlLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9][0-9_]*|0x[0-9a-fA-F_]+|0o[0-7_]+)$"), list("-+0123456789")
)
_ProtocolYamlLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9][0-9_]*\.(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
_ProtocolYamlLoader.add_constructor(_INT, _ProtocolYamlLoader.construct_yaml_int)


def parse_protocol(
    source: str | bytes | dict[str, Any], *, content_type: str | None = None
) -> Protocol:
    """A validated protocol from YAML or JSON text or from an already parsed dict.

    Raises ProtocolInvalid with every problem found: text syntax, structure (unknown or
    missing fields, wrong types) and, once the structure is sound, the semantic checks.
    `content_type` containing "json" parses strictly as JSON; anything else as YAML.
    """
    data = source if isinstance(source, dict) else load_document(source, content_type=content_type)
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ProtocolInvalid([ProtocolProblem("", f"expected a mapping at the top, got {kind}")])
    # Stored versions are the validated model's dump, includes expanded: a later change to
    # the instrument library never changes a stored version.
    protocol = load_stored(expand_includes(data))
    problems = check_protocol(protocol)
    if problems:
        raise ProtocolInvalid(problems)
    return protocol


def load_stored(data: dict[str, Any]) -> Protocol:
    """A protocol from a stored version's document: its structure only.

    The semantic checks (``check_protocol``) are upload checks: the version passed the ones
    of the Kairos that stored it, and a check added since must not make a version that
    participants are on unloadable (a used version can never change). So code that reads
    protocols copes with what earlier checks let through.
    """
    try:
        return Protocol.model_validate(data)
    except ValidationError as exc:
        raise ProtocolInvalid(structural_problems(exc, data)) from None


def expand_includes(data: dict[str, Any]) -> dict[str, Any]:
    """The document with each ``questionnaires[i]`` of the form ``{include: <name>, id?,
    title?, stratify?}`` replaced by that instrument's questionnaire from the instrument
    library (its version, items, scores, citation and terms) with the overrides given
    (``stratify: null`` drops the instrument's stratification). ProtocolInvalid names an
    unknown instrument or field at its path."""
    questionnaires = data.get("questionnaires")
    if not isinstance(questionnaires, list) or not any(
        isinstance(q, dict) and "include" in q for q in questionnaires
    ):
        return data
    problems: list[ProtocolProblem] = []
    expanded: list[Any] = []
    names = instrument_names()
    for i, entry in enumerate(questionnaires):
        if not isinstance(entry, dict) or "include" not in entry:
            expanded.append(entry)
            continue
        for key in entry:
            if key != "include" and key not in INCLUDE_OVERRIDES:
                problems.append(
                    ProtocolProblem(
                        path_of("questionnaires", i, str(key)),
                        f"an include may set only {', '.join(INCLUDE_OVERRIDES)}; write the "
                        "questionnaire out to change more",
                    )
                )
        name = entry["include"]
        if not isinstance(name, str) or name not in names:
            shown = name if isinstance(name, str) else repr(name)
            problems.append(
                ProtocolProblem(
                    path_of("questionnaires", i, "include"),
                    f"no instrument '{shown}' in the instrument library"
                    f"{suggestion(shown, list(names))} (instruments: {', '.join(names)})",
                )
            )
            continue
        questionnaire = instrument(name)
        for key in INCLUDE_OVERRIDES:
            if key in entry:
                if entry[key] is None:
                    questionnaire.pop(key, None)
                else:
                    questionnaire[key] = entry[key]
        expanded.append(questionnaire)
    if problems:
        raise ProtocolInvalid(problems)
    return {**data, "questionnaires": expanded}


def load_document(source: str | bytes, *, content_type: str | None = None) -> Any:
    """The parsed YAML or JSON text, unvalidated; ProtocolInvalid on a syntax error, on
    nesting deeper than MAX_DATA_DEPTH, and on text no database stores (NUL, lone
    surrogates), numbers beyond 64 bits or not finite, each with its path."""
    data = _parse(source, content_type=content_type)
    found = data_problem(data)
    if found is not None:
        raise ProtocolInvalid([ProtocolProblem(*found)])
    return data


def _parse(source: str | bytes, *, content_type: str | None) -> Any:
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ProtocolInvalid(
                [ProtocolProblem("", f"not UTF-8 text (byte {exc.start})")]
            ) from None
    if content_type and "json" in content_type.lower():
        if json_nesting(source) > MAX_DATA_DEPTH:
            message = f"nested too deeply: at most {MAX_DATA_DEPTH} levels of arrays and objects"
            raise ProtocolInvalid([ProtocolProblem("", message)])
        try:
            return json.loads(source)
        except json.JSONDecodeError as exc:
            message = f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            raise ProtocolInvalid([ProtocolProblem("", message)]) from None
    try:
        return yaml.load(source, Loader=_ProtocolYamlLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise ProtocolInvalid([ProtocolProblem("", _yaml_message(exc))]) from None


def _yaml_message(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or "syntax error"
        context = f" ({exc.context})" if exc.context else ""
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}{context}"
    return f"invalid YAML: {exc}"


def structural_problems(exc: ValidationError, data: Any) -> list[ProtocolProblem]:
    """Pydantic's errors as problems with document paths.

    Pydantic's locations include union member tags (`numeric_rating`, `int`) that are not
    in the document; walking the input alongside keeps only real keys and indexes.
    """
    problems: list[ProtocolProblem] = []
    errors = exc.errors(include_url=False)
    for error in errors:
        if error["type"] == "too_short" and _has_inner_error(error, errors):
            continue  # "no items" only because an item failed: the item's error says why
        problem = ProtocolProblem(_document_path(error, data), _message(error))
        # `int | float` reports one error per member at the same place; keep the last.
        if problems and problems[-1].path == problem.path:
            problems[-1] = problem
        else:
            problems.append(problem)
    return problems


def _has_inner_error(error: ErrorDetails, errors: list[ErrorDetails]) -> bool:
    loc = error["loc"]
    return any(len(e["loc"]) > len(loc) and e["loc"][: len(loc)] == loc for e in errors)


def _document_path(error: ErrorDetails, data: Any) -> str:
    parts: list[str | int] = []
    node = data
    for part in error["loc"]:
        if isinstance(node, dict) and part in node:
            node = node[part]
            parts.append(str(part))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            parts.append(part)
        elif error["type"] in ("missing", "extra_forbidden") and part == error["loc"][-1]:
            parts.append(str(part))
    return path_of(*parts)


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field; check its spelling and place (see docs/protocols.md)"
    if error["type"] == "missing":
        return "required field is missing"
    message = error["msg"]
    # Our own validators raise ValueError; Pydantic prefixes "Value error, ".
    return message.removeprefix("Value error, ")
