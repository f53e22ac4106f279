"""Readings out of Redfish documents (DMTF schemas, plus known vendor OEM fields).

Pure functions over the JSON a BMC returned: no I/O, so every shape a BMC may answer
is easy to test. Two generations of the schema exist side by side on real BMCs:

- legacy: Chassis/<id>/Thermal (Temperatures, Fans) and Chassis/<id>/Power
  (PowerControl, PowerSupplies, Redundancy);
- current: Chassis/<id>/ThermalSubsystem (ThermalMetrics, Fans),
  Chassis/<id>/PowerSubsystem (PowerSupplies, PowerSupplyRedundancy) and
  Chassis/<id>/EnvironmentMetrics (PowerWatts, TemperatureCelsius, PowerLimitWatts).

A value that is absent, null or not a number stays None: a missing reading is never a
zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from stackfleet.model.hardware import (
    REDUNDANCY_LOST,
    REDUNDANT,
    SINGLE_PSU,
    FanReading,
    PsuReading,
    TemperatureReading,
)

Doc = dict[str, Any]


def number(value: Any) -> float | None:
    """A reading as a float; None for null, booleans, text and other non-numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _status(entry: Doc) -> tuple[str | None, str | None]:
    status = entry.get("Status")
    if not isinstance(status, dict):
        return None, None
    health, state = status.get("Health"), status.get("State")
    return (health if isinstance(health, str) else None, state if isinstance(state, str) else None)


def _dicts(value: Any) -> list[Doc]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def link(doc: Doc, key: str) -> str | None:
    """The @odata.id of a navigation property (`{"Thermal": {"@odata.id": ...}}`)."""
    target = doc.get(key)
    if isinstance(target, dict) and isinstance(target.get("@odata.id"), str):
        return str(target["@odata.id"])
    return None


def members(collection: Doc) -> list[Doc]:
    """The Members of a collection (expanded or as references)."""
    return _dicts(collection.get("Members"))


# -- thermal -----------------------------------------------------------------------------


def unique_names(names: list[str]) -> list[str]:
    """Names made unique by numbering repeats ("CPU Temp", "CPU Temp 2"): gauges are
    labelled by sensor name, and two series with one label set are not allowed."""
    seen: dict[str, int] = {}
    result = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        result.append(name if seen[name] == 1 else f"{name} {seen[name]}")
    return result


def _renamed(items: list[Any], names: list[str]) -> list[Any]:
    return [replace(item, name=name) for item, name in zip(items, names, strict=True)]


def with_unique_names(items: list[Any]) -> list[Any]:
    """Readings (temperatures, fans, supplies) with repeated names numbered."""
    return _renamed(items, unique_names([item.name for item in items]))


def legacy_temperatures(thermal: Doc) -> list[TemperatureReading]:
    """Thermal.Temperatures: sensors with a ReadingCelsius (disabled or absent ones skipped)."""
    result: list[TemperatureReading] = []
    for entry in _dicts(thermal.get("Temperatures")):
        celsius = number(entry.get("ReadingCelsius"))
        health, state = _status(entry)
        if celsius is None or state in ("Absent", "Disabled"):
            continue
        result.append(
            TemperatureReading(
                name=str(entry.get("Name") or entry.get("MemberId") or "temperature"),
                celsius=celsius,
                context=_text(entry.get("PhysicalContext")),
                health=health,
                upper_noncritical=number(entry.get("UpperThresholdNonCritical")),
                upper_critical=number(entry.get("UpperThresholdCritical")),
            )
        )
    return _renamed(result, unique_names([t.name for t in result]))


def legacy_fans(thermal: Doc) -> list[FanReading]:
    """Thermal.Fans: Reading in the fan's ReadingUnits (RPM or Percent)."""
    result = []
    for entry in _dicts(thermal.get("Fans")):
        reading = number(entry.get("Reading"))
        health, state = _status(entry)
        if reading is None or state in ("Absent", "Disabled"):
            continue
        percent = entry.get("ReadingUnits") == "Percent"
        result.append(
            FanReading(
                name=str(entry.get("Name") or entry.get("FanName") or entry.get("MemberId")),
                rpm=None if percent else reading,
                percent=reading if percent else None,
                health=health,
                lower_critical=number(entry.get("LowerThresholdCritical")),
            )
        )
    return _renamed(result, unique_names([f.name for f in result]))


