"""The simulated Cinder (Block Storage API v3) of one region.

Every v3 route answers both with and without the project id in the URL (the latter is
documented from microversion 3.67; Cinder's router accepts it at any version). The
microversion comes from ``OpenStack-API-Version: volume 3.x`` (default 3.0, ``latest``
= 3.71) and is echoed back with ``Vary``; volume and snapshot fields appear from the
microversion that introduced them, admin-only fields only for admins. Errors carry
Cinder's ``{"itemNotFound": {"code": 404, "message": ...}}`` style bodies.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from stackfleet.simulator.http import ApiError, json_response, require_token, sort_objects
from stackfleet.simulator.listcache import EncodedList, EncodedObjects, OrderCache, SortedOrder
from stackfleet.simulator.notifications import notify_volume
from stackfleet.simulator.state import Obj, RegionState

if TYPE_CHECKING:
    from stackfleet.simulator.app import Simulator

MIN_VERSION = (3, 0)
MAX_VERSION = (3, 71)
VERSION_UPDATED = "2023-08-31T00:00:00Z"
MAX_LIMIT = 1000  # osapi_max_limit

# Cinder's fault names by status (cinder/api/openstack/wsgi.py Fault).
_FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    501: "notImplemented",
    503: "serviceUnavailable",
}

# Volume detail fields added by a microversion (cinder/api/v3/views/volumes.py).
VOLUME_FIELD_VERSIONS: dict[str, tuple[int, int]] = {
    "group_id": (3, 13),
    "provider_id": (3, 21),
    "shared_targets": (3, 48),
    "service_uuid": (3, 48),
    "cluster_name": (3, 61),
    "volume_type_id": (3, 63),
    "encryption_key_id": (3, 64),
    "consumes_quota": (3, 65),
}
VOLUME_ADMIN_FIELDS = frozenset(
    {
        "os-vol-host-attr:host",
        "os-vol-mig-status-attr:migstat",
        "os-vol-mig-status-attr:name_id",
        "migration_status",
        "provider_id",
        "cluster_name",
    }
)
SNAPSHOT_FIELD_VERSIONS: dict[str, tuple[int, int]] = {
    "group_snapshot_id": (3, 14),
    "user_id": (3, 41),
    "consumes_quota": (3, 65),
}
# Backup detail fields added by a microversion (cinder/api/v3/views/backups.py,
# cinder/api/v3/backups.py); the project and user ids only for admins
# (backup:backup_project_attribute).
BACKUP_FIELD_VERSIONS: dict[str, tuple[int, int]] = {
    "metadata": (3, 43),
    "os-backup-project-attr:project_id": (3, 18),
    "user_id": (3, 56),
    "encryption_key_id": (3, 64),
}
BACKUP_ADMIN_FIELDS = frozenset({"os-backup-project-attr:project_id", "user_id"})
# The detail fields every microversion shows, in Cinder's order (views/backups.py)
_BACKUP_DETAIL_FIELDS = (
    "id", "status", "size", "object_count", "availability_zone", "container", "created_at",
    "updated_at", "name", "description", "fail_reason", "volume_id", "is_incremental",
    "has_dependent_backups", "snapshot_id", "data_timestamp",
)  # fmt: skip
_BACKUP_PROJECT = "os-backup-project-attr:project_id"
# The columns of Cinder's Backup model a listing sorts by (others are a 400); `name` is
# accepted from 3.37 (BACKUP_SORT_NAME)
# Backup model columns stored under their API names
_BACKUP_SORT_ALIASES = {
    "display_name": "name",
    "display_description": "description",
    "project_id": _BACKUP_PROJECT,
    "parent_id": "_parent_id",
    "host": "_host",
}
_BACKUP_SORT_KEYS = frozenset(
    {"id", "user_id", "project_id", "volume_id", "host", "availability_zone", "display_name",
     "display_description", "container", "parent_id", "status", "fail_reason", "size",
     "object_count", "snapshot_id", "data_timestamp", "encryption_key_id", "created_at",
     "updated_at"}
)  # fmt: skip
# What the backup driver answers for the container when the request names none (the Swift
# driver's default backup_swift_container)
_DEFAULT_BACKUP_CONTAINER = "volumebackups"
SERVICE_FIELD_VERSIONS: dict[str, tuple[int, int]] = {
    "cluster": (3, 7),
    "backend_state": (3, 49),
}
# Filters a non-admin may use from 3.34 (Cinder's default resource_filters.json).
USER_VOLUME_FILTERS = frozenset(
    {"name", "status", "metadata", "bootable", "migration_status", "availability_zone",
     "group_id", "size", "created_at", "updated_at"}
)  # fmt: skip
USER_SNAPSHOT_FILTERS = frozenset({"name", "status", "volume_id", "metadata", "availability_zone"})
USER_BACKUP_FILTERS = frozenset({"name", "status", "volume_id"})
_LIST_CONTROLS = frozenset(
    {"limit", "marker", "offset", "sort", "sort_key", "sort_dir", "all_tenants", "with_count"}
)
_DELETABLE_STATUSES = ("available", "error", "error_restoring", "error_extending", "error_managing")
_DELETE_REFUSED = (
    "Invalid volume: Volume status must be available or error or error_restoring or "
    "error_extending or error_managing and must not be migrating, attached, belong to a "
    "group, have snapshots or be disassociated from snapshots after volume transfer."
)
_DEFAULT_TYPE = "__DEFAULT__"
_TYPE_NAMESPACE = uuid.UUID("5b0e2a59-1b8e-4a53-9a53-3f6c3f0a8d11")

DEFAULT_LIMITS = {
    "maxTotalVolumes": 10,
    "maxTotalSnapshots": 10,
    "maxTotalVolumeGigabytes": 1000,
    "maxTotalBackups": 10,
    "maxTotalBackupGigabytes": 1000,
}

Version = tuple[int, int]


def cinder_error(status: int, message: str, version: Version | None = None) -> ApiError:
    """An ApiError with Cinder's fault body, request id and (when known) version headers."""
    name = _FAULT_NAMES.get(status, "computeFault")
    return ApiError(status, {name: {"code": status, "message": message}}, _headers(version))


