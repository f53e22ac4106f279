"""Planning a campaign: the hosts (or servers) its spec targets in the live cloud, the
checks made before anything starts (file, line, field), its batches and each host's
steps, and a preview of the first batch's changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stackfleet.actions.base import ActionError
from stackfleet.actions.maintenance import api
from stackfleet.core.errors import ConfigError
from stackfleet.patching.connectors import Connector, ConnectorError, syntax_check
from stackfleet.patching.gates import GateRunner
from stackfleet.patching.ini import edit_ini
from stackfleet.patching.instances import instance_steps, select_instances
from stackfleet.patching.revisions import diff
from stackfleet.patching.services import definitions
from stackfleet.patching.spec import CampaignError, CampaignSpec, LoadedSpec, closest
from stackfleet.policy.errors import Problem
from stackfleet.store.db import Store

HOST_STEPS = ("pre-check", "drain", "apply", "restart", "gate", "undrain")


@dataclass
class HostInfo:
    """A host of the cloud as os-services shows it."""

    name: str
    zone: str | None
    binaries: list[str]
    aggregates: list[str] = field(default_factory=list)

    @property
    def compute(self) -> bool:
        return "nova-compute" in self.binaries


def cloud_hosts(conn: Any, store: Store | None, cloud: str) -> dict[str, HostInfo]:
    """Every host with a Nova service (live), with its aggregates (from the store's
    hypervisor records, when a collection pass has seen them)."""
    try:
        response = api(
            f"listing the compute services of cloud {cloud!r}",
            conn.compute.get,
            "/os-services",
            microversion="2.53",
        )
    except ActionError as exc:
        raise ConfigError(str(exc)) from exc
    hosts: dict[str, HostInfo] = {}
    for service in response.json().get("services") or []:
        host = str(service.get("host"))
        info = hosts.setdefault(host, HostInfo(host, None, []))
        info.binaries.append(str(service.get("binary")))
        if service.get("binary") == "nova-compute":
            info.zone = service.get("zone")
    if store is not None:
        for hypervisor in store.list_resources("hypervisor", cloud=cloud)[0]:
            found = hosts.get(str(hypervisor.get("host")))
            if found is not None:
                found.aggregates = list(hypervisor.get("aggregates") or [])
    return hosts


def select_hosts(loaded: LoadedSpec, hosts: dict[str, HostInfo]) -> tuple[list[str], list[Problem]]:
    """The spec's target hosts, in name order; problems for names that do not exist."""
    wanted = loaded.spec.targets.hosts
    problems: list[Problem] = []
    known = sorted(hosts)
    for where, names in (("names", wanted.names), ("exclude", wanted.exclude)):
        for index, name in enumerate(names):
            if name not in hosts:
                problems.append(
                    loaded.problem(
                        ("targets", "hosts", where, index),
                        f"unknown host {name!r}{closest(name, known)}",
                    )
                )
    zones = sorted({h.zone for h in hosts.values() if h.zone})
    for index, zone in enumerate(wanted.availability_zones):
        if zone not in zones:
            problems.append(
                loaded.problem(
                    ("targets", "hosts", "availability_zones", index),
                    f"unknown availability zone {zone!r}{closest(zone, zones)}",
                )
            )
    aggregates = sorted({a for h in hosts.values() for a in h.aggregates})
    for index, aggregate in enumerate(wanted.aggregates):
        if aggregate not in aggregates:
            problems.append(
                loaded.problem(
                    ("targets", "hosts", "aggregates", index),
                    f"unknown aggregate {aggregate!r}{closest(aggregate, aggregates)} "
                    "(aggregates are read from the newest collection pass)",
                )
            )
    chosen = []
    for name, info in sorted(hosts.items()):
        if wanted.names and name not in wanted.names:
            continue
        if name in wanted.exclude:
            continue
        if wanted.availability_zones and info.zone not in wanted.availability_zones:
            continue
        if wanted.aggregates and not set(wanted.aggregates) & set(info.aggregates):
            continue
        roles = {"compute"} if info.compute else set()
        if "nova-conductor" in info.binaries:
            roles.add("controller")
        if wanted.roles and not set(wanted.roles) & roles:
            continue
        chosen.append(name)
    if not chosen and not problems:
        problems.append(loaded.problem(("targets", "hosts"), "no host matches the targets"))
    return chosen, problems