def thermal_metrics_temperatures(metrics: Doc) -> list[TemperatureReading]:
    """ThermalMetrics: TemperatureReadingsCelsius, or the TemperatureSummaryCelsius
    (Intake, Internal, Exhaust, Ambient) when the BMC gives no per-sensor list."""
    result = []
    for entry in _dicts(metrics.get("TemperatureReadingsCelsius")):
        celsius = number(entry.get("Reading"))
        if celsius is None:
            continue
        result.append(
            TemperatureReading(
                name=str(entry.get("DeviceName") or entry.get("DataSourceUri") or "temperature"),
                celsius=celsius,
                context=_text(entry.get("PhysicalContext")),
            )
        )
    if result:
        return result
    summary = metrics.get("TemperatureSummaryCelsius")
    for context, entry in (summary or {}).items() if isinstance(summary, dict) else []:
        celsius = number(entry.get("Reading")) if isinstance(entry, dict) else None
        if celsius is not None:
            result.append(TemperatureReading(name=context, celsius=celsius, context=context))
    return result


def subsystem_fans(fans: Iterable[Doc]) -> list[FanReading]:
    """Fan resources of a ThermalSubsystem: SpeedPercent.Reading and .SpeedRPM."""
    result = []
    for entry in fans:
        health, state = _status(entry)
        if state in ("Absent", "Disabled"):
            continue
        speed = entry.get("SpeedPercent")
        speed = speed if isinstance(speed, dict) else {}
        percent, rpm = number(speed.get("Reading")), number(speed.get("SpeedRPM"))
        if percent is None and rpm is None:
            continue
        result.append(
            FanReading(
                name=str(entry.get("Name") or entry.get("Id")),
                rpm=rpm,
                percent=percent,
                health=health,
            )
        )
    return result


# -- power -------------------------------------------------------------------------------


def power_control_watts(power: Doc) -> tuple[float | None, str | None]:
    """Power.PowerControl: the first PowerConsumedWatts, else the interval average of
    PowerMetrics; (watts, which field)."""
    controls = _dicts(power.get("PowerControl"))
    for entry in controls:
        watts = number(entry.get("PowerConsumedWatts"))
        if watts is not None:
            return watts, "Power.PowerControl.PowerConsumedWatts"
    for entry in controls:
        metrics = entry.get("PowerMetrics")
        if isinstance(metrics, dict):
            watts = number(metrics.get("AverageConsumedWatts"))
            if watts is not None:
                return watts, "Power.PowerControl.PowerMetrics.AverageConsumedWatts"
    return None, None


def power_control_limit(power: Doc) -> float | None:
    """Power.PowerControl[].PowerLimit.LimitInWatts (null when no limit is set)."""
    for entry in _dicts(power.get("PowerControl")):
        limit = entry.get("PowerLimit")
        if isinstance(limit, dict):
            watts = number(limit.get("LimitInWatts"))
            if watts is not None:
                return watts
    return None


def legacy_psus(power: Doc) -> list[PsuReading]:
    """Power.PowerSupplies."""
    result = []
    for entry in _dicts(power.get("PowerSupplies")):
        health, state = _status(entry)
        output = number(entry.get("LastPowerOutputWatts"))
        if output is None:
            output = number(entry.get("PowerOutputWatts"))
        result.append(
            PsuReading(
                name=str(entry.get("Name") or entry.get("MemberId") or "PSU"),
                health=health,
                state=state,
                output_watts=output,
                capacity_watts=number(entry.get("PowerCapacityWatts")),
            )
        )
    return _unique_names(result, power)


def _unique_names(psus: list[PsuReading], power: Doc) -> list[PsuReading]:
    # HPE names every supply "HpeServerPowerSupply": tell them apart by bay or member id
    names = [p.name for p in psus]
    if len(set(names)) == len(names):
        return psus
    entries = _dicts(power.get("PowerSupplies"))
    renamed = []
    for index, (psu, entry) in enumerate(zip(psus, entries, strict=False)):
        bay = _oem_hpe(entry).get("BayNumber")
        suffix = bay if bay is not None else entry.get("MemberId", index)
        renamed.append(
            PsuReading(
                f"{psu.name} {suffix}", psu.health, psu.state, psu.output_watts, psu.capacity_watts
            )
        )
    return renamed


