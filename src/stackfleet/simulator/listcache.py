"""Caches that keep list pages cheap on large simulated fleets.

A 1,000-item page out of 40,000 ports used to cost a sort of the whole collection, a
linear marker search, rendering every item for the caller's microversion and encoding
it all as JSON. Two caches make a page cost about what the page holds:

- `OrderCache` keeps the sorted order of a list of objects, with a marker -> position
  index, and reuses it while the same objects (by identity, in the same order) come in
  with the same values in the fields the order depends on;
- `EncodedObjects` keeps each object's rendered view as compact JSON bytes, and reuses
  it while the stored object is unchanged (a fingerprint of its whole content, nested
  values included) and the render's inputs are the same.

Neither relies on the routes announcing their changes: both check what they depend on
at every request, at C speed (an identity comparison of the collection's objects, a
`marshal` pass over each object of the page). So tests may keep editing `RegionState`
directly — add or delete objects, replace them, change any field, nested ones
included — and the next answer shows it. One exception, for speed: ids and creation
times (`IMMUTABLE_FIELDS`) are taken as never changing in place, as in OpenStack; a
test that wants an object with another one replaces the object
(``region.servers[sid] = {**server, "created": ...}``) instead of editing it.
"""

from __future__ import annotations

import json
import marshal
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from operator import itemgetter
from typing import Any

Obj = dict[str, Any]

# The same compact encoding as `stackfleet.simulator.http.json_response`.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


class SortedOrder:
    """Objects in a list's order, with their positions by an identifying field (built
    on first use). Treat `items` as read-only: a cached order is shared by requests."""

    __slots__ = ("_key", "_positions", "items")

    def __init__(self, items: list[Obj], key: str = "id") -> None:
        self.items = items
        self._key = key
        self._positions: dict[Any, int] | None = None

    def position(self, value: Any) -> int | None:
        """The index of the first object whose key field equals `value`, or None."""
        if self._positions is None:
            positions: dict[Any, int] = {}
            for index, obj in enumerate(self.items):
                positions.setdefault(obj.get(self._key), index)
            self._positions = positions
        return self._positions.get(value)


class _OrderEntry:
    __slots__ = ("columns", "objects", "order")

    def __init__(self, objects: list[Obj], columns: list[list[Any]], order: SortedOrder) -> None:
        self.objects = objects
        self.columns = columns
        self.order = order


def _column(objects: Sequence[Obj], name: str) -> list[Any]:
    """Every object's value of field `name` (None when absent)."""
    try:
        return list(map(itemgetter(name), objects))
    except KeyError:
        return [obj.get(name) for obj in objects]


# Fields OpenStack never changes once an object exists (nor does any simulated route):
# orders sorted by them are not re-checked against in-place edits (reading a field of
# every object of a 40,000-object collection costs more than serving a page).
IMMUTABLE_FIELDS = frozenset({"id", "uuid", "created", "created_at"})


class OrderCache:
    """Sorted orders of object lists, by caller-chosen key (e.g. collection, sort spec
    and the filters that made the list), the `size` most recently used kept."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, _OrderEntry] = OrderedDict()

    def order(
        self,
        key: Hashable,
        objects: list[Obj],
        fields: Iterable[str],
        sort: Callable[[list[Obj]], list[Obj]],
        id_key: str = "id",
    ) -> SortedOrder:
        """`sort(objects)` as a SortedOrder indexed by `id_key`, reused from the last call
        under `key` when `objects` are the same objects in the same order and hold the
        same values in `fields` (every field `sort` reads; `IMMUTABLE_FIELDS` are not
        checked). `sort` must not change `objects`."""
        names = tuple(dict.fromkeys(f for f in fields if f not in IMMUTABLE_FIELDS))
        entry = self._entries.get(key)
        # List equality compares identity first, so this is a pointer scan unless an
        # object was replaced (then an equal replacement still sorts the same).
        if entry is not None and entry.objects == objects:
            columns = [_column(objects, name) for name in names]
            if columns == entry.columns:
                self._entries.move_to_end(key)
                return entry.order
        else:
            columns = [_column(objects, name) for name in names]
        order = SortedOrder(sort(objects), id_key)
        self._entries[key] = _OrderEntry(objects, columns, order)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return order


class EncodedList:
    """A JSON array already encoded, one fragment per item: `json_response` splices it
    into the body as it is."""

    __slots__ = ("fragments",)

    def __init__(self, fragments: list[bytes]) -> None:
        self.fragments = fragments

    def __len__(self) -> int:
        return len(self.fragments)


def fingerprint(obj: Any) -> int | None:
    """A digest of an object's whole content (key order and nested values included),
    or None when it holds something `marshal` cannot write. Equal content can give
    different digests (interned and plain strings differ), never the reverse short of a
    64-bit hash collision."""
    try:
        return hash(marshal.dumps(obj, 2))
    except ValueError:
        return None


class EncodedObjects:
    """Compact JSON of rendered objects per view (whatever, besides the object, the
    render reads from the request: microversion, role, URLs), the `views` most recently
    used kept.

    An object's fragment is reused while its fingerprint is unchanged and the per-object
    `context` (what the render reads from elsewhere in the state, e.g. the host status of
    a server's compute service) compares equal."""

    def __init__(self, id_key: str = "id", views: int = 4) -> None:
        self._id_key = id_key
        self._max_views = views
        # view -> object id -> (fingerprint, context, fragment)
        self._views: OrderedDict[Hashable, dict[Any, tuple[int, Any, bytes]]] = OrderedDict()

    def encode(
        self,
        view: Hashable,
        objects: Iterable[Obj],
        render: Callable[[Obj], Any],
        context: Callable[[Obj], Hashable] | None = None,
        population: int = 0,
    ) -> EncodedList:
        """The objects rendered and encoded, from the cache where still valid.
        `population` is the size of the collection the objects come from: a view holding
        many more entries than that (deleted objects) is dropped."""
        entries = self._views.get(view)
        if entries is None or len(entries) > 2 * population + 1024:
            entries = self._views[view] = {}
        self._views.move_to_end(view)
        while len(self._views) > self._max_views:
            self._views.popitem(last=False)
        id_key = self._id_key
        encode = _ENCODER.encode
        fragments: list[bytes] = []
        append = fragments.append
        for obj in objects:
            digest = fingerprint(obj)
            extra = context(obj) if context is not None else None
            obj_id = obj.get(id_key)
            cached = entries.get(obj_id)
            if (
                cached is not None
                and digest is not None
                and cached[0] == digest
                and cached[1] == extra
            ):
                append(cached[2])
                continue
            fragment = encode(render(obj)).encode()
            if digest is not None:
                entries[obj_id] = (digest, extra, fragment)
            append(fragment)
        return EncodedList(fragments)
