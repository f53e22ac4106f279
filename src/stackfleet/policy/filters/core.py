"""The value filter (compare any field, dotted paths into mappings) and the boolean
filters and / or / not."""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import compress, filterfalse, repeat
from operator import contains, eq, is_, is_not, ne, not_, truth
from typing import Any, Literal, TypeVar

from pydantic import Field

from stackfleet.core.times import parse_time
from stackfleet.model import Kind
from stackfleet.policy.errors import Loc
from stackfleet.policy.fields import field_types, get_path
from stackfleet.policy.filters.base import (
    FILTERS,
    Filter,
    Predicate,
    Problems,
    compile_all,
    nested,
    positions_of_all,
    reads_all,
    select_all,
)
from stackfleet.policy.view import FleetView, Record, index_key

Op = Literal[
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "in",
    "not-in",
    "contains",
    "not-contains",
    "regex",
    "not-regex",
    "absent",
    "present",
    "empty",
    "not-empty",
    "not-null",
    "intersect",
    "difference",
]
ValueType = Literal[
    "integer", "float", "normalize", "size", "unique_size", "swap", "cidr", "cidr_size"
]
Item = TypeVar("Item")
NO_VALUE_OPS = ("absent", "present", "empty", "not-empty", "not-null")
# operators whose comparison only the general predicate makes
GENERAL_OPS = ("not-null", "intersect", "difference")
ORDER_OPS = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}
TYPE_NAMES = {str: "text", int: "an integer", float: "a number", bool: "true or false"}


