"""The CLI starts fast: loading it (every command's --help) imports none of the heavy
libraries nor the engine, and a listing from the store imports SQLAlchemy but not the
cloud clients or the API. What it shows without importing the modules that own it (the
root commands' help, defaults of options) stays equal to theirs. (Timings live in
benchmarks/cli_startup.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from stackfleet.cli import options
from stackfleet.cli.command_tree import LazyCommands, RootGroup, registered
from stackfleet.cli.main import ROOT_COMMANDS, app
from stackfleet.cli.policy import pack_names as help_pack_names

HEAVY = (
    "openstack",
    "oslo_messaging",
    "fastapi",
    "uvicorn",
    "sushy",
    "pymysql",
    "prometheus_client",
    "stackfleet.engine",
    "stackfleet.actions",
    "stackfleet.alerts",
    "stackfleet.sources",
)
# not needed to print help either (a listing from the store needs SQLAlchemy)
NOT_FOR_HELP = (*HEAVY, "sqlalchemy", "alembic", "stackfleet.simulator", "stackfleet.api")
# not needed to list from the store: it reads with SQLAlchemy Core (store/listing.py), and
# Typer's pydantic checks are built only for options given a value (cli/command_tree.py)
NOT_FOR_LISTING = ("sqlalchemy.orm", "stackfleet.store.schema", "stackfleet.store.inventory")
NOT_FOR_LISTING += ("pydantic", "typer._adapters")


def imported_after(code: str) -> set[str]:
    """The top-level and stackfleet modules in sys.modules after running `code` in a
    fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if n in modules or any(m.startswith(f"{n}.") for m in modules)]


def test_loading_the_cli_imports_no_heavy_module():
    modules = imported_after("import stackfleet.cli.main")
    assert loaded(modules, NOT_FOR_HELP) == []


ROOT_HELP = (
    "from stackfleet.cli.main import run\n"
    "try:\n"
    "    run(['--help'])\n"
    "except SystemExit as exc:\n"
    "    assert not exc.code, exc.code\n"
)


def test_the_root_help_imports_no_command_module():
    modules = imported_after(ROOT_HELP)
    commands = [m for m in modules if m.startswith("stackfleet.cli.")]
    assert sorted(commands) == [
        "stackfleet.cli.command_tree",
        "stackfleet.cli.context",
        "stackfleet.cli.main",
    ]


def test_the_root_index_names_what_each_module_registers():
    names = {}
    for module in sorted({entry.module for entry in ROOT_COMMANDS}):
        for name in typer.main.get_group(registered(module)).commands:
            names[name] = module
    assert {e.name: e.module for e in ROOT_COMMANDS} == names


def test_the_root_index_says_what_each_command_says():
    built = LazyCommands(ROOT_COMMANDS)
    for entry in ROOT_COMMANDS:
        command = built[entry.name]
        first_paragraph = (command.short_help or command.help or "").split("\n\n")[0]
        assert (entry.help, entry.hidden) == (first_paragraph, command.hidden), entry.name


def test_the_root_help_from_the_index_is_the_one_of_the_built_commands(monkeypatch):
    from_index = CliRunner().invoke(app, ["--help"])
    monkeypatch.setattr(RootGroup, "format_help", TyperGroup.format_help)
    from_commands = CliRunner().invoke(app, ["--help"])
    assert from_index.exit_code == from_commands.exit_code == 0
    assert from_index.output == from_commands.output


def test_a_store_listing_imports_neither_the_cloud_clients_nor_the_api(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    from stackfleet.store import open_store

    open_store(url).close()  # migrated here, so the listing opens an up-to-date store
    code = (
        "from stackfleet.cli.main import run\n"
        "try:\n"
        f"    run(['--db-url', {url!r}, 'servers', 'list', '-f', 'json'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
    )
    modules = imported_after(code)
    assert "sqlalchemy" in modules
    assert loaded(modules, (*HEAVY, *NOT_FOR_LISTING, "alembic", "stackfleet.api")) == []


def test_a_table_listing_into_a_pipe_loads_only_the_store_and_the_output(tmp_path: Path):
    """`servers list` as a script runs it: SQLite's dialect and nothing of the other
    databases, no rich layout (the table is drawn without it), no policy engine."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    from stackfleet.store import open_store

    open_store(url).close()
    code = (
        "from stackfleet.cli.main import run\n"
        "try:\n"
        f"    run(['--db-url', {url!r}, 'servers', 'list'])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
    )
    modules = imported_after(code)
    assert "sqlalchemy.dialects.sqlite" in modules
    unused = (
        "sqlalchemy.dialects.postgresql",
        "sqlalchemy.dialects.mysql",
        "psycopg",
        "psycopg2",
        "rich.console",
        "rich.table",
        "yaml",
        "stackfleet.policy",
        "stackfleet.simulator",
    )
    assert loaded(modules, (*HEAVY, *unused, *NOT_FOR_LISTING, "alembic", "stackfleet.api")) == []


def test_the_root_help_imports_no_pydantic():
    assert loaded(imported_after(ROOT_HELP), ("pydantic",)) == []


def test_an_option_given_a_value_is_still_checked(tmp_path: Path):
    """The deferred checks skip only unset options and declared defaults."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    result = CliRunner().invoke(app, ["--db-url", url, "servers", "list", "--limit", "0"])
    assert result.exit_code == 2
    assert "--limit" in result.output and "greater than or equal to 1" in result.output
    listed = CliRunner().invoke(app, ["--db-url", url, "servers", "list", "-f", "json"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == []


def test_a_new_store_is_still_migrated(tmp_path: Path):
    from sqlalchemy import inspect

    from stackfleet.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        assert "resources" in inspect(store.engine).get_table_names()
    finally:
        store.close()


def test_the_head_revision_read_from_file_names_is_alembics():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from stackfleet.store.engine import MIGRATIONS, head_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


@pytest.mark.parametrize(
    ("shown", "module", "name"),
    [
        (options.RABBITMQ_DEFAULT_URL, "stackfleet.sources.rabbitmq", "DEFAULT_URL"),
        (
            options.REDFISH_DEFAULT_CONCURRENCY,
            "stackfleet.sources.redfish.client",
            "DEFAULT_CONCURRENCY",
        ),
        (options.DEFAULT_QUOTA_INTERVAL, "stackfleet.engine.quota_sweep", "DEFAULT_QUOTA_INTERVAL"),
        (
            options.DEFAULT_AGENT_INTERVAL,
            "stackfleet.sources.openstack.capacity",
            "DEFAULT_AGENT_INTERVAL",
        ),
        (options.AUDIT_CHECKPOINTS_ENV, "stackfleet.store.audit", "CHECKPOINTS_ENV"),
    ],
    ids=["rabbitmq-url", "redfish-concurrency", "quota-interval", "agent-interval", "audit"],
)
def test_a_default_shown_in_help_is_the_librarys(shown: object, module: str, name: str):
    import importlib

    assert shown == getattr(importlib.import_module(module), name)


def test_the_simulator_presets_in_help_are_the_generators():
    from stackfleet.simulator.generator import PRESETS

    assert list(options.SIMULATOR_PRESETS) == list(PRESETS)


def test_the_packs_in_help_are_the_loaders():
    from stackfleet.policy import pack_names

    assert help_pack_names() == pack_names()
