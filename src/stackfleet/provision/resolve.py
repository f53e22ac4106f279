"""What the cloud has, read once per apply, and each workload's names resolved against
it: image, flavor (or the best-fitting one for a size), networks, security groups, key
pair, availability zone, and the backend the service catalog allows. An unknown name is
a problem naming the closest valid choices; nothing is created while any remains."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from stackfleet.engine.capacity import flavor_demand
from stackfleet.policy.errors import Problem
from stackfleet.provision.spec import NetworkRef, Size, Workload
from stackfleet.sources.openstack import compute, image
from stackfleet.sources.openstack.context import ListContext, list_kind
from stackfleet.sources.openstack.listing import ListingError, request_json

Record = dict[str, Any]


@dataclass
class CloudFacts:
    """The names a spec may use, read from one cloud region (one list call each)."""

    cloud: str
    region: str
    project_id: str
    user_id: str
    images: list[Record] = field(default_factory=list)
    flavors: list[Record] = field(default_factory=list)
    networks: list[Record] = field(default_factory=list)
    security_groups: list[Record] = field(default_factory=list)
    keypairs: list[str] = field(default_factory=list)
    zones: list[str] = field(default_factory=list)
    services: set[str] = field(default_factory=set)
    # standalone Ironic: the nodes the project's token lists (None: not read)
    baremetal_nodes: list[Record] | None = None


def read_facts(ctx: ListContext, project_id: str, user_id: str) -> CloudFacts:
    """Images, flavors, networks, security groups, key pairs and zones the project can
    use, and the service types of the catalog."""
    target = ctx.target
    conn = target.conn
    facts = CloudFacts(target.cloud, target.region, project_id, user_id)
    facts.images = [i for i in image.images(ctx) if i.get("status") == "active"]
    facts.flavors = compute.flavors(ctx)
    facts.networks = [
        n
        for n in list_kind(ctx, "network", conn.network, "/networks", "networks")
        if n.get("project_id") in (project_id, None, "") or n.get("shared") or n.get("external")
    ]
    facts.security_groups = list_kind(
        ctx,
        "security_group",
        conn.network,
        "/security-groups",
        "security_groups",
        {"project_id": project_id},
    )
    body = request_json(
        conn.compute, "/os-keypairs", ctx.log, ctx.label("compute", "/os-keypairs"),
        microversion=compute.MICROVERSION,
    )  # fmt: skip
    facts.keypairs = [str((k.get("keypair") or {}).get("name")) for k in body.get("keypairs") or []]
    zones = request_json(
        conn.compute,
        "/os-availability-zone",
        ctx.log,
        ctx.label("compute", "/os-availability-zone"),
    )
    facts.zones = [str(z.get("zoneName")) for z in zones.get("availabilityZoneInfo") or []]
    facts.services = catalog_types(conn)
    if "baremetal" in facts.services and not any(is_baremetal_flavor(f) for f in facts.flavors):
        try:
            body = request_json(
                conn.baremetal, "/nodes/detail", ctx.log, ctx.label("baremetal", "/nodes/detail"),
                microversion="1.78",
            )  # fmt: skip
            facts.baremetal_nodes = list(body.get("nodes") or [])
        except ListingError:
            facts.baremetal_nodes = None
    return facts


def catalog_types(conn: Any) -> set[str]:
    """The service types in the token's catalog."""
    try:
        access = conn.session.auth.get_access(conn.session)
        return {str(entry.get("type")) for entry in access.service_catalog.catalog or []}
    except Exception as exc:  # noqa: BLE001 - an unreadable catalog is a clear error below
        raise ListingError(f"reading the service catalog failed: {exc}") from exc


# -- resolution ----------------------------------------------------------------------


@dataclass
class Resolved:
    """A workload's names as ids, and the backend that will build it."""

    workload: Workload
    backend: str  # nova | ironic | zun
    image_id: str | None = None
    image_name: str | None = None
    flavor: Record | None = None
    flavor_chosen: bool = False  # picked for a size, not named
    networks: list[dict[str, str]] = field(default_factory=list)  # Nova's networks items
    security_groups: list[str] = field(default_factory=list)


