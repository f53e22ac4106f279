"""Hardware readings from a host's BMC, and the records the policy engine judges.

A reading is what one Redfish sweep saw on one BMC: power state and draw, temperatures,
fans, power supplies and overall health. A BMC status is the newest outcome of reading
it (ok, or why not) plus the last good reading. `hardware_records` turns a status into
records of the hardware kinds (`bmc`, `temperature_sensor`, `fan`: model/kinds.py); the
hardware policy pack (policy/packs/hardware.yaml) judges them like any other policy.

No I/O here: sources fill these types, the store keeps them, the API and CLI show them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

# Outcomes of reading one BMC. Only OK carries a fresh reading; every other status keeps
# the last good reading (if any) for context but never reports zeros in its place.
OK = "ok"
UNREACHABLE = "unreachable"  # refused, no route, TLS failure
TIMEOUT = "timeout"  # answered too slowly: the per-BMC time budget ran out
AUTH_FAILED = "auth_failed"  # 401/403: wrong user name or password
NOT_FOUND = "not_found"  # the system (or chassis) named in the BMC map is not there
BAD_RESPONSE = "bad_response"  # not Redfish: not JSON, missing required fields, HTTP 5xx
ERROR = "error"  # anything else, with the exception's text
STATUSES = (OK, UNREACHABLE, TIMEOUT, AUTH_FAILED, NOT_FOUND, BAD_RESPONSE, ERROR)

# Redfish Status.Health values, as numbers for gauges (0 is good).
HEALTH_LEVELS = {"OK": 0, "Warning": 1, "Critical": 2}


@dataclass(frozen=True)
class TemperatureReading:
    """One temperature sensor. `context` is Redfish's PhysicalContext (Intake, CPU,
    SystemBoard, ...); `upper_critical` the BMC's own critical threshold, if it says."""

    name: str
    celsius: float
    context: str | None = None
    health: str | None = None
    upper_critical: float | None = None
    # Redfish UpperThresholdNonCritical: above it the reading is out of normal range
    upper_noncritical: float | None = None

    @property
    def is_inlet(self) -> bool:
        """Inlet (intake) air: PhysicalContext Intake, or a name saying inlet/intake
        (Dell calls it "System Board Inlet Temp" with context SystemBoard)."""
        lowered = self.name.lower()
        return self.context == "Intake" or "inlet" in lowered or "intake" in lowered

    @property
    def is_cpu(self) -> bool:
        return self.context == "CPU" or "cpu" in self.name.lower()


@dataclass(frozen=True)
class FanReading:
    """One fan: speed in RPM and/or percent, as the BMC reports it; `lower_critical`
    the BMC's own critical lower threshold, in the unit of the fan's reading."""

    name: str
    rpm: float | None = None
    percent: float | None = None
    health: str | None = None
    lower_critical: float | None = None


@dataclass(frozen=True)
class PsuReading:
    """One power supply. `healthy` means present, enabled and Health OK."""

    name: str
    health: str | None = None
    state: str | None = None
    output_watts: float | None = None
    capacity_watts: float | None = None

    @property
    def healthy(self) -> bool:
        return self.health == "OK" and self.state in (None, "Enabled")


# psu_redundancy values
REDUNDANT = "redundant"
REDUNDANCY_LOST = "lost"
SINGLE_PSU = "single"  # one supply: nothing to lose


