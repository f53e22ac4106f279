"""The real OpenStack testbed (testbed/README.md) for the integration and contract suites:
where it is, whether it is up, and the known fleet the tests build on it.

Not a conftest: both suites' conftests use it, and the fleet is built once per test
process however many suites ask for it (`FLEET.lease`).

Everything the tests create is named with the prefix `sfit-` (floating IPs, which have
no name, by their description), so leftovers of a crashed run are found and either
reused (when they are in the state wanted) or replaced, and the end of the session
deletes them all. `STACKFLEET_TESTBED_KEEP_FLEET=1` keeps them for a look afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openstack
import openstack.config
import openstack.connection
import openstack.exceptions
import pytest

from stackfleet.engine.collect import PassResult, collect
from stackfleet.store import Store

TESTBED_DIR = Path(__file__).resolve().parents[1] / "testbed"
PREFIX = "sfit-"
COMPUTE_HOSTS = ("cmp1", "cmp2")
MEMBER_PROJECT = "demo"

# 2 vCPU / 96 MB / 1 GB: unlike the smoke fleet's 1/64/1, so Placement usage per host
# shows which servers it counts.
FLAVOR = {"name": f"{PREFIX}flavor", "vcpus": 2, "ram": 96, "disk": 1}
SUBNET_CIDR = "10.77.0.0/24"
EXTERNAL_CIDR = "172.25.7.0/24"

Connection = openstack.connection.Connection


class TestbedNotUp(Exception):
    """The testbed is not (completely) up; the message says what to do."""


@dataclass(frozen=True)
class Testbed:
    """A running testbed: its home directory, clouds.yaml and testbed.json."""

    home: Path
    clouds_yaml: Path
    info: dict[str, Any]

    @property
    def admin_cloud(self) -> str:
        return str(self.info["clouds"]["admin"])

    @property
    def system_cloud(self) -> str:
        return str(self.info["clouds"]["system"])

    @property
    def member_cloud(self) -> str:
        return str(self.info["clouds"]["member"])

    @property
    def state_file(self) -> Path:
        return self.home / "run" / "state.json"

    def connect(self, cloud: str, project: str | None = None) -> Connection:
        """An openstacksdk connection to `cloud` of this testbed's clouds.yaml (optionally
        re-scoped to another project the same user has a role in)."""
        config = openstack.config.OpenStackConfig(config_files=[str(self.clouds_yaml)])
        extra: dict[str, Any] = {"auth": {"project_name": project}} if project else {}
        return Connection(config=config.get_one(cloud, **extra))

    def process(self, name: str) -> dict[str, Any]:
        """The state file's record (pid, start time, port, log) of one testbed process."""
        processes = json.loads(self.state_file.read_text())["processes"]
        return dict(processes[name])

    def repair(self) -> subprocess.CompletedProcess[str]:
        """`testbed/up --repair`: start again what is not running."""
        return subprocess.run(
            [str(TESTBED_DIR / "up"), "--repair"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env=_testbed_env(self.home),
        )


def _testbed_env(home: Path) -> dict[str, str]:
    return {**os.environ, "STACKFLEET_TESTBED_HOME": str(home)}


def testbed_home() -> Path:
    default = Path.home() / ".cache" / "stackfleet-testbed"
    return Path(os.environ.get("STACKFLEET_TESTBED_HOME") or default)


def find_testbed() -> Testbed:
    """The running testbed, or TestbedNotUp saying what is missing (asks
    `testbed/status`, which checks every recorded process and that every API answers)."""
    home = testbed_home()
    clouds = home / "clouds.yaml"
    info_file = home / "testbed.json"
    if not clouds.exists() or not info_file.exists():
        raise TestbedNotUp(f"no testbed at {home} (no clouds.yaml/testbed.json): run testbed/up")
    status = subprocess.run(
        [sys.executable, "-m", "stackfleet_testbed", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=TESTBED_DIR,
        env={**_testbed_env(home), "PYTHONPATH": str(TESTBED_DIR)},
    )
    if status.returncode != 0:
        table = (status.stdout + status.stderr).strip()
        hint = "testbed/up" if status.returncode == 3 else "testbed/up --repair (or down, up)"
        raise TestbedNotUp(f"the testbed at {home} is not up; run {hint}\n{table}")
    return Testbed(home=home, clouds_yaml=clouds, info=json.loads(info_file.read_text()))


def collect_testbed(store: Store, testbed: Testbed, kinds: list[str] | None = None) -> PassResult:
    """StackFleet's inventory, unchanged, over the testbed (through its clouds.yaml, with
    the system-scoped cloud for Ironic)."""
    [result] = collect(
        store,
        testbed.admin_cloud,
        system_cloud=testbed.system_cloud,
        config_files=[str(testbed.clouds_yaml)],
        kinds=kinds,
    )
    return result


@contextlib.contextmanager
def provisioner_on_testbed(
    testbed: Testbed, store_url: str, spec_text: str, poll_interval: float = 2.0
) -> Iterator[Any]:
    """A StackFleet Provisioner on the testbed's admin cloud; at the end, whatever
    happened, the workloads of `spec_text` are destroyed."""
    from stackfleet.engine.settings import Settings
    from stackfleet.provision.apply import Provisioner
    from stackfleet.provision.spec import load_spec_text
    from stackfleet.store import open_store

    store = open_store(store_url)
    runner = Provisioner(
        store,
        Settings(),
        config_files=[str(testbed.clouds_yaml)],
        default_cloud=testbed.admin_cloud,
        poll_interval=poll_interval,
    )
    try:
        yield runner
    finally:
        try:
            workloads = load_spec_text(spec_text)
            runner.apply(runner.plan(runner.prepare(workloads), destroy=True), execute=True)
        finally:
            runner.close()
            store.close()


_FOUND: Testbed | TestbedNotUp | None = None


def require_testbed() -> Testbed:
    """The running testbed for a test; when it is not up, the test is skipped — or fails,
    when STACKFLEET_TESTBED_REQUIRED=1 (CI, where a missing testbed is a broken build)."""
    global _FOUND
    if _FOUND is None:
        try:
            _FOUND = find_testbed()
        except TestbedNotUp as exc:
            _FOUND = exc
    if isinstance(_FOUND, TestbedNotUp):
        if os.environ.get("STACKFLEET_TESTBED_REQUIRED") == "1":
            pytest.fail(f"STACKFLEET_TESTBED_REQUIRED=1 but {_FOUND}", pytrace=False)
        pytest.skip(str(_FOUND).splitlines()[0])
    return _FOUND


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Poll `check` until it returns something truthy; AssertionError after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout:.0f} s (last: {last!r})")
        time.sleep(interval)


@dataclass
class Fleet:
    """What the tests created on the testbed (ids, and the facts they were created with)."""

    project_id: str
    image_id: str
    flavor_id: str
    external_network_id: str
    network_id: str
    subnet_id: str
    router_id: str
    server_group_ids: list[str]
    # host -> server id, and server id -> its port id
    servers: dict[str, str]
    server_ports: dict[str, str]
    spare_port_id: str
    fip_attached_id: str
    fip_free_id: str
    volume_attached_id: str
    volume_free_id: str
    queued_image_id: str
    node_ids: list[str]
    seconds: float = 0.0
    created: list[str] = field(default_factory=list)

    @property
    def attached_server_id(self) -> str:
        """The server holding the attached volume (the one on cmp2)."""
        return self.servers["cmp2"]

    @property
    def fip_server_id(self) -> str:
        """The server whose port the attached floating IP points at (the one on cmp1)."""
        return self.servers["cmp1"]


class FleetBuilder:
    """Creates (or finds and repairs) the test fleet, and deletes it."""

    def __init__(self, testbed: Testbed) -> None:
        self.testbed = testbed
        self.admin = testbed.connect(testbed.admin_cloud)
        # The admin holds the admin role in project demo too: servers it boots there
        # belong to demo, and it may force their compute host.
        self.admin_demo = testbed.connect(testbed.admin_cloud, project=MEMBER_PROJECT)
        self.member = testbed.connect(testbed.member_cloud)
        self.system = testbed.connect(testbed.system_cloud)
        self.created: list[str] = []

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def _one(found: list[Any], delete: Callable[[Any], Any]) -> Any | None:
        """The first of `found`; duplicates (from a crashed run) are deleted."""
        for extra in found[1:]:
            with contextlib.suppress(openstack.exceptions.NotFoundException):
                delete(extra)
        return found[0] if found else None

    def _note(self, what: str) -> None:
        self.created.append(what)

    def _require_computes_up(self) -> None:
        down = [
            s.host
            for s in self.admin.compute.services(binary="nova-compute")
            if s.host in COMPUTE_HOSTS and (s.state != "up" or s.status != "enabled")
        ]
        if down:
            raise TestbedNotUp(f"compute hosts {down} are not up and enabled: testbed/up --repair")

    # -- building --------------------------------------------------------------------

    def build(self) -> Fleet:
        started = time.monotonic()
        self._require_computes_up()
        image = self.admin.image.find_image(self.testbed.info["image"], ignore_missing=False)
        flavor = self._flavor()
        external = self._network(self.admin, f"{PREFIX}external", external=True, cidr=EXTERNAL_CIDR)
        network = self._network(self.member, f"{PREFIX}net", external=False, cidr=SUBNET_CIDR)
        subnet_id = next(iter(network.subnet_ids))
        router = self._router(external.id, subnet_id)
        # A second flavor and router, unused: marker paging can only be seen (contract
        # tests) in a collection of two or more, and a fresh testbed has none of its own.
        self._spare_flavor()
        self._spare_router()
        groups = [
            self._server_group(f"{PREFIX}group", "soft-anti-affinity"),
            self._server_group(f"{PREFIX}group-empty", "soft-affinity"),
        ]
        servers = self._servers(flavor.id, image.id, network.id, groups[0].id)
        server_ports = {sid: self._server_port(sid, network.id) for sid in servers.values()}
        spare = self._spare_port(network.id)
        fip_attached = self._floating_ip("attached", external.id, server_ports[servers["cmp1"]])
        fip_free = self._floating_ip("free", external.id, None)
        volume_attached = self._volume("vol-attached", servers["cmp2"])
        volume_free = self._volume("vol-free", None)
        queued = self._queued_image()
        nodes = [
            self._node(f"{PREFIX}node-1", "available"),
            self._node(f"{PREFIX}node-2", "enroll"),
        ]
        return Fleet(
            project_id=self.member.current_project_id,
            image_id=image.id,
            flavor_id=flavor.id,
            external_network_id=external.id,
            network_id=network.id,
            subnet_id=subnet_id,
            router_id=router.id,
            server_group_ids=[g.id for g in groups],
            servers=servers,
            server_ports=server_ports,
            spare_port_id=spare.id,
            fip_attached_id=fip_attached.id,
            fip_free_id=fip_free.id,
            volume_attached_id=volume_attached.id,
            volume_free_id=volume_free.id,
            queued_image_id=queued,
            node_ids=nodes,
            seconds=time.monotonic() - started,
            created=self.created,
        )

    def _flavor(self) -> Any:
        compute = self.admin.compute
        found = [f for f in compute.flavors(is_public=None) if f.name == FLAVOR["name"]]
        flavor = self._one(found, compute.delete_flavor)
        wanted = (FLAVOR["vcpus"], FLAVOR["ram"], FLAVOR["disk"])
        if flavor is not None and (flavor.vcpus, flavor.ram, flavor.disk) != wanted:
            compute.delete_flavor(flavor)
            flavor = None
        if flavor is None:
            flavor = compute.create_flavor(**FLAVOR, is_public=True)
            self._note(f"flavor {flavor.name}")
        return flavor

    def _network(self, conn: Connection, name: str, external: bool, cidr: str) -> Any:
        net = conn.network
        network = self._one(list(net.networks(name=name)), self._delete_network)
        if network is None:
            attrs: dict[str, Any] = {"name": name}
            if external:
                # VXLAN, not the flat physnet `public` that testbed/smoke uses: a flat
                # physical network takes one network only, and ours must come and go.
                attrs |= {"is_router_external": True, "provider_network_type": "vxlan"}
            network = net.create_network(**attrs)
            self._note(f"network {name}")
        if not network.subnet_ids:
            net.create_subnet(
                name=f"{name}-subnet",
                network_id=network.id,
                cidr=cidr,
                ip_version=4,
                enable_dhcp=False,
            )
            network = net.get_network(network.id)
        return network

    def _delete_network(self, network: Any) -> None:
        self.admin.network.delete_network(network, ignore_missing=True)

    def _router(self, external_id: str, subnet_id: str) -> Any:
        net = self.member.network
        router = self._one(list(net.routers(name=f"{PREFIX}router")), self._delete_router)
        if router is None:
            router = net.create_router(name=f"{PREFIX}router")
            self._note("router")
        if (router.external_gateway_info or {}).get("network_id") != external_id:
            router = net.update_router(router, external_gateway_info={"network_id": external_id})
        interfaces = net.ports(device_id=router.id, device_owner="network:router_interface")
        if not any(ip["subnet_id"] == subnet_id for p in interfaces for ip in p.fixed_ips):
            net.add_interface_to_router(router, subnet_id=subnet_id)
        return router

    def _spare_flavor(self) -> None:
        compute = self.admin.compute
        name = f"{PREFIX}flavor-spare"
        found = [f for f in compute.flavors(is_public=None) if f.name == name]
        if self._one(found, compute.delete_flavor) is None:
            compute.create_flavor(name=name, vcpus=1, ram=64, disk=1, is_public=True)
            self._note(f"flavor {name}")

    def _spare_router(self) -> None:
        net = self.member.network
        name = f"{PREFIX}router-spare"
        if self._one(list(net.routers(name=name)), self._delete_router) is None:
            net.create_router(name=name)
            self._note(f"router {name}")

    def _delete_router(self, router: Any) -> None:
        net = self.admin.network
        for port in net.ports(device_id=router.id, device_owner="network:router_interface"):
            with contextlib.suppress(openstack.exceptions.SDKException):
                net.remove_interface_from_router(router, port_id=port.id)
        net.delete_router(router, ignore_missing=True)

    def _server_group(self, name: str, policy: str) -> Any:
        compute = self.admin_demo.compute
        found = [g for g in compute.server_groups() if g.name == name]
        group = self._one(found, compute.delete_server_group)
        if group is not None and group.policy != policy:
            compute.delete_server_group(group)
            group = None
        if group is None:
            group = compute.create_server_group(name=name, policy=policy)
            self._note(f"server group {name}")
        return group

    def _servers(
        self, flavor_id: str, image_id: str, network_id: str, group_id: str
    ) -> dict[str, str]:
        """One ACTIVE server per compute host, booted in parallel."""
        compute = self.admin_demo.compute
        wanted: dict[str, Any] = {}
        for number, host in enumerate(COMPUTE_HOSTS, 1):
            name = f"{PREFIX}server-{number}"
            found = list(compute.servers(name=f"^{name}$"))
            server = self._one(found, compute.delete_server)
            if server is not None and (
                server.status != "ACTIVE"
                or server.compute_host != host
                or server.flavor.original_name != FLAVOR["name"]
            ):
                compute.delete_server(server)
                compute.wait_for_delete(server, wait=120)
                server = None
            if server is None:
                server = compute.create_server(
                    name=name,
                    flavor_id=flavor_id,
                    image_id=image_id,
                    networks=[{"uuid": network_id}],
                    availability_zone=f"nova:{host}",
                    scheduler_hints={"group": group_id},
                )
                self._note(f"server {name}")
            wanted[host] = server
        return {
            host: compute.wait_for_server(server, status="ACTIVE", wait=180).id
            for host, server in wanted.items()
        }

    def _server_port(self, server_id: str, network_id: str) -> str:
        def bound() -> str | None:
            ports = list(self.admin.network.ports(device_id=server_id, network_id=network_id))
            active = [p for p in ports if p.status == "ACTIVE" and p.binding_vif_type == "ovs"]
            return active[0].id if active else None

        return str(wait_until(f"the port of server {server_id} bound", bound, 60))

    def _spare_port(self, network_id: str) -> Any:
        net = self.member.network
        port = self._one(list(net.ports(name=f"{PREFIX}port-spare")), net.delete_port)
        if port is None:
            port = net.create_port(name=f"{PREFIX}port-spare", network_id=network_id)
            self._note("spare port")
        return port

    def _floating_ip(self, role: str, external_id: str, port_id: str | None) -> Any:
        net = self.member.network
        description = f"{PREFIX}fip-{role}"
        found = [
            ip for ip in net.ips(floating_network_id=external_id) if ip.description == description
        ]
        fip = self._one(found, net.delete_ip)
        if fip is None:
            fip = net.create_ip(
                floating_network_id=external_id, port_id=port_id, description=description
            )
            self._note(f"floating IP {role}")
        elif fip.port_id != port_id:
            fip = net.update_ip(fip, port_id=port_id)
        return fip

    def _volume(self, role: str, server_id: str | None) -> Any:
        storage = self.member.block_storage
        name = f"{PREFIX}{role}"
        volume = self._one(list(storage.volumes(name=name)), self._delete_volume)
        attached_to = [a["server_id"] for a in (volume.attachments or [])] if volume else []
        if volume is not None and (
            volume.status not in ("available", "in-use")
            or attached_to != ([server_id] if server_id else [])
        ):
            self._delete_volume(volume)
            volume = None
        if volume is None:
            volume = storage.create_volume(name=name, size=1)
            self._note(f"volume {name}")
            volume = storage.wait_for_status(volume, "available", wait=120)
            if server_id:
                self.member.compute.create_volume_attachment(server_id, volume_id=volume.id)
        status = "in-use" if server_id else "available"
        return storage.wait_for_status(volume, status, wait=120)

    def _delete_volume(self, volume: Any) -> None:
        storage = self.admin.block_storage
        for attachment in volume.attachments or []:
            with contextlib.suppress(openstack.exceptions.SDKException):
                self.admin_demo.compute.delete_volume_attachment(attachment["server_id"], volume.id)
        if volume.attachments:
            with contextlib.suppress(openstack.exceptions.SDKException):
                storage.wait_for_status(volume, "available", wait=60)
        storage.delete_volume(volume, ignore_missing=True)
        storage.wait_for_delete(volume, wait=60)

    def _queued_image(self) -> str:
        """A private image without data: Glance keeps it `queued` (no file needed)."""
        image = self.member.image
        name = f"{PREFIX}image-queued"
        found = self._one(list(image.images(name=name)), image.delete_image)
        if found is not None:
            return str(found.id)
        response = image.post(
            "/images",
            json={
                "name": name,
                "disk_format": "raw",
                "container_format": "bare",
                "visibility": "private",
            },
        )
        response.raise_for_status()
        self._note("queued image")
        return str(response.json()["id"])

    def _node(self, name: str, target: str) -> str:
        """A fake-hardware Ironic node moved to `target` (enroll or available)."""
        baremetal = self.system.baremetal
        found = list(baremetal.nodes(details=True))
        node = self._one([n for n in found if n.name == name], self._delete_node)
        if node is not None and node.provision_state not in ("enroll", "manageable", "available"):
            self._delete_node(node)
            node = None
        if node is None:
            node = baremetal.create_node(
                name=name,
                driver="fake-hardware",
                resource_class="baremetal",
                properties={"cpus": 4, "memory_mb": 8192, "local_gb": 100},
            )
            self._note(f"node {name}")
        if target == "available":
            if node.provision_state == "enroll":
                node = baremetal.set_node_provision_state(node, "manage", wait=True, timeout=60)
            if node.provision_state == "manageable":
                node = baremetal.set_node_provision_state(node, "provide", wait=True, timeout=60)
            if node.power_state != "power off":
                baremetal.set_node_power_state(node, "power off", wait=True, timeout=60)
        return str(node.id)

    def _delete_node(self, node: Any) -> None:
        self.system.baremetal.delete_node(node, ignore_missing=True)

    # -- deleting --------------------------------------------------------------------

    def delete_all(self) -> list[str]:
        """Delete everything named with the prefix, whoever made it; returns what could
        not be deleted (empty when the testbed is clean)."""
        problems: list[str] = []

        def attempt(what: str, action: Callable[[], Any]) -> None:
            try:
                action()
            except Exception as exc:  # cleanup goes on; the caller reports what is left
                problems.append(f"{what}: {type(exc).__name__}: {exc}")

        net = self.admin.network
        compute = self.admin.compute
        storage = self.admin.block_storage
        prefixed = [ip for ip in net.ips() if (ip.description or "").startswith(PREFIX)]
        for ip in prefixed:
            attempt(f"floating IP {ip.id}", lambda ip=ip: net.delete_ip(ip, ignore_missing=True))
        servers = [
            s for s in compute.servers(all_projects=True) if (s.name or "").startswith(PREFIX)
        ]
        for server in servers:
            attempt(f"server {server.name}", lambda s=server: compute.delete_server(s))
        for server in servers:
            attempt(f"server {server.name}", lambda s=server: compute.wait_for_delete(s, wait=120))
        for volume in storage.volumes(all_projects=True):
            if (volume.name or "").startswith(PREFIX):
                attempt(f"volume {volume.name}", lambda v=volume: self._delete_volume(v))
        for port in net.ports():
            if (port.name or "").startswith(PREFIX):
                attempt(f"port {port.name}", lambda p=port: net.delete_port(p))
        for router in net.routers():
            if (router.name or "").startswith(PREFIX):
                attempt(f"router {router.name}", lambda r=router: self._delete_router(r))
        for network in net.networks():
            if (network.name or "").startswith(PREFIX):
                attempt(f"network {network.name}", lambda n=network: self._delete_network(n))
        for group in compute.server_groups(all_projects=True):
            if (group.name or "").startswith(PREFIX):
                attempt(
                    f"server group {group.name}", lambda g=group: compute.delete_server_group(g)
                )
        for flavor in compute.flavors(is_public=None):
            if flavor.name.startswith(PREFIX):
                attempt(f"flavor {flavor.name}", lambda f=flavor: compute.delete_flavor(f))
        for image in self.admin.image.images():
            if (image.name or "").startswith(PREFIX):
                attempt(f"image {image.name}", lambda i=image: self.admin.image.delete_image(i))
        for node in self.system.baremetal.nodes():
            if (node.name or "").startswith(PREFIX):
                attempt(f"node {node.name}", lambda n=node: self._delete_node(n))
        return problems


class FleetLeases:
    """The fleet, built on first use and deleted when its last user is done.

    The integration and contract suites each hold a session fixture over the same fleet;
    pytest tears both down at the end of the session, so counting leases deletes the
    fleet once, after both."""

    def __init__(self) -> None:
        self.fleet: Fleet | None = None
        self.holders = 0

    @contextlib.contextmanager
    def lease(self, testbed: Testbed) -> Iterator[Fleet]:
        if self.fleet is None:
            self.fleet = FleetBuilder(testbed).build()
        self.holders += 1
        try:
            yield self.fleet
        finally:
            self.holders -= 1
            if self.holders == 0:
                self.fleet = None
                if os.environ.get("STACKFLEET_TESTBED_KEEP_FLEET") != "1":
                    left = FleetBuilder(testbed).delete_all()
                    assert not left, f"could not delete the test fleet: {left}"


FLEET = FleetLeases()
