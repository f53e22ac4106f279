"""Carrying out an approved policy action at once, for `stackfleet demo`.

An approval normally lets the policy's action run at the policy's next run with
--execute (`stackfleet serve`'s policy job, or `stackfleet policy run --execute`); the
demo's daemon only ever runs the packs as a dry-run, so an approval given in its
dashboard would never be carried out. The demo acts on a simulated cloud, where that
is safe, so it hands the API a `CarryOutApproved`: the approval route then runs the
action's policy with execute on, over that one resource — the same safety gate, re-read
before acting and audit entries as a scheduled run, nothing more.

Only the demo's own policies are carried out so: an action queued by any other policy
(a file run by hand with `stackfleet policy run --execute` against the demo's cloud)
waits for its policy's next run with --execute, as on `stackfleet serve`. The action
record names its policy but not the text that planned it, and running whatever file of
that name is at hand now could act on a rule other than the one approved; the API says
per action which applies (`on_approval`), so the page never claims otherwise."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from stackfleet.engine.execute import Connections
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.policy.schema import Policy
from stackfleet.store import Store

log = logging.getLogger(__name__)

# what GET /v1/actions says an approval does, in each mode
AT_NEXT_RUN = (
    "An approved action runs at its policy's next run with --execute "
    "(stackfleet serve's policy job, or stackfleet policy run --execute); "
    "until then nothing changes in the cloud."
)
AT_ONCE = (
    "Demo: an approved action of the demo's own packs is carried out at once against "
    "the simulated cloud (its policy runs with execute on over that one resource, "
    "through the safety gate); any other policy's action runs at that policy's next "
    "run with --execute, as its card says."
)
# an action's `on_approval`: what approving it does
ON_APPROVAL_AT_ONCE: Final = "at-once"
ON_APPROVAL_NEXT_RUN: Final = "next-run"


class CarryOutApproved:
    """Runs the policy of an action just approved, with execute on, over its resource."""

    describe = AT_ONCE

    def __init__(self, policies: Sequence[Policy], config_files: list[str] | None) -> None:
        self.policies = {p.name: p for p in policies}
        self.config_files = config_files

    def carries_out(self, action: dict[str, Any]) -> bool:
        """Whether approving `action` carries it out at once (its policy is the demo's)."""
        return action["policy"] in self.policies

    def __call__(self, store: Store, action: dict[str, Any], actor: str) -> None:
        policy = self.policies.get(action["policy"])
        if policy is None:
            # not one of the demo's policies (a policy run by hand): its next run acts
            log.info("action %s: policy %s is not the demo's", action["id"], action["policy"])
            return
        key = (action["cloud"], action["region"], action["kind"], action["resource_id"])
        settings = Settings(actor=actor)
        runner = PolicyRunner(store, settings, Connections(self.config_files))
        runner.run([policy], execute=True, only=[key], dispatch_alerts=False)
