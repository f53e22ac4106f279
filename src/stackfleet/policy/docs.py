"""The policy language reference, generated from the filter and action registries (their
docstrings and option schemas), so the documentation cannot drift from the code."""

from __future__ import annotations

from typing import Any

from stackfleet.actions import ACTIONS
from stackfleet.policy.filters import FILTERS
from stackfleet.policy.registry import doc_of, options_of
from stackfleet.policy.schema import Mode, RateLimit, Safety


def _options_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["No options.", ""]
    lines = ["| option | type | default | |", "|---|---|---|---|"]
    for row in rows:
        default = "required" if row["required"] else f"`{row['default']}`"
        if not row["required"] and row["default"] is None:
            default = "—"
        text = str(row["description"]).replace("|", "\\|")
        kind = str(row["type"]).replace("|", "\\|")
        lines.append(f"| `{row['name']}` | {kind} | {default} | {text} |")
    return lines + [""]


def reference_markdown() -> str:
    """Markdown for the filters, actions, mode and safety sections of docs/policies.md."""
    lines: list[str] = ["## Filters", ""]
    for name, filter_class in FILTERS:
        kinds = (
            ", ".join(f"`{k}`" for k in filter_class.kinds) if filter_class.kinds else "any kind"
        )
        lines += [f"### `{name}`", "", f"Applies to: {kinds}.", "", doc_of(filter_class), ""]
        lines += _options_table(options_of(filter_class))
    lines += ["## Actions", ""]
    for name, cls in ACTIONS.classes():
        kinds = ", ".join(f"`{k}`" for k in cls.kinds) if len(cls.kinds) < 6 else "any kind"
        flag = " Destructive." if cls.destructive else ""
        lines += [f"### `{name}` ({kinds})", "", doc_of(cls) + flag, ""]
        lines += _options_table(options_of(cls))
    lines += ["## Mode", "", doc_of(Mode), ""] + _options_table(options_of(Mode))
    lines += ["## Safety", "", doc_of(Safety), ""] + _options_table(options_of(Safety))
    lines += ["### Rate limit", "", doc_of(RateLimit), ""] + _options_table(options_of(RateLimit))
    return "\n".join(lines)
