"""The alert model in Alertmanager's words: an alert is a label set with annotations; its
fingerprint is a stable hash of its labels; a silence is a set of label matchers with a
time range."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from stackfleet.core.errors import InvalidQueryError

MatchOp = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


def fingerprint(labels: dict[str, str]) -> str:
    """A stable id of a label set (order does not matter)."""
    text = "\x00".join(f"{k}\xff{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Matcher:
    """One label matcher: `name=value`, `name!=value`, `name=~regex`, `name!~regex`
    (regular expressions are anchored, as in Alertmanager)."""

    name: str
    op: MatchOp
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        found = _MATCHER.match(text)
        if not found:
            raise InvalidQueryError(
                f"matcher {text!r}: use name=value, name!=value, name=~regex or name!~regex"
            )
        name, op, value = found.groups()
        value = value.strip("\"'")
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise InvalidQueryError(f"matcher {text!r}: bad regular expression: {exc}") from exc
        return cls(name, op, value)  # type: ignore[arg-type]

    def matches(self, labels: dict[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = re.fullmatch(self.value, got) is not None
        return hit if self.op == "=~" else not hit

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


def matches_all(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
