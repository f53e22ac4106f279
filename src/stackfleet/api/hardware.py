"""Hardware over HTTP: ``GET /v1/hardware``, ``GET /v1/hardware/{host}`` and the BMC
gauges on ``/metrics``.

Both answer from the store (the newest sweep of each BMC, judged by the thresholds in
force at the request), so a request or a scrape never touches a BMC. Thresholds come
from the YAML file named by STACKFLEET_HARDWARE_THRESHOLDS, else the defaults.
``install(app)`` adds the routes and the collector to one app.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from stackfleet.api.collectors import Families, Gauge, StoreCollector
from stackfleet.api.deps import get_store
from stackfleet.engine.hardware import hardware_report, load_thresholds, status_dict
from stackfleet.model.hardware import (
    CHECKS,
    HEALTH_LEVELS,
    OK,
    REDUNDANCY_LOST,
    REDUNDANT,
    BmcStatus,
    HardwareFinding,
    Thresholds,
    evaluate,
)
from stackfleet.store.hardware import get_status

log = logging.getLogger(__name__)

router = APIRouter(tags=["hardware"])

THRESHOLDS_ENV = "STACKFLEET_HARDWARE_THRESHOLDS"


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
        description="Failed checks: check, severity, message, value, threshold."
    )


class HardwareList(BaseModel):
    """Every host with a BMC."""

    hosts: list[HardwareStatus]
    checks: dict[str, str] = Field(description="What each check means.")


def _thresholds() -> Thresholds:
    return load_thresholds(os.environ.get(THRESHOLDS_ENV) or None)


@router.get("/v1/hardware", response_model=HardwareList)
def list_hardware(
    request: Request,
    cloud: Annotated[str | None, Query(description="Only this cloud.")] = None,
    region: Annotated[str | None, Query(description="Only this region.")] = None,
    finding: Annotated[
        str | None, Query(description="Only hosts with a finding of this check.")
    ] = None,
) -> Any:
    """The newest hardware status of every host with a BMC, with the checks' findings."""
    store = get_store(request)
    hosts = []
    for status, findings in hardware_report(store, _thresholds(), time.time(), cloud, region):
        if finding and not any(f.check == finding for f in findings):
            continue
        hosts.append(status_dict(status, findings))
    return {"hosts": hosts, "checks": CHECKS}


@router.get("/v1/hardware/{host}", response_model=HardwareStatus, responses={404: {}})
def get_hardware(
    request: Request,
    host: Annotated[str, Path(description="Host name, node name or resource id.")],
) -> Any:
    """One host's hardware status."""
    status = get_status(get_store(request), host)
    return status_dict(status, evaluate(status, _thresholds(), time.time()))


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
    "stackfleet_hardware_findings": "Hosts with a finding of each hardware check.",
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

HardwareReport = list[tuple[BmcStatus, list[HardwareFinding]]]


class HardwareCollector(StoreCollector[HardwareReport]):
    """Reads the stored BMC statuses on each scrape. Only current readings are
    published: a host whose BMC failed has stackfleet_bmc_up 0 and no reading gauges."""

    gauges = HARDWARE_GAUGES
    topic = "hardware status"
    # a bad thresholds file must not break the scrape either
    unavailable = (Exception,)

    def read(self) -> HardwareReport:
        return list(hardware_report(self.store, _thresholds(), time.time()))

    def fill(self, families: Families, report: HardwareReport) -> None:
        counts: dict[tuple[str, str], int] = {}
        for status, findings in report:
            labels = [status.cloud, status.region, status.name, status.kind]
            up = status.status == OK and status.reading is not None
            families.add("stackfleet_bmc_up", labels, 1 if up else 0)
            if status.ok_at is not None:
                families.add("stackfleet_bmc_last_success_timestamp_seconds", labels, status.ok_at)
            for finding in findings:
                key = (finding.check, finding.severity)
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
