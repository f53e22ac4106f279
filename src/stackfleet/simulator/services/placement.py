"""Placement for the simulated cloud: resource providers, their inventories, usages,
traits and aggregates, and the allocations of consumers.

Served at ``/{region}/placement``. Providers, inventories and usages come from
`RegionState` (``resource_providers``, ``inventories``, ``usages``, ``provider_traits``,
``provider_aggregates``); allocations are derived from the servers (each server holds
its flavor's resources on its node's provider) and from cold migrations waiting for
confirmation (which hold the source node's share), the way Nova writes them. Everything
is read-only here: Nova's actions change the state. Placement's policy defaults make
every call admin-only, and so does the simulator. docs/simulator-compute.md lists the
known differences from real Placement.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from stackfleet.simulator.http import ApiError, empty_response, json_response, require_token
from stackfleet.simulator.services.nova import (
    migration_holds,
    parse_version,
    provider_fits,
    provider_traits,
    provider_usages,
    providers_by_name,
    requested_microversion,
    server_provider,
    server_resources,
    version_string,
)
from stackfleet.simulator.state import RegionState

if TYPE_CHECKING:
    from stackfleet.simulator.app import Simulator

Obj = dict[str, Any]
Version = tuple[int, int]

MIN_VERSION: Version = (1, 0)
# The latest microversion of Placement 2023.1 and later releases.
MAX_VERSION: Version = (1, 39)

# os-resource-classes' standard classes, in its order.
STANDARD_RESOURCE_CLASSES = (
    "VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE", "SRIOV_NET_VF", "NUMA_SOCKET",
    "NUMA_CORE", "NUMA_THREAD", "NUMA_MEMORY_MB", "IPV4_ADDRESS", "VGPU",
    "VGPU_DISPLAY_HEAD", "NET_BW_EGR_KILOBIT_PER_SEC", "NET_BW_IGR_KILOBIT_PER_SEC",
    "PCPU", "MEM_ENCRYPTION_CONTEXT", "FPGA", "PGPU",
    "NET_PACKET_RATE_KILOPACKET_PER_SEC", "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
    "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
)  # fmt: skip

# A part of os-traits' standard traits (the full library has hundreds), enough for the
# traits compute nodes report and the ones operators filter on.
STANDARD_TRAITS = (
    "COMPUTE_ACCELERATORS", "COMPUTE_DEVICE_TAGGING", "COMPUTE_EPHEMERAL_ENCRYPTION",
    "COMPUTE_GRAPHICS_MODEL_VIRTIO", "COMPUTE_IMAGE_TYPE_AMI", "COMPUTE_IMAGE_TYPE_ISO",
    "COMPUTE_IMAGE_TYPE_QCOW2", "COMPUTE_IMAGE_TYPE_RAW", "COMPUTE_IMAGE_TYPE_VMDK",
    "COMPUTE_MANAGED_PCI_DEVICE", "COMPUTE_NET_ATTACH_INTERFACE",
    "COMPUTE_NET_ATTACH_INTERFACE_WITH_TAG", "COMPUTE_NET_VIF_MODEL_E1000",
    "COMPUTE_NET_VIF_MODEL_VIRTIO", "COMPUTE_NODE", "COMPUTE_RESCUE_BFV",
    "COMPUTE_SAME_HOST_COLD_MIGRATE", "COMPUTE_SECURITY_UEFI_SECURE_BOOT",
    "COMPUTE_SOCKET_PCI_NUMA_AFFINITY", "COMPUTE_STATUS_DISABLED",
    "COMPUTE_STORAGE_BUS_IDE", "COMPUTE_STORAGE_BUS_SATA", "COMPUTE_STORAGE_BUS_SCSI",
    "COMPUTE_STORAGE_BUS_USB", "COMPUTE_STORAGE_BUS_VIRTIO", "COMPUTE_TRUSTED_CERTS",
    "COMPUTE_VOLUME_ATTACH_WITH_TAG", "COMPUTE_VOLUME_EXTEND", "COMPUTE_VOLUME_MULTI_ATTACH",
    "HW_CPU_HYPERTHREADING", "HW_CPU_X86_AESNI", "HW_CPU_X86_AVX", "HW_CPU_X86_AVX2",
    "HW_CPU_X86_AVX512F", "HW_CPU_X86_SSE", "HW_CPU_X86_SSE2", "HW_CPU_X86_SSE41",
    "HW_CPU_X86_SSE42", "HW_CPU_X86_SSSE3", "HW_CPU_X86_VMX", "HW_NIC_SRIOV",
    "MISC_SHARES_VIA_AGGREGATE", "STORAGE_DISK_HDD", "STORAGE_DISK_SSD",
)  # fmt: skip

# webob's explanation of each status, which Placement's error detail starts with.
_EXPLANATIONS = {
    400: (
        "Bad Request",
        "The server could not comply with the request since it is either malformed or "
        "otherwise incorrect.",
    ),
    401: ("Unauthorized", "This server could not verify that you are authorized to access "
          "the document you requested."),
    403: ("Forbidden", "Access was denied to this resource."),
    404: ("Not Found", "The resource could not be found."),
    406: ("Not Acceptable", "The resource could not be generated that was acceptable to your "
          "browser."),
}  # fmt: skip

# Query parameters GET /resource_providers accepts, from a microversion on.
_PROVIDER_FILTERS_SINCE: tuple[tuple[Version, str], ...] = (
    ((1, 0), "name"),
    ((1, 0), "uuid"),
    ((1, 3), "member_of"),
    ((1, 4), "resources"),
    ((1, 14), "in_tree"),
    ((1, 18), "required"),
)


@dataclass(frozen=True)
class _Call:
    version: Version
    request_id: str
    prefix: str  # the path Placement is mounted at, e.g. /RegionOne/placement

    def at_least(self, minor: int) -> bool:
        return self.version >= (1, minor)


Handler = Callable[[Request, _Call], Awaitable[Response]]


def placement_error(
    status: int, message: str, *, request_id: str = "", version: Version | None = None
) -> ApiError:
    """An ApiError with Placement's error body (the api-sig errors document)."""
    title, explanation = _EXPLANATIONS.get(status, ("Error", ""))
    error: Obj = {
        "status": status,
        "title": title,
        "detail": f"{explanation}\n\n {message}  ",
        "request_id": request_id,
    }
    if version is not None and version >= (1, 23):
        error["code"] = "placement.undefined_code"
    return ApiError(status, {"errors": [error]})


