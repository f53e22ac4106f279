"""Policies: YAML files of resource kind + filters + actions, validated before they run.

`load_files` returns validated `Policy` objects or raises `PolicyError` naming file,
line and field of every problem. Names are imported lazily: importing the loader
imports every action, which a command that only names a policy should not pay for."""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "PolicyError": "stackfleet.policy.errors",
    "Problem": "stackfleet.policy.errors",
    "load_files": "stackfleet.policy.loader",
    "load_text": "stackfleet.policy.loader",
    "pack_names": "stackfleet.policy.loader",
    "pack_path": "stackfleet.policy.loader",
    "Policy": "stackfleet.policy.schema",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'stackfleet.policy' has no attribute {name!r}")
