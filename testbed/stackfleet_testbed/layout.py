"""Where the testbed keeps its files, and the fixed names, ports and passwords it uses.

Everything lives under one directory, ``$STACKFLEET_TESTBED_HOME`` (default
``~/.cache/stackfleet-testbed``)::

    venv/          the services' virtualenv (kept between runs)
    etc/<svc>/     generated configuration (rewritten by every ``up``)
    data/<svc>/    state paths, fernet keys, image store, lock dirs (wiped with the databases)
    logs/          one log per process, plus the install log
    run/           state.json (recorded PIDs) and the lock file
    clouds.yaml    the clouds ``testbed-admin``, ``testbed-system`` and ``testbed-member``
    testbed.json   endpoints, transport URLs and database names, for tests
    bmc-map.yaml   the compute hosts' BMCs, in StackFleet's BMC map format

The passwords are fixed on purpose: the testbed listens on loopback only and tests
must be able to reach it without reading secrets from anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TESTBED_DIR = Path(__file__).resolve().parent.parent
REQUIREMENTS = TESTBED_DIR / "requirements.txt"
ML2_PLUGIN_DIR = TESTBED_DIR / "ml2_bind_all"

HOST = "127.0.0.1"
REGION = "RegionOne"

# Standard OpenStack ports: nothing else on these machines uses them. The Redfish
# emulator leaves 8000 (its default) to StackFleet's own API.
PORTS: dict[str, int] = {
    "keystone": 5000,
    "placement-api": 8778,
    "nova-api": 8774,
    "neutron-api": 9696,
    "glance-api": 9292,
    "cinder-api": 8776,
    "ironic-api": 6385,
    "sushy-emulator": 8100,
}

ADMIN_USER = "admin"
ADMIN_PASSWORD = "testbed-admin"
SERVICE_PASSWORD = "testbed-service"
MEMBER_PASSWORD = "testbed-member"
SERVICE_PROJECT = "service"
MEMBER_PROJECTS = {"demo": "demo", "alt-demo": "alt_demo"}  # project -> member user

# MariaDB: one database per service (Nova has three), all named with this prefix,
# reached by one dedicated account.
DB_PREFIX = "sftb_"
DB_USER = "sftb"
DB_PASSWORD = "testbed-db"
DATABASES = {
    "keystone": ["keystone"],
    "placement": ["placement"],
    "nova": ["nova_api", "nova_cell0", "nova_cell1"],
    "neutron": ["neutron"],
    "glance": ["glance"],
    "cinder": ["cinder"],
    "ironic": ["ironic"],
}

# RabbitMQ: a vhost per service that does RPC, and one shared vhost that every
# service sends its notifications to (what a notification listener subscribes to).
MQ_USER = "sftb"
MQ_PASSWORD = "testbed-mq"
RPC_VHOSTS = {svc: f"sftb-{svc}" for svc in ("nova", "neutron", "cinder", "ironic")}
NOTIFICATIONS_VHOST = "sftb-notifications"

COMPUTE_HOSTS = ("cmp1", "cmp2")
CONTROL_HOST = "testbed-control"

# What a real compute host has besides its nova-compute: its own address (Nova's
# `my_ip`, so the hypervisor's host_ip), a management port a health probe can reach
# (a stand-in for SSH: `mgmt-<host>` answers with an SSH-like banner), and a BMC of its
# own (`bmc-<host>`: a sushy-tools emulator with one fake system, on the BMC network's
# address). All of 127.0.0.0/8 reaches the loopback interface: nothing to configure.
HOST_ADDRESSES = {"cmp1": "127.0.0.11", "cmp2": "127.0.0.12"}
MGMT_PORT = 2222
BMC_ADDRESSES = {"cmp1": "127.0.1.11", "cmp2": "127.0.1.12"}
BMC_PORT = 8100
BMC_SYSTEMS = {
    "cmp1": "5f0c6a3e-2b1d-4c1e-9a51-0a5c0de0c001",
    "cmp2": "5f0c6a3e-2b1d-4c1e-9a51-0a5c0de0c002",
}
BMC_USER = "admin"
BMC_PASSWORD = "testbed-bmc"
# htpasswd line for BMC_USER/BMC_PASSWORD (bcrypt, cost 4; sushy-tools needs bcrypt, which
# the standard library cannot make: the digest is fixed here, like the password).
BMC_HTPASSWD = f"{BMC_USER}:$2b$04$Sz1gXTKm3nf2gU5eA2Z3g.v7Jchzt2IvI28du/aa2S.G8PVqe7ZUO"

# Nova's heartbeat: tuned (a dead compute counts as down after 20 s, quick tests) or
# Nova's own defaults (`testbed/up --nova-defaults`: what StackFleet's health detection
# is measured against).
NOVA_HEARTBEATS = {
    "tuned": {"report_interval": 5, "service_down_time": 20},
    "defaults": {"report_interval": 10, "service_down_time": 60},
}
NOVA_DEFAULTS_ENV = "STACKFLEET_TESTBED_NOVA_DEFAULTS"

# RabbitMQ's management API (the plugin is enabled by `up`); the machine's own
# administrator, which may read every vhost from loopback.
MQ_MANAGEMENT_URL = "http://127.0.0.1:15672"
MQ_MANAGEMENT_USER = ("guest", "guest")


def bmc_url(host: str) -> str:
    return f"http://{BMC_ADDRESSES[host]}:{BMC_PORT}"


def bmc_system_path(host: str) -> str:
    return f"/redfish/v1/Systems/{BMC_SYSTEMS[host]}"


def db_name(short: str) -> str:
    return f"{DB_PREFIX}{short}"


def db_url(short: str) -> str:
    return f"mysql+pymysql://{DB_USER}:{DB_PASSWORD}@{HOST}:3306/{db_name(short)}?charset=utf8"


def rpc_url(service: str) -> str:
    return f"rabbit://{MQ_USER}:{MQ_PASSWORD}@{HOST}:5672/{RPC_VHOSTS[service]}"


def notifications_url() -> str:
    return f"rabbit://{MQ_USER}:{MQ_PASSWORD}@{HOST}:5672/{NOTIFICATIONS_VHOST}"


def endpoint(name: str) -> str:
    return f"http://{HOST}:{PORTS[name]}"


@dataclass(frozen=True)
class Layout:
    """Paths under the testbed's home directory."""

    home: Path

    @classmethod
    def from_env(cls) -> Layout:
        default = Path.home() / ".cache" / "stackfleet-testbed"
        return cls(Path(os.environ.get("STACKFLEET_TESTBED_HOME") or default).resolve())

    @property
    def venv(self) -> Path:
        return self.home / "venv"

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    @property
    def etc(self) -> Path:
        return self.home / "etc"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def state_file(self) -> Path:
        return self.run / "state.json"

    @property
    def lock_file(self) -> Path:
        return self.run / "lock"

    @property
    def bootstrapped_marker(self) -> Path:
        return self.data / ".bootstrapped"

    @property
    def options_file(self) -> Path:
        """The options the running testbed was started with (Nova heartbeat mode)."""
        return self.run / "options.json"

    @property
    def bmc_map(self) -> Path:
        return self.home / "bmc-map.yaml"

    @property
    def clouds_yaml(self) -> Path:
        return self.home / "clouds.yaml"

    @property
    def testbed_json(self) -> Path:
        return self.home / "testbed.json"

    def conf(self, service: str, name: str) -> Path:
        return self.etc / service / name

    def log(self, process: str) -> Path:
        return self.logs / f"{process}.log"
