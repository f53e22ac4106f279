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
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from prometheus_client.core import GaugeMetricFamily, Metric
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError

from stackfleet.api.deps import get_store
from stackfleet.engine.hardware import hardware_report, load_thresholds, status_dict
from stackfleet.model.hardware import (
    CHECKS,
    HEALTH_LEVELS,
    OK,
    REDUNDANCY_LOST,
    REDUNDANT,
    Thresholds,
    evaluate,
)
from stackfleet.store import Store
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

HOST_LABELS = ["cloud", "region", "host", "kind"]


class HardwareCollector:
    """Reads the stored BMC statuses on each scrape. Only current readings are
    published: a host whose BMC failed has stackfleet_bmc_up 0 and no reading gauges."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def _families() -> dict[str, GaugeMetricFamily]:
        extra = {
            "stackfleet_bmc_temperature_celsius": ["sensor", "context"],
            "stackfleet_bmc_fan_rpm": ["fan"],
            "stackfleet_bmc_psu_healthy": ["psu"],
        }
        families = {
            name: GaugeMetricFamily(name, text, labels=HOST_LABELS + extra.get(name, []))
            for name, text in GAUGES.items()
            if name != "stackfleet_hardware_findings"
        }
        families["stackfleet_hardware_findings"] = GaugeMetricFamily(
            "stackfleet_hardware_findings",
            GAUGES["stackfleet_hardware_findings"],
            labels=["check", "severity"],
        )
        return families

    def describe(self) -> Iterable[Metric]:
        return list(self._families().values())

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        try:
            report = hardware_report(self.store, _thresholds(), time.time())
        except SQLAlchemyError as exc:
            log.warning("metrics scrape: hardware status unreadable: %s", exc)
            return []
        except Exception as exc:  # a bad thresholds file must not break the scrape
            log.warning("metrics scrape: hardware gauges left out: %s", exc)
            return []
        counts: dict[tuple[str, str], int] = {}
        for status, findings in report:
            labels = [status.cloud, status.region, status.name, status.kind]
            up = status.status == OK and status.reading is not None
            families["stackfleet_bmc_up"].add_metric(labels, 1 if up else 0)
            if status.ok_at is not None:
                families["stackfleet_bmc_last_success_timestamp_seconds"].add_metric(
                    labels, status.ok_at
                )
            for finding in findings:
                key = (finding.check, finding.severity)
                counts[key] = counts.get(key, 0) + 1
            if not up or status.reading is None:
                continue
            reading = status.reading
            if reading.power_state is not None:
                families["stackfleet_bmc_power_on"].add_metric(
                    labels, float(reading.power_state == "On")
                )
            if reading.power_watts is not None:
                families["stackfleet_bmc_power_watts"].add_metric(labels, reading.power_watts)
            for sensor in reading.temperatures:
                families["stackfleet_bmc_temperature_celsius"].add_metric(
                    [*labels, sensor.name, sensor.context or ""], sensor.celsius
                )
            for fan in reading.fans:
                if fan.rpm is not None:
                    families["stackfleet_bmc_fan_rpm"].add_metric([*labels, fan.name], fan.rpm)
            for psu in reading.psus:
                families["stackfleet_bmc_psu_healthy"].add_metric(
                    [*labels, psu.name], float(psu.healthy)
                )
            if reading.psu_redundancy in (REDUNDANT, REDUNDANCY_LOST):
                families["stackfleet_bmc_psu_redundant"].add_metric(
                    labels, float(reading.psu_redundancy == REDUNDANT)
                )
            if reading.health in HEALTH_LEVELS:
                families["stackfleet_bmc_health"].add_metric(labels, HEALTH_LEVELS[reading.health])
        for (check, severity), count in sorted(counts.items()):
            families["stackfleet_hardware_findings"].add_metric([check, severity], count)
        return list(families.values())


def install(app: FastAPI) -> None:
    """Add the hardware routes to `app` and its gauges to the app's registry."""
    app.include_router(router)
    app.state.registry.register(HardwareCollector(app.state.store))
