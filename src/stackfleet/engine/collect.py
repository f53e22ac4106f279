"""A collection pass: list every kind of a cloud region concurrently and record what
was seen. Kinds are written to the store as their listings finish; a kind whose
listing failed is recorded as incomplete, and nothing of it is marked gone. So is a
kind whose listing looks complete but shrank sharply since the last pass (a page cut
short with its next link dropped looks like the end of the list): it waits for the
next pass to confirm the shrink (store.inventory.ShrinkLimit). A listing missing any
resource the store has live is read a second time: when that read shows some of them,
the first was cut and the kind is recorded incomplete; when it agrees, a few of the
missing resources are read by id, and one still there (a lagging replica's listing from
before it was made) makes the kind incomplete too. A listing from an older state of
the cloud (a stale replica) is not believed either (store.inventory, STALE_LISTING)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from stackfleet.core.errors import StackFleetError
from stackfleet.model import KINDS
from stackfleet.model.workloads import META_WORKLOAD, workloads_from_members
from stackfleet.sources.openstack import LISTERS, ListContext
from stackfleet.sources.openstack.capacity import DEFAULT_AGENT_INTERVAL
from stackfleet.sources.openstack.connection import CloudTarget, close_targets, connect
from stackfleet.sources.openstack.listing import Listing, ListingError, RequestLog, timed_listing
from stackfleet.sources.openstack.rawskip import RAW_SKIP_KINDS, RawSkip
from stackfleet.sources.openstack.refresh import ResourceGone, read_one, refreshable
from stackfleet.store import Store
from stackfleet.store.inventory import ShrinkLimit, current_attrs, live_ids, raw_hashes

log = logging.getLogger(__name__)

Progress = Callable[[CloudTarget, Listing], None]

_gc_pauses = 0
_gc_resume = False
_gc_lock = threading.Lock()
# Seconds between full collections at the start of a pass (see cyclic_gc_paused).
FULL_COLLECTION_EVERY = 60.0
_last_full_collection = time.monotonic()


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the duration of a pass (nesting and
    concurrent passes allowed: it resumes when the last one ends, if it was on).

    A pass holds every decoded page and record of a region until its kind is stored:
    hundreds of thousands of containers without reference cycles. While they pile up
    the collector walks all of them again at every full collection and frees nothing
    (a pass over the benchmark fleet leaves ~5,000 cyclic objects, an incremental one
    ~60): pausing saves a third of a first pass's CPU time and half of a later one's.

    What a pass leaves in the oldest generation is collected only by a full
    collection, which the interpreter starts when that generation has grown by a quarter
    through its own promotions: passes that allocate with the collector off promote
    nearly nothing, so the reference cycles of every pass (closed connections, sessions,
    their proxies: ~150 kB a pass) piled up for good in a daemon. So a pass starts with
    a full collection when the last one is FULL_COLLECTION_EVERY seconds old: then the
    previous pass's records are gone and the walk is short."""
    global _gc_pauses, _gc_resume, _last_full_collection
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_resume = gc.isenabled()
            now = time.monotonic()
            if _gc_resume and now - _last_full_collection >= FULL_COLLECTION_EVERY:
                gc.collect()
                _last_full_collection = now
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_resume:
                if not gc.get_freeze_count():
                    # Everything the pass allocated is still in the youngest generation:
                    # the first collection after resuming would walk all of it (the
                    # PassResult holds every record). Freezing and unfreezing moves it
                    # to the oldest generation without walking it; it is collected
                    # there as usual.
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()