def _headers(version: Version | None) -> dict[str, str]:
    headers = {"x-openstack-request-id": f"req-{uuid.uuid4()}"}
    if version is not None:
        headers["OpenStack-API-Version"] = f"volume {version[0]}.{version[1]}"
        headers["Vary"] = "OpenStack-API-Version"
    return headers


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("1", "true", "yes", "on", "t", "y")


def _bool_param(name: str, value: str | None, version: Version) -> bool:
    """Cinder's strict boolean parameters: a non-boolean word is a 400."""
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on", "t", "y"):
        return True
    if lowered in ("0", "false", "no", "off", "f", "n", ""):
        return False
    raise cinder_error(400, f"Invalid value '{value}' for {name}: it must be a boolean.", version)


def parse_version(header: str | None) -> Version:
    """The requested volume microversion (3.0 when the header names none)."""
    if not header:
        return MIN_VERSION
    requested: str | None = None
    for part in header.split(","):
        words = part.split()
        if len(words) == 2 and words[0].lower() == "volume":
            requested = words[1]
            break
    if requested is None:
        return MIN_VERSION
    if requested.lower() == "latest":
        return MAX_VERSION
    match = re.fullmatch(r"(\d+)\.(\d+)", requested)
    if match is None:
        raise cinder_error(
            400,
            f"API Version String {requested} is of invalid format. Must be of format "
            "MajorNum.MinorNum.",
        )
    version = (int(match.group(1)), int(match.group(2)))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise cinder_error(
            406,
            f"Version {requested} is not supported by the API. Minimum is "
            f"{MIN_VERSION[0]}.{MIN_VERSION[1]} and maximum is {MAX_VERSION[0]}.{MAX_VERSION[1]}.",
        )
    return version


class Call:
    """One authenticated v3 request: the token, microversion and URL project."""

    def __init__(self, request: Request, token: Obj, version: Version) -> None:
        self.request = request
        self.token = token
        self.version = version
        project = token.get("project")
        self.project_id: str | None = str(project["id"]) if isinstance(project, dict) else None
        self.is_admin = any(role.get("name") == "admin" for role in token.get("roles", []))

    def at_least(self, version: Version) -> bool:
        return self.version >= version

    @cached_property
    def root(self) -> str:
        """The service's URL as the caller reached it (links are built on it)."""
        url = self.request.url
        return f"{url.scheme}://{url.netloc}{self.request.scope.get('root_path', '')}"

    def error(self, status: int, message: str) -> ApiError:
        return cinder_error(status, message, self.version)

    def respond(self, body: Any, status: int = 200) -> Response:
        return json_response(body, status, _headers(self.version))

    def empty(self, status: int) -> Response:
        return Response(status_code=status, headers=_headers(self.version))


Handler = Callable[[Call], Awaitable[Response]]