@dataclass
class BmcReading:
    """What one successful read of a BMC saw. A value the BMC does not report is None,
    never zero."""

    power_state: str | None = None
    health: str | None = None
    power_watts: float | None = None
    # where power_watts came from, e.g. "Power.PowerControl" or "Oem.Hpe.PowerSupplies"
    power_source: str | None = None
    # the BMC's own power limit (PowerLimit.LimitInWatts / PowerLimitWatts.SetPoint)
    power_limit_watts: float | None = None
    temperatures: list[TemperatureReading] = field(default_factory=list)
    fans: list[FanReading] = field(default_factory=list)
    psus: list[PsuReading] = field(default_factory=list)
    psu_redundancy: str | None = None

    @property
    def inlet_celsius(self) -> float | None:
        values = [t.celsius for t in self.temperatures if t.is_inlet]
        return max(values) if values else None

    @property
    def cpu_celsius(self) -> float | None:
        values = [t.celsius for t in self.temperatures if t.is_cpu]
        return max(values) if values else None

    def fingerprint(self) -> str:
        """A digest of the sensor values (not the power state): equal fingerprints over
        time mean the readings did not move."""
        values = {
            "watts": self.power_watts,
            "temps": [(t.name, t.celsius) for t in self.temperatures],
            "fans": [(f.name, f.rpm, f.percent) for f in self.fans],
            "psus": [(p.name, p.output_watts) for p in self.psus],
        }
        return hashlib.blake2b(
            json.dumps(values, sort_keys=True).encode(), digest_size=8
        ).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BmcReading:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["temperatures"] = [TemperatureReading(**t) for t in data.get("temperatures", [])]
        values["fans"] = [FanReading(**f) for f in data.get("fans", [])]
        values["psus"] = [PsuReading(**p) for p in data.get("psus", [])]
        return cls(**values)


@dataclass
class BmcStatus:
    """The current hardware status of one host: how the newest read of its BMC went, and
    the last good reading.

    `name` is the host as the operator knows it (hypervisor host or bare-metal node
    name); `kind`/`resource_id` name the inventory resource its samples belong to.
    Times are Unix seconds: `checked_at` the newest attempt, `ok_at` the newest success,
    `changed_at` when the sensor values last moved."""

    name: str
    cloud: str
    region: str
    kind: str
    resource_id: str
    address: str
    system_id: str | None
    source: str
    status: str
    error: str | None = None
    checked_at: float | None = None
    ok_at: float | None = None
    changed_at: float | None = None
    fingerprint: str | None = None
    power_budget_watts: float | None = None
    reading: BmcReading | None = None


# Metric samples one BMC read writes on its host's resource (name -> meaning). Per-sensor
# values are in the status and on /metrics; samples keep what windows and policies need.
SAMPLE_METRICS = {
    "hw_up": "1 if the BMC answered with a reading, else 0.",
    "hw_power_on": "1 if the system is powered on, else 0.",
    "hw_power_watts": "Power draw in watts.",
    "hw_inlet_celsius": "Inlet (intake) air temperature, the hottest inlet sensor.",
    "hw_cpu_celsius": "The hottest CPU temperature.",
    "hw_fan_rpm_min": "The slowest fan, in RPM.",
    "hw_psus_healthy": "Power supplies present, enabled and healthy.",
    "hw_psu_redundant": "1 if the host can lose a power supply, 0 if not (hosts with "
    "one supply have no sample).",
    "hw_health": "Overall system health: 0 OK, 1 Warning, 2 Critical.",
}


def sample_values(reading: BmcReading | None) -> dict[str, float]:
    """The SAMPLE_METRICS of one read (only hw_up=0 for a failed read): a value the BMC
    did not give has no sample rather than a zero."""
    if reading is None:
        return {"hw_up": 0.0}
    values: dict[str, float | None] = {
        "hw_up": 1.0,
        "hw_power_on": None if reading.power_state is None else float(reading.power_state == "On"),
        "hw_power_watts": reading.power_watts,
        "hw_inlet_celsius": reading.inlet_celsius,
        "hw_cpu_celsius": reading.cpu_celsius,
        "hw_fan_rpm_min": min((f.rpm for f in reading.fans if f.rpm is not None), default=None),
        "hw_psus_healthy": float(sum(p.healthy for p in reading.psus)) if reading.psus else None,
        "hw_psu_redundant": {REDUNDANT: 1.0, REDUNDANCY_LOST: 0.0}.get(
            reading.psu_redundancy or ""
        ),
        "hw_health": float(HEALTH_LEVELS[reading.health])
        if reading.health in HEALTH_LEVELS
        else None,
    }
    return {name: value for name, value in values.items() if value is not None}


