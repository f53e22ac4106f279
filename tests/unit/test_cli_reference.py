"""The CLI reference in docs/cli.md is the one the command tree generates; every command's
--help renders; every listing takes the output formats OpenStackClient users expect."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from stackfleet.cli.main import app
from stackfleet.cli.reference import (
    REGENERATE,
    help_text,
    is_group,
    reference_markdown,
    walk_commands,
)

DOC = Path(__file__).parents[2] / "docs" / "cli.md"
ROOT = typer.main.get_command(app)
EVERY_COMMAND = [path[1:] for path, _command in walk_commands(ROOT, hidden=True)]

# Commands that change something, serve or stream rather than print a listing, each with why.
NOT_LISTINGS = {
    ("approve",): "changes an action's state",
    ("reject",): "changes an action's state",
    ("demo",): "serves the simulated cloud and the API",
    ("serve",): "serves the API",
    ("worker",): "serves the API as one of several workers",
    ("policy", "validate"): "prints the errors it finds",
    ("policy", "reference"): "prints Markdown",
    ("audit", "verify"): "prints a verdict and exits 1 on a broken chain",
    ("audit", "checkpoint"): "writes a signed checkpoint (a JSON line)",
    ("lease", "extend"): "changes a lease",
    ("alerts", "ack"): "changes an alert",
    ("alerts", "resolve"): "changes an alert",
    ("alerts", "silence"): "creates a silence",
    ("alerts", "expire"): "ends a silence",
    ("simulator", "serve"): "serves the simulated cloud",
    ("docs", "cli"): "prints Markdown",
    ("config", "capture"): "captures revisions and prints one line per service",
    ("config", "diff"): "prints a unified diff",
    ("campaign", "start"): "starts a campaign and prints its progress",
    ("campaign", "pause"): "changes a campaign's state",
    ("campaign", "resume"): "resumes a campaign and prints its progress",
    ("campaign", "approve"): "approves a batch and prints the campaign's progress",
    ("campaign", "abort"): "changes a campaign's state",
    ("campaign", "rollback"): "rolls hosts back and prints what it did",
    ("workload", "logs"): "prints members' console logs",
}


def test_the_documented_cli_reference_is_the_generated_one():
    assert DOC.read_text(encoding="utf-8") == reference_markdown(ROOT), (
        f"docs/cli.md is out of date: run `{REGENERATE}`"
    )


def test_every_visible_command_says_what_it_does():
    silent = [" ".join(p) for p, c in walk_commands(ROOT) if not help_text(c)]
    assert not silent, f"commands without help text: {silent}"


@pytest.mark.parametrize("path", EVERY_COMMAND, ids=lambda p: " ".join(p) or "stackfleet")
def test_help_renders(path: tuple[str, ...]):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert " ".join(path) in " ".join(result.output.split())


def test_every_listing_takes_the_output_formats():
    commands = [(p[1:], c) for p, c in walk_commands(ROOT, hidden=True) if not is_group(c)]
    assert set(NOT_LISTINGS) <= {path for path, _c in commands}, "NOT_LISTINGS names a gone command"
    lacking = []
    for path, command in commands:
        if path in NOT_LISTINGS:
            continue
        formats = [p for p in command.params if "--format" in getattr(p, "opts", [])]
        choices = formats[0].type_descriptor.choices if formats else None
        offered = {getattr(c, "value", c) for c in choices or ()}
        if not {"table", "json", "yaml", "csv"} <= offered or "-f" not in formats[0].opts:
            lacking.append(" ".join(path))
    assert not lacking, f"listings without -f table|json|yaml|csv: {lacking}"
