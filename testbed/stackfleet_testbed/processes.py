"""The testbed's processes: how each is started, checked, measured and stopped.

Each process is started in a new session, so its PID is also its process group: a uWSGI
master and its workers, or a service and any children it forks, share that group and
are stopped together. A recorded PID is trusted only while its start time (from
/proc/<pid>/stat) still matches what was recorded, so a recycled PID is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import layout as L
from .layout import Layout


@dataclass(frozen=True)
class Process:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    # Started in this wave; every process of a wave must answer before the next starts.
    wave: int = 0
    # Where the port listens, and how to tell it answers: "http" (any answer below 500)
    # or "tcp" (a connection is accepted).
    address: str = L.HOST
    probe: str = "http"
    # The compute host this process belongs to (its BMC, management port, nova-compute).
    host: str | None = None


def _uwsgi(
    layout: Layout,
    name: str,
    module: str,
    *,
    processes: int = 1,
    threads: int = 1,
    pyargv: str | None = None,
    extra: Iterable[str] = (),
) -> list[str]:
    argv = [
        str(layout.bin / "uwsgi"),
        "--master",
        # A uWSGI master reloads on SIGTERM unless told to die.
        "--die-on-term",
        "--need-app",
        "--http-socket",
        f"{L.HOST}:{L.PORTS[name]}",
        # Without it uWSGI closes every connection silently and clients that reuse a
        # connection get "Connection reset by peer" at random.
        "--add-header",
        "Connection: close",
        "--home",
        str(layout.venv),
        "--module",
        module,
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--enable-threads",
        "--lazy-apps",
        "--buffer-size",
        "65535",
        "--worker-reload-mercy",
        "5",
        "--procname-prefix-spaced",
        f"sftb-{name}",
        "--disable-logging",
        "--log-4xx",
        "--log-5xx",
    ]
    if pyargv:
        argv += ["--pyargv", pyargv]
    return argv + list(extra)


def definitions(layout: Layout) -> list[Process]:
    """Every process of the testbed, in start order."""
    b = layout.bin
    etc = layout.etc
    neutron_env = {
        "OS_NEUTRON_CONFIG_DIR": str(etc / "neutron"),
        "OS_NEUTRON_CONFIG_FILES": "neutron.conf;ml2_conf.ini",
        "PYTHONPATH": str(L.ML2_PLUGIN_DIR),
    }
    neutron_args = [
        "--config-file",
        str(etc / "neutron" / "neutron.conf"),
        "--config-file",
        str(etc / "neutron" / "ml2_conf.ini"),
    ]
    nova_conf = ["--config-file", str(etc / "nova" / "nova.conf")]
    cinder_conf = ["--config-file", str(etc / "cinder" / "cinder.conf")]
    ironic_conf = ["--config-file", str(etc / "ironic" / "ironic.conf")]
    procs = [
        Process(
            "sushy-emulator",
            [str(b / "sushy-emulator"), "--config", str(etc / "sushy" / "sushy-emulator.conf")],
            port=L.PORTS["sushy-emulator"],
            wave=0,
        ),
        Process(
            "keystone",
            _uwsgi(layout, "keystone", "keystone.wsgi.api:application", processes=2),
            {"OS_KEYSTONE_CONFIG_DIR": str(etc / "keystone")},
            port=L.PORTS["keystone"],
            wave=0,
        ),
        Process(
            "placement-api",
            _uwsgi(layout, "placement-api", "placement.wsgi.api:application"),
            {"OS_PLACEMENT_CONFIG_DIR": str(etc / "placement")},
            port=L.PORTS["placement-api"],
            wave=1,
        ),
        Process(
            "nova-api",
            _uwsgi(layout, "nova-api", "nova.wsgi.osapi_compute:application", processes=2),
            {"OS_NOVA_CONFIG_DIR": str(etc / "nova")},
            port=L.PORTS["nova-api"],
            wave=1,
        ),
        Process(
            "neutron-api",
            _uwsgi(layout, "neutron-api", "neutron.wsgi.api:application", processes=2),
            neutron_env,
            port=L.PORTS["neutron-api"],
            wave=1,
        ),
        Process(
            "glance-api",
            _uwsgi(
                layout,
                "glance-api",
                "glance.wsgi.api:application",
                threads=2,
                # Image uploads arrive with chunked transfer encoding.
                extra=["--http-chunked-input", "--http-raw-body"],
            ),
            {"OS_GLANCE_CONFIG_DIR": str(etc / "glance")},
            port=L.PORTS["glance-api"],
            wave=1,
        ),
        Process(
            "cinder-api",
            _uwsgi(
                layout,
                "cinder-api",
                "cinder.wsgi.api:application",
                pyargv=" ".join(cinder_conf),
            ),
            port=L.PORTS["cinder-api"],
            wave=1,
        ),
        Process(
            "ironic-api",
            _uwsgi(
                layout, "ironic-api", "ironic.wsgi.api:application", pyargv=" ".join(ironic_conf)
            ),
            port=L.PORTS["ironic-api"],
            wave=1,
        ),
        Process("nova-conductor", [str(b / "nova-conductor"), *nova_conf], wave=2),
        Process("nova-scheduler", [str(b / "nova-scheduler"), *nova_conf], wave=2),
        Process(
            "neutron-rpc-server",
            [str(b / "neutron-rpc-server"), *neutron_args],
            neutron_env,
            wave=2,
        ),
        Process(
            "neutron-periodic-workers",
            [str(b / "neutron-periodic-workers"), *neutron_args],
            neutron_env,
            wave=2,
        ),
        Process("cinder-scheduler", [str(b / "cinder-scheduler"), *cinder_conf], wave=2),
        Process("cinder-volume", [str(b / "cinder-volume"), *cinder_conf], wave=2),
        Process("ironic-conductor", [str(b / "ironic-conductor"), *ironic_conf], wave=2),
    ]
    for host in L.COMPUTE_HOSTS:
        # The host's BMC: its own emulator, so one BMC can fail alone.
        procs.append(
            Process(
                f"bmc-{host}",
                [str(b / "sushy-emulator"), "--config", str(etc / "sushy" / f"bmc-{host}.conf")],
                port=L.BMC_PORT,
                address=L.BMC_ADDRESSES[host],
                wave=0,
                host=host,
            )
        )
    for host in L.COMPUTE_HOSTS:
        procs.append(
            Process(
                f"mgmt-{host}",
                [str(b / "python"), "-m", "stackfleet_testbed.mgmt", "--host", host],
                {"PYTHONPATH": str(L.TESTBED_DIR), "STACKFLEET_TESTBED_HOME": str(layout.home)},
                port=L.MGMT_PORT,
                address=L.HOST_ADDRESSES[host],
                probe="tcp",
                wave=3,
                host=host,
            )
        )
        procs.append(
            Process(
                f"nova-compute-{host}",
                [str(b / "nova-compute"), "--config-file", str(etc / "nova" / f"nova-{host}.conf")],
                wave=3,
                host=host,
            )
        )
    return procs


def host_processes(layout: Layout, host: str) -> list[Process]:
    """What runs on a compute host itself (not its BMC), in start order."""
    return [p for p in definitions(layout) if p.host == host and not p.name.startswith("bmc-")]


# --- /proc helpers -----------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after it.
    tail = raw[raw.rindex(")") + 2 :].split()
    return tail  # tail[0] is field 3 (state)


def start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def is_alive(pid: int, started: int | None = None) -> bool:
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return sorted(members)


def rss_kib(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def pss_kib(pids: Iterable[int]) -> int:
    """Proportional set size: shared pages split between the processes sharing them."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def answers(proc: Process, timeout: float = 3.0) -> bool:
    """True when the process's port answers (HTTP without a server error, or TCP)."""
    if proc.port is None:
        return True
    if proc.probe == "tcp":
        try:
            with socket.create_connection((proc.address, proc.port), timeout=timeout):
                return True
        except OSError:
            return False
    return http_answers(proc.port, timeout, proc.address)


