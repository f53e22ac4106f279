"""Host maintenance actions: disable and enable a compute service (with a reason that
says who and why), live-migrate and cold-migrate a server off its host.

The service is disabled *before* the moves are planned, so the scheduler places
nothing new on the host meanwhile; it is re-enabled only when it was disabled with the
same reason (a host someone else disabled for their own work stays disabled).

Migrations are verified by reading the server back. A campaign draining a host gives
the context a `host_watch` (one server listing of the host, shared by every migration
and refreshed at most once per poll interval), so a migration costs its POST plus a
share of list calls instead of a GET per server per poll."""

from __future__ import annotations

import time
from typing import Any, Literal, Protocol

from pydantic import Field

from stackfleet.actions.base import (
    ACTIONS,
    Action,
    ActionContext,
    ActionError,
    Change,
    Outcome,
    Plan,
    Record,
    Skip,
    call,
    label,
    wait_for,
)
from stackfleet.actions.compute_service import (
    SERVICE_MICROVERSION,
    read_service,
    update_service,
)
from stackfleet.model.kinds import kind

SERVER_MICROVERSION = "2.30"
_SERVER = kind("server").record_builder()


class HostWatch(Protocol):
    """The servers of one host, read by list calls (see the module doc)."""

    @property
    def refreshed_at(self) -> float:
        """When the newest listing was taken (time.monotonic())."""
        ...

    def server(self, server_id: str, max_age: float) -> dict[str, Any] | None:
        """The server's record from a listing at most `max_age` seconds old; None when
        it is no longer on the host."""
        ...


def api(what: str, function: Any, path: str, *, missing_ok: bool = False, **kwargs: Any) -> Any:
    """A raw call through an openstacksdk proxy (`conn.compute.get`, ...): the response,
    None for a 404 when `missing_ok`; ActionError naming `what` for any other HTTP error
    (the proxies do not raise on their own)."""
    response = call(what, function, path, raise_exc=False, **kwargs)
    if missing_ok and response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise ActionError(f"{what}: HTTP {response.status_code}: {response.text[:300]}")
    return response


def service_record(cloud: str, region: str, service: dict[str, Any]) -> Record:
    """A compute_service record from an os-services entry (2.53+)."""
    return {
        "kind": "compute_service",
        "cloud": cloud,
        "region": region,
        "id": str(service["id"]),
        "name": f"{service.get('binary')}@{service.get('host')}",
        "project_id": None,
        "status": service.get("state"),
        "binary": service.get("binary"),
        "host": service.get("host"),
        "zone": service.get("zone"),
        "enabled": service.get("status"),
        "state": service.get("state"),
        "forced_down": bool(service.get("forced_down")),
        "disabled_reason": service.get("disabled_reason"),
        "updated_at": service.get("updated_at"),
    }


def read_services(conn: Any, host: str, binary: str | None = None) -> list[dict[str, Any]]:
    """os-services entries of a host (2.53: ids are UUIDs)."""
    query = f"/os-services?host={host}" + (f"&binary={binary}" if binary else "")
    response = api(
        f"listing the services of {host}",
        conn.compute.get,
        query,
        microversion=SERVICE_MICROVERSION,
    )
    return list(response.json().get("services") or [])


class _ServiceAction(Action):
    """Read and update the service as `force-down-service` does (one helper for both)."""

    kinds = ("compute_service",)

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return read_service(ctx, record)

    def _put(self, ctx: ActionContext, record: Record, body: dict[str, Any]) -> None:
        update_service(ctx, record, body)

    def _wait(self, ctx: ActionContext, record: Record, wanted: str) -> Outcome:
        def check() -> tuple[bool, dict[str, Any]]:
            state = read_service(ctx, record) or {}
            return state.get("enabled") == wanted, state

        return wait_for(ctx, check, f"{self.type} {label(record)}")


