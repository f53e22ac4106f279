"""Nova server diagnostics: one server's cumulative CPU, disk and network counters and
its memory, read from ``GET /servers/{id}/diagnostics``.

At compute API microversion 2.48 and later the body has one standard shape for every
virt driver (``cpu_details[].time`` in nanoseconds, ``memory_details`` in MiB, disk
``read_bytes``/``write_bytes``, NIC ``rx_octets``/``tx_octets``, ``uptime`` in seconds);
before 2.48 it is the driver's own flat dict (libvirt: ``cpu0_time``, ``vda_read``,
``vnet0_rx``, ``memory`` in KiB ...). Both are read here. The call is admin-only by
default (policy ``os_compute_api:os-server-diagnostics``) and Nova answers 409 for a
server whose power state is not running, 404 for one that is gone.

Requests go through the compute proxy of an openstacksdk connection (its session, auth
and microversion handling); bodies are read as raw JSON (DESIGN.md).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import keystoneauth1.exceptions as ksa_exc
import openstack.exceptions

from stackfleet.sources.openstack.listing import RequestLog, endpoint_of

log = logging.getLogger(__name__)

MICROVERSION = "2.48"
LABEL = "compute GET /servers/{server_id}/diagnostics"

# HTTP status -> why a server has no reading (what the operator sees)
REASONS = {
    400: "bad request",
    403: "forbidden by policy (diagnostics are admin-only by default)",
    404: "server not found (deleted?)",
    409: "not running (Nova reads diagnostics only from running servers)",
    501: "not supported by the virt driver",
}


@dataclass(frozen=True)
class Diagnostics:
    """One reading of one server. Counters are cumulative since the domain started;
    `None` where the driver did not report the value. `ts` is when the reading arrived
    (seconds since the epoch)."""

    server_id: str
    ts: float
    state: str | None = None
    uptime: float | None = None
    num_cpus: int | None = None
    cpu_time_seconds: float | None = None
    memory_max_mb: float | None = None
    memory_used_mb: float | None = None
    disk_read_bytes: float | None = None
    disk_write_bytes: float | None = None
    net_rx_bytes: float | None = None
    net_tx_bytes: float | None = None


@dataclass(frozen=True)
class DiagnosticsFailure:
    """A server whose diagnostics could not be read: the HTTP status (None for a
    connection error) and a reason for the operator."""

    server_id: str
    status: int | None
    reason: str


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _total(items: Sequence[Any], key: str) -> float | None:
    values = [_number(item.get(key)) for item in items if isinstance(item, dict)]
    known = [v for v in values if v is not None]
    return sum(known) if known else None


# pre-2.48 libvirt keys: cpu0_time, vda_read, vda_write, vnet0_rx, tap1234_tx ...
_LEGACY_CPU = re.compile(r"^cpu\d+_time$")
_LEGACY_DISK = re.compile(r"^(?P<dev>[a-z]+d[a-z]+)_(?P<what>read|write)$")
_LEGACY_NIC = re.compile(r"^(?P<dev>.+)_(?P<what>rx|tx)$")


def parse_diagnostics(server_id: str, body: Any, ts: float) -> Diagnostics:
    """A reading from a diagnostics body of either format (2.48+ or the driver's own)."""
    if not isinstance(body, dict):
        raise ValueError("diagnostics body is not a JSON object")
    if "cpu_details" in body or "memory_details" in body:
        cpus = body.get("cpu_details") or []
        memory = body.get("memory_details") or {}
        cpu_ns = _total(cpus, "time")
        num_cpus = body.get("num_cpus")
        return Diagnostics(
            server_id=server_id,
            ts=ts,
            state=body.get("state"),
            uptime=_number(body.get("uptime")),
            num_cpus=int(num_cpus) if isinstance(num_cpus, int) and num_cpus > 0 else None,
            cpu_time_seconds=None if cpu_ns is None else cpu_ns / 1e9,
            memory_max_mb=_number(memory.get("maximum")),
            memory_used_mb=_number(memory.get("used")),
            disk_read_bytes=_total(body.get("disk_details") or [], "read_bytes"),
            disk_write_bytes=_total(body.get("disk_details") or [], "write_bytes"),
            net_rx_bytes=_total(body.get("nic_details") or [], "rx_octets"),
            net_tx_bytes=_total(body.get("nic_details") or [], "tx_octets"),
        )
    cpu_ns = 0.0
    cpus = 0
    sums = {"read": 0.0, "write": 0.0, "rx": 0.0, "tx": 0.0}
    seen: set[str] = set()
    for key, raw in body.items():
        value = _number(raw)
        if value is None:
            continue
        if _LEGACY_CPU.match(key):
            cpu_ns += value
            cpus += 1
        elif match := (_LEGACY_DISK.match(key) or _LEGACY_NIC.match(key)):
            sums[match["what"]] += value
            seen.add(match["what"])
    memory_kib = _number(body.get("memory"))

    def seen_sum(what: str) -> float | None:
        return sums[what] if what in seen else None

    return Diagnostics(
        server_id=server_id,
        ts=ts,
        num_cpus=cpus or None,
        cpu_time_seconds=cpu_ns / 1e9 if cpus else None,
        memory_max_mb=None if memory_kib is None else memory_kib / 1024,
        disk_read_bytes=seen_sum("read"),
        disk_write_bytes=seen_sum("write"),
        net_rx_bytes=seen_sum("rx"),
        net_tx_bytes=seen_sum("tx"),
    )


def _error_text(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or "").strip()[:200]
    if isinstance(body, dict):
        for value in body.values():
            if isinstance(value, dict) and value.get("message"):
                return str(value["message"])[:200]
    return str(body)[:200]


def read_diagnostics(
    compute: Any, server_id: str, log_: RequestLog | None = None
) -> Diagnostics | DiagnosticsFailure:
    """One server's diagnostics through the compute proxy `compute`, or why not."""
    if log_ is not None:
        log_.add(LABEL)
    try:
        response = compute.get(
            f"{endpoint_of(compute)}/servers/{server_id}/diagnostics",
            microversion=MICROVERSION,
            raise_exc=False,
        )
    except (ksa_exc.ClientException, openstack.exceptions.SDKException) as exc:
        return DiagnosticsFailure(server_id, None, f"{type(exc).__name__}: {exc}")
    arrived = time.time()
    if response.status_code >= 400:
        reason = REASONS.get(response.status_code, "error")
        detail = _error_text(response)
        return DiagnosticsFailure(
            server_id,
            response.status_code,
            f"HTTP {response.status_code}: {reason}" + (f" ({detail})" if detail else ""),
        )
    try:
        return parse_diagnostics(server_id, response.json(), arrived)
    except ValueError as exc:
        return DiagnosticsFailure(server_id, response.status_code, f"unreadable body: {exc}")


def read_many(
    compute: Any,
    server_ids: Sequence[str],
    concurrency: int = 8,
    log_: RequestLog | None = None,
    read: Callable[[Any, str, RequestLog | None], Diagnostics | DiagnosticsFailure] | None = None,
) -> list[Diagnostics | DiagnosticsFailure]:
    """Diagnostics of `server_ids`, at most `concurrency` requests at a time, in order."""
    reader = read or read_diagnostics

    def one(server_id: str) -> Diagnostics | DiagnosticsFailure:
        return reader(compute, server_id, log_)

    if len(server_ids) <= 1 or concurrency <= 1:
        return [one(s) for s in server_ids]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(server_ids))) as pool:
        return list(pool.map(one, server_ids))
