"""The simulator's Glance, through openstacksdk, raw HTTP and the openstack CLI."""

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
    projects=2, hypervisors=4, servers=8, floating_ips=4, volumes=4, images=12, baremetal_nodes=4
)
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


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
def http(server: SimulatorServer, conn: openstack.connection.Connection) -> Iterator[httpx.Client]:
    """Raw calls to the region's Glance as the admin."""
    with httpx.Client(
        base_url=f"{server.base_url}/RegionOne/image",
        headers={"X-Auth-Token": conn.auth_token, "Accept": "application/json"},
    ) as client:
        yield client


def listed_by_default(region: RegionState, admin_project: str) -> set[str]:
    """What Glance lists to an admin without filters: not hidden, and community images
    only when the admin's project owns them."""
    return {
        i["id"]
        for i in region.images.values()
        if not i.get("os_hidden")
        and (i["visibility"] != "community" or i["owner"] == admin_project)
    }


def image_where(region: RegionState, **wanted: Any) -> dict[str, Any]:
    return next(i for i in region.images.values() if all(i.get(k) == v for k, v in wanted.items()))


# -- reading ---------------------------------------------------------------------------


def test_sdk_paging_yields_every_listed_image_exactly_once(
    conn: openstack.connection.Connection, region: RegionState, admin_project: str
) -> None:
    ids = [image.id for image in conn.image.images(limit=2)]

    assert len(ids) == len(set(ids))
    assert set(ids) == listed_by_default(region, admin_project)


def test_list_pages_carry_relative_first_next_and_schema(http: httpx.Client) -> None:
    page = http.get("/v2/images", params={"limit": 2}).json()

    assert page["schema"] == "/v2/schemas/images"
    assert page["first"] == "/v2/images?limit=2"
    assert page["next"] == f"/v2/images?limit=2&marker={page['images'][-1]['id']}"
    assert page["images"][0]["self"] == f"/v2/images/{page['images'][0]['id']}"


def test_default_order_is_newest_first(http: httpx.Client) -> None:
    created = [i["created_at"] for i in http.get("/v2/images").json()["images"]]

    assert created == sorted(created, reverse=True)


def test_visibility_owner_and_status_filters(
    http: httpx.Client, region: RegionState, admin_project: str
) -> None:
    public = http.get("/v2/images", params={"visibility": "public"}).json()["images"]
    community = http.get("/v2/images", params={"visibility": "community"}).json()["images"]
    owned = http.get("/v2/images", params={"owner": admin_project}).json()["images"]
    everything = http.get("/v2/images", params={"visibility": "all"}).json()["images"]

    assert {i["id"] for i in public} == {
        i["id"] for i in region.images.values() if i["visibility"] == "public"
    }
    assert community and all(i["visibility"] == "community" for i in community)
    assert owned and all(i["owner"] == admin_project for i in owned)
    assert {i["id"] for i in everything} == set(region.images)
    assert http.get("/v2/images", params={"visibility": "secret"}).status_code == 400


def test_sort_by_name_ascending(http: httpx.Client) -> None:
    images = http.get("/v2/images", params={"sort": "name:asc"}).json()["images"]

    names = [i["name"] for i in images]
    assert names == sorted(names)


def test_missing_image_is_glances_404(http: httpx.Client) -> None:
    response = http.get("/v2/images/00000000-0000-0000-0000-000000000000")

    assert response.status_code == 404
    assert response.json() == {
        "message": "No image found with ID 00000000-0000-0000-0000-000000000000<br /><br />\n\n\n",
        "code": "404 Not Found",
        "title": "Not Found",
    }


def test_versions_are_discovered_without_a_token(server: SimulatorServer) -> None:
    root = f"{server.base_url}/RegionOne/image"

    response = httpx.get(root)

    assert response.status_code == 300
    current = [v for v in response.json()["versions"] if v["status"] == "CURRENT"]
    assert current[0]["links"][0]["href"] == f"{root}/v2/"
    assert httpx.get(f"{root}/versions").status_code == 200
    assert httpx.get(f"{root}/v2/images").status_code == 401


# -- writing ---------------------------------------------------------------------------


def test_protected_image_cannot_be_deleted(
    conn: openstack.connection.Connection, region: RegionState
) -> None:
    image = image_where(region, protected=True)

    with pytest.raises(openstack.exceptions.ForbiddenException) as caught:
        conn.image.delete_image(image["id"], ignore_missing=False)

    assert "is protected and cannot be deleted" in str(caught.value)
    assert image["id"] in region.images


def test_deleting_an_image_takes_effect(
    conn: openstack.connection.Connection, http: httpx.Client, region: RegionState
) -> None:
    image = image_where(region, protected=False, visibility="private")

    conn.image.delete_image(image["id"], ignore_missing=False)

    assert http.get(f"/v2/images/{image['id']}").status_code == 404
    assert image["id"] not in {i.id for i in conn.image.images()}


def test_json_patch_sets_tags_and_properties(http: httpx.Client, region: RegionState) -> None:
    image = image_where(region, protected=False, visibility="private")
    patch = [
        {"op": "replace", "path": "/tags", "value": ["golden"]},
        {"op": "add", "path": "/stackfleet_owner", "value": "ops"},
        {"op": "replace", "path": "/min_ram", "value": 512},
    ]

    response = http.patch(f"/v2/images/{image['id']}", json=patch, headers=PATCH)
    tagged = http.get("/v2/images", params={"tag": "golden"}).json()["images"]
    read_only = http.patch(
        f"/v2/images/{image['id']}",
        json=[{"op": "replace", "path": "/status", "value": "active"}],
        headers=PATCH,
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["tags"], body["stackfleet_owner"], body["min_ram"]) == (["golden"], "ops", 512)
    assert [i["id"] for i in tagged] == [image["id"]]
    assert read_only.status_code == 403


def test_patch_needs_the_json_patch_media_type(http: httpx.Client, region: RegionState) -> None:
    image_id = next(iter(region.images))

    response = http.patch(f"/v2/images/{image_id}", json=[])

    assert response.status_code == 415


def test_tag_calls_add_and_remove_one_tag(http: httpx.Client, region: RegionState) -> None:
    image_id = image_where(region, visibility="public")["id"]

    assert http.put(f"/v2/images/{image_id}/tags/base").status_code == 204
    assert "base" in http.get(f"/v2/images/{image_id}").json()["tags"]
    assert http.delete(f"/v2/images/{image_id}/tags/base").status_code == 204
    assert http.delete(f"/v2/images/{image_id}/tags/base").status_code == 404


# -- the openstack CLI -----------------------------------------------------------------


def test_cli_image_list_shows_the_listed_images(
    server: SimulatorServer, region: RegionState, admin_project: str, tmp_path: Path
) -> None:
    rows = run_openstack(server, tmp_path, "image", "list", "-c", "ID")

    assert sorted(r[0] for r in rows) == sorted(listed_by_default(region, admin_project))
