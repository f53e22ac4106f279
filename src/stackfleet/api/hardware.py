"""Hardware over HTTP: ``GET /v1/hardware``, ``GET /v1/hardware/{host}`` and the BMC
gauges on ``/metrics``.

Both answer from the store (the newest sweep of each BMC, judged by the hardware
policies in force at the request: the hardware pack, tuned by the monitoring file's
`policies:`), so a request or a scrape never touches a BMC. ``install(app)`` adds the
routes and the collector to one app.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from stackfleet.api.collectors import Families, Gauge, StoreCollector
from stackfleet.api.deps import get_store
from stackfleet.engine.hardware import (
    hardware_policies,
    hardware_report,
    host_findings,
    status_dict,
)
from stackfleet.engine.infra_monitor import Verdict
from stackfleet.model.hardware import (
    HEALTH_LEVELS,
    OK,
    REDUNDANCY_LOST,
    REDUNDANT,
    BmcStatus,
)
from stackfleet.policy.schema import Policy
from stackfleet.sources.infra_config import load_infra_config
from stackfleet.store.hardware import get_status

log = logging.getLogger(__name__)

router = APIRouter(tags=["hardware"])


class HardwareStatus(BaseModel):
    """One host's hardware: how the newest BMC read went and the last good reading."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="The host (hypervisor host or bare-metal node name).")
    kind: str
    resource_id: str
    status: str = Field(
        description="ok, unreachable, timeout, auth_failed, not_found, bad_response or "
        "error; readings are current only when ok."
    )
    error: str | None = None
    power_state: str | None = None
    power_watts: float | None = None
    inlet_celsius: float | None = None
    findings: list[dict[str, Any]] = Field(
        description="What the hardware policies find on the host's BMC and sensors now: "
        "rule, severity, state, kind, resource_id, message, advice."
    )


class HardwareList(BaseModel):
    """Every host with a BMC."""

    hosts: list[HardwareStatus]
    checks: dict[str, str] = Field(
        description="The hardware policies in force, each with what usually helps."
    )


def policies_in_force() -> Sequence[Policy]:
    # read at each request: a tuned threshold applies without a restart
    return hardware_policies(load_infra_config().policies)


def _is(verdict: Verdict, wanted: str) -> bool:
    """A finding's rule, by its name or its short name (inlet-temperature-high, or
    inlet_temperature_high as the checks were called before they were policies)."""
    short = "hardware/" + wanted.replace("_", "-")
    return verdict.rule in (wanted, short)


@router.get("/v1/hardware", response_model=HardwareList)
def list_hardware(
    request: Request,
    cloud: Annotated[str | None, Query(description="Only this cloud.")] = None,
    region: Annotated[str | None, Query(description="Only this region.")] = None,
    finding: Annotated[
        str | None,
        Query(description="Only hosts with a finding of this rule (hardware/fan-failed)."),
    ] = None,
) -> Any:
    """The newest hardware status of every host with a BMC, with the hardware policies'
    findings."""
    store = get_store(request)
    policies = policies_in_force()
    hosts = []
    for status, findings in hardware_report(store, policies, cloud, region):
        if finding and not any(_is(f, finding) for f in findings):
            continue
        hosts.append(status_dict(status, findings))
    return {"hosts": hosts, "checks": {p.name: p.spec.description.strip() for p in policies}}


@router.get("/v1/hardware/{host}", response_model=HardwareStatus, responses={404: {}})
def get_hardware(
    request: Request,
    host: Annotated[str, Path(description="Host name, node name or resource id.")],
) -> Any:
    """One host's hardware status."""
    store = get_store(request)
    status = get_status(store, host)
    return status_dict(status, host_findings(store, status, policies_in_force()))


