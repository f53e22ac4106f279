"""Listing output in the formats OpenStackClient users expect: -f table|json|yaml|csv,
and the one `--format/-f` option every listing takes."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

# rich's console and table and PyYAML are imported when something is printed in a format
# that needs them, not when a command module is loaded (the CLI's start-up time). A plain
# table (ASCII text that fits the width: always, into a pipe) is drawn here, as rich draws
# it: rich's layout of a 60-row table costs a listing about 0.1 s.

# the minimum width of a table, as `Console(width=max(Console().width, 160))` gives rich
MIN_TABLE_WIDTH = 160


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
        cells = [[_cell(row[c]) for c in columns] for row in picked]
        # into a pipe or a file, a table is never folded (an id cut in two is not found
        # by grep); on a terminal, folded to its width (at least MIN_TABLE_WIDTH)
        width = max(terminal_width(), MIN_TABLE_WIDTH) if sys.stdout.isatty() else sys.maxsize
        text = plain_table(headers, cells, title, width)
        if text is not None:
            sys.stdout.write(text)
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        for header in headers:
            table.add_column(header, overflow="fold")
        for cells_of_row in cells:
            table.add_row(*cells_of_row)
        Console(width=max(Console().width, MIN_TABLE_WIDTH)).print(table)


Columns = Sequence[tuple[str, str]]
"""A listing's columns: (field of the row, header of the table), in order."""


def emit_columns(
    rows: Sequence[dict[str, Any]], columns: Columns, fmt: Format, title: str | None = None
) -> None:
    """`emit_rows` for columns given as (field, header) pairs."""
    emit_rows(rows, [c for c, _ in columns], fmt, [h for _, h in columns], title=title)


class LazyConsole:
    """rich's Console on stderr, made when first used: a listing that prints nothing on
    stderr does not import rich's console."""

    def __init__(self) -> None:
        self._console: Any = None

    def get(self) -> Console:
        """The console itself (made now if not yet)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=True)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


def terminal_width() -> int:
    """The width rich's Console would take: $COLUMNS, else the size of the first standard
    stream that is a terminal, else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit():
        return int(columns)
    for fd in (0, 1, 2):
        try:
            return os.get_terminal_size(fd).columns
        except (OSError, ValueError):
            continue
    return 80


def _styled() -> bool:
    """Whether rich would style the output (bold headers): a terminal that takes it."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM", "") in ("dumb", "unknown"):
        return False
    return sys.stdout.isatty()


def plain_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], title: str | None, width: int
) -> str | None:
    """The table rich prints (heavy-head box, one space of padding, left-aligned cells,
    a centred title), for one-line ASCII cells that fit in `width` columns; None
    otherwise (then rich lays it out: wide characters, folding, wrapping). Text is
    printed as it is: a cell such as "[prod]" is not read as rich markup."""
    texts = [*headers, *(cell for row in rows for cell in row), title or ""]
    if not all(t.isascii() and t.isprintable() for t in texts):
        return None
    sizes = [len(h) for h in headers]
    for row in rows:
        sizes = [max(size, len(cell)) for size, cell in zip(sizes, row, strict=True)]
    total = sum(sizes) + 3 * len(sizes) + 1
    # (rich wraps a title wider than its table)
    if not sizes or total > width or len(title or "") > total:
        return None
    bold, plain = ("\x1b[1m", "\x1b[0m") if _styled() else ("", "")

    def rule(left: str, fill: str, cross: str, right: str) -> str:
        return left + cross.join(fill * (size + 2) for size in sizes) + right + "\n"

    lines = []
    if title:
        before = (total - len(title)) // 2
        lines.append(" " * before + title + " " * (total - len(title) - before) + "\n")
    lines.append(rule("┏", "━", "┳", "┓"))
    lines.append(
        "┃"
        + "┃".join(
            f" {bold}{h}{plain}{' ' * (size - len(h))} "
            for h, size in zip(headers, sizes, strict=True)
        )
        + "┃\n"
    )
    lines.append(rule("┡", "━", "╇", "┩"))
    for row in rows:
        lines.append(
            "│"
            + "│".join(f" {cell.ljust(size)} " for cell, size in zip(row, sizes, strict=True))
            + "│\n"
        )
    lines.append(rule("└", "─", "┴", "┘"))
    return "".join(lines)


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
