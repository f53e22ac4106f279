"""Actions on Nova compute services: force a fenced host's service down and disable it
(`force-down-service`), and restart a dead service through a configured hook
(`restart-service`)."""

from __future__ import annotations

import subprocess
import time
from typing import Any, Literal

from pydantic import Field

from stackfleet.actions.base import (
    ACTIONS,
    LIVE_READERS,
    Action,
    ActionContext,
    ActionError,
    Change,
    Outcome,
    Plan,
    Record,
    label,
    wait_for,
)
from stackfleet.core.times import parse_time

COMPUTE_SERVICE = ("compute_service",)
# PUT /os-services/{id} with a JSON body (forced_down, status, disabled_reason together)
SERVICE_MICROVERSION = "2.53"


def read_service(ctx: ActionContext, record: Record) -> dict[str, Any] | None:
    """The compute service's live state (by host and binary); None when it is gone."""
    conn = ctx.connection(record["cloud"], record["region"])
    try:
        response = conn.compute.get(
            "/os-services",
            params={"host": record.get("host"), "binary": record.get("binary")},
            microversion=SERVICE_MICROVERSION,
        )
    except Exception as exc:  # keystoneauth/openstacksdk errors of every kind
        raise ActionError(f"listing the compute services failed: {exc}") from exc
    if response.status_code >= 400:
        raise ActionError(
            "listing the compute services failed: "
            f"HTTP {response.status_code} {response.text[:200]}"
        )
    for service in response.json().get("services") or []:
        if service.get("host") == record.get("host") and service.get("binary") == record.get(
            "binary"
        ):
            updated = parse_time(service.get("updated_at"))
            return {
                "id": service.get("id"),
                "state": service.get("state"),
                "enabled": service.get("status"),
                "forced_down": bool(service.get("forced_down")),
                "disabled_reason": service.get("disabled_reason"),
                "updated_at": service.get("updated_at"),
                "heartbeat": updated.timestamp() if updated else None,
            }
    return None


LIVE_READERS["compute_service"] = read_service


def update_service(ctx: ActionContext, record: Record, body: dict[str, Any]) -> dict[str, Any]:
    """PUT /os-services/{id} at 2.53; the updated service."""
    conn = ctx.connection(record["cloud"], record["region"])
    try:
        response = conn.compute.put(
            f"/os-services/{record['id']}", json=body, microversion=SERVICE_MICROVERSION
        )
    except Exception as exc:
        raise ActionError(f"updating {label(record)} failed: {exc}") from exc
    if response.status_code >= 400:
        raise ActionError(
            f"updating {label(record)} failed: HTTP {response.status_code} {response.text[:200]}"
        )
    service: dict[str, Any] = response.json().get("service") or {}
    return service


@ACTIONS.register("force-down-service")
class ForceDownService(Action):
    """Force a compute service down and disable it with a reason (Nova 2.53
    PUT /os-services/{id}). Only once its host is fenced: a forced-down service's host
    is one Nova may evacuate from at once, so the host must really be off. The reason
    says why (and, during a recovery, how far it got)."""

    kinds = COMPUTE_SERVICE
    destructive = True
    type: Literal["force-down-service"] = "force-down-service"
    reason: str = Field(
        default="stackfleet: host failure",
        min_length=1,
        max_length=255,
        description="The disabled reason.",
    )

    def plan(self, record: Record) -> Plan | None:
        if record.get("forced_down") and record.get("enabled") == "disabled":
            return None
        return self.make_plan(
            record,
            f"force {label(record)} down and disable it",
            Change("forced_down", bool(record.get("forced_down")), True),
            Change("enabled", record.get("enabled"), "disabled"),
            Change("disabled_reason", record.get("disabled_reason"), self.reason),
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return read_service(ctx, record)

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        service = update_service(
            ctx,
            record,
            {"forced_down": True, "status": "disabled", "disabled_reason": self.reason},
        )
        return {"forced_down": service.get("forced_down"), "status": service.get("status")}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        def check() -> tuple[bool, dict[str, Any]]:
            state = read_service(ctx, record) or {}
            return bool(state.get("forced_down")) and state.get("enabled") == "disabled", state

        return wait_for(ctx, check, f"force {label(record)} down")


def render_command(argv: list[str], values: dict[str, str]) -> list[str]:
    """`argv` with {host}, {binary}... replaced (no shell: each item stays one argument)."""
    out = []
    for item in argv:
        for key, value in values.items():
            item = item.replace("{" + key + "}", value)
        out.append(item)
    return out


def run_hook(argv: list[str], timeout: float) -> dict[str, Any]:
    """Run a configured command; ActionError when it cannot start, times out or fails."""
    try:
        done = subprocess.run(  # noqa: S603 - the operator's own configured command
            argv, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise ActionError(f"hook {argv[0]!r} not found") from exc
    except subprocess.TimeoutExpired as exc:
        raise ActionError(f"hook {' '.join(argv)} did not finish within {timeout:g} s") from exc
    result = {
        "command": argv,
        "exit_status": done.returncode,
        "output": (done.stdout + done.stderr)[-500:],
    }
    if done.returncode != 0:
        raise ActionError(
            f"hook {' '.join(argv)} exited with status {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-200:]}"
        )
    return result


@ACTIONS.register("restart-service")
class RestartService(Action):
    """Restart a dead compute service on a host that is otherwise healthy, through a
    configured hook command (e.g. `ssh {host} systemctl restart nova-compute`), then
    wait until the service heartbeats again. The instances on the host keep running:
    this is what a process failure calls for, never an evacuation."""

    kinds = COMPUTE_SERVICE
    type: Literal["restart-service"] = "restart-service"
    command: list[str] = Field(min_length=1, description="argv; {host} and {binary} replaced.")
    timeout: float = Field(default=60.0, gt=0, description="Seconds the command may take.")

    def plan(self, record: Record) -> Plan | None:
        return self.make_plan(
            record,
            f"restart {label(record)} with {' '.join(self.command)}",
            Change("state", record.get("state"), "up"),
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return read_service(ctx, record)

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        argv = render_command(
            self.command,
            {"host": str(record.get("host") or ""), "binary": str(record.get("binary") or "")},
        )
        result = run_hook(argv, self.timeout)
        result["started_at"] = time.time()
        return result

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        started = float(result.get("started_at") or time.time())

        def check() -> tuple[bool, dict[str, Any]]:
            state = read_service(ctx, record) or {}
            heartbeat = state.get("heartbeat")
            fresh = heartbeat is not None and heartbeat >= started - 1.0
            return state.get("state") == "up" and fresh and not state.get("forced_down"), state

        outcome = wait_for(ctx, check, f"restart {label(record)}")
        outcome.result = result
        return outcome
