"""The common management verbs of workloads: list, show, start, stop, reboot, rebuild,
resize, delete, console-url and logs, mapped to each backend.

A workload is found by the labels provisioning set on its members (never by name
alone). Each changing verb is an action per member, run under the policy
`provision/<name>` through the safety gate (dry-run unless executed, approvals when
configured, rate limits) and the executor (the member re-read just before acting,
audit entries before and after). A verb a backend cannot do is refused, saying so."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stackfleet.core.errors import NotFoundError, StackFleetError
from stackfleet.engine.gate import Candidate
from stackfleet.model.workloads import META_WORKLOAD, workload_label
from stackfleet.provision import ironic, nova, zun
from stackfleet.provision.apply import (
    MEMBER_KINDS,
    MemberOutcome,
    Provisioner,
    Scope,
    make_candidate,
    member_policy,
    member_record,
    scope_target,
)
from stackfleet.provision.plan import Member, member_of
from stackfleet.provision.resolve import catalog_types, closest
from stackfleet.sources.openstack import compute, image
from stackfleet.sources.openstack.context import ListContext
from stackfleet.sources.openstack.listing import iter_pages

CHANGING_VERBS = ("start", "stop", "reboot", "rebuild", "resize", "delete")
READING_VERBS = ("console-url", "logs")
VERBS = ("list", "show", *CHANGING_VERBS, *READING_VERBS)


class UnsupportedVerb(StackFleetError):
    """The workload's backend has no such operation."""

    exit_code = 2


class VerbOptionError(StackFleetError):
    """A verb's option (image, flavor, member) names nothing that exists."""

    exit_code = 2


@dataclass
class WorkloadView:
    """A workload as its members show it."""

    name: str
    backend: str
    project_id: str
    members: list[Member] = field(default_factory=list)

    @property
    def status(self) -> str:
        from stackfleet.model.workloads import workload_status

        return workload_status([m.status for m in self.members])


# backend -> verb -> the action class that carries it out on one member (a verb a
# backend has no class for is refused, saying so)
BACKEND_ACTIONS: dict[str, dict[str, type[nova.MemberAction]]] = {
    "nova": nova.VERBS,
    "ironic": ironic.VERBS,
    "zun": zun.VERBS,
}
# backend -> the reading verbs it has
BACKEND_READS: dict[str, frozenset[str]] = {
    "nova": frozenset(READING_VERBS),
    "ironic": frozenset(),
    "zun": frozenset({"logs"}),
}
BACKEND_VERBS: dict[str, frozenset[str]] = {
    b: frozenset(BACKEND_ACTIONS[b]) | BACKEND_READS[b] for b in BACKEND_ACTIONS
}
# backend -> (what kind of workload it runs, the backend in the operator's words)
BACKEND_WORDS = {
    "nova": ("VM", "Nova"),
    "ironic": ("bare-metal", "standalone Ironic"),
    "zun": ("container", "Zun"),
}