@dataclass
class PassResult:
    """What one pass over one cloud region did."""

    pass_id: int
    cloud: str
    region: str
    status: str
    error: str | None
    listings: dict[str, Listing] = field(default_factory=dict)
    requests: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def run_pass(
    store: Store,
    target: CloudTarget,
    kinds: Iterable[str] | None = None,
    progress: Progress | None = None,
    concurrency: int = 8,
    agent_interval: float = DEFAULT_AGENT_INTERVAL,
    shrink: ShrinkLimit | None = ShrinkLimit(),
    keep_records: bool = True,
) -> PassResult:
    """One pass over one cloud region. L3/DHCP agents' hosting is read again when it is
    `agent_interval` seconds old (or sooner, when it looks changed; 0: every pass). A
    kind shrinking past `shrink` is held as incomplete until the next pass confirms it
    (None: believe every complete-looking listing at once). Without `keep_records`, each
    kind's records are dropped from the result once stored (`Listing.count` keeps how
    many there were): a pass then holds about one kind's records at a time, not the
    whole region's."""
    with cyclic_gc_paused():
        return _run_pass(
            store, target, kinds, progress, concurrency, agent_interval, shrink, keep_records
        )


def _run_pass(
    store: Store,
    target: CloudTarget,
    kinds: Iterable[str] | None,
    progress: Progress | None,
    concurrency: int,
    agent_interval: float = DEFAULT_AGENT_INTERVAL,
    shrink: ShrinkLimit | None = None,
    keep_records: bool = True,
) -> PassResult:
    started = time.perf_counter()
    wanted = list(kinds or LISTERS)
    pass_id = store.begin_pass(target.cloud, target.region)
    request_log = RequestLog()
    ctx = ListContext(
        target,
        request_log,
        previous={
            kind_name: current_attrs(store, target.cloud, target.region, kind_name)
            for kind_name in ("hypervisor", "network_agent")
            if kind_name in wanted
        },
        concurrency=concurrency,
        agent_interval=agent_interval,
    )
    listings: dict[str, Listing] = {}
    sources: dict[str, Listing] = {}
    # a pass that keeps every record in its result builds every item; one that drops
    # them skips the items listed exactly as stored (sources/openstack/rawskip.py)
    raw_known = (
        {}
        if keep_records
        else {
            k: raw_hashes(store, target.cloud, target.region, k)
            for k in wanted
            if k in RAW_SKIP_KINDS
        }
    )
    try:
        narrow = project_view(target)
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="list") as pool:
            futures: dict[Future[Listing], str] = {
                pool.submit(_listing, ctx, k, request_log, raw_known.get(k)): k for k in wanted
            }
            for future in as_completed(futures):
                listing = future.result()
                if narrow and listing.complete and KINDS[listing.kind].project_api is not None:
                    listing = replace(listing, complete=False, error=narrow)
                if shrink is not None and listing.complete and not listing.skipped:
                    listing = _read_again_if_shrunk(store, target, ctx, listing, request_log)
                outcome = store.record_kind(
                    pass_id,
                    target.cloud,
                    target.region,
                    listing.kind,
                    listing.records,
                    listing.complete,
                    listing.error,
                    listing.requests,
                    listing.seconds,
                    shrink=shrink,
                    unchanged=listing.unchanged,
                    raw_hashes=listing.raw_hashes,
                )
                if outcome.held:
                    listing = replace(listing, complete=False, error=outcome.held)
                # workloads are derived from their members' records: kept before dropped
                if listing.kind in WORKLOAD_SOURCES:
                    sources[listing.kind] = _workload_part(listing)
                if not keep_records:
                    listing = replace(listing, records=[], unchanged=[], raw_hashes={})
                listings[listing.kind] = listing
                if listing.error:
                    log.warning(
                        "%s/%s %s: %s", target.cloud, target.region, listing.kind, listing.error
                    )
                if progress:
                    progress(target, listing)
        if "server" in sources and not sources["server"].skipped:
            _record_workloads(store, pass_id, target, sources)
    except BaseException as exc:
        store.finish_pass(pass_id, "failed", f"{type(exc).__name__}: {exc}", request_log.total)
        raise
    failed = [k for k, lst in listings.items() if not lst.complete and not lst.skipped]
    status = "complete" if not failed else ("failed" if len(failed) == len(listings) else "partial")
    error = "; ".join(listings[k].error or "" for k in sorted(failed)) or None
    store.finish_pass(pass_id, status, error, request_log.total)
    return PassResult(
        pass_id,
        target.cloud,
        target.region,
        status,
        error,
        listings,
        request_log.counts,
        time.perf_counter() - started,
    )


