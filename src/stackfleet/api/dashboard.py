"""Read routes the web dashboard needs beyond the rest of the API: one overview of the
fleet (`GET /v1/overview`, the dashboard's first page in one request), who the caller
is (`GET /v1/whoami`, so the page knows whether to ask for a token and whether its
user may approve) and the series of one host (`GET /v1/nodes/{host}/series`).

The overview's costly parts — the waste and compliance reports (the packs evaluated as
a dry-run) and capacity headroom — change only with a pass, so they are computed once
per newest pass and kept; alerts, findings and the hosts' states are read at each call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from stackfleet.alerts.dispatch import silenced_by
from stackfleet.api import auth, rbac
from stackfleet.api.deps import get_store
from stackfleet.api.errors import error_responses
from stackfleet.api.hardware import policies_in_force
from stackfleet.core.errors import NotFoundError
from stackfleet.engine.capacity import capacity_report, load_fleet
from stackfleet.engine.hardware import hardware_report
from stackfleet.engine.nodes import find_node
from stackfleet.engine.reports import compliance_report, waste_report
from stackfleet.policy import load_files
from stackfleet.policy.loader import pack_names
from stackfleet.policy.schema import Policy
from stackfleet.store import Store
from stackfleet.store import alerts as alert_store
from stackfleet.store.findings import counts_by_policy
from stackfleet.store.marks import inventory_marks
from stackfleet.store.metrics import resource_series
from stackfleet.store.usage import newest_values

log = logging.getLogger(__name__)

router = APIRouter(tags=["dashboard"])

COMPLIANCE_PACKS = ("security", "ha")
HOST_USAGE = ("cpu_util", "memory_used_percent")
MAX_SERIES_HOURS = 24 * 14


class OverviewOut(BaseModel):
    """The fleet at a glance: the dashboard's overview page."""

    model_config = ConfigDict(extra="allow")

    generated_at: str
    passes: list[dict[str, Any]] = Field(description="The newest passes, newest first.")
    servers: int = Field(description="Servers in the inventory.")
    hosts: list[dict[str, Any]] = Field(
        description="Every hypervisor: region, zone, state, enabled, allocation % of "
        "vCPU, RAM and disk (Placement: cpu, ram, disk) and real use from the newest "
        "usage samples (cpu_util, memory_used_percent; null when no usage source "
        "reports them). Empty with ?hosts=columns."
    )
    host_columns: dict[str, list[Any]] | None = Field(
        None,
        description="?hosts=columns: the same hosts as one list per field (host, cloud, "
        "region, zone, state, enabled, cpu, ram, disk, cpu_util, memory_used_percent).",
    )
    alerts: dict[str, dict[str, int]] = Field(
        description="Firing alerts: severity -> total, acknowledged, silenced -> count."
    )
    findings: dict[str, dict[str, int]] = Field(
        description="Open findings: pack (the policy's `pack` label) -> policy -> count."
    )
    waste: list[dict[str, Any]] = Field(
        description="As GET /v1/reports/waste: per policy what reclaiming frees, last row "
        "the total."
    )
    compliance: list[dict[str, Any]] = Field(
        description="Per pack (security, ha): rules, rules passing, resources checked and "
        "failing, and the score (% of rules passing)."
    )
    capacity: list[dict[str, Any]] = Field(description="As GET /v1/capacity.")
    hardware: dict[str, int] = Field(description="Hosts with a BMC by hardware status.")
    reports_pending: bool = Field(
        description="The waste, compliance and capacity parts of the newest pass are "
        "still being computed (those shown are of `reports_pass`, or empty)."
    )
    reports_pass: int | None = Field(description="The pass the reports were computed after.")


class WhoAmI(BaseModel):
    """The caller of the request, and how the API authenticates."""

    authenticated: bool
    auth: str = Field(description="keystone, local (one operator token) or off")
    read: str = Field(description="open (reads need no token) or authenticated")
    user: str | None = None
    role: str | None = Field(None, description="operator, system-reader, project-member, ...")
    project_id: str | None = None
    expires_at: str | None = None
    can_write: bool = Field(description="Whether the caller may approve, ack and silence.")
    login_hint: str = Field(description="Where to get a token.")


