"""Tag and metadata filters: what owners and operators write on their resources."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from stackfleet.model import KINDS, Kind
from stackfleet.policy.filters.base import FILTERS, Filter, Predicate, Problems
from stackfleet.policy.filters.core import value_predicate
from stackfleet.policy.view import FleetView, Record

TAGGED_KINDS = tuple(k.name for k in KINDS.values() if any(f.name == "tags" for f in k.fields))
METADATA_KINDS = tuple(
    k.name for k in KINDS.values() if any(f.name == "metadata" for f in k.fields)
)


@FILTERS.register("tag")
class TagFilter(Filter):
    """Match resources that carry a tag (`tag: production`), or a tag matching `regex`;
    with `absent: true`, resources that do not."""

    kinds = TAGGED_KINDS
    type: Literal["tag"] = "tag"
    tag: str | None = Field(default=None, description="The exact tag.")
    regex: str | None = Field(
        default=None, description="A regular expression searched in each tag."
    )
    absent: bool = Field(default=False, description="Match when no tag matches.")

    def check(self, spec: Kind) -> Problems:
        if (self.tag is None) == (self.regex is None):
            return [((), "give exactly one of 'tag' or 'regex'")]
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as exc:
                return [(("regex",), f"not a valid regular expression: {exc}")]
        return []

    def compile(self, view: FleetView) -> Predicate:
        absent = self.absent
        if self.tag is not None:
            wanted = self.tag

            def has(record: Record) -> bool:
                return wanted in (record.get("tags") or ())

        else:
            pattern = re.compile(self.regex or "")

            def has(record: Record) -> bool:
                return any(
                    isinstance(t, str) and pattern.search(t) for t in record.get("tags") or ()
                )

        if absent:
            return lambda record: not has(record)
        return has


@FILTERS.register("metadata")
class MetadataFilter(Filter):
    """Match on one metadata key (Nova server metadata): `present` (default), `absent`,
    or its value `eq` / `ne` / `regex` a value."""

    kinds = METADATA_KINDS
    type: Literal["metadata"] = "metadata"
    key: str = Field(description="The metadata key.")
    op: Literal["present", "absent", "eq", "ne", "regex"] = Field(
        default="present", description="How to test it."
    )
    value: str | None = Field(default=None, description="For eq, ne and regex.")

    def check(self, spec: Kind) -> Problems:
        if self.op in ("eq", "ne", "regex") and self.value is None:
            return [(("value",), f"op {self.op!r} needs a value")]
        if self.op in ("present", "absent") and self.value is not None:
            return [(("value",), f"op {self.op!r} takes no value")]
        if self.op == "regex":
            try:
                re.compile(self.value or "")
            except re.error as exc:
                return [(("value",), f"not a valid regular expression: {exc}")]
        return []

    def compile(self, view: FleetView) -> Predicate:
        key = self.key

        def read(record: Record) -> str | None:
            metadata = record.get("metadata")
            return metadata.get(key) if isinstance(metadata, dict) else None

        inner = value_predicate("_", self.op, self.value)
        return lambda record: inner({"_": read(record)})
