"""The instrument library: validated questionnaires shipped as protocol fragments, each a
questionnaire (items, scores, citation, terms of use) in ``<name>.yaml`` beside this file.

A protocol includes one by name in its questionnaires, ``{include: peg3}``, optionally
overriding ``id``, ``title`` and ``stratify``; see "Instrument library" in
docs/protocols.md.
"""

import copy
import functools
from importlib import resources
from typing import Any

INCLUDE_OVERRIDES = ("id", "title", "stratify")
"""What an include may set besides the instrument's name."""


def instrument_names() -> tuple[str, ...]:
    """The names of the shipped instruments, sorted."""
    return tuple(sorted(_fragments()))


def instrument(name: str) -> dict[str, Any]:
    """A fresh copy of the named instrument's questionnaire document; KeyError if unknown."""
    return copy.deepcopy(_fragments()[name])


@functools.cache
def _fragments() -> dict[str, dict[str, Any]]:
    from app.protocols.loading import load_document  # loading imports this module

    found = {}
    for entry in resources.files(__package__).iterdir():
        if entry.name.endswith(".yaml"):
            document = load_document(entry.read_text(encoding="utf-8"))
            if not isinstance(document, dict):
                raise TypeError(f"instrument {entry.name} is not a mapping")
            found[entry.name.removesuffix(".yaml")] = document
    return found
