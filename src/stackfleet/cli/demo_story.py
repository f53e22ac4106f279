"""What `stackfleet demo` tells after its first pass: the dashboard's URL first, then
what StackFleet found, grouped — waste it could reclaim, security and HA violations,
hardware and capacity warnings, open alerts — and the dry-run plan of the packs.

The findings come from running the built-in packs once as a dry-run (findings and
alerts are recorded, nothing changes in the cloud) and one remediation that needs an
operator's approval, so the dashboard's approvals queue has a plan to approve."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from stackfleet.engine.policies import RunReport
    from stackfleet.policy.schema import Policy
    from stackfleet.store import Store

# the packs the demo runs, and the security pack's remediation that waits for approval
DEMO_PACKS = ("waste", "security", "ha")
APPROVAL_POLICY = "remediate-ssh-open-to-world"
MAX_PLAN_LINES = 12


@dataclass
class Story:
    """The demo's findings, grouped as the story tells them."""

    waste: list[dict[str, Any]] = field(default_factory=list)
    violations: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    hardware: list[str] = field(default_factory=list)
    capacity: list[str] = field(default_factory=list)
    alerts: dict[str, int] = field(default_factory=dict)
    plan: list[str] = field(default_factory=list)
    planned: int = 0
    awaiting_approval: list[str] = field(default_factory=list)


def demo_policies() -> list[Policy]:
    """The policies of the demo's packs (the disabled approval-gated one included)."""
    from stackfleet.policy import load_files

    return load_files([f"pack:{name}" for name in DEMO_PACKS])


def run_demo_packs(store: Store) -> tuple[RunReport, RunReport]:
    """The packs once as a dry-run (recording findings and alerts), and the approval-
    gated remediation with execute on — which, needing approval, only queues its plans."""
    from stackfleet.engine.policies import PolicyRunner

    policies = demo_policies()
    enabled = [p for p in policies if p.spec.enabled]
    dry_run = PolicyRunner(store).run(enabled, execute=False)
    gated = [p for p in policies if p.name == APPROVAL_POLICY]
    queued = PolicyRunner(store).run(gated, execute=True, dispatch_alerts=False)
    return dry_run, queued


def gather(store: Store, dry_run: RunReport, queued: RunReport) -> Story:
    """Group what the first runs and sweeps found."""

    from stackfleet.alerts import operations
    from stackfleet.engine.capacity import capacity_report, load_fleet
    from stackfleet.engine.hardware import hardware_report
    from stackfleet.engine.reports import waste_rows
    from stackfleet.store import alerts as alert_store

    story = Story()
    story.waste = waste_rows(_only(dry_run, lambda r: r.policy.spec.labels.get("pack") == "waste"))
    for item in dry_run.policies:
        pack = str(item.policy.spec.labels.get("pack") or "")
        if pack in ("security", "ha") and item.matched:
            story.violations.setdefault(pack, []).append(
                (item.policy.name, item.policy.spec.severity, len(item.matched))
            )
    for status, findings in hardware_report(store):
        for finding in findings:
            story.hardware.append(f"{status.name}: {finding.severity} {finding.message}")
    for row in capacity_report(load_fleet(store)):
        verdict = row.get("n_plus_one") or {}
        place = f"{row['cloud']}/{row['region']}"
        if row["usable_hosts"] < row["hosts"]:
            story.capacity.append(
                f"{place}: {row['hosts'] - row['usable_hosts']} of {row['hosts']} hosts "
                "cannot take servers (down or disabled)"
            )
        if verdict and not verdict.get("survives"):
            story.capacity.append(f"{place}: does not survive losing its largest host (N+1)")
    now = datetime.now(UTC)
    firing = operations.with_state(store, alert_store.list_alerts(store, "firing", None), now)
    story.alerts = dict(Counter(str(a.get("severity") or "none") for a in firing))
    for item in dry_run.policies:
        if not item.candidates:
            continue
        story.planned += len(item.candidates)
        by_action = Counter(c.plan.action for c in item.candidates)
        actions = ", ".join(f"{n} {action}" for action, n in sorted(by_action.items()))
        story.plan.append(f"{item.policy.name}: {actions} — e.g. {item.candidates[0].plan.summary}")
    for item in queued.policies:
        for candidate in item.candidates:
            if candidate.verdict == "awaiting-approval":
                story.awaiting_approval.append(
                    f"#{candidate.action_id} {item.policy.name}: {candidate.plan.summary}"
                )
    return story


def _only(report: RunReport, keep: Any) -> RunReport:
    from dataclasses import replace

    return replace(report, policies=[p for p in report.policies if keep(p)])


def print_story(out: Console, story: Story, dashboard_url: str | None) -> None:
    """The demo's story on `out`: the dashboard first, then the findings by group."""
    if dashboard_url:
        out.print(f"\nDashboard  {dashboard_url}", highlight=False)
    out.print("\n[bold]What StackFleet found[/bold]")
    total = story.waste[-1] if story.waste else {}
    out.print(
        f"\n[bold]Waste it could reclaim[/bold]: {total.get('count', 0)} resources — "
        f"{total.get('vcpus', 0):g} vCPU, {total.get('ram_gb', 0):g} GB RAM, "
        f"{total.get('volume_gb', 0):g} GB of volumes, {total.get('floating_ips', 0):g} "
        "floating IPs",
        highlight=False,
    )
    for row in story.waste[:-1]:
        if row.get("count"):
            out.print(f"  {row['policy']}: {row['count']}", highlight=False)
    for pack, title in (("security", "Security violations"), ("ha", "HA violations")):
        rules = story.violations.get(pack, [])
        out.print(f"\n[bold]{title}[/bold]: {sum(n for _, _, n in rules)}", highlight=False)
        for name, severity, count in rules:
            out.print(f"  {name} ({severity}): {count}", highlight=False)
    warnings = story.hardware + story.capacity
    out.print(f"\n[bold]Hardware and capacity warnings[/bold]: {len(warnings)}", highlight=False)
    for line in warnings[:MAX_PLAN_LINES]:
        out.print(f"  {line}", highlight=False)
    alerts = ", ".join(f"{n} {severity}" for severity, n in sorted(story.alerts.items()))
    out.print(
        f"\n[bold]Open alerts[/bold]: {sum(story.alerts.values())}"
        + (f" ({alerts})" if alerts else ""),
        highlight=False,
    )
    out.print(
        f"\n[bold]Dry-run plan of the packs[/bold]: {story.planned} actions "
        "(nothing was changed; `stackfleet serve --execute-actions` would act)",
        highlight=False,
    )
    for line in story.plan:
        out.print(f"  {line}", highlight=False)
    if story.awaiting_approval:
        out.print(
            f"\n[bold]Waiting for an operator's approval[/bold]: {len(story.awaiting_approval)}"
            + (
                " (approve or reject on the dashboard's Actions page: an approved one is "
                "carried out at once on the simulated cloud)"
                if dashboard_url
                else ""
            ),
            highlight=False,
        )
        for line in story.awaiting_approval[:MAX_PLAN_LINES]:
            out.print(f"  {line}", highlight=False)
