"""The simulator's Cinder, through openstacksdk, raw HTTP and the openstack CLI."""

from __future__ import annotations

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

SMALL = FleetConfig(
    projects=2, hypervisors=4, servers=8, floating_ips=4, volumes=8, images=4, baremetal_nodes=4
)


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(SMALL) as running:
        yield running


@pytest.fixture(scope="module")
def conn(server: SimulatorServer) -> openstack.connection.Connection:
    return openstack.connect(**server.connect_kwargs())


@pytest.fixture(scope="module")
def region(server: SimulatorServer) -> RegionState:
    return server.state.regions["RegionOne"]


@pytest.fixture(scope="module")
def admin_project(server: SimulatorServer) -> str:
    return next(p for p, o in server.state.projects.items() if o["name"] == "admin")


@pytest.fixture(scope="module")
def http(
    server: SimulatorServer, conn: openstack.connection.Connection, admin_project: str
) -> Iterator[httpx.Client]:
    """Raw calls to ``/v3/{admin project}`` of the region's Cinder, as the admin."""
    with httpx.Client(
        base_url=f"{server.base_url}/RegionOne/volume/v3/{admin_project}",
        headers={"X-Auth-Token": conn.auth_token, "Accept": "application/json"},
    ) as client:
        yield client


def version(minor: int) -> dict[str, str]:
    return {"OpenStack-API-Version": f"volume 3.{minor}"}


def volume_with(region: RegionState, status: str, snapshots: bool = False) -> dict[str, Any]:
    """A volume in `status`, with or without snapshots."""
    snapshotted = {s["volume_id"] for s in region.snapshots.values()}
    return next(
        v
        for v in region.volumes.values()
        if v["status"] == status and (v["id"] in snapshotted) == snapshots
    )


# -- reading ---------------------------------------------------------------------------


def test_sdk_lists_every_volume_of_every_project_exactly_once(
    conn: openstack.connection.Connection, region: RegionState
) -> None:
    ids = [v.id for v in conn.block_storage.volumes(all_projects=True, limit=3)]

    assert len(ids) == len(set(ids))
    assert set(ids) == set(region.volumes)


def test_without_all_tenants_the_admin_sees_its_own_project(
    http: httpx.Client, admin_project: str, region: RegionState
) -> None:
    volumes = http.get("/volumes/detail").json()["volumes"]

    assert volumes == []
    assert all(v["os-vol-tenant-attr:tenant_id"] != admin_project for v in region.volumes.values())


def test_full_pages_link_to_the_next_with_the_project_in_the_url(
    http: httpx.Client, admin_project: str, region: RegionState
) -> None:
    page = http.get("/volumes/detail", params={"all_tenants": 1, "limit": 3}).json()

    (link,) = page["volumes_links"]
    assert link["rel"] == "next"
    assert f"/RegionOne/volume/v3/{admin_project}/volumes/detail?" in link["href"]
    assert f"marker={page['volumes'][-1]['id']}" in link["href"]
    seen = [v["id"] for v in page["volumes"]]
    while "volumes_links" in page:
        page = httpx.get(page["volumes_links"][0]["href"], headers=http.headers).json()
        seen += [v["id"] for v in page["volumes"]]
    assert sorted(seen) == sorted(region.volumes)


def test_status_and_project_filters_narrow_the_list(
    http: httpx.Client, region: RegionState
) -> None:
    in_use = http.get("/volumes/detail", params={"all_tenants": 1, "status": "in-use"}).json()
    project = next(iter(region.volumes.values()))["os-vol-tenant-attr:tenant_id"]
    owned = http.get("/volumes", params={"all_tenants": 1, "project_id": project}).json()

    assert {v["id"] for v in in_use["volumes"]} == {
        v["id"] for v in region.volumes.values() if v["status"] == "in-use"
    }
    assert {v["id"] for v in owned["volumes"]} == {
        v["id"] for v in region.volumes.values() if v["os-vol-tenant-attr:tenant_id"] == project
    }
    assert set(owned["volumes"][0]) == {"id", "name", "links"}


