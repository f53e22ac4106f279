"""The fleet as one policy run sees it: every kind loaded once, relations indexed in
memory, field ages and metric windows read once per (kind, field) — shared by every
policy of the run, so thirty policies over one kind read it once."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import chain, compress, repeat
from operator import eq, itemgetter
from typing import Any

from stackfleet.core.times import parse_time
from stackfleet.model import KINDS
from stackfleet.policy.fields import relations_of, updated_field
from stackfleet.store.db import Store
from stackfleet.store.evaluation import (
    ResourceKey,
    last_changes,
    listing_completeness,
    load_evidence,
    load_records,
    metric_window,
    save_evidence,
    value_text,
)

Record = dict[str, Any]
# (cloud, region)
Segment = tuple[str, str]


_UNINDEXED = object()
_TEXT_OR_NONE = frozenset((str, type(None)))
_MAPPING = frozenset((dict,))
# up to this many distinct values, an index is built by one C-level pass per value
_FEW_VALUES = 8
# classes whose values parse_time reads and that can key a dict
_HASHABLE_TIMES = frozenset((str, type(None), datetime, int, float))


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while building or scanning many records.
    Decoded records hold no reference cycles, so nothing is lost; but with 100,000 of
    them alive, every full collection walks them all, and loading a kind triggers many:
    pausing halves the time to load a kind. Restores the previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def index_key(value: Any) -> Any:
    """How `value_index` files a value (see there)."""
    if value is None or value.__class__ is str:
        return value
    if value.__class__ is bool:
        return ("bool", value)
    if value.__class__ in (int, float):
        return str(value)
    return _UNINDEXED


def segment_of(record: Record) -> Segment:
    return (record["cloud"], record["region"])


def key_of(record: Record) -> ResourceKey:
    return (record["cloud"], record["region"], record["id"])


class FleetView:
    """Read-only, cached view of the store for one evaluation at time `now`. Without a
    store it holds only the records given with `add_records` (benchmarks, tests)."""

    def __init__(
        self,
        store: Store | None,
        now: datetime | None = None,
        cloud: str | None = None,
        region: str | None = None,
    ) -> None:
        self.store = store
        self.now = now or datetime.now(UTC)
        self.cloud = cloud
        self.region = region
        self._records: dict[str, list[Record]] = {}
        self._indexes: dict[tuple[str, str, bool], dict[tuple[str, str, str], list[Record]]] = {}
        self._changes: dict[tuple[str, str], dict[ResourceKey, datetime]] = {}
        self._evidence: dict[tuple[str, str], dict[ResourceKey, tuple[str, datetime]]] = {}
        self._new_evidence: dict[tuple[str, str], dict[ResourceKey, tuple[str, datetime]]] = {}
        self._metrics: dict[tuple[str, str, str, float], dict[ResourceKey, tuple[float, int]]] = {}
        self._completeness: dict[tuple[str, str, str], tuple[int, bool]] | None = None
        self._owned: dict[tuple[str, str], list[Record]] | None = None
        self._times: dict[tuple[str, str], dict[int, datetime | None]] = {}
        self._value_indexes: dict[tuple[str, str], dict[Any, list[int]]] = {}
        self._index_wanted: set[tuple[str, str]] = set()
        self._columns: dict[tuple[str, str], list[Any]] = {}
        self._column_types: dict[tuple[str, str], frozenset[type]] = {}
        self._kind_segments: dict[str, set[Segment]] = {}
        self._time_columns: dict[tuple[str, str], list[datetime | None]] = {}

    # -------------------------------------------------------------- records
    def records(self, kind: str) -> list[Record]:
        """Every live record of `kind` (in the view's cloud/region, if set)."""
        if kind not in self._records:
            with paused_gc():
                self._records[kind] = (
                    load_records(self.store, kind, self.cloud, self.region) if self.store else []
                )
        return self._records[kind]

    def add_records(self, kind: str, records: list[Record]) -> None:
        """Use these records for `kind` instead of the store's (benchmarks, tests)."""
        self._records[kind] = records
        # what was read from the kind's previous records no longer holds
        caches: tuple[dict[Any, Any], ...] = (
            self._indexes,
            self._columns,
            self._column_types,
            self._value_indexes,
            self._time_columns,
            self._times,
        )
        for cache in caches:
            for key in [k for k in cache if k[0] == kind]:
                del cache[key]
        self._index_wanted = {k for k in self._index_wanted if k[0] != kind}
        self._kind_segments.pop(kind, None)
        self._owned = None

    def index(
        self, kind: str, field: str, many: bool = False
    ) -> dict[tuple[str, str, str], list[Record]]:
        """Records of `kind` by (cloud, region, str(value of field)); with `many`, the
        field holds a list and each item is a key."""
        key = (kind, field, many)
        if key not in self._indexes:
            index: dict[tuple[str, str, str], list[Record]] = {}
            segments = self.segments_of(kind)
            if not many and len(segments) == 1 and self.column_types(kind, field) <= _TEXT_OR_NONE:
                # one cloud region and text values: regroup the run's value index
                # (shared with value filters) instead of visiting every record
                [(cloud, region)] = segments
                records = self.records(kind)
                for value, positions in self.value_index(kind, field).items():
                    if value:
                        index[(cloud, region, value)] = list(map(records.__getitem__, positions))
                self._indexes[key] = index
                return index
            for record in self.records(kind):
                value = record.get(field)
                values = (value or []) if many else [value]
                for item in values:
                    if item is None or item == "":
                        continue
                    index.setdefault((record["cloud"], record["region"], str(item)), []).append(
                        record
                    )
            self._indexes[key] = index
        return self._indexes[key]

    def column(self, kind: str, field: str) -> list[Any]:
        """The values of a field of every record of `kind`, in record order, read once
        per run: scanning a compact list of values is several times faster than visiting
        100,000 dicts again for every policy. `field` may be a dotted path into mapping
        fields (`metadata.owner`): None where any step is missing or not a mapping.
        See also `prefetch`."""
        key = (kind, field)
        if key not in self._columns:
            head, dot, last = field.rpartition(".")
            values: list[Any]
            if dot:
                mappings = self.column(kind, head)
                if self.column_types(kind, head) == _MAPPING:
                    values = list(map(dict.get, mappings, repeat(last)))
                else:
                    values = [
                        value.get(last) if isinstance(value, dict) else None for value in mappings
                    ]
            else:
                values = list(map(dict.get, self.records(kind), repeat(field)))
            self._columns[key] = values
        return self._columns[key]

    def prefetch(self, kind: str, fields: Iterable[str]) -> None:
        """Read these top-level fields of every record of `kind` as columns in one pass
        over the records: reading a dict's fields together costs little more than
        reading one of them, while 100,000 dicts scattered over memory cost a cache
        miss or three each time they are visited."""
        wanted = [f for f in dict.fromkeys(fields) if (kind, f) not in self._columns]
        records = self.records(kind)
        if len(wanted) < 2 or not records:
            return
        try:
            # record by record, every wanted value in a row: one flat list, cut into
            # columns by slicing (cheaper than zip(*rows) over 100,000 tuples)
            flat = list(chain.from_iterable(map(itemgetter(*wanted), records)))
        except KeyError:  # a record without one of them: read them one by one
            return
        step = len(wanted)
        for offset, field in enumerate(wanted):
            self._columns[(kind, field)] = flat[offset::step]

    def column_types(self, kind: str, field: str) -> frozenset[type]:
        """The exact classes of the values in `column(kind, field)` (NoneType for
        missing): a comparison can then be specialised on the types actually present."""
        key = (kind, field)
        if key not in self._column_types:
            self._column_types[key] = frozenset(map(type, self.column(kind, field)))
        return self._column_types[key]

    def shared_index(self, kind: str, field: str) -> dict[Any, list[int]] | None:
        """`value_index(kind, field)` once a second filter of the run asks for it (None
        the first time): one lookup alone is cheaper as a scan of the column."""
        key = (kind, field)
        if key in self._value_indexes or key in self._index_wanted:
            return self.value_index(kind, field)
        self._index_wanted.add(key)
        return None

    def value_index(self, kind: str, field: str) -> dict[Any, list[int]]:
        """Positions (in `records(kind)`) of the records of `kind` by the value of a
        field (or dotted path), built once per run and shared by every policy that
        compares that field: an `eq` filter over a whole kind is then a lookup. Keys:
        text as is, numbers as their text (a number and its text compare equal),
        booleans as ("bool", value), missing as None; lists and mappings are not indexed
        (they equal no scalar). Positions are in record order."""
        key = (kind, field)
        known = self._value_indexes.get(key)
        if known is not None:
            return known
        values = self.column(kind, field)
        types = self.column_types(kind, field)
        index: dict[Any, list[int]] = {}
        distinct = dict(zip(values, values, strict=True)) if types <= _TEXT_OR_NONE else {}
        if distinct and len(distinct) <= _FEW_VALUES:
            # Few distinct texts (a status). Make equal texts one object in the column:
            # later scans of it then stay in a few hot objects instead of reaching into
            # 100,000 strings scattered over memory. Then one C-level pass per value.
            values = list(map(distinct.__getitem__, values))
            self._columns[key] = values
            everywhere = range(len(values))
            for value in distinct:
                index[value] = list(compress(everywhere, map(eq, values, repeat(value))))
        else:
            text = str
            for position, value in enumerate(values):
                # index_key(), inlined for the common cases: this loop sees every record
                if value is not None and value.__class__ is not text:
                    value = index_key(value)
                    if value is _UNINDEXED:
                        continue
                bucket = index.get(value)
                if bucket is None:
                    index[value] = [position]
                else:
                    bucket.append(position)
        self._value_indexes[key] = index
        return index

    def segments_of(self, kind: str) -> set[Segment]:
        """The cloud regions holding records of `kind` (once per run)."""
        if kind not in self._kind_segments:
            if (kind, "cloud") in self._columns and (kind, "region") in self._columns:
                clouds = self._columns[(kind, "cloud")]
                regions = self._columns[(kind, "region")]
                one_cloud, one_region = set(clouds), set(regions)
                if len(one_cloud) == 1 and len(one_region) == 1:  # the common case
                    found = {(one_cloud.pop(), one_region.pop())}
                else:
                    found = set(zip(clouds, regions, strict=True))
            else:
                found = set(map(itemgetter("cloud", "region"), self.records(kind)))
            self._kind_segments[kind] = found
        return self._kind_segments[kind]

    def related(self, kind: str, relation: str) -> Callable[[Record], list[Record]]:
        """A function giving the live records related to a record of `kind` through
        `relation` (forward or reverse; `owned` on projects: everything of the project)."""
        if kind == "project" and relation == "owned":
            owned = self._owned_index()
            return lambda record: owned.get((record["cloud"], record["id"]), [])
        target, rel, reverse = relations_of(KINDS[kind])[relation]
        if not reverse:
            index = self.index(target, rel.target_field)
            if rel.many:

                def forward_many(record: Record) -> list[Record]:
                    found: list[Record] = []
                    for value in record.get(rel.field) or []:
                        found.extend(index.get((record["cloud"], record["region"], str(value)), ()))
                    return found

                return forward_many

            field = rel.field
            segments = self.segments_of(kind)
            if len(segments) == 1:
                # every record of the kind is in this one region: look up by value only
                [segment] = segments
                by_value = {
                    value: found for (*where, value), found in index.items() if where == [*segment]
                }

                def forward_here(record: Record) -> list[Record]:
                    value = record.get(field)
                    if value.__class__ is not str:
                        if value is None:
                            return []
                        value = str(value)
                    return by_value.get(value) or []

                return forward_here

            def forward(record: Record) -> list[Record]:
                value = record.get(field)
                if value is None or value == "":
                    return []
                if value.__class__ is not str:
                    value = str(value)
                return index.get((record["cloud"], record["region"], value), [])

            return forward
        # reverse: records of `target` whose rel.field points at this record
        index = self.index(target, rel.field, many=rel.many)
        own_field = rel.target_field

        def backward(record: Record) -> list[Record]:
            value = record.get(own_field)
            if value is None or value == "":
                return []
            return index.get((record["cloud"], record["region"], str(value)), [])

        return backward

    def _owned_index(self) -> dict[tuple[str, str], list[Record]]:
        # Keystone projects span regions: a project owning something anywhere in the
        # cloud is not empty.
        if self._owned is None:
            owned: dict[tuple[str, str], list[Record]] = {}
            for kind in KINDS:
                if kind == "project":
                    continue
                records = self.records(kind)
                clouds = {cloud for cloud, _region in self.segments_of(kind)}
                if len(clouds) == 1 and self.column_types(kind, "project_id") <= _TEXT_OR_NONE:
                    # one cloud and text values: regroup the run's value index
                    [cloud] = clouds
                    for value, positions in self.value_index(kind, "project_id").items():
                        if value:
                            owned.setdefault((cloud, value), []).extend(
                                map(records.__getitem__, positions)
                            )
                    continue
                for record in records:
                    project = record.get("project_id")
                    if project:
                        owned.setdefault((record["cloud"], str(project)), []).append(record)
            self._owned = owned
        return self._owned

    # -------------------------------------------------------------- times
    def state_since(self, kind: str, field: str) -> Callable[[Record], datetime | None]:
        """A function giving since when a record's `field` has held its current value.

        The newest recorded change of the field, when there is one. Otherwise the value
        has held at least since StackFleet first saw the resource; and when the service
        stamps every save (Nova's `updated`, Cinder's and Neutron's `updated_at`), a
        stamp older than that is when it last changed at the latest. That estimate is
        kept (state evidence) while the value stays the same, so a later save that
        leaves the field alone does not make the state look younger."""
        key = (kind, field)
        if key not in self._changes:
            self._changes[key] = last_changes(self.store, kind, field) if self.store else {}
            self._evidence[key] = load_evidence(self.store, kind, field) if self.store else {}
            self._new_evidence[key] = {}
        changes = self._changes[key]
        kept = self._evidence[key]
        fresh = self._new_evidence[key]
        stamp = updated_field(KINDS[kind])

        def since(record: Record) -> datetime | None:
            resource = key_of(record)
            changed = changes.get(resource)
            if changed is not None:
                return changed
            current = value_text(record.get(field))
            known = kept.get(resource)
            estimate: datetime | None = record.get("first_seen")
            if stamp is not None:
                saved = parse_time(record.get(stamp))
                if saved is not None and (estimate is None or saved < estimate):
                    estimate = saved
            if (
                known is not None
                and known[0] == current
                and (estimate is None or known[1] <= estimate)
            ):
                return known[1]
            if estimate is not None and (known is None or known != (current, estimate)):
                fresh[resource] = (current, estimate)
            return estimate

        return since

    def save(self) -> None:
        """Keep the state estimates made in this run (see `state_since`)."""
        for (kind, field), entries in self._new_evidence.items():
            if entries and self.store is not None:
                save_evidence(self.store, kind, field, entries)
                self._evidence[(kind, field)].update(entries)
                self._new_evidence[(kind, field)] = {}

    def times(self, kind: str, field: str) -> dict[int, datetime | None]:
        """A timestamp field of every record of `kind`, parsed once per run, by id() of
        the record (records live as long as the view)."""
        key = (kind, field)
        if key not in self._times:
            self._times[key] = dict(
                zip(map(id, self.records(kind)), self.time_column(kind, field), strict=True)
            )
        return self._times[key]

    def time_column(self, kind: str, field: str) -> list[datetime | None]:
        """`column(kind, field)` parsed as times (`parse_time`), once per run; each
        distinct text is parsed once."""
        key = (kind, field)
        if key not in self._time_columns:
            values = self.column(kind, field)
            parsed: dict[Any, datetime | None] = {}
            if self.column_types(kind, field) <= _HASHABLE_TIMES:
                for value in set(values):
                    parsed[value] = parse_time(value)
                self._time_columns[key] = list(map(parsed.__getitem__, values))
            else:
                self._time_columns[key] = list(map(parse_time, values))
        return self._time_columns[key]

    # -------------------------------------------------------------- metrics
    def metric(
        self, kind: str, metric: str, aggregate: str, since: float
    ) -> dict[ResourceKey, tuple[float, int]]:
        key = (kind, metric, aggregate, since)
        if key not in self._metrics:
            self._metrics[key] = (
                metric_window(self.store, kind, metric, since, aggregate) if self.store else {}
            )
        return self._metrics[key]

    # -------------------------------------------------------------- passes
    def completeness(self) -> dict[tuple[str, str, str], tuple[int, bool]]:
        """(cloud, region, kind) -> (newest pass listing it, complete?)."""
        if self._completeness is None:
            self._completeness = listing_completeness(self.store) if self.store else {}
        return self._completeness

    def incomplete_kinds(self, segment: Segment, kinds: set[str]) -> list[str]:
        """Kinds of `kinds` whose newest listing in `segment` was not complete (or that
        no pass has listed there)."""
        table = self.completeness()
        return sorted(k for k in kinds if not table.get((segment[0], segment[1], k), (0, False))[1])

    def segments(self) -> set[Segment]:
        """Every cloud region a pass has listed."""
        return {
            (cloud, region)
            for cloud, region, _kind in self.completeness()
            if (self.cloud is None or cloud == self.cloud)
            and (self.region is None or region == self.region)
        }
