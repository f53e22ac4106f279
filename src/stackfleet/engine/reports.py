"""Reports built on policy runs: what the waste pack would reclaim and what that frees,
and per-rule compliance (pass/fail counts, offenders, trend over passes)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stackfleet.engine.policies import PolicyRunner, RunReport
from stackfleet.policy.schema import Policy
from stackfleet.store.db import Store
from stackfleet.store.trends import complete_pass_times, finding_spans

GIB = 1024**3


def freed_by(record: dict[str, Any]) -> dict[str, float]:
    """What reclaiming one resource frees, by unit."""
    kind = record.get("kind")
    if kind == "server":
        return {
            "vcpus": float(record.get("vcpus") or 0),
            "ram_gb": (record.get("ram_mb") or 0) / 1024,
            "disk_gb": float(record.get("disk_gb") or 0),
        }
    if kind == "volume":
        return {"volume_gb": float(record.get("size") or 0)}
    if kind == "floating_ip":
        return {"floating_ips": 1.0}
    if kind == "port":
        return {"ports": 1.0}
    if kind == "image":
        return {"image_gb": (record.get("size") or 0) / GIB}
    return {}


UNITS = ("vcpus", "ram_gb", "disk_gb", "volume_gb", "floating_ips", "ports", "image_gb")


def waste_rows(report: RunReport) -> list[dict[str, Any]]:
    """One row per policy: how many resources match and what they would free; plus a
    total row."""
    rows = []
    total: dict[str, Any] = {
        "policy": "total",
        "resource": "",
        "count": 0,
        **dict.fromkeys(UNITS, 0.0),
    }
    for item in report.policies:
        row: dict[str, Any] = {
            "policy": item.policy.name,
            "resource": item.policy.kind,
            "count": len(item.matched),
            **dict.fromkeys(UNITS, 0.0),
        }
        for record in item.matched:
            for unit, amount in freed_by(record).items():
                row[unit] += amount
        for unit in UNITS:
            row[unit] = round(row[unit], 1)
            total[unit] = round(total[unit] + row[unit], 1)
        total["count"] += row["count"]
        rows.append(row)
    return rows + [total]


def waste_report(
    store: Store, policies: Sequence[Policy], now: datetime | None = None
) -> list[dict[str, Any]]:
    """Run the waste policies as a dry-run (no findings, no actions) and sum what the
    matched resources would free."""
    report = PolicyRunner(store).run(policies, execute=False, record_findings=False, now=now)
    return waste_rows(report)


@dataclass
class RuleResult:
    """One compliance rule's outcome."""

    policy: str
    description: str
    severity: str
    resource: str
    checked: int
    failing: int
    offenders: list[dict[str, Any]] = field(default_factory=list)
    trend: list[tuple[str, int]] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    @property
    def passing(self) -> int:
        return max(self.checked - self.failing, 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "description": self.description,
            "severity": self.severity,
            "resource": self.resource,
            "checked": self.checked,
            "passing": self.passing,
            "failing": self.failing,
            "status": "fail" if self.failing else "pass",
            "offenders": self.offenders,
            "trend": [{"at": at, "open": count} for at, count in self.trend],
            "incomplete": self.incomplete,
        }


def compliance_report(
    store: Store,
    policies: Sequence[Policy],
    now: datetime | None = None,
    points: int = 10,
    record_findings: bool = True,
) -> list[RuleResult]:
    """Evaluate compliance rules (running no action; recording their findings unless
    `record_findings` is False, as for the API's GET) and describe each: resources
    checked, passing and failing, the offenders, and the number of open findings at
    each of the last `points` passes."""
    runner = PolicyRunner(store)
    report = runner.run(policies, execute=False, record_findings=record_findings, now=now)
    # findings of a pass are opened after it ends: count them as of the next pass (or
    # of this report, for the newest)
    ends = complete_pass_times(store, points)
    times = [*ends[1:], report.now] if ends else [report.now]
    results = []
    view = runner.last_view
    for item in report.policies:
        kind = item.policy.kind
        # resources of cloud regions whose listings could be trusted
        checked = sum(
            1
            for r in (view.records(kind) if view else [])
            if (r["cloud"], r["region"]) not in item.incomplete
        )
        results.append(
            RuleResult(
                policy=item.policy.name,
                description=item.policy.spec.description.strip(),
                severity=item.policy.spec.severity,
                resource=kind,
                checked=checked,
                failing=len(item.matched),
                offenders=[
                    {
                        "id": r["id"],
                        "name": r.get("name"),
                        "project_id": r.get("project_id"),
                        "cloud": r["cloud"],
                        "region": r["region"],
                    }
                    for r in item.matched
                ],
                trend=_trend(store, item.policy.name, times),
                incomplete=[
                    f"{cloud}/{region}: {', '.join(kinds)}"
                    for (cloud, region), kinds in sorted(item.incomplete.items())
                ],
            )
        )
    return results


