"""Arrows point one way (docs/architecture.md): every import in src/stackfleet, at any
depth (inside functions too), goes from a layer to the same package or a layer below;
the simulator imports nothing of the product; the product imports the simulator only
lazily, from the CLI commands that start it; only store/ builds SQL (the others may
catch sqlalchemy.exc errors)."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src"
PACKAGE = SRC / "stackfleet"

# top-level package -> rank; an import may only go to a lower rank (or its own package)
LAYERS = {
    "core": 1,
    "model": 2,
    "store": 3,
    "sources": 3,
    "policy": 4,
    "actions": 4,
    "alerts": 4,
    "engine": 5,
    "provision": 5,
    "patching": 5,
    "api": 6,
    "web": 6,
    "cli": 6,
    "osc": 6,
}
LAYER_NAMES = {1: "core", 2: "model", 3: "store/sources", 4: "policy/actions/alerts"}
LAYER_NAMES |= {5: "engine/provision/patching", 6: "interfaces (api/web/cli)"}
SIMULATOR = "simulator"
# stackfleet/__init__.py holds only the version: every layer may read it
ROOT_RANK = LAYERS["core"]

# the only imports between packages of one rank
SIBLING_ARROWS = {
    ("cli", "api"): "`stackfleet serve` runs the API",
    ("api", "web"): "the API's process serves the dashboard and the docs pages",
    ("policy", "actions"): "a policy names its actions; the registry validates them",
    ("patching", "engine"): "campaigns act through the engine's safety gate and executor",
    ("provision", "engine"): "provisioning runs its creates and deletes through the engine's "
    "safety gate, executor and capacity code",
}

# files that may import the simulator, inside a function (the CLI commands that start it)
SIMULATOR_LAUNCHERS = {"stackfleet/cli/simulator.py", "stackfleet/cli/hardware.py"}

# old homes of moved modules -> new home: an import of an old one is named with the new
MOVED = {
    "stackfleet.errors": "stackfleet.core.errors",
    "stackfleet.config": "stackfleet.core.config",
    "stackfleet.policy.times": "stackfleet.core.times",
    # "lifecycle" is the alert lifecycle's word; lease reclamation is a lease
    "stackfleet.actions.lifecycle": "stackfleet.actions.leases",
    "stackfleet.engine.lifecycle": "stackfleet.engine.leases",
    "stackfleet.store.lifecycles": "stackfleet.store.leases",
    # they also write
    "stackfleet.store.policy_reads": "stackfleet.store.evaluation",
    "stackfleet.store.usage_reads": "stackfleet.store.usage",
    "stackfleet.policy.events": "stackfleet.policy.event_patterns",
    "stackfleet.engine.events": "stackfleet.engine.event_processor",
}

# Crossings not fixed yet: (file, imported module) -> why it is tolerated. Keep short;
# test_allowed_crossings_are_still_needed fails once an entry is no longer used.
# Known crossings, each with its reason (none left: keep it that way).
ALLOWED: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    file: str  # relative to src/, e.g. stackfleet/api/app.py
    line: int
    target: str  # the imported module, absolute
    lazy: bool  # inside a function or under `if TYPE_CHECKING:`


@dataclass(frozen=True)
class Crossing:
    imp: Import
    why: str

    def __str__(self) -> str:
        return f"{self.imp.file}:{self.imp.line}: imports {self.imp.target}: {self.why}"


def module_name(file: str) -> str:
    parts = file.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = SRC / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(file: str, source: str) -> list[Import]:
    """Every stackfleet import in `source` (the module at `file`), relative ones made
    absolute, `from package import submodule` resolved to the submodule."""
    tree = ast.parse(source, filename=file)
    package = module_name(file).split(".")
    if not file.endswith("__init__.py"):
        package = package[:-1]
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            child_lazy = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                child_lazy = True
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import(file, child.lineno, alias.name, child_lazy))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[: len(package) - (child.level - 1)]
                    module = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    module = child.module or ""
                for alias in child.names:
                    sub = f"{module}.{alias.name}"
                    target = sub if is_module(sub) or sub in MOVED else module
                    found.append(Import(file, child.lineno, target, child_lazy))
            visit(child, child_lazy)

    visit(tree, False)
    unique = dict.fromkeys(found)  # `from x import a, b`: one import of x
    return [i for i in unique if top_level(i.target) in ("stackfleet", "sqlalchemy")]


def top_level(module: str) -> str:
    return module.split(".", 1)[0]


def top_package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def rank_of(module: str) -> int | None:
    top = top_package(module)
    if top is None or module in MOVED:
        return ROOT_RANK
    return LAYERS.get(top)


def crossing(imp: Import) -> Crossing | None:
    """Why `imp` runs against the layering, or None when it is allowed."""
    if top_level(imp.target) == "sqlalchemy":
        query_building = not imp.target.startswith("sqlalchemy.exc")
        if query_building and top_package(module_name(imp.file)) != "store":
            return Crossing(imp, "only store/ builds queries: call (or add) a store function")
        return None
    source, target = top_package(module_name(imp.file)), top_package(imp.target)
    if module_name(imp.file) in MOVED:  # an alias re-exports its new home
        return None if imp.target == MOVED[module_name(imp.file)] else Crossing(imp, "alias")
    if imp.target in MOVED:
        return Crossing(imp, f"moved: import {MOVED[imp.target]}")
    if source == SIMULATOR:
        if target != SIMULATOR:
            return Crossing(
                imp, "the simulator imports nothing of the product it checks; copy the piece"
            )
        return None
    if target == SIMULATOR:
        if imp.file not in SIMULATOR_LAUNCHERS:
            return Crossing(
                imp,
                "only the CLI commands that start the simulator may import it "
                f"({', '.join(sorted(SIMULATOR_LAUNCHERS))})",
            )
        if not imp.lazy:
            return Crossing(imp, "import the simulator inside the command that starts it")
        return None
    if source == target:
        return None
    here, there = rank_of(module_name(imp.file)), rank_of(imp.target)
    if here is None or there is None:
        unmapped = imp.file if here is None else imp.target
        return Crossing(imp, f"{unmapped} is in no layer: add its package to LAYERS")
    if there > here:
        return Crossing(
            imp, f"{LAYER_NAMES[here]} may not import {LAYER_NAMES[there]} (a higher layer)"
        )
    if there == here and (source, target) not in SIBLING_ARROWS:
        return Crossing(imp, f"{source} and {target} share a layer and do not import each other")
    return None


def all_imports() -> list[Import]:
    found: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        file = path.relative_to(SRC).as_posix()
        found += imports_of(file, path.read_text(encoding="utf-8"))
    return found


def crossings_in(file: str, source: str) -> list[str]:
    return [str(c) for imp in imports_of(file, source) if (c := crossing(imp)) is not None]


# -- the code as it is --------------------------------------------------------------------


def test_every_import_points_down_the_layers() -> None:
    crossings = [
        c
        for imp in all_imports()
        if (c := crossing(imp)) is not None and (imp.file, imp.target) not in ALLOWED
    ]
    assert not crossings, "imports against the layering (docs/architecture.md):\n" + "\n".join(
        map(str, crossings)
    )


def test_allowed_crossings_are_still_needed() -> None:
    used = {(i.file, i.target) for i in all_imports() if crossing(i) is not None}
    stale = sorted(set(ALLOWED) - used)
    assert not stale, f"fixed: remove from ALLOWED in {Path(__file__).name}: {stale}"


def test_every_package_is_in_a_layer() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages - {SIMULATOR} <= set(LAYERS), sorted(packages - {SIMULATOR} - set(LAYERS))


# -- the checker itself -----------------------------------------------------------------


def test_a_lower_layer_importing_a_higher_one_is_named_with_file_and_line() -> None:
    source = "import json\n\nfrom stackfleet.engine.gate import Gate\n"
    assert crossings_in("stackfleet/store/x.py", source) == [
        "stackfleet/store/x.py:3: imports stackfleet.engine.gate: "
        "store/sources may not import engine/provision/patching (a higher layer)"
    ]


def test_imports_inside_functions_count() -> None:
    source = "def f():\n    from stackfleet.api import deps\n"
    assert crossings_in("stackfleet/model/x.py", source) != []


def test_relative_imports_are_resolved() -> None:
    assert crossings_in("stackfleet/store/x.py", "from ..policy import view\n") != []
    assert crossings_in("stackfleet/store/x.py", "from . import schema\n") == []


def test_importing_a_lower_layer_is_allowed() -> None:
    source = "from stackfleet.core.times import parse_time\nfrom stackfleet.store import Store\n"
    assert crossings_in("stackfleet/engine/x.py", source) == []


def test_alerts_may_not_import_actions() -> None:
    source = "from stackfleet.actions.base import ActionError\n"
    assert crossings_in("stackfleet/alerts/x.py", source) != []


def test_only_the_store_builds_queries() -> None:
    assert crossings_in("stackfleet/api/x.py", "from sqlalchemy import select\n")
    assert not crossings_in("stackfleet/api/x.py", "from sqlalchemy.exc import SQLAlchemyError\n")
    assert not crossings_in("stackfleet/store/x.py", "from sqlalchemy import select\n")


def test_the_simulator_may_not_import_the_product() -> None:
    assert crossings_in("stackfleet/simulator/x.py", "from stackfleet.core import times\n")
    assert not crossings_in("stackfleet/simulator/x.py", "from stackfleet.simulator import state\n")


@pytest.mark.parametrize(
    ("file", "source", "allowed"),
    [
        ("stackfleet/cli/simulator.py", "def run():\n    import stackfleet.simulator.app\n", True),
        ("stackfleet/cli/simulator.py", "import stackfleet.simulator.app\n", False),
        ("stackfleet/api/app.py", "def run():\n    import stackfleet.simulator.app\n", False),
        ("stackfleet/engine/x.py", "from stackfleet.simulator import state\n", False),
    ],
)
def test_the_product_imports_the_simulator_only_lazily_from_its_launchers(
    file: str, source: str, allowed: bool
) -> None:
    assert (crossings_in(file, source) == []) is allowed


def test_moved_modules_are_imported_from_their_new_home() -> None:
    [found] = crossings_in("stackfleet/engine/x.py", "from stackfleet.errors import ConfigError\n")
    assert found.endswith("moved: import stackfleet.core.errors")


def test_an_old_module_imported_from_its_package_is_named_too() -> None:
    [found] = crossings_in("stackfleet/api/x.py", "from stackfleet.store import lifecycles\n")
    assert found.endswith("moved: import stackfleet.store.leases")


# -- names ------------------------------------------------------------------------------


def module_files() -> list[str]:
    return [p.relative_to(PACKAGE).as_posix() for p in sorted(PACKAGE.rglob("*.py"))]


def test_lifecycle_names_only_the_alert_lifecycle() -> None:
    """Lease reclamation is a lease (docs/architecture.md, "One meaning per word");
    migrations keep their history's names."""
    named = [
        f
        for f in module_files()
        if "lifecycle" in f.rsplit("/", 1)[-1] and not f.startswith("store/migrations/")
    ]
    assert named == ["alerts/lifecycle.py"]


def test_store_modules_are_named_after_what_they_store_not_reads() -> None:
    """A store module that only reads today may write tomorrow: name it after its data."""
    assert not [f for f in module_files() if f.startswith("store/") and f.endswith("_reads.py")]