class WorkloadManager:
    """Finds workloads in one project and runs verbs on their members."""

    def __init__(self, provisioner: Provisioner) -> None:
        self.provisioner = provisioner
        self.log = provisioner.log

    # -- reading ----------------------------------------------------------------------

    def workloads(self, scope: Scope) -> list[WorkloadView]:
        """Every workload of the scope's project (one listing of its servers)."""
        found: dict[str, WorkloadView] = {}
        for page in iter_pages(
            scope.conn.compute,
            "/servers/detail",
            "servers",
            self.log,
            "compute GET /servers/detail",
            None,
            nova.MICROVERSION,
        ):
            for server in page:
                name = workload_label(
                    {"metadata": server.get("metadata"), "tags": server.get("tags")}
                )
                if name is None:
                    continue
                member = member_of(server, name, scope.project_id)
                if member is None:
                    continue
                view = found.setdefault(name, WorkloadView(name, "nova", scope.project_id))
                view.members.append(member)
        catalog = self._catalog(scope)
        others = []
        if "baremetal" in catalog:
            others.append(("ironic", ironic.list_all(scope.conn, scope.project_id, self.log)))
        if "container" in catalog:
            others.append(("zun", zun.list_all(scope.conn, scope.project_id, self.log)))
        for backend, by_name in others:
            for name, members in by_name.items():
                if name not in found:
                    found[name] = WorkloadView(name, backend, scope.project_id, members)
        for view in found.values():
            view.members.sort(key=lambda m: m.index)
        return [found[n] for n in sorted(found)]

    def _catalog(self, scope: Scope) -> set[str]:
        if scope.facts is not None:
            return scope.facts.services
        return catalog_types(scope.conn)

    def find(self, scope: Scope, name: str) -> WorkloadView:
        """One workload by name (its members by their labels); NotFoundError naming the
        closest workloads of the project."""
        members = nova.list_members(scope.conn, name, scope.project_id, self.log)
        backend = "nova"
        if not members and "baremetal" in self._catalog(scope):
            members = ironic.list_members(scope.conn, name, scope.project_id, self.log)
            backend = "ironic"
        if not members and "container" in self._catalog(scope):
            members = zun.list_members(scope.conn, name, scope.project_id, self.log)
            backend = "zun"
        if not members:
            known = [w.name for w in self.workloads(scope)]
            raise NotFoundError(
                f"no workload {name!r} in project {scope.project_id}{closest(name, known)}"
            )
        return WorkloadView(name, backend, scope.project_id, sorted(members, key=lambda m: m.index))

    @staticmethod
    def members_of(view: WorkloadView, member: str | None) -> list[Member]:
        """Every member, or the one named (by name, number or server id)."""
        if member is None:
            return view.members
        chosen = [m for m in view.members if member in (m.name, m.id, str(m.index))]
        if not chosen:
            raise VerbOptionError(
                f"workload {view.name} has no member {member!r}"
                f"{closest(member, [m.name for m in view.members])}"
            )
        return chosen

    @staticmethod
    def check_verb(view: WorkloadView, verb: str) -> None:
        """Refuse a verb the workload's backend cannot do, naming the workload's kind
        and the verbs it has."""
        allowed = BACKEND_VERBS.get(view.backend, frozenset())
        if verb not in allowed:
            kind, word = BACKEND_WORDS.get(view.backend, (view.backend, view.backend))
            has = ", ".join(v for v in (*CHANGING_VERBS, *READING_VERBS) if v in allowed)
            raise UnsupportedVerb(
                f"workload {view.name} is a {kind} workload ({word}): it has no {verb}; "
                f"its verbs: {has or 'none'}"
            )

    def console_urls(
        self, scope: Scope, view: WorkloadView, member: str | None, protocol: str = "vnc"
    ) -> list[tuple[Member, str]]:
        self.check_verb(view, "console-url")
        return [
            (m, nova.console_url(scope.conn, m.id, self.log, protocol))
            for m in self.members_of(view, member)
        ]

    def logs(
        self, scope: Scope, view: WorkloadView, member: str | None, lines: int | None = None
    ) -> list[tuple[Member, str]]:
        self.check_verb(view, "logs")
        read = zun.container_logs if view.backend == "zun" else nova.console_log
        return [(m, read(scope.conn, m.id, self.log, lines)) for m in self.members_of(view, member)]

    # -- changing -----------------------------------------------------------------------

    def action_for(
        self, scope: Scope, view: WorkloadView, verb: str, options: dict[str, Any]
    ) -> nova.MemberAction:
        """The action of `verb` on the workload's backend, with its options resolved (an
        image or flavor name to its id)."""
        self.check_verb(view, verb)
        fields: dict[str, Any] = {"workload": view.name, "project_id": scope.project_id}
        if verb == "rebuild":
            fields.update(self._image(scope, view, options.get("image")))
        elif verb == "resize":
            fields.update(self._flavor(scope, options.get("size")))
        elif verb == "reboot":
            fields["hard"] = bool(options.get("hard"))
        elif verb == "delete":
            fields["reason"] = "workload delete"
        return BACKEND_ACTIONS[view.backend][verb].model_validate(fields)

    def _image(self, scope: Scope, view: WorkloadView, wanted: Any) -> dict[str, str]:
        """A rebuild's image: a container image as given, else a Glance image by name
        or id (closest names on a miss)."""
        if view.backend == "zun":
            if not wanted:
                raise VerbOptionError("rebuild needs --image (a container image)")
            return {"image_id": str(wanted), "image_name": str(wanted)}
        if not wanted:
            raise VerbOptionError("rebuild needs --image (a Glance image name or id)")
        ctx = ListContext(target=scope_target(scope), log=self.log)
        images = [i for i in image.images(ctx) if i.get("status") == "active"]
        found = next((i for i in images if wanted in (i.get("id"), i.get("name"))), None)
        if found is None:
            raise VerbOptionError(
                f"no image {wanted!r}{closest(wanted, [str(i.get('name')) for i in images])}"
            )
        return {"image_id": str(found["id"]), "image_name": str(found.get("name"))}

    def _flavor(self, scope: Scope, wanted: Any) -> dict[str, str]:
        if not wanted:
            raise VerbOptionError("resize needs --size (a flavor name or id)")
        flavors = compute.flavors(ListContext(target=scope_target(scope), log=self.log))
        found = next((f for f in flavors if wanted in (f.get("id"), f.get("name"))), None)
        if found is None:
            raise VerbOptionError(
                f"no flavor {wanted!r}{closest(wanted, [str(f.get('name')) for f in flavors])}"
            )
        return {"flavor_id": str(found["id"]), "flavor_name": str(found.get("name"))}

    def run_verb(
        self,
        scope: Scope,
        view: WorkloadView,
        verb: str,
        member: str | None = None,
        options: dict[str, Any] | None = None,
        execute: bool = False,
        timeout: float = 600.0,
        now: datetime | None = None,
    ) -> list[MemberOutcome]:
        """Run a changing verb on every member (or one): each an action through the
        gate and the executor. Without `execute` nothing changes (the gate's verdicts
        are reported)."""
        if verb not in CHANGING_VERBS:
            raise UnsupportedVerb(f"{verb} is not a changing verb ({', '.join(CHANGING_VERBS)})")
        now = now or datetime.now(UTC)
        action = self.action_for(scope, view, verb, options or {})
        settings = self.provisioner.settings
        policy = member_policy(view.name, settings.provision.require_approval)
        gate, executor = self.provisioner.machinery(scope, execute, now, timeout)
        step = f"{verb}:{uuid.uuid4().hex[:12]}"
        outcomes: list[MemberOutcome] = []
        candidates: list[Candidate] = []
        for chosen in self.members_of(view, member):
            record = member_record(scope, chosen.name, chosen, MEMBER_KINDS[view.backend])
            candidate = make_candidate(policy, action, record, step)
            if candidate is None:
                outcomes.append(
                    MemberOutcome(
                        view.name,
                        chosen.name,
                        verb,
                        "unchanged",
                        chosen.id,
                        f"already {chosen.status}",
                    )  # fmt: skip
                )
                continue
            candidates.append(candidate)
        gate.decide(policy, candidates)
        if execute:
            self.provisioner.queue_awaiting(candidates, now)
        for candidate in candidates:
            if candidate.verdict == "execute":
                executor.run(candidate)
            status = candidate.verdict if execute else "planned"
            outcomes.append(
                MemberOutcome(
                    view.name,
                    str(candidate.record["name"]),
                    verb,
                    status,
                    str(candidate.record["id"]),
                    candidate.reason or candidate.plan.summary,
                )
            )
        return outcomes


__all__ = ["META_WORKLOAD", "VERBS", "WorkloadManager", "WorkloadView"]
