"""`stackfleet serve`: the daemon — the REST API beside the periodic jobs of
engine/daemon.py. This module only reads the options into a DaemonConfig; the heavy
modules are imported when the command runs."""

from __future__ import annotations

import inspect
import logging
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from stackfleet.cli.context import state
from stackfleet.cli.options import DEFAULT_AGENT_INTERVAL, DEFAULT_QUOTA_INTERVAL
from stackfleet.core.errors import CloudError, ConfigError

err = Console(stderr=True)
log = logging.getLogger(__name__)


def register(root: typer.Typer) -> None:
    """Add `serve` and `worker` to the root app."""
    root.command("serve")(serve_command)
    root.command("worker")(worker_command)


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
    config_file: Annotated[
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
            help="BMC map to sweep every minute (findings and alerts of the hardware pack, "
            "tuned by the monitoring file's policies:).",
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
            help="Check Keystone tokens (X-Auth-Token) with this clouds.yaml cloud (an "
            "admin cloud) against the API's policy table (docs/security.md); without it "
            "the API takes a local operator token (see --token-file).",
        ),
    ] = None,
    auth_read: Annotated[
        str,
        typer.Option(
            "--auth-read",
            help="'open' (reads need no token; a read with a token is filtered by its "
            "scope) or 'authenticated'.",
        ),
    ] = "open",
    operator_role: Annotated[
        str,
        typer.Option(
            "--operator-role",
            help="With --auth-cloud: the Keystone role that may act, approve, silence "
            "and ack (besides admin).",
        ),
    ] = "fleet-operator",
    token_file: Annotated[
        str | None,
        typer.Option(
            "--token-file",
            help="Without --auth-cloud: where to write the local operator token made at "
            "start (mode 0600; default api-token-PORT in the data directory).",
        ),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Development and tests only: no token at all, anyone reaching the port may write.",
        ),
    ] = False,
    coordination_url: Annotated[
        str | None,
        typer.Option(
            "--coordination-url",
            envvar="STACKFLEET_COORDINATION_URL",
            help="Scale out: a tooz backend (redis://HOST:6379, etcd3+http://HOST:2379, "
            "zookeeper://HOST:2181) shared by several daemons on one PostgreSQL store; "
            "see `stackfleet worker`.",
        ),
    ] = None,
    member_id: Annotated[
        str | None,
        typer.Option("--member-id", help="This worker's name in the group (default host:pid)."),
    ] = None,
    membership_timeout: Annotated[
        float,
        typer.Option(
            "--membership-timeout",
            min=1,
            help="Seconds without a heartbeat before a worker counts as dead and the others "
            "take over its partitions (and, if it led, the leadership).",
        ),
    ] = 5.0,
    tls_cert: Annotated[
        str | None,
        typer.Option(
            "--tls-cert",
            help="Serve the API over HTTPS with this PEM certificate (chain) file; with "
            "--tls-key. Without them the API is plain HTTP: keep it on loopback or behind "
            "a TLS proxy.",
        ),
    ] = None,
    tls_key: Annotated[
        str | None,
        typer.Option("--tls-key", help="The PEM private key of --tls-cert."),
    ] = None,
    metrics_token_file: Annotated[
        str | None,
        typer.Option(
            "--metrics-token-file",
            help="A file holding a scrape token (mode 600/640) that lets its bearer read "
            "/metrics, and nothing else: give Prometheus the same file as "
            "authorization.credentials_file. Without it /metrics needs an operator or "
            "system-reader token.",
        ),
    ] = None,
    metrics_public: Annotated[
        bool,
        typer.Option(
            "--metrics-public",
            help="Let anyone reaching the port read /metrics (fleet-wide counts and "
            "gauges) without a token.",
        ),
    ] = False,
) -> None:
    """Serve the API and collect the given clouds every --interval seconds."""
    # the daemon's machinery is imported when it starts, not for every command's --help
    import os

    from stackfleet.api.auth import KeystoneAuth
    from stackfleet.api.server import serve_api
    from stackfleet.cli.hardware import quiet_sushy
    from stackfleet.sources.openstack.connection import connect

    clouds = os_cloud or ([os.environ["OS_CLOUD"]] if os.environ.get("OS_CLOUD") else [])
    if not clouds:
        raise ConfigError("no cloud to collect: pass --os-cloud NAME (repeatable) or set OS_CLOUD")
    if auth_read not in ("open", "authenticated"):
        raise ConfigError(f"--auth-read: {auth_read!r} is not open or authenticated")
    read: Literal["open", "authenticated"] = (
        "authenticated" if auth_read == "authenticated" else "open"
    )
    if bool(tls_cert) != bool(tls_key):
        raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
    for option, path in (("--tls-cert", tls_cert), ("--tls-key", tls_key)):
        if path and not os.access(path, os.R_OK):
            raise ConfigError(f"{option}: cannot read {path}")
    scheme = "https" if tls_cert else "http"
    from pathlib import Path

    from stackfleet.api.auth import MetricsAccess, check_metrics_token_file

    if metrics_token_file:
        check_metrics_token_file(Path(metrics_token_file))
    metrics = MetricsAccess(
        public=metrics_public, token_file=Path(metrics_token_file) if metrics_token_file else None
    )
    metrics_line = (
        "; /metrics open to anyone (--metrics-public)"
        if metrics_public
        else (f"; /metrics scrape token in {metrics_token_file}" if metrics_token_file else "")
    )
    keystone: Any = None
    token_path = ""
    auth_line = "API auth: off (--no-auth: anyone reaching the port may write)"
    if auth_cloud and no_auth:
        raise ConfigError("--no-auth and --auth-cloud: choose one")
    if auth_cloud:
        from stackfleet.api.auth import KeystoneAuth
        from stackfleet.engine.settings import load_settings
        from stackfleet.sources.openstack.connection import close_targets, connect

        # token checks time out like every other OpenStack call
        load_settings(config_file).apply_api_timeout()
        # a bad password or a dead Keystone stops the daemon here, one clear error
        try:
            targets = connect(auth_cloud)
        except (ConfigError, CloudError) as exc:
            raise type(exc)(f"--auth-cloud: {exc}") from exc
        # one long-lived connection validates tokens; other regions' are not needed
        close_targets(targets[1:])
        keystone = KeystoneAuth(
            targets[0].conn, read=read, cloud=auth_cloud, operator_role=operator_role
        )
        auth_line = (
            f"API auth: Keystone tokens via {auth_cloud} (reads {read}, "
            f"operator roles admin and {operator_role})"
        )
    elif no_auth:
        log.warning(
            "the API has no authentication (--no-auth): anyone reaching the port may "
            "approve actions and change alerts and leases; for development and tests only"
        )
    from stackfleet.engine.daemon import Daemon
    from stackfleet.engine.daemon_config import DaemonConfig

    config = DaemonConfig(
        clouds=clouds,
        system_cloud=system_cloud,
        interval=interval,
        policy_files=[*(policy or []), *(f"pack:{p}" for p in pack or [])],
        execute_actions=execute_actions,
        settings_file=config_file,
        infra_config=infra_config,
        bmc_map=bmc_map,
        notifications=notifications,
        quota_interval=quota_interval,
        agent_interval=agent_interval,
        coordination_url=coordination_url,
        member_id=member_id,
        membership_timeout=membership_timeout,
    )
    store = state(ctx).store()
    if coordination_url and store.engine.dialect.name == "sqlite":
        raise ConfigError(
            "workers share one store: give them a PostgreSQL (or MariaDB) URL with --db-url "
            "or $STACKFLEET_DB_URL, not SQLite"
        )
    # reads and checks every file: a mistake stops serve here, before anything runs
    from stackfleet.patching.jobs import campaign_jobs

    daemon = Daemon(store, config, job_factories=(campaign_jobs,))
    if bmc_map:
        quiet_sushy(state(ctx).debug)
    daemon.start()
    if not (auth_cloud or no_auth):
        try:
            keystone, token_path = local_auth(token_file, port, read)
        except ConfigError:
            daemon.stop()
            raise
        auth_line = f"API auth: local operator token in {token_path} (reads {read})"
    err.print(
        f"StackFleet API on {scheme}://{host}:{port} (dashboard at /ui/, docs at /docs); "
        f"collecting {', '.join(clouds)} every {interval:g} s; "
        f"jobs {', '.join(daemon.scheduler.names)}; "
        + (
            f"worker {config.member_id or daemon.store.collector} coordinated via "
            f"{_public(coordination_url)}; "
            if coordination_url
            else ""
        )
        + auth_line
        + metrics_line,
        highlight=False,
    )
    try:
        serve_api(
            daemon.store,
            host,
            port,
            events=daemon.events,
            keystone=keystone,
            jobs=daemon.jobs,
            cluster=daemon.cluster,
            tls=(tls_cert, tls_key) if tls_cert and tls_key else None,
            metrics=metrics,
        )
    finally:
        daemon.stop()
        if token_path:
            forget_local_token(token_path, keystone)