class HostSeries(BaseModel):
    """A host's metric samples (usage and hardware readings) over a window."""

    host: str
    kind: str
    id: str
    since: float
    series: dict[str, list[tuple[float, float]]] = Field(
        description="metric -> [(Unix time, value)], oldest first."
    )


@cache
def _pack_policies() -> dict[str, list[Policy]]:
    """The built-in packs' enabled policies, read once."""
    return {
        name: [p for p in load_files([f"pack:{name}"]) if p.spec.enabled] for name in pack_names()
    }


@cache
def _pack_of_policy() -> dict[str, str]:
    return {
        p.name: str(p.spec.labels.get("pack") or pack)
        for pack, policies in _pack_policies().items()
        for p in policies
    }


class ReportCache:
    """The overview's per-pass parts, computed once for each newest pass in a thread of
    their own: on a large fleet they take seconds (the packs evaluated over every
    resource), and the overview must not wait for them. Until the first computation
    ends the answer says `reports_pending`; after a new pass the previous pass's
    reports are shown (with the pass they belong to) while the new ones are computed."""

    # how long a request waits for a computation it started (a small fleet's is done)
    WAIT = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: Any = None
        self._value: dict[str, Any] | None = None
        self._worker: threading.Thread | None = None
        self._wanted: Any = None

    def get(self, store: Store, key: Any) -> tuple[dict[str, Any] | None, bool]:
        """(the newest computed reports or None, whether newer ones are on the way)."""
        with self._lock:
            if key != self._key and (self._worker is None or not self._worker.is_alive()):
                self._wanted = key
                self._worker = threading.Thread(
                    target=self._compute, args=(store, key), name="overview-reports", daemon=True
                )
                self._worker.start()
            worker = self._worker
        if key != self._key and worker is not None:
            worker.join(self.WAIT)
        with self._lock:
            return self._value, key != self._key

    def _compute(self, store: Store, key: Any) -> None:
        try:
            value = _per_pass(store)
        except Exception:  # a failed computation is retried at the next request
            log.exception("the overview's reports could not be computed")
            return
        with self._lock:
            self._value, self._key = {**value, "reports_pass": key[0] if key else None}, key


class InventoryCache:
    """The overview's inventory part — every hypervisor with its zone and allocation,
    and the number of servers — kept while the inventory is unchanged: on 1,000 hosts
    and 20,000 servers it is three reads of whole kinds (0.3–0.5 s on a busy machine)
    for an answer that changes only when a pass lands or an event changes a resource.
    The key is the newest pass, the newest recorded change (status, host, power...,
    by a pass or an event) and the newest resource row, all read from primary keys;
    what no key shows (a deletion announced by an event, an allocation an event
    re-read) is picked up within MAX_AGE. Real use (usage samples) is read at every
    call."""

    MAX_AGE = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: Any = None
        self._at = 0.0
        self._value: tuple[list[dict[str, Any]], int] | None = None

    def get(self, store: Store, pass_key: Any) -> tuple[list[dict[str, Any]], int]:
        key = (pass_key, *inventory_marks(store))
        with self._lock:
            fresh = time.monotonic() - self._at < self.MAX_AGE
            if key == self._key and fresh and self._value is not None:
                return self._value
        value = (_hypervisors(store), store.list_resources("server", limit=1)[1])
        with self._lock:
            self._key, self._value, self._at = key, value, time.monotonic()
        return value


