"""A collection pass: list every kind of a cloud region concurrently and record what
was seen. Kinds are written to the store as their listings finish; a kind whose
listing failed is recorded as incomplete, and nothing of it is marked gone."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from stackfleet.errors import StackFleetError
from stackfleet.sources.openstack import LISTERS, ListContext
from stackfleet.sources.openstack.connection import CloudTarget, connect
from stackfleet.sources.openstack.listing import Listing, RequestLog, timed_listing
from stackfleet.store import Store
from stackfleet.store.inventory import current_attrs

log = logging.getLogger(__name__)

Progress = Callable[[CloudTarget, Listing], None]


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
) -> PassResult:
    """One pass over one cloud region."""
    started = time.perf_counter()
    wanted = list(kinds or LISTERS)
    pass_id = store.begin_pass(target.cloud, target.region)
    request_log = RequestLog()
    ctx = ListContext(
        target,
        request_log,
        previous={"hypervisor": current_attrs(store, target.cloud, target.region, "hypervisor")},
        concurrency=concurrency,
    )
    listings: dict[str, Listing] = {}
    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="list") as pool:
            futures: dict[Future[Listing], str] = {
                pool.submit(timed_listing, k, request_log, partial(_list_one, ctx, k)): k
                for k in wanted
            }
            for future in as_completed(futures):
                listing = future.result()
                listings[listing.kind] = listing
                store.record_kind(
                    pass_id,
                    target.cloud,
                    target.region,
                    listing.kind,
                    listing.records,
                    listing.complete,
                    listing.error,
                    listing.requests,
                    listing.seconds,
                )
                if listing.error:
                    log.warning(
                        "%s/%s %s: %s", target.cloud, target.region, listing.kind, listing.error
                    )
                if progress:
                    progress(target, listing)
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


def _list_one(ctx: ListContext, kind_name: str, log: RequestLog) -> list[dict[str, Any]]:
    return LISTERS[kind_name](replace(ctx, log=log))


def collect(
    store: Store,
    cloud: str,
    region: str | None = None,
    system_cloud: str | None = None,
    config_files: list[str] | None = None,
    kinds: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> list[PassResult]:
    """A pass over every region of `cloud`. A cloud that cannot be reached leaves a
    failed pass record (and nothing else) and raises its error."""
    try:
        targets = connect(cloud, region, system_cloud, config_files)
    except StackFleetError as exc:
        pass_id = store.begin_pass(cloud, region or "")
        store.finish_pass(pass_id, "failed", str(exc), 0)
        raise
    return [run_pass(store, t, kinds, progress) for t in targets]
