"""Validation problems, each located by its path in the protocol document."""

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProtocolProblem:
    """One thing wrong with a protocol. `path` looks like `rules[2].when` ("" for the root)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ProtocolInvalid(ValueError):  # noqa: N818 - the public name other code uses
    """A protocol document with at least one problem; `problems` holds all of them."""

    def __init__(self, problems: list[ProtocolProblem]) -> None:
        self.problems = problems
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(f"{p.path}: {p.message}" for p in self.problems)


def path_of(*parts: str | int) -> str:
    """Join keys with dots and list indexes as [i]: ("rules", 2, "when") -> rules[2].when."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out = f"{out}.{part}" if out else part
    return out


class Problems:
    """Collects problems while the checks walk the document."""

    def __init__(self) -> None:
        self.items: list[ProtocolProblem] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(ProtocolProblem(path, message))

    def extend(self, problems: Iterable[ProtocolProblem]) -> None:
        self.items.extend(problems)