def _per_pass(store: Store) -> dict[str, Any]:
    packs = _pack_policies()
    waste = waste_report(store, packs.get("waste", []))
    rules = compliance_report(
        store,
        [p for name in COMPLIANCE_PACKS for p in packs.get(name, [])],
        record_findings=False,
        points=1,
    )
    pack_of = _pack_of_policy()
    scores = []
    for pack in COMPLIANCE_PACKS:
        mine = [r for r in rules if pack_of.get(r.policy) == pack]
        passing = sum(1 for r in mine if not r.failing)
        scores.append(
            {
                "pack": pack,
                "rules": len(mine),
                "passing_rules": passing,
                "checked": sum(r.checked for r in mine),
                "failing": sum(r.failing for r in mine),
                "score": round(100 * passing / len(mine), 1) if mine else None,
                "failing_rules": [
                    {"policy": r.policy, "severity": r.severity, "failing": r.failing}
                    for r in mine
                    if r.failing
                ],
            }
        )
    capacity = capacity_report(load_fleet(store))
    return {"waste": waste, "compliance": scores, "capacity": capacity}


def _hypervisors(store: Store) -> list[dict[str, Any]]:
    """Every hypervisor's overview row without its use: place, state, allocation %."""
    hypervisors, _ = store.list_resources("hypervisor")
    services, _ = store.list_resources("compute_service", filters={"binary": "nova-compute"})
    zones = {(s["cloud"], s["region"], s.get("host")): s.get("zone") for s in services}
    hosts = []
    for h in hypervisors:
        row: dict[str, Any] = {
            "id": h["id"],
            "name": h.get("name"),
            "host": h.get("host"),
            "cloud": h["cloud"],
            "region": h["region"],
            "zone": zones.get((h["cloud"], h["region"], h.get("host"))),
            "state": h.get("status"),
            "enabled": h.get("enabled"),
        }
        for rc, label in (("vcpu", "cpu"), ("memory_mb", "ram"), ("disk_gb", "disk")):
            used, capacity = h.get(f"{rc}_used"), h.get(f"{rc}_capacity")
            row[label] = round(100 * (used or 0) / capacity, 1) if capacity else None
        hosts.append(row)
    return hosts


