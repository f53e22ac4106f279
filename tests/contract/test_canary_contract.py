"""Contract: a server forced onto a host (`availability_zone: "zone:host"`, as a
campaign's canary is) while the host's compute service is disabled. Real Nova (Train and
later) skips the scheduler's filters for a forced host but still asks Placement, for
compute nodes without the COMPUTE_STATUS_DISABLED trait a disabled service carries: the
server goes to ERROR, "No valid host was found", never placed. Enabled again, the host
takes it. The simulator must answer alike: the campaign gate opens a drained host for
its canary because of this (src/stackfleet/patching/gates.py), and its e2e tests run
against the simulator.

The host is disabled for a few seconds only and enabled again whatever happens; the
servers are deleted."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytestmark = pytest.mark.contract

REASON = "stackfleet contract test: forced boot on a disabled host"
NAME = "sfit-contract-forced-"


def _compute_service(side: Any) -> dict[str, Any]:
    """The last nova-compute service that is up and enabled (cmp2 on the testbed)."""
    services = side.project.compute.get(
        "/os-services?binary=nova-compute", microversion="2.53"
    ).json()["services"]
    usable = [s for s in services if s["state"] == "up" and s["status"] == "enabled"]
    assert usable, f"{side.name}: no nova-compute service up and enabled"
    return dict(sorted(usable, key=lambda s: str(s["host"]))[-1])


def _set_status(side: Any, service: dict[str, Any], body: dict[str, Any]) -> None:
    response = side.project.compute.put(
        f"/os-services/{service['id']}", json=body, microversion="2.53", raise_exc=False
    )
    assert response.status_code == 200, f"{side.name}: {response.status_code} {response.text}"


def _boot(side: Any, name: str, zone: str, host: str) -> dict[str, Any]:
    """Boot a server forced onto `host`, wait until it is ACTIVE or ERROR, delete it;
    the server as it was then."""
    compute = side.project.compute
    flavors = compute.get("/flavors/detail").json()["flavors"]
    flavor = min(flavors, key=lambda f: (f["ram"], f["vcpus"], f["disk"]))
    image = side.project.image.get("/images?status=active&limit=1").json()["images"][0]
    body = {
        "name": name,
        "flavorRef": flavor["id"],
        "imageRef": image["id"],
        "availability_zone": f"{zone}:{host}",
        "networks": "none",
    }
    created = compute.post("/servers", json={"server": body}, microversion="2.37", raise_exc=False)
    assert created.status_code == 202, f"{side.name}: {created.status_code} {created.text}"
    server_id = created.json()["server"]["id"]
    try:
        deadline = time.monotonic() + 120
        while True:
            server: dict[str, Any] = compute.get(
                f"/servers/{server_id}", microversion="2.37"
            ).json()["server"]
            if server["status"] in ("ACTIVE", "ERROR") or time.monotonic() > deadline:
                return server
            time.sleep(0.5)
    finally:
        compute.delete(f"/servers/{server_id}", raise_exc=False)
        deadline = time.monotonic() + 120
        while compute.get(f"/servers/{server_id}", raise_exc=False).status_code != 404:
            assert time.monotonic() < deadline, f"{side.name}: {server_id} not deleted"
            time.sleep(0.5)


def _outcome(server: dict[str, Any], host: str) -> tuple[str, str | None, bool]:
    fault = (server.get("fault") or {}).get("message")
    return (
        server["status"],
        fault.strip() if fault else None,
        server.get("OS-EXT-SRV-ATTR:host") == host,
    )


def _forced_boots(side: Any) -> list[tuple[str, str | None, bool]]:
    service = _compute_service(side)
    host, zone = str(service["host"]), str(service.get("zone") or "nova")
    _set_status(side, service, {"status": "disabled", "disabled_reason": REASON})
    try:
        refused = _boot(side, f"{NAME}disabled", zone, host)
    finally:
        _set_status(side, service, {"status": "enabled"})
    placed = _boot(side, f"{NAME}enabled", zone, host)
    return [_outcome(refused, host), _outcome(placed, host)]


def test_a_server_forced_onto_a_disabled_host_gets_no_valid_host_alike(real: Any, sim: Any) -> None:
    expected = [("ERROR", "No valid host was found.", False), ("ACTIVE", None, True)]
    assert _forced_boots(real) == expected
    assert _forced_boots(sim) == expected
