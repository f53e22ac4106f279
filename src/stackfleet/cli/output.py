"""Listing output in the formats OpenStackClient users expect: -f table|json|yaml|csv,
and the one `--format/-f` option every listing takes."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer

# rich's console and table and PyYAML are imported when something is printed in a format
# that needs them, not when a command module is loaded (the CLI's start-up time).


class Format(StrEnum):
    table = "table"
    json = "json"
    yaml = "yaml"
    csv = "csv"
    value = "value"


FormatOption = Annotated[
    Format, typer.Option("-f", "--format", help="Output format.", case_sensitive=False)
]
"""`-f/--format table|json|yaml|csv|value` of every listing (default: `= Format.table`)."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def emit_rows(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    fmt: Format,
    headers: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Print rows (dicts) with the given columns in the chosen format. Machine formats
    (json, yaml, csv, value) keep the raw values and the field names as keys."""
    headers = list(headers or columns)
    picked = [{c: row.get(c) for c in columns} for row in rows]
    if fmt is Format.json:
        sys.stdout.write(json.dumps(picked, indent=2, default=str) + "\n")
    elif fmt is Format.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(picked, sort_keys=False, default_flow_style=False))
    elif fmt is Format.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for row in picked:
            writer.writerow([_cell(row[c]) for c in columns])
        sys.stdout.write(buffer.getvalue())
    elif fmt is Format.value:
        for row in picked:
            sys.stdout.write(" ".join(_cell(row[c]) for c in columns) + "\n")
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for header in headers:
            table.add_column(header, overflow="fold")
        for row in picked:
            table.add_row(*(_cell(row[c]) for c in columns))
        Console(width=max(Console().width, 160)).print(table)


def emit_object(obj: dict[str, Any], fmt: Format) -> None:
    """Print one object: a Field/Value table, or the whole object as JSON/YAML."""
    if fmt is Format.json:
        sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    elif fmt is Format.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(obj, sort_keys=False, default_flow_style=False))
    else:
        rows = [{"field": k, "value": v} for k, v in obj.items()]
        emit_rows(
            rows,
            ["field", "value"],
            fmt if fmt is not Format.table else Format.table,
            headers=["Field", "Value"],
        )
