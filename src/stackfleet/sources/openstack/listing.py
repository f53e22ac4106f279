"""Reading list calls as raw JSON pages through an openstacksdk service proxy.

openstacksdk's Resource objects cost ~1.6 ms each to build; decoding the pages ourselves
is ~100x cheaper (DESIGN.md). We still use the SDK's proxy for auth, the catalog,
version discovery and microversions. Pagination follows the `next` links' markers, and
keeps going on a full page without a link (a proxy rewriting links must not make us
stop early).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import keystoneauth1.exceptions as ksa_exc
import msgspec
import openstack.exceptions
import orjson
from keystoneauth1.adapter import Adapter

PAGE_SIZE = 1000
MAX_PAGES = 10_000


class ListingError(Exception):
    """A list call did not complete: the listing of that kind is incomplete."""


class ServiceMissing(ListingError):
    """The cloud's catalog has no endpoint for the service (e.g. no Ironic)."""


class ScopeMissing(ServiceMissing):
    """The listing needs a token scope the target was not given (Ironic: system)."""


class RoleMissing(ServiceMissing):
    """The target's credentials may not make the call (HTTP 403): Keystone's users and
    role assignments are for admins only. Skipped, so nothing of the kind looks gone."""


class RequestRefused(ListingError):
    """The service answered the call with an HTTP error status (`status`)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class RequestLog:
    """Counts of requests per (service, method, path template); thread-safe. A child
    log (one per kind's listing) also counts into its parent (the pass)."""

    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    parent: RequestLog | None = None

    def add(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1
        if self.parent is not None:
            self.parent.add(key)

    def child(self) -> RequestLog:
        return RequestLog(parent=self)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass
class Listing:
    """The outcome of listing one kind in one pass."""

    kind: str
    records: list[dict[str, Any]]
    complete: bool
    error: str | None = None
    requests: int = 0
    seconds: float = 0.0
    skipped: bool = False
    # how many resources were listed (kept when a pass drops the records once stored)
    count: int = -1
    # ids of the resources listed exactly as stored, whose records were not built
    # (sources/openstack/rawskip.py), and the raw hashes of the records built
    unchanged: list[str] = field(default_factory=list)
    raw_hashes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.count < 0:
            self.count = len(self.records) + len(self.unchanged)

    def ids(self) -> set[str]:
        """The ids of every resource listed, built or not."""
        return {str(r["id"]) for r in self.records}.union(self.unchanged)


_ENDPOINTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_ENDPOINTS_LOCK = threading.Lock()


def endpoint_of(proxy: Any) -> str:
    """The service's versioned endpoint, looked up once per proxy: given a relative
    path, keystoneauth walks (and deep-copies) the service catalog on every request,
    which costs more than decoding a 1,000-item page."""
    with _ENDPOINTS_LOCK:
        endpoint = _ENDPOINTS.get(proxy)
    if endpoint is None:
        # the Adapter's method: the identity proxy shadows get_endpoint with the API call
        # that reads one Keystone endpoint
        found = Adapter.get_endpoint(proxy)
        if not found:
            raise ksa_exc.EndpointNotFound(f"no {proxy.service_type} endpoint in the catalog")
        endpoint = str(found).rstrip("/")
        with _ENDPOINTS_LOCK:
            _ENDPOINTS[proxy] = endpoint
    return endpoint


def request_json(
    proxy: Any,
    path: str,
    log: RequestLog,
    label: str,
    params: dict[str, Any] | None = None,
    microversion: str | None = None,
    headers: dict[str, str] | None = None,
    decode: Callable[[Any, str], Any] | None = None,
) -> Any:
    """GET `path` on a service proxy and decode the JSON body (with `decode`, default
    decode_body); errors become ListingError naming the service, call and cause."""
    log.add(label)
    try:
        response = proxy.get(
            endpoint_of(proxy) + path,
            params=params,
            microversion=microversion,
            headers=headers,
            raise_exc=False,
        )
    except ksa_exc.EndpointNotFound as exc:
        raise ServiceMissing(f"{label}: service not in the catalog") from exc
    except (ksa_exc.ClientException, openstack.exceptions.SDKException) as exc:
        raise ListingError(f"{label}: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 400:
        raise RequestRefused(
            f"{label}: HTTP {response.status_code}: {_error_text(response)}", response.status_code
        )
    return (decode or decode_body)(response, label)


_RAW_PAGES: dict[str, type[msgspec.Struct]] = {}


def raw_page_decoder(collection: str) -> Callable[[Any, str], Any]:
    """A decoder of list pages whose `collection` items stay raw JSON (`msgspec.Raw`):
    the body's collection, its links and `next`, the rest left out. A body it cannot
    read so (no such list, or what msgspec refuses) is decoded whole by decode_body,
    its items as dicts."""
    page = _RAW_PAGES.get(collection)
    if page is None:
        page = msgspec.defstruct(
            f"RawPage_{collection}",
            [
                (collection, list[msgspec.Raw]),
                (f"{collection}_links", Any, None),
                ("next", Any, None),
            ],
        )
        _RAW_PAGES[collection] = page

    def decode(response: Any, label: str) -> Any:
        try:
            return msgspec.structs.asdict(msgspec.json.decode(response.content, type=page))
        except (msgspec.DecodeError, msgspec.ValidationError):
            return decode_body(response, label)

    return decode


def decode_body(response: Any, label: str) -> Any:
    """The JSON body of a response, decoded with orjson: 3-4x faster than the standard
    library on list pages, the largest part of a pass after the HTTP calls. Bodies
    orjson refuses (not UTF-8, NaN, integers beyond 64 bits) go through `requests`'
    own decoder, which accepts them."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        pass
    try:
        return response.json()
    except ValueError as exc:
        raise ListingError(f"{label}: response is not JSON ({exc})") from exc


def _error_text(response: Any) -> str:
    text = (response.text or "").strip().replace("\n", " ")
    return text[:300]


def marker_from(link: str | None) -> str | None:
    """The `marker` query parameter of a next link (absolute or relative)."""
    if not link:
        return None
    values = parse_qs(urlsplit(link).query).get("marker")
    return values[-1] if values else None


def next_link(body: dict[str, Any], collection: str) -> str | None:
    """The next-page link in any of the shapes OpenStack services use."""
    for link in body.get(f"{collection}_links") or []:
        if link.get("rel") == "next":
            return str(link.get("href"))
    nxt = body.get("next")
    return str(nxt) if isinstance(nxt, str) else None


def iter_pages(
    proxy: Any,
    path: str,
    collection: str,
    log: RequestLog,
    label: str,
    params: dict[str, Any] | None = None,
    microversion: str | None = None,
    marker_key: str = "id",
    page_size: int = PAGE_SIZE,
    headers: dict[str, str] | None = None,
    raw: bool = False,
) -> Iterator[list[Any]]:
    """Every page of a marker-paginated list call; with `raw`, items as `msgspec.Raw`
    where the page allowed it (see raw_page_decoder), dicts otherwise."""
    decode = raw_page_decoder(collection) if raw else None
    marker: str | None = None
    seen_markers: set[str] = set()
    for _ in range(MAX_PAGES):
        query = dict(params or {}, limit=page_size)
        if marker:
            query["marker"] = marker
        body = request_json(proxy, path, log, label, query, microversion, headers, decode)
        items = body.get(collection)
        if not isinstance(items, list):
            raise ListingError(f"{label}: response has no {collection!r} list")
        yield items
        link = next_link(body, collection)
        if link:
            marker = marker_from(link) or (_key_of(items[-1], marker_key) if items else None)
        elif len(items) >= page_size and items:
            marker = _key_of(items[-1], marker_key)
        else:
            return
        if not marker or marker in seen_markers:
            if not items:
                return
            raise ListingError(f"{label}: pagination loops at marker {marker!r}")
        seen_markers.add(marker)
    raise ListingError(f"{label}: more than {MAX_PAGES} pages")


def _key_of(item: Any, key: str) -> str:
    """An item's `key` field, of a dict or a raw JSON item."""
    if isinstance(item, msgspec.Raw):
        item = msgspec.json.decode(item)
    return str(item[key])


def timed_listing(
    kind: str, log: RequestLog, read: Callable[[RequestLog], list[dict[str, Any]]]
) -> Listing:
    """Run one kind's listing with its own request log (a child of `log`), turning
    failures into an incomplete Listing."""
    start = time.perf_counter()
    own = log.child()
    try:
        records = read(own)
        return Listing(kind, records, True, requests=own.total, seconds=time.perf_counter() - start)
    except ServiceMissing as exc:
        return Listing(
            kind, [], False, f"skipped: {exc}", own.total, time.perf_counter() - start, True
        )
    except ListingError as exc:
        return Listing(kind, [], False, str(exc), own.total, time.perf_counter() - start)