# kinds of the hardware records (model/kinds.py)
BMC_KIND = "bmc"
TEMPERATURE_KIND = "temperature_sensor"
FAN_KIND = "fan"
HARDWARE_KINDS = (BMC_KIND, TEMPERATURE_KIND, FAN_KIND)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _duration(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def _stale_text(status: BmcStatus, now: float) -> str | None:
    """How old the newest reading is, in words, for the stale-reading policy's summary
    (whether that is too old is the policy's business)."""
    reading = status.reading
    if status.status != OK and status.ok_at is not None:
        return f"no reading for {_duration(now - status.ok_at)} (BMC {status.status})"
    if reading is not None and reading.power_state == "On" and status.changed_at is not None:
        return (
            f"readings unchanged for {_duration(now - status.changed_at)} on a running host: "
            "the BMC's sensors may be frozen"
        )
    return None


def _limits_text(sensor: TemperatureReading) -> str:
    parts = [
        f"{label} {value:g} °C"
        for label, value in (
            ("non-critical", sensor.upper_noncritical),
            ("critical", sensor.upper_critical),
        )
        if value is not None
    ]
    return ", ".join(parts) or "none"


def hardware_records(status: BmcStatus, now: float) -> dict[str, list[dict[str, Any]]]:
    """The records of one host's hardware status, by kind: its `bmc` (one), its
    `temperature_sensor`s and `fan`s (ids `<bmc id>/<sensor name>`). A failed read
    (`reachable` false) keeps the last good reading's values; the policies that do not
    ask about `reachable` then leave the host's findings as they were."""
    reading = status.reading
    reachable = status.status == OK
    common: dict[str, Any] = {
        "project_id": None,
        "reachable": reachable,
        "error": None if reachable else (status.error or status.status),
        "probed_at": _iso(status.checked_at),
    }
    psus = reading.psus if reading else []
    unhealthy = [p for p in psus if not p.healthy]
    budget = status.power_budget_watts or (reading.power_limit_watts if reading else None)
    bmc: dict[str, Any] = {
        **common,
        "id": status.resource_id,
        "name": status.name,
        "status": status.status,
        "host_kind": status.kind,
        "address": status.address,
        "system_id": status.system_id,
        "source": status.source,
        "ok_at": _iso(status.ok_at),
        "changed_at": _iso(status.changed_at),
        "stale_text": _stale_text(status, now),
        # the newest reading's samples (the last good ones, hw_up 0, while unreachable)
        "metrics": {**sample_values(reading), **({} if reachable else {"hw_up": 0.0})},
        "power_state": reading.power_state if reading else None,
        "health": reading.health if reading else None,
        "power_watts": reading.power_watts if reading else None,
        "power_limit_watts": reading.power_limit_watts if reading else None,
        "power_budget_watts": status.power_budget_watts,
        "power_budget": budget,
        "inlet_celsius": reading.inlet_celsius if reading else None,
        "cpu_celsius": reading.cpu_celsius if reading else None,
        "psu_count": len(psus) if reading else None,
        "psus_healthy": len(psus) - len(unhealthy) if reading else None,
        "psus_unhealthy": len(unhealthy) if reading else None,
        "psu_problems": ", ".join(f"{p.name} ({p.health or p.state})" for p in unhealthy),
        "psu_redundancy": reading.psu_redundancy if reading else None,
    }
    place = {**common, "bmc_id": status.resource_id, "host": status.name}
    sensors = [
        {
            **place,
            "id": f"{status.resource_id}/{t.name}",
            "name": t.name,
            "status": t.health,
            "context": t.context,
            "inlet": t.is_inlet,
            "celsius": t.celsius,
            "upper_noncritical": t.upper_noncritical,
            "upper_critical": t.upper_critical,
            "limits": _limits_text(t),
            "metrics": {"celsius": t.celsius},
        }
        for t in (reading.temperatures if reading else [])
    ]
    fans = [
        {
            **place,
            "id": f"{status.resource_id}/{f.name}",
            "name": f.name,
            "status": f.health,
            "rpm": f.rpm,
            "percent": f.percent,
            "reading": f.rpm if f.rpm is not None else f.percent,
            "units": "RPM" if f.rpm is not None else ("%" if f.percent is not None else None),
            "lower_critical": f.lower_critical,
            "metrics": {k: v for k, v in (("rpm", f.rpm), ("percent", f.percent)) if v is not None},
        }
        for f in (reading.fans if reading else [])
    ]
    return {BMC_KIND: [bmc], TEMPERATURE_KIND: sensors, FAN_KIND: fans}
