"""The alert model in Alertmanager's words: an alert is a label set with annotations; its
fingerprint is a stable hash of its labels; a silence is a set of label matchers with a
time range."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import re2

from stackfleet.core.errors import InvalidQueryError

MatchOp = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")
# Silence and route matchers are operators' (or API callers') regular expressions,
# evaluated under the dispatch lock against every alert: they run on RE2, as in
# Alertmanager (Go's regexp), whose matching time is linear in the label's length — no
# pattern can stall dispatch the way a backtracking `(a+)+$` can with Python's `re`.
MAX_PATTERN = 1024


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # a bad pattern is the caller's error, not a log line
    return options


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> Any:
    return re2.compile(pattern, _re2_options())


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
            if len(value) > MAX_PATTERN:
                raise InvalidQueryError(
                    f"matcher {name}{op}...: the regular expression is longer than "
                    f"{MAX_PATTERN} characters"
                )
            try:
                _compile(value)
            except re2.error as exc:
                reason = exc.args[0] if exc.args else exc
                if isinstance(reason, bytes):
                    reason = reason.decode(errors="replace")
                raise InvalidQueryError(
                    f"matcher {text!r}: bad regular expression (RE2 syntax, as in "
                    f"Alertmanager): {reason}"
                ) from exc
        return cls(name, op, value)  # type: ignore[arg-type]

    def matches(self, labels: dict[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = _compile(self.value).fullmatch(got) is not None
        return hit if self.op == "=~" else not hit

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


def matches_all(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