# the kinds workload members are listed as (standalone Ironic members: allocations with
# their nodes), and which of them a workload listing must have to be complete
WORKLOAD_SOURCES = ("server", "baremetal_allocation", "baremetal_node", "container")
_MEMBER_KINDS = ("server", "baremetal_allocation", "container")


def _record_workloads(
    store: Store, pass_id: int, target: CloudTarget, sources: dict[str, Listing]
) -> None:
    """The `workload` kind, derived from the members just listed (their labels). It is
    complete only when every kind members are listed as was listed completely, or
    skipped because the cloud has no such service: a pass that did not list containers,
    or could not, makes no container workload gone."""
    complete = all(
        kind in sources and (sources[kind].complete or _not_in_catalog(sources[kind]))
        for kind in _MEMBER_KINDS
    )
    errors = [f"{k}: {sources[k].error}" for k in _MEMBER_KINDS if k in sources and
              sources[k].error and not _not_in_catalog(sources[k])]  # fmt: skip
    missing = [k for k in _MEMBER_KINDS if k not in sources]
    if missing:
        errors.append(f"not listed in this pass: {', '.join(missing)}")

    def records(kind: str) -> list[dict[str, Any]]:
        return sources[kind].records if kind in sources else []

    store.record_kind(
        pass_id,
        target.cloud,
        target.region,
        "workload",
        workloads_from_members(
            records("server"),
            records("baremetal_allocation"),
            records("baremetal_node"),
            records("container"),
        ),
        complete,
        "; ".join(errors) or None,
    )


# How many of the resources missing from a listing are read by id to confirm they are
# gone (see _read_again_if_shrunk): enough to catch a listing from the past, which
# misses every resource made since (a sample of any of them shows it), cheap for a pass
# in which a few resources were deleted (one GET each, answered 404).
CONFIRM_GONE = 10


def _workload_part(listing: Listing) -> Listing:
    """Only what workloads are derived from (labelled members, allocated nodes): the
    rest of a large listing is not held until the pass ends."""
    if listing.kind == "baremetal_node":
        keep = [r for r in listing.records if r.get("instance_uuid")]
    else:
        field = {"server": "metadata", "baremetal_allocation": "extra"}.get(listing.kind, "labels")
        keep = [r for r in listing.records if META_WORKLOAD in (r.get(field) or {})]
    return replace(listing, records=keep)


def _not_in_catalog(listing: Listing) -> bool:
    return listing.skipped and "not in the catalog" in str(listing.error)


def _read_again_if_shrunk(
    store: Store, target: CloudTarget, ctx: ListContext, listing: Listing, log: RequestLog
) -> Listing:
    """A complete-looking listing that misses resources the store has live is read a
    second time. A page cut short with its next link dropped looks like the end of the
    list, and the shrink limit only catches large cuts: when the second read shows any
    of the missing resources, the first was cut, and the kind is recorded incomplete
    (nothing marked gone). Costs one more listing of a kind only when something of it
    disappeared.

    A lagging replica or cache answers the second read as it answered the first, from
    the same older state: resources made since are missing from both. So up to
    CONFIRM_GONE of the missing resources are then read by id (kinds that can be read
    on their own): one that is still there, or that cannot be read, means the listing
    cannot be believed either."""
    missing = live_ids(store, target.cloud, target.region, listing.kind) - listing.ids()
    if not missing:
        return listing
    again = timed_listing(listing.kind, log, partial(_list_one, ctx, listing.kind))
    requests = listing.requests + again.requests
    if not again.complete:
        return replace(
            listing,
            complete=False,
            requests=requests,
            error=f"{len(missing)} {listing.kind}s missing; reading them again failed: "
            f"{again.error}",
        )
    back = missing & again.ids()
    if back:
        return replace(
            listing,
            complete=False,
            requests=requests,
            error=f"inconsistent listing: {len(back)} of the {len(missing)} {listing.kind}s "
            "missing from it were listed by a second read right after (a page cut short?); "
            "nothing of it is marked gone",
        )
    own = log.child()
    doubt = _still_there(target, listing.kind, sorted(missing)[:CONFIRM_GONE], own)
    requests += own.total
    if doubt:
        return replace(
            listing,
            complete=False,
            requests=requests,
            error=f"inconsistent listing: {len(missing)} {listing.kind}s missing from it "
            f"(twice), but {doubt}; nothing of it is marked gone",
        )
    return replace(listing, requests=requests)