class _NotFoundApp:
    """Answers paths the router does not know with Placement's 404 body."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = placement_error(404, "", request_id=f"req-{uuid.uuid4()}")
        await json_response(error.body, 404)(scope, receive, send)


class Placement:
    """The routes of the simulated Placement of one region."""

    def __init__(self, sim: Simulator, region: RegionState) -> None:
        self.sim = sim
        self.region = region

    def routes(self) -> list[Route]:
        r = self._route
        rp = "/resource_providers/{uuid}"
        return [
            r("/", self.root, auth=False),
            r("/resource_providers", self.list_providers, "resource_providers:list"),
            r(rp, self.show_provider, "resource_providers:show"),
            r(f"{rp}/inventories", self.list_inventories, "inventories:list"),
            r(f"{rp}/inventories/{{resource_class}}", self.show_inventory, "inventories:show"),
            r(f"{rp}/usages", self.provider_usages, "resource_providers:usages"),
            r(f"{rp}/aggregates", self.provider_aggregates, "resource_providers:aggregates:list"),
            r(f"{rp}/traits", self.provider_traits, "resource_providers:traits:list"),
            r(
                f"{rp}/allocations",
                self.provider_allocations,
                "resource_providers:allocations:list",
            ),
            r("/usages", self.total_usages, "usages"),
            r("/allocations/{consumer}", self.consumer_allocations, "allocations:list"),
            r("/resource_classes", self.list_resource_classes, "resource_classes:list"),
            r("/resource_classes/{name}", self.show_resource_class, "resource_classes:show"),
            r("/traits", self.list_traits, "traits:list"),
            r("/traits/{name}", self.show_trait, "traits:show"),
        ]

    def _route(self, path: str, handler: Handler, rule: str = "", *, auth: bool = True) -> Route:
        async def endpoint(request: Request) -> Response:
            request_id = f"req-{uuid.uuid4()}"
            version: Version | None = None
            try:
                token = require_token(self.sim, request) if auth else None
                version = self._negotiate(request, request_id)
                if token is not None and not any(
                    role.get("name") == "admin" for role in token.get("roles") or []
                ):
                    raise placement_error(
                        403,
                        f"Policy does not allow placement:{rule} to be performed.",
                        request_id=request_id,
                        version=version,
                    )
                prefix = urlsplit(
                    str(request.base_url).rstrip("/")
                    + request.scope.get("root_path", "")[
                        len(request.scope.get("app_root_path", "")) :
                    ]
                ).path
                response = await handler(request, _Call(version, request_id, prefix))
                if version >= (1, 15) and response.status_code == 200:
                    response.headers["Cache-Control"] = "no-cache"
                    response.headers["Last-Modified"] = formatdate(usegmt=True)
            except ApiError as exc:
                response = json_response(exc.body, exc.status, exc.headers)
            if version is not None:
                response.headers["OpenStack-API-Version"] = f"placement {version_string(version)}"
                response.headers["Vary"] = "openstack-api-version"
            response.headers["X-OpenStack-Request-ID"] = request_id
            return response

        return Route(path, endpoint, methods=["GET"])

    @staticmethod
    def _negotiate(request: Request, request_id: str) -> Version:
        raw = requested_microversion(request.headers, "placement")
        if raw is None:
            return MIN_VERSION
        if raw.lower() == "latest":
            return MAX_VERSION
        version = parse_version(raw)
        if version is None:
            raise placement_error(
                400, f"Invalid microversion: invalid version string: {raw}", request_id=request_id
            )
        if not MIN_VERSION <= version <= MAX_VERSION:
            raise placement_error(
                406,
                f"Invalid microversion: Unacceptable version header: {raw}",
                request_id=request_id,
            )
        return version

    @staticmethod
    def _error(call: _Call, status: int, message: str) -> ApiError:
        return placement_error(status, message, request_id=call.request_id, version=call.version)

    def _check_params(self, request: Request, call: _Call, allowed: Iterable[str]) -> None:
        unexpected = sorted(set(request.query_params) - set(allowed))
        if unexpected:
            quoted = ", ".join(f"'{name}'" for name in unexpected)
            verb = "were" if len(unexpected) > 1 else "was"
            raise self._error(
                call,
                400,
                "Invalid query string parameters: Additional properties are not allowed "
                f"({quoted} {verb} unexpected)",
            )

    def _provider(self, call: _Call, provider_uuid: str) -> Obj:
        provider = self.region.resource_providers.get(provider_uuid)
        if provider is None:
            raise self._error(call, 404, f"No resource provider with uuid {provider_uuid} found")
        return provider

    def _generation(self, provider_uuid: str) -> int:
        return int(self.region.resource_providers[provider_uuid].get("generation") or 0)

    # -- root -------------------------------------------------------------------------

    async def root(self, request: Request, call: _Call) -> Response:
        version = {
            "id": f"v{version_string(MIN_VERSION)}",
            "max_version": version_string(MAX_VERSION),
            "min_version": version_string(MIN_VERSION),
            "status": "CURRENT",
            "links": [{"rel": "self", "href": ""}],
        }
        return json_response({"versions": [version]})

    # -- resource providers -----------------------------------------------------------

    def render_provider(self, provider: Obj, call: _Call) -> Obj:
        """A stored provider shaped for the microversion, with its links."""
        provider_uuid = provider["uuid"]
        url = f"{call.prefix}/resource_providers/{provider_uuid}"
        rels = ["inventories", "usages"]
        if call.at_least(1):
            rels.append("aggregates")
        if call.at_least(6):
            rels.append("traits")
        if call.at_least(11):
            rels.append("allocations")
        out: Obj = {
            "uuid": provider_uuid,
            "name": provider.get("name"),
            "generation": int(provider.get("generation") or 0),
            "links": [{"rel": "self", "href": url}]
            + [{"rel": rel, "href": f"{url}/{rel}"} for rel in rels],
        }
        if call.at_least(14):
            out["parent_provider_uuid"] = provider.get("parent_provider_uuid")
            out["root_provider_uuid"] = provider.get("root_provider_uuid") or provider_uuid
        return out

    async def list_providers(self, request: Request, call: _Call) -> Response:
        allowed = [name for since, name in _PROVIDER_FILTERS_SINCE if call.version >= since]
        self._check_params(request, call, allowed)
        params = request.query_params
        checks: list[Callable[[Obj], bool]] = []
        if "name" in params:
            name = params["name"]
            checks.append(lambda p: p.get("name") == name)
        if "uuid" in params:
            wanted = params["uuid"]
            checks.append(lambda p: p.get("uuid") == wanted)
        if "member_of" in params:
            checks.append(self._member_of_check(request, call))
        if "resources" in params:
            resources = self._parse_resources(call, params["resources"])
            checks.append(lambda p: provider_fits(self.region, p["uuid"], resources))
        if "in_tree" in params:
            anchor = self.region.resource_providers.get(params["in_tree"])
            if anchor is None:
                return json_response({"resource_providers": []})
            root = anchor.get("root_provider_uuid") or anchor["uuid"]
            checks.append(lambda p: (p.get("root_provider_uuid") or p["uuid"]) == root)
        if "required" in params:
            checks.append(self._required_check(request, call))
        providers = [
            self.render_provider(p, call)
            for p in self.region.resource_providers.values()
            if all(check(p) for check in checks)
        ]
        return json_response({"resource_providers": providers})

    def _member_of_check(self, request: Request, call: _Call) -> Callable[[Obj], bool]:
        values = request.query_params.getlist("member_of")
        if len(values) > 1 and not call.at_least(24):
            raise self._error(call, 400, "Multiple member_of parameters are not supported")
        groups: list[set[str]] = []
        forbidden: set[str] = set()
        for value in values:
            negative = value.startswith("!") and call.at_least(32)
            body = value[1:] if negative else value
            members = body[3:] if body.startswith("in:") else body
            uuids = [m.strip() for m in members.split(",")]
            for candidate in uuids:
                try:
                    uuid.UUID(candidate)
                except ValueError as exc:
                    raise self._error(
                        call,
                        400,
                        "Expected 'member_of' parameter to contain valid UUID(s). "
                        f"Got: {candidate}",
                    ) from exc
            if negative:
                forbidden.update(uuids)
            else:
                groups.append(set(uuids))

        def check(provider: Obj) -> bool:
            aggregates = set(self.region.provider_aggregates.get(provider["uuid"], []))
            return all(aggregates & group for group in groups) and not aggregates & forbidden

        return check

    def _known_resource_classes(self) -> list[str]:
        custom = sorted(
            {
                rc
                for inventory in self.region.inventories.values()
                for rc in inventory
                if rc not in STANDARD_RESOURCE_CLASSES
            }
        )
        return [*STANDARD_RESOURCE_CLASSES, *custom]

    def _parse_resources(self, call: _Call, raw: str) -> dict[str, int]:
        known = set(self._known_resource_classes())
        resources: dict[str, int] = {}
        for part in raw.split(","):
            name, _, amount = part.partition(":")
            try:
                value = int(amount)
            except ValueError:
                value = 0
            if not name or value < 1:
                raise self._error(
                    call,
                    400,
                    "Badly formed resources parameter. Expected resources query string "
                    "parameter in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: "
                    f"{raw}.",
                )
            if name not in known:
                raise self._error(
                    call,
                    400,
                    f"Invalid resource class in resources parameter: No such resource class "
                    f"{name}.",
                )
            resources[name] = value
        return resources

    def _known_traits(self) -> set[str]:
        known = set(STANDARD_TRAITS)
        for provider_uuid in self.region.resource_providers:
            known.update(provider_traits(self.region, provider_uuid))
        return known

    def _required_check(self, request: Request, call: _Call) -> Callable[[Obj], bool]:
        names = [n.strip() for n in request.query_params["required"].split(",") if n.strip()]
        required = {n for n in names if not n.startswith("!")}
        forbidden = {n[1:] for n in names if n.startswith("!")}
        if forbidden and not call.at_least(22):
            required |= {f"!{n}" for n in forbidden}
            forbidden = set()
        unknown = sorted((required | forbidden) - self._known_traits())
        if unknown:
            raise self._error(
                call,
                400,
                'Invalid trait(s) in "required" parameter: No such trait(s): '
                f"{', '.join(unknown)}.",
            )

        def check(provider: Obj) -> bool:
            traits = set(provider_traits(self.region, provider["uuid"]))
            return required <= traits and not traits & forbidden

        return check

    async def show_provider(self, request: Request, call: _Call) -> Response:
        provider = self._provider(call, request.path_params["uuid"])
        return json_response(self.render_provider(provider, call))

    async def list_inventories(self, request: Request, call: _Call) -> Response:
        provider_uuid = self._provider(call, request.path_params["uuid"])["uuid"]
        inventories = {
            rc: dict(inventory)
            for rc, inventory in self.region.inventories.get(provider_uuid, {}).items()
        }
        return json_response(
            {
                "inventories": inventories,
                "resource_provider_generation": self._generation(provider_uuid),
            }
        )

    async def show_inventory(self, request: Request, call: _Call) -> Response:
        provider_uuid = self._provider(call, request.path_params["uuid"])["uuid"]
        resource_class = request.path_params["resource_class"]
        inventory = self.region.inventories.get(provider_uuid, {}).get(resource_class)
        if inventory is None:
            raise self._error(
                call, 404, f"No inventory of class {resource_class} for {provider_uuid}"
            )
        return json_response(
            {**inventory, "resource_provider_generation": self._generation(provider_uuid)}
        )

    async def provider_usages(self, request: Request, call: _Call) -> Response:
        provider_uuid = self._provider(call, request.path_params["uuid"])["uuid"]
        return json_response(
            {
                "resource_provider_generation": self._generation(provider_uuid),
                "usages": provider_usages(self.region, provider_uuid),
            }
        )

    async def provider_aggregates(self, request: Request, call: _Call) -> Response:
        if not call.at_least(1):
            raise self._error(call, 404, "")
        provider_uuid = self._provider(call, request.path_params["uuid"])["uuid"]
        body: Obj = {"aggregates": list(self.region.provider_aggregates.get(provider_uuid, []))}
        if call.at_least(19):
            body["resource_provider_generation"] = self._generation(provider_uuid)
        return json_response(body)

    async def provider_traits(self, request: Request, call: _Call) -> Response:
        if not call.at_least(6):
            raise self._error(call, 404, "")
        provider_uuid = self._provider(call, request.path_params["uuid"])["uuid"]
        return json_response(
            {
                "traits": provider_traits(self.region, provider_uuid),
                "resource_provider_generation": self._generation(provider_uuid),
            }
        )

    # -- allocations and usages -------------------------------------------------------

    def _consumers(self) -> Iterable[tuple[str, str, Obj, str, dict[str, int]]]:
        """Every consumer holding an allocation: (consumer uuid, consumer type, owner
        object with project/user, provider uuid, resources)."""
        by_name = providers_by_name(self.region)
        for server in self.region.servers.values():
            provider = server_provider(self.region, server, by_name)
            if provider:
                owner = {"project_id": server.get("tenant_id"), "user_id": server.get("user_id")}
                yield server["id"], "INSTANCE", owner, provider, server_resources(server)
        for migration in self.region.migrations.values():
            if not migration_holds(self.region, migration):
                continue
            provider = by_name.get(migration.get("source_node") or "")
            if provider:
                server = self.region.servers[migration["instance_uuid"]]
                yield migration["uuid"], "MIGRATION", migration, provider, server_resources(server)

    async def provider_allocations(self, request: Request, call: _Call) -> Response:
        provider_uuid = self._provider(call, request.path_params["uuid"])["uuid"]
        allocations = {
            consumer: {"resources": resources}
            for consumer, _, _, provider, resources in self._consumers()
            if provider == provider_uuid and resources
        }
        return json_response(
            {
                "allocations": allocations,
                "resource_provider_generation": self._generation(provider_uuid),
            }
        )

    async def consumer_allocations(self, request: Request, call: _Call) -> Response:
        consumer_uuid = request.path_params["consumer"]
        found = self._consumer(consumer_uuid)
        if found is None:
            return json_response({"allocations": {}})
        kind, owner, provider, resources = found
        body: Obj = {
            "allocations": {
                provider: {"generation": self._generation(provider), "resources": resources}
            }
        }
        if call.at_least(12):
            body["project_id"] = owner.get("project_id")
            body["user_id"] = owner.get("user_id")
        if call.at_least(28):
            body["consumer_generation"] = 1
        if call.at_least(38):
            body["consumer_type"] = kind
        return json_response(body)

    def _consumer(self, consumer_uuid: str) -> tuple[str, Obj, str, dict[str, int]] | None:
        server = self.region.servers.get(consumer_uuid)
        if server is not None:
            provider = server_provider(self.region, server)
            if provider is None:
                return None
            owner = {"project_id": server.get("tenant_id"), "user_id": server.get("user_id")}
            return "INSTANCE", owner, provider, server_resources(server)
        migration = self.region.migrations.get(consumer_uuid)
        if migration is not None and migration_holds(self.region, migration):
            provider = providers_by_name(self.region).get(migration.get("source_node") or "")
            if provider:
                held = server_resources(self.region.servers[migration["instance_uuid"]])
                return "MIGRATION", migration, provider, held
        return None

    async def total_usages(self, request: Request, call: _Call) -> Response:
        if not call.at_least(9):
            raise self._error(call, 404, "")
        allowed = ["project_id", "user_id"] + (["consumer_type"] if call.at_least(38) else [])
        self._check_params(request, call, allowed)
        params = request.query_params
        project_id = params.get("project_id")
        if not project_id:
            raise self._error(
                call, 400, "Invalid query string parameters: 'project_id' is a required property"
            )
        user_id = params.get("user_id")
        wanted_type = params.get("consumer_type")
        per_type: dict[str, Obj] = {}
        totals: dict[str, int] = {}
        for consumer, kind, owner, _, resources in self._consumers():
            if owner.get("project_id") != project_id:
                continue
            if user_id and owner.get("user_id") != user_id:
                continue
            bucket = per_type.setdefault(kind, {"consumer_count": 0, "consumers": set()})
            bucket["consumers"].add(consumer)
            for rc, amount in resources.items():
                bucket[rc] = bucket.get(rc, 0) + amount
                totals[rc] = totals.get(rc, 0) + amount
        if not call.at_least(38):
            return json_response({"usages": totals})
        for bucket in per_type.values():
            bucket["consumer_count"] = len(bucket.pop("consumers"))
        if wanted_type == "all":
            consumers = sum(b["consumer_count"] for b in per_type.values())
            return json_response({"usages": {"all": {"consumer_count": consumers, **totals}}})
        if wanted_type:
            per_type = {k: v for k, v in per_type.items() if k == wanted_type}
        return json_response({"usages": per_type})

    # -- resource classes and traits --------------------------------------------------

    async def list_resource_classes(self, request: Request, call: _Call) -> Response:
        if not call.at_least(2):
            raise self._error(call, 404, "")
        classes = [
            {
                "name": name,
                "links": [{"rel": "self", "href": f"{call.prefix}/resource_classes/{name}"}],
            }
            for name in self._known_resource_classes()
        ]
        return json_response({"resource_classes": classes})

    async def show_resource_class(self, request: Request, call: _Call) -> Response:
        if not call.at_least(2):
            raise self._error(call, 404, "")
        name = request.path_params["name"]
        if name not in self._known_resource_classes():
            raise self._error(call, 404, f"No such resource class {name}.")
        links = [{"rel": "self", "href": f"{call.prefix}/resource_classes/{name}"}]
        return json_response({"name": name, "links": links})

    async def list_traits(self, request: Request, call: _Call) -> Response:
        if not call.at_least(6):
            raise self._error(call, 404, "")
        self._check_params(request, call, ["name", "associated"])
        traits = self._known_traits()
        raw_name = request.query_params.get("name")
        if raw_name is not None:
            operator, _, argument = raw_name.partition(":")
            if operator == "startswith" and argument:
                traits = {t for t in traits if t.startswith(argument)}
            elif operator == "in" and argument:
                traits &= {n.strip() for n in argument.split(",")}
            else:
                raise self._error(
                    call,
                    400,
                    "Badly formatted name parameter. Expected name query string parameter in "
                    "form: ?name=[in|startswith]:[name1,name2|prefix]. "
                    f'Got: "{raw_name}"',
                )
        associated = request.query_params.get("associated")
        if associated is not None:
            flag = associated.lower()
            if flag not in ("true", "false"):
                raise self._error(
                    call,
                    400,
                    'The query parameter "associated" only accepts "true" or "false"',
                )
            used = {
                t for p in self.region.resource_providers for t in provider_traits(self.region, p)
            }
            traits = traits & used if flag == "true" else traits - used
        return json_response({"traits": sorted(traits)})

    async def show_trait(self, request: Request, call: _Call) -> Response:
        if not call.at_least(6):
            raise self._error(call, 404, "")
        name = request.path_params["name"]
        if name not in self._known_traits():
            raise self._error(call, 404, f"No such trait(s): {name}.")
        return empty_response(204)


def build(sim: Simulator, region: RegionState) -> Router:
    """The Placement router of one region, mounted at ``/{region}/placement``."""
    placement = Placement(sim, region)
    return Router(routes=placement.routes(), default=_NotFoundApp())
