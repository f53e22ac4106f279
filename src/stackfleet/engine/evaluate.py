"""Evaluating policies over the store: which resources each policy matches, per cloud
region, and which cloud regions can be trusted for it.

A cloud region is trusted for a policy when the newest listing of every kind the policy
reads there (its resource kind and every kind its relation filters follow) was
complete. Matches in an untrusted region are reported, but open or resolve no finding
and allow no destructive action: a failed port listing must never make a floating IP's
port look absent."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from stackfleet.policy.schema import Policy
from stackfleet.policy.view import FleetView, Record, Segment, paused_gc, segment_of


@dataclass
class PolicyMatches:
    """What one policy matched."""

    policy: Policy
    matches: list[Record]
    # segment -> kinds whose newest listing there was incomplete (untrusted segments)
    incomplete: dict[Segment, list[str]] = field(default_factory=dict)
    trusted: set[Segment] = field(default_factory=set)
    seconds: float = 0.0

    def by_segment(self) -> dict[Segment, list[Record]]:
        grouped: dict[Segment, list[Record]] = {}
        for record in self.matches:
            grouped.setdefault(segment_of(record), []).append(record)
        return grouped


def evaluate_policy(policy: Policy, view: FleetView) -> PolicyMatches:
    """Run one policy's filters over every live record of its kind."""
    started = time.perf_counter()
    with paused_gc():
        matches = _select(policy, view)
        segments = view.segments() | {(r["cloud"], r["region"]) for r in matches}
    incomplete: dict[Segment, list[str]] = {}
    trusted: set[Segment] = set()
    for segment in segments:
        missing = view.incomplete_kinds(segment, policy.reads)
        if missing:
            incomplete[segment] = missing
        else:
            trusted.add(segment)
    return PolicyMatches(
        policy, matches, incomplete, trusted, seconds=time.perf_counter() - started
    )


def _select(policy: Policy, view: FleetView) -> list[Record]:
    """The records of the policy's kind that pass all its filters."""
    # filter by filter over a shrinking list, as a policy's filters are an `and`: one
    # call per remaining resource per filter, and selective filters first pay off
    everything = view.records(policy.kind)
    matches = everything
    for flt in policy.filters:
        matches = flt.select(view, matches, matches is everything)
        if not matches:
            break
    return matches


def evaluate(policies: Sequence[Policy], view: FleetView) -> list[PolicyMatches]:
    """Every policy over one view (each kind is loaded once for all of them)."""
    return [evaluate_policy(p, view) for p in policies]
