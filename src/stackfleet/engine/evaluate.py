"""Evaluating policies over the store: which resources each policy matches, per cloud
region, and which cloud regions can be trusted for it.

A cloud region is trusted for a policy when the newest listing of every kind the policy
reads there (its resource kind and every kind its relation filters follow) was
complete. Matches in an untrusted region are reported, but open or resolve no finding
and allow no destructive action: a failed port listing must never make a floating IP's
port look absent.

Kinds read by infrastructure sweeps (`Kind.swept`: database servers, ...) have no
listings: their trust is per resource. A record the newest sweep could not read
(`reachable` false) is *unread* for every policy that does not itself ask about
`reachable`: its findings neither open nor resolve until a sweep reads it again."""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from stackfleet.model import KINDS
from stackfleet.policy.filters.base import select_all
from stackfleet.policy.schema import Policy
from stackfleet.policy.view import FleetView, Record, Segment, key_of, paused_gc, segment_of
from stackfleet.store.evaluation import ResourceKey
from stackfleet.store.findings import open_findings


@dataclass
class PolicyMatches:
    """What one policy matched."""

    policy: Policy
    matches: list[Record]
    # segment -> kinds whose newest listing there was incomplete (untrusted segments)
    incomplete: dict[Segment, list[str]] = field(default_factory=dict)
    trusted: set[Segment] = field(default_factory=set)
    # resources whose newest sweep failed: their findings stay as they are
    unread: set[ResourceKey] = field(default_factory=set)
    seconds: float = 0.0

    def by_segment(self) -> dict[Segment, list[Record]]:
        grouped: dict[Segment, list[Record]] = {}
        for record in self.matches:
            grouped.setdefault(segment_of(record), []).append(record)
        return grouped


def evaluate_policy(
    policy: Policy, view: FleetView, only: Collection[ResourceKey] | None = None
) -> PolicyMatches:
    """Run one policy's filters over every live record of its kind (or only over the
    records keyed in `only`: an event-driven run about a few resources)."""
    started = time.perf_counter()
    with paused_gc():
        matches = _select(policy, view, only)
        segments = view.segments()
        # the matches' regions are among their kind's, usually all known already
        swept = KINDS[policy.kind].swept
        if swept:
            # and where its findings are: a resource gone from the last region of
            # its kind still resolves them
            segments |= view.segments_of(policy.kind)
            if view.store is not None:
                segments |= {
                    (f.cloud, f.region)
                    for f in open_findings(view.store, policy.name)
                    if (view.cloud is None or f.cloud == view.cloud)
                    and (view.region is None or f.region == view.region)
                }
        elif not view.segments_of(policy.kind) <= segments:
            segments |= {segment_of(r) for r in matches}
    listed = {k for k in policy.reads if not KINDS[k].swept}
    incomplete: dict[Segment, list[str]] = {}
    trusted: set[Segment] = set()
    for segment in segments:
        missing = view.incomplete_kinds(segment, listed)
        if missing:
            incomplete[segment] = missing
        else:
            trusted.add(segment)
    unread: set[ResourceKey] = set()
    if swept and not judges_reachability(policy):
        unread = {
            (r["cloud"], r["region"], r["id"])
            for r in view.records(policy.kind)
            if r.get("reachable") is False
        }
    return PolicyMatches(
        policy, matches, incomplete, trusted, unread, seconds=time.perf_counter() - started
    )


def judges_reachability(policy: Policy) -> bool:
    """Whether a policy asks if its resources answered (its filters read `reachable`):
    such a policy judges unread resources; the others leave their findings alone."""
    return any("reachable" in flt.columns() for flt in policy.filters)


def _select(
    policy: Policy, view: FleetView, only: Collection[ResourceKey] | None = None
) -> list[Record]:
    """The records of the policy's kind that pass all its filters."""
    # a policy's filters are an `and`: filter by filter over a shrinking list
    everything = view.records(policy.kind)
    if only is None:
        return select_all(policy.filters, view, everything, True)
    chosen = [r for r in everything if key_of(r) in only]
    return select_all(policy.filters, view, chosen, False)


def prepare(policies: Sequence[Policy], view: FleetView) -> None:
    """Before a run of `policies` over whole kinds: read every field their filters
    compare, kind by kind, in one pass over the records (`FleetView.prefetch`)."""
    fields: dict[str, set[str]] = {}
    for policy in policies:
        # where each record is: the regions a policy's matches are in
        wanted = fields.setdefault(policy.kind, {"cloud", "region"})
        for flt in policy.filters:
            wanted |= flt.columns()
    with paused_gc():
        for kind, names in fields.items():
            view.prefetch(kind, sorted(names))


def evaluate(policies: Sequence[Policy], view: FleetView) -> list[PolicyMatches]:
    """Every policy over one view (each kind is loaded once for all of them)."""
    prepare(policies, view)
    return [evaluate_policy(p, view) for p in policies]
