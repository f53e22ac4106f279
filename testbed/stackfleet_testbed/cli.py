"""``testbed/up``, ``testbed/down`` and ``testbed/status``.

Runs with any Python 3.10+ and the standard library only: the services' own Python
lives in the venv this module builds.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager

from . import bmc, bootstrap, configs, infra, install
from . import layout as L
from . import processes as P
from .layout import Layout


class TestbedError(RuntimeError):
    pass


_T0 = time.monotonic()


def say(message: str) -> None:
    print(f"[testbed {time.monotonic() - _T0:5.1f}s] {message}", flush=True)


@contextmanager
def locked(layout: Layout, wait: float = 0.0):
    """Holds the testbed's lock; waits up to `wait` seconds for another holder."""
    layout.run.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    with open(layout.lock_file, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TestbedError(
                        f"another testbed/up, down or ctl holds {layout.lock_file}; wait for it"
                    ) from None
                time.sleep(0.2)
        yield


# --- reporting -------------------------------------------------------------------------


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f}"


def table(layout: Layout, state: dict[str, P.Running]) -> tuple[str, bool]:
    """The status table, and whether every process is up."""
    rows = [("SERVICE", "PID", "PORT", "PROCS", "RSS MiB", "PSS MiB", "STATE")]
    all_up = True
    total_rss = total_pss = 0
    for proc in P.definitions(layout):
        running = state.get(proc.name)
        if running is None:
            rows.append((proc.name, "-", str(proc.port or "-"), "-", "-", "-", "down"))
            all_up = False
            continue
        alive = running.alive()
        members = running.members() if alive else []
        rss, pss = P.rss_kib(members), P.pss_kib(members)
        total_rss += rss
        total_pss += pss
        if not alive:
            state_word = "down"
        elif not P.answers(proc):
            state_word = "not answering"
        else:
            state_word = "up"
        all_up = all_up and state_word == "up"
        rows.append(
            (
                proc.name,
                str(running.pid),
                str(proc.port or "-"),
                str(len(members)) if alive else "-",
                _mib(rss) if alive else "-",
                _mib(pss) if alive else "-",
                state_word,
            )
        )
    rows.append(("total", "", "", "", _mib(total_rss), _mib(total_pss), ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines), all_up


# --- clouds.yaml and testbed.json -----------------------------------------------------


def _cloud(auth: dict[str, str]) -> list[str]:
    lines = ["    auth:"]
    lines += [f"      {k}: {v}" for k, v in auth.items()]
    lines += [
        f"    region_name: {L.REGION}",
        "    interface: public",
        "    identity_api_version: 3",
    ]
    return lines


def write_clouds_yaml(layout: Layout, heartbeat: str) -> None:
    base = {
        "auth_url": L.endpoint("keystone") + "/v3",
        "user_domain_name": "Default",
    }
    clouds = {
        "testbed-admin": {
            **base,
            "username": L.ADMIN_USER,
            "password": L.ADMIN_PASSWORD,
            "project_name": "admin",
            "project_domain_name": "Default",
        },
        # Ironic (and other fleet-wide calls) refuse project-scoped tokens.
        "testbed-system": {
            **base,
            "username": L.ADMIN_USER,
            "password": L.ADMIN_PASSWORD,
            "system_scope": "all",
        },
        "testbed-member": {
            **base,
            "username": "demo",
            "password": L.MEMBER_PASSWORD,
            "project_name": "demo",
            "project_domain_name": "Default",
        },
        "testbed-alt-member": {
            **base,
            "username": "alt_demo",
            "password": L.MEMBER_PASSWORD,
            "project_name": "alt-demo",
            "project_domain_name": "Default",
        },
    }
    lines = [
        "# Written by testbed/up: the StackFleet testbed on loopback.",
        f"# export OS_CLIENT_CONFIG_FILE={layout.clouds_yaml}",
        "clouds:",
    ]
    for name, auth in clouds.items():
        lines.append(f"  {name}:")
        lines += _cloud(auth)
    layout.clouds_yaml.write_text("\n".join(lines) + "\n")

    info = {
        "clouds_yaml": str(layout.clouds_yaml),
        "clouds": {
            "admin": "testbed-admin",
            "system": "testbed-system",
            "member": "testbed-member",
            "alt_member": "testbed-alt-member",
        },
        "region": L.REGION,
        "endpoints": {name: L.endpoint(name) for name in L.PORTS},
        "compute_hosts": list(L.COMPUTE_HOSTS),
        "control_host": L.CONTROL_HOST,
        # What each compute host has besides its nova-compute (see testbed/README.md).
        "hosts": {
            host: {
                "address": L.HOST_ADDRESSES[host],
                "management_port": L.MGMT_PORT,
                "processes": [p.name for p in P.host_processes(layout, host)],
                "bmc": {
                    "process": f"bmc-{host}",
                    "address": L.bmc_url(host),
                    "system_id": L.bmc_system_path(host),
                    "username": L.BMC_USER,
                    "password": L.BMC_PASSWORD,
                },
            }
            for host in L.COMPUTE_HOSTS
        },
        "bmc_map": str(layout.bmc_map),
        # `ctl start|stop|kill|status NAME`: one process (or host-<name>), like a unit
        "ctl": str(L.TESTBED_DIR / "ctl"),
        "nova_heartbeat": {"mode": heartbeat, **L.NOVA_HEARTBEATS[heartbeat]},
        "rabbitmq_management": {
            "url": L.MQ_MANAGEMENT_URL,
            "username": L.MQ_MANAGEMENT_USER[0],
            "password": L.MQ_MANAGEMENT_USER[1],
            "rpc_vhost": L.RPC_VHOSTS["nova"],
        },
        "image": "cirros-fake",
        "notifications_transport_url": L.notifications_url(),
        "rpc_transport_urls": {svc: L.rpc_url(svc) for svc in L.RPC_VHOSTS},
        "database": {
            "host": L.HOST,
            "port": 3306,
            "user": L.DB_USER,
            "password": L.DB_PASSWORD,
            "names": infra.all_db_names(),
        },
        "redfish": {
            "address": L.endpoint("sushy-emulator"),
            "systems": configs.SUSHY_SYSTEMS,
        },
    }
    layout.testbed_json.write_text(json.dumps(info, indent=2) + "\n")


# --- up ------------------------------------------------------------------------------


def _run_provision(layout: Layout, state: dict[str, P.Running], *steps: str) -> None:
    """Runs provision steps in the venv, failing at once if a service process dies."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(L.TESTBED_DIR)
    env["STACKFLEET_TESTBED_HOME"] = str(layout.home)
    env.pop("OS_CLOUD", None)
    child = subprocess.Popen(
        [str(install.venv_python(layout)), "-m", "stackfleet_testbed.provision", *steps], env=env
    )
    try:
        while child.poll() is None:
            dead = [r for r in state.values() if not r.alive()]
            if dead:
                raise TestbedError(
                    f"{dead[0].name} exited; last lines of {dead[0].log}:\n" + P.tail(dead[0].log)
                )
            time.sleep(0.5)
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait()
    if child.returncode != 0:
        raise TestbedError(f"provisioning step {' '.join(steps)} failed")


def _discover_hosts(layout: Layout) -> None:
    argv = [
        str(layout.bin / "nova-manage"),
        "--config-file",
        str(layout.conf("nova", "nova.conf")),
        "cell_v2",
        "discover_hosts",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TestbedError(f"nova-manage cell_v2 discover_hosts failed: {proc.stderr[-500:]}")


def _wait_wave(
    layout: Layout, wave: list[P.Process], state: dict[str, P.Running], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    settle = time.monotonic() + 3  # a process without a port must survive its start
    pending = {p.name for p in wave}
    while True:
        for proc in wave:
            running = state[proc.name]
            if not running.alive():
                raise TestbedError(
                    f"{proc.name} exited during start-up; last lines of {running.log}:\n"
                    + P.tail(running.log)
                )
            if proc.name in pending:
                if proc.port is None:
                    ready = time.monotonic() >= settle
                else:
                    ready = P.answers(proc, timeout=2)
                if ready:
                    pending.discard(proc.name)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TestbedError(f"not answering after {timeout:.0f} s: {', '.join(sorted(pending))}")
        time.sleep(0.5)


def _check_ports_free(defs: list[P.Process]) -> None:
    busy = [
        f"{p.name} ({p.address}:{p.port})"
        for p in defs
        if p.port and infra._port_open(p.port, p.address)
    ]
    if busy:
        raise TestbedError(
            "ports already in use by processes the testbed did not start: " + ", ".join(busy)
        )


def _existing(
    layout: Layout, defs: list[P.Process], repair: bool
) -> tuple[int | None, dict[str, P.Running]]:
    """Looks at what an earlier ``up`` started.

    Returns an exit code to stop with (already up, or only partly up), or None and the
    processes to keep: none for a fresh start, the live ones when repairing."""
    state = P.load_state(layout)
    if not state:
        return None, {}
    alive = {name: r for name, r in state.items() if r.alive()}
    if not alive:
        # Everything recorded has exited: clear leftovers (orphaned workers) and restart.
        P.stop(state.values(), timeout=5)
        layout.state_file.unlink(missing_ok=True)
        say("the recorded testbed processes had all exited; starting again")
        return None, {}
    text, all_up = table(layout, state)
    print(text)
    if all_up and set(alive) == {p.name for p in defs}:
        say("the testbed is already up")
        say(f"clouds.yaml: {layout.clouds_yaml}")
        return 0, alive
    missing = [p.name for p in defs if p.name not in alive]
    silent = [p.name for p in defs if p.name in alive and not P.answers(p)]
    problems = []
    if missing:
        problems.append("not running: " + ", ".join(missing))
    if silent:
        problems.append("not answering: " + ", ".join(silent))
    say("the testbed is only partly up (" + "; ".join(problems) + ")")
    if repair and not silent:
        dead = [r for name, r in state.items() if name not in alive]
        P.stop(dead, timeout=5)  # workers a dead uWSGI master may have left behind
        say("repairing: starting " + ", ".join(missing))
        return None, alive
    say(
        "it is not used as it is: run testbed/down (or testbed/down --wipe), then testbed/up"
        + ("" if silent else "; or testbed/up --repair to start only what is missing")
    )
    return 1, alive


def _requested_heartbeat(args: argparse.Namespace) -> str | None:
    """ "defaults" when asked for Nova's own heartbeat settings, else None (unspecified)."""
    env = os.environ.get(L.NOVA_DEFAULTS_ENV, "").strip().lower()
    if args.nova_defaults or env not in ("", "0", "false", "no"):
        return "defaults"
    return None


def _recorded_heartbeat(layout: Layout) -> str | None:
    try:
        return str(json.loads(layout.options_file.read_text())["nova_heartbeat"])
    except (OSError, ValueError, KeyError):
        return None


def _heartbeat_for(layout: Layout, args: argparse.Namespace) -> str:
    """The Nova heartbeat mode to run with: a running testbed keeps its own, and asking
    for another one is an error (its configuration would not match what runs)."""
    requested = _requested_heartbeat(args)
    running = any(r.alive() for r in P.load_state(layout).values())
    recorded = _recorded_heartbeat(layout) if running else None
    if recorded is None:
        return requested or "tuned"
    if requested is not None and requested != recorded:
        raise TestbedError(
            f"the running testbed uses Nova's {recorded} heartbeat settings "
            f"({L.NOVA_HEARTBEATS[recorded]}), not {requested}: run testbed/down first"
        )
    return recorded


def _power_on(host: str) -> None:
    """A host's processes run only while its BMC says On (mgmt-<host> kills them when it
    turns Off): power it on first, as a real host is booted before its services start."""
    try:
        if bmc.power_state(host) == "Off":
            say(f"powering {host} on through its BMC ({L.bmc_url(host)})")
        bmc.power_on(host)
    except bmc.BmcError as exc:
        raise TestbedError(str(exc)) from None


def up(args: argparse.Namespace) -> int:
    layout = Layout.from_env()
    t_start = time.monotonic()
    with locked(layout):
        defs = P.definitions(layout)
        heartbeat = _heartbeat_for(layout, args)
        code, state = _existing(layout, defs, args.repair)
        if code is not None:
            if code == 0:
                say(f"Nova heartbeat: {heartbeat} {L.NOVA_HEARTBEATS[heartbeat]}")
            return code
        repairing = bool(state)
        t_install = t_bootstrap = None
        if not repairing:
            _check_ports_free(defs)
        infra.ensure_mariadb(say)
        infra.ensure_rabbitmq(say)
        infra.ensure_rabbitmq_management(say)
        if not repairing:
            t_install = install.ensure_venv(layout, say)
            if t_install is None:
                say(f"virtualenv {layout.venv} is current: nothing to install")
            else:
                say(f"installed in {t_install:.0f} s")
            configs.write_all(layout, heartbeat)
            say(f"Nova heartbeat: {heartbeat} {L.NOVA_HEARTBEATS[heartbeat]}")
            layout.run.mkdir(parents=True, exist_ok=True)
            layout.options_file.write_text(json.dumps({"nova_heartbeat": heartbeat}) + "\n")
            if bootstrap.needed(layout):
                t_bootstrap = bootstrap.fresh(layout, say)
                say(f"databases ready in {t_bootstrap:.0f} s")
            for host in L.COMPUTE_HOSTS:  # every host boots powered on
                shutil.rmtree(configs.bmc_state_dir(layout, host), ignore_errors=True)
            configs.make_data_dirs(layout)
            for proc in defs:  # keep the previous run's log as <process>.log.1
                log = layout.log(proc.name)
                if log.exists():
                    log.replace(log.with_suffix(".log.1"))
        t_services = time.monotonic()
        started: list[P.Running] = []
        try:
            for wave_no in sorted({p.wave for p in defs}):
                wave = [p for p in defs if p.wave == wave_no and p.name not in state]
                if not wave:
                    continue
                say("starting " + ", ".join(p.name for p in wave))
                for host in sorted({p.host for p in wave if p.host and p.name != f"bmc-{p.host}"}):
                    _power_on(host)
                for proc in wave:
                    state[proc.name] = P.start(layout, proc)
                    started.append(state[proc.name])
                    P.save_state(layout, state)
                _wait_wave(layout, wave, state, timeout=180)
                if any(p.name == "keystone" for p in wave):
                    say("keystone answers: creating projects, users, roles and the catalog")
                    _run_provision(layout, state, "identity")
            say("waiting for every service to report (compute, block storage, bare metal)")
            _run_provision(layout, state, "ready")
            _discover_hosts(layout)
            _run_provision(layout, state, "image")
            write_clouds_yaml(layout, heartbeat)
        except BaseException:
            if args.keep_on_failure:
                say("start-up failed; processes left running for inspection")
            else:
                say("start-up failed; stopping what it started (--keep-on-failure keeps them)")
                P.stop(started)
                for r in started:
                    state.pop(r.name, None)
                if state:
                    P.save_state(layout, state)
                else:
                    layout.state_file.unlink(missing_ok=True)
            raise
        t_done = time.monotonic()
        text, _ = table(layout, state)
        print(text)
        say(f"logs: {layout.logs}")
        say(
            f"clouds.yaml: {layout.clouds_yaml} (clouds testbed-admin, testbed-system, "
            "testbed-member, testbed-alt-member)"
        )
        say(f"testbed.json: {layout.testbed_json}")
        parts = []
        if t_install is not None:
            parts.append(f"install {t_install:.0f} s")
        if t_bootstrap is not None:
            parts.append(f"databases {t_bootstrap:.0f} s")
        parts.append(f"services {t_done - t_services:.0f} s")
        say(f"up in {t_done - t_start:.0f} s ({', '.join(parts)})")
    return 0


# --- down and status -----------------------------------------------------------------


def down(args: argparse.Namespace) -> int:
    layout = Layout.from_env()
    with locked(layout):
        state = P.load_state(layout)
        if state:
            order = [p.name for p in reversed(P.definitions(layout))]
            ranked = sorted(
                state.values(), key=lambda r: order.index(r.name) if r.name in order else -1
            )
            alive = [r.name for r in ranked if r.members()]
            say(f"stopping {len(alive)} processes" if alive else "no recorded process is running")
            killed = P.stop(ranked, timeout=args.timeout)
            for item in killed:
                say(f"had to SIGKILL {item}")
            layout.state_file.unlink(missing_ok=True)
        else:
            say("nothing recorded as running")
        layout.options_file.unlink(missing_ok=True)
        if args.wipe:
            infra.ensure_mariadb(say)
            infra.ensure_rabbitmq(say)
            say("dropping the testbed's databases, RabbitMQ vhosts and state")
            infra.drop_databases()
            infra.drop_vhosts()
            for path in (layout.data, layout.etc):
                shutil.rmtree(path, ignore_errors=True)
            for path in (layout.clouds_yaml, layout.testbed_json, layout.bmc_map):
                path.unlink(missing_ok=True)
            for log in [*layout.logs.glob("*.log"), *layout.logs.glob("*.log.1")]:
                if log.name != "install.log":
                    log.unlink()
            if args.venv:
                shutil.rmtree(layout.venv, ignore_errors=True)
                say(f"removed {layout.venv}")
    say("down")
    return 0


def status(args: argparse.Namespace) -> int:
    layout = Layout.from_env()
    state = P.load_state(layout)
    text, all_up = table(layout, state)
    print(text)
    if not state:
        say("the testbed is down (nothing recorded)")
        return 3
    if all_up:
        say(f"up; clouds.yaml: {layout.clouds_yaml}")
        return 0
    say("partly up")
    return 1


# --- ctl: one process, as a service manager would -------------------------------------


def _ctl_targets(layout: Layout, names: list[str]) -> list[P.Process]:
    """The processes `names` mean, in start order: process names, or `host-<host>` for
    what runs on a compute host (its management port and its nova-compute)."""
    defs = P.definitions(layout)
    by_name = {p.name: p for p in defs}
    wanted: list[str] = []
    for name in names:
        if name.startswith("host-") and name[5:] in L.COMPUTE_HOSTS:
            wanted += [p.name for p in P.host_processes(layout, name[5:])]
        elif name in by_name:
            wanted.append(name)
        else:
            known = ", ".join([*by_name, *(f"host-{h}" for h in L.COMPUTE_HOSTS)])
            raise TestbedError(f"no testbed process named {name!r}; known: {known}")
    return [p for p in defs if p.name in wanted]


def _ctl_start(layout: Layout, targets: list[P.Process], names: list[str]) -> int:
    state = P.load_state(layout)
    if not state:
        raise TestbedError("the testbed is not up (nothing recorded): run testbed/up")
    # `host-<h>` boots the host: power on through its BMC. A single process of a host
    # that is powered off cannot start, as on a real host.
    booting = {n[5:] for n in names if n.startswith("host-")}
    for host in sorted(booting):
        _power_on(host)
    for proc in targets:
        on_host = proc.host and proc.name != f"bmc-{proc.host}" and proc.host not in booting
        if on_host and bmc.power_state(str(proc.host)) == "Off":
            raise TestbedError(
                f"{proc.host} is powered off (its BMC says Off): {proc.name} cannot start; "
                f"testbed/ctl start host-{proc.host} powers the host on and starts it"
            )
    started = []
    for proc in targets:
        running = state.get(proc.name)
        if running is not None and running.alive():
            say(f"{proc.name} is already running (PID {running.pid})")
            continue
        if running is not None:
            P.stop([running], timeout=5)  # workers a dead uWSGI master may have left
        state[proc.name] = P.start(layout, proc)
        started.append(proc)
        P.save_state(layout, state)
        say(f"started {proc.name} (PID {state[proc.name].pid})")
    if started:
        _wait_wave(layout, started, state, timeout=120)
    return 0


def ctl(args: argparse.Namespace) -> int:
    layout = Layout.from_env()
    if args.action == "status":
        state = P.load_state(layout)
        targets = _ctl_targets(layout, args.names) if args.names else P.definitions(layout)
        all_up = True
        for proc in targets:
            running = state.get(proc.name)
            up_now = running is not None and running.alive() and P.answers(proc)
            all_up = all_up and up_now
            pid = running.pid if running is not None and running.alive() else "-"
            print(f"{proc.name}  {pid}  {'up' if up_now else 'down'}")
        return 0 if all_up else 3
    if not args.names:
        raise TestbedError(f"ctl {args.action}: name at least one process (or host-<host>)")
    targets = _ctl_targets(layout, args.names)
    with locked(layout, wait=60):
        if args.action == "start":
            return _ctl_start(layout, targets, args.names)
        state = P.load_state(layout)
        chosen = [state[p.name] for p in reversed(targets) if p.name in state]
        if args.action == "kill":
            # A crash: SIGKILL to the whole group at once, no shutdown.
            for running in chosen:
                killed_at = time.time()
                for pid in running.members():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                # the wall-clock time of the kill, for drills that time what follows it
                say(f"killed {running.name} (PID {running.pid}) at {killed_at:.3f}")
            P.stop(chosen, timeout=5)  # reaps nothing; waits until the groups are gone
        else:
            for item in P.stop(chosen, timeout=args.timeout):
                say(f"had to SIGKILL {item}")
            for running in chosen:
                say(f"stopped {running.name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="testbed", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="install (once) and start the testbed")
    p_up.add_argument(
        "--keep-on-failure", action="store_true", help="leave processes running if start-up fails"
    )
    p_up.add_argument(
        "--nova-defaults",
        action="store_true",
        help="run Nova at its default heartbeat (report_interval 10 s, service_down_time 60 s) "
        f"instead of 5 s / 20 s; also {L.NOVA_DEFAULTS_ENV}=1",
    )
    p_up.add_argument(
        "--repair",
        action="store_true",
        help="if the testbed is partly up, start only the processes that are not running",
    )
    p_down = sub.add_parser("down", help="stop what up started")
    p_down.add_argument("--wipe", action="store_true", help="also drop databases, vhosts and state")
    p_down.add_argument(
        "--venv", action="store_true", help="with --wipe: remove the virtualenv too"
    )
    p_down.add_argument("--timeout", type=float, default=15.0, help="seconds before SIGKILL")
    sub.add_parser("status", help="show each process, PID, port, memory and state")
    p_ctl = sub.add_parser(
        "ctl",
        help="start, stop, kill or check single testbed processes (a restart hook's commands)",
    )
    p_ctl.add_argument("action", choices=["start", "stop", "kill", "status"])
    p_ctl.add_argument(
        "names", nargs="*", help="process names (testbed/status lists them) or host-<host>"
    )
    p_ctl.add_argument("--timeout", type=float, default=15.0, help="stop: seconds before SIGKILL")
    args = parser.parse_args(argv)
    handlers = {"up": up, "down": down, "status": status, "ctl": ctl}
    try:
        return handlers[args.command](args)
    except (
        TestbedError,
        infra.InfraError,
        install.InstallError,
        bootstrap.BootstrapError,
        bmc.BmcError,
    ) as exc:
        say(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130