class Cinder:
    """The routes of one region's simulated Cinder over `region`."""

    def __init__(self, sim: Simulator, region: RegionState) -> None:
        self.sim = sim
        self.region = region
        # List orders and encoded volume views (see stackfleet.simulator.listcache)
        self._orders = OrderCache()
        self._encoded_volumes = EncodedObjects()

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _root(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"

    def _v3(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler: token, microversion and the URL's project id checked first."""

        async def endpoint(request: Request) -> Response:
            token = require_token(self.sim, request)
            version = parse_version(request.headers.get("openstack-api-version"))
            call = Call(request, token, version)
            url_project = request.path_params.get("project_id")
            if url_project is not None and url_project != call.project_id:
                raise call.error(400, "Malformed request url")
            return await handler(call)

        return endpoint

    def _links(self, call: Call, collection: str, obj_id: str) -> list[Obj]:
        root = call.root
        project = call.project_id or ""
        return [
            {"rel": "self", "href": f"{root}/v3/{project}/{collection}/{obj_id}"},
            {"rel": "bookmark", "href": f"{root}/{project}/{collection}/{obj_id}"},
        ]

    @staticmethod
    async def _json(call: Call) -> Any:
        raw = await call.request.body()
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise call.error(400, "Malformed request body") from exc

    async def _entity(self, call: Call, key: str) -> Obj:
        body = await self._json(call)
        if not isinstance(body, dict) or not isinstance(body.get(key), dict):
            raise call.error(400, f"Missing required element '{key}' in request body.")
        entity: Obj = body[key]
        return entity

    def _require_admin(self, call: Call, policy: str) -> None:
        if not call.is_admin:
            raise call.error(403, f"Policy doesn't allow {policy} to be performed.")

    # -- version discovery ---------------------------------------------------------------

    def _version_doc(self, request: Request) -> Obj:
        root = self._root(request)
        return {
            "id": "v3.0",
            "status": "CURRENT",
            "version": f"{MAX_VERSION[0]}.{MAX_VERSION[1]}",
            "min_version": f"{MIN_VERSION[0]}.{MIN_VERSION[1]}",
            "updated": VERSION_UPDATED,
            "links": [
                {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
                {"rel": "self", "href": f"{root}/v3/"},
            ],
            "media-types": [
                {
                    "base": "application/json",
                    "type": "application/vnd.openstack.volume+json;version=3",
                }
            ],
        }

    async def versions(self, request: Request) -> Response:
        # The unversioned root answers 300 Multiple Choices, as Cinder does.
        return json_response({"versions": [self._version_doc(request)]}, 300, _headers(None))

    async def version_v3(self, request: Request) -> Response:
        return json_response({"versions": [self._version_doc(request)]}, 200, _headers(MIN_VERSION))

    # -- listing machinery ---------------------------------------------------------------

    def _sort(
        self,
        call: Call,
        collection: str,
        items: list[Obj],
        name_key: str = "name",
        aliases: dict[str, str] | None = None,
    ) -> SortedOrder:
        """`items` (a `collection` list as the query's filters left it) in the query's
        order, from the order cache while they and their sort fields are unchanged."""
        params = call.request.query_params
        keys: list[str] = []
        dirs: list[str] = []
        if "sort" in params:
            if "sort_key" in params or "sort_dir" in params:
                raise call.error(
                    400,
                    "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be "
                    "used with the 'sort' parameter.",
                )
            for part in params["sort"].split(","):
                key, _, direction = part.strip().partition(":")
                keys.append(key.strip())
                dirs.append((direction or "desc").strip().lower())
        else:
            keys = [k.strip() for k in params.get("sort_key", "").split(",") if k.strip()]
            dirs = [d.strip().lower() for d in params.get("sort_dir", "").split(",") if d.strip()]
        for direction in dirs:
            if direction not in ("asc", "desc"):
                raise call.error(
                    400, f"Invalid input received: Unknown sort direction: {direction}"
                )
        # sort keys named as the service's database columns, stored under API names
        keys = [(aliases or {}).get(key, key) for key in keys]
        known = set(items[0]) if items else set()
        for key in keys:
            if items and key not in known and key != name_key:
                raise call.error(400, f"Invalid input received: Invalid sort key {key}")
        default_dir = dirs[0] if dirs else "desc"
        dirs += [default_dir] * (len(keys) - len(dirs))
        for extra in ("created_at", "id"):
            if extra not in keys:
                keys.append(extra)
                dirs.append(default_dir)
        spec = [(k, d == "asc") for k, d in zip(keys, dirs, strict=True)]

        def sort(objects: list[Obj]) -> list[Obj]:
            ordered = list(objects)
            sort_objects(ordered, spec)
            return ordered

        # The caller and the query's filters are part of the key, so that different
        # listings do not evict each other's order.
        paging = {"limit", "marker", "offset", "with_count"}
        query = tuple(sorted((k, v) for k, v in params.multi_items() if k not in paging))
        order_key = (collection, call.is_admin, call.project_id, query)
        return self._orders.order(order_key, items, keys, sort)

    def _page(
        self, call: Call, order: SortedOrder, not_found: str, collection_path: str
    ) -> tuple[list[Obj], list[Obj]]:
        """Marker/limit/offset paging; returns the page and the ``<key>_links``."""
        items = order.items
        params = call.request.query_params
        limit_raw = params.get("limit")
        limit = MAX_LIMIT
        if limit_raw is not None:
            try:
                limit = int(limit_raw)
            except ValueError as exc:
                raise call.error(400, "limit param must be an integer") from exc
            if limit < 0:
                raise call.error(400, "limit param must be positive")
            limit = min(limit, MAX_LIMIT)
        start = 0
        marker = params.get("marker")
        if marker:
            index = order.position(marker)
            if index is None:
                raise call.error(404, not_found.format(id=marker))
            start = index + 1
        offset_raw = params.get("offset")
        if offset_raw:
            try:
                start += int(offset_raw)
            except ValueError as exc:
                raise call.error(400, "offset param must be an integer") from exc
        page = items[start : start + limit]
        links: list[Obj] = []
        if page and limit <= len(page):
            query = [(k, v) for k, v in params.multi_items() if k != "marker"]
            query.append(("marker", str(page[-1]["id"])))
            href = f"{call.root}/v3/{call.project_id or ''}/{collection_path}?{urlencode(query)}"
            links.append({"rel": "next", "href": href})
        return page, links

    def _filter(
        self,
        call: Call,
        items: list[Obj],
        user_filters: frozenset[str],
        project_key: str,
    ) -> list[Obj]:
        params = call.request.query_params
        all_tenants = call.is_admin and _bool_param(
            "all_tenants", params.get("all_tenants"), call.version
        )
        if not all_tenants:
            items = [o for o in items if o.get(project_key) == call.project_id]
        filters = {k: v for k, v in params.items() if k not in _LIST_CONTROLS}
        if not call.is_admin and call.at_least((3, 34)):
            invalid = sorted(set(filters) - user_filters)
            if invalid:
                raise call.error(
                    400, f"Invalid filters {','.join(invalid)} are found in query options."
                )
        for key, wanted in filters.items():
            if key == "project_id":
                # only an admin listing all projects narrows by project
                if all_tenants:
                    items = [o for o in items if o.get(project_key) == wanted]
                continue
            if key == "metadata":
                items = self._metadata_filter(call, items, wanted)
                continue
            like = key.endswith("~") and call.at_least((3, 34))
            field = key.rstrip("~")
            if field in ("created_at", "updated_at") and ":" in wanted:
                items = [o for o in items if _time_matches(str(o.get(field) or ""), wanted)]
                continue
            if like:
                items = [o for o in items if wanted.lower() in str(o.get(field) or "").lower()]
            else:
                items = [o for o in items if _value_matches(o.get(field), wanted)]
        return items

    def _metadata_filter(self, call: Call, items: list[Obj], wanted: str) -> list[Obj]:
        try:
            parsed = ast.literal_eval(wanted)
        except (ValueError, SyntaxError) as exc:
            raise call.error(400, f"Invalid metadata filter: {wanted}") from exc
        if not isinstance(parsed, dict):
            raise call.error(400, f"Invalid metadata filter: {wanted}")
        return [
            o
            for o in items
            if all(str((o.get("metadata") or {}).get(k)) == str(v) for k, v in parsed.items())
        ]

    # -- volumes -------------------------------------------------------------------------

    def _volume(self, call: Call, volume_id: str) -> Obj:
        volume = self.region.volumes.get(volume_id)
        if volume is None or not (
            call.is_admin or volume.get("os-vol-tenant-attr:tenant_id") == call.project_id
        ):
            raise call.error(404, f"Volume {volume_id} could not be found.")
        return volume

    def _volume_view(self, call: Call, volume: Obj) -> Obj:
        """The stored (latest, admin) detail shape cut to the request's version and role."""
        hidden = _hidden_volume_fields(call.version, call.is_admin)
        view: Obj = {key: value for key, value in volume.items() if key not in hidden}
        if not call.is_admin and view.get("attachments"):
            view["attachments"] = [dict(a, host_name=None) for a in view["attachments"]]
        if "encryption_key_id" in view and not view["encryption_key_id"]:
            del view["encryption_key_id"]
        if (
            "shared_targets" in view
            and view["shared_targets"] is None
            and not call.at_least((3, 69))
        ):
            view["shared_targets"] = True
        view["links"] = self._links(call, "volumes", str(volume["id"]))
        return view

    async def _list_volumes(self, call: Call, detail: bool) -> Response:
        volumes = self._filter(
            call,
            list(self.region.volumes.values()),
            USER_VOLUME_FILTERS,
            "os-vol-tenant-attr:tenant_id",
        )
        order = self._sort(call, "volumes", volumes)
        count = len(order.items)
        path = "volumes/detail" if detail else "volumes"
        page, links = self._page(call, order, "Volume {id} could not be found.", path)
        shaped: list[Obj] | EncodedList
        if detail:
            shaped = self._encoded_volumes.encode(
                (call.version, call.is_admin, call.root, call.project_id),
                page,
                lambda volume: self._volume_view(call, volume),
                population=len(self.region.volumes),
            )
        else:
            shaped = [
                {
                    "id": v["id"],
                    "name": v.get("name"),
                    "links": self._links(call, "volumes", v["id"]),
                }
                for v in page
            ]
        body: Obj = {"volumes": shaped}
        if links:
            body["volumes_links"] = links
        if call.at_least((3, 45)) and _truthy(call.request.query_params.get("with_count")):
            body["count"] = count
        return call.respond(body)

    async def list_volumes(self, call: Call) -> Response:
        return await self._list_volumes(call, detail=False)

    async def list_volumes_detail(self, call: Call) -> Response:
        return await self._list_volumes(call, detail=True)

    async def show_volume(self, call: Call) -> Response:
        volume = self._volume(call, call.request.path_params["volume_id"])
        return call.respond({"volume": self._volume_view(call, volume)})

    async def delete_volume(self, call: Call) -> Response:
        volume_id = call.request.path_params["volume_id"]
        params = call.request.query_params
        cascade = _bool_param("cascade", params.get("cascade"), call.version)
        force = _bool_param("force", params.get("force"), call.version)
        if force and not call.is_admin:
            raise call.error(403, "Policy doesn't allow volume:force_delete to be performed.")
        with self.sim.state.lock:
            volume = self._volume(call, volume_id)
            snapshots = [
                s for s in self.region.snapshots.values() if s.get("volume_id") == volume_id
            ]
            refused = (
                (not force and volume.get("status") not in _DELETABLE_STATUSES)
                or bool(volume.get("attachments"))
                or volume.get("migration_status") in ("migrating", "starting")
                or bool(volume.get("group_id") or volume.get("consistencygroup_id"))
                or (bool(snapshots) and not cascade)
            )
            if refused:
                raise call.error(400, _DELETE_REFUSED)
            # Cinder marks the volume "deleting" and the volume service removes it; the
            # simulator's back end is instantaneous.
            for snapshot in snapshots:
                del self.region.snapshots[snapshot["id"]]
            del self.region.volumes[volume_id]
            self._release_capacity(volume)
        notify_volume(self.sim, "delete.start", volume)
        notify_volume(self.sim, "delete.end", {**volume, "status": "deleted"})
        return call.empty(202)

    def _release_capacity(self, volume: Obj) -> None:
        host = volume.get("os-vol-host-attr:host")
        for pool in self.region.pools:
            if pool.get("name") == host:
                capabilities = pool.get("capabilities") or {}
                for key in ("allocated_capacity_gb", "provisioned_capacity_gb"):
                    if isinstance(capabilities.get(key), int | float):
                        capabilities[key] = max(0, capabilities[key] - int(volume.get("size", 0)))

    # -- volume metadata -----------------------------------------------------------------

    @staticmethod
    def _check_metadata(call: Call, metadata: Any) -> dict[str, str]:
        if not isinstance(metadata, dict):
            raise call.error(400, "Malformed request body")
        for key, value in metadata.items():
            if not isinstance(key, str) or not key or len(key) > 255:
                raise call.error(400, "Metadata property key must be 1 to 255 characters long.")
            if not isinstance(value, str) or len(value) > 255:
                raise call.error(
                    400, f"Invalid input received: Metadata value for {key} must be a string."
                )
        return dict(metadata)

    async def get_metadata(self, call: Call) -> Response:
        volume = self._volume(call, call.request.path_params["volume_id"])
        return call.respond({"metadata": dict(volume.get("metadata") or {})})

    async def _set_metadata(self, call: Call, replace: bool) -> Response:
        body = await self._json(call)
        metadata = self._check_metadata(
            call, body.get("metadata") if isinstance(body, dict) else None
        )
        with self.sim.state.lock:
            volume = self._volume(call, call.request.path_params["volume_id"])
            merged = {} if replace else dict(volume.get("metadata") or {})
            merged.update(metadata)
            volume["metadata"] = merged
            volume["updated_at"] = _now()
        return call.respond({"metadata": merged})

    async def update_metadata(self, call: Call) -> Response:
        """POST: merge the given keys into the volume's metadata."""
        return await self._set_metadata(call, replace=False)

    async def replace_metadata(self, call: Call) -> Response:
        """PUT: the given metadata replaces all of it."""
        return await self._set_metadata(call, replace=True)

    async def get_metadata_item(self, call: Call) -> Response:
        volume = self._volume(call, call.request.path_params["volume_id"])
        key = call.request.path_params["key"]
        metadata = volume.get("metadata") or {}
        if key not in metadata:
            raise call.error(404, "Metadata item was not found")
        return call.respond({"meta": {key: metadata[key]}})

    async def set_metadata_item(self, call: Call) -> Response:
        key = call.request.path_params["key"]
        body = await self._json(call)
        meta = self._check_metadata(call, body.get("meta") if isinstance(body, dict) else None)
        if len(meta) > 1:
            raise call.error(400, "Request body contains too many items")
        if key not in meta:
            raise call.error(400, "Request body and URI mismatch")
        with self.sim.state.lock:
            volume = self._volume(call, call.request.path_params["volume_id"])
            metadata = dict(volume.get("metadata") or {})
            metadata[key] = meta[key]
            volume["metadata"] = metadata
            volume["updated_at"] = _now()
        return call.respond({"meta": {key: meta[key]}})

    async def delete_metadata_item(self, call: Call) -> Response:
        key = call.request.path_params["key"]
        with self.sim.state.lock:
            volume = self._volume(call, call.request.path_params["volume_id"])
            metadata = dict(volume.get("metadata") or {})
            if key not in metadata:
                raise call.error(404, "Metadata item was not found")
            del metadata[key]
            volume["metadata"] = metadata
            volume["updated_at"] = _now()
        return call.empty(200)

    # -- snapshots -----------------------------------------------------------------------

    def _snapshot(self, call: Call, snapshot_id: str) -> Obj:
        snapshot = self.region.snapshots.get(snapshot_id)
        if snapshot is None or not (
            call.is_admin
            or snapshot.get("os-extended-snapshot-attributes:project_id") == call.project_id
        ):
            raise call.error(404, f"Snapshot {snapshot_id} could not be found.")
        return snapshot

    def _snapshot_view(self, call: Call, snapshot: Obj, detail: bool = True) -> Obj:
        view: Obj = {}
        for key, value in snapshot.items():
            since = SNAPSHOT_FIELD_VERSIONS.get(key)
            if since is not None and not call.at_least(since):
                continue
            if not detail and key.startswith("os-extended-snapshot-attributes:"):
                continue
            view[key] = value
        return view

    async def _list_snapshots(self, call: Call, detail: bool) -> Response:
        snapshots = self._filter(
            call,
            list(self.region.snapshots.values()),
            USER_SNAPSHOT_FILTERS,
            "os-extended-snapshot-attributes:project_id",
        )
        order = self._sort(call, "snapshots", snapshots)
        path = "snapshots/detail" if detail else "snapshots"
        page, links = self._page(call, order, "Snapshot {id} could not be found.", path)
        body: Obj = {"snapshots": [self._snapshot_view(call, s, detail) for s in page]}
        if links:
            body["snapshots_links"] = links
        return call.respond(body)

    async def list_snapshots(self, call: Call) -> Response:
        return await self._list_snapshots(call, detail=False)

    async def list_snapshots_detail(self, call: Call) -> Response:
        return await self._list_snapshots(call, detail=True)

    async def show_snapshot(self, call: Call) -> Response:
        snapshot = self._snapshot(call, call.request.path_params["snapshot_id"])
        return call.respond({"snapshot": self._snapshot_view(call, snapshot)})

    async def create_snapshot(self, call: Call) -> Response:
        body = await self._entity(call, "snapshot")
        volume_id = body.get("volume_id")
        if not volume_id:
            raise call.error(400, "Missing required element 'volume_id' in request body.")
        force = body.get("force", False)
        if isinstance(force, str):
            force = _bool_param("force", force, call.version)
        metadata = self._check_metadata(call, body.get("metadata") or {})
        with self.sim.state.lock:
            volume = self._volume(call, str(volume_id))
            status = volume.get("status")
            # From 3.66 a snapshot of an in-use volume needs no force flag.
            in_use_ok = bool(force) or call.at_least((3, 66))
            if status not in ("available", "in-use") or (status == "in-use" and not in_use_ok):
                raise call.error(
                    400,
                    f"Invalid volume: Volume {volume_id} status must be available, but current "
                    f"status is: {status}.",
                )
            now = _now()
            snapshot_id = str(uuid.uuid4())
            project_id = volume.get("os-vol-tenant-attr:tenant_id")
            snapshot: Obj = {
                "id": snapshot_id,
                "name": body.get("name") or body.get("display_name"),
                "description": body.get("description") or body.get("display_description"),
                "status": "available",
                "size": volume.get("size"),
                "volume_id": volume_id,
                "metadata": metadata,
                "created_at": now,
                "updated_at": None,
                "os-extended-snapshot-attributes:progress": "100%",
                "os-extended-snapshot-attributes:project_id": project_id,
                "group_snapshot_id": None,
                "user_id": (call.token.get("user") or {}).get("id"),
                "consumes_quota": True,
            }
            self.region.snapshots[snapshot_id] = snapshot
        # Cinder answers before the back end has cut the snapshot; this one is instant.
        created = dict(snapshot, status="creating")
        created["os-extended-snapshot-attributes:progress"] = "0%"
        return call.respond({"snapshot": self._snapshot_view(call, created)}, 202)

    async def delete_snapshot(self, call: Call) -> Response:
        snapshot_id = call.request.path_params["snapshot_id"]
        with self.sim.state.lock:
            snapshot = self._snapshot(call, snapshot_id)
            if snapshot.get("status") not in ("available", "error", "error_deleting"):
                raise call.error(
                    400, "Invalid snapshot: Volume Snapshot status must be available or error."
                )
            del self.region.snapshots[snapshot_id]
        return call.empty(202)

    # -- backups -------------------------------------------------------------------------

    def _action_delay(self) -> float:
        """Seconds a backup stays `creating` (or `deleting`) before the simulated
        cinder-backup finishes (``Simulator.action_delay`` when set, as for Nova's server
        actions; default: at once)."""
        try:
            return max(0.0, float(getattr(self.sim, "action_delay", 0.0) or 0.0))
        except (TypeError, ValueError):
            return 0.0

    def _later(self, work: Callable[[], None]) -> None:
        delay = self._action_delay()
        if delay <= 0:
            work()
        else:
            asyncio.get_running_loop().call_later(delay, work)

    def _backup_service(self) -> Obj | None:
        """An enabled cinder-backup service that is up (the scheduler's get_backup_host
        needs one), or None."""
        return next(
            (
                s
                for s in self.region.volume_services
                if s.get("binary") == "cinder-backup"
                and s.get("status") == "enabled"
                and s.get("state") == "up"
            ),
            None,
        )

    def _backup(self, call: Call, backup_id: str) -> Obj:
        backup = self.region.backups.get(backup_id)
        if backup is None or not (call.is_admin or backup.get(_BACKUP_PROJECT) == call.project_id):
            raise call.error(404, f"Backup {backup_id} could not be found.")
        return backup

    def _backup_view(self, call: Call, backup: Obj, detail: bool = True) -> Obj:
        links = self._links(call, "backups", str(backup["id"]))
        if not detail:
            return {"id": backup["id"], "name": backup.get("name"), "links": links}
        view: Obj = {key: backup.get(key) for key in _BACKUP_DETAIL_FIELDS}
        view["links"] = links
        for key, since in BACKUP_FIELD_VERSIONS.items():
            if not call.at_least(since) or (key in BACKUP_ADMIN_FIELDS and not call.is_admin):
                continue
            if key == "encryption_key_id" and not backup.get(key):
                continue  # shown only when the volume was encrypted
            view[key] = backup.get(key)
        return view

    def _check_backup_query(self, call: Call) -> None:
        """Cinder's backup listing checks all_tenants and the sort keys itself (other
        messages than the volume listing's)."""
        params = call.request.query_params
        all_tenants = params.get("all_tenants")
        if all_tenants is not None:
            try:
                _bool_param("all_tenants", all_tenants, call.version)
            except ApiError:
                raise call.error(
                    400, f"all_tenants must be a boolean, got '{all_tenants}'."
                ) from None
        keys = [part.partition(":")[0].strip() for part in params.get("sort", "").split(",")]
        keys += [key.strip() for key in params.get("sort_key", "").split(",")]
        allowed = _BACKUP_SORT_KEYS | ({"name"} if call.at_least((3, 37)) else set())
        if any(key and key not in allowed for key in keys):
            raise call.error(400, "Invalid input received: Invalid sort key")

    async def _list_backups(self, call: Call, detail: bool) -> Response:
        self._check_backup_query(call)
        backups = self._filter(
            call, list(self.region.backups.values()), USER_BACKUP_FILTERS, _BACKUP_PROJECT
        )
        order = self._sort(call, "backups", backups, aliases=_BACKUP_SORT_ALIASES)
        count = len(order.items)
        path = "backups/detail" if detail else "backups"
        page, links = self._page(call, order, "Backup {id} could not be found.", path)
        body: Obj = {"backups": [self._backup_view(call, b, detail) for b in page]}
        if links:
            body["backups_links"] = links
        if call.at_least((3, 45)) and _truthy(call.request.query_params.get("with_count")):
            body["count"] = count
        return call.respond(body)

    async def list_backups(self, call: Call) -> Response:
        return await self._list_backups(call, detail=False)

    async def list_backups_detail(self, call: Call) -> Response:
        return await self._list_backups(call, detail=True)

    async def show_backup(self, call: Call) -> Response:
        backup = self._backup(call, call.request.path_params["backup_id"])
        return call.respond({"backup": self._backup_view(call, backup)})

    def _check_backup_quota(self, call: Call, project_id: str | None, size: int) -> None:
        """Cinder's `backups` and `backup_gigabytes` quotas (413 when exceeded)."""
        owned = [b for b in self.region.backups.values() if b.get(_BACKUP_PROJECT) == project_id]
        overrides = self.region.quotas.get("block-storage", {}).get(project_id or "", {})
        allowed = int(overrides.get("backups", DEFAULT_LIMITS["maxTotalBackups"]))
        if allowed >= 0 and len(owned) + 1 > allowed:
            raise call.error(413, f"Maximum number of backups allowed ({allowed}) exceeded")
        quota = int(overrides.get("backup_gigabytes", DEFAULT_LIMITS["maxTotalBackupGigabytes"]))
        consumed = sum(int(b.get("size") or 0) for b in owned)
        if quota >= 0 and consumed + size > quota:
            raise call.error(
                413,
                f"Requested backup exceeds allowed Backup gigabytes quota. Requested {size}G, "
                f"quota is {quota}G and {consumed}G has been consumed.",
            )

    async def create_backup(self, call: Call) -> Response:
        """POST /backups: Cinder's API checks, then `creating` (the volume `backing-up`)
        until the simulated cinder-backup finishes: `available`, or `error` with
        Cinder's fail_reason when no enabled cinder-backup service is up."""
        body = await self._entity(call, "backup")
        volume_id = body.get("volume_id")
        if not isinstance(volume_id, str) or not volume_id:
            raise call.error(
                400,
                "Invalid input for field/attribute backup. Value: "
                f"{json.dumps(body)}. 'volume_id' is a required property",
            )
        force = body.get("force", False)
        incremental = body.get("incremental", False)
        for name, value in (("force", force), ("incremental", incremental)):
            if not isinstance(value, bool):
                raise call.error(
                    400,
                    f"Invalid input for field/attribute {name}. Value: {value}. "
                    f"{json.dumps(value)} is not of type 'boolean'",
                )
        metadata = self._check_metadata(call, body.get("metadata") or {})
        with self.sim.state.lock:
            volume = self._volume(call, volume_id)
            status = volume.get("status")
            if status not in ("available", "in-use"):
                raise call.error(
                    400,
                    "Invalid volume: Volume to be backed up must be available or in-use, but "
                    f'the current status is "{status}".',
                )
            if status == "in-use" and not force:
                raise call.error(
                    400, "Invalid volume: Backing up an in-use volume must use the force flag."
                )
            project_id = volume.get("os-vol-tenant-attr:tenant_id")
            size = int(volume.get("size") or 0)
            self._check_backup_quota(call, project_id, size)
            parent_id = None
            if incremental:
                parents = sorted(
                    (
                        b
                        for b in self.region.backups.values()
                        if b.get("volume_id") == volume_id and b.get("status") == "available"
                    ),
                    key=lambda b: str(b.get("data_timestamp") or ""),
                )
                if not parents:
                    raise call.error(
                        400,
                        "Invalid backup: No backups available to do an incremental backup.",
                    )
                parent_id = parents[-1]["id"]
            now = _now()
            backup_id = str(uuid.uuid4())
            backup: Obj = {
                "id": backup_id,
                "status": "creating",
                "size": size,
                "object_count": 0,
                "availability_zone": volume.get("availability_zone"),
                "container": body.get("container"),
                "created_at": now,
                "updated_at": now,
                "name": body.get("name"),
                "description": body.get("description"),
                "fail_reason": None,
                "volume_id": volume_id,
                "is_incremental": parent_id is not None,
                "has_dependent_backups": False,
                "snapshot_id": None,
                "data_timestamp": now,
                "metadata": metadata,
                _BACKUP_PROJECT: project_id,
                "user_id": (call.token.get("user") or {}).get("id"),
                "encryption_key_id": volume.get("encryption_key_id"),
                "_parent_id": parent_id,
                "_volume_status": status,
                "_host": None,
            }
            self.region.backups[backup_id] = backup
            volume["status"] = "backing-up"
            volume["updated_at"] = now
        self._later(lambda: self._finish_backup(backup_id))
        return call.respond({"backup": self._backup_view(call, backup, detail=False)}, 202)

    def _finish_backup(self, backup_id: str) -> None:
        """The simulated cinder-backup's answer: the backup `available` (or `error`), the
        volume back to the status it had."""
        with self.sim.state.lock:
            backup = self.region.backups.get(backup_id)
            if backup is None or backup.get("status") != "creating":
                return
            now = _now()
            service = self._backup_service()
            if service is not None:
                backup.update(
                    _host=service.get("host"),
                    status="available",
                    object_count=max(1, int(backup.get("size") or 0)),
                    container=backup.get("container") or _DEFAULT_BACKUP_CONTAINER,
                    updated_at=now,
                )
                parent = self.region.backups.get(str(backup.get("_parent_id")))
                if parent is not None:
                    parent.update(has_dependent_backups=True, updated_at=now)
            else:
                backup.update(
                    status="error", fail_reason="Service not found for creating backup.",
                    updated_at=now,
                )  # fmt: skip
            volume = self.region.volumes.get(str(backup.get("volume_id")))
            if volume is not None and volume.get("status") == "backing-up":
                volume["status"] = backup.get("_volume_status") or "available"
                volume["updated_at"] = now

    async def delete_backup(self, call: Call) -> Response:
        backup_id = call.request.path_params["backup_id"]
        with self.sim.state.lock:
            backup = self._backup(call, backup_id)
            if backup.get("status") not in ("available", "error"):
                raise call.error(400, "Invalid backup: Backup status must be available or error")
            if backup.get("has_dependent_backups"):
                raise call.error(400, "Invalid backup: Incremental backups exist for this backup.")
            backup.update(status="deleting", updated_at=_now())

        def remove() -> None:
            with self.sim.state.lock:
                removed = self.region.backups.pop(backup_id, None)
                parent = self.region.backups.get(str((removed or {}).get("_parent_id")))
                if parent is not None:
                    parent["has_dependent_backups"] = any(
                        b.get("_parent_id") == parent["id"] for b in self.region.backups.values()
                    )

        self._later(remove)
        return call.empty(202)

    # -- services, pools, types, limits --------------------------------------------------

    async def list_services(self, call: Call) -> Response:
        self._require_admin(call, "volume_extension:services:index")
        params = call.request.query_params
        services = []
        for service in self.region.volume_services:
            if "host" in params and service.get("host") != params["host"]:
                continue
            if "binary" in params and service.get("binary") != params["binary"]:
                continue
            view = {
                key: value
                for key, value in service.items()
                if key not in SERVICE_FIELD_VERSIONS or call.at_least(SERVICE_FIELD_VERSIONS[key])
            }
            if service.get("binary") != "cinder-volume":
                # Cinder adds the backend and replication fields to volume services only
                for key in ("backend_state", "replication_status", "active_backend_id", "frozen"):
                    view.pop(key, None)
            services.append(view)
        return call.respond({"services": services})

    async def get_pools(self, call: Call) -> Response:
        self._require_admin(call, "scheduler_extension:scheduler_stats:get_pools")
        params = call.request.query_params
        detail = _bool_param("detail", params.get("detail"), call.version)
        pools = [
            p for p in self.region.pools if "name" not in params or p.get("name") == params["name"]
        ]
        shaped = [p if detail else {"name": p["name"]} for p in pools]
        return call.respond({"pools": shaped})

    def _types(self) -> list[Obj]:
        """The stored volume types, or (when the generator made none) the types the
        volumes name, plus Cinder's __DEFAULT__ type."""
        if self.region.volume_types:
            return list(self.region.volume_types.values())
        found: dict[str, str] = {}
        for volume in self.region.volumes.values():
            name = volume.get("volume_type")
            if name:
                found.setdefault(
                    str(name),
                    str(volume.get("volume_type_id") or uuid.uuid5(_TYPE_NAMESPACE, str(name))),
                )
        found.setdefault(_DEFAULT_TYPE, str(uuid.uuid5(_TYPE_NAMESPACE, _DEFAULT_TYPE)))
        types = []
        for name, type_id in found.items():
            types.append(
                {
                    "id": type_id,
                    "name": name,
                    "description": "Default Volume Type" if name == _DEFAULT_TYPE else None,
                    "is_public": True,
                    "os-volume-type-access:is_public": True,
                    "qos_specs_id": None,
                    "extra_specs": {} if name == _DEFAULT_TYPE else {"volume_backend_name": name},
                }
            )
        return types

    def _type_view(self, call: Call, volume_type: Obj) -> Obj:
        if call.is_admin:
            return volume_type
        return {k: v for k, v in volume_type.items() if k != "extra_specs"}

    async def list_types(self, call: Call) -> Response:
        return call.respond({"volume_types": [self._type_view(call, t) for t in self._types()]})

    async def show_type(self, call: Call) -> Response:
        type_id = call.request.path_params["type_id"]
        for volume_type in self._types():
            if volume_type["id"] == type_id or (
                type_id == "default" and volume_type["name"] == _DEFAULT_TYPE
            ):
                return call.respond({"volume_type": self._type_view(call, volume_type)})
        raise call.error(404, f"Volume type {type_id} could not be found.")

    async def limits(self, call: Call) -> Response:
        project = call.project_id
        volumes = [
            v
            for v in self.region.volumes.values()
            if v.get("os-vol-tenant-attr:tenant_id") == project
        ]
        snapshots = [
            s
            for s in self.region.snapshots.values()
            if s.get("os-extended-snapshot-attributes:project_id") == project
        ]
        backups = [b for b in self.region.backups.values() if b.get(_BACKUP_PROJECT) == project]
        absolute = dict(DEFAULT_LIMITS)
        absolute.update(
            totalVolumesUsed=len(volumes),
            totalGigabytesUsed=sum(int(v.get("size") or 0) for v in volumes)
            + sum(int(s.get("size") or 0) for s in snapshots),
            totalSnapshotsUsed=len(snapshots),
            totalBackupsUsed=len(backups),
            totalBackupGigabytesUsed=sum(int(b.get("size") or 0) for b in backups),
        )
        return call.respond({"limits": {"rate": [], "absolute": absolute}})

    async def show_quota_set(self, call: Call) -> Response:
        """GET /v3/os-quota-sets/{project}: Cinder's defaults (cinder.conf [DEFAULT]
        quota_*, as /limits reports them), one unlimited trio per volume type, and the
        project's overrides."""
        target = call.request.path_params["target_project_id"]
        if not call.is_admin and target != call.project_id:
            raise call.error(
                403, "Policy doesn't allow volume_extension:quotas:show to be performed."
            )
        quota: Obj = {
            "volumes": DEFAULT_LIMITS["maxTotalVolumes"],
            "per_volume_gigabytes": -1,
            "snapshots": DEFAULT_LIMITS["maxTotalSnapshots"],
            "gigabytes": DEFAULT_LIMITS["maxTotalVolumeGigabytes"],
            "backups": DEFAULT_LIMITS["maxTotalBackups"],
            "backup_gigabytes": DEFAULT_LIMITS["maxTotalBackupGigabytes"],
        }
        for volume_type in self.region.volume_types.values():
            for key in ("volumes", "gigabytes", "snapshots"):
                quota[f"{key}_{volume_type.get('name')}"] = -1
        quota["groups"] = 10
        quota.update(self.region.quotas.get("block-storage", {}).get(target, {}))
        quota["id"] = target
        return call.respond({"quota_set": quota})

    # -- routing -------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """Each v3 route without, then with, the project id; specific paths first."""
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/volumes", self.list_volumes),
            ("GET", "/volumes/detail", self.list_volumes_detail),
            ("GET", "/volumes/{volume_id}", self.show_volume),
            ("DELETE", "/volumes/{volume_id}", self.delete_volume),
            ("GET", "/volumes/{volume_id}/metadata", self.get_metadata),
            ("POST", "/volumes/{volume_id}/metadata", self.update_metadata),
            ("PUT", "/volumes/{volume_id}/metadata", self.replace_metadata),
            ("GET", "/volumes/{volume_id}/metadata/{key}", self.get_metadata_item),
            ("PUT", "/volumes/{volume_id}/metadata/{key}", self.set_metadata_item),
            ("DELETE", "/volumes/{volume_id}/metadata/{key}", self.delete_metadata_item),
            ("GET", "/snapshots", self.list_snapshots),
            ("POST", "/snapshots", self.create_snapshot),
            ("GET", "/snapshots/detail", self.list_snapshots_detail),
            ("GET", "/snapshots/{snapshot_id}", self.show_snapshot),
            ("DELETE", "/snapshots/{snapshot_id}", self.delete_snapshot),
            ("GET", "/backups", self.list_backups),
            ("POST", "/backups", self.create_backup),
            ("GET", "/backups/detail", self.list_backups_detail),
            ("GET", "/backups/{backup_id}", self.show_backup),
            ("DELETE", "/backups/{backup_id}", self.delete_backup),
            ("GET", "/os-services", self.list_services),
            ("GET", "/scheduler-stats/get_pools", self.get_pools),
            ("GET", "/types", self.list_types),
            ("GET", "/types/{type_id}", self.show_type),
            ("GET", "/limits", self.limits),
            ("GET", "/os-quota-sets/{target_project_id}", self.show_quota_set),
        ]
        routes = [
            Route("/", self.versions, methods=["GET"]),
            Route("/v3", self.version_v3, methods=["GET"]),
            Route("/v3/", self.version_v3, methods=["GET"]),
        ]
        for prefix in ("/v3", "/v3/{project_id}"):
            for method, path, handler in table:
                routes.append(Route(prefix + path, self._v3(handler), methods=[method]))
        return routes


@lru_cache(maxsize=256)
def _hidden_volume_fields(version: Version, is_admin: bool) -> frozenset[str]:
    """The stored volume fields a caller at `version` does not see."""
    hidden = {key for key, since in VOLUME_FIELD_VERSIONS.items() if version < since}
    if not is_admin:
        hidden |= VOLUME_ADMIN_FIELDS
    return frozenset(hidden)


def _value_matches(value: Any, wanted: str) -> bool:
    if isinstance(value, bool):
        return str(value).lower() == wanted.strip().lower()
    if value is None:
        return wanted.lower() in ("none", "null", "")
    return str(value) == wanted


def _time_matches(value: str, condition: str) -> bool:
    """3.60 time comparison filters: ``created_at=gt:2024-01-01T00:00:00``."""
    if not value:
        return False
    for part in condition.split(","):
        operator, _, moment = part.partition(":")
        moment = moment.replace("Z", "")
        checks = {
            "gt": value > moment,
            "gte": value >= moment,
            "lt": value < moment,
            "lte": value <= moment,
            "eq": value.startswith(moment),
            "neq": not value.startswith(moment),
        }
        if not checks.get(operator, False):
            return False
    return True


def build(sim: Simulator, region: RegionState) -> Router:
    """The Cinder API of `region`, to be mounted at ``/{region}/volume``."""
    return Router(routes=Cinder(sim, region).routes())
