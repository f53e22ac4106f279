"""The filter base class, the filter registry and the parser that turns a policy's
`filters:` list into filter objects, checking each against its schema and the kind.

A filter is a pydantic model of its options, registered under its `type` name. After
validation it is bound to the kind it filters; `compile(view)` then gives a plain
function record -> bool, so evaluation is a loop of function calls over dicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr, ValidationError

from stackfleet.model import KINDS, Kind
from stackfleet.policy.custodian import translate_filter
from stackfleet.policy.errors import Loc, OptionProblems
from stackfleet.policy.registry import Registry
from stackfleet.policy.validation import problems_from
from stackfleet.policy.view import FleetView, Record

Predicate = Callable[[Record], bool]
Problems = list[tuple[Loc, str]]


class Filter(BaseModel):
    """Base of every filter. Subclasses declare `type` as a Literal and their options."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # Kinds the filter applies to (None: every kind).
    kinds: ClassVar[tuple[str, ...] | None] = None

    type: str
    _kind: str = PrivateAttr(default="")

    @property
    def kind(self) -> str:
        return self._kind

    def resolve(self, kind: str, loc: Loc) -> Problems:
        """Bind to `kind` and check what the schema cannot (fields exist, nested filters);
        problem locations are relative to this filter."""
        self._kind = kind
        return self.check(KINDS[kind])

    def check(self, spec: Kind) -> Problems:
        """Problems with the options given the kind (override)."""
        return []

    def reads(self) -> set[str]:
        """Kinds whose listing this filter relies on (their completeness matters)."""
        return {self._kind}

    def columns(self) -> set[str]:
        """Top-level fields of the kind this filter reads as the view's columns, so a
        run can read them all in one pass over the records (`FleetView.prefetch`)."""
        return set()

    def compile(self, view: FleetView) -> Predicate:
        """A function record -> bool over `view` (override)."""
        raise NotImplementedError

    def select(self, view: FleetView, records: list[Record], whole_kind: bool) -> list[Record]:
        """The records this filter keeps, in their order. `records` are records of the
        view's kind (all of them when `whole_kind`, so a filter may answer from the
        view's columns and indexes instead of testing each one)."""
        return list(filter(self.compile(view), records))

    def select_positions(self, view: FleetView, positions: list[int] | None) -> list[int] | None:
        """Positions in `view.records(kind)` of the records this filter keeps, among
        `positions` (None: every record), in order; answered from the view's columns and
        indexes without visiting the records themselves (with 100,000 records scattered
        over memory, visiting each costs more than most comparisons). None when the
        filter cannot answer this way — or has side effects, or gives a record's answer
        only as part of a short-circuit: `select` is then used. Override for filters
        that read only columns."""
        return None


FILTERS: Registry[type[Filter]] = Registry("filter")

BOOLEAN_KEYS = ("and", "or", "not")


def parse_filter(raw: Any, kind: str, loc: Loc) -> Filter:
    """One filter from its policy mapping; raises OptionProblems (locations absolute).
    Cloud Custodian's spellings are read first (policy/custodian.py)."""
    raw = translate_filter(raw, kind, loc)
    if not isinstance(raw, dict):
        raise OptionProblems(
            [
                (
                    loc,
                    "a filter is a mapping, e.g. {type: value, key: status, value: SHUTOFF}, "
                    "the short form {status: SHUTOFF}, or {or: [...]}",
                )
            ]
        )
    children_key = "filters"
    if "type" in raw:
        data = raw
    elif len(raw) == 1 and next(iter(raw)) in BOOLEAN_KEYS:
        name, children = next(iter(raw.items()))
        data = {"type": name, "filters": children}
        children_key = name
    elif len(raw) == 1:
        key, value = next(iter(raw.items()))
        op = value if value in ("absent", "present", "empty", "not-empty", "not-null") else "eq"
        data = {"type": "value", "key": key, "op": op}
        if op == "eq":
            data["value"] = value
    else:
        raise OptionProblems(
            [
                (
                    loc,
                    "a filter needs a 'type' (or is a one-key short form such as "
                    f"{{status: SHUTOFF}}); got keys {', '.join(map(str, raw))}; "
                    f"filter types: {', '.join(FILTERS.names())}",
                )
            ]
        )
    name = data["type"]
    cls = FILTERS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise OptionProblems(
            [
                (
                    loc + ("type",),
                    f"unknown filter type {name!r}; known: {', '.join(FILTERS.names())}",
                )
            ]
        )
    if cls.kinds is not None and kind not in cls.kinds:
        raise OptionProblems(
            [
                (
                    loc + ("type",),
                    f"filter {name!r} does not apply to {kind}; it applies to: "
                    f"{', '.join(cls.kinds)}",
                )
            ]
        )
    try:
        flt = cls.model_validate(data)
    except ValidationError as exc:
        problems = problems_from(exc, cls)
        raise OptionProblems([(loc + _rename(p, children_key), m) for p, m in problems]) from None
    problems = flt.resolve(kind, loc)
    if problems:
        raise OptionProblems([(loc + _rename(p, children_key), m) for p, m in problems])
    return flt


