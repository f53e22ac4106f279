"""Steps that talk to the running APIs, run with the venv's Python (openstacksdk).

    python -m stackfleet_testbed.provision identity   projects, users, roles, catalog
    python -m stackfleet_testbed.provision ready      waits for every service to report
    python -m stackfleet_testbed.provision image      uploads the "cirros-fake" image

Every step is idempotent: it finds before it creates.
"""

from __future__ import annotations

import datetime
import sys
import time
from typing import Any

import openstack
from openstack import exceptions

from . import layout as L
from .layout import Layout

CATALOG = [
    # (service name, service type, URL)
    ("placement", "placement", L.endpoint("placement-api")),
    ("nova", "compute", L.endpoint("nova-api") + "/v2.1"),
    ("neutron", "network", L.endpoint("neutron-api")),
    ("glance", "image", L.endpoint("glance-api")),
    ("cinder", "block-storage", L.endpoint("cinder-api") + "/v3"),
    # Nova's [cinder] catalog_info still looks for the old type.
    ("cinderv3", "volumev3", L.endpoint("cinder-api") + "/v3"),
    ("ironic", "baremetal", L.endpoint("ironic-api")),
]
SERVICE_USERS = ["nova", "placement", "neutron", "glance", "cinder", "ironic"]
IMAGE_NAME = "cirros-fake"


def admin(system: bool = False) -> Any:  # a Connection; its proxies are loosely typed
    auth = {
        "auth_url": L.endpoint("keystone") + "/v3",
        "username": L.ADMIN_USER,
        "password": L.ADMIN_PASSWORD,
        "user_domain_name": "Default",
    }
    if system:
        auth["system_scope"] = "all"
    else:
        auth.update(project_name="admin", project_domain_name="Default")
    return openstack.connect(auth=auth, region_name=L.REGION, identity_api_version="3")


def _project(conn, name: str, description: str):
    found = conn.identity.find_project(name, domain_id="default")
    return found or conn.identity.create_project(
        name=name, domain_id="default", description=description
    )


def _role(conn, name: str):
    return conn.identity.find_role(name) or conn.identity.create_role(name=name)


def _user(conn, name: str, password: str, project):
    found = conn.identity.find_user(name, domain_id="default")
    if found:
        return found
    return conn.identity.create_user(
        name=name, password=password, domain_id="default", default_project_id=project.id
    )


def identity() -> None:
    conn = admin()
    roles = {name: _role(conn, name) for name in ("admin", "member", "reader", "service")}
    service_project = _project(conn, L.SERVICE_PROJECT, "OpenStack service users")
    admin_user = conn.identity.find_user(L.ADMIN_USER, domain_id="default")
    for project_name, user_name in L.MEMBER_PROJECTS.items():
        project = _project(conn, project_name, f"testbed project {project_name}")
        user = _user(conn, user_name, L.MEMBER_PASSWORD, project)
        conn.identity.assign_project_role_to_user(project, user, roles["member"])
        conn.identity.assign_project_role_to_user(project, admin_user, roles["admin"])
    for name in SERVICE_USERS:
        user = _user(conn, name, L.SERVICE_PASSWORD, service_project)
        # keystonemiddleware requires the `service` role of service tokens.
        for role in ("admin", "service"):
            conn.identity.assign_project_role_to_user(service_project, user, roles[role])
    for name, service_type, url in CATALOG:
        service = next(iter(conn.identity.services(type=service_type)), None)
        if service is None:
            service = conn.identity.create_service(name=name, type=service_type, enabled=True)
        for interface in ("public", "internal"):
            existing = list(conn.identity.endpoints(service_id=service.id, interface=interface))
            if not existing:
                conn.identity.create_endpoint(
                    service_id=service.id, interface=interface, url=url, region_id=L.REGION
                )
            elif existing[0].url != url:
                conn.identity.update_endpoint(existing[0], url=url)


def _wait(what: str, check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            missing = check()
        except exceptions.SDKException as exc:
            missing = f"{type(exc).__name__}: {exc}"
        if not missing:
            return
        if missing != last:
            print(f"  waiting for {what}: {missing}", flush=True)
            last = missing
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} not ready after {timeout:.0f} s: {missing}")
        time.sleep(1)


def ready(timeout: float = 240.0) -> None:
    conn = admin()
    system = admin(system=True)

    since = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)

    def reporting(service) -> bool:
        # A forced-down compute (a recovery fenced its host) is listed down until an
        # operator un-forces it, which Nova refuses while its `done` evacuations wait for
        # the restarted compute to complete them: it counts once it reports again.
        if service.state == "up":
            return True
        if not service.is_forced_down or not service.updated_at:
            return False
        return datetime.datetime.fromisoformat(service.updated_at[:26]) > since

    def compute() -> str:
        up = {(s.binary, s.host) for s in conn.compute.services() if reporting(s)}
        want = {("nova-conductor", L.CONTROL_HOST), ("nova-scheduler", L.CONTROL_HOST)}
        want |= {("nova-compute", h) for h in L.COMPUTE_HOSTS}
        return ", ".join(f"{b}@{h}" for b, h in sorted(want - up))

    def volume() -> str:
        up = {s.binary for s in conn.block_storage.services() if s.state == "up"}
        return ", ".join(sorted({"cinder-scheduler", "cinder-volume"} - up))

    def baremetal() -> str:
        drivers = {d.name for d in system.baremetal.drivers()}
        return ", ".join(sorted({"fake-hardware", "redfish"} - drivers))

    def network() -> str:
        aliases = {e.alias for e in conn.network.extensions()}
        return "" if "router" in aliases else "the router extension"

    def placement() -> str:
        resp = conn.placement.get("/resource_providers")
        names = {rp["name"] for rp in resp.json()["resource_providers"]}
        return ", ".join(sorted(set(L.COMPUTE_HOSTS) - names))

    _wait("compute services", compute, timeout)
    _wait("block storage services", volume, timeout)
    _wait("bare metal drivers", baremetal, timeout)
    _wait("networking", network, timeout)
    _wait("resource providers of the compute hosts", placement, timeout)


def image(layout: Layout) -> None:
    conn = admin()
    if conn.image.find_image(IMAGE_NAME):
        return
    path = layout.data / "glance" / f"{IMAGE_NAME}.raw"
    path.parent.mkdir(parents=True, exist_ok=True)
    # One MiB: a raw disk of zeros, which every format check accepts.
    path.write_bytes(bytes(1 << 20))
    conn.image.create_image(
        name=IMAGE_NAME,
        filename=str(path),
        disk_format="raw",
        container_format="bare",
        visibility="public",
        wait=True,
        timeout=120,
        allow_duplicates=False,
    )


def main(argv: list[str]) -> None:
    layout = Layout.from_env()
    for step in argv:
        if step == "identity":
            identity()
        elif step == "ready":
            ready()
        elif step == "image":
            image(layout)
        else:
            raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