def _still_there(target: CloudTarget, kind_name: str, ids: list[str], log: RequestLog) -> str:
    """Read resources missing from a listing by id: why they are not known to be gone
    ("" when each one answered 404, or the kind cannot be read on its own)."""
    if not refreshable(kind_name):
        return ""
    for resource_id in ids:
        try:
            read_one(target, kind_name, resource_id, log)
        except ResourceGone:
            continue
        except ListingError as exc:
            return f"{kind_name} {resource_id} could not be read by id to confirm it is gone: {exc}"
        return f"{kind_name} {resource_id} is still there when read by id (a stale listing?)"
    return ""


def project_view(target: CloudTarget) -> str | None:
    """Why the target's credentials see only their own project, or None when they see
    the whole fleet. Several services answer a project member's fleet-wide listing with
    just that project's resources and a 200 (Cinder ignores all_tenants, Neutron filters
    silently), which would make every other project's resources look gone: such
    listings are kept but recorded as incomplete."""
    session = target.conn.session
    auth: Any = session.auth
    try:
        access = auth.get_access(session)
    except Exception:  # noqa: BLE001 - no token details: trust the listings' own errors
        return None
    roles = {name.lower() for name in (access.role_names or [])}
    if "admin" in roles or (access.system_scoped and "reader" in roles):
        return None
    scope = (
        f"project {access.project_name or access.project_id}" if access.project_id else "its scope"
    )
    return (
        f"the credentials of cloud {target.cloud!r} (roles: {', '.join(sorted(roles)) or 'none'}) "
        f"see only {scope}; use an admin cloud for a fleet-wide pass"
    )


def _list_one(ctx: ListContext, kind_name: str, log: RequestLog) -> list[dict[str, Any]]:
    return LISTERS[kind_name](replace(ctx, log=log))


def _listing(
    ctx: ListContext, kind_name: str, log: RequestLog, known: dict[str, str] | None
) -> Listing:
    """One kind's listing; with `known` (raw hash -> id of its stored live rows), the
    items listed exactly as stored are only counted (`Listing.unchanged`)."""
    if known is None:
        return timed_listing(kind_name, log, partial(_list_one, ctx, kind_name))
    skip = RawSkip(kind_name, known)
    listing = timed_listing(kind_name, log, partial(_list_one, replace(ctx, raw=skip), kind_name))
    if not listing.complete:
        return listing
    return replace(
        listing,
        unchanged=skip.unchanged,
        raw_hashes=skip.hashes,
        count=len(listing.records) + len(skip.unchanged),
    )


def collect(
    store: Store,
    cloud: str,
    region: str | None = None,
    system_cloud: str | None = None,
    config_files: list[str] | None = None,
    kinds: Iterable[str] | None = None,
    progress: Progress | None = None,
    agent_interval: float = DEFAULT_AGENT_INTERVAL,
    shrink: ShrinkLimit | None = ShrinkLimit(),
    keep_records: bool = True,
) -> list[PassResult]:
    """A pass over every region of `cloud`. A cloud that cannot be reached leaves a
    failed pass record (and nothing else) and raises its error. `shrink` and
    `keep_records`: see run_pass. The pass's connections are closed when it ends (each
    pass authenticates afresh)."""
    try:
        targets = connect(cloud, region, system_cloud, config_files)
    except StackFleetError as exc:
        pass_id = store.begin_pass(cloud, region or "")
        store.finish_pass(pass_id, "failed", str(exc), 0)
        raise
    try:
        return [
            run_pass(
                store,
                t,
                kinds,
                progress,
                agent_interval=agent_interval,
                shrink=shrink,
                keep_records=keep_records,
            )
            for t in targets
        ]
    finally:
        close_targets(targets)