@FILTERS.register("value")
class ValueFilter(Filter):
    """Compare one field of the resource with a value.

    `key` is any field of the kind (see `stackfleet resources kinds`), or a dotted path
    into a mapping field (`metadata.owner`). Operators: `eq`, `ne`, `lt`, `le`, `gt`,
    `ge` (numbers, text, times), `in` / `not-in` (value is a list), `contains` /
    `not-contains` (an item of a list field, a key of a mapping, a substring of text),
    `regex` / `not-regex` (searched anywhere; anchor with ^ and $), `absent` / `present`
    (null or missing), `empty` / `not-empty` (null, "", [] or {}), `not-null` (any
    true value: not null, 0, false, "", [] or {}), `intersect` / `difference` (the list
    field shares an item with the value list / holds an item not in it). A comparison
    with a missing value, or of different types, does not match.

    Cloud Custodian's names work too: `equal`, `not-equal`, `greater-than`, `gte`,
    `less-than`, `lte`, `ni`, `glob` (shell pattern, whole text), `regex-case` (matched
    at the start); so do its sentinels: `value: absent` (or `present`, `empty`,
    `not-null`) is that test, whatever `op` says. `value_type` converts the field first,
    as c7n does: `integer`, `float` (unreadable: 0), `normalize` (trimmed, lower case),
    `size` / `unique_size` (length; 0 when it has none), `swap` (compare value op
    field), `cidr` (addresses and networks: `in` is containment), `cidr_size` (prefix
    length); `age` / `expiration` (value in days) become an age filter.

    `value_from` compares with another field of the same record instead of a fixed
    value: `{type: value, key: celsius, op: gt, value_from: upper_critical}` matches a
    sensor above its own limit (`eq`, `ne`, `lt`, `le`, `gt`, `ge`; a record missing
    either field does not match).

    Short form: `- status: SHUTOFF` is `{type: value, key: status, value: SHUTOFF}`;
    `- key_name: absent` uses the `absent` operator."""

    type: Literal["value"] = "value"
    key: str = Field(description="Field name, or a dotted path into a mapping field.")
    op: Op = Field(default="eq", description="Comparison operator.")
    value: Any = Field(
        default=None, description="What to compare with (not for absent/present/empty)."
    )
    value_from: str | None = Field(
        default=None,
        description="Compare with this field (or dotted path) of the same record instead "
        "of `value`, e.g. a sensor's own threshold.",
    )
    ignore_case: bool = Field(default=False, description="Compare text case-insensitively.")
    value_type: ValueType | None = Field(
        default=None, description="Convert the field's value before comparing (as c7n)."
    )

    @property
    def general(self) -> bool:
        """Only the per-record predicate can answer (no column or index shortcut)."""
        return self.ignore_case or self.value_type is not None or self.op in GENERAL_OPS

    def check(self, spec: Kind) -> Problems:
        if self.value_from is not None:
            return self._check_value_from(spec)
        problems: Problems = []
        types = field_types(spec)
        head, _, rest = self.key.partition(".")
        if head not in types:
            return [(("key",), f"{spec.name} has no field {head!r}; fields: {', '.join(types)}")]
        typ = types[head]
        if rest and typ is not dict:
            return [
                (
                    ("key",),
                    f"{head!r} is not a mapping, so {self.key!r} cannot look inside it; "
                    "dotted paths work on mapping fields such as metadata",
                )
            ]
        if rest or self.value_type is not None:
            typ = object  # anything may be inside a mapping; converted values vary
        given = "value" in self.model_fields_set
        if self.op in NO_VALUE_OPS:
            if given:
                problems.append((("value",), f"op {self.op!r} takes no value"))
            return problems
        if not given:
            return [(("value",), f"op {self.op!r} needs a value")]
        if self.value_type == "cidr" and _cidr(self.value) is None:
            return [(("value",), f"not an address or network: {self.value!r}")]
        if self.op in ("intersect", "difference") and not isinstance(self.value, list):
            return [(("value",), f"op {self.op!r} needs a list of values")]
        if self.op in ("in", "not-in") and self.value_type is None:
            if not isinstance(self.value, list):
                return [(("value",), f"op {self.op!r} needs a list of values")]
            for item in self.value:
                problem = _type_problem(typ, item, head)
                if problem:
                    return [(("value",), problem)]
            return problems
        if self.op in ("regex", "not-regex"):
            if not isinstance(self.value, str):
                return [(("value",), "a regex is text")]
            try:
                re.compile(self.value)
            except re.error as exc:
                return [(("value",), f"not a valid regular expression: {exc}")]
            return problems
        if self.op in ("contains", "not-contains"):
            if typ not in (list, dict, str, object):
                return [(("op",), f"op {self.op!r} works on list, mapping and text fields")]
            return problems
        if self.op in ORDER_OPS and typ in (list, dict, bool):
            return [(("op",), f"op {self.op!r} cannot order a {typ.__name__} field")]
        problem = _type_problem(typ, self.value, head)
        if problem:
            problems.append((("value",), problem))
        return problems

    def _check_value_from(self, spec: Kind) -> Problems:
        problems: Problems = []
        types = field_types(spec)
        for option, path in (("key", self.key), ("value_from", self.value_from or "")):
            head, _, rest = path.partition(".")
            if head not in types:
                problems.append(
                    ((option,), f"{spec.name} has no field {head!r}; fields: {', '.join(types)}")
                )
            elif rest and types[head] is not dict:
                problems.append(((option,), f"{head!r} is not a mapping: no dotted path into it"))
        if self.op not in FIELD_OPS:
            problems.append(
                (("op",), f"with value_from, op is one of {', '.join(FIELD_OPS)}; got {self.op!r}")
            )
        if "value" in self.model_fields_set:
            problems.append((("value",), "give either value or value_from, not both"))
        if self.ignore_case:
            problems.append((("ignore_case",), "ignore_case does not apply with value_from"))
        if self.value_type is not None:
            problems.append((("value_type",), "value_type does not apply with value_from"))
        return problems

    def compile(self, view: FleetView) -> Predicate:
        if self.value_from is not None:
            return field_predicate(self.key, self.op, self.value_from)
        if self.value_type is not None:
            return typed_predicate(self.key, self.op, self.value, self.value_type)
        return value_predicate(self.key, self.op, self.value, self.ignore_case)

    def columns(self) -> set[str]:
        if self.value_from is not None:
            return {self.key.split(".")[0], self.value_from.split(".")[0]}
        return set() if self.general else {self.key.split(".")[0]}

    def select(self, view: FleetView, records: list[Record], whole_kind: bool) -> list[Record]:
        """Over a whole kind by positions (`select_positions`); over some records, from
        their values compared at C speed (`column_mask`) or by a comprehension
        (`select_plain`); the per-record predicate only for what neither can say."""
        if self.value_from is not None:
            return super().select(view, records, whole_kind)
        if whole_kind and records is view.records(self._kind):
            kept = self.select_positions(view, None)
            if kept is not None:
                return list(map(records.__getitem__, kept))
        if self.general:
            return super().select(view, records, whole_kind)
        values = field_values(records, self.key)
        mask = column_mask(values, frozenset(map(type, values)), self.op, self.value)
        if mask is not None:
            return list(compress(records, mask))
        selected = select_plain(records, values, self.op, self.value)
        if selected is not None:
            return selected
        return super().select(view, records, whole_kind)

    def select_positions(self, view: FleetView, positions: list[int] | None) -> list[int] | None:
        """From the run's shared index of the field when one lookup answers (and another
        filter of the run asked for it), else from the field's column, compared at C
        speed (`column_mask`) or by a comprehension (`select_plain`)."""
        if self.general or self.value_from is not None:
            return None
        column = view.column(self._kind, self.key)
        # the classes in the whole column (a subset holds no others); not needed when
        # the comparison is an identity test, which holds whatever the types
        types = (
            frozenset()
            if _identity_test(self.op, self.value)
            else view.column_types(self._kind, self.key)
        )
        where: Sequence[int]
        if positions is None:
            wanted = self._lookup()
            if wanted is not _NO_LOOKUP:
                index = view.shared_index(self._kind, self.key)
                if index is not None:
                    return list(index.get(wanted, ()))
            values = column
            where = range(len(column))
        else:
            values = list(map(column.__getitem__, positions))
            where = positions
        mask = column_mask(values, types, self.op, self.value)
        if mask is not None:
            return list(compress(where, mask))
        return select_plain(where, values, self.op, self.value)

    def _lookup(self) -> Any:
        """The index key whose records are exactly this filter's matches, if there is
        one. (`in` has none: an index files the number 4 under "4", which `in` does not
        match; and several keys would lose the record order a scan keeps.)"""
        if self.op == "absent":
            return None
        if self.op == "eq" and (self.value is None or isinstance(self.value, str | bool)):
            return index_key(self.value)
        return _NO_LOOKUP

    def negated(self) -> ValueFilter | None:
        """The same comparison with the opposite operator, when `not` of this filter is
        exactly another operator (eq / ne, in / not-in, ...): None otherwise."""
        opposite = NEGATED_OPS.get(self.op)
        # between two fields, a missing one fails both eq and ne: no opposite
        if opposite is None or self.value_from is not None:
            return None
        flipped = self.model_copy(update={"op": opposite})
        flipped._kind = self._kind
        return flipped


