"""`stackfleet simulator serve` and `stackfleet demo`: the embedded simulated cloud."""

from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from stackfleet.cli.context import state
from stackfleet.cli.demo_story import DEMO_PACKS, demo_policies, gather, print_story, run_demo_packs
from stackfleet.cli.hardware import quiet_sushy
from stackfleet.cli.inventory import print_summary, run_collection
from stackfleet.cli.options import SIMULATOR_PRESETS
from stackfleet.cli.serve import forget_local_token, local_auth
from stackfleet.core.errors import ConfigError

# The simulator (and the API the demo serves) are imported by the commands that run
# them: the product's other commands do not load the simulator to start.
if TYPE_CHECKING:
    from stackfleet.engine.settings import Settings
    from stackfleet.simulator.faults import FaultRule
    from stackfleet.simulator.generator import FleetConfig
    from stackfleet.simulator.hosts import ManagementListeners
    from stackfleet.simulator.server import SimulatorServer
    from stackfleet.simulator.state import CloudState
    from stackfleet.store import Store

log = logging.getLogger(__name__)

err = Console(stderr=True)
out = Console()

DEMO_CLOUD = "stackfleet-demo"

app = typer.Typer(help="The embedded simulated cloud (OpenStack APIs on loopback).")

PresetOption = Annotated[
    str, typer.Option("--preset", help=f"Fleet size: {', '.join(SIMULATOR_PRESETS)}.")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of the fleet generator.")]


def register(root: typer.Typer) -> None:
    """Add `simulator` and `demo` to the root app."""
    root.add_typer(app, name="simulator")
    root.command("demo")(demo_command)


def fleet_config(preset_name: str, seed: int, now: datetime | None = None) -> FleetConfig:
    """The generator settings for a preset, or a ConfigError naming the known ones."""
    from stackfleet.simulator.generator import preset

    try:
        overrides = {"seed": seed}
        if now is not None:
            overrides["now"] = now  # type: ignore[assignment]
        return preset(preset_name, **overrides)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def fault_rules(specs: list[str] | None) -> list[FaultRule]:
    from stackfleet.simulator.faults import parse_fault_spec

    rules = []
    for spec in specs or []:
        try:
            rules.append(parse_fault_spec(spec))
        except ValueError as exc:
            raise ConfigError(f"--fault: {exc}") from exc
    return rules


@app.command("serve")
def serve_command(
    preset_name: PresetOption = "small",
    seed: SeedOption = 42,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="0 = any free port.")
    ] = 8700,
    clouds_yaml: Annotated[
        Path | None, typer.Option("--clouds-yaml", help="clouds.yaml to write the entry into.")
    ] = None,
    cloud_name: Annotated[str, typer.Option("--cloud-name")] = "stackfleet-sim",
    fault: Annotated[
        list[str] | None,
        typer.Option("--fault", help="Fault rule '[METHOD ]PATH_REGEX;key=value' (repeatable)."),
    ] = None,
    now: Annotated[
        bool, typer.Option("--now/--fixed-time", help="Anchor ages at the current time.")
    ] = True,
    notify_url: Annotated[
        str | None,
        typer.Option(
            "--notify-url",
            help="Publish notifications of API changes on this oslo.messaging transport "
            "URL (rabbit://user:password@host:5672/vhost), as the real services do.",
        ),
    ] = None,
    zun: Annotated[
        bool,
        typer.Option(
            "--zun", help="Also serve a Container service (Zun), catalog type 'container'."
        ),
    ] = False,
) -> None:
    """Serve a seeded simulated cloud until Ctrl-C, and write its clouds.yaml entry."""
    from stackfleet.simulator.server import CloudEntry, SimulatorError, serve

    config = fleet_config(preset_name, seed, datetime.now(UTC) if now else None)

    def ready(entry: CloudEntry, path: Path | None) -> None:
        err.print(
            f"simulated cloud on {entry.auth_url.rsplit('/identity', 1)[0]} "
            f"(regions {', '.join(entry.regions)}); clouds.yaml: {path} cloud {cloud_name!r}",
            highlight=False,
        )

    try:
        serve(
            config,
            host,
            port,
            clouds_yaml,
            cloud_name,
            faults=fault_rules(fault),
            on_ready=ready,
            notify_url=notify_url,
            zun=zun,
        )
    except (SimulatorError, OSError) as exc:
        raise ConfigError(f"cannot serve the simulator: {exc}") from exc