def _with_use(store: Store, hypervisors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with each host's newest CPU and memory use (None without a sample)."""
    usage = newest_values(store, "hypervisor", [h["id"] for h in hypervisors], HOST_USAGE)
    hosts = []
    for row in hypervisors:
        values = usage.get(row["id"], {})
        hosts.append(
            {
                **row,
                **{m: round(values[m][1], 1) if m in values else None for m in HOST_USAGE},
            }
        )
    return hosts


# the host fields of the compact overview (?hosts=columns), in this order
HOST_COLUMNS = (
    "host",
    "cloud",
    "region",
    "zone",
    "state",
    "enabled",
    "cpu",
    "ram",
    "disk",
    *HOST_USAGE,
)


def _host_columns(hosts: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The hosts as one list per field: the dashboard's 1,000-host overview in a
    quarter of the bytes (no key repeated per host) and decoded faster."""
    return {
        name: [h["host"] or h["name"] for h in hosts]
        if name == "host"
        else [h[name] for h in hosts]
        for name in HOST_COLUMNS
    }


def _alerts(store: Store) -> dict[str, dict[str, int]]:
    """Firing alerts per severity: total, acknowledged, silenced. Counted by the
    database when no silence is active; else matched against the silences (labels
    only). Inhibition is not counted here (GET /v1/alerts shows it per alert)."""
    silences = alert_store.list_silences(store, datetime.now(UTC))
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    if not silences:
        for severity, acked, n in alert_store.firing_counts(store):
            counts[severity]["total"] += n
            if acked:
                counts[severity]["acknowledged"] += n
    else:
        for severity, labels, acked in alert_store.firing_labels(store):
            counts[severity]["total"] += 1
            if silenced_by({"labels": labels}, silences) is not None:
                counts[severity]["silenced"] += 1
            elif acked:
                counts[severity]["acknowledged"] += 1
    return {severity or "none": dict(c) for severity, c in counts.items()}


def _findings(store: Store) -> dict[str, dict[str, int]]:
    pack_of = _pack_of_policy()
    by_pack: dict[str, dict[str, int]] = defaultdict(dict)
    for policy, counts in counts_by_policy(store).items():
        if counts.get("open"):
            by_pack[pack_of.get(policy, "other")][policy] = counts["open"]
    return dict(by_pack)


HostsFormat = Annotated[
    Literal["records", "columns"],
    Query(
        description="records: `hosts` is a list of objects; columns: `hosts` is empty "
        "and `host_columns` holds one list per field (the dashboard's compact form)."
    ),
]


@router.get("/v1/overview", response_model=OverviewOut, responses=error_responses(400))
def overview(request: Request, hosts: HostsFormat = "records") -> Any:
    """The fleet at a glance: hosts by state with their allocation and use, alerts by
    severity, open findings per pack, reclaimable waste, compliance score per pack,
    capacity headroom, hardware status and the newest passes. The dashboard's overview."""
    store = get_store(request)
    passes = store.list_passes(limit=5)
    key = (passes[0]["id"], passes[0].get("finished_at")) if passes else None
    per_pass, pending = request.app.state.overview_cache.get(store, key)
    hypervisors, servers = request.app.state.inventory_cache.get(store, key)
    hardware = Counter(status.status for status, _ in hardware_report(store, policies_in_force()))
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "passes": passes,
        "servers": servers,
        **_hosts_as(_with_use(store, hypervisors), hosts),
        "alerts": _alerts(store),
        "findings": _findings(store),
        "hardware": dict(hardware),
        "reports_pending": pending,
        **(per_pass or {"waste": [], "compliance": [], "capacity": [], "reports_pass": None}),
    }


def _hosts_as(hosts: list[dict[str, Any]], form: str) -> dict[str, Any]:
    if form == "columns":
        return {"hosts": [], "host_columns": _host_columns(hosts)}
    return {"hosts": hosts}


@router.get("/v1/whoami", response_model=WhoAmI)
def whoami(request: Request) -> Any:
    """Who the request's token speaks for (`authenticated` false without one, when reads
    are open), how the API checks tokens and where to get one."""
    authenticator = request.app.state.auth
    caller = auth.identity(request)
    mode = (
        "off"
        if authenticator is None
        else "local"
        if isinstance(authenticator, auth.LocalAuth)
        else "keystone"
    )
    if mode == "local":
        source = getattr(authenticator, "source", "") or "the token file the server printed"
        hint = f"the local operator token: the contents of {source}"
    elif mode == "keystone":
        hint = "a Keystone token: openstack token issue -f value -c id"
    else:
        hint = "no token is needed: the API has authentication off"
    role = None
    if caller is not None:
        role = rbac.role_of(caller, getattr(authenticator, "operator_role", "")).value
    return {
        "authenticated": caller is not None,
        "auth": mode,
        "read": getattr(authenticator, "read", "open"),
        "user": caller.user_name if caller else None,
        "role": role,
        "project_id": caller.project_id if caller else None,
        "expires_at": caller.expires_at.isoformat() if caller and caller.expires_at else None,
        "can_write": mode == "off" or role == rbac.Role.OPERATOR.value,
        "login_hint": hint,
    }


@router.get(
    "/v1/nodes/{host}/series", response_model=HostSeries, responses=error_responses(400, 404)
)
def host_series(
    request: Request,
    host: Annotated[str, Path(description="Compute host, hypervisor hostname or node name.")],
    hours: Annotated[
        float, Query(gt=0, le=MAX_SERIES_HOURS, description="How far back, in hours.")
    ] = 6,
) -> Any:
    """A host's samples over the last `hours`: real usage (CPU %, memory) and hardware
    readings (power, temperatures, fans), each metric a series for a chart."""
    store = get_store(request)
    node = find_node(store, host)
    if node is None:
        raise NotFoundError(f"no host {host!r}: not a hypervisor or bare-metal node")
    since = time.time() - hours * 3600
    return {
        "host": node.get("host") or node.get("name") or host,
        "kind": node["kind"],
        "id": node["id"],
        "since": since,
        "series": resource_series(store, node["kind"], node["id"], since),
    }


def install(app: FastAPI) -> None:
    """Add the dashboard's read routes to `app`."""
    app.state.overview_cache = ReportCache()
    app.state.inventory_cache = InventoryCache()
    app.include_router(router)