_NO_LOOKUP = object()
# `not` of each of these operators is exactly the other (see value_predicate)
NEGATED_OPS = {
    "eq": "ne",
    "ne": "eq",
    "in": "not-in",
    "not-in": "in",
    "contains": "not-contains",
    "not-contains": "contains",
    "regex": "not-regex",
    "not-regex": "regex",
    "absent": "present",
    "present": "absent",
    "empty": "not-empty",
    "not-empty": "empty",
}


def _type_problem(typ: type, value: Any, field: str) -> str | None:
    """Why `value` cannot be compared with a field of type `typ` (None if it can)."""
    if value is None or typ is object:
        return None
    if typ is bool and not isinstance(value, bool):
        return f"{field!r} is true or false; got {value!r}"
    if typ in (int, float) and (isinstance(value, bool) or not isinstance(value, int | float)):
        return f"{field!r} is {TYPE_NAMES[typ]}; got {value!r}"
    if typ is str and not isinstance(value, str | int | float):
        return f"{field!r} is text; got {value!r}"
    if typ is datetime and parse_time(value) is None:
        return f"{field!r} is a time; give an ISO 8601 timestamp, got {value!r}"
    return None


def getter(key: str) -> Callable[[Record], Any]:
    """A fast function reading `key` (a field or dotted path) from a record."""
    parts = tuple(key.split("."))
    if len(parts) == 1:
        return lambda record: record.get(key)
    return lambda record: get_path(record, parts)


# comparisons between two fields of a record (value_from)
FIELD_OPS = ("eq", "ne", "lt", "le", "gt", "ge")
_FIELD_COMPARE = {**ORDER_OPS, "eq": operator.eq, "ne": operator.ne}