def legacy_psu_input_watts(power: Doc) -> float | None:
    """The sum of PowerSupplies[].PowerInputWatts, when every enabled supply gives it."""
    values = []
    for entry in _dicts(power.get("PowerSupplies")):
        _health, state = _status(entry)
        if state in ("Absent", "Disabled", "StandbyOffline"):
            continue
        watts = number(entry.get("PowerInputWatts"))
        if watts is None:
            return None
        values.append(watts)
    return sum(values) if values else None


def _oem_hpe(entry: Doc) -> Doc:
    oem = entry.get("Oem")
    if not isinstance(oem, dict):
        return {}
    vendor = oem.get("Hpe") or oem.get("Hp")  # iLO 5+ says Hpe, iLO 4 says Hp
    return vendor if isinstance(vendor, dict) else {}


def oem_power_watts(power: Doc, chassis: Doc) -> tuple[float | None, str | None]:
    """Vendor fields for BMCs whose PowerControl has no reading: HPE iLO's per-supply
    Oem.Hpe.AveragePowerOutputWatts (summed over enabled supplies), or its chassis
    Oem.Hpe.NodePowerWatts (multi-node enclosures)."""
    values = []
    for entry in _dicts(power.get("PowerSupplies")):
        _health, state = _status(entry)
        watts = number(_oem_hpe(entry).get("AveragePowerOutputWatts"))
        if watts is not None and state not in ("Absent", "Disabled"):
            values.append(watts)
    if values:
        return sum(values), "Oem.Hpe.PowerSupplies.AveragePowerOutputWatts"
    node = number(_oem_hpe(chassis).get("NodePowerWatts"))
    if node is not None:
        return node, "Oem.Hpe.NodePowerWatts"
    return None, None


def environment_power(env: Doc) -> tuple[float | None, float | None]:
    """EnvironmentMetrics: (PowerWatts.Reading, PowerLimitWatts.SetPoint)."""
    watts = env.get("PowerWatts")
    limit = env.get("PowerLimitWatts")
    return (
        number(watts.get("Reading")) if isinstance(watts, dict) else None,
        number(limit.get("SetPoint")) if isinstance(limit, dict) else None,
    )


def subsystem_psus(supplies: Iterable[Doc]) -> list[PsuReading]:
    """PowerSupply resources of a PowerSubsystem."""
    result = []
    for entry in supplies:
        health, state = _status(entry)
        result.append(
            PsuReading(
                name=str(entry.get("Name") or entry.get("Id") or "PSU"),
                health=health,
                state=state,
                capacity_watts=number(entry.get("PowerCapacityWatts")),
            )
        )
    return result


def psu_redundancy(psus: list[PsuReading], groups: list[Doc]) -> str | None:
    """Whether the host can lose a power supply.

    `groups` are the BMC's redundancy entries (legacy Power.Redundancy or
    PowerSubsystem.PowerSupplyRedundancy). Lost when a group's health is not OK, or when
    fewer healthy supplies remain than the group needs plus one; without groups, when
    fewer than two of several supplies are healthy."""
    healthy = sum(1 for p in psus if p.healthy)
    for group in groups:
        health, _state = _status(group)
        if health in ("Warning", "Critical"):
            return REDUNDANCY_LOST
        needed = number(group.get("MinNumNeeded", group.get("MinNeededInGroup")))
        if needed is not None and psus and healthy < needed + 1:
            return REDUNDANCY_LOST
    if len(psus) == 0:
        return None
    if len(psus) == 1:
        return SINGLE_PSU
    return REDUNDANT if healthy >= 2 else REDUNDANCY_LOST


def redundancy_groups(doc: Doc) -> list[Doc]:
    """Redundancy entries of a legacy Power or a PowerSubsystem document."""
    return _dicts(doc.get("Redundancy")) + _dicts(doc.get("PowerSupplyRedundancy"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
