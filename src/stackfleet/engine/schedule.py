"""Periodic policies in the daemon: after each collection pass, run the policies whose
interval has passed (`mode: {type: periodic, interval: 1h}`; 0s: after every pass)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime

from stackfleet.engine.collect import PassResult
from stackfleet.engine.policies import PolicyRunner, RunReport
from stackfleet.policy.schema import Policy

log = logging.getLogger(__name__)


class PolicySchedule:
    """Decides which periodic policies are due and runs them (the daemon's `policies`
    job calls `run_due`; `after_pass` is a CollectionLoop hook for one-shot use)."""

    def __init__(self, runner: PolicyRunner, policies: Sequence[Policy], execute: bool) -> None:
        self.runner = runner
        self.policies = [p for p in policies if p.spec.enabled and p.spec.mode.type == "periodic"]
        self.execute = execute
        self.last_run: dict[str, datetime] = {}
        self._lock = threading.Lock()
        # held while policies run: event runs take it too (engine/event_processor.py), so two
        # runs never dispatch the same alerts at once
        self.run_lock = self._lock

    def due(self, now: datetime) -> list[Policy]:
        return [
            p
            for p in self.policies
            if p.name not in self.last_run or now - self.last_run[p.name] >= p.spec.mode.interval
        ]

    def run_due(self, now: datetime | None = None) -> RunReport | None:
        """Run the due policies once (None when none is due)."""
        with self._lock:
            now = now or datetime.now(UTC)
            due = self.due(now)
            if not due:
                return None
            report = self.runner.run(due, execute=self.execute, now=now)
            for policy in due:
                self.last_run[policy.name] = now
            for item in report.policies:
                summary = item.summary()
                log.info(
                    "policy %s: %d matched, findings +%d -%d, actions %s",
                    item.policy.name,
                    summary["matched"],
                    summary["findings_opened"],
                    summary["findings_resolved"],
                    summary["actions"],
                )
            return report

    def after_pass(self, result: PassResult) -> None:
        """CollectionLoop hook: a failed pass changes nothing worth evaluating."""
        if result.status == "failed":
            return
        try:
            self.run_due()
        except Exception:  # a policy bug must not stop collection
            log.exception("running policies after pass %s failed", result.pass_id)
