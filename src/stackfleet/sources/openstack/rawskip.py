"""Skipping the unchanged items of a listing before their records are built.

A steady pass lists every resource again, and nearly all of them are as the last pass
saw them. Each item of a page is kept as the bytes the service sent (msgspec splits a
page into `msgspec.Raw` items without building a Python object of them) and hashed;
an item whose hash a live row of the store carries (`resources.raw_hash`, written by
the pass that built that row's record from the same bytes) is counted as seen by its
id, and neither decoded nor built into a record. The hash is keyed by the kind's
builder version (`Kind.builder_version`), so a StackFleet that builds records
differently builds every item again; any writer other than a pass clears a row's raw
hash (an event's re-read), so the next listing of it is built and compared as before.

Only kinds whose record is the builder's output alone skip (`RAW_SKIP_KINDS`): a
record joined with other reads after it is built (hypervisors with Placement, networks
with their IP availability, agents with their hosting) could change while its item does
not. Items that a workload could be derived from (the workload label in the item's
bytes) are always built: workloads need each labelled member's record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from stackfleet.model import kind
from stackfleet.model.workloads import META_WORKLOAD

# kinds listed by `list_kind` alone, with nothing joined to their records afterwards
RAW_SKIP_KINDS = frozenset(
    {
        "server",
        "flavor",
        "subnet",
        "port",
        "floating_ip",
        "router",
        "security_group",
        "security_group_rule",
        "volume",
        "volume_snapshot",
        "image",
        "baremetal_allocation",
        "container",
    }
)
# kinds workload members are listed as: an item carrying the label is always built
_WORKLOAD_MEMBERS = frozenset({"server", "baremetal_allocation", "container"})
_LABEL = META_WORKLOAD.encode()


@dataclass
class RawSkip:
    """One listing's raw hashes: what the store knows, and what the listing found."""

    kind: str
    # raw hash -> resource id, for the live rows of the kind that carry one
    known: Mapping[str, str]
    key: bytes = b""
    # ids of the items skipped as unchanged
    unchanged: list[str] = field(default_factory=list)
    # resource id -> raw hash, for the records built from raw items
    hashes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.key:
            self.key = kind(self.kind).builder_version()

    def digest(self, raw: msgspec.Raw) -> str:
        """The raw hash of one item (`resources.raw_hash`)."""
        return hashlib.blake2b(raw, digest_size=16, key=self.key).hexdigest()

    def unchanged_id(self, raw: msgspec.Raw, digest: str) -> str | None:
        """The id of the stored resource this item is byte for byte, when it need not
        be built; else None."""
        found = self.known.get(digest)
        if found is None or self.kind not in _WORKLOAD_MEMBERS:
            return found
        # the label may hide behind a JSON escape: such items are built too
        data = bytes(raw)
        return None if _LABEL in data or b"\\u" in data else found
