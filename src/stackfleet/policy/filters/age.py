"""The age filter: how old a timestamp is, or how long a field has held its value."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import compress, repeat
from operator import and_, gt, lt
from typing import Any, Literal

from pydantic import Field

from stackfleet.core.times import Duration, parse_time
from stackfleet.model import Kind
from stackfleet.policy.fields import state_fields, time_fields
from stackfleet.policy.filters.base import FILTERS, Filter, Predicate, Problems
from stackfleet.policy.view import FleetView, Record

# Bookkeeping times: datetimes on every record already.
META_TIMES = ("first_seen", "last_seen", "last_changed")


@FILTERS.register("age")
class AgeFilter(Filter):
    """Match on age: of a timestamp field (`field: created`), or of the current value
    of a field (`state: status` — how long the server has been SHUTOFF).

    The age of a state comes from the store's change history: the newest recorded change
    of the field; when none was recorded since StackFleet first saw the resource, the
    older of "first seen" and the service's own last-save stamp (`updated`/`updated_at`),
    which a state change would have moved. An unknown time never matches.

    Give `older_than`, `newer_than` or both, as durations ("30d", "12h", "2w").
    Cloud Custodian's form works too: `days` / `hours` / `minutes` with `op` (`gt`, the
    default, is older than; `lt` newer than) on `field` (servers: `launched_at`)."""

    type: Literal["age"] = "age"
    field: str | None = Field(
        default=None, description="A timestamp field: created, updated, created_at, first_seen, ..."
    )
    state: str | None = Field(
        default=None, description="A field whose changes are recorded, e.g. status, port_id."
    )
    older_than: Duration | None = Field(default=None, description="Match when older than this.")
    newer_than: Duration | None = Field(default=None, description="Match when newer than this.")

    def check(self, spec: Kind) -> Problems:
        problems: Problems = []
        if (self.field is None) == (self.state is None):
            problems.append(((), "give exactly one of 'field' (a timestamp) or 'state'"))
        elif self.field is not None and self.field not in time_fields(spec):
            problems.append(
                (
                    ("field",),
                    f"{spec.name} has no timestamp field {self.field!r}; "
                    f"allowed: {', '.join(time_fields(spec))}",
                )
            )
        elif self.state is not None and self.state not in state_fields(spec):
            problems.append(
                (
                    ("state",),
                    f"the history of {spec.name}.{self.state} is not recorded; "
                    f"allowed: {', '.join(state_fields(spec))}",
                )
            )
        if self.older_than is None and self.newer_than is None:
            problems.append(((), "give 'older_than', 'newer_than' or both"))
        return problems

    def compile(self, view: FleetView) -> Predicate:
        older: timedelta | None = self.older_than
        newer: timedelta | None = self.newer_than
        oldest = view.now - older if older is not None else None
        newest = view.now - newer if newer is not None else None
        since: Callable[[Record], datetime | None]
        if self.state is not None:
            since = view.state_since(self._kind, self.state)
        elif self.field in META_TIMES:
            field = self.field
            since = lambda record: record.get(field)  # noqa: E731 - already a datetime
        else:
            parsed = view.times(self._kind, self.field or "")

            def since(record: Record) -> datetime | None:
                if id(record) in parsed:
                    return parsed[id(record)]
                return parse_time(record.get(self.field or ""))

        def matches(record: Record) -> bool:
            moment = since(record)
            if moment is None:
                return False
            if oldest is not None and not moment < oldest:
                return False
            return not (newest is not None and not moment > newest)

        return matches

    def columns(self) -> set[str]:
        return {self.field} if self.field is not None else set()

    def select_positions(self, view: FleetView, positions: list[int] | None) -> list[int] | None:
        """Timestamp fields from the run's parsed column, compared at C speed; state ages
        (which keep evidence for what they see) record by record (None)."""
        if self.state is not None:
            return None
        field = self.field or ""
        column: list[Any] = (
            view.column(self._kind, field)
            if field in META_TIMES
            else view.time_column(self._kind, field)
        )
        if positions is None:
            moments = column
            where: Sequence[int] = range(len(column))
        else:
            moments = list(map(column.__getitem__, positions))
            where = positions
        oldest: Any = view.now - self.older_than if self.older_than is not None else None
        newest: Any = view.now - self.newer_than if self.newer_than is not None else None
        types = frozenset(map(type, moments))
        if not types <= {datetime, type(None)}:
            return None
        if type(None) in types:
            # an unknown time never matches: one that fails the first test below
            never = datetime.max if oldest is not None else datetime.min
            never = never.replace(tzinfo=UTC)
            moments = [never if m is None else m for m in moments]
        if oldest is not None and newest is not None:
            mask = map(and_, map(lt, moments, repeat(oldest)), map(gt, moments, repeat(newest)))
        elif oldest is not None:
            mask = map(lt, moments, repeat(oldest))
        else:
            mask = map(gt, moments, repeat(newest))
        return list(compress(where, mask))
