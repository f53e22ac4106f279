"""`stackfleet serve`: the daemon — the REST API plus periodic collection passes."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

import typer
from rich.console import Console

from stackfleet.alerts.dispatch import DispatchLoop
from stackfleet.api.auth import KeystoneAuth
from stackfleet.api.hardware import THRESHOLDS_ENV
from stackfleet.api.server import serve_api
from stackfleet.cli.context import state
from stackfleet.cli.hardware import quiet_sushy
from stackfleet.engine.events import start_events
from stackfleet.engine.execute import Connections
from stackfleet.engine.hardware import HardwareSweepLoop, load_thresholds
from stackfleet.engine.infra_alerts import InfraAlerts
from stackfleet.engine.infra_monitor import InfraMonitorLoop
from stackfleet.engine.loop import CloudSpec, CollectionLoop
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.quota_sweep import DEFAULT_QUOTA_INTERVAL, QuotaSweepLoop, check_interval
from stackfleet.engine.schedule import PolicySchedule
from stackfleet.engine.settings import load_settings
from stackfleet.engine.usage import UsageLoop
from stackfleet.errors import CloudError, ConfigError
from stackfleet.policy import load_files
from stackfleet.sources.infra_config import load_infra_config
from stackfleet.sources.openstack.capacity import DEFAULT_AGENT_INTERVAL
from stackfleet.sources.openstack.connection import close_targets, connect

err = Console(stderr=True)
log = logging.getLogger(__name__)


def serve_command(
    ctx: typer.Context,
    os_cloud: Annotated[
        list[str] | None,
        typer.Option("--os-cloud", help="Cloud to collect (repeatable); default $OS_CLOUD."),
    ] = None,
    system_cloud: Annotated[
        str | None, typer.Option("--system-cloud", help="System-scoped entry (Ironic).")
    ] = None,
    interval: Annotated[
        float, typer.Option("--interval", min=5, help="Seconds between passes.")
    ] = 300.0,
    host: Annotated[str, typer.Option("--host", help="API listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="API port.")] = 8780,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", help="Policy file to run periodically (repeatable)."),
    ] = None,
    pack: Annotated[
        list[str] | None, typer.Option("--pack", help="Built-in policy pack (repeatable).")
    ] = None,
    execute_actions: Annotated[
        bool,
        typer.Option("--execute-actions", help="Let periodic policies act (default: dry-run)."),
    ] = False,
    config: Annotated[
        str | None, typer.Option("--config", envvar="STACKFLEET_CONFIG", help="Settings file.")
    ] = None,
    infra_config: Annotated[
        str | None,
        typer.Option(
            "--infra-config",
            help="Database/RabbitMQ targets to sweep every minute "
            "(default: $STACKFLEET_INFRA_CONFIG or infrastructure.yaml in the config dir).",
        ),
    ] = None,
    bmc_map: Annotated[
        str | None,
        typer.Option(
            "--bmc-map",
            help="BMC map to sweep every minute (hardware findings and alerts; thresholds "
            "from $STACKFLEET_HARDWARE_THRESHOLDS).",
        ),
    ] = None,
    notifications: Annotated[
        bool | None,
        typer.Option(
            "--notifications/--no-notifications",
            help="Listen to the clouds' notifications (transport URLs from the settings "
            "file) for event-driven refresh and event policies (default: settings' "
            "notifications.enabled).",
        ),
    ] = None,
    quota_interval: Annotated[
        float,
        typer.Option(
            "--quota-interval",
            help="Seconds between quota reads of a project (a sweep apart from the passes).",
        ),
    ] = DEFAULT_QUOTA_INTERVAL,
    agent_interval: Annotated[
        float,
        typer.Option(
            "--agent-interval",
            min=0,
            help="Seconds before a pass reads again which routers / networks an L3 / DHCP "
            "agent hosts (sooner when the agent's reported counts change; 0: every pass).",
        ),
    ] = DEFAULT_AGENT_INTERVAL,
    auth_cloud: Annotated[
        str | None,
        typer.Option(
            "--auth-cloud",
            help="Require a Keystone token (X-Auth-Token) on the API's writes, validated "
            "with this clouds.yaml cloud (an admin cloud); without it the API is open.",
        ),
    ] = None,
    auth_read: Annotated[
        str,
        typer.Option(
            "--auth-read",
            help="With --auth-cloud: 'open' (reads need no token) or 'authenticated'.",
        ),
    ] = "open",
) -> None:
    """Serve the API and collect the given clouds every --interval seconds."""
    import os

    clouds = os_cloud or ([os.environ["OS_CLOUD"]] if os.environ.get("OS_CLOUD") else [])
    if not clouds:
        raise ConfigError("no cloud to collect: pass --os-cloud NAME (repeatable) or set OS_CLOUD")
    if auth_read not in ("open", "authenticated"):
        raise ConfigError(f"--auth-read: {auth_read!r} is not open or authenticated")
    read: Literal["open", "authenticated"] = (
        "authenticated" if auth_read == "authenticated" else "open"
    )
    settings = load_settings(config)
    settings.apply_api_timeout()
    keystone = None
    if auth_cloud:
        # a bad password or a dead Keystone stops the daemon here, one clear error
        try:
            targets = connect(auth_cloud)
        except (ConfigError, CloudError) as exc:
            raise type(exc)(f"--auth-cloud: {exc}") from exc
        # one long-lived connection validates tokens; other regions' are not needed
        close_targets(targets[1:])
        keystone = KeystoneAuth(targets[0].conn, read=read, cloud=auth_cloud)
    else:
        log.warning(
            "the API has no authentication: anyone reaching the port may approve "
            "actions and change alerts and leases; pass --auth-cloud to require tokens"
        )
    # invalid policies stop the daemon before it starts, as `policy validate` would
    policies = load_files([*(policy or []), *(f"pack:{p}" for p in pack or [])])
    store = state(ctx).store()
    schedule = PolicySchedule(
        PolicyRunner(store, settings, Connections()), policies, execute_actions
    )
    events, listeners = start_events(
        store,
        settings,
        policies,
        clouds,
        system_cloud,
        execute_actions,
        notifications,
        run_lock=schedule.run_lock,
    )
    loop = CollectionLoop(
        store,
        [CloudSpec(c, system_cloud) for c in clouds],
        interval,
        after_pass=schedule.after_pass if policies else None,
        agent_interval=agent_interval,
    )
    quotas = QuotaSweepLoop(
        store, [CloudSpec(c, system_cloud) for c in clouds], check_interval(quota_interval)
    )
    infra = load_infra_config(infra_config)
    # infrastructure findings become findings and alerts after every sweep
    alerting = InfraAlerts(
        store,
        settings.alerts.receivers,
        settings.notify,
        settings.alerts.inhibit_rules,
        load_thresholds(os.environ.get(THRESHOLDS_ENV) or None),
    )
    monitor = InfraMonitorLoop(
        store,
        infra.databases,
        infra.brokers,
        infra.database_rules,
        infra.rabbitmq_rules,
        after_sweep=alerting.after_infra_sweep,
    )
    hardware = HardwareSweepLoop(store, bmc_map, after_sweep=alerting.after_hardware_sweep)
    dispatcher = DispatchLoop(
        store, settings.alerts.receivers, settings.notify, settings.alerts.inhibit_rules
    )
    if infra.databases or infra.brokers:
        monitor.start()
    if bmc_map:
        quiet_sushy(state(ctx).debug)
        hardware.start()
    if settings.alerts.receivers:
        dispatcher.start()
    loop.start()
    quotas.start()
    # real usage (diagnostics or Prometheus) beside the collection loop; nothing when
    # usage.source is none
    usage_loop = UsageLoop(store, settings.usage, clouds, system_cloud)
    usage_loop.start()
    err.print(
        f"StackFleet API on http://{host}:{port} (docs at /docs); collecting "
        f"{', '.join(clouds)} every {interval:g} s; "
        + (
            f"API auth: Keystone tokens via {auth_cloud} (reads {read})"
            if keystone
            else "API auth: off (anyone reaching the port may write)"
        ),
        highlight=False,
    )
    try:
        serve_api(store, host, port, events=events, keystone=keystone)
    finally:
        for listener in listeners:
            listener.stop()
        events.stop()
        loop.stop()
        quotas.stop()
        usage_loop.stop()
        monitor.stop()
        hardware.stop()
        dispatcher.stop()