def closest(name: str, choices: list[str], limit: int = 3) -> str:
    """'; closest: a, b' (or '; known: ...' when nothing is close)."""
    names = sorted({c for c in choices if c})
    close = difflib.get_close_matches(name, names, n=limit, cutoff=0.5)
    if close:
        return f"; closest: {', '.join(close)}"
    if not names:
        return "; there are none"
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return f"; known: {shown}"


def _names(records: list[Record]) -> list[str]:
    return [str(r.get("name")) for r in records]


def _find(records: list[Record], wanted: str) -> Record | None:
    by_id = next((r for r in records if r.get("id") == wanted), None)
    if by_id is not None:
        return by_id
    named = [r for r in records if r.get("name") == wanted]
    return named[0] if len(named) == 1 else (named[0] if named else None)


def best_flavor(flavors: list[Record], size: Size) -> Record | None:
    """The smallest public flavor holding `size` (fewest vCPUs, then least RAM, then
    least disk), bare-metal flavors left out."""
    fitting = [
        f
        for f in flavors
        if int(f.get("vcpus") or 0) >= size.vcpus
        and int(f.get("ram") or 0) >= size.ram
        and int(f.get("disk") or 0) >= size.disk
        and not is_baremetal_flavor(f)
    ]
    fitting.sort(
        key=lambda f: (
            int(f.get("vcpus") or 0),
            int(f.get("ram") or 0),
            int(f.get("disk") or 0),
            str(f.get("name")),
        )
    )
    return fitting[0] if fitting else None


def is_baremetal_flavor(flavor: Record) -> bool:
    """A flavor of Nova fronting Ironic: it asks for a custom resource class and
    zero VCPU/MEMORY_MB/DISK_GB (the Ironic install guide's flavor)."""
    specs = flavor.get("extra_specs") or {}
    custom = any(k.startswith("resources:CUSTOM_") and str(v) == "1" for k, v in specs.items())
    zeroed = str(specs.get("resources:VCPU")) == "0"
    return custom and zeroed


def resolve(workload: Workload, facts: CloudFacts) -> tuple[Resolved | None, list[Problem]]:
    """The workload's names against the cloud; problems name the field and the closest
    valid choices."""
    problems: list[Problem] = []

    def problem(field_name: str, message: str) -> None:
        problems.append(
            Problem(
                workload.source, workload.line, f"workload {workload.name!r} {field_name}", message
            )
        )

    backend = choose_backend(workload, facts, problem)
    resolved = Resolved(workload, backend or "")
    if backend == "ironic":
        _resolve_ironic(workload, facts, resolved, problem)
        return (resolved if not problems else None), problems
    if workload.image is not None:
        found = _find(facts.images, workload.image)
        if found is None:
            problem(
                "image",
                f"no image {workload.image!r}{closest(workload.image, _names(facts.images))}",
            )
        else:
            resolved.image_id, resolved.image_name = str(found["id"]), str(found.get("name"))
    size = workload.size
    if isinstance(size, str):
        flavor = _find(facts.flavors, size)
        if flavor is None:
            problem(
                "size",
                f"no flavor {size!r}{closest(size, [str(f.get('name')) for f in facts.flavors])}",
            )
        resolved.flavor = flavor
    elif isinstance(size, Size):
        flavor = best_flavor(facts.flavors, size)
        if flavor is None:
            largest = sorted(
                (f for f in facts.flavors if not is_baremetal_flavor(f)),
                key=lambda f: (int(f.get("vcpus") or 0), int(f.get("ram") or 0)),
            )
            biggest = largest[-1] if largest else None
            hint = (
                f"; the largest is {biggest.get('name')} ({biggest.get('vcpus')} vCPUs, "
                f"{biggest.get('ram')} MiB, {biggest.get('disk')} GiB)"
                if biggest
                else "; there are no flavors"
            )
            problem(
                "size",
                f"no flavor fits {size.vcpus} vCPUs, {size.ram} MiB RAM, "
                f"{size.disk} GiB disk{hint}",
            )
        resolved.flavor, resolved.flavor_chosen = flavor, True
    flavor = resolved.flavor
    if (
        workload.kind == "baremetal"
        and flavor
        and backend == "nova"
        and not is_baremetal_flavor(flavor)
    ):
        problem("size", f"flavor {flavor.get('name')!r} is not a bare-metal flavor")
    for index, net in enumerate(workload.networks):
        ref = net if isinstance(net, NetworkRef) else NetworkRef(network=net)
        if ref.port:
            resolved.networks.append({"port": ref.port})
            continue
        assert ref.network is not None
        found = _find(facts.networks, ref.network)
        if found is None:
            problem(
                f"networks[{index}]",
                f"no network {ref.network!r}{closest(ref.network, _names(facts.networks))}",
            )
            continue
        item = {"uuid": str(found["id"])}
        if ref.fixed_ip:
            item["fixed_ip"] = ref.fixed_ip
        resolved.networks.append(item)
    for index, group in enumerate(workload.security_groups):
        found = _find(facts.security_groups, group)
        if found is None:
            problem(
                f"security_groups[{index}]",
                f"no security group {group!r}{closest(group, _names(facts.security_groups))}",
            )
            continue
        resolved.security_groups.append(str(found.get("name")))
    if workload.key_pair is not None and workload.key_pair not in facts.keypairs:
        problem(
            "key_pair",
            f"no key pair {workload.key_pair!r}{closest(workload.key_pair, facts.keypairs)}",
        )
    zone = workload.placement.availability_zone
    if zone is not None and zone not in facts.zones:
        problem(
            "placement.availability_zone",
            f"no availability zone {zone!r}{closest(zone, facts.zones)}",
        )
    return (resolved if not problems else None), problems


