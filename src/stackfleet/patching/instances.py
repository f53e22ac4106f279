"""VM patching by rebuild: which servers an instance campaign targets, and the guest
checks that judge a rebuilt server (no OpenStack calls here; the campaign's steps make
them, through the safety gate and the executor).

An instance campaign's unit is a server (its steps are keyed by the server id where a
host campaign's are keyed by the host name): pre-check (ACTIVE, guest checks pass: its
image is the last tested configuration) → snapshot → rebuild onto the new image →
health check (ACTIVE again, guest checks) → on failure a rollback rebuilds it back from
the snapshot, or from the image it ran healthy on when no snapshot was taken.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from stackfleet.patching.spec import GuestCheck, LoadedSpec, closest
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
