"""Writes every service's configuration files under ``etc/``.

The files are rewritten on each ``up`` from the constants in ``layout``; they hold no
state. DevStack's ``lib/*`` scripts were the reference for which options matter.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from . import layout as L
from .layout import Layout

Ini = dict[str, dict[str, object]]

SUSHY_SYSTEMS = [
    {"uuid": "5f0c6a3e-2b1d-4c1e-9a51-0a5c0de00001", "name": "sftb-bm-1"},
    {"uuid": "5f0c6a3e-2b1d-4c1e-9a51-0a5c0de00002", "name": "sftb-bm-2"},
]


def render_ini(sections: Ini) -> str:
    lines: list[str] = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        for key, value in options.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            lines.append(f"{key} = {value}")
        lines.append("")
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _user_auth(username: str) -> dict[str, object]:
    """keystoneauth password options for a service user in the service project."""
    return {
        "auth_type": "password",
        "auth_url": L.endpoint("keystone"),
        "username": username,
        "password": L.SERVICE_PASSWORD,
        "project_name": L.SERVICE_PROJECT,
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "region_name": L.REGION,
    }


def _authtoken(username: str) -> dict[str, object]:
    return {
        "www_authenticate_uri": L.endpoint("keystone"),
        **_user_auth(username),
        # keystonemiddleware 13 checks that service tokens carry the `service` role.
        "service_token_roles_required": True,
        "interface": "internal",
    }


def _notifications() -> dict[str, object]:
    return {"driver": "messagingv2", "transport_url": L.notifications_url()}


def _logging(debug: bool = False) -> dict[str, object]:
    # No log_file: each process writes to stdout, which `up` sends to logs/<process>.log.
    return {"debug": debug, "use_stderr": False}


def _copy_from_venv(layout: Layout, rel: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(layout.venv / rel, dest)


def keystone(layout: Layout) -> None:
    data = layout.data / "keystone"
    _write(
        layout.conf("keystone", "keystone.conf"),
        render_ini(
            {
                "DEFAULT": {**_logging(), "max_token_size": 255},
                "database": {"connection": L.db_url("keystone")},
                "token": {"provider": "fernet", "expiration": 86400},
                # bcrypt's cheapest cost: every service logs in with a password, and the
                # default cost makes each login take ~0.3 s of CPU.
                "identity": {"password_hash_rounds": 4},
                "fernet_tokens": {"key_repository": data / "fernet-keys"},
                "fernet_receipts": {"key_repository": data / "fernet-keys"},
                "credential": {"key_repository": data / "credential-keys"},
                "oslo_messaging_notifications": _notifications(),
                "oslo_policy": {"enforce_new_defaults": True},
            }
        ),
    )


def placement(layout: Layout) -> None:
    _write(
        layout.conf("placement", "placement.conf"),
        render_ini(
            {
                "DEFAULT": _logging(),
                "placement_database": {"connection": L.db_url("placement")},
                "api": {"auth_strategy": "keystone"},
                "keystone_authtoken": _authtoken("placement"),
            }
        ),
    )


def _nova_common(layout: Layout, host: str, state_path: Path, heartbeat: str) -> Ini:
    return {
        "DEFAULT": {
            **_logging(),
            "host": host,
            # A compute host's own address (the hypervisor's host_ip); nothing binds it.
            "my_ip": L.HOST_ADDRESSES.get(host, L.HOST),
            "state_path": state_path,
            "transport_url": L.rpc_url("nova"),
            # Written out even at Nova's defaults, so the file says what is in force.
            **L.NOVA_HEARTBEATS[heartbeat],
            # No Neutron agent ever sends network-vif-plugged events.
            "vif_plugging_is_fatal": False,
            "vif_plugging_timeout": 0,
            "instance_name_template": "instance-%08x",
        },
        "api": {"auth_strategy": "keystone"},
        "wsgi": {"api_paste_config": layout.conf("nova", "api-paste.ini")},
        "keystone_authtoken": _authtoken("nova"),
        "placement": _user_auth("nova"),
        "neutron": _user_auth("nova"),
        "cinder": {**_user_auth("nova"), "os_region_name": L.REGION},
        "glance": {"region_name": L.REGION},
        "service_user": {**_user_auth("nova"), "send_service_user_token": True},
        "scheduler": {"discover_hosts_in_cells_interval": 10, "workers": 1},
        "conductor": {"workers": 1},
        "notifications": {
            "notification_format": "versioned",
            "notify_on_state_change": "vm_and_task_state",
        },
        "oslo_messaging_notifications": _notifications(),
        "oslo_concurrency": {"lock_path": state_path / "lock"},
        "vnc": {"enabled": False},
    }


def nova(layout: Layout, heartbeat: str = "tuned") -> None:
    etc = layout.etc / "nova"
    _copy_from_venv(layout, "etc/nova/api-paste.ini", etc / "api-paste.ini")
    control = _nova_common(layout, L.CONTROL_HOST, layout.data / "nova" / "control", heartbeat)
    control["api_database"] = {"connection": L.db_url("nova_api")}
    control["database"] = {"connection": L.db_url("nova_cell1")}
    _write(etc / "nova.conf", render_ini(control))
    for host in L.COMPUTE_HOSTS:
        # A compute gets no database access at all, and its own state path, where the
        # fake driver keeps its node identity (compute_id).
        compute = _nova_common(layout, host, layout.data / "nova" / host, heartbeat)
        compute["DEFAULT"]["compute_driver"] = "fake.FakeDriverWithoutFakeNodes"
        compute["compute"] = {"resource_provider_association_refresh": 60}
        _write(etc / f"nova-{host}.conf", render_ini(compute))


def neutron(layout: Layout) -> None:
    etc = layout.etc / "neutron"
    data = layout.data / "neutron"
    _copy_from_venv(layout, "etc/neutron/api-paste.ini", etc / "api-paste.ini")
    _write(
        etc / "neutron.conf",
        render_ini(
            {
                "DEFAULT": {
                    **_logging(),
                    "host": L.CONTROL_HOST,
                    "core_plugin": "ml2",
                    "service_plugins": "router",
                    "auth_strategy": "keystone",
                    "transport_url": L.rpc_url("neutron"),
                    "api_paste_config": etc / "api-paste.ini",
                    "state_path": data,
                    "allow_overlapping_ips": True,
                    "notify_nova_on_port_status_changes": True,
                    "notify_nova_on_port_data_changes": True,
                    "rpc_workers": 1,
                    "rpc_state_report_workers": 0,
                    "api_workers": 1,
                },
                "database": {"connection": L.db_url("neutron")},
                "keystone_authtoken": _authtoken("neutron"),
                "nova": _user_auth("neutron"),
                "placement": _user_auth("neutron"),
                "oslo_concurrency": {"lock_path": data / "lock"},
                "oslo_messaging_notifications": _notifications(),
                "agent": {"report_interval": 5},
            }
        ),
    )
    _write(
        etc / "ml2_conf.ini",
        render_ini(
            {
                "ml2": {
                    "type_drivers": "flat,vlan,vxlan",
                    "tenant_network_types": "vxlan",
                    # Our own driver (testbed/ml2_bind_all): binds every port, no agent.
                    "mechanism_drivers": "sftb_bind_all",
                    "extension_drivers": "port_security",
                },
                "ml2_type_flat": {"flat_networks": "public"},
                "ml2_type_vlan": {"network_vlan_ranges": "public"},
                "ml2_type_vxlan": {"vni_ranges": "1:10000"},
                "securitygroup": {"enable_security_group": True},
            }
        ),
    )


def glance(layout: Layout) -> None:
    etc = layout.etc / "glance"
    data = layout.data / "glance"
    _copy_from_venv(layout, "etc/glance/glance-api-paste.ini", etc / "glance-api-paste.ini")
    _write(
        etc / "glance-api.conf",
        render_ini(
            {
                "DEFAULT": {
                    **_logging(),
                    "enabled_backends": "fast:file",
                    "show_image_direct_url": False,
                    "workers": 1,
                },
                "database": {"connection": L.db_url("glance")},
                "keystone_authtoken": _authtoken("glance"),
                "paste_deploy": {
                    "flavor": "keystone",
                    "config_file": etc / "glance-api-paste.ini",
                },
                "glance_store": {"default_backend": "fast"},
                "fast": {"filesystem_store_datadir": data / "images"},
                "os_glance_staging_store": {"filesystem_store_datadir": data / "staging"},
                "os_glance_tasks_store": {"filesystem_store_datadir": data / "tasks"},
                "oslo_concurrency": {"lock_path": data / "lock"},
                "oslo_messaging_notifications": _notifications(),
            }
        ),
    )


def cinder(layout: Layout) -> None:
    etc = layout.etc / "cinder"
    data = layout.data / "cinder"
    _copy_from_venv(layout, "etc/cinder/api-paste.ini", etc / "api-paste.ini")
    # Without it the API refuses every list filter ("Invalid filters name are found").
    _copy_from_venv(layout, "etc/cinder/resource_filters.json", etc / "resource_filters.json")
    _write(
        etc / "cinder.conf",
        render_ini(
            {
                "DEFAULT": {
                    **_logging(),
                    "host": L.CONTROL_HOST,
                    "my_ip": L.HOST,
                    "transport_url": L.rpc_url("cinder"),
                    "auth_strategy": "keystone",
                    "api_paste_config": etc / "api-paste.ini",
                    "resource_query_filters_file": etc / "resource_filters.json",
                    "state_path": data,
                    "enabled_backends": "fake",
                    "default_volume_type": "__DEFAULT__",
                    "report_interval": 5,
                    "service_down_time": 20,
                    "osapi_volume_workers": 1,
                },
                "fake": {
                    "volume_driver": "cinder.tests.fake_driver.FakeLoggingVolumeDriver",
                    "volume_backend_name": "fake",
                },
                "database": {"connection": L.db_url("cinder")},
                "keystone_authtoken": _authtoken("cinder"),
                "nova": {**_user_auth("cinder"), "interface": "public"},
                "service_user": {**_user_auth("cinder"), "send_service_user_token": True},
                "oslo_concurrency": {"lock_path": data / "lock"},
                "oslo_messaging_notifications": _notifications(),
                "coordination": {"backend_url": f"file://{data / 'coordination'}"},
            }
        ),
    )


IRONIC_INTERFACES = {
    # Every interface the fake-hardware and redfish hardware types need. No pxe/ipxe:
    # without their HTTP/TFTP roots the conductor refuses to load its drivers.
    "boot": "fake,redfish-virtual-media",
    "deploy": "fake,direct",
    "management": "fake,redfish",
    "power": "fake,redfish",
    "inspect": "fake,no-inspect",
    "console": "fake,no-console",
    "bios": "fake,no-bios",
    "raid": "fake,no-raid",
    "rescue": "fake,no-rescue",
    "vendor": "fake,no-vendor",
    "firmware": "fake,no-firmware",
    "network": "noop",
    "storage": "noop",
}


def ironic(layout: Layout) -> None:
    data = layout.data / "ironic"
    defaults: dict[str, object] = {
        **_logging(),
        "host": L.CONTROL_HOST,
        "my_ip": L.HOST,
        "transport_url": L.rpc_url("ironic"),
        "auth_strategy": "keystone",
        "state_path": data,
        "enabled_hardware_types": "fake-hardware,redfish",
        "notification_level": "info",
        "default_network_interface": "noop",
    }
    for kind, names in IRONIC_INTERFACES.items():
        defaults[f"enabled_{kind}_interfaces"] = names
    _write(
        layout.conf("ironic", "ironic.conf"),
        render_ini(
            {
                "DEFAULT": defaults,
                "api": {"host_ip": L.HOST, "port": L.PORTS["ironic-api"]},
                "database": {"connection": L.db_url("ironic")},
                "keystone_authtoken": _authtoken("ironic"),
                "conductor": {"automated_clean": False, "heartbeat_interval": 5},
                "deploy": {"http_root": data / "httpboot"},
                "dhcp": {"dhcp_provider": "none"},
                "oslo_concurrency": {"lock_path": data / "lock"},
                "oslo_messaging_notifications": _notifications(),
                "service_catalog": _user_auth("ironic"),
            }
        ),
    )


def sushy(layout: Layout) -> None:
    systems = [
        {**s, "power_state": "Off", "external_notifier": False, "nics": []} for s in SUSHY_SYSTEMS
    ]
    # sushy-emulator reads a Python file of upper-case settings.
    text = "\n".join(
        [
            f"SUSHY_EMULATOR_LISTEN_IP = {L.HOST!r}",
            f"SUSHY_EMULATOR_LISTEN_PORT = {L.PORTS['sushy-emulator']}",
            "SUSHY_EMULATOR_FAKE_DRIVER = True",
            f"SUSHY_EMULATOR_STATE_DIR = {str(layout.data / 'sushy')!r}",
            f"SUSHY_EMULATOR_FAKE_SYSTEMS = {systems!r}",
            "",
        ]
    )
    _write(layout.conf("sushy", "sushy-emulator.conf"), text)
    for host in L.COMPUTE_HOSTS:
        _write(layout.conf("sushy", f"bmc-{host}.htpasswd"), L.BMC_HTPASSWD + "\n")
        system = {
            "uuid": L.BMC_SYSTEMS[host],
            "name": f"{host}-bmc",
            "power_state": "On",  # the host runs
            "external_notifier": False,
            "nics": [],
        }
        text = "\n".join(
            [
                f"SUSHY_EMULATOR_LISTEN_IP = {L.BMC_ADDRESSES[host]!r}",
                f"SUSHY_EMULATOR_LISTEN_PORT = {L.BMC_PORT}",
                "SUSHY_EMULATOR_FAKE_DRIVER = True",
                f"SUSHY_EMULATOR_STATE_DIR = {str(bmc_state_dir(layout, host))!r}",
                f"SUSHY_EMULATOR_FAKE_SYSTEMS = {[system]!r}",
                "SUSHY_EMULATOR_AUTH_FILE = "
                + repr(str(layout.conf("sushy", f"bmc-{host}.htpasswd"))),
                "",
            ]
        )
        _write(layout.conf("sushy", f"bmc-{host}.conf"), text)


def bmc_state_dir(layout: Layout, host: str) -> Path:
    """Where the BMC of `host` keeps its system's power state between its restarts."""
    return layout.data / f"bmc-{host}"


