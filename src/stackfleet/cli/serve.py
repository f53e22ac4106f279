"""`stackfleet serve`: the daemon — the REST API plus periodic collection passes."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from stackfleet.api.server import serve_api
from stackfleet.cli.context import state
from stackfleet.engine.loop import CloudSpec, CollectionLoop
from stackfleet.errors import ConfigError

err = Console(stderr=True)


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
) -> None:
    """Serve the API and collect the given clouds every --interval seconds."""
    import os

    clouds = os_cloud or ([os.environ["OS_CLOUD"]] if os.environ.get("OS_CLOUD") else [])
    if not clouds:
        raise ConfigError("no cloud to collect: pass --os-cloud NAME (repeatable) or set OS_CLOUD")
    store = state(ctx).store()
    loop = CollectionLoop(store, [CloudSpec(c, system_cloud) for c in clouds], interval)
    loop.start()
    err.print(
        f"StackFleet API on http://{host}:{port} (docs at /docs); collecting "
        f"{', '.join(clouds)} every {interval:g} s",
        highlight=False,
    )
    try:
        serve_api(store, host, port)
    finally:
        loop.stop()
