"""A listing's table is drawn without rich's layout when it can be (ASCII text that
fits), and is then the very table rich draws; anything else is rich's."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table

from stackfleet.cli.output import Format, emit_rows, plain_table


def rich_table(headers, rows, title=None, width=160) -> str:
    table = Table(title=title, show_lines=False)
    for header in headers:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*row)
    out = io.StringIO()
    Console(file=out, width=width).print(table)
    return out.getvalue()


CASES = [
    (["Name", "ID"], [["web-1", "0c1d"], ["a much longer name", ""]], None),
    (["Name", "Status"], [], "Servers"),
    (["Host"], [["cmp0001"], ["cmp0002"]], "Hosts"),
    (["A", "B", "C"], [["1", "22", "333"]], "x"),
]


@pytest.mark.parametrize(("headers", "rows", "title"), CASES)
def test_a_plain_table_is_the_table_rich_draws(headers, rows, title):
    assert plain_table(headers, rows, title, 160) == rich_table(headers, rows, title)


def test_wide_or_non_ascii_tables_are_left_to_rich():
    assert plain_table(["Name"], [["x" * 200]], None, 160) is None
    assert plain_table(["Inlet °C"], [["35"]], None, 160) is None
    assert plain_table(["Name"], [["two\nlines"]], None, 160) is None
    assert plain_table(["Host"], [["cmp1"]], "Hypervisors in the region", 160) is None


def test_text_that_looks_like_markup_is_printed_as_it_is(capsys):
    emit_rows([{"name": "[prod] web"}], ["name"], Format.table)
    assert "[prod] web" in capsys.readouterr().out
