"""VM patching by rebuild: which servers an instance campaign targets, and the guest
checks that judge a rebuilt server, and the steps of an instance campaign (their changes
made through the safety gate and the executor, see step_context.py).

An instance campaign's unit is a server (its steps are keyed by the server id where a
host campaign's are keyed by the host name): pre-check (ACTIVE, guest checks pass: its
image is the last tested configuration) → snapshot → rebuild onto the new image →
health check (ACTIVE again, guest checks) → on failure a rollback rebuilds it back from
the snapshot, or from the image it ran healthy on when no snapshot was taken.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime
from typing import Any

from stackfleet.actions.base import ActionError, Record
from stackfleet.actions.compute import RebuildServer, SnapshotServer
from stackfleet.actions.maintenance import api
from stackfleet.core.times import parse_time
from stackfleet.patching.sla import WorkloadSla
from stackfleet.patching.spec import GuestCheck, LoadedSpec, closest
from stackfleet.patching.step_context import StepFailed, _policy_name
from stackfleet.policy.errors import Problem

INSTANCE_STEPS = ("pre-check", "snapshot", "rebuild", "health-check")


def instance_steps(snapshot: bool) -> list[str]:
    return [s for s in INSTANCE_STEPS if snapshot or s != "snapshot"]


def select_instances(
    loaded: LoadedSpec, servers: list[dict[str, Any]], groups: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[Problem]]:
    """The servers the spec's `targets.instances` selects (every condition given must
    hold), in name order, from the newest collection pass; problems for names and
    server groups that do not exist, or a selector that matches nothing."""
    wanted = loaded.spec.targets.instances
    assert wanted is not None
    problems: list[Problem] = []
    by_ref = {str(s["id"]): s for s in servers} | {str(s.get("name")): s for s in servers}
    known = sorted(str(s.get("name")) for s in servers)
    for index, name in enumerate(wanted.names):
        if name not in by_ref:
            problems.append(
                loaded.problem(
                    ("targets", "instances", "names", index),
                    f"unknown server {name!r}{closest(name, known)}",
                )
            )
    members: set[str] | None = None
    if wanted.server_group:
        found = [g for g in groups if wanted.server_group in (g.get("id"), g.get("name"))]
        if not found:
            names = sorted(str(g.get("name")) for g in groups)
            problems.append(
                loaded.problem(
                    ("targets", "instances", "server_group"),
                    f"unknown server group {wanted.server_group!r}"
                    f"{closest(wanted.server_group, names)}",
                )
            )
        members = {str(m) for g in found for m in g.get("members") or []}
    named = {str(by_ref[n]["id"]) for n in wanted.names if n in by_ref}
    chosen = [
        s
        for s in servers
        if (not wanted.names or str(s["id"]) in named)
        and (members is None or str(s["id"]) in members)
        and all(tag in (s.get("tags") or []) for tag in wanted.tags)
        and all((s.get("metadata") or {}).get(k) == v for k, v in wanted.metadata.items())
    ]
    chosen.sort(key=lambda s: (str(s.get("name")), str(s["id"])))
    if not chosen and not problems:
        problems.append(
            loaded.problem(
                ("targets", "instances"),
                "no server matches the targets (servers are read from the newest collection pass)",
            )
        )
    return chosen, problems


def guest_check_problems(
    checks: list[GuestCheck], server: dict[str, Any], image_id: str | None
) -> list[str]:
    """Run each guest check on this machine against `server`; what failed."""
    addresses = server.get("addresses") or []
    env = dict(
        os.environ,
        STACKFLEET_SERVER_ID=str(server["id"]),
        STACKFLEET_SERVER_NAME=str(server.get("name") or ""),
        STACKFLEET_SERVER_ADDRESS=str(addresses[0]) if addresses else "",
        STACKFLEET_IMAGE_ID=str(image_id or ""),
    )
    problems = []
    for check in checks:
        try:
            done = subprocess.run(
                ["/bin/sh", "-c", check.command],
                env=env,
                capture_output=True,
                text=True,
                timeout=check.timeout.total_seconds(),
                check=False,
            )
        except subprocess.TimeoutExpired:
            problems.append(f"guest check `{check.command}` timed out after {check.timeout}")
            continue
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            problems.append(
                f"guest check `{check.command}` failed (exit {done.returncode})"
                + (f": {' / '.join(tail)}" if tail else "")
            )
    return problems


class InstanceSteps(WorkloadSla):
    """An instance campaign's steps: pre-check, snapshot, rebuild, health check, and
    the rebuild back of its rollback."""

    def _server(self, server_id: str) -> Record:
        live = self._read_server(server_id)
        if live is None:
            raise StepFailed(f"server {server_id} no longer exists")
        return live

    def _new_image(self) -> str:
        """The id of the image the servers are rebuilt onto (the spec names it)."""
        if not self._image_id:
            try:
                self._image_id = self.gates._image(str(self.spec.steps.apply[0].image))
            except ActionError as exc:
                raise StepFailed(str(exc)) from exc
        return self._image_id

    def _rebuild_timeout(self) -> float:
        return self.spec.steps.rebuild.timeout.total_seconds()

    def _wait_settled(self, server_id: str) -> Record:
        """The server once no task is under way (ACTIVE, ERROR...), or as it is when the
        rebuild timeout has passed."""
        deadline = time.monotonic() + self._rebuild_timeout()
        while True:
            live = self._server(server_id)
            if not live.get("task_state") and live.get("status") not in ("BUILD", "REBUILD"):
                return live
            if time.monotonic() > deadline:
                return live
            time.sleep(self.poll)

    def _instance_pre_check(self, server_id: str) -> dict[str, Any]:
        """The untouched server: ACTIVE, booted from an image, its guest checks pass —
        its image becomes the tested configuration a rollback returns to."""
        live = self._server(server_id)
        name = _label(live)
        if live.get("status") != "ACTIVE" or live.get("task_state"):
            raise StepFailed(
                f"pre-check of server {name} failed (nothing was changed): it is "
                f"{live.get('status')}"
                + (f" ({live['task_state']})" if live.get("task_state") else "")
                + ", not ACTIVE"
            )
        if not live.get("image_id"):
            raise StepFailed(
                f"pre-check of server {name} failed (nothing was changed): booted from a "
                "volume, it has no image to rebuild"
            )
        problems = guest_check_problems(self.spec.steps.rebuild.checks, live, str(live["image_id"]))
        if problems:
            raise StepFailed(
                f"pre-check of server {name} failed (nothing was changed): " + "; ".join(problems)
            )
        return {"name": live.get("name"), "tested_image": live["image_id"]}

    def _snapshot(self, server_id: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        if resumed:
            # interrupted (killed) while the snapshot was under way: the image it began
            # is in Glance; use it rather than take a second one and leave it behind
            found = self._interrupted_snapshot(server_id, detail)
            if found:
                return {"snapshot": found, "resumed": "snapshot taken before the interruption"}
        live = self._server(server_id)
        key = f"{self.campaign['id']}/{server_id}/snapshot/{detail['attempt']}"
        verdict, reason, result = self._act_result(
            SnapshotServer(), live, key, timeout=self._rebuild_timeout()
        )
        image = result.get("snapshot_image_id")
        if verdict not in ("succeeded", "done") or not image:
            raise StepFailed(f"snapshot of server {_label(live)}: {verdict}: {reason}")
        return {"snapshot": image}

    def _interrupted_snapshot(self, server_id: str, detail: dict[str, Any]) -> str:
        """The snapshot an interrupted snapshot step took of the server ("" when none
        became active): Glance's images with the server as their `stackfleet_source`
        (see actions/compute.take_snapshot), created since the step began. Waits for a
        snapshot still under way; the newest active one is used; one that never became
        active (killed, or still queued after the wait) is deleted, audited. An active
        image is never deleted here: it may be another step's, of an earlier campaign."""
        self._wait_settled(server_id)  # the image_snapshot task ends (or times out)
        since = datetime.fromisoformat(detail["started_at"]).replace(microsecond=0)
        images = [
            image
            for image in api(
                f"listing the snapshots of server {server_id}",
                self.conn.image.get,
                f"/images?stackfleet_source={server_id}&limit=1000",
            ).json()["images"]
            if (created := parse_time(image.get("created_at"))) is not None and created >= since
        ]
        images.sort(key=lambda image: str(image.get("created_at")))
        active = [i for i in images if i.get("status") == "active"]
        kept = str(active[-1]["id"]) if active else ""
        for image in images:
            if image.get("status") == "active":
                continue
            api(
                f"deleting snapshot {image['id']}",
                self.conn.image.delete,
                f"/images/{image['id']}",
                missing_ok=True,
            )
            self.runner.audit.append(
                "campaign.snapshot.deleted",
                {
                    "server": server_id,
                    "image": image["id"],
                    "status": image.get("status"),
                    "why": "left by an interrupted snapshot step",
                },
                actor=self.runner.actor,
                policy=_policy_name(self.name),
                target=f"{self.spec.cloud}/{self.region}/image/{image['id']}",
            )
        return kept

    def _rebuild(self, server_id: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        image = self._new_image()
        # resumed: a rebuild under way when the process died ends first (Nova refuses a
        # second one meanwhile), then a server on the new image was rebuilt already
        live = self._wait_settled(server_id) if resumed else self._server(server_id)
        previous = live.get("image_id")
        if resumed and previous == image and not live.get("task_state"):
            return {"image": image, "resumed": "rebuilt already"}
        sla = self._sla_workloads()
        with self._workload_locks(server_id, sla):
            # the member is down while it rebuilds: never below k of n
            breach = self._sla_breach(server_id, sla)
            if breach:
                raise StepFailed(
                    f"not rebuilding server {_label(live)} (nothing was changed): {breach}"
                )
            key = f"{self.campaign['id']}/{server_id}/rebuild/{detail['attempt']}"
            verdict, reason = self._act(
                RebuildServer(image=image), live, key, timeout=self._rebuild_timeout()
            )
        if verdict not in ("succeeded", "done"):
            raise StepFailed(f"rebuild of server {_label(live)} onto {image}: {verdict}: {reason}")
        return {"image": image, "previous_image": previous}

    def _health_check(
        self, server_id: str, detail: dict[str, Any], resumed: bool
    ) -> dict[str, Any]:
        image = self._new_image()
        live = self._wait_settled(server_id)
        problems = []
        if live.get("status") != "ACTIVE":
            problems.append(f"it is {live.get('status')}, not ACTIVE")
        if live.get("image_id") != image:
            problems.append(f"it runs image {live.get('image_id')}, not {image}")
        if not problems:
            problems = guest_check_problems(self.spec.steps.rebuild.checks, live, image)
        if problems:
            raise StepFailed(
                f"the health check of server {_label(live)} failed: " + "; ".join(problems)
            )
        return {"tested_image": image}

    def _rebuild_back(self, server_id: str, detail: dict[str, Any]) -> dict[str, Any]:
        """Rebuild a server back from its snapshot (or, without one, onto the image it
        ran healthy on), then check it again; nothing to do when it was never rebuilt."""
        tested = self._detail(server_id, "pre-check").get("tested_image")
        snapshot = self._detail(server_id, "snapshot").get("snapshot")
        if not tested:
            raise StepFailed(f"server {server_id} has no tested image to roll back to")
        live = self._wait_settled(server_id)
        if live.get("image_id") in (tested, snapshot) and live.get("status") == "ACTIVE":
            return {"restored": live.get("image_id"), "rebuilt": False}
        target = str(snapshot or tested)
        key = f"{self.campaign['id']}/{server_id}/rollback/{time.time_ns()}"
        verdict, reason = self._act(
            RebuildServer(image=target), live, key, timeout=self._rebuild_timeout()
        )
        if verdict not in ("succeeded", "done"):
            raise StepFailed(
                f"rebuilding server {_label(live)} back onto {target}: {verdict}: {reason}"
            )
        after = self._wait_settled(server_id)
        source = "snapshot" if snapshot else "tested image"
        self.runner.audit.append(
            "campaign.rolled-back",
            {
                "server": server_id,
                "before": live.get("image_id"),
                "after": target,
                "from": source,
                "tested_image": tested,
            },
            actor=self.runner.actor,
            policy=_policy_name(self.name),
            target=f"{self.spec.cloud}/{self.region}/server/{server_id}",
        )
        problems = [] if after.get("status") == "ACTIVE" else [f"it is {after.get('status')}"]
        problems = problems or guest_check_problems(self.spec.steps.rebuild.checks, after, target)
        if problems:
            raise StepFailed(
                f"server {_label(after)} rebuilt back from its {source} but its check still "
                "fails: " + "; ".join(problems)
            )
        return {"restored": target, "from": source}


def _label(server: Record) -> str:
    return f"{server.get('name') or server['id']} ({server['id']})"