GAUGES = {
    "stackfleet_bmc_up": "1 if the newest read of the host's BMC succeeded, else 0.",
    "stackfleet_bmc_last_success_timestamp_seconds": "When the BMC last answered with a "
    "reading (Unix time).",
    "stackfleet_bmc_power_on": "1 if the system is powered on, else 0.",
    "stackfleet_bmc_power_watts": "Power draw in watts (Redfish PowerControl, "
    "EnvironmentMetrics, or a vendor OEM field).",
    "stackfleet_bmc_temperature_celsius": "Temperature of each sensor in degrees Celsius.",
    "stackfleet_bmc_fan_rpm": "Speed of each fan in RPM.",
    "stackfleet_bmc_psu_healthy": "1 if the power supply is enabled and healthy, else 0.",
    "stackfleet_bmc_psu_redundant": "1 if the host can lose a power supply, else 0.",
    "stackfleet_bmc_health": "Overall system health: 0 OK, 1 Warning, 2 Critical.",
    "stackfleet_hardware_findings": "Findings of each hardware policy (rule), by severity.",
}

HOST_LABELS = ("cloud", "region", "host", "kind")
# labels after HOST_LABELS, for gauges with one series per sensor, fan or PSU
PART_LABELS = {
    "stackfleet_bmc_temperature_celsius": ("sensor", "context"),
    "stackfleet_bmc_fan_rpm": ("fan",),
    "stackfleet_bmc_psu_healthy": ("psu",),
}
HARDWARE_GAUGES = {
    name: Gauge(text, (*HOST_LABELS, *PART_LABELS.get(name, ()))) for name, text in GAUGES.items()
}
# counted over the fleet, not per host
HARDWARE_GAUGES["stackfleet_hardware_findings"] = Gauge(
    GAUGES["stackfleet_hardware_findings"], ("check", "severity")
)

HardwareReport = list[tuple[BmcStatus, list[Verdict]]]


class HardwareCollector(StoreCollector[HardwareReport]):
    """Reads the stored BMC statuses on each scrape. Only current readings are
    published: a host whose BMC failed has stackfleet_bmc_up 0 and no reading gauges."""

    gauges = HARDWARE_GAUGES
    topic = "hardware status"
    # a bad policy file must not break the scrape either
    unavailable = (Exception,)

    def read(self) -> HardwareReport:
        return hardware_report(self.store, policies_in_force())

    def fill(self, families: Families, report: HardwareReport) -> None:
        counts: dict[tuple[str, str], int] = {}
        for status, findings in report:
            labels = [status.cloud, status.region, status.name, status.kind]
            up = status.status == OK and status.reading is not None
            families.add("stackfleet_bmc_up", labels, 1 if up else 0)
            if status.ok_at is not None:
                families.add("stackfleet_bmc_last_success_timestamp_seconds", labels, status.ok_at)
            for finding in findings:
                key = (finding.rule, finding.severity)
                counts[key] = counts.get(key, 0) + 1
            if not up or status.reading is None:
                continue
            reading = status.reading
            if reading.power_state is not None:
                families.add("stackfleet_bmc_power_on", labels, float(reading.power_state == "On"))
            if reading.power_watts is not None:
                families.add("stackfleet_bmc_power_watts", labels, reading.power_watts)
            for sensor in reading.temperatures:
                families.add(
                    "stackfleet_bmc_temperature_celsius",
                    [*labels, sensor.name, sensor.context or ""],
                    sensor.celsius,
                )
            for fan in reading.fans:
                if fan.rpm is not None:
                    families.add("stackfleet_bmc_fan_rpm", [*labels, fan.name], fan.rpm)
            for psu in reading.psus:
                families.add("stackfleet_bmc_psu_healthy", [*labels, psu.name], float(psu.healthy))
            if reading.psu_redundancy in (REDUNDANT, REDUNDANCY_LOST):
                families.add(
                    "stackfleet_bmc_psu_redundant",
                    labels,
                    float(reading.psu_redundancy == REDUNDANT),
                )
            if reading.health in HEALTH_LEVELS:
                families.add("stackfleet_bmc_health", labels, HEALTH_LEVELS[reading.health])
        for (check, severity), count in sorted(counts.items()):
            families.add("stackfleet_hardware_findings", [check, severity], count)


def install(app: FastAPI) -> None:
    """Add the hardware routes to `app` and its gauges to the app's registry."""
    app.include_router(router)
    app.state.registry.register(HardwareCollector(app.state.store))
