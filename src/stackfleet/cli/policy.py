"""Policy commands: validate and run policy files, list findings, show the filter and
action reference."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

import stackfleet.policy
from stackfleet.cli.context import state
from stackfleet.cli.options import SettingsOption
from stackfleet.cli.output import Format, FormatOption, emit_object, emit_rows
from stackfleet.core.errors import InvalidQueryError

# The policy loader imports every filter and action (and through them openstacksdk):
# the commands import it when they run.
if TYPE_CHECKING:
    from stackfleet.engine.gate import Candidate
    from stackfleet.engine.policies import RunReport
    from stackfleet.policy.schema import Policy

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def pack_names() -> list[str]:
    """The built-in packs, as `stackfleet.policy.pack_names()` lists them, for --pack's
    help (a test keeps the two equal) without importing the loader."""
    packs = Path(stackfleet.policy.__file__).parent / "packs"
    return sorted(p.stem for p in packs.glob("*.yaml"))


PackOption = Annotated[
    list[str] | None,
    typer.Option("--pack", help=f"A built-in pack (repeatable): {', '.join(pack_names())}."),
]

VERDICT_STYLE = {
    "planned": "cyan",
    "execute": "cyan",
    "succeeded": "green",
    "done": "dim",
    "excluded": "dim",
    "blocked": "yellow",
    "deferred": "yellow",
    "awaiting-approval": "magenta",
    "rejected": "dim",
    "skipped": "yellow",
    "unverified": "red",
    "failed": "bold red",
}


def register(app: typer.Typer) -> None:
    """Add `policy` and `findings` to the root app."""
    policy = typer.Typer(help="Validate and run policies (YAML: resource + filters + actions).")
    policy.command("validate")(validate_command)
    policy.command("run")(run_command)
    policy.command("filters")(filters_command)
    policy.command("actions")(actions_command)
    policy.command("reference")(reference_command)
    app.add_typer(policy, name="policy")
    findings = typer.Typer(help="What policies found: open and resolved findings.")
    findings.command("list")(findings_list)
    findings.command("show")(findings_show)
    app.add_typer(findings, name="findings")


def sources(files: list[str] | None, packs: list[str] | None) -> list[str]:
    names = list(files or []) + [f"pack:{p}" for p in packs or []]
    if not names:
        raise InvalidQueryError("give policy files, or --pack NAME for a built-in pack")
    return names


def validate_command(
    files: Annotated[list[str] | None, typer.Argument(help="Policy files.")] = None,
    pack: PackOption = None,
) -> None:
    """Check policy files against the schemas; errors name file, line and field."""
    from stackfleet.policy import load_files

    policies = load_files(sources(files, pack))
    for policy in policies:
        out.print(
            f"[green]ok[/] {escape(policy.name)} ({policy.kind}; "
            f"{len(policy.filters)} filters, {len(policy.actions)} actions) "
            f"[dim]{escape(policy.source)}:{policy.line}[/]"
        )
    out.print(f"{len(policies)} valid polic{'y' if len(policies) == 1 else 'ies'}")


def run_command(
    ctx: typer.Context,
    files: Annotated[list[str] | None, typer.Argument(help="Policy files.")] = None,
    pack: PackOption = None,
    execute: Annotated[
        bool, typer.Option("--execute", help="Carry out the actions (default: dry-run).")
    ] = False,
    only: Annotated[
        list[str] | None, typer.Option("--policy", help="Only these policies (repeatable).")
    ] = None,
    cloud: Annotated[str | None, typer.Option("--cloud", help="Only this cloud.")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Only this region.")] = None,
    no_findings: Annotated[
        bool, typer.Option("--no-findings", help="Do not record findings.")
    ] = False,
    include_disabled: Annotated[
        bool, typer.Option("--include-disabled", help="Run policies marked enabled: false.")
    ] = False,
    now: Annotated[
        str | None,
        typer.Option("--now", help="Evaluate as of this time (ISO 8601; for tests).", hidden=True),
    ] = None,
    config: SettingsOption = None,
    fmt: FormatOption = Format.table,
    event: Annotated[
        str | None,
        typer.Option("--event", help="Run the event policies this event type triggers."),
    ] = None,
    resource: Annotated[
        str | None, typer.Option("--resource", help="With --event: the resource's id.")
    ] = None,
) -> None:
    """Run policies over the inventory (dry-run unless --execute).

    Each match shows its planned change as a diff; --execute carries it out through
    the safety gate, with audit entries before and after. With --event TYPE --resource
    ID: re-read that resource from its cloud and run the event policies TYPE triggers,
    over it only."""
    from stackfleet.core.times import parse_time
    from stackfleet.engine.execute import Connections
    from stackfleet.engine.policies import PolicyRunner
    from stackfleet.engine.settings import load_settings
    from stackfleet.policy import load_files
    from stackfleet.policy.view import FleetView

    policies = select(load_files(sources(files, pack)), only, include_disabled)
    settings = load_settings(config)
    settings.apply_api_timeout()
    if event or resource:
        if not (event and resource):
            raise InvalidQueryError("--event and --resource go together")
        from stackfleet.cli.events import run_for_event

        run_for_event(ctx, policies, event, resource, cloud, region, execute, settings, fmt)
        return
    moment = None
    if now:
        moment = parse_time(now)
        if moment is None:
            raise InvalidQueryError(f"--now {now!r} is not an ISO 8601 time")
    store = state(ctx).store()
    runner = PolicyRunner(store, settings, Connections())
    view = FleetView(store, moment, cloud, region)
    report = runner.run(
        policies, execute=execute, record_findings=not no_findings, now=moment, view=view
    )
    if fmt in (Format.json, Format.yaml):
        data = report_dict(report)
        if fmt is Format.json:
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        else:
            import yaml

            sys.stdout.write(yaml.safe_dump(data, sort_keys=False))
    elif fmt in (Format.csv, Format.value):
        emit_rows(match_rows(report), MATCH_COLUMNS, fmt)
    else:
        print_report(report)
    failed = [
        c for p in report.policies for c in p.candidates if c.verdict in ("failed", "unverified")
    ]
    if failed:
        raise typer.Exit(1)


def select(policies: list[Policy], only: list[str] | None, include_disabled: bool) -> list[Policy]:
    if only:
        known = {p.name for p in policies}
        unknown = [name for name in only if name not in known]
        if unknown:
            raise InvalidQueryError(
                f"no policy named {', '.join(unknown)} in the files; "
                f"policies: {', '.join(sorted(known))}"
            )
        policies = [p for p in policies if p.name in only]
    if not include_disabled:
        policies = [p for p in policies if p.spec.enabled or (only and p.name in only)]
    return policies


def candidate_dict(candidate: Candidate) -> dict[str, Any]:
    record = candidate.record
    return {
        "policy": candidate.policy.name,
        "action": candidate.plan.action,
        "verdict": candidate.verdict,
        "reason": candidate.reason,
        "action_id": candidate.action_id,
        "finding_id": candidate.finding_id,
        "destructive": candidate.plan.destructive,
        "summary": candidate.plan.summary,
        "diff": candidate.plan.diff_lines(),
        "resource": {
            "kind": record["kind"],
            "id": record["id"],
            "name": record.get("name"),
            "cloud": record["cloud"],
            "region": record["region"],
            "project_id": record.get("project_id"),
        },
    }


MATCH_COLUMNS = ["policy", "kind", "id", "name", "cloud", "region", "actions"]


def match_rows(report: RunReport) -> list[dict[str, Any]]:
    """One row per matched resource, with each planned action and its verdict."""
    rows = []
    for policy_report in report.policies:
        verdicts: dict[tuple[str, str, str], list[str]] = {}
        for c in policy_report.candidates:
            key = (c.record["cloud"], c.record["region"], c.record["id"])
            verdicts.setdefault(key, []).append(f"{c.plan.action}: {c.verdict}")
        for r in policy_report.matched:
            rows.append(
                {
                    "policy": policy_report.policy.name,
                    "kind": r["kind"],
                    "id": r["id"],
                    "name": r.get("name"),
                    "cloud": r["cloud"],
                    "region": r["region"],
                    "actions": verdicts.get((r["cloud"], r["region"], r["id"]), []),
                }
            )
    return rows


def report_dict(report: RunReport) -> dict[str, Any]:
    return {
        "execute": report.execute,
        "now": report.now.isoformat(),
        "seconds": round(report.seconds, 3),
        "policies": [
            {
                **p.summary(),
                "matches": [
                    {
                        "kind": r["kind"],
                        "id": r["id"],
                        "name": r.get("name"),
                        "project_id": r.get("project_id"),
                        "cloud": r["cloud"],
                        "region": r["region"],
                    }
                    for r in p.matched
                ],
                "planned": [candidate_dict(c) for c in p.candidates],
                "skipped": [
                    {"id": r["id"], "name": r.get("name"), "action": s.action, "reason": s.reason}
                    for r, s in p.skipped
                ],
            }
            for p in report.policies
        ],
    }


def print_report(report: RunReport) -> None:
    mode = "[bold red]EXECUTE[/]" if report.execute else "[cyan]dry-run[/]"
    for policy_report in report.policies:
        policy = policy_report.policy
        findings = policy_report.findings
        found = (
            f", findings +{findings.opened} opened -{findings.resolved} resolved"
            if findings
            else ""
        )
        out.print(
            f"[bold]policy {escape(policy.name)}[/] ({policy.kind}): "
            f"{len(policy_report.matched)} matched{found}"
        )
        for (cloud, region), kinds in sorted(policy_report.incomplete.items()):
            out.print(
                f"  [yellow]! {escape(cloud)}/{escape(region)}: newest pass incomplete for "
                f"{', '.join(kinds)}: findings unchanged, destructive actions blocked[/]"
            )
        by_resource: dict[tuple[str, str, str], list[Candidate]] = {}
        for candidate in policy_report.candidates:
            r = candidate.record
            by_resource.setdefault((r["cloud"], r["region"], r["id"]), []).append(candidate)
        for candidates in by_resource.values():
            record = candidates[0].record
            name = record.get("name") or ""
            out.print(
                f"  {record['kind']} [bold]{escape(str(name))}[/] ({record['id']}) "
                f"[dim]{escape(record['cloud'])}/{escape(record['region'])}[/]"
            )
            for candidate in candidates:
                style = VERDICT_STYLE.get(candidate.verdict, "")
                number = f" #{candidate.action_id}" if candidate.action_id else ""
                out.print(
                    f"    {candidate.plan.action}{number}: [{style}]{candidate.verdict}[/] "
                    f"— {escape(candidate.reason)}"
                )
                for line in candidate.plan.diff_lines():
                    colour = "red" if line.startswith("-") else "green"
                    out.print(f"      [{colour}]{escape(line)}[/]")
        for record, skip in policy_report.skipped:
            out.print(
                f"  {record['kind']} {escape(str(record.get('name') or ''))} ({record['id']}): "
                f"{skip.action} [dim]not planned: {escape(skip.reason)}[/]"
            )
    total = sum(len(p.candidates) for p in report.policies)
    out.print(
        f"{mode}: {len(report.policies)} policies, "
        f"{sum(len(p.matched) for p in report.policies)} matches, {total} planned actions "
        f"in {report.seconds:.2f} s"
    )


def filters_command(fmt: FormatOption = Format.table) -> None:
    """Every filter type with the kinds it applies to."""
    from stackfleet.policy.filters import FILTERS
    from stackfleet.policy.registry import doc_of

    rows = [
        {
            "type": name,
            "kinds": ", ".join(cls.kinds) if cls.kinds else "any",
            "description": doc_of(cls).split("\n\n")[0].replace("\n", " "),
        }
        for name, cls in FILTERS
    ]
    emit_rows(rows, ["type", "kinds", "description"], fmt, headers=["Type", "Kinds", "Description"])


def actions_command(fmt: FormatOption = Format.table) -> None:
    """Every action with the kinds it applies to."""
    from stackfleet.actions import ACTIONS
    from stackfleet.policy.registry import doc_of

    rows = [
        {
            "type": name,
            "kinds": ", ".join(cls.kinds) if len(cls.kinds) < 6 else "any",
            "destructive": cls.destructive,
            "description": doc_of(cls).split("\n\n")[0].replace("\n", " "),
        }
        for name, cls in ACTIONS.classes()
    ]
    emit_rows(
        rows,
        ["type", "kinds", "destructive", "description"],
        fmt,
        headers=["Type", "Kinds", "Destructive", "Description"],
    )


def reference_command() -> None:
    """Print the policy language reference (Markdown), generated from the registries."""
    from stackfleet.policy.docs import reference_markdown

    sys.stdout.write(reference_markdown())


def findings_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option("--status", help="open or resolved (default: open).")
    ] = "open",
    policy: Annotated[str | None, typer.Option("--policy", help="Only this policy.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Open and resolved.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 100,
    fmt: FormatOption = Format.table,
) -> None:
    """Findings, newest first."""
    from stackfleet.store.findings import list_findings

    if status not in (None, "open", "resolved"):
        raise InvalidQueryError(f"--status {status!r}: use open or resolved")
    rows, total = list_findings(
        state(ctx).store(), None if all_ else status, policy, kind, limit=limit
    )
    emit_rows(
        rows,
        [
            "id",
            "policy",
            "status",
            "severity",
            "kind",
            "resource_name",
            "resource_id",
            "cloud",
            "region",
            "opened_at",
        ],
        fmt,
        headers=[
            "ID",
            "Policy",
            "Status",
            "Severity",
            "Kind",
            "Name",
            "Resource",
            "Cloud",
            "Region",
            "Opened",
        ],
        title=f"{len(rows)} of {total} findings",
    )


def findings_show(
    ctx: typer.Context,
    finding_id: Annotated[int, typer.Argument(help="Finding id.")],
    fmt: FormatOption = Format.table,
) -> None:
    """One finding."""
    from stackfleet.store.findings import get_finding

    emit_object(get_finding(state(ctx).store(), finding_id), fmt)