def test_microversion_is_echoed_and_decides_the_fields(http: httpx.Client) -> None:
    old = http.get("/volumes/detail", params={"all_tenants": 1}, headers=version(0))
    new = http.get("/volumes/detail", params={"all_tenants": 1}, headers=version(65))

    assert old.headers["OpenStack-API-Version"] == "volume 3.0"
    assert new.headers["OpenStack-API-Version"] == "volume 3.65"
    assert "OpenStack-API-Version" in old.headers["Vary"]
    assert "volume_type_id" not in old.json()["volumes"][0]
    assert {"volume_type_id", "consumes_quota", "group_id"} <= set(new.json()["volumes"][0])


def test_unsupported_microversion_is_refused(http: httpx.Client) -> None:
    response = http.get("/volumes", headers=version(99))

    assert response.status_code == 406
    assert "maximum is 3.71" in response.json()["computeFault"]["message"]


def test_url_without_project_id_works(
    server: SimulatorServer, http: httpx.Client, region: RegionState
) -> None:
    url = f"{server.base_url}/RegionOne/volume/v3/volumes"
    response = httpx.get(url, params={"all_tenants": 1}, headers={**http.headers, **version(67)})

    assert {v["id"] for v in response.json()["volumes"]} == set(region.volumes)


def test_another_projects_id_in_the_url_is_a_400(
    server: SimulatorServer, http: httpx.Client, region: RegionState
) -> None:
    other = next(iter(region.volumes.values()))["os-vol-tenant-attr:tenant_id"]
    response = httpx.get(
        f"{server.base_url}/RegionOne/volume/v3/{other}/volumes", headers=http.headers
    )

    assert response.status_code == 400
    assert response.json() == {"badRequest": {"code": 400, "message": "Malformed request url"}}


def test_missing_volume_is_a_404_item_not_found(http: httpx.Client) -> None:
    response = http.get("/volumes/00000000-0000-0000-0000-000000000000")

    assert response.status_code == 404
    assert response.json() == {
        "itemNotFound": {
            "code": 404,
            "message": "Volume 00000000-0000-0000-0000-000000000000 could not be found.",
        }
    }


def test_version_discovery_answers_without_a_token(server: SimulatorServer) -> None:
    root = f"{server.base_url}/RegionOne/volume"

    response = httpx.get(root)

    assert response.status_code == 300
    (v3,) = response.json()["versions"]
    assert (v3["id"], v3["min_version"], v3["version"]) == ("v3.0", "3.0", "3.71")
    assert httpx.get(f"{root}/v3/volumes").status_code == 401


def test_services_pools_and_types_are_served(http: httpx.Client, region: RegionState) -> None:
    services = http.get("/os-services", params={"binary": "cinder-volume"}).json()["services"]
    pools = http.get("/scheduler-stats/get_pools", params={"detail": "True"}).json()["pools"]
    names = http.get("/scheduler-stats/get_pools").json()["pools"]
    types = http.get("/types").json()["volume_types"]

    assert services and {s["binary"] for s in services} == {"cinder-volume"}
    assert [p["name"] for p in pools] == [p["name"] for p in region.pools]
    assert "total_capacity_gb" in pools[0]["capabilities"]
    assert set(names[0]) == {"name"}
    assert {t["name"] for t in types} == {t["name"] for t in region.volume_types.values()}
    assert {v["volume_type"] for v in region.volumes.values()} <= {t["name"] for t in types}


# -- writing ---------------------------------------------------------------------------


def test_in_use_volume_cannot_be_deleted(
    conn: openstack.connection.Connection, region: RegionState
) -> None:
    volume = volume_with(region, "in-use")

    with pytest.raises(openstack.exceptions.BadRequestException) as caught:
        conn.block_storage.delete_volume(volume["id"])

    assert "must not be migrating, attached" in str(caught.value)
    assert volume["id"] in region.volumes