def field_predicate(key: str, op: str, other: str) -> Predicate:
    """The predicate comparing two fields (or dotted paths) of one record: numbers with
    numbers, text with text, times with times; a missing value or two different types
    never match, whatever the operator."""
    get, get_other = getter(key), getter(other)
    compare = _FIELD_COMPARE[op]

    def between(record: Record) -> bool:
        got, limit = get(record), get_other(record)
        if got is None or limit is None or isinstance(got, bool) or isinstance(limit, bool):
            return False
        if isinstance(got, int | float) and isinstance(limit, int | float):
            return bool(compare(got, limit))
        if isinstance(got, str) and isinstance(limit, str):
            when, until = parse_time(got), parse_time(limit)
            if when is not None and until is not None:
                return bool(compare(when, until))
            return bool(compare(got, limit))
        return False

    return between


def value_predicate(key: str, op: str, value: Any, ignore_case: bool = False) -> Predicate:
    """The predicate of one comparison (shared by the value and metadata filters)."""
    if "." not in key and not ignore_case:
        fast = _plain_key_predicate(key, op, value)
        if fast is not None:
            return fast
    get = getter(key)
    fold: Callable[[Any], Any] = (
        (lambda v: v.lower() if isinstance(v, str) else v) if ignore_case else (lambda v: v)
    )
    if op == "absent":
        return lambda record: get(record) is None
    if op == "present":
        return lambda record: get(record) is not None
    if op == "empty":
        return lambda record: get(record) in (None, "", [], {})
    if op == "not-empty":
        return lambda record: get(record) not in (None, "", [], {})
    if op == "not-null":
        return lambda record: bool(get(record))
    if op in ("intersect", "difference"):
        test = SET_TESTS[op]
        return lambda record: test(get(record), value)
    if op in ("eq", "ne"):
        same = _equality(get, fold(value), ignore_case)
        if op == "eq":
            return same
        return lambda record: not same(record)
    if op in ("in", "not-in"):
        options = [fold(v) for v in value]
        hashable = all(isinstance(v, str | int | float | bool | type(None)) for v in options)
        members = set(options) if hashable else options
        if op == "in":
            return lambda record: _member(fold(get(record)), members)
        return lambda record: not _member(fold(get(record)), members)
    if op in ("contains", "not-contains"):
        wanted = fold(value)
        if op == "contains":
            return lambda record: _contains(get(record), wanted, ignore_case)
        return lambda record: not _contains(get(record), wanted, ignore_case)
    if op in ("regex", "not-regex"):
        pattern = re.compile(value, re.IGNORECASE if ignore_case else 0)
        if op == "regex":
            return lambda record: _searches(pattern, get(record))
        return lambda record: not _searches(pattern, get(record))
    compare = ORDER_OPS[op]
    wanted = fold(value)
    wanted_time = parse_time(value) if isinstance(value, str) else None

    def ordered(record: Record) -> bool:
        got = fold(get(record))
        if got is None:
            return False
        if isinstance(got, datetime):
            return wanted_time is not None and compare(got, wanted_time)
        if isinstance(got, bool) or isinstance(wanted, bool):
            return False
        try:
            return bool(compare(got, wanted))
        except TypeError:
            return False

    return ordered


_NONE = type(None)
_NUMBERS = frozenset((int, float))
_SCALARS = frozenset((str, int, float, bool, _NONE))
_EMPTIABLE = frozenset((str, list, dict, _NONE))
# types that never equal text unless they are that text (numbers compare as text)
_TEXT_EQUALITY = frozenset((str, bool, list, dict, _NONE))
# types that never equal a number unless they are that number (text and booleans do not)
_NUMBER_EQUALITY = frozenset((int, float, list, dict, _NONE))
_CONTAINERS = frozenset((str, list, dict))
_TEXT = frozenset((str,))


def field_values(records: list[Record], key: str) -> list[Any]:
    """The value of `key` (a field or dotted path, as `getter`) in each record."""
    head, *rest = key.split(".")
    values: list[Any] = list(map(dict.get, records, repeat(head)))
    for part in rest:
        values = [v.get(part) if isinstance(v, dict) else None for v in values]
    return values


def _identity_test(op: str, value: Any) -> bool:
    """The comparison is `is None` / `is True` ...: `column_mask` needs no types."""
    if op in ("absent", "present"):
        return True
    return op in ("eq", "ne") and (value is None or isinstance(value, bool))


