"""The testbed's compute hosts as real hosts: their processes (`testbed/ctl`), management
port, BMC (Redfish power), Nova compute service and RPC consumer on RabbitMQ.

Shared by tests/integration/test_testbed_host_recovery.py and benchmarks/host_failure.py.
Everything here is what StackFleet's own recovery will do or observe, done directly with
requests, openstacksdk and py-amqp, so each fact can be checked on its own.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import amqp
import openstack.exceptions
import requests
from testbed_fleet import TESTBED_DIR, Testbed, _testbed_env, wait_until

NOVA_COMPUTE = "nova-compute"


def ctl(testbed: Testbed, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`testbed/ctl ARGS`: start, stop, kill or check single testbed processes."""
    return subprocess.run(
        [str(TESTBED_DIR / "ctl"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=_testbed_env(testbed.home),
    )


def ctl_ok(testbed: Testbed, *args: str, timeout: float = 180) -> str:
    """`testbed/ctl ARGS`, failing with its output when it exits non-zero."""
    done = ctl(testbed, *args, timeout=timeout)
    assert done.returncode == 0, f"testbed/ctl {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def kill(testbed: Testbed, *names: str) -> float:
    """`testbed/ctl kill NAMES` (SIGKILL: a crash); the monotonic time of the first kill,
    from the wall-clock time ctl reports (not when ctl was started)."""
    output = ctl_ok(testbed, "kill", *names)
    found = re.search(r"\) at (\d+\.\d+)", output)
    assert found, f"testbed/ctl kill did not say when it killed: {output}"
    return float(found.group(1)) - (time.time() - time.monotonic())


def host_info(testbed: Testbed, host: str) -> dict[str, Any]:
    hosts = testbed.info.get("hosts")
    assert hosts, "testbed.json has no `hosts`: a testbed from before hosts had BMCs; re-run up"
    return dict(hosts[host])


def heartbeat(testbed: Testbed) -> dict[str, Any]:
    """Nova's report_interval and service_down_time on this testbed, and their mode."""
    return dict(
        testbed.info.get("nova_heartbeat")
        or {"mode": "tuned", "report_interval": 5, "service_down_time": 20}
    )


# -- the host's management port -----------------------------------------------------------


def management_port_open(testbed: Testbed, host: str, timeout: float = 1.0) -> bool:
    info = host_info(testbed, host)
    try:
        with socket.create_connection((info["address"], info["management_port"]), timeout):
            return True
    except OSError:
        return False


# -- the host's BMC -------------------------------------------------------------------


def _bmc(testbed: Testbed, host: str) -> tuple[str, tuple[str, str]]:
    bmc = host_info(testbed, host)["bmc"]
    return bmc["address"] + bmc["system_id"], (bmc["username"], bmc["password"])


def bmc_power(testbed: Testbed, host: str) -> str | None:
    """The PowerState the host's BMC reports; None when the BMC does not answer."""
    url, auth = _bmc(testbed, host)
    try:
        response = requests.get(url, auth=auth, timeout=3)
    except requests.RequestException:
        return None
    if response.status_code != 200:
        return None
    return str(response.json().get("PowerState"))


def bmc_reset(testbed: Testbed, host: str, reset_type: str) -> None:
    """ComputerSystem.Reset on the host's BMC (ForceOff fences, On powers on)."""
    url, auth = _bmc(testbed, host)
    response = requests.post(
        f"{url}/Actions/ComputerSystem.Reset",
        json={"ResetType": reset_type},
        auth=auth,
        timeout=5,
    )
    assert response.status_code in (200, 202, 204), (
        f"BMC of {host}: Reset {reset_type} -> HTTP {response.status_code} {response.text[:200]}"
    )


def fence(testbed: Testbed, host: str, timeout: float = 30.0) -> float:
    """Powers the host off through its BMC and reads the power back until it says Off
    (sushy-tools applies a change 1-11 s later); returns the seconds that took."""
    started = time.monotonic()
    bmc_reset(testbed, host, "ForceOff")
    while True:
        if bmc_power(testbed, host) == "Off":
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(
                f"fencing {host}: its BMC did not report Off within {timeout:.0f} s"
            )
        time.sleep(0.2)


# -- Nova's compute service ---------------------------------------------------------------


def compute_service(conn: Any, host: str) -> Any:
    for service in conn.compute.services(binary=NOVA_COMPUTE, host=host):
        return service
    raise AssertionError(f"Nova has no {NOVA_COMPUTE} service on host {host}")


def restore_compute_service(conn: Any, host: str, timeout: float = 90.0) -> None:
    """Undoes a recovery's marks: not forced down, enabled. Run it after the host's
    nova-compute runs again: Nova refuses to un-force a host (400) while evacuations from
    it are `done` but not yet `completed`, which the restarted compute does at start-up;
    refused, it is retried until `timeout`."""
    service = compute_service(conn, host)
    if service.is_forced_down:
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn.compute.update_service_forced_down(service, forced=False)
                break
            except openstack.exceptions.BadRequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
    if service.status != "enabled":
        conn.compute.enable_service(service)


def respawn_servers(conn: Any, host: str, timeout: float = 120.0) -> list[str]:
    """Hard-reboot the servers Nova lists ACTIVE on `host`, after its nova-compute
    restarted: the fake virt driver forgets its guests with its process (Nova still
    lists them ACTIVE, and a stop then fails with InstanceNotFound), and a hard reboot
    spawns a missing guest again, as libvirt's does (what
    `resume_guests_state_on_host_boot` would do on a real host). Returns their ids."""
    compute = conn.compute
    # (openstacksdk's `servers(host=...)` yields nothing here: filtered client-side)
    servers = [
        s
        for s in compute.servers(all_projects=True)
        if s.status == "ACTIVE" and s.compute_host == host
    ]
    for server in servers:
        compute.reboot_server(server, "HARD")
    for server in servers:
        wait_until(
            f"{server.name} ACTIVE again after its hard reboot",
            lambda server=server: (
                (found := compute.get_server(server.id)).status == "ACTIVE" and not found.task_state
            ),
            timeout=timeout,
            interval=1,
        )
    return [s.id for s in servers]


# -- the host's RPC consumer on RabbitMQ --------------------------------------------------


@dataclass
class ConsumerWatch:
    """Watches the consumers of Nova's `compute.<host>` queue on the testbed's RabbitMQ,
    two ways at once, from a background thread:

    - AMQP: a passive queue.declare answers with the queue's consumer count as the
      broker knows it at that moment (every `amqp_every` seconds);
    - the management API: the queue's `consumer_details` (every `api_every` seconds).

    `lost_amqp` / `lost_api` are the monotonic times each first saw no consumer."""

    testbed: Testbed
    host: str
    amqp_every: float = 0.05
    api_every: float = 0.25
    lost_amqp: float | None = None
    lost_api: float | None = None
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def queue(self) -> str:
        return f"compute.{self.host}"

    def _connection(self) -> amqp.Connection:
        """A connection to Nova's RPC vhost (rabbit://user:password@host:port/vhost)."""
        url = self.testbed.info["rpc_transport_urls"]["nova"]
        creds, _, rest = url.removeprefix("rabbit://").partition("@")
        user, _, password = creds.partition(":")
        hostport, _, vhost = rest.partition("/")
        return amqp.Connection(
            host=hostport, userid=user, password=password, virtual_host=vhost, connect_timeout=3
        )

    def amqp_consumers(self) -> int:
        with self._connection() as conn:
            conn.connect()
            channel = conn.channel()
            _, _, consumers = channel.queue_declare(self.queue, passive=True)
            return int(consumers)

    def api_consumers(self) -> int | None:
        mgmt = self.testbed.info.get("rabbitmq_management")
        if not mgmt:
            return None
        url = f"{mgmt['url']}/api/queues/{mgmt['rpc_vhost']}/{self.queue}"
        try:
            response = requests.get(url, auth=(mgmt["username"], mgmt["password"]), timeout=2)
        except requests.RequestException:
            return None
        if response.status_code != 200:
            return None
        return len(response.json().get("consumer_details") or [])

    def _amqp_loop(self) -> None:
        try:
            with self._connection() as conn:
                conn.connect()
                channel = conn.channel()
                while not self._stop.is_set():
                    _, _, consumers = channel.queue_declare(self.queue, passive=True)
                    if consumers == 0 and self.lost_amqp is None:
                        self.lost_amqp = time.monotonic()
                        return
                    self._stop.wait(self.amqp_every)
        except Exception as exc:  # reported by the test, which then fails with it
            self.errors.append(f"AMQP watch: {type(exc).__name__}: {exc}")

    def _api_loop(self) -> None:
        while not self._stop.is_set():
            consumers = self.api_consumers()
            if consumers == 0 and self.lost_api is None:
                self.lost_api = time.monotonic()
                return
            self._stop.wait(self.api_every)

    def start(self) -> ConsumerWatch:
        assert self.amqp_consumers() >= 1, f"{self.queue} has no consumer before the failure"
        for target in (self._amqp_loop, self._api_loop):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
