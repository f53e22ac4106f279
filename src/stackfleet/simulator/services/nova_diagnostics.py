"""Simulated server diagnostics (``GET /servers/{id}/diagnostics``) for the Nova
simulator.

The counters grow with the wall clock at a steady rate per server, so two readings a
few seconds apart give a meaningful rate, as a real libvirt domain's would: idle
servers of the generator's ground truth (``idle_servers``) use about 0.5 % of their
vCPUs and move a few hundred bytes a second; every other running server uses 15-65 %
(fixed per server). Cumulative values start when the server launched
(``OS-SRV-USG:launched_at``), like a domain's counters since it started.

Shapes: from microversion 2.48 the standard body of nova/api/openstack/compute/views/
server_diagnostics.py (``cpu_details[].time`` in ns, ``memory_details`` in MiB, disk and
NIC byte counters, ``uptime``); before that the libvirt driver's own flat dict
(``cpu0_time``, ``memory`` in KiB, ``vda_read``, ``tap<port>_rx`` ...).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]

IDLE_CPU_PERCENT = 0.5
BUSY_CPU_PERCENT = (15.0, 65.0)


def _fraction(server_id: str, salt: str) -> float:
    """A stable number in [0, 1) per server (and purpose)."""
    digest = hashlib.sha256(f"{salt}:{server_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def cpu_percent(server_id: str, idle: bool) -> float:
    """The steady CPU use of a simulated server, percent of its vCPUs."""
    if idle:
        return IDLE_CPU_PERCENT
    low, high = BUSY_CPU_PERCENT
    return low + (high - low) * _fraction(server_id, "cpu")


def _launched(server: Obj, now: float) -> float:
    raw = server.get("OS-SRV-USG:launched_at") or server.get("created")
    if not raw:
        return now
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return now
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return min(now, moment.timestamp())


def _macs(server: Obj) -> list[str]:
    macs = []
    for addresses in (server.get("addresses") or {}).values():
        for address in addresses:
            mac = address.get("OS-EXT-IPS-MAC:mac_addr")
            if mac and mac not in macs:
                macs.append(mac)
    return macs


def diagnostics(server: Obj, idle: bool, now: float, standard: bool) -> Obj:
    """The diagnostics body of a running server at time `now` (epoch seconds):
    the 2.48 standard format when `standard`, else the libvirt driver's flat dict."""
    server_id = str(server["id"])
    flavor = server.get("flavor") or {}
    vcpus = max(1, int(flavor.get("vcpus") or 1))
    ram_mb = int(flavor.get("ram") or 512)
    uptime = max(0.0, now - _launched(server, now))
    cpu_ns = cpu_percent(server_id, idle) / 100.0 * uptime * 1e9  # per vCPU
    scale = 1.0 if idle else 200.0 + 2000.0 * _fraction(server_id, "io")
    read_bytes = int(uptime * 40 * scale)
    write_bytes = int(uptime * 120 * scale)
    rx = int(uptime * 300 * scale)
    tx = int(uptime * 150 * scale)
    macs = _macs(server)
    if standard:
        return {
            "state": "running",
            "driver": "libvirt",
            "hypervisor": "kvm",
            "hypervisor_os": "linux",
            "uptime": int(uptime),
            "config_drive": False,
            "num_cpus": vcpus,
            "num_nics": len(macs),
            "num_disks": 1,
            "cpu_details": [
                {"id": i, "time": int(cpu_ns), "utilisation": None} for i in range(vcpus)
            ],
            "nic_details": [
                {
                    "mac_address": mac,
                    "rx_octets": rx if i == 0 else 0,
                    "rx_errors": 0,
                    "rx_drop": 0,
                    "rx_packets": (rx if i == 0 else 0) // 600,
                    "rx_rate": None,
                    "tx_octets": tx if i == 0 else 0,
                    "tx_errors": 0,
                    "tx_drop": 0,
                    "tx_packets": (tx if i == 0 else 0) // 600,
                    "tx_rate": None,
                }
                for i, mac in enumerate(macs)
            ],
            "disk_details": [
                {
                    "read_bytes": read_bytes,
                    "read_requests": read_bytes // 4096,
                    "write_bytes": write_bytes,
                    "write_requests": write_bytes // 4096,
                    "errors_count": -1,
                }
            ],
            "memory_details": {"maximum": ram_mb, "used": ram_mb},
        }
    body: Obj = {f"cpu{i}_time": int(cpu_ns) for i in range(vcpus)}
    body.update(
        {
            "memory": ram_mb * 1024,
            "memory-actual": ram_mb * 1024,
            "vda_read": read_bytes,
            "vda_read_req": read_bytes // 4096,
            "vda_write": write_bytes,
            "vda_write_req": write_bytes // 4096,
            "vda_errors": -1,
        }
    )
    for i, mac in enumerate(macs):
        dev = f"tap{mac.replace(':', '')[-8:]}"
        body.update(
            {
                f"{dev}_rx": rx if i == 0 else 0,
                f"{dev}_rx_drop": 0,
                f"{dev}_rx_errors": 0,
                f"{dev}_rx_packets": (rx if i == 0 else 0) // 600,
                f"{dev}_tx": tx if i == 0 else 0,
                f"{dev}_tx_drop": 0,
                f"{dev}_tx_errors": 0,
                f"{dev}_tx_packets": (tx if i == 0 else 0) // 600,
            }
        )
    return body