def column_mask(values: list[Any], types: frozenset[type], op: str, value: Any) -> Any:
    """One truth value per item of `values` (an iterator), saying whether the comparison
    holds, computed at C speed by mapping an operator over the values when `types` (the
    exact classes present in `values`) let the comparison be written as that operator;
    None when they do not. Same semantics as `value_predicate` (without ignore_case)."""
    truths: Any = None
    negate = op in ("ne", "not-in", "not-contains", "not-regex", "not-empty", "present")
    if op in ("absent", "present"):
        return map(is_not if negate else is_, values, repeat(None))
    if op in ("empty", "not-empty") and types <= _EMPTIABLE:
        return map(truth if negate else not_, values)
    if op in ("eq", "ne"):
        if value is None or isinstance(value, bool):
            return map(is_not if negate else is_, values, repeat(value))
        if (isinstance(value, str) and types <= _TEXT_EQUALITY) or (
            isinstance(value, int | float) and types <= _NUMBER_EQUALITY
        ):
            return map(ne if negate else eq, values, repeat(value))
        return None
    if op in ("in", "not-in"):
        if types <= _SCALARS and all(v is None or v.__class__ in _SCALARS for v in value):
            truths = map(frozenset(value).__contains__, values)
    elif op in ("contains", "not-contains"):
        if (isinstance(value, str) and types <= _CONTAINERS) or (
            value is not None and value.__class__ in _SCALARS and types <= frozenset((list, dict))
        ):
            truths = map(contains, values, repeat(value))
    elif op in ("regex", "not-regex"):
        if types <= _TEXT:
            truths = map(re.compile(value).search, values)
    elif op in ORDER_OPS:
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if (numeric and types <= _NUMBERS) or (isinstance(value, str) and types <= _TEXT):
            return map(ORDER_OPS[op], values, repeat(value))
    if truths is None:
        return None
    return map(not_, truths) if negate else truths


def select_plain(
    records: Sequence[Item], values: list[Any], op: str, value: Any
) -> list[Item] | None:
    """The records one comparison on a top-level field keeps, given that field's
    `values` (in record order), as comprehensions with the test written inline: no call
    per record, over a compact list (this is most of a policy's time). None when the
    comparison has no inline form here; same semantics as `value_predicate`."""
    numbers = (int, float)
    pairs = zip(records, values, strict=True)
    if op == "absent":
        return [r for r, g in pairs if g is None]
    if op == "present":
        return [r for r, g in pairs if g is not None]
    if op in ("eq", "ne") and isinstance(value, str):
        if op == "eq":
            return [
                r for r, g in pairs if g == value or (g.__class__ in numbers and str(g) == value)
            ]
        return [
            r for r, g in pairs if not (g == value or (g.__class__ in numbers and str(g) == value))
        ]
    if op == "eq" and (value is None or isinstance(value, bool)):
        return [r for r, g in pairs if g is value]
    if op in ORDER_OPS and isinstance(value, numbers) and not isinstance(value, bool):
        if op == "gt":
            return [r for r, g in pairs if g.__class__ in numbers and g > value]
        if op == "ge":
            return [r for r, g in pairs if g.__class__ in numbers and g >= value]
        if op == "lt":
            return [r for r, g in pairs if g.__class__ in numbers and g < value]
        return [r for r, g in pairs if g.__class__ in numbers and g <= value]
    if op in ("regex", "not-regex"):
        search = re.compile(value).search
        text = str
        if op == "regex":
            return [r for r, g in pairs if g.__class__ is text and search(g)]
        return [r for r, g in pairs if not (g.__class__ is text and search(g))]
    if op in ("contains", "not-contains") and isinstance(value, str):
        seq = (list, str)
        if op == "contains":
            return [
                r for r, g in pairs if (g.__class__ in seq or g.__class__ is dict) and value in g
            ]
        return [
            r for r, g in pairs if not ((g.__class__ in seq or g.__class__ is dict) and value in g)
        ]
    return None


