"""The CLI reference (docs/cli.md), generated from the command tree: every group and
command with its help, arguments and options, so the documentation cannot drift from the
code. `stackfleet docs cli > docs/cli.md` writes it."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from enum import Enum
from typing import Any

import typer

REGENERATE = "stackfleet docs cli > docs/cli.md"


def register(app: typer.Typer) -> None:
    """Add the hidden `stackfleet docs` group (generated documentation)."""
    docs = typer.Typer(help="Generated documentation.", hidden=True)
    docs.command("cli")(cli_reference_command)
    app.add_typer(docs, name="docs", hidden=True)


def cli_reference_command(ctx: typer.Context) -> None:
    """Print the CLI reference (Markdown) generated from the command tree: docs/cli.md."""
    sys.stdout.write(reference_markdown(ctx.find_root().command))


def walk_commands(
    command: Any, path: tuple[str, ...] = ("stackfleet",), hidden: bool = False
) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under `command` (itself first) with its path of names, in
    registration order; hidden ones only when asked."""
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        if hidden or not sub.hidden:
            yield from walk_commands(sub, (*path, name), hidden)


def is_group(command: Any) -> bool:
    """A group has subcommands (Typer's groups are not Click's Group class)."""
    return getattr(command, "commands", None) is not None


def help_text(command: Any) -> str:
    """The command's help as its --help shows it: the docstring up to a form feed,
    without Click's no-rewrap markers."""
    text = inspect.cleandoc(command.help or "").split("\f", 1)[0]
    return "\n".join(line for line in text.splitlines() if line.strip() != "\b").strip()


def _usage(command: Any, path: tuple[str, ...]) -> str:
    pieces = [*path, "[OPTIONS]"] if _options(command) else list(path)
    for param in command.params:
        if param.param_type_name != "argument":
            continue
        name = (param.metavar or param.name).upper()
        many = "..." if param.multiple or param.nargs != 1 else ""
        pieces.append(f"{name}{many}" if param.required else f"[{name}{many}]")
    if is_group(command):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def _options(command: Any) -> list[Any]:
    return [
        p for p in command.params if p.param_type_name == "option" and not getattr(p, "hidden", 0)
    ]


def _type(param: Any, ctx: typer.Context) -> str:
    if getattr(param, "is_flag", False):
        return "flag"
    label = str(param.display_type(ctx)).strip("<>").removesuffix(" range")
    if param.multiple and label.startswith("list[") and label.endswith("]"):
        label = f"{label[5:-1]}, repeatable"
    bounds = [f"≥ {param.min}" if getattr(param, "min", None) is not None else ""]
    bounds.append(f"≤ {param.max}" if getattr(param, "max", None) is not None else "")
    return ", ".join([label, *filter(None, bounds)])


def _default(param: Any) -> str:
    default = param.default
    if param.required:
        return "required"
    if getattr(param, "is_flag", False):
        if param.secondary_opts and default is not None:
            return f"`{param.opts[0] if default else param.secondary_opts[0]}`"
        return "—"
    if default is None or default == "" or default == []:
        return "—"
    if isinstance(default, Enum):
        default = default.value
    return f"`{default}`"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _params_table(command: Any, ctx: typer.Context) -> list[str]:
    rows = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        if param.param_type_name == "argument":
            names = f"`{(param.metavar or param.name).upper()}`"
        else:
            names = ", ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
        envvar = param.envvar
        if isinstance(envvar, list | tuple):
            envvar = ", ".join(envvar)
        env = f"`{envvar}`" if envvar else ""
        rows.append(
            f"| {names} | {_cell(_type(param, ctx))} | {_default(param)} | {env} | "
            f"{_cell(getattr(param, 'help', None))} |"
        )
    if not rows:
        return []
    return ["| argument / option | type | default | env | |", "|---|---|---|---|---|", *rows, ""]


def _anchor(path: tuple[str, ...]) -> str:
    return "-".join(path)


def reference_markdown(root: Any) -> str:
    """Markdown for docs/cli.md from the root command of the `stackfleet` app."""
    lines = [
        "# CLI reference",
        "",
        f"Generated from the command tree by `{REGENERATE}`: do not edit by hand",
        "(tests/unit/test_cli_reference.py checks that it is current). `-h` is `--help`",
        "everywhere; global options (`--db-url`, `--debug`) go before the command.",
        "",
        "## Commands",
        "",
    ]
    commands = list(walk_commands(root))
    for path, command in commands[1:]:
        indent = "  " * (len(path) - 2)
        summary = help_text(command).split("\n\n", 1)[0].replace("\n", " ")
        lines.append(f"{indent}- [`{' '.join(path)}`](#{_anchor(path)}) — {summary}")
    lines.append("")
    contexts: dict[tuple[str, ...], typer.Context] = {}
    for path, command in commands:
        ctx = typer.Context(command, info_name=path[-1], parent=contexts.get(path[:-1]))
        contexts[path] = ctx
        level = "#" * min(len(path) + 1, 4)
        lines += [f"{level} {' '.join(path)}", "", f"    {_usage(command, path)}", ""]
        if text := help_text(command):
            lines += [text, ""]
        lines += _params_table(command, ctx)
    return "\n".join(lines)