def check_spec(loaded: LoadedSpec, now: datetime) -> list[Problem]:
    """What the file alone cannot show: services defined, playbooks present and passing
    `ansible-playbook --syntax-check`, files the connector needs, an open window."""
    spec = loaded.spec
    problems: list[Problem] = []
    known = definitions(spec.services)
    for index, service in enumerate(spec.targets.services):
        if service not in known:
            problems.append(
                loaded.problem(
                    ("targets", "services", index),
                    f"unknown service {service!r}{closest(service, sorted(known))} "
                    "(define it under `services:`)",
                )
            )
    playbooks: list[tuple[tuple[str | int, ...], str]] = []
    for index, item in enumerate(spec.steps.apply):
        if item.playbook:
            playbooks.append((("steps", "apply", index, "playbook"), item.playbook))
        if item.packages and item.packages.service not in known:
            problems.append(
                loaded.problem(
                    ("steps", "apply", index, "packages", "service"),
                    f"unknown service {item.packages.service!r}"
                    f"{closest(item.packages.service, sorted(known))}",
                )
            )
    for where, checks in (
        ("gate", spec.steps.gate.checks),
        ("pre_check", spec.steps.pre_check.checks),
    ):
        for index, check in enumerate(checks):
            if check.playbook:
                playbooks.append((("steps", where, "checks", index, "playbook"), check.playbook))
    for loc, name in playbooks:
        path = loaded.path(name)
        if not path.is_file():
            problems.append(loaded.problem(loc, f"playbook {name!r} does not exist ({path})"))
            continue
        found = syntax_check(str(path))
        if found:
            problems.append(loaded.problem(loc, f"playbook {name!r}: {found}"))
    if spec.connector.type == "ansible" and spec.connector.inventory:
        inventory = loaded.path(spec.connector.inventory)
        if not inventory.exists():
            problems.append(
                loaded.problem(("connector", "inventory"), f"inventory {inventory} does not exist")
            )
    if spec.window is not None:
        reason = spec.window.closed_reason(now)
        if reason and spec.window.has_ended(now):
            problems.append(loaded.problem(("window",), reason))
        elif reason:
            problems.append(loaded.problem(("window",), f"{reason}: start it then"))
    if spec.steps.restart.enabled and spec.steps.restart.command is None:
        for index, service in enumerate(spec.targets.services):
            definition = known.get(service)
            if definition is not None and not definition.restart:
                problems.append(
                    loaded.problem(
                        ("targets", "services", index),
                        f"service {service!r} has no restart command: give "
                        "steps.restart.command or the service's `restart`",
                    )
                )
    return problems


def batches_of(spec: CampaignSpec, hosts: list[str]) -> list[list[str]]:
    """Canary hosts alone first, then batches of the rollout's size."""
    canary = hosts[: spec.rollout.canary_hosts]
    rest = hosts[spec.rollout.canary_hosts :]
    size = spec.rollout.size(len(hosts))
    batches = [canary] if canary else []
    batches += [rest[i : i + size] for i in range(0, len(rest), size)]
    return batches


def host_steps(spec: CampaignSpec, info: HostInfo) -> list[str]:
    steps = ["pre-check"]
    drain = spec.steps.drain.enabled and info.compute
    if drain:
        steps.append("drain")
    steps.append("apply")
    if spec.steps.restart.enabled:
        steps.append("restart")
    steps.append("gate")
    if drain and spec.steps.undrain:
        steps.append("undrain")
    return steps


@dataclass
class CampaignPlan:
    """What a campaign would do: hosts by batch and each host's steps."""

    name: str
    cloud: str
    region: str
    batches: list[list[str]]
    steps: dict[str, list[str]]
    zones: dict[str, str | None]
    previews: dict[str, list[str]] = field(default_factory=dict)
    # what a batch holds: hosts, or servers (an instance campaign, keyed by server id)
    unit: str = "host"

    def as_dict(self) -> dict[str, Any]:
        return {
            "unit": self.unit,
            "name": self.name,
            "cloud": self.cloud,
            "region": self.region,
            "batches": self.batches,
            "steps": self.steps,
            "zones": self.zones,
            "previews": self.previews,
        }