def bmc_map(layout: Layout) -> None:
    """The compute hosts' BMCs in StackFleet's BMC map format (docs/hardware.md)."""
    lines = [
        "# Written by testbed/up: the testbed compute hosts' BMCs (sushy-tools, one each).",
        "credentials:",
        "  testbed-bmc:",
        f"    username: {L.BMC_USER}",
        f"    password: {L.BMC_PASSWORD}",
        "defaults:",
        "  credentials: testbed-bmc",
        "  timeout: 5",
        "bmcs:",
    ]
    for host in L.COMPUTE_HOSTS:
        lines.append(
            f"  {host}: {{address: {L.bmc_url(host)}, system_id: {L.bmc_system_path(host)}}}"
        )
    # The Ironic nodes' emulator (sushy-emulator) asks for no credentials; the nodes
    # carry admin/password in their driver_info.
    lines += ["ironic:", "  enabled: true", "  username: admin", "  password: password", ""]
    _write(layout.bmc_map, "\n".join(lines))
    layout.bmc_map.chmod(0o600)


DATA_DIRS = [
    "keystone",
    *(f"nova/{h}/lock" for h in ("control", *L.COMPUTE_HOSTS)),
    "neutron/lock",
    "glance/images",
    "glance/staging",
    "glance/tasks",
    "glance/lock",
    "cinder/lock",
    "cinder/coordination",
    "ironic/lock",
    "ironic/httpboot",
    "sushy",
    *(f"bmc-{h}" for h in L.COMPUTE_HOSTS),
]


def write_all(layout: Layout, heartbeat: str = "tuned") -> None:
    for writer in (keystone, placement, neutron, glance, cinder, ironic, sushy, bmc_map):
        writer(layout)
    nova(layout, heartbeat)


def make_data_dirs(layout: Layout) -> None:
    # Services create few of their directories themselves (nova-compute not even the
    # one its node identity goes to).
    for rel in DATA_DIRS:
        (layout.data / rel).mkdir(parents=True, exist_ok=True)
