"""Reading BMCs emulated by sushy-tools (`sushy-emulator`, fake systems driver).

sushy-tools serves several systems behind one service root, power actions and a static
Thermal resource, behind HTTP basic auth from an htpasswd file. It has no Power or
PowerSubsystem: power draw, changing temperatures and PSU faults are tested against
StackFleet's own simulated BMCs (test_redfish_simulated.py).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from stackfleet.engine.hardware import hardware_report, run_sweep
from stackfleet.model.hardware import AUTH_FAILED, NOT_FOUND, OK, UNREACHABLE
from stackfleet.sources.redfish import BmcTarget, read_bmc, sweep

SYSTEMS = {
    "node-on": ("11111111-1111-4111-8111-111111111111", "On"),
    "node-off": ("22222222-2222-4222-8222-222222222222", "Off"),
    "node-spare": ("33333333-3333-4333-8333-333333333333", "On"),
}
USER, PASSWORD = "operator", "s3cret-bmc"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def emulator(tmp_path_factory) -> Iterator[str]:
    """sushy-emulator with three fake systems on a free loopback port; its base URL."""
    pytest.importorskip("sushy_tools")
    bcrypt = pytest.importorskip("bcrypt")  # sushy-tools' htpasswd needs bcrypt digests
    workdir = tmp_path_factory.mktemp("sushy")
    htpasswd = workdir / "htpasswd"
    digest = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    htpasswd.write_text(f"{USER}:{digest}\n")
    systems = [
        {"uuid": uid, "name": name, "power_state": power, "nics": []}
        for name, (uid, power) in SYSTEMS.items()
    ]
    config = workdir / "emulator.conf"
    config.write_text(
        "SUSHY_EMULATOR_FAKE_DRIVER = True\n"
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}\n"
        f"SUSHY_EMULATOR_AUTH_FILE = {str(htpasswd)!r}\n"
        # its own state: the fake driver otherwise keeps power states of every run in
        # one shared file
        f"SUSHY_EMULATOR_STATE_DIR = {str(workdir / 'state')!r}\n"
    )
    port = _free_port()
    script = Path(sys.executable).with_name("sushy-emulator")
    proc = subprocess.Popen(
        [str(script), "--config", str(config), "-i", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/redfish/v1/", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("sushy-emulator did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def target(url: str, name: str, password: str = PASSWORD) -> BmcTarget:
    uid = SYSTEMS[name][0]
    return BmcTarget(
        name=name,
        address=url,
        system_id=f"/redfish/v1/Systems/{uid}",
        username=USER,
        password=password,
        source="test map",
    )


def test_each_emulated_system_reports_its_own_power_state(emulator):
    results = sweep([target(emulator, name) for name in SYSTEMS], timeout=10)
    assert [r.status for r in results] == [OK, OK, OK]
    assert {r.target.name: r.reading.power_state for r in results} == {
        "node-on": "On",
        "node-off": "Off",
        "node-spare": "On",
    }


def test_static_thermal_is_read_with_inlet_cpu_and_fans(emulator):
    reading = read_bmc(target(emulator, "node-on"), timeout=10).reading
    assert reading is not None
    # sushy-tools' template: one "CPU Temp" of 41 °C per system and an intake of 25 °C
    assert reading.inlet_celsius == 25
    assert reading.cpu_celsius == 41
    assert len([t for t in reading.temperatures if t.is_cpu]) == len(SYSTEMS)
    assert len({t.name for t in reading.temperatures}) == len(reading.temperatures)
    assert sorted(f.rpm for f in reading.fans) == [2050, 2100]


def test_without_a_power_resource_power_draw_is_unknown_not_zero(emulator):
    reading = read_bmc(target(emulator, "node-on"), timeout=10).reading
    assert reading is not None
    assert reading.power_watts is None
    assert reading.psus == []
    assert reading.psu_redundancy is None


def test_session_auth_falls_back_to_basic_on_a_bmc_without_sessions(emulator):
    # sushy-tools has no SessionService; sushy then authenticates every request instead
    node = replace(target(emulator, "node-on"), auth="session")
    assert read_bmc(node, timeout=10).status == OK


def test_wrong_credentials_are_named_with_the_user_and_where_to_fix_them(emulator):
    result = read_bmc(target(emulator, "node-on", password="wrong"), timeout=10)
    assert result.status == AUTH_FAILED
    assert result.reading is None
    assert f"user {USER!r}" in result.error
    assert "HTTP 401" in result.error
    assert "test map" in result.error


def test_an_unknown_system_id_is_reported_as_not_found(emulator):
    bad = BmcTarget("ghost", emulator, "/redfish/v1/Systems/ghost", USER, PASSWORD)
    result = read_bmc(bad, timeout=10)
    assert result.status == NOT_FOUND
    assert "system_id" in result.error


def test_a_closed_port_is_unreachable_and_the_sweep_goes_on(emulator):
    dead = BmcTarget("dead", f"http://127.0.0.1:{_free_port()}", None, USER, PASSWORD)
    results = sweep([dead, target(emulator, "node-on")], timeout=5)
    assert [r.status for r in results] == [UNREACHABLE, OK]
    assert "refused" in results[0].error


def test_powering_a_system_off_shows_in_the_next_sweep(emulator, store):
    node = target(emulator, "node-spare")
    assert run_sweep(store, [node]).statuses[0].reading.power_state == "On"
    reset = requests.post(
        f"{emulator}{node.system_id}/Actions/ComputerSystem.Reset",
        json={"ResetType": "ForceOff"},
        auth=(USER, PASSWORD),
        timeout=10,
    )
    assert reset.status_code == 204
    # the fake driver applies a power action 1-11 s later, as real hardware takes time
    deadline = time.monotonic() + 15
    power = "On"
    while power == "On" and time.monotonic() < deadline:
        time.sleep(0.5)
        power = run_sweep(store, [node]).statuses[0].reading.power_state
    assert power == "Off"
    [(status, _findings)] = hardware_report(store)
    assert status.reading.power_state == "Off"
