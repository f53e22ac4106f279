"""Readings out of Redfish documents: the standard fields first, vendor OEM fields as
a fallback, and nothing invented where the BMC gives no value."""

from __future__ import annotations

from stackfleet.model.hardware import REDUNDANCY_LOST, REDUNDANT, SINGLE_PSU, PsuReading
from stackfleet.sources.redfish import documents as rf


def psu(name: str, health: str = "OK", state: str = "Enabled", **extra) -> dict:
    return {"Name": name, "Status": {"State": state, "Health": health}, **extra}


def test_power_control_consumed_watts_is_the_power_draw():
    power = {"PowerControl": [{"PowerConsumedWatts": 344, "PowerLimit": {"LimitInWatts": 500}}]}
    assert rf.power_control_watts(power) == (344.0, "Power.PowerControl.PowerConsumedWatts")
    assert rf.power_control_limit(power) == 500.0


def test_the_interval_average_stands_in_when_no_instant_reading_is_given():
    power = {
        "PowerControl": [
            {"PowerConsumedWatts": None, "PowerMetrics": {"AverageConsumedWatts": 319}}
        ]
    }
    assert rf.power_control_watts(power) == (
        319.0,
        "Power.PowerControl.PowerMetrics.AverageConsumedWatts",
    )


def test_hpe_oem_supply_output_is_summed_when_power_control_is_empty():
    power = {
        "PowerControl": [{}],
        "PowerSupplies": [
            psu(
                "HpeServerPowerSupply", Oem={"Hpe": {"AveragePowerOutputWatts": 91, "BayNumber": 1}}
            ),
            psu(
                "HpeServerPowerSupply", Oem={"Hp": {"AveragePowerOutputWatts": 89, "BayNumber": 2}}
            ),
        ],
    }
    assert rf.power_control_watts(power) == (None, None)
    assert rf.oem_power_watts(power, {}) == (180.0, "Oem.Hpe.PowerSupplies.AveragePowerOutputWatts")
    # identical supply names are told apart by bay
    assert [p.name for p in rf.legacy_psus(power)] == [
        "HpeServerPowerSupply 1",
        "HpeServerPowerSupply 2",
    ]


def test_no_power_field_anywhere_means_unknown_not_zero():
    assert rf.power_control_watts({"PowerSupplies": [psu("PSU1")]}) == (None, None)
    assert rf.oem_power_watts({"PowerSupplies": [psu("PSU1")]}, {}) == (None, None)
    assert rf.environment_power({"PowerWatts": {"Reading": None}}) == (None, None)
    assert rf.number("12") is None and rf.number(True) is None and rf.number(0) == 0.0


def test_environment_metrics_power_and_limit():
    env = {"PowerWatts": {"Reading": 374}, "PowerLimitWatts": {"SetPoint": 500}}
    assert rf.environment_power(env) == (374.0, 500.0)


def test_legacy_thermal_skips_absent_sensors_and_numbers_repeated_names():
    thermal = {
        "Temperatures": [
            {"Name": "CPU Temp", "ReadingCelsius": 41, "PhysicalContext": "CPU"},
            {"Name": "CPU Temp", "ReadingCelsius": 43, "PhysicalContext": "CPU"},
            {"Name": "Gone", "ReadingCelsius": 0, "Status": {"State": "Absent"}},
            {
                "Name": "System Board Inlet Temp",
                "ReadingCelsius": 23,
                "PhysicalContext": "SystemBoard",
            },
        ],
        "Fans": [
            {"Name": "Fan1", "Reading": 2100, "ReadingUnits": "RPM"},
            {"Name": "Fan2", "Reading": 40, "ReadingUnits": "Percent"},
            {"Name": "Fan3", "Reading": None},
        ],
    }
    temps = rf.legacy_temperatures(thermal)
    assert [t.name for t in temps] == ["CPU Temp", "CPU Temp 2", "System Board Inlet Temp"]
    # Dell names its inlet sensor with context SystemBoard
    assert [t.is_inlet for t in temps] == [False, False, True]
    fans = rf.legacy_fans(thermal)
    assert [(f.name, f.rpm, f.percent) for f in fans] == [("Fan1", 2100, None), ("Fan2", None, 40)]


def test_thermal_metrics_fall_back_to_the_temperature_summary():
    summary = {
        "TemperatureSummaryCelsius": {"Intake": {"Reading": 24.8}, "Internal": {"Reading": 39}}
    }
    temps = rf.thermal_metrics_temperatures(summary)
    assert [(t.name, t.celsius, t.is_inlet) for t in temps] == [
        ("Intake", 24.8, True),
        ("Internal", 39.0, False),
    ]


def test_subsystem_fans_read_speed_percent_and_rpm():
    fans = rf.subsystem_fans(
        [{"Name": "Fan Bay 1", "SpeedPercent": {"Reading": 45, "SpeedRPM": 2200}}]
    )
    assert [(f.name, f.rpm, f.percent) for f in fans] == [("Fan Bay 1", 2200.0, 45.0)]


def test_redundancy_is_lost_when_too_few_supplies_stay_healthy():
    two_ok = [PsuReading("PSU1", "OK", "Enabled"), PsuReading("PSU2", "OK", "Enabled")]
    one_failed = [PsuReading("PSU1", "OK", "Enabled"), PsuReading("PSU2", "Critical", "Enabled")]
    group = {"MinNumNeeded": 1, "Status": {"Health": "OK"}}
    assert rf.psu_redundancy(two_ok, [group]) == REDUNDANT
    assert rf.psu_redundancy(one_failed, [group]) == REDUNDANCY_LOST
    assert rf.psu_redundancy(one_failed, []) == REDUNDANCY_LOST
    # the BMC's own verdict counts even when the supplies look fine
    assert rf.psu_redundancy(two_ok, [{"Status": {"Health": "Critical"}}]) == REDUNDANCY_LOST
    assert rf.psu_redundancy(two_ok[:1], []) == SINGLE_PSU
    assert rf.psu_redundancy([], []) is None


def test_current_schema_redundancy_groups_are_read_too():
    subsystem = {
        "PowerSupplyRedundancy": [
            {"RedundancyType": "Failover", "MinNeededInGroup": 1, "Status": {"Health": "OK"}}
        ]
    }
    supplies = rf.subsystem_psus([psu("Bay1"), psu("Bay2", state="Absent", health="OK")])
    assert rf.psu_redundancy(supplies, rf.redundancy_groups(subsystem)) == REDUNDANCY_LOST
