"""Report commands: `waste report` (what is reclaimable and what it frees) and
`compliance report` (per rule: pass/fail, offenders, trend; table, JSON or HTML)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from stackfleet.cli.context import state
from stackfleet.cli.output import Format, FormatOption, emit_rows
from stackfleet.cli.policy import sources
from stackfleet.core.errors import ConfigError

out = Console(highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `waste report` and `compliance report` to the root app."""
    waste = typer.Typer(help="Waste: what could be reclaimed (the waste pack).")
    waste.command("report")(waste_command)
    app.add_typer(waste, name="waste")
    compliance = typer.Typer(help="Compliance: security and HA rules, pass/fail per rule.")
    compliance.command("report")(compliance_command)
    app.add_typer(compliance, name="compliance")


def waste_command(
    ctx: typer.Context,
    files: Annotated[
        list[str] | None, typer.Argument(help="Policy files (default: the waste pack).")
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """What is reclaimable now and what reclaiming it frees.

    Runs the waste policies as a dry-run and sums vCPU, RAM, disk, volume GB, floating
    IPs, ports and image GB. Changes nothing."""
    from stackfleet.engine.reports import waste_report
    from stackfleet.policy import load_files

    names = sources(files, None if files else ["waste"])
    policies = [p for p in load_files(names) if p.spec.enabled]
    rows = waste_report(state(ctx).store(), policies)
    emit_rows(
        rows,
        [
            "policy",
            "resource",
            "count",
            "vcpus",
            "ram_gb",
            "disk_gb",
            "volume_gb",
            "floating_ips",
            "ports",
            "image_gb",
        ],
        fmt,
        headers=[
            "Policy",
            "Kind",
            "Count",
            "vCPU",
            "RAM GB",
            "Disk GB",
            "Volume GB",
            "Floating IPs",
            "Ports",
            "Image GB",
        ],
        title="Reclaimable waste",
    )


def compliance_command(
    ctx: typer.Context,
    files: Annotated[
        list[str] | None,
        typer.Argument(help="Policy files (default: the security and ha packs)."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a standalone HTML page here.")
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Per rule: checked, passing, failing, offenders, trend over passes.

    Evaluates the compliance rules (security and HA packs by default), recording
    findings; --html also writes a standalone page."""
    from stackfleet.engine.reports import compliance_html, compliance_report
    from stackfleet.policy import load_files

    names = sources(files, None if files else ["security", "ha"])
    policies = [p for p in load_files(names) if p.spec.enabled]
    results = compliance_report(state(ctx).store(), policies)
    if html is not None:
        try:
            html.write_text(compliance_html(results, datetime.now(UTC)), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {html}: {exc.strerror}") from exc
    data = [r.as_dict() for r in results]
    if fmt is Format.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        return
    rows = [
        {
            **row,
            "trend": " ".join(str(point["open"]) for point in row["trend"]),
            "offenders": ", ".join(str(o.get("name") or o["id"]) for o in row["offenders"][:5])
            + (" …" if len(row["offenders"]) > 5 else ""),
        }
        for row in data
    ]
    emit_rows(
        rows,
        [
            "status",
            "policy",
            "severity",
            "resource",
            "checked",
            "passing",
            "failing",
            "offenders",
            "trend",
        ],
        fmt,
        headers=[
            "",
            "Rule",
            "Severity",
            "Kind",
            "Checked",
            "Pass",
            "Fail",
            "Offenders",
            "Open over passes",
        ],
        title="Compliance",
    )
    if html is not None and fmt is Format.table:
        out.print(f"HTML report written to {escape(str(html))}")