@ACTIONS.register("disable-service")
class DisableComputeService(_ServiceAction):
    """Disable a compute service so the scheduler places nothing new on its host, with a
    reason saying who disabled it and why (`disabled_reason`). A service already
    disabled for another reason is left alone: someone else is working on that host."""

    type: Literal["disable-service"] = "disable-service"
    reason: str = Field(min_length=1, max_length=255, description="The disabled reason.")

    def plan(self, record: Record) -> Plan | Skip | None:
        if record.get("enabled") == "disabled":
            if record.get("disabled_reason") == self.reason:
                return None
            return Skip(
                self.type,
                f"{label(record)} is disabled already, by someone else "
                f"(reason: {record.get('disabled_reason') or 'none given'})",
            )
        return self.make_plan(
            record,
            f"disable {label(record)}",
            Change("enabled", record.get("enabled"), "disabled"),
            Change("disabled_reason", record.get("disabled_reason"), self.reason),
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        self._put(ctx, record, {"status": "disabled", "disabled_reason": self.reason})
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return self._wait(ctx, record, "disabled")


@ACTIONS.register("enable-service")
class EnableComputeService(_ServiceAction):
    """Enable a compute service again, only when it was disabled with `reason` (the
    campaign's own): a host disabled by someone else stays disabled."""

    type: Literal["enable-service"] = "enable-service"
    reason: str = Field(
        min_length=1, max_length=255, description="The reason it was disabled with."
    )

    def plan(self, record: Record) -> Plan | Skip | None:
        if record.get("enabled") != "disabled":
            return None
        if record.get("disabled_reason") != self.reason:
            return Skip(
                self.type,
                f"{label(record)} was disabled by someone else "
                f"(reason: {record.get('disabled_reason') or 'none given'}); left disabled",
            )
        return self.make_plan(
            record,
            f"enable {label(record)}",
            Change("enabled", "disabled", "enabled"),
            Change("disabled_reason", self.reason, None),
            expects={"disabled_reason": self.reason},
        )

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        self._put(ctx, record, {"status": "enabled"})
        return {}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        return self._wait(ctx, record, "enabled")


def _server_state(ctx: ActionContext, record: Record) -> dict[str, Any] | None:
    """The server's live state: from the host watch when there is one (None there means
    it left the host: it is read by id then), else GET /servers/{id}."""
    watch: HostWatch | None = getattr(ctx, "host_watch", None)
    if watch is not None:
        seen = watch.server(str(record["id"]), ctx.poll_interval)
        if seen is not None:
            return seen
    conn = ctx.connection(record["cloud"], record["region"])
    response = api(
        f"reading {label(record)}",
        conn.compute.get,
        f"/servers/{record['id']}",
        missing_ok=True,
        microversion=SERVER_MICROVERSION,
    )
    if response is None:
        return None
    return _SERVER(response.json()["server"])


def _moved(ctx: ActionContext, record: Record, source: str, what: str) -> Outcome:
    """Wait until the server runs on another host with no task under way; fail when it
    is back on the source with no task (the migration failed) or in ERROR."""
    started = time.monotonic()

    watch: HostWatch | None = getattr(ctx, "host_watch", None)

    def check() -> tuple[bool, dict[str, Any]]:
        if watch is not None:
            state = watch.server(str(record["id"]), ctx.poll_interval)
            if state is None:
                # gone from a listing of the source host taken after the request: it
                # runs elsewhere now (no read of its own); an older listing: wait
                return watch.refreshed_at > started, {"host": f"not {source}"}
        else:
            state = _server_state(ctx, record)
        if state is None:
            raise ActionError(f"{label(record)} is gone")
        host, task = state.get("host"), state.get("task_state")
        observed = {"host": host, "status": state.get("status"), "task_state": task}
        if state.get("status") == "ERROR":
            raise ActionError(f"{what} of {label(record)} left it in ERROR")
        if host != source and not task and state.get("status") != "VERIFY_RESIZE":
            return True, observed
        if host == source and not task and time.monotonic() - started > ctx.poll_interval:
            raise ActionError(
                f"{what} of {label(record)} did not move it (Nova found no host or the "
                "migration failed: see `openstack server migration list`)"
            )
        return False, observed

    return wait_for(ctx, check, f"{what} {label(record)}")


@ACTIONS.register("live-migrate")
class LiveMigrateServer(Action):
    """Live-migrate a server off its host; Nova's scheduler picks the destination, so
    server-group (anti-)affinity and capacity are respected. Verified when the server
    runs on another host with no task under way."""

    kinds = ("server",)
    type: Literal["live-migrate"] = "live-migrate"
    block_migration: Literal["auto", True, False] = Field(
        default="auto", description="auto: Nova chooses (shared storage or not)."
    )

    def plan(self, record: Record) -> Plan | Skip | None:
        if record.get("status") not in ("ACTIVE", "PAUSED"):
            return Skip(self.type, f"{label(record)} is {record.get('status')}, not running")
        return self.make_plan(
            record,
            f"live-migrate {label(record)} off {record.get('host')}",
            Change("host", record.get("host"), "(chosen by the scheduler)"),
            expects={"host": record.get("host"), "task_state": None},
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return _server_state(ctx, record)

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        api(
            f"live-migrate {label(record)}",
            conn.compute.post,
            f"/servers/{record['id']}/action",
            json={"os-migrateLive": {"host": None, "block_migration": self.block_migration}},
            microversion=SERVER_MICROVERSION,
        )
        return {"source": record.get("host")}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        outcome = _moved(ctx, record, str(record.get("host")), "live migration")
        outcome.result = result
        return outcome


@ACTIONS.register("migrate")
class ColdMigrateServer(Action):
    """Cold-migrate a server (it is shut down and moved; a running one is started on the
    new host), then confirm the move. Used for servers live migration cannot move."""

    kinds = ("server",)
    destructive = True
    type: Literal["migrate"] = "migrate"

    def plan(self, record: Record) -> Plan | Skip | None:
        if record.get("status") not in ("ACTIVE", "SHUTOFF"):
            return Skip(self.type, f"{label(record)} is {record.get('status')}")
        return self.make_plan(
            record,
            f"cold-migrate {label(record)} off {record.get('host')}",
            Change("host", record.get("host"), "(chosen by the scheduler)"),
            expects={"host": record.get("host"), "task_state": None},
        )

    def observe(self, ctx: ActionContext, record: Record) -> dict[str, Any] | None:
        return _server_state(ctx, record)

    def execute(self, ctx: ActionContext, record: Record) -> dict[str, Any]:
        conn = ctx.connection(record["cloud"], record["region"])
        path = f"/servers/{record['id']}/action"
        api(
            f"migrate {label(record)}",
            conn.compute.post,
            path,
            json={"migrate": None},
            microversion=SERVER_MICROVERSION,
        )

        def resized() -> tuple[bool, dict[str, Any]]:
            state = _server_state(ctx, record) or {}
            if state.get("status") == "ERROR":
                raise ActionError(f"cold migration of {label(record)} left it in ERROR")
            return state.get("status") == "VERIFY_RESIZE", {"status": state.get("status")}

        outcome = wait_for(ctx, resized, f"migrate {label(record)}")
        if not outcome.verified:
            raise ActionError(outcome.message)
        api(
            f"confirm the migration of {label(record)}",
            conn.compute.post,
            path,
            json={"confirmResize": None},
            microversion=SERVER_MICROVERSION,
        )
        return {"source": record.get("host")}

    def verify(self, ctx: ActionContext, record: Record, result: dict[str, Any]) -> Outcome:
        outcome = _moved(ctx, record, str(record.get("host")), "cold migration")
        outcome.result = result
        return outcome
