"""A host's steps besides the drain (patching/drain.py), each resumable from what the
host and OpenStack show:

- pre-check: capture the host's revisions, gate the untouched host (its revision then
  becomes tested);
- apply: the host's revision differs from the one captured before the step → the
  change took; otherwise it runs again only when every item is idempotent (playbooks,
  config changes, package versions; a command only when marked `idempotent: true`),
  else the campaign halts and says so;
- restart: a heartbeat newer than the step's start means the service came back;
- gate: read-only (a canary left behind is deleted first); the drained host is opened
  for the canary and disabled again;
- undrain: enabled already, or enabled now;
- rollback: the last tested revision put back, restart, gate, undrain."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from stackfleet.actions.base import ActionError
from stackfleet.actions.compute import StartServer
from stackfleet.actions.maintenance import (
    DisableComputeService,
    EnableComputeService,
    read_services,
    service_record,
)
from stackfleet.patching.gates import CANARY_PREFIX, services_problems
from stackfleet.patching.ini import edit_ini
from stackfleet.patching.revisions import (
    Revision,
    apply_revision,
    capture,
    diff,
    install_packages,
    record,
)
from stackfleet.patching.step_context import HostListing, StepContext, StepFailed, _policy_name
from stackfleet.store import patching as records
from stackfleet.store.db import Store


def rollback_target(
    store: Store, campaign_id: int, host: str, service: str
) -> dict[str, Any] | None:
    """The revision a rollback of `host` puts back: the one its pre-check found running
    and tested before this campaign changed anything (what undoing the campaign means),
    else the last revision marked tested there; None when none was ever tested."""
    for step in records.steps_of(store, campaign_id):
        if step["host"] == host and step["step"] == "pre-check":
            digest = (step["detail"].get("revisions") or {}).get(service)
            if digest:
                revision = records.get_revision(store, host, service, digest)
                if revision["tested_at"]:
                    return revision
    return records.last_tested(store, host, service)


def _parse(value: Any) -> datetime | None:
    from stackfleet.core.times import parse_time

    return parse_time(value)


class HostSteps(StepContext):
    """A host's steps but the drain: pre-check, apply, restart, gate (a canary on a
    drained host opens it), undrain, and its rollback."""

    def _capture(self, host: str) -> dict[str, Revision]:
        return {
            service: capture(self.connector, host, service, self.services[service])
            for service in self.spec.targets.services
        }

    def _host_pre_check(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        now = datetime.now(UTC)
        revisions = self._capture(host)
        digests = {s: record(self.store, r, now) for s, r in revisions.items()}
        problems = []
        if self.spec.steps.pre_check.gate:
            # the untouched host is judged as it is: no waiting for services to come up
            gate = self.spec.steps.gate.model_copy(update={"wait": timedelta(0)})
            problems = self.gates.run(
                host,
                gate,
                now,
                None,
                self._compute(host),
                checks=[*self.spec.steps.pre_check.checks, *gate.checks],
            )
        else:
            for check in self.spec.steps.pre_check.checks:
                problems += self.gates._check(host, check)
        if problems:
            raise StepFailed(
                f"pre-check of {host} failed (nothing was changed): " + "; ".join(problems)
            )
        if self.spec.steps.pre_check.gate:
            for service, digest in digests.items():
                records.mark_tested(self.store, host, service, digest, now, self.name)
        return {"revisions": digests}

    def _compute(self, host: str) -> bool:
        return "drain" in {s["step"] for s in self._steps(host)} or bool(
            read_services(self.conn, host, "nova-compute")
        )

    def _apply(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        now = datetime.now(UTC)
        before = detail.get("before")
        current = self._capture(host)
        digests = {s: r.digest for s, r in current.items()}
        if before is None:
            before = digests
            detail["before"] = before
            step = next(s for s in self._steps(host) if s["step"] == "apply")
            records.set_step(self.store, step["id"], detail=detail)
        elif digests != before:
            # interrupted after the change took: record it, do not change again
            return self._applied(host, before, current, now, resumed=True)
        elif resumed and not all(item.rerunnable for item in self.spec.steps.apply):
            raise StepFailed(
                f"the apply step on {host} was interrupted and its command is not marked "
                "idempotent: check the host, then `stackfleet campaign resume "
                f"{self.name} --retry` to run it again (or abort)"
            )
        for item in self.spec.steps.apply:
            timeout = item.timeout.total_seconds()
            if item.playbook:
                result = self.connector.run_playbook(
                    host,
                    str(self.loaded.path(item.playbook)),
                    {**item.extravars, "stackfleet_campaign": self.name, "stackfleet_host": host},
                    timeout=timeout,
                )
                what = f"playbook {item.playbook}"
            elif item.command:
                result = self.connector.run(host, item.command, timeout=timeout)
                what = f"command `{item.command}`"
            elif item.config is not None:
                text = self.connector.read_file(host, item.config.file)
                if text is None:
                    raise StepFailed(f"{item.config.file} does not exist on {host}")
                wanted = edit_ini(text, item.config.set, item.config.unset)
                if wanted != text:
                    self.connector.write_file(host, item.config.file, wanted)
                continue
            else:
                assert item.packages is not None
                install_packages(
                    self.connector,
                    host,
                    self.services[item.packages.service],
                    item.packages.versions,
                )
                continue
            if not result.ok:
                raise StepFailed(f"{what} failed on {host} (exit {result.rc}): {result.tail()}")
        return self._applied(host, before, self._capture(host), now, resumed=False)

    def _applied(
        self,
        host: str,
        before: dict[str, str],
        after: dict[str, Revision],
        now: datetime,
        resumed: bool,
    ) -> dict[str, Any]:
        digests = {s: record(self.store, r, now, "applied", self.name) for s, r in after.items()}
        changes = {}
        for service, revision in after.items():
            old = records.get_revision(self.store, host, service, before[service])["content"]
            changes[service] = diff(old, revision.content, "before", "after")[:200]
        self.runner.audit.append(
            "campaign.applied",
            {"before": before, "after": digests, "diff": changes, "resumed": resumed},
            actor=self.runner.actor,
            policy=_policy_name(self.name),
            target=f"{self.spec.cloud}/{self.region}/host/{host}",
        )
        return {"after": digests}

    def _restart_commands(self) -> list[str]:
        if self.spec.steps.restart.command:
            return [self.spec.steps.restart.command]
        commands: list[str] = []
        for service in self.spec.targets.services:
            command = self.services[service].restart
            if command and command not in commands:
                commands.append(command)
        return commands

    def _restart(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        started = datetime.fromisoformat(detail["started_at"])
        if resumed:
            services = read_services(self.conn, host)
            if services and not services_problems(services, datetime.now(UTC), None, started):
                fresh = all(
                    (t := _parse(s.get("updated_at"))) is not None and t >= started
                    for s in services
                )
                if fresh:
                    return {"restarted_at": started.isoformat(), "resumed": "came back"}
        return self._run_restart(host)

    def _run_restart(self, host: str) -> dict[str, Any]:
        restarted = datetime.now(UTC)
        for command in self._restart_commands():
            result = self.connector.run(host, command)
            if not result.ok:
                raise StepFailed(
                    f"restart `{command}` failed on {host} (exit {result.rc}): {result.tail()}"
                )
        return {"restarted_at": restarted.isoformat()}

    def _gate(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        since = datetime.fromisoformat(
            self._detail(host, "pre-check").get("started_at") or detail["started_at"]
        )
        restarted = self._detail(host, "restart").get("restarted_at")
        if resumed and any(
            s["step"] == "drain" and s["status"] == "done" for s in self._steps(host)
        ):
            # interrupted while the host was open for the canary: drained again first
            self._disable(host, f"{self.campaign['id']}/{host}/gate/{detail['attempt']}")
        self.landed.pop(host, None)
        problems = self.gates.run(
            host,
            self.spec.steps.gate,
            since,
            datetime.fromisoformat(restarted) if restarted else None,
            self._compute(host),
        )
        landed = self.landed.pop(host, [])
        if landed:
            detail["landed_while_open"] = landed
        if problems:
            raise StepFailed(f"the health gate failed on {host}: " + "; ".join(problems))
        now = datetime.now(UTC)
        tested = {}
        for service, revision in self._capture(host).items():
            digest = revision.digest
            records.save_revision(self.store, host, service, digest, revision.content, now)
            records.mark_tested(self.store, host, service, digest, now, self.name)
            tested[service] = digest
        return {"tested": tested}

    def _disable(self, host: str, key: str) -> None:
        """Disable the host's compute service with the campaign's reason (nothing to do
        when it is so already)."""
        verdict, reason = self._act(
            DisableComputeService(reason=self.reason), self._service_record(host), key
        )
        if verdict not in ("succeeded", "done"):
            raise StepFailed(f"disabling the compute service of {host}: {verdict}: {reason}")

    @contextmanager
    def _opened_for_canary(self, host: str, service: dict[str, Any]) -> Iterator[None]:
        """The drained host's compute service enabled while the canary boots, disabled
        again with the campaign's reason afterwards (see patching/gates.py: Nova places
        nothing on a disabled host, a forced canary included). The scheduler may place
        other servers on it meanwhile: they are named in the gate step's detail
        (`landed_while_open`). A host disabled by someone else is not opened."""
        if service.get("disabled_reason") != self.reason:
            raise ActionError(
                f"nova-compute@{host} is disabled by someone else (reason: "
                f"{service.get('disabled_reason') or 'none given'}): Nova places no server "
                "on a disabled compute service, a canary forced onto it included, and the "
                "campaign does not enable a host it did not disable"
            )
        key = f"{self.campaign['id']}/{host}/canary/{time.time_ns()}"
        listing = HostListing(self.conn, host)
        before = set(listing.refresh())
        verdict, reason = self._act(
            EnableComputeService(reason=self.reason),
            service_record(self.spec.cloud, self.region, service),
            key + "/open",
        )
        if verdict not in ("succeeded", "done"):
            raise ActionError(f"opening {host} for the canary: {verdict}: {reason}")
        self.progress(f"{host}: compute service enabled for the canary")
        try:
            yield
        finally:
            try:
                self._disable(host, key + "/close")
            except StepFailed as exc:
                raise ActionError(f"{exc} (after the canary: {host} is left enabled)") from exc
            self.progress(f"{host}: compute service disabled again")
            landed = [
                str(s.get("name") or sid)
                for sid, s in listing.refresh().items()
                if sid not in before and not str(s.get("name") or "").startswith(CANARY_PREFIX)
            ]
            if landed:
                self.landed.setdefault(host, []).extend(landed)
                self.progress(f"{host}: placed there while open for the canary: {landed}")

    def _undrain(self, host: str, detail: dict[str, Any], resumed: bool) -> dict[str, Any]:
        attempt = f"{self.campaign['id']}/{host}/undrain/{detail['attempt']}"
        verdict, reason = self._act(
            EnableComputeService(reason=self.reason), self._service_record(host), attempt
        )
        if verdict not in ("succeeded", "done"):
            raise StepFailed(f"enabling the compute service of {host}: {verdict}: {reason}")
        started = []
        for server_id in self._detail(host, "drain").get("stopped") or []:
            live = self._read_server(server_id)
            if live is None:
                continue
            verdict, reason = self._act(StartServer(), live, attempt)
            if verdict in ("succeeded", "done"):
                started.append(server_id)
        return {"started": started}

    def _roll_back_host(self, host: str, detail: dict[str, Any]) -> dict[str, Any]:
        """Put the last tested revision of each service back on `host`, restart, gate;
        re-enable the host when its gate passes."""
        now = datetime.now(UTC)
        restored = {}
        for service in self.spec.targets.services:
            tested = rollback_target(self.store, self.campaign["id"], host, service)
            if tested is None:
                raise StepFailed(f"no tested revision of {service} on {host} to roll back to")
            current = capture(self.connector, host, service, self.services[service])
            changed = apply_revision(
                self.connector, tested["content"], self.services[service], host
            )
            records.add_event(
                self.store, host, service, tested["digest"], "rolled-back", now, self.name
            )
            self.runner.audit.append(
                "campaign.rolled-back",
                {
                    "service": service,
                    "before": current.digest,
                    "after": tested["digest"],
                    "changed": changed,
                    "diff": diff(current.content, tested["content"], "before", "after")[:200],
                },
                actor=self.runner.actor,
                policy=_policy_name(self.name),
                target=f"{self.spec.cloud}/{self.region}/host/{host}",
            )
            restored[service] = tested["digest"]
        restart = self._run_restart(host) if self.spec.steps.restart.enabled else {}
        restarted = restart.get("restarted_at")
        problems = self.gates.run(
            host,
            self.spec.steps.gate,
            now,
            datetime.fromisoformat(restarted) if restarted else None,
            self._compute(host),
        )
        if problems:
            raise StepFailed(
                f"{host} rolled back to its tested revision but its gate still "
                "fails (left drained): " + "; ".join(problems)
            )
        if self.spec.steps.drain.enabled and self.spec.steps.undrain and self._compute(host):
            self._undrain(host, {"attempt": f"rollback-{int(time.time())}"}, False)
        return {"restored": restored}
