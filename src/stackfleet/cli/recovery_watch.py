"""Following a host's failure and recovery in the store as it happens, line by line:
detection, the recovery's steps as they end, its outcome (the demo's host-failure
scenario prints these)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from stackfleet.store import health_states, recoveries
from stackfleet.store.db import Store

FINAL = ("succeeded", "failed", "stopped", "dry-run")


def _step_line(step: dict[str, Any], names: dict[str, str]) -> str:
    name, status = step["name"], step["status"]
    target = names.get(step["target"], step["target"])
    details = step["details"] or {}
    if status == "failed":
        return f"{name} {target}: failed: {step['error']}"
    if status == "skipped":
        return f"{name} {target}: skipped: {step['error']}"
    if name == "fence":
        return f"fenced {target}: BMC power Off, read back"
    if name == "force-down":
        return f"compute service of {target} forced down and disabled"
    if name == "evacuate":
        return f"evacuation of {target} requested"
    if name == "start":
        return f"{target} started (it arrived SHUTOFF)"
    if name == "verify":
        return f"{target} {details.get('status')} on {details.get('host')}"
    return f"{name} {target}: {status}"


def watch_host_recovery(
    store: Store,
    cloud: str,
    region: str,
    host: str,
    failed_at: float,
    say: Callable[[str], None],
    stop: threading.Event,
    timeout: float = 300.0,
) -> dict[str, Any] | None:
    """Say each event of `host`'s failure and recovery after `failed_at` (time.time()),
    until the recovery ends, `stop` is set or `timeout` passes. Returns the recovery."""
    seen: set[tuple[str, str, str]] = set()
    detected = False
    recovery: dict[str, Any] | None = None

    def line(text: str) -> None:
        say(f"+{time.time() - failed_at:5.1f} s  {text}")

    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        if not detected:
            for verdict in health_states.load(store, "host"):
                if (verdict["cloud"], verdict["region"], verdict["subject"]) != (
                    cloud,
                    region,
                    host,
                ):
                    continue
                if verdict["failure"] == "host":
                    detected = True
                    line(f"detected: {host} {verdict['state']}: {verdict['reason']}")
        latest = recoveries.latest(store, cloud, region, "host", host)
        if latest is not None:
            recovery = recoveries.get(store, latest["id"])
            if ("recovery", str(recovery["id"]), "") not in seen:
                seen.add(("recovery", str(recovery["id"]), ""))
                line(f"recovery {recovery['id']} started ({recovery['trigger']})")
            names = {
                s["id"]: s.get("name") or s["id"]
                for s in (recovery["details"].get("servers") or [])
            }
            for step in recovery["steps"]:
                key = (step["name"], step["target"], step["status"])
                if step["status"] in ("running", "pending") or key in seen:
                    continue
                seen.add(key)
                line(_step_line(step, names))
            if recovery["status"] in FINAL:
                verified = [s for s in recovery["steps"] if s["name"] == "verify"]
                ok = sum(1 for s in verified if s["status"] == "done")
                line(
                    f"recovery {recovery['id']} {recovery['status']}: {ok} of "
                    f"{len(verified)} servers running again elsewhere"
                    + (f" ({recovery['error']})" if recovery["error"] else "")
                )
                return recovery
        stop.wait(0.3)
    return recovery
