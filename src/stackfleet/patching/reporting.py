"""Campaigns and configuration drift become findings and alerts through the policy
engine: each is recorded as a resource of a declared kind (`campaign`,
`configuration`), and the patching pack's rules (`patching/campaign-halted`,
`patching/config-drift`, or the operator's copies) are run over them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from stackfleet.engine.infra_monitor import pack_policies
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.policy.schema import Policy
from stackfleet.store.db import Store

log = logging.getLogger(__name__)

PACK = "patching"
HALTED = ("halted",)


def judge(
    store: Store, settings: Settings, kind: str, policies: Sequence[Policy] | None = None
) -> None:
    """Run the patching pack's rules over `kind`: findings open and resolve, alerts fire
    and are dispatched to the settings' receivers."""
    chosen = [p for p in (policies or pack_policies(PACK)) if p.kind == kind]
    if chosen:
        PolicyRunner(store, settings).run(chosen, now=datetime.now(UTC))


def report_campaign(
    store: Store,
    settings: Settings,
    campaign: dict[str, Any],
    failed_host: str | None = None,
) -> None:
    """Record where a campaign stands (a `campaign` resource) and judge it."""
    spec = campaign["spec"]
    now = datetime.now(UTC).isoformat()
    halted = campaign["status"] in HALTED
    store.upsert_resource(
        spec["cloud"],
        spec.get("region") or "",
        "campaign",
        {
            "id": campaign["name"],
            "name": campaign["name"],
            "project_id": None,
            "status": campaign["status"],
            "state": campaign["status"],
            "halted": halted,
            "failed_host": failed_host if halted else None,
            "error": campaign.get("error"),
            "reachable": True,
            "probed_at": now,
            "metrics": {},
        },
    )
    judge(store, settings, "campaign")


def record_configuration(
    store: Store,
    cloud: str,
    region: str,
    host: str,
    service: str,
    running: str | None,
    applied: str | None,
    drift: list[str],
    error: str | None = None,
) -> None:
    """Record one host's service as the drift check saw it (a `configuration`
    resource): drifted when a campaign applied a revision and what runs differs."""
    store.upsert_resource(
        cloud,
        region,
        "configuration",
        {
            "id": f"{host}/{service}",
            "name": f"{service}@{host}",
            "project_id": None,
            "status": "unreachable" if error else ("drifted" if drift else "ok"),
            "host": host,
            "service": service,
            "running_digest": running,
            "applied_digest": applied,
            "drifted": bool(drift) if error is None else None,
            "drift": ", ".join(drift) if drift else None,
            "reachable": error is None,
            "error": error,
            "probed_at": datetime.now(UTC).isoformat(),
            "metrics": {},
        },
    )
