"""The simulator's Cinder backups (Block Storage v3 `/backups`), through openstacksdk,
raw HTTP and the openstack CLI: create answers 202 with the summary, the backup is
`creating` (its volume `backing-up`) until the simulated cinder-backup finishes, and the
API's refusals are Cinder's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest
from support import run_openstack

from stackfleet.simulator.generator import FleetConfig
from stackfleet.simulator.server import SimulatorServer
from stackfleet.simulator.state import RegionState

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

SMALL = FleetConfig(
    projects=2, hypervisors=4, servers=8, floating_ips=4, volumes=12, images=4, baremetal_nodes=4
)
DELAY = 0.4


@pytest.fixture
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(SMALL) as running:
        yield running


@pytest.fixture
def region(server: SimulatorServer) -> RegionState:
    return server.state.regions["RegionOne"]


@pytest.fixture
def conn(server: SimulatorServer) -> openstack.connection.Connection:
    return openstack.connect(**server.connect_kwargs())


@pytest.fixture
def http(server: SimulatorServer, conn: openstack.connection.Connection) -> Iterator[httpx.Client]:
    admin = next(p for p, o in server.state.projects.items() if o["name"] == "admin")
    with httpx.Client(
        base_url=f"{server.base_url}/RegionOne/volume/v3/{admin}",
        headers={"X-Auth-Token": conn.auth_token, "Accept": "application/json"},
    ) as client:
        yield client


def version(minor: int) -> dict[str, str]:
    return {"OpenStack-API-Version": f"volume 3.{minor}"}


def volume_in(region: RegionState, status: str) -> dict[str, Any]:
    return next(v for v in region.volumes.values() if v["status"] == status)


def create(http: httpx.Client, volume_id: str, **extra: Any) -> httpx.Response:
    return http.post("/backups", json={"backup": {"volume_id": volume_id, **extra}})


def test_create_answers_the_summary_and_the_backup_becomes_available(
    server: SimulatorServer, region: RegionState, http: httpx.Client
) -> None:
    server.sim.action_delay = DELAY
    volume = volume_in(region, "available")
    answer = create(http, volume["id"], name="nightly", description="before delete")
    assert answer.status_code == 202
    body = answer.json()["backup"]
    assert set(body) == {"id", "name", "links"} and body["name"] == "nightly"
    shown = http.get(f"/backups/{body['id']}").json()["backup"]
    assert shown["status"] == "creating"
    assert region.volumes[volume["id"]]["status"] == "backing-up"
    # Cinder refuses to delete a volume that is being backed up
    refused = http.delete(f"/volumes/{volume['id']}")
    assert refused.status_code == 400
    time.sleep(DELAY + 0.3)
    shown = http.get(f"/backups/{body['id']}").json()["backup"]
    assert shown["status"] == "available"
    assert shown["size"] == volume["size"] and shown["volume_id"] == volume["id"]
    assert shown["container"] == "volumebackups"
    assert region.volumes[volume["id"]]["status"] == "available"


def test_microversion_decides_the_detail_fields(region: RegionState, http: httpx.Client) -> None:
    backup_id = create(http, volume_in(region, "available")["id"]).json()["backup"]["id"]
    fields = {
        minor: set(http.get(f"/backups/{backup_id}", headers=version(minor)).json()["backup"])
        for minor in (0, 18, 43, 56, 64)
    }
    assert "metadata" not in fields[0] and "os-backup-project-attr:project_id" not in fields[0]
    assert "os-backup-project-attr:project_id" in fields[18] and "user_id" not in fields[18]
    assert "metadata" in fields[43]
    assert "user_id" in fields[56]
    # an unencrypted volume's backup shows no encryption_key_id, as in Cinder
    assert fields[64] == fields[56]


def test_an_in_use_volume_needs_force(region: RegionState, http: httpx.Client) -> None:
    volume = volume_in(region, "in-use")
    refused = create(http, volume["id"])
    assert refused.status_code == 400
    assert refused.json() == {
        "badRequest": {
            "code": 400,
            "message": "Invalid volume: Backing up an in-use volume must use the force flag.",
        }
    }
    assert create(http, volume["id"], force=True).status_code == 202
    assert region.volumes[volume["id"]]["status"] == "in-use"


def test_unknown_volume_and_unknown_backup_are_404s(http: httpx.Client) -> None:
    unknown = "11111111-2222-3333-4444-555555555555"
    assert create(http, unknown).json()["itemNotFound"]["message"] == (
        f"Volume {unknown} could not be found."
    )
    for answer in (http.get(f"/backups/{unknown}"), http.delete(f"/backups/{unknown}")):
        assert answer.status_code == 404
        assert answer.json()["itemNotFound"]["message"] == f"Backup {unknown} could not be found."


def test_a_volume_in_another_state_cannot_be_backed_up(
    region: RegionState, http: httpx.Client
) -> None:
    volume = volume_in(region, "error")
    refused = create(http, volume["id"], force=True)
    assert refused.status_code == 400
    assert '"error"' in refused.json()["badRequest"]["message"]


def test_incremental_needs_a_full_backup_and_protects_its_parent(
    region: RegionState, http: httpx.Client
) -> None:
    volume = volume_in(region, "available")
    assert create(http, volume["id"], incremental=True).status_code == 400
    full = create(http, volume["id"]).json()["backup"]["id"]
    incremental = create(http, volume["id"], incremental=True).json()["backup"]["id"]
    shown = http.get(f"/backups/{incremental}").json()["backup"]
    assert shown["is_incremental"] is True
    assert http.get(f"/backups/{full}").json()["backup"]["has_dependent_backups"] is True
    assert http.delete(f"/backups/{full}").status_code == 400
    assert http.delete(f"/backups/{incremental}").status_code == 202
    assert http.delete(f"/backups/{full}").status_code == 202
    assert http.get(f"/backups/{full}").status_code == 404


def test_without_a_cinder_backup_service_the_backup_goes_to_error(
    region: RegionState, http: httpx.Client
) -> None:
    for service in region.volume_services:
        if service["binary"] == "cinder-backup":
            service["status"] = "disabled"
    volume = volume_in(region, "available")
    backup_id = create(http, volume["id"]).json()["backup"]["id"]
    shown = http.get(f"/backups/{backup_id}").json()["backup"]
    assert shown["status"] == "error"
    assert shown["fail_reason"] == "Service not found for creating backup."
    assert region.volumes[volume["id"]]["status"] == "available"


def test_the_project_backup_quota_is_enforced(region: RegionState, http: httpx.Client) -> None:
    volume = volume_in(region, "available")
    project = volume["os-vol-tenant-attr:tenant_id"]
    region.quotas.setdefault("block-storage", {})[project] = {"backups": 2}
    assert create(http, volume["id"]).status_code == 202
    assert create(http, volume["id"]).status_code == 202
    refused = create(http, volume["id"])
    assert refused.status_code == 413
    assert (
        refused.json()["overLimit"]["message"] == "Maximum number of backups allowed (2) exceeded"
    )


def test_listing_pages_with_marker_and_all_tenants(
    region: RegionState, http: httpx.Client, conn: openstack.connection.Connection
) -> None:
    volumes = [v for v in region.volumes.values() if v["status"] == "available"][:3]
    made = {create(http, v["id"]).json()["backup"]["id"] for v in volumes}
    listed = {b.id for b in conn.block_storage.backups(details=True, all_projects=True, limit=1)}
    assert listed == made
    summary = http.get("/backups", params={"all_tenants": "1"}).json()["backups"]
    assert all(set(b) == {"id", "name", "links"} for b in summary)
    page = http.get("/backups/detail", params={"all_tenants": "1", "limit": "2"}).json()
    assert len(page["backups"]) == 2 and page["backups_links"][0]["rel"] == "next"


def test_sort_keys_are_the_backup_columns(region: RegionState, http: httpx.Client) -> None:
    available = [v for v in region.volumes.values() if v["status"] == "available"]
    for name, volume in zip("bca", available, strict=False):
        create(http, volume["id"], name=name)
    names = [b["name"] for b in region.backups.values()]
    assert len(names) >= 2
    for sort in ("display_name:asc", "name:asc"):
        listed = http.get(
            "/backups/detail", params={"sort": sort, "all_tenants": "1"}, headers=version(64)
        )
        assert [b["name"] for b in listed.json()["backups"]] == sorted(names)
    # `name` is a sort key from 3.37; unknown keys are refused even on an empty list
    for params, minor in (({"sort": "name:asc"}, 0), ({"sort": "bogus:asc"}, 64)):
        refused = http.get("/backups/detail", params=params, headers=version(minor))
        assert refused.status_code == 400
        assert refused.json()["badRequest"]["message"] == "Invalid input received: Invalid sort key"


def test_cli_volume_backup_list_shows_the_backups(
    server: SimulatorServer, region: RegionState, http: httpx.Client, tmp_path: Path
) -> None:
    backup_id = create(http, volume_in(region, "available")["id"], name="cli").json()["backup"]
    rows = run_openstack(server, tmp_path, "volume", "backup", "list", "--all-projects")
    assert [row[0] for row in rows] == [backup_id["id"]]
    assert "available" in rows[0]