def forget_local_token(path: str, auth: Any) -> None:
    """Remove the local token file at shutdown (unless another process replaced it)."""
    from pathlib import Path

    from stackfleet.api.auth import read_local_token

    if read_local_token(Path(path)) == getattr(auth, "token", None):
        Path(path).unlink(missing_ok=True)


def local_auth(token_file: str | None, port: int, read: Any, name: str = "") -> tuple[Any, str]:
    """A LocalAuth with a new random operator token, written (mode 0600) to
    `token_file` or to api-token-PORT (`name`, when given) in the data directory."""
    from pathlib import Path

    from stackfleet.api.auth import LocalAuth, write_local_token
    from stackfleet.core.config import data_dir

    path = Path(token_file) if token_file else data_dir() / (name or f"api-token-{port}")
    try:
        token = write_local_token(path)
    except OSError as exc:
        raise ConfigError(f"cannot write the API token to {path}: {exc}") from exc
    return LocalAuth(token, read=read, source=str(path)), str(path)


def worker_command(**options: Any) -> None:
    """A scale-out worker: `serve` sharing the work with other workers.

    The workers of one --coordination-url and PostgreSQL store split the collection by
    (cloud, region) and the BMC sweeps by host (balanced hashing over the live
    workers); one leader, elected through tooz, runs policies, alert dispatch, quotas,
    usage and the DB/RabbitMQ sweeps. A worker that dies is replaced within
    --membership-timeout seconds plus one pass. Each worker serves the API too (give
    each its own --port)."""
    if not options.get("coordination_url"):
        raise ConfigError(
            "a worker needs --coordination-url (or $STACKFLEET_COORDINATION_URL), e.g. "
            "redis://127.0.0.1:6379; `stackfleet serve` runs a lone process"
        )
    serve_command(**options)


# the worker takes serve's options (Typer reads them from the signature)
worker_command.__signature__ = inspect.signature(serve_command, eval_str=True)  # type: ignore[attr-defined]


def _public(url: str) -> str:
    """The coordination URL without credentials (a Redis password in it)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