def _resolve_ironic(
    workload: Workload, facts: CloudFacts, resolved: Resolved, problem: Any
) -> None:
    """Standalone Ironic: an image (Glance) and a resource class its nodes have; Nova's
    size, volumes and server groups do not apply."""
    if workload.image is not None:
        found = _find(facts.images, workload.image)
        if found is None:
            problem(
                "image",
                f"no image {workload.image!r}{closest(workload.image, _names(facts.images))}",
            )
        else:
            resolved.image_id, resolved.image_name = str(found["id"]), str(found.get("name"))
    rc = workload.baremetal.resource_class if workload.baremetal else None
    classes = sorted({str(n.get("resource_class")) for n in facts.baremetal_nodes or []})
    if not rc:
        problem(
            "baremetal.resource_class",
            "standalone Ironic needs a resource class"
            + (f"; the nodes have: {', '.join(classes)}" if classes else ""),
        )
    elif facts.baremetal_nodes is not None and rc not in classes:
        problem(
            "baremetal.resource_class",
            f"no node has resource class {rc!r}{closest(rc, classes)}",
        )
    if workload.volumes is not None:
        problem("volumes", "standalone Ironic deploys to the node's own disks: no volumes")
    if workload.placement.server_group:
        problem("placement.server_group", "server groups are Nova's: not for standalone Ironic")


def choose_backend(workload: Workload, facts: CloudFacts, problem: Any) -> str | None:
    """From the kind and the service catalog, not from flags: vm -> Nova; baremetal ->
    Nova with a bare-metal flavor when Nova fronts Ironic, else standalone Ironic;
    container -> Zun when the catalog has a `container` service."""
    if workload.kind == "vm":
        if "compute" not in facts.services:
            problem("kind", "the cloud has no compute (Nova) service in its catalog")
            return None
        return "nova"
    if workload.kind == "container":
        if "container" not in facts.services:
            problem(
                "kind",
                "the cloud has no Container service (Zun, catalog type 'container'); "
                f"its catalog has: {', '.join(sorted(facts.services))}",
            )
            return None
        return "zun"
    if "compute" in facts.services and any(is_baremetal_flavor(f) for f in facts.flavors):
        return "nova"
    if "baremetal" in facts.services:
        return "ironic"
    problem("kind", "the cloud has neither bare-metal flavors in Nova nor an Ironic service")
    return None


def demand_of(resolved: Resolved) -> dict[str, int]:
    """What one member allocates in Placement (engine.capacity's flavor demand; no root
    disk when it boots from a volume)."""
    if resolved.flavor is None:
        return {}
    demand = flavor_demand(resolved.flavor)
    volumes = resolved.workload.volumes
    if volumes is not None and volumes.boot is not None:
        demand["disk_gb"] = max(0, demand.get("disk_gb", 0) - int(resolved.flavor.get("disk") or 0))
        if not demand["disk_gb"]:
            del demand["disk_gb"]
    return demand