def _plain_key_predicate(key: str, op: str, value: Any) -> Predicate | None:
    """The commonest comparisons on a top-level field, written out with the field read
    inline: they run once per resource per policy, and a function call saved per
    resource is a third of the time. Same semantics as the general forms below."""
    numbers = (int, float)
    if op == "absent":
        return lambda record: record.get(key) is None
    if op == "present":
        return lambda record: record.get(key) is not None
    if op == "eq" and isinstance(value, str):
        return lambda record: (
            (got := record.get(key)) == value or (got.__class__ in numbers and str(got) == value)
        )
    if op == "ne" and isinstance(value, str):
        return lambda record: (
            not (
                (got := record.get(key)) == value
                or (got.__class__ in numbers and str(got) == value)
            )
        )
    if op == "eq" and isinstance(value, bool):
        return lambda record: record.get(key) is value
    if op == "eq" and value is None:
        return lambda record: record.get(key) is None
    if op in ("in", "not-in") and all(isinstance(v, str) for v in value):
        members = frozenset(value)
        inside = op == "in"

        def member(record: Record) -> bool:
            try:
                return (record.get(key) in members) is inside
            except TypeError:  # a list or mapping is never one of the values
                return not inside

        return member
    if op in ORDER_OPS and isinstance(value, numbers) and not isinstance(value, bool):
        compare = ORDER_OPS[op]

        def ordered(record: Record) -> bool:
            got = record.get(key)
            return got.__class__ in numbers and compare(got, value)

        return ordered
    return None


def _equality(get: Callable[[Record], Any], wanted: Any, ignore_case: bool) -> Predicate:
    """An equality test specialised on the type of `wanted`: this is the innermost loop
    of most policies. Booleans equal only booleans; text and numbers compare as text."""
    if ignore_case:
        return lambda record: _equal(_lower(get(record)), wanted)
    if wanted is None:
        return lambda record: get(record) is None
    if isinstance(wanted, bool):
        return lambda record: get(record) is wanted
    if isinstance(wanted, str):
        numbers = (int, float)

        def text(record: Record) -> bool:
            got = get(record)
            return got == wanted or (got.__class__ in numbers and str(got) == wanted)

        return text
    if isinstance(wanted, int | float):
        as_text = str(wanted)

        def number(record: Record) -> bool:
            got = get(record)
            if got.__class__ is bool:
                return False
            return got == wanted or (got.__class__ is str and got == as_text)

        return number
    return lambda record: _equal(get(record), wanted)


def _intersect(got: Any, wanted: Any) -> bool:
    """c7n's intersect: the field (a list) and the value share an item."""
    try:
        return bool(set(got).intersection(wanted))
    except TypeError:
        return False


def _difference(got: Any, wanted: Any) -> bool:
    """c7n's difference: the field (a list) holds an item the value does not."""
    try:
        return bool(set(got).difference(wanted))
    except TypeError:
        return False


SET_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "intersect": _intersect,
    "difference": _difference,
}


def _cidr(value: Any) -> Any:
    """An address ("10.0.0.1") or network ("10.0.0.0/8"), or a list of them; None
    when unreadable (as c7n's parse_cidr)."""
    if isinstance(value, list):
        parsed = [_cidr(v) for v in value]
        return None if any(p is None for p in parsed) else parsed
    if not isinstance(value, str):
        return None
    try:
        if "/" in value:
            return ipaddress.ip_network(value, strict=False)
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _cidr_in(item: Any, container: Any) -> bool:
    """An address in a network, a network inside another, or either in a list."""
    if isinstance(container, list):
        return any(_cidr_in(item, c) for c in container)
    if not isinstance(container, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return bool(item == container)
    if item is None or item.version != container.version:
        return False
    if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return bool(container.supernet_of(item))  # type: ignore[arg-type]
    return item in container


def _compare(op: str, got: Any, wanted: Any, ignore_case: bool = False) -> bool:
    """op(got, wanted) as c7n's OPERATORS say it: one that fails on the types does not
    match. For converted values (value_type), where no shortcut applies."""
    try:
        if op == "eq":
            return bool(got == wanted)
        if op == "ne":
            return bool(got != wanted)
        if op in ORDER_OPS:
            return bool(ORDER_OPS[op](got, wanted))
        if op == "in":
            return _cidr_in(got, wanted) if _is_cidr(wanted) else got in wanted
        if op == "not-in":
            return not (_cidr_in(got, wanted) if _is_cidr(wanted) else got in wanted)
        if op == "contains":
            return _cidr_in(wanted, got) if _is_cidr(got) else wanted in got
        if op == "not-contains":
            return not (_cidr_in(wanted, got) if _is_cidr(got) else wanted in got)
        if op in ("regex", "not-regex"):
            flags = re.IGNORECASE if ignore_case else 0
            found = isinstance(got, str) and re.search(wanted, got, flags) is not None
            return found if op == "regex" else not found
        if op in SET_TESTS:
            return SET_TESTS[op](got, wanted)
    except TypeError:
        return False
    return _sentinel(op, got)


def _is_cidr(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_is_cidr(v) for v in value)
    return isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network)