def _trend(store: Store, policy: str, times: list[datetime]) -> list[tuple[str, int]]:
    """Open findings of `policy` as of each time."""
    spans = finding_spans(store, policy)
    trend = []
    for moment in times:
        count = sum(
            1
            for opened, resolved in spans
            if opened is not None and opened <= moment and (resolved is None or resolved > moment)
        )
        trend.append((moment.isoformat(), count))
    return trend


def compliance_html(results: Sequence[RuleResult], generated: datetime) -> str:
    """A standalone HTML page (no external assets) of a compliance report."""
    rows = []
    for result in results:
        total = max(result.checked, result.failing, 1)
        share = 100.0 * result.passing / total
        badge = "fail" if result.failing else "pass"
        offenders = "".join(
            f"<li>{html.escape(str(o.get('name') or ''))} <code>{html.escape(o['id'])}</code> "
            f"{html.escape(o['cloud'])}/{html.escape(o['region'])}</li>"
            for o in result.offenders[:50]
        )
        more = len(result.offenders) - 50
        if more > 0:
            offenders += f"<li>… and {more} more</li>"
        warning = (
            f"<p class='warn'>Incomplete pass: {html.escape('; '.join(result.incomplete))}</p>"
            if result.incomplete
            else ""
        )
        listed = (
            f"<details><summary>Offenders ({len(result.offenders)})</summary>"
            f"<ul>{offenders}</ul></details>"
            if result.offenders
            else ""
        )
        rows.append(
            f"""<section class="rule {badge}">
<h2><span class="badge {badge}">{badge.upper()}</span> {html.escape(result.policy)}
<small>{html.escape(result.resource)} · {html.escape(result.severity)}</small></h2>
<p>{html.escape(result.description)}</p>
<div class="bar"><div style="width:{share:.1f}%"></div></div>
<p>{result.passing} passing, {result.failing} failing of {result.checked} checked</p>
{_sparkline(result.trend)}
{warning}
{listed}
</section>"""
        )
    failing = sum(1 for r in results if r.failing)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>StackFleet compliance report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }}
.rule {{ border: 1px solid #ddd; border-radius: 6px; padding: 0 1rem; margin: 1rem 0; }}
.badge {{ font-size: .7rem; padding: .15rem .4rem; border-radius: 3px; color: #fff; }}
.badge.pass {{ background: #2e7d32; }} .badge.fail {{ background: #c62828; }}
small {{ color: #777; font-weight: normal; }} code {{ font-size: .8rem; }}
.bar {{ background: #f3c7c7; height: .5rem; border-radius: 3px; }}
.bar div {{ background: #66bb6a; height: 100%; border-radius: 3px; }}
.warn {{ color: #b26a00; }}
</style></head><body>
<h1>StackFleet compliance report</h1>
<p>Generated {generated:%Y-%m-%d %H:%M} UTC · {len(results)} rules · {failing} failing</p>
{"".join(rows)}
</body></html>
"""


def _sparkline(trend: list[tuple[str, int]]) -> str:
    if len(trend) < 2:
        return ""
    top = max(count for _at, count in trend) or 1
    width, height = 200, 30
    step = width / (len(trend) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - height * count / top:.1f}"
        for i, (_at, count) in enumerate(trend)
    )
    return (
        f"<p>Open findings over the last {len(trend)} passes: "
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<polyline fill="none" stroke="#c62828" stroke-width="2" points="{points}"/></svg> '
        f"now {trend[-1][1]}</p>"
    )