def test_available_volume_delete_takes_effect(
    conn: openstack.connection.Connection, http: httpx.Client, region: RegionState
) -> None:
    volume = volume_with(region, "available")

    conn.block_storage.delete_volume(volume["id"], ignore_missing=False)

    assert http.get(f"/volumes/{volume['id']}").status_code == 404
    assert volume["id"] not in {v.id for v in conn.block_storage.volumes(all_projects=True)}


def test_snapshot_blocks_volume_delete_until_cascade(
    conn: openstack.connection.Connection, http: httpx.Client, region: RegionState
) -> None:
    volume = volume_with(region, "available")

    snapshot = conn.block_storage.create_snapshot(volume_id=volume["id"], name="before-cleanup")
    listed = http.get(
        "/snapshots/detail", params={"all_tenants": 1, "volume_id": volume["id"]}
    ).json()["snapshots"]
    refused = http.delete(f"/volumes/{volume['id']}")
    cascaded = http.delete(f"/volumes/{volume['id']}", params={"cascade": "true"})

    assert snapshot.status == "creating"
    assert [s["id"] for s in listed] == [snapshot.id]
    assert listed[0]["status"] == "available"
    assert refused.status_code == 400
    assert cascaded.status_code == 202
    assert not [s for s in region.snapshots.values() if s["volume_id"] == volume["id"]]


def test_snapshots_of_every_project_are_listed_once(
    conn: openstack.connection.Connection, region: RegionState
) -> None:
    ids = [s.id for s in conn.block_storage.snapshots(all_projects=True, limit=1)]

    assert len(ids) == len(set(ids))
    assert set(ids) == set(region.snapshots)


def test_snapshot_of_in_use_volume_needs_force_before_3_66(
    http: httpx.Client, region: RegionState
) -> None:
    volume = volume_with(region, "in-use")
    body = {"snapshot": {"volume_id": volume["id"]}}

    refused = http.post("/snapshots", json=body, headers=version(60))
    accepted = http.post("/snapshots", json=body, headers=version(66))

    assert refused.status_code == 400
    assert accepted.status_code == 202
    http.delete(f"/snapshots/{accepted.json()['snapshot']['id']}")


def test_volume_metadata_can_be_set_and_unset(http: httpx.Client, region: RegionState) -> None:
    volume_id = next(iter(region.volumes))

    merged = http.post(f"/volumes/{volume_id}/metadata", json={"metadata": {"owner": "ops"}})
    item = http.get(f"/volumes/{volume_id}/metadata/owner")
    removed = http.delete(f"/volumes/{volume_id}/metadata/owner")
    again = http.delete(f"/volumes/{volume_id}/metadata/owner")

    assert merged.json()["metadata"]["owner"] == "ops"
    assert item.json() == {"meta": {"owner": "ops"}}
    assert removed.status_code == 200
    assert again.status_code == 404
    assert "owner" not in region.volumes[volume_id]["metadata"]


# -- the openstack CLI -----------------------------------------------------------------


def test_cli_volume_list_all_projects_shows_every_volume(
    server: SimulatorServer, region: RegionState, tmp_path: Path
) -> None:
    rows = run_openstack(
        server, tmp_path, "volume", "list", "--all-projects", "-c", "ID", "-c", "Status"
    )

    assert sorted(r[0] for r in rows) == sorted(region.volumes)
    assert {r[0]: r[1] for r in rows} == {v["id"]: v["status"] for v in region.volumes.values()}


def test_cli_volume_service_list_shows_every_service(
    server: SimulatorServer, region: RegionState, tmp_path: Path
) -> None:
    rows = run_openstack(
        server, tmp_path, "volume", "service", "list", "-c", "Binary", "-c", "Host"
    )

    assert sorted((r[0], r[1]) for r in rows) == sorted(
        (s["binary"], s["host"]) for s in region.volume_services
    )
