"""Checking the `events:` of an event policy against the notifications StackFleet maps
to resources (sources/notifications.py): a pattern that can never concern the policy's
resource kind would make a policy that never runs."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from stackfleet.policy.errors import Loc
from stackfleet.sources.notifications import event_patterns_for, kinds_for_pattern


def event_problems(events: Sequence[str], kind: str, loc: Loc) -> list[tuple[Loc, str]]:
    """(location, sentence) for each event pattern that never concerns `kind`."""
    problems: list[tuple[Loc, str]] = []
    for index, pattern in enumerate(events):
        if kind in kinds_for_pattern(pattern):
            continue
        patterns = event_patterns_for(kind)
        hint = (
            f"{kind} events: {', '.join(patterns)}"
            if patterns
            else f"no notification is mapped to {kind} (see docs/events.md)"
        )
        problems.append((loc + (index,), f"event {pattern!r} never concerns a {kind}; {hint}"))
    return problems


def matches_event(events: Sequence[str], event_type: str) -> bool:
    """Whether an event type is one of `events` (fnmatch patterns)."""
    return any(fnmatch.fnmatchcase(event_type, pattern) for pattern in events)