def http_answers(port: int, timeout: float = 3.0, address: str = L.HOST) -> bool:
    """True when something on the port answers HTTP without a server error."""
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/", timeout=timeout) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


# --- state file ----------------------------------------------------------------------


@dataclass
class Running:
    name: str
    pid: int
    started: int
    port: int | None
    log: str

    def alive(self) -> bool:
        return is_alive(self.pid, self.started)

    def members(self) -> list[int]:
        if self.alive():
            return group_members(self.pid) or [self.pid]
        if is_alive(self.pid):
            # The PID now belongs to some other process: nothing here is ours.
            return []
        # The leader is gone; workers it left behind still carry its group id.
        return group_members(self.pid)


def load_state(layout: Layout) -> dict[str, Running]:
    try:
        raw = json.loads(layout.state_file.read_text())
    except (OSError, ValueError):
        return {}
    return {name: Running(name=name, **entry) for name, entry in raw.get("processes", {}).items()}


def save_state(layout: Layout, running: dict[str, Running]) -> None:
    layout.run.mkdir(parents=True, exist_ok=True)
    payload = {
        "home": str(layout.home),
        "processes": {
            r.name: {"pid": r.pid, "started": r.started, "port": r.port, "log": r.log}
            for r in running.values()
        },
    }
    tmp = layout.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(layout.state_file)


# --- start and stop ------------------------------------------------------------------


def start(layout: Layout, proc: Process) -> Running:
    layout.logs.mkdir(parents=True, exist_ok=True)
    log_path = layout.log(proc.name)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    env.update(proc.env)
    env["PATH"] = f"{layout.bin}:{env.get('PATH', '/usr/bin:/bin')}"
    env["VIRTUAL_ENV"] = str(layout.venv)
    env["PYTHONUNBUFFERED"] = "1"
    workdir = layout.data / "cwd"
    workdir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n===== {time.strftime('%F %T')} starting {proc.name}\n".encode())
        log.flush()
        child = subprocess.Popen(
            proc.argv,
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = start_time(child.pid) or 0
    return Running(proc.name, child.pid, started, proc.port, str(log_path))


def stop(running: Iterable[Running], timeout: float = 15.0) -> list[str]:
    """Stops the given processes and their groups; returns what needed SIGKILL."""
    running = list(running)
    for r in running:
        if r.alive():
            # uWSGI masters run with --die-on-term; Python services shut down on it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(r.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    pending = list(running)
    while pending and time.monotonic() < deadline:
        pending = [r for r in pending if r.members()]
        if pending:
            time.sleep(0.3)
    killed = []
    for r in pending:
        members = r.members()
        if members:
            killed.append(f"{r.name} ({', '.join(map(str, members))})")
            for pid in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(r.members() for r in pending) and time.monotonic() < deadline:
        time.sleep(0.2)
    return killed


def tail(path: str | Path, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])
