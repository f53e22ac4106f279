"""Fencing: power a failed compute host off before anything is evacuated from it, and
confirm it by reading the power state back. Without a confirmed fence a "dead" host
may still be running its instances (a hung network, a wedged hypervisor process), and
evacuating them would start second copies writing to the same volumes.

Three ways, chosen by `method`:
- `redfish`: ComputerSystem.Reset ForceOff through the host's BMC in the BMC map (sushy),
  confirmed by reading PowerState Off;
- `ironic`: Ironic's power off of the node named like the host, confirmed by the node's
  power_state;
- `command`: a configured command (an IPMI tool, a PDU's CLI), confirmed by the BMC map's
  reading when the host is in it, else by `confirm_command` exiting 0."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from stackfleet.actions.base import (
    ACTIONS,
    Action,
    ActionContext,
    ActionError,
    Change,
    Outcome,
    Plan,
    Problems,
    Record,
    call,
    label,
    wait_for,
)
from stackfleet.actions.compute_service import render_command, run_hook
from stackfleet.core.errors import ConfigError
from stackfleet.sources.redfish.bmc_map import BmcTarget, load_bmc_map
from stackfleet.sources.redfish.client import open_system, read_power

HOSTS = ("hypervisor",)


def bmc_for(map_path: str | None, record: Record) -> BmcTarget | None:
    """The BMC map's target for a hypervisor record (by host or hypervisor hostname)."""
    if not map_path:
        return None
    names = {
        str(n)
        for n in (record.get("host"), record.get("hypervisor_hostname"), record.get("name"))
        if n
    }
    short = {n.split(".", 1)[0] for n in names}
    for target in load_bmc_map(map_path).targets:
        if target.name in names or target.name in short:
            return target
    return None


@ACTIONS.register("fence")
class FenceHost(Action):
    """Power a compute host off (see the module doc) and confirm it is off. A host
    already off is left alone (the plan is empty): fencing is never done twice."""

    kinds = HOSTS
    destructive = True
    type: Literal["fence"] = "fence"
    method: Literal["redfish", "ironic", "command"] = Field(
        default="redfish", description="redfish, ironic or command."
    )
    bmc_map: str | None = Field(default=None, description="BMC map file (method redfish).")
    command: list[str] = Field(default_factory=list, description="method command: argv.")
    confirm_command: list[str] = Field(
        default_factory=list, description="method command: argv exiting 0 once off."
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds a command may take.")

    def check(self, kind: str) -> Problems:
        problems: Problems = []
        if self.method == "redfish" and not self.bmc_map:
            problems.append((("bmc_map",), "method redfish needs the BMC map (bmc_map)"))
        if self.method == "command" and not self.command:
            problems.append((("command",), "method command needs `command`"))
        if self.bmc_map and not Path(self.bmc_map).is_file():
            problems.append((("bmc_map",), f"no such file {self.bmc_map}"))
        return problems

    def plan(self, record: Record) -> Plan | None:
        if str(record.get("bmc_power") or "").lower() == "off":
            return None
        return self.make_plan(
            record,
            f"fence {label(record)} ({self.method}: power off)",
            Change("bmc_power", record.get("bmc_power") or "On", "Off"),
        )

    # -- reading the power state ---------------------------------------------------------

    def power_state(self, ctx: ActionContext, record: Record) -> str:
        """On / Off / ... as read now; ActionError when it cannot be read."""
        if self.method == "ironic":
            node = self._ironic_node(ctx, record)
            return "Off" if node.power_state == "power off" else str(node.power_state or "unknown")
        target = self._target(record, required=self.method == "redfish")
        if target is None:
            if self.confirm_command:
                try:
                    run_hook(self._argv(self.confirm_command, record), self.timeout)
                except ActionError:
                    return "unconfirmed"
                return "Off"
            raise ActionError(
                f"cannot confirm the power state of {label(record)}: it is not in the BMC "
                "map and no confirm_command is configured"
            )
        reading = read_power(target)
        if reading.power_state is None:
            raise ActionError(f"reading the BMC of {label(record)} failed: {reading.error}")
        return reading.power_state

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return {"bmc_power": self.power_state(ctx, record)}

    # -- acting --------------------------------------------------------------------------

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        started = time.time()
        if self.method == "redfish":
            target = self._target(record, required=True)
            assert target is not None
            self._redfish_off(target, record)
        elif self.method == "ironic":
            conn = ctx.connection(record["cloud"], record["region"])
            node = self._ironic_node(ctx, record)
            call(
                f"power off Ironic node {node.id}",
                conn.baremetal.set_node_power_state,
                node,
                "power off",
            )
        else:
            run_hook(self._argv(self.command, record), self.timeout)
        return {"method": self.method, "requested_at": started}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        def off() -> tuple[bool, dict[str, Any]]:
            power = self.power_state(ctx, record)
            return power == "Off", {"bmc_power": power}

        outcome = wait_for(ctx, off, f"fence {label(record)}")
        outcome.result = {**result, **outcome.observed}
        return outcome

    # -- helpers -------------------------------------------------------------------------

    def _argv(self, argv: list[str], record: Record) -> list[str]:
        return render_command(
            argv,
            {
                "host": str(record.get("host") or record.get("name") or ""),
                "hypervisor": str(record.get("hypervisor_hostname") or ""),
            },
        )

    def _target(self, record: Record, required: bool) -> BmcTarget | None:
        try:
            target = bmc_for(self.bmc_map, record)
        except ConfigError as exc:
            raise ActionError(str(exc)) from exc
        if target is None and required:
            raise ActionError(
                f"{label(record)} is not in the BMC map {self.bmc_map}: it cannot be fenced "
                "over Redfish"
            )
        return target

    @staticmethod
    def _redfish_off(target: BmcTarget, record: Record) -> None:
        import sushy
        from sushy import exceptions as sushy_exc

        if target.problem:
            raise ActionError(f"BMC of {label(record)}: {target.problem}")
        try:
            system, connector = open_system(target)
        except sushy_exc.AccessError as exc:
            raise ActionError(
                f"the BMC of {label(record)} at {target.address} rejected the credentials "
                f"(HTTP {exc.status_code})"
            ) from exc
        except Exception as exc:
            raise ActionError(
                f"the BMC of {label(record)} at {target.address} cannot be reached: {exc}"
            ) from exc
        try:
            system.reset_system(sushy.RESET_FORCE_OFF)
        except Exception as exc:
            raise ActionError(
                f"power off through the BMC of {label(record)} at {target.address} failed: {exc}"
            ) from exc
        finally:
            connector.close()

    def _ironic_node(self, ctx: ActionContext, record: Record) -> Any:
        conn = ctx.connection(record["cloud"], record["region"])
        names = [n for n in (record.get("host"), record.get("hypervisor_hostname")) if n]
        for name in names:
            try:
                return conn.baremetal.get_node(name)
            except Exception:  # noqa: BLE001, S112 - try the next name
                continue
        raise ActionError(f"no Ironic node named {' or '.join(map(str, names))}")
