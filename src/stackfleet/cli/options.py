"""Options several commands share, and the library defaults their help shows.

A command module is imported to print any `--help`, so what its options need at import
time must be light. The defaults below repeat constants of modules that import
openstacksdk, requests, pymysql or sushy; tests/unit/test_cli_imports.py keeps each
equal to the library's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# = stackfleet.sources.rabbitmq.DEFAULT_URL
RABBITMQ_DEFAULT_URL = "http://guest:guest@127.0.0.1:15672"
# = stackfleet.sources.redfish.client.DEFAULT_CONCURRENCY
REDFISH_DEFAULT_CONCURRENCY = 32
# = stackfleet.engine.quota_sweep.DEFAULT_QUOTA_INTERVAL (seconds)
DEFAULT_QUOTA_INTERVAL = 3600.0
# = stackfleet.sources.openstack.capacity.DEFAULT_AGENT_INTERVAL (seconds)
DEFAULT_AGENT_INTERVAL = 600.0
# = stackfleet.store.audit.CHECKPOINTS_ENV
AUDIT_CHECKPOINTS_ENV = "STACKFLEET_AUDIT_CHECKPOINTS"
# = the names of stackfleet.simulator.generator.PRESETS
SIMULATOR_PRESETS = ("small", "two-region", "benchmark")

SettingsOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        envvar="STACKFLEET_CONFIG",
        help="Settings file (YAML; default stackfleet.yaml in the config directory).",
    ),
]
"""`--config`: the settings file, in every command that reads one."""

InfraConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--infra-config",
        help="Monitoring file (targets, threshold changes); default $STACKFLEET_INFRA_CONFIG "
        "or infrastructure.yaml in the config directory.",
    ),
]
"""`--infra-config`: the infrastructure monitoring file (`db`, `mq`, `serve`)."""