def _sentinel(op: str, got: Any) -> bool:
    if op == "absent":
        return got is None
    if op == "present":
        return got is not None
    if op == "empty":
        return got in (None, "", [], {})
    if op == "not-empty":
        return got not in (None, "", [], {})
    if op == "not-null":
        return bool(got)
    return False


def _to_number(kind: type, got: Any) -> Any:
    try:
        return kind(str(got).strip())
    except ValueError:
        return kind(0)


def _size(got: Any, unique: bool) -> int:
    try:
        return len(set(got)) if unique else len(got)
    except TypeError:
        return 0


def _prefix_length(got: Any) -> int:
    parsed = _cidr(got) if isinstance(got, str) and "/" in got else None
    return parsed.prefixlen if parsed is not None else 0


CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "integer": lambda got: _to_number(int, got),
    "float": lambda got: _to_number(float, got),
    "normalize": lambda got: got.strip().lower() if isinstance(got, str) else got,
    "size": lambda got: _size(got, False),
    "unique_size": lambda got: _size(got, True),
    "cidr_size": _prefix_length,
    "cidr": _cidr,
    "swap": lambda got: got,
}


def typed_predicate(key: str, op: str, value: Any, value_type: str) -> Predicate:
    """A comparison of the field converted by `value_type` (c7n's process_value_type):
    the value is compared as written, except for `cidr` (both sides are parsed; an
    address compared with a network asks whether the network holds it) and `swap`
    (the value is compared with the field: `value in field`)."""
    get = getter(key)
    convert = CONVERSIONS[value_type]
    wanted = _cidr(value) if value_type == "cidr" else value

    def matches(record: Record) -> bool:
        got = convert(get(record))
        if value_type == "swap":
            return _compare(op, wanted, got)
        if (
            value_type == "cidr"
            and _is_cidr(got)
            and not _is_cidr(wanted)
            and op in ("in", "not-in")
        ):
            # c7n compares the policy's address with the resource's network
            inside = _cidr_in(wanted, got)
            return inside if op == "in" else not inside
        return _compare(op, got, wanted)

    return matches


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _equal(got: Any, wanted: Any) -> bool:
    if isinstance(got, bool) != isinstance(wanted, bool):
        return False
    if isinstance(got, str) != isinstance(wanted, str) and got is not None and wanted is not None:
        # a number field compared with text (or the other way round): compare as text
        return str(got) == str(wanted)
    return bool(got == wanted)


def _member(got: Any, members: Any) -> bool:
    try:
        return got in members
    except TypeError:
        return False


def _contains(got: Any, wanted: Any, ignore_case: bool) -> bool:
    if isinstance(got, list):
        if ignore_case and isinstance(wanted, str):
            return any(isinstance(v, str) and v.lower() == wanted for v in got)
        return wanted in got
    if isinstance(got, dict):
        return wanted in got
    if isinstance(got, str) and isinstance(wanted, str):
        return wanted in (got.lower() if ignore_case else got)
    return False


def _searches(pattern: re.Pattern[str], got: Any) -> bool:
    return isinstance(got, str) and pattern.search(got) is not None


class _Boolean(Filter):
    filters: list[Any] | dict[str, Any] = Field(description="The filters to combine.")
    _children: list[Filter] = []

    def resolve(self, kind: str, loc: Loc) -> Problems:
        self._kind = kind
        raw = self.filters
        if isinstance(raw, dict):  # `not:` may hold one filter
            raw = [raw]
        if not raw:
            return [(("filters",), f"'{self.type}' needs at least one filter")]
        self._children, problems = nested(raw, kind)
        return problems

    def reads(self) -> set[str]:
        return reads_all(self._children) | {self._kind}

    def columns(self) -> set[str]:
        return set().union(*(child.columns() for child in self._children))


