"""Hardware readings from a host's BMC, and the checks that turn them into findings.

A reading is what one Redfish sweep saw on one BMC: power state and draw, temperatures,
fans, power supplies and overall health. A BMC status is the newest outcome of reading
it (ok, or why not) plus the last good reading. The checks are data: thresholds in a
small mapping (`Thresholds`), evaluated by `evaluate` into `HardwareFinding`s that the
hardware status output shows and the policy engine can turn into alerts.

No I/O here: sources fill these types, the store keeps them, the API and CLI show them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
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
    """One fan: speed in RPM and/or percent, as the BMC reports it."""

    name: str
    rpm: float | None = None
    percent: float | None = None
    health: str | None = None


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


@dataclass(frozen=True)
class Thresholds:
    """Limits of the hardware checks. Defaults: inlet air above 35 °C (ASHRAE A2's
    allowable maximum), readings unchanged for 30 minutes."""

    inlet_max_celsius: float = 35.0
    # readings that have not moved for this long (or a BMC that has not answered for
    # this long) are stale
    stale_after_seconds: float = 1800.0
    # fleet-wide power budget per host; a BMC map entry's power_budget_watts wins, and
    # without either the BMC's own power limit is the budget
    power_budget_watts: float | None = None

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str = "thresholds") -> Thresholds:
        """Thresholds from a mapping (e.g. the `hardware:` section of a YAML file);
        ValueError names the unknown or non-numeric key."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ValueError(f"{where}: unknown key {key!r}; known: {', '.join(sorted(known))}")
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise ValueError(f"{where}.{key}: expected a number, got {value!r}")
            values[key] = None if value is None else float(value)
        return cls(**values)


CRITICAL = "critical"
WARNING = "warning"


@dataclass(frozen=True)
class HardwareFinding:
    """One check that failed on one host: which check, how bad, and what it saw."""

    check: str
    severity: str
    message: str
    value: float | None = None
    threshold: float | None = None


# check name -> what it means (docs/hardware.md lists the same)
CHECKS = {
    "bmc_unreachable": "The BMC did not answer (refused, timed out, TLS failure).",
    "bmc_credentials": "The BMC rejected the user name or password.",
    "bmc_bad_response": "The BMC answered something that is not the expected Redfish "
    "resource (not JSON, missing fields, HTTP error, unknown system id).",
    "inlet_temperature_high": "Inlet air is above inlet_max_celsius.",
    "temperature_critical": "A sensor is above the BMC's own critical threshold.",
    "psu_redundancy_lost": "A host with several power supplies can no longer lose one.",
    "psu_unhealthy": "A power supply reports a health other than OK.",
    "power_over_budget": "Power draw is above the host's power budget.",
    "health_degraded": "The system's overall health is Warning or Critical.",
    "stale_reading": "The BMC's readings stopped updating (values unchanged on a running "
    "host, or no answer) for longer than stale_after_seconds.",
}

_STATUS_CHECKS = {
    UNREACHABLE: "bmc_unreachable",
    TIMEOUT: "bmc_unreachable",
    AUTH_FAILED: "bmc_credentials",
    NOT_FOUND: "bmc_bad_response",
    BAD_RESPONSE: "bmc_bad_response",
    ERROR: "bmc_bad_response",
}


def evaluate(status: BmcStatus, thresholds: Thresholds, now: float) -> list[HardwareFinding]:
    """The findings of one host's hardware status at time `now`."""
    findings: list[HardwareFinding] = []
    if status.status != OK:
        findings.append(
            HardwareFinding(
                _STATUS_CHECKS.get(status.status, "bmc_bad_response"),
                WARNING,
                f"BMC {status.address}: {status.error or status.status}",
            )
        )
    findings.extend(_stale(status, thresholds, now))
    reading = status.reading
    # a failed read keeps the last good reading for context, but judging it again would
    # repeat old news as if it were current
    if reading is None or status.status != OK:
        return findings
    inlet = reading.inlet_celsius
    if inlet is not None and inlet > thresholds.inlet_max_celsius:
        findings.append(
            HardwareFinding(
                "inlet_temperature_high",
                CRITICAL if inlet > thresholds.inlet_max_celsius + 5 else WARNING,
                f"inlet air {inlet:g} °C is above {thresholds.inlet_max_celsius:g} °C",
                inlet,
                thresholds.inlet_max_celsius,
            )
        )
    for sensor in reading.temperatures:
        if sensor.upper_critical is not None and sensor.celsius >= sensor.upper_critical:
            findings.append(
                HardwareFinding(
                    "temperature_critical",
                    CRITICAL,
                    f"{sensor.name} at {sensor.celsius:g} °C reached the BMC's critical "
                    f"threshold {sensor.upper_critical:g} °C",
                    sensor.celsius,
                    sensor.upper_critical,
                )
            )
    unhealthy = [p for p in reading.psus if not p.healthy]
    if reading.psu_redundancy == REDUNDANCY_LOST:
        names = ", ".join(f"{p.name} ({p.health or p.state})" for p in unhealthy) or "per BMC"
        findings.append(
            HardwareFinding(
                "psu_redundancy_lost",
                CRITICAL,
                f"power supply redundancy lost: {names}; "
                f"{len(reading.psus) - len(unhealthy)} of {len(reading.psus)} supplies healthy",
                float(len(reading.psus) - len(unhealthy)),
            )
        )
    elif unhealthy:
        findings.append(
            HardwareFinding(
                "psu_unhealthy",
                WARNING,
                "power supply not healthy: "
                + ", ".join(f"{p.name} ({p.health or p.state})" for p in unhealthy),
            )
        )
    budget = status.power_budget_watts or thresholds.power_budget_watts
    budget = budget or reading.power_limit_watts
    if budget and reading.power_watts is not None and reading.power_watts > budget:
        findings.append(
            HardwareFinding(
                "power_over_budget",
                WARNING,
                f"power draw {reading.power_watts:g} W is above the budget of {budget:g} W",
                reading.power_watts,
                budget,
            )
        )
    if reading.health in ("Warning", "Critical"):
        findings.append(
            HardwareFinding(
                "health_degraded",
                CRITICAL if reading.health == "Critical" else WARNING,
                f"system health is {reading.health}",
                float(HEALTH_LEVELS[reading.health]),
            )
        )
    return findings


def _stale(status: BmcStatus, thresholds: Thresholds, now: float) -> list[HardwareFinding]:
    limit = thresholds.stale_after_seconds
    reading = status.reading
    if status.ok_at is not None and status.status != OK and now - status.ok_at > limit:
        return [
            HardwareFinding(
                "stale_reading",
                WARNING,
                f"no reading for {_duration(now - status.ok_at)} (BMC {status.status})",
                now - status.ok_at,
                limit,
            )
        ]
    if reading is None or status.status != OK:
        return []
    # A powered-off host's sensors legitimately sit still; only a running host whose
    # values have not moved at all is suspicious.
    if (
        reading.power_state == "On"
        and status.changed_at is not None
        and now - status.changed_at > limit
    ):
        return [
            HardwareFinding(
                "stale_reading",
                WARNING,
                f"readings unchanged for {_duration(now - status.changed_at)} on a running "
                "host: the BMC's sensors may be frozen",
                now - status.changed_at,
                limit,
            )
        ]
    return []


def _duration(seconds: float) -> str:
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


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