def preview_apply(loaded: LoadedSpec, connector: Connector, host: str) -> list[str]:
    """The diff the config changes would make on `host` (playbooks and commands cannot
    be previewed: they are named)."""
    lines: list[str] = []
    for item in loaded.spec.steps.apply:
        if item.config is not None:
            current = connector.read_file(host, item.config.file) or ""
            wanted = edit_ini(current, item.config.set, item.config.unset)
            lines += diff(
                {"files": {item.config.file: current}}, {"files": {item.config.file: wanted}}
            )
        elif item.playbook:
            lines.append(f"# playbook {item.playbook}")
        elif item.command:
            lines.append(f"# command: {item.command}")
        elif item.packages:
            lines += [f"# package {n}={v}" for n, v in item.packages.versions.items()]
    return lines


def make_plan(
    loaded: LoadedSpec, conn: Any, store: Store, connector: Connector, now: datetime
) -> CampaignPlan:
    """Resolve the targets against the live cloud and check everything; CampaignError
    listing every problem (nothing started)."""
    spec = loaded.spec
    if spec.targets.instances is not None:
        return make_instance_plan(loaded, conn, store, connector, now)
    hosts = cloud_hosts(conn, store, spec.cloud)
    chosen, problems = select_hosts(loaded, hosts)
    problems += check_spec(loaded, now) + _pass_problems(loaded, store)
    canary = spec.steps.gate.canary
    if canary is not None:
        gates = GateRunner(loaded, conn, connector, store, 1.0)
        for field_, find in (("flavor", gates._flavor), ("image", gates._image)):
            try:
                find(getattr(canary, field_))
            except ActionError as exc:
                problems.append(loaded.problem(("steps", "gate", "canary", field_), str(exc)))
    if problems:
        raise CampaignError(problems)
    batches = batches_of(spec, chosen)
    plan = CampaignPlan(
        spec.name,
        spec.cloud,
        spec.region,
        batches,
        {h: host_steps(spec, hosts[h]) for h in chosen},
        {h: hosts[h].zone for h in chosen},
    )
    for host in batches[0] if batches else []:
        try:
            plan.previews[host] = preview_apply(loaded, connector, host)
        except ConnectorError as exc:
            plan.previews[host] = [f"# cannot preview: {exc}"]
    return plan


def _pass_problems(loaded: LoadedSpec, store: Store) -> list[Problem]:
    cloud = loaded.spec.cloud
    if any(p["status"] in ("complete", "partial") for p in store.list_passes(5, cloud)):
        return []
    return [
        loaded.problem(
            ("cloud",),
            f"no collection pass of cloud {cloud!r} in the store: run `stackfleet "
            f"collect {cloud}` first (the safety gate weighs each change against "
            "the inventory)",
        )
    ]


def make_instance_plan(
    loaded: LoadedSpec, conn: Any, store: Store, connector: Connector, now: datetime
) -> CampaignPlan:
    """An instance campaign's plan: the servers by batch (one at a time by default),
    each rebuilt onto the new image; CampaignError listing every problem."""
    spec = loaded.spec
    problems = check_spec(loaded, now) + _pass_problems(loaded, store)
    region = spec.region or None
    servers, _ = store.list_resources("server", cloud=spec.cloud, region=region)
    groups, _ = store.list_resources("server_group", cloud=spec.cloud, region=region)
    chosen, found = select_instances(loaded, servers, groups)
    problems += found
    wanted = str(spec.steps.apply[0].image)
    image = ""
    try:
        image = GateRunner(loaded, conn, connector, store, 1.0)._image(wanted)
    except ActionError:
        problems.append(loaded.problem(("steps", "apply", 0, "image"), f"unknown image {wanted!r}"))
    if problems:
        raise CampaignError(problems)
    ids = [str(s["id"]) for s in chosen]
    batches = batches_of(spec, ids)
    steps = instance_steps(spec.steps.rebuild.snapshot)
    names = {str(s["id"]): str(s.get("name") or s["id"]) for s in chosen}
    plan = CampaignPlan(
        spec.name,
        spec.cloud,
        spec.region,
        batches,
        {sid: list(steps) for sid in ids},
        {},
        unit="server",
    )
    for server in chosen:
        if str(server["id"]) in (batches[0] if batches else []):
            plan.previews[str(server["id"])] = [
                f"# rebuild {names[str(server['id'])]} from image {server.get('image_id')} "
                f"onto {image} ({wanted})"
            ]
    return plan