def _rename(path: Loc, key: str) -> Loc:
    """Show a short form's child locations under its own key ("or"), not "filters"."""
    if key != "filters" and path[:1] == ("filters",):
        return (key,) + path[1:]
    return path


def parse_filters(raw: Any, kind: str, loc: Loc) -> list[Filter]:
    """A list of filters; every problem of every filter is collected and raised."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise OptionProblems([(loc, "filters must be a list of filters")])
    parsed: list[Filter] = []
    problems: Problems = []
    for index, item in enumerate(raw):
        try:
            parsed.append(parse_filter(item, kind, loc + (index,)))
        except OptionProblems as exc:
            problems.extend(exc.problems)
    if problems:
        raise OptionProblems(problems)
    return parsed


def nested(raw: list[Any], kind: str, key: str = "filters") -> tuple[list[Filter], Problems]:
    """Parse nested filters; problem locations are relative to the parent filter."""
    try:
        return parse_filters(raw, kind, (key,)), []
    except OptionProblems as exc:
        return [], exc.problems


def compile_all(filters: list[Filter], view: FleetView) -> Predicate:
    """One predicate that is true when every filter is (true for no filters)."""
    predicates = [f.compile(view) for f in filters]
    if not predicates:
        return lambda record: True
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda record: first(record) and second(record)

    def every(record: Record) -> bool:
        # a plain loop: measurably faster than all() over a generator here
        for predicate in predicates:  # noqa: SIM110
            if not predicate(record):
                return False
        return True

    return every


def select_all(
    filters: list[Filter], view: FleetView, records: list[Record], whole_kind: bool
) -> list[Record]:
    """The records every filter keeps: filter by filter over a shrinking list, so
    selective filters first pay off. Over a whole kind, by positions while the filters
    can (`select_positions`), then by records."""
    done = 0
    if whole_kind and filters and records is view.records(filters[0].kind):
        positions: list[int] | None = None
        for flt in filters:
            kept = flt.select_positions(view, positions)
            if kept is None:
                break
            positions = kept
            done += 1
            if not positions:
                return []
        if positions is not None:
            records = list(map(records.__getitem__, positions))
            whole_kind = False
    matches = records
    for flt in filters[done:]:
        matches = flt.select(view, matches, whole_kind and matches is records)
        if not matches:
            break
    return matches


def positions_of_all(
    filters: list[Filter], view: FleetView, positions: list[int] | None
) -> list[int] | None:
    """`select_positions` of filters that must all hold (None when one cannot, or there
    are none)."""
    if not filters:
        return None
    for flt in filters:
        kept = flt.select_positions(view, positions)
        if kept is None:
            return None
        positions = kept
        if not positions:
            break
    return positions


def reads_all(filters: list[Filter]) -> set[str]:
    kinds: set[str] = set()
    for flt in filters:
        kinds |= flt.reads()
    return kinds
