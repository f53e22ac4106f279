"""Editing oslo.config INI files in place: set and unset options, keeping every other
line (comments, order, blank lines) as it was, so a configuration change diffs as the
one line it is."""

from __future__ import annotations

import re

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_OPTION = re.compile(r"^\s*([^#;=\s][^=]*?)\s*=")


def edit_ini(
    text: str, set_options: dict[str, dict[str, str]], unset: dict[str, list[str]] | None = None
) -> str:
    """`text` with `set_options` (section -> option -> value) set and `unset` (section ->
    options) removed. A missing section is added at the end; an option is replaced where
    it is, or added at the end of its section."""
    unset = unset or {}
    lines = text.splitlines()
    pending = {s: dict(o) for s, o in set_options.items()}
    out: list[str] = []
    section: str | None = None

    def close(current: str | None) -> None:
        if current is None or current not in pending:
            return
        # before the section's trailing blank lines
        tail: list[str] = []
        while out and not out[-1].strip():
            tail.insert(0, out.pop())
        for key, value in pending.pop(current).items():
            out.append(f"{key} = {value}")
        out.extend(tail)

    for line in lines:
        header = _SECTION.match(line)
        if header:
            close(section)
            section = header.group(1).strip()
            out.append(line)
            continue
        option = _OPTION.match(line)
        if option and section is not None:
            key = option.group(1).strip()
            if key in unset.get(section, []):
                continue
            wanted = pending.get(section, {})
            if key in wanted:
                out.append(f"{key} = {wanted.pop(key)}")
                continue
        out.append(line)
    close(section)
    for name, options in pending.items():
        if not options:
            continue
        if out and out[-1].strip():
            out.append("")
        out.append(f"[{name}]")
        out.extend(f"{k} = {v}" for k, v in options.items())
    return "\n".join(out) + "\n"
