"""The daemon's patching jobs (handed to `engine.daemon.Daemon` by the CLI):

campaigns  every running campaign that no process carries out (a campaign started
           with --detach, or one whose process died: its lease went stale), leader only
drift      the hosts campaigns changed, captured through each campaign's connector and
           compared with their last applied revision (patching/config-drift)"""

from __future__ import annotations

import logging
from datetime import timedelta

from stackfleet.engine.execute import Connections
from stackfleet.engine.scheduler import Job
from stackfleet.engine.settings import Settings
from stackfleet.patching.campaign import CampaignRunner, _loaded_of, _resolved_connector
from stackfleet.patching.connectors import connector_for
from stackfleet.patching.drift import check_drift
from stackfleet.patching.services import definitions
from stackfleet.store import patching as records
from stackfleet.store.db import Store

log = logging.getLogger(__name__)

CAMPAIGNS_TICK = 10.0
DRIFT_INTERVAL = timedelta(minutes=15)


def check_campaign_drift(store: Store, settings: Settings) -> None:
    """Drift of every host a finished campaign changed, through its connector."""
    done: set[tuple[str, str]] = set()
    for campaign in reversed(records.list_campaigns(store)):
        if campaign["status"] not in ("completed", "halted", "aborted"):
            continue
        loaded = _loaded_of(campaign)
        defs = definitions(loaded.spec.services)
        hosts = [h for batch in campaign["plan"].get("batches") or [] for h in batch]
        targets = [
            (h, s)
            for h in hosts
            for s in loaded.spec.targets.services
            if (h, s) not in done
            and records.latest_event(store, h, s, "applied", "rolled-back") is not None
        ]
        if not targets:
            continue
        done.update(targets)
        connector = connector_for(_resolved_connector(loaded))
        check_drift(
            store, settings, connector, targets, defs, loaded.spec.cloud, loaded.spec.region
        )


def campaign_jobs(store: Store, settings: Settings, config_files: list[str] | None) -> list[Job]:
    """The campaigns and drift jobs of the daemon."""
    runner = CampaignRunner(store, settings, Connections(config_files))
    return [
        Job(
            "campaigns",
            runner.run_due,
            CAMPAIGNS_TICK,
            leader_only=True,
            description="Running campaigns no process carries out (detached, or their "
            "process died): resumed from what the cloud and the hosts show.",
        ),
        Job(
            "drift",
            lambda: check_campaign_drift(store, settings),
            DRIFT_INTERVAL.total_seconds(),
            initial_delay=60.0,
            timeout=600.0,
            leader_only=True,
            description="Configuration drift of the hosts campaigns changed "
            "(patching/config-drift findings).",
        ),
    ]
