"""The root of the command tree, built a branch at a time.

Typer turns every command's signature into click parameters before it runs anything, and
importing every command module costs as much again: for `stackfleet servers list` that
is work for fifty commands that do not run. The root group here imports the module of a
root command, and converts what that module registers, only when the command is looked
up. Its own `--help` lists the root commands from the index it is given (name, module,
first paragraph of help) without importing any of them; tests/unit/test_cli_imports.py
keeps that index equal to what the modules register.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from enum import Enum, EnumMeta
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class RootCommand:
    """A root command or group: the module whose `register(app)` adds it, and the first
    paragraph of its help as `stackfleet --help` lists it."""

    name: str
    module: str
    help: str
    hidden: bool = False


_REGISTERED: dict[str, typer.Typer] = {}


def registered(module_name: str) -> typer.Typer:
    """A Typer holding what the module's `register(app)` adds, registered once per
    process (some modules add their commands to a module-level sub-app)."""
    if module_name not in _REGISTERED:
        branch = typer.Typer()
        importlib.import_module(module_name).register(branch)
        _REGISTERED[module_name] = branch
    return _REGISTERED[module_name]


class LazyCommands(MutableMapping[str, Any]):
    """The root's commands by name, each built on first access with the others of its
    module. With `summaries` set, an unbuilt command is a stand-in carrying only its name
    and help: what the root's help needs."""

    def __init__(self, index: tuple[RootCommand, ...]) -> None:
        self.index = {entry.name: entry for entry in index}
        self.built: dict[str, Any] = {}
        self.summaries = False

    def _build(self, module_name: str) -> None:
        group = typer.main.get_group(registered(module_name))
        self.built.update(group.commands)

    def __getitem__(self, name: str) -> Any:
        if name not in self.built:
            entry = self.index.get(name)
            if entry is None:
                raise KeyError(name)
            if self.summaries:
                return TyperCommand(name, help=entry.help, hidden=entry.hidden)
            self._build(entry.module)
            if name not in self.built:
                raise KeyError(f"{entry.module}.register() did not add {name!r}")
        return self.built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        self.built.pop(name, None)
        self.index.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        yield from self.index
        yield from (name for name in self.built if name not in self.index)

    def __len__(self) -> int:
        return len(self.index.keys() | self.built.keys())

    def __contains__(self, name: object) -> bool:
        return name in self.index or name in self.built


class _DeferredCheck:
    """Typer checks each parameter's value with a pydantic TypeAdapter that it builds
    the first time the parameter is processed, unset or not: importing pydantic and
    building those schemas costs a listing about 80 ms of CPU. An unset value (None),
    the default the command itself declares, a plain string for a plain `str` option
    and the exact value of an Enum member (`-f json`) need no schema: they are what
    Typer's check would answer. Any other value gets Typer's own check, built then."""

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        if value is None:  # as Typer's RuntimeParam.coerce answers it
            return () if param.multiple or param.nargs == -1 else None
        annotation = param.type_descriptor.annotation
        if value is param.default and type(value) is annotation:
            return value
        if type(value) is str and param.nargs == 1 and not param.multiple:
            info = param.type_descriptor.parameter_info
            if annotation is str and getattr(info, "parser", None) is None:
                return value
            if isinstance(annotation, EnumMeta):
                member: Enum
                for member in annotation:
                    if member.value == value:
                        return member
        from typer._coercion import build_runtime_param

        param._runtime_param = build_runtime_param(param.type_descriptor)
        return param._runtime_param.coerce(value, param=param, ctx=ctx)


_DEFERRED = _DeferredCheck()


def _defer_typer_value_checks() -> None:
    """Make every Typer parameter (the help and completion options Typer adds at parse
    time included) start with the deferred check. Typer keeps the check it builds in
    `_runtime_param`; a Typer without `get_runtime_param` is left as it is (slower to
    start, as correct; tests/unit/test_cli_imports.py then says pydantic is back)."""
    param_class = getattr(typer.core, "_TyperParameter", None)
    original = getattr(param_class, "get_runtime_param", None)
    if param_class is None or original is None:
        return

    def get_runtime_param(self: Any) -> Any:
        return _DEFERRED if self._runtime_param is None else original(self)

    param_class.get_runtime_param = get_runtime_param


_defer_typer_value_checks()


class RootGroup(TyperGroup):
    """The `stackfleet` group: commands from a LazyCommands index (ROOT_COMMANDS)."""

    index: tuple[RootCommand, ...] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        lazy = LazyCommands(self.index)
        lazy.built.update(self.commands)  # any registered on the root app itself
        self.commands = lazy

    def format_help(self, ctx: Any, formatter: Any) -> None:
        commands = self.commands
        assert isinstance(commands, LazyCommands)
        commands.summaries = True
        try:
            super().format_help(ctx, formatter)
        finally:
            commands.summaries = False
