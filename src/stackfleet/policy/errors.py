"""What is wrong with a policy file, said so that the operator can fix it: each problem
names the file, the line and the field, and what is allowed there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stackfleet.core.errors import StackFleetError

# A location inside a policy document, as pydantic reports it: keys and list indexes.
Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one policy file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class PolicyError(StackFleetError):
    """One or more policy files are invalid; nothing of them may run."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in policy files; nothing was run"
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in self.problems))


class OptionProblems(Exception):
    """Raised while parsing one policy: (location, message) pairs, located by the loader."""

    def __init__(self, problems: list[tuple[Loc, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


def format_loc(loc: Loc) -> str:
    """policies[0].filters[1].op"""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
