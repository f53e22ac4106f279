"""Availability from recorded state changes (no I/O): the time a workload spent down,
its incidents and what is left of its error budget, over a window.

Computed from the changes the health job records (`health_changes`), not from samples:
a workload is *down* from the change that made it down to the change that ended it.
`healthy` and `degraded` (at least k of n members healthy) count as available; time in
`unknown`, and time before the first recorded state, is not measured at all (neither up
nor down) — the report says how much was measured."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

AVAILABLE = ("healthy", "degraded")


@dataclass(frozen=True)
class Change:
    """The subject entered `state` at `at`, for `reason`."""

    at: datetime
    state: str
    reason: str = ""


@dataclass
class Incident:
    """One stretch of down time: start, end (None: still down), why."""

    start: datetime
    end: datetime | None
    cause: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["start"] = self.start.isoformat()
        out["end"] = self.end.isoformat() if self.end else None
        return out


@dataclass
class Availability:
    """A subject's availability over [since, until]."""

    name: str
    since: datetime
    until: datetime
    target: float | None
    measured_seconds: float = 0.0
    down_seconds: float = 0.0
    incidents: list[Incident] = field(default_factory=list)

    @property
    def achieved(self) -> float | None:
        """Available time / measured time, in %; None with nothing measured."""
        if self.measured_seconds <= 0:
            return None
        # 100 * (1 - down / measured): exactly 100.0 with no down time
        return 100.0 - 100.0 * self.down_seconds / self.measured_seconds

    @property
    def budget_seconds(self) -> float | None:
        """Down time the target allows over the measured time."""
        if self.target is None:
            return None
        return self.measured_seconds * (100.0 - self.target) / 100.0

    @property
    def budget_left_seconds(self) -> float | None:
        budget = self.budget_seconds
        return None if budget is None else budget - self.down_seconds

    @property
    def budget_left_percent(self) -> float | None:
        """What is left of the error budget, in % of it (negative: overspent)."""
        budget, left = self.budget_seconds, self.budget_left_seconds
        if budget is None or left is None:
            return None
        if budget <= 0:
            return 100.0 if self.down_seconds <= 0 else -100.0
        return 100.0 * left / budget

    @property
    def met(self) -> bool | None:
        achieved = self.achieved
        if achieved is None or self.target is None:
            return None
        return achieved >= self.target

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "target": self.target,
            "achieved": self.achieved,
            "met": self.met,
            "measured_seconds": round(self.measured_seconds, 3),
            "down_seconds": round(self.down_seconds, 3),
            "error_budget_seconds": self.budget_seconds,
            "error_budget_left_seconds": self.budget_left_seconds,
            "error_budget_left_percent": self.budget_left_percent,
            "incidents": [i.to_dict() for i in self.incidents],
        }


def availability(
    name: str,
    before: Change | None,
    changes: list[Change],
    since: datetime,
    until: datetime,
    target: float | None,
) -> Availability:
    """`before`: the state the subject was in at `since` (its newest change before it;
    None: unknown); `changes`: its changes in (since, until], oldest first."""
    report = Availability(name=name, since=since, until=until, target=target)
    current = before
    start = since
    down_since: Change | None = None
    if current is not None and current.state == "down":
        down_since = Change(since, "down", current.reason)
    for change in [*changes, None]:
        end = until if change is None else min(max(change.at, since), until)
        span = max(0.0, (end - start).total_seconds())
        if current is not None and current.state != "unknown":
            report.measured_seconds += span
            if current.state not in AVAILABLE:
                report.down_seconds += span
        if change is None:
            break
        if change.state == "down" and down_since is None:
            down_since = change
        elif change.state != "down" and down_since is not None:
            report.incidents.append(_incident(down_since, end))
            down_since = None
        current, start = change, end
    if down_since is not None:
        incident = _incident(down_since, until)
        incident.end = None
        report.incidents.append(incident)
    return report


def _incident(start: Change, end: datetime) -> Incident:
    return Incident(start.at, end, start.reason, max(0.0, (end - start.at).total_seconds()))