def demo_command(
    ctx: typer.Context,
    preset_name: PresetOption = "small",
    seed: SeedOption = 42,
    api_port: Annotated[int, typer.Option("--api-port", min=0, max=65535)] = 8780,
    interval: Annotated[
        float, typer.Option("--interval", min=5, help="Seconds between passes.")
    ] = 60.0,
    once: Annotated[
        bool, typer.Option("--once", help="One pass, print the summary, and stop.")
    ] = False,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="No API token at all (development and tests only): anyone reaching the "
            "port may write. Default: writes need the local operator token the demo "
            "writes to demo-api-token in the data directory.",
        ),
    ] = False,
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            help="none, or host-failure: health and automatic recovery on; after the "
            "first health pass a compute host fails (kernel panic) and the demo prints "
            "its detection, fence, evacuations and servers ACTIVE again as they happen.",
        ),
    ] = "none",
    metrics_public: Annotated[
        bool,
        typer.Option(
            "--metrics-public",
            help="Let anyone read /metrics without a token (default: the demo's token).",
        ),
    ] = False,
) -> None:
    """Start the simulated cloud, collect it, serve the API, print the fleet summary.

    Keeps collecting every --interval seconds until Ctrl-C stops everything."""
    if scenario not in SCENARIOS:
        raise ConfigError(f"--scenario must be one of {', '.join(SCENARIOS)}, not {scenario!r}")
    if scenario != "none" and once:
        raise ConfigError(f"--scenario {scenario} runs in the daemon: drop --once")
    from stackfleet.api.server import ApiServer
    from stackfleet.core.config import data_dir
    from stackfleet.engine.daemon import Daemon
    from stackfleet.engine.daemon_config import DaemonConfig
    from stackfleet.engine.settings import Settings
    from stackfleet.simulator.server import SimulatorServer
    from stackfleet.sources.infra_config import InfraConfig

    root = state(ctx)
    if root.db_url is None:
        # the demo keeps its own store, never the one of a real cloud
        demo_db = data_dir() / "demo.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{demo_db}{suffix}").unlink(missing_ok=True)
        root.db_url = f"sqlite:///{demo_db}"
    store = root.store()
    config = fleet_config(preset_name, seed, datetime.now(UTC))
    clouds_yaml = data_dir() / "demo-clouds.yaml"
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C stops the demo even when this process started with SIGINT ignored (a
    # parent that ignores it passes that on, and Python then raises no
    # KeyboardInterrupt): handle it explicitly, as SIGTERM
    previous_int = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        with SimulatorServer(config) as sim, ExitStack() as stack:
            sim.write_clouds_yaml(clouds_yaml, DEMO_CLOUD)
            failure = prepare_host_failure(sim, stack) if scenario == "host-failure" else None
            err.print(
                f"simulated cloud: {sim.base_url} (clouds.yaml {clouds_yaml})", highlight=False
            )
            results = run_collection(store, DEMO_CLOUD, config_files=[str(clouds_yaml)])
            for r in results:
                err.print(
                    f"pass {r.pass_id} {r.cloud}/{r.region}: {r.status} in "
                    f"{r.seconds:.1f} s, {sum(r.requests.values())} requests",
                    highlight=False,
                )
            bmc_map = start_demo_hardware(store, sim.state, data_dir() / "demo-bmc-map.yaml")
            # the packs once as a dry-run: findings, alerts and plans for the story and
            # the dashboard (nothing changes in the cloud)
            story = gather(store, *run_demo_packs(store))
            if once:
                print_story(out, story, None)
                print_summary(store.summary())
                return
            # the periodic work is the daemon's, as in `stackfleet serve`: passes every
            # --interval (the first one is done), the packs as a dry-run after each
            # pass, BMC sweeps, quotas, events
            daemon = Daemon(
                store,
                DaemonConfig(
                    clouds=[DEMO_CLOUD],
                    config_files=[str(clouds_yaml)],
                    interval=interval,
                    first_pass_delay=interval,
                    bmc_map=str(bmc_map),
                    include_ironic=False,
                    notifications=False,
                    policy_files=[f"pack:{name}" for name in DEMO_PACKS],
                ),
                settings=failure.settings() if failure else Settings(),
                infra=InfraConfig(),
            )
            daemon.start()
            # Ctrl-C should end the demo within seconds: a job in the middle of a run
            # gets 10 s, then the process ends without it (its threads are daemons)
            stack.callback(daemon.stop, 10.0)
            keystone, token_path = None, ""
            token_line = "Token      none (--no-auth: anyone may write)"
            if no_auth:
                log.warning("the demo API has no authentication (--no-auth): dev and tests only")
            else:
                keystone, token_path = local_auth(None, api_port, "open", "demo-api-token")
                token_line = (
                    f"Token      {token_path} (paste it when the dashboard asks to sign in; "
                    "X-Auth-Token for the API)"
                )
            from stackfleet.api.auth import MetricsAccess
            from stackfleet.engine.approved_now import CarryOutApproved

            with ApiServer(
                store,
                port=api_port,
                events=daemon.events,
                jobs=daemon.jobs,
                keystone=keystone,
                metrics=MetricsAccess(public=metrics_public),
                # the daemon only dry-runs the packs: an approval acts at once instead
                # (on the simulated cloud), as docs/dashboard.md says
                carry_out_approved=CarryOutApproved(demo_policies(), [str(clouds_yaml)]),
            ) as url:
                print_story(out, story, f"{url}/ui/")
                print_summary(store.summary())
                scrape = (
                    "open (--metrics-public)"
                    if metrics_public or no_auth
                    else "send the token (Prometheus: authorization.credentials_file)"
                )
                out.print(
                    f"\nDashboard  {url}/ui/\n"
                    f"API        {url}/v1/summary\nOpenAPI    {url}/docs  ({url}/redoc)\n"
                    f"Prometheus {url}/metrics  ({scrape})\n"
                    f"Jobs       {url}/v1/jobs\n"
                    f"Hardware   {url}/v1/hardware  (BMC map {bmc_map})\n"
                    f"{token_line}\n"
                    f"CLI        OS_CLIENT_CONFIG_FILE={clouds_yaml} "
                    "openstack --os-cloud stackfleet-demo server list --all-projects\n"
                    f"           stackfleet --db-url {root.db_url} servers list\n"
                    "Ctrl-C stops everything.",
                    highlight=False,
                )
                if failure is not None:
                    threading.Thread(
                        target=failure.run, args=(store, stop), daemon=True, name="scenario"
                    ).start()
                try:
                    while not stop.wait(1.0):
                        pass
                    _end_if_stuck(SHUTDOWN_LIMIT)
                except KeyboardInterrupt:
                    _end_if_stuck(SHUTDOWN_LIMIT)
                    raise
                finally:
                    if keystone is not None:
                        forget_local_token(token_path, keystone)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        err.print("stopped")


SCENARIOS = ("none", "host-failure")


class HostFailureScenario:
    """The demo's host failure: a busy compute host, two of its servers opted in to
    recovery (tag `ha`), a management listener per compute host for the health probe;
    `run` fails the host after the first health pass and prints what follows."""

    def __init__(self, sim: SimulatorServer, listeners: ManagementListeners) -> None:
        self.sim = sim
        self.listeners = listeners
        self.region, self.victim, self.chosen = _pick_victim(sim)

    def settings(self) -> Settings:
        from stackfleet.engine.settings import Settings

        return Settings.model_validate(
            {
                "health": {
                    "enabled": True,
                    "interval": "2s",
                    "probe": {"addresses": self.listeners.addresses()},
                    "recovery": True,
                    "execute": True,
                    "opt_in": {"tags": ["ha"]},
                }
            }
        )

    def run(self, store: Store, stop: threading.Event) -> None:
        import time

        from stackfleet.cli.recovery_watch import watch_host_recovery
        from stackfleet.store import health_states

        while not stop.wait(0.5):
            if any(v["subject"] == self.victim for v in health_states.load(store, "host")):
                break
        if stop.is_set():
            return

        def say(text: str) -> None:
            out.print(text, highlight=False)

        say(
            f"\nscenario host-failure: {self.victim} fails now (kernel panic: nova-compute "
            "stops reporting, its management port closes, its BMC stays On); opted in "
            f"(tag ha): {', '.join(self.chosen)}"
        )
        failed_at = time.time()
        self.sim.sim.hosts.fail(self.region, self.victim, "host")
        watch_host_recovery(store, DEMO_CLOUD, self.region, self.victim, failed_at, say, stop)


def _pick_victim(sim: SimulatorServer) -> tuple[str, str, list[str]]:
    """The up, enabled compute host with the most ACTIVE servers; its two smallest
    servers tagged `ha` and taken out of their server groups (so the scheduler places
    them anywhere). Returns (region, host, server names)."""
    for name, region in sorted(sim.state.regions.items()):
        up = {
            s["host"]
            for s in region.compute_services.values()
            if s.get("binary") == "nova-compute"
            and s.get("state") == "up"
            and s.get("status") == "enabled"
        }
        active: dict[str, list[dict[str, Any]]] = {}
        for server in region.servers.values():
            host = server.get("OS-EXT-SRV-ATTR:host")
            if host in up and server.get("status") == "ACTIVE":
                active.setdefault(str(host), []).append(server)
        if not active:
            continue
        victim = max(sorted(active), key=lambda h: len(active[h]))
        chosen = sorted(active[victim], key=lambda s: (s["flavor"].get("ram", 0), s["id"]))[:2]
        ids = {str(s["id"]) for s in chosen}
        for server in chosen:
            server["tags"] = ["ha"]
        for group in region.server_groups.values():
            group["members"] = [m for m in group.get("members") or [] if m not in ids]
        return name, victim, [str(s.get("name") or s["id"]) for s in chosen]
    raise ConfigError("the simulated cloud has no compute host with running servers")


def prepare_host_failure(sim: SimulatorServer, stack: ExitStack) -> HostFailureScenario:
    """Management listeners for every compute host (closed with `stack`) and the
    scenario's victim, before the first collection sees the opted-in servers."""
    from stackfleet.simulator.hosts import ManagementListeners

    hosts = sorted(
        {
            s["host"]
            for region in sim.state.regions.values()
            for s in region.compute_services.values()
            if s.get("binary") == "nova-compute"
        }
    )
    listeners = ManagementListeners(hosts)
    stack.callback(listeners.close_all)
    sim.sim.hosts.listeners = listeners
    return HostFailureScenario(sim, listeners)


# Ctrl-C ends the demo within this many seconds, whatever a job or a server is doing
SHUTDOWN_LIMIT = 20.0


def _end_if_stuck(seconds: float) -> None:
    """After `seconds`, end the process even if the orderly shutdown (API, jobs,
    simulated cloud) has not finished: a demo stopped with Ctrl-C must stop."""

    def end() -> None:
        # never wait on a full pipe here: say it if stderr takes it, then go
        message = f"stopped (the shutdown took over {seconds:g} s; ending the process)\n"
        try:
            os.set_blocking(2, False)
            os.write(2, message.encode())
        except OSError:
            pass
        os._exit(0)

    timer = threading.Timer(seconds, end)
    timer.daemon = True
    timer.start()


def start_demo_hardware(store: Store, cloud_state: CloudState, map_path: Path) -> Path:
    """Simulated BMCs for the demo cloud's compute hosts and Ironic nodes (served from a
    daemon thread for the rest of the process), their BMC map at `map_path`, and a
    first sweep. Returns the map's path for later sweeps."""
    from stackfleet.engine.hardware import run_sweep, targets_for
    from stackfleet.simulator.redfish import RedfishSimulator, bmcs_for_cloud
    from stackfleet.sources.redfish.client import DEFAULT_CONCURRENCY

    simulator = RedfishSimulator(bmcs_for_cloud(cloud_state))
    simulator.start()
    simulator.write_bmc_map(map_path)
    quiet_sushy(debug=False)
    targets = targets_for(store, map_path, include_ironic=False)
    # the findings are part of the demo's story (demo_story.py), not a table here
    run_sweep(store, targets, DEFAULT_CONCURRENCY, 5.0)
    return map_path