@FILTERS.register("and")
class AndFilter(_Boolean):
    """Matches when every filter in the list matches (a policy's `filters:` list is an
    `and` already; use it inside `or` / `not`). Short form: `- and: [...]`."""

    type: Literal["and"] = "and"

    def compile(self, view: FleetView) -> Predicate:
        return compile_all(self._children, view)

    def select(self, view: FleetView, records: list[Record], whole_kind: bool) -> list[Record]:
        # filter by filter over a shrinking list, as a policy's own filters list
        return select_all(self._children, view, records, whole_kind)

    def select_positions(self, view: FleetView, positions: list[int] | None) -> list[int] | None:
        return positions_of_all(self._children, view, positions)


@FILTERS.register("or")
class OrFilter(_Boolean):
    """Matches when at least one filter in the list matches. Short form: `- or: [...]`."""

    type: Literal["or"] = "or"

    def compile(self, view: FleetView) -> Predicate:
        predicates = [f.compile(view) for f in self._children]
        return lambda record: any(p(record) for p in predicates)

    def select(self, view: FleetView, records: list[Record], whole_kind: bool) -> list[Record]:
        # Each filter selects on its own (from an index or a column), kept in record
        # order. Only for value comparisons: a predicate tries the next filter only
        # where the previous one failed, and a state age records evidence for what it
        # sees, so other filters keep exactly that behaviour.
        if len(self._children) == 1:
            return self._children[0].select(view, records, whole_kind)
        if not all(_plain(child) for child in self._children):
            return super().select(view, records, whole_kind)
        chosen: set[int] = set()
        for child in self._children:
            chosen.update(map(id, child.select(view, records, whole_kind)))
        return list(compress(records, map(chosen.__contains__, map(id, records))))

    def select_positions(self, view: FleetView, positions: list[int] | None) -> list[int] | None:
        # only filters that answer by positions have no side effects (see there), so
        # each may see every record
        found: list[list[int]] = []
        for child in self._children:
            kept = child.select_positions(view, positions)
            if kept is None:
                return None
            found.append(kept)
        if len(found) == 1:
            return found[0]
        chosen = set().union(*found)
        where = range(len(view.records(self._kind))) if positions is None else positions
        return list(filter(chosen.__contains__, where))


@FILTERS.register("not")
class NotFilter(_Boolean):
    """Matches when the filters in the list do not all match (not of their `and`).
    Short form: `- not: [...]` or `- not: {status: ACTIVE}`."""

    type: Literal["not"] = "not"

    def compile(self, view: FleetView) -> Predicate:
        inner = compile_all(self._children, view)
        return lambda record: not inner(record)

    def select(self, view: FleetView, records: list[Record], whole_kind: bool) -> list[Record]:
        # `not` of one comparison is often the opposite comparison (not eq is ne)
        if len(self._children) == 1 and isinstance(self._children[0], ValueFilter):
            opposite = self._children[0].negated()
            if opposite is not None:
                return opposite.select(view, records, whole_kind)
        if not all(_plain(child) for child in self._children):
            return super().select(view, records, whole_kind)
        inside = set(map(id, select_all(self._children, view, records, whole_kind)))
        return list(compress(records, map(not_, map(inside.__contains__, map(id, records)))))

    def select_positions(self, view: FleetView, positions: list[int] | None) -> list[int] | None:
        if len(self._children) == 1 and isinstance(self._children[0], ValueFilter):
            opposite = self._children[0].negated()
            if opposite is not None:
                return opposite.select_positions(view, positions)
        inner = positions_of_all(self._children, view, positions)
        if inner is None:
            return None
        inside = set(inner)
        where = range(len(view.records(self._kind))) if positions is None else positions
        return list(filterfalse(inside.__contains__, where))


def _plain(flt: Filter) -> bool:
    """A value comparison, or and / or / not of them: filters without side effects,
    which give the same answer for a record whatever else they are asked about."""
    if isinstance(flt, ValueFilter):
        return True
    return isinstance(flt, _Boolean) and all(_plain(child) for child in flt._children)
