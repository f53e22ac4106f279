"""The simulated Glance (Image API v2) of one region.

Lists images the way Glance does (visibility rules, ``os_hidden``, filters on core
attributes and custom properties, ``sort``/``sort_key``/``sort_dir``, ``limit``/``marker``
with relative ``first``/``next``/``schema`` links), shows, deletes (protected images are
refused), updates through JSON-patch and tag calls. Errors are the pages webob renders
for Glance, chosen by the Accept header: HTML (what ``*/*`` gets, so openstacksdk's
requests), JSON ``{"message", "code", "title"}`` when preferred, else plain text.
"""

from __future__ import annotations

import html
import json
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from stackfleet.simulator.http import ApiError, json_response, require_token, sort_objects
from stackfleet.simulator.listcache import EncodedObjects, OrderCache
from stackfleet.simulator.state import Obj, RegionState

if TYPE_CHECKING:
    from stackfleet.simulator.app import Simulator

CURRENT_VERSION = "2.17"
SUPPORTED_VERSIONS = (
    "2.16", "2.15", "2.14", "2.13", "2.12", "2.11", "2.10", "2.9", "2.8", "2.7", "2.6",
    "2.5", "2.4", "2.3", "2.2", "2.1", "2.0",
)  # fmt: skip
DEFAULT_LIMIT = 25  # limit_param_default
MAX_LIMIT = 1000  # api_limit_max
PATCH_MEDIA_TYPES = (
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
)
VISIBILITIES = ("public", "private", "shared", "community")
# Attributes the server owns: a patch touching them is refused.
READ_ONLY = frozenset(
    {"id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
     "created_at", "updated_at", "self", "file", "schema", "direct_url", "stores",
     "locations"}
)  # fmt: skip
RESERVED = frozenset({"deleted", "deleted_at"})
# Core attributes a patch may set (custom properties are everything else).
CORE_WRITABLE: dict[str, type | tuple[type, ...]] = {
    "name": (str, type(None)),
    "visibility": str,
    "protected": bool,
    "os_hidden": bool,
    "min_ram": int,
    "min_disk": int,
    "container_format": (str, type(None)),
    "disk_format": (str, type(None)),
    "owner": (str, type(None)),
    "tags": list,
}
_UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)
_LIST_CONTROLS = frozenset({"limit", "marker", "sort", "sort_key", "sort_dir"})
_STATUS_TITLES = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
}


def glance_error(request: Request, status: int, explanation: str) -> ApiError:
    """An ApiError rendered as webob renders Glance's HTTP exceptions: the body follows
    the Accept header. openstacksdk sends `Accept: */*`, which webob answers with HTML;
    JSON only when the client prefers application/json; plain text otherwise."""
    title = _STATUS_TITLES.get(status, "Error")
    body: Any
    match _error_format(request.headers.get("accept")):
        case "html":
            body = (
                f"<html>\n <head>\n  <title>{status} {title}</title>\n </head>\n <body>\n"
                f"  <h1>{status} {title}</h1>\n  {html.escape(explanation)}<br /><br />\n\n\n\n"
                " </body>\n</html>"
            )
            return ApiError(status, body, _headers(), "text/html; charset=UTF-8")
        case "json":
            body = {
                "message": f"{explanation}<br /><br />\n\n\n",
                "code": f"{status} {title}",
                "title": title,
            }
            return ApiError(status, body, _headers())
        case _:
            body = f"{status} {title}\n\n{explanation}\n\n   "
            return ApiError(status, body, _headers(), "text/plain; charset=UTF-8")


def _error_format(accept: str | None) -> str:
    """Which of webob's error formats an Accept header gets: the offer (text/html, then
    application/json) with the highest quality, judged by the most specific media range
    that matches it; text/plain when neither is acceptable or there is no header."""

    def quality(offer: str) -> float:
        kind = offer.split("/")[0]
        best: tuple[int, float] = (-1, 0.0)
        for part in (accept or "").split(","):
            media, *params = (p.strip() for p in part.split(";"))
            q = 1.0
            for param in params:
                if param.startswith("q="):
                    try:
                        q = float(param[2:])
                    except ValueError:
                        q = 0.0
            specificity = {offer: 2, f"{kind}/*": 1, "*/*": 0}.get(media.lower(), -1)
            if specificity > best[0]:
                best = (specificity, q)
        return best[1]

    html_q, json_q = quality("text/html"), quality("application/json")
    if max(html_q, json_q) <= 0:
        return "text"
    return "html" if html_q >= json_q else "json"


def _headers() -> dict[str, str]:
    return {"X-Openstack-Request-Id": f"req-{uuid.uuid4()}"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_bool(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    return None


class Glance:
    """The routes of one region's simulated Glance over `region`."""

    def __init__(self, sim: Simulator, region: RegionState) -> None:
        self.sim = sim
        self.region = region
        # List orders and encoded image views (see stackfleet.simulator.listcache)
        self._orders = OrderCache()
        self._encoded = EncodedObjects()

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _root(request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"

    @staticmethod
    def _is_admin(token: Obj) -> bool:
        return any(role.get("name") == "admin" for role in token.get("roles", []))

    @staticmethod
    def _project(token: Obj) -> str | None:
        project = token.get("project")
        return str(project["id"]) if isinstance(project, dict) else None

    def _can_see(self, token: Obj, image: Obj) -> bool:
        if self._is_admin(token):
            return True
        if image.get("visibility") in ("public", "community"):
            return True
        # Image members are not simulated: shared images are visible to their owner only.
        return image.get("owner") == self._project(token)

    def _image(self, request: Request, token: Obj, image_id: str) -> Obj:
        image = self.region.images.get(image_id)
        if image is None or not self._can_see(token, image):
            raise glance_error(request, 404, f"No image found with ID {image_id}")
        return image

    def _can_modify(self, token: Obj, image: Obj) -> bool:
        return self._is_admin(token) or image.get("owner") == self._project(token)

    @staticmethod
    def _view(image: Obj) -> Obj:
        image_id = image["id"]
        view = dict(image)
        view["self"] = f"/v2/images/{image_id}"
        view["file"] = f"/v2/images/{image_id}/file"
        view["schema"] = "/v2/schemas/image"
        return view

    @staticmethod
    def _respond(body: Any, status: int = 200) -> Response:
        return json_response(body, status, _headers())

    # -- version discovery ---------------------------------------------------------------

    def _versions(self, request: Request) -> Obj:
        href = f"{self._root(request)}/v2/"
        entries = [(CURRENT_VERSION, "CURRENT")] + [(v, "SUPPORTED") for v in SUPPORTED_VERSIONS]
        return {
            "versions": [
                {"id": f"v{version}", "status": status, "links": [{"rel": "self", "href": href}]}
                for version, status in entries
            ]
        }

    async def versions(self, request: Request) -> Response:
        # The root answers 300 Multiple Choices; /versions (explicit) answers 200.
        return self._respond(self._versions(request), 300)

    async def versions_explicit(self, request: Request) -> Response:
        return self._respond(self._versions(request))

    # -- list ----------------------------------------------------------------------------

    def _limit(self, request: Request) -> int:
        raw = request.query_params.get("limit")
        if raw is None:
            return DEFAULT_LIMIT
        try:
            limit = int(raw)
        except ValueError as exc:
            raise glance_error(request, 400, "limit param must be an integer") from exc
        if limit < 0:
            raise glance_error(request, 400, "limit param must be positive")
        return min(limit, MAX_LIMIT)

    def _sort_spec(self, request: Request) -> list[tuple[str, str]]:
        params = request.query_params
        keys: list[str] = []
        dirs: list[str] = []
        if "sort" in params:
            if "sort_key" in params or "sort_dir" in params:
                raise glance_error(
                    request,
                    400,
                    "Old and new sorting syntax cannot be combined",
                )
            for part in params["sort"].split(","):
                key, _, direction = part.strip().partition(":")
                keys.append(key)
                dirs.append(direction or "desc")
        else:
            keys = params.getlist("sort_key")
            dirs = params.getlist("sort_dir")
            if len(dirs) == 1:
                dirs = dirs * max(1, len(keys))
            if dirs and len(dirs) != len(keys) and keys:
                raise glance_error(
                    request,
                    400,
                    "Number of sort dirs does not match the number of sort keys",
                )
        for direction in dirs:
            if direction not in ("asc", "desc"):
                raise glance_error(
                    request,
                    400,
                    f"Invalid sort direction: {direction}. It must be one of the following: "
                    "asc, desc.",
                )
        default_dir = dirs[0] if dirs else "desc"
        if not keys:
            keys = ["created_at"]
            dirs = [default_dir]
        dirs += [default_dir] * (len(keys) - len(dirs))
        spec = list(zip(keys, dirs, strict=True))
        for extra in ("created_at", "id"):
            if extra not in keys:
                spec.append((extra, default_dir))
        return spec

    def _filter(self, request: Request, token: Obj, images: list[Obj]) -> list[Obj]:
        params = request.query_params
        visibility = params.get("visibility")
        if visibility is not None and visibility not in (*VISIBILITIES, "all"):
            raise glance_error(request, 400, f"Invalid visibility value: {visibility}")
        project = self._project(token)
        images = [i for i in images if self._can_see(token, i)]
        if visibility is None:
            # Without a visibility filter community images show only to their owner.
            images = [
                i for i in images if i.get("visibility") != "community" or i.get("owner") == project
            ]
        elif visibility != "all":
            images = [i for i in images if i.get("visibility") == visibility]
        hidden = params.get("os_hidden")
        want_hidden = _parse_bool(hidden) if hidden is not None else False
        if want_hidden is None:
            raise glance_error(request, 400, f"Invalid value for os_hidden: {hidden}")
        images = [i for i in images if bool(i.get("os_hidden")) == want_hidden]
        tags = params.getlist("tag")
        if tags:
            images = [i for i in images if set(tags) <= set(i.get("tags") or [])]
        for key, value in params.multi_items():
            if key in _LIST_CONTROLS or key in ("visibility", "os_hidden", "tag", "member_status"):
                continue
            images = self._apply_filter(request, images, key, value)
        return images

    def _apply_filter(self, request: Request, images: list[Obj], key: str, value: str) -> list[Obj]:
        if key in ("size_min", "size_max"):
            try:
                bound = int(value)
            except ValueError as exc:
                raise glance_error(
                    request, 400, "Unable to filter on a range with a non-numeric value."
                ) from exc
            if key == "size_min":
                return [i for i in images if (i.get("size") or 0) >= bound]
            return [i for i in images if i.get("size") is not None and i["size"] <= bound]
        if key in ("created_at", "updated_at") and ":" in value:
            operator, _, moment = value.partition(":")
            moment = moment.rstrip("Z")
            compare = {
                "gt": lambda v: v > moment,
                "gte": lambda v: v >= moment,
                "lt": lambda v: v < moment,
                "lte": lambda v: v <= moment,
                "eq": lambda v: v.startswith(moment),
                "neq": lambda v: not v.startswith(moment),
            }.get(operator)
            if compare is None:
                raise glance_error(
                    request, 400, f"Unable to filter by unknown operator '{operator}'."
                )
            return [i for i in images if compare(str(i.get(key) or "").rstrip("Z"))]
        if value.startswith("in:"):
            wanted = set(value[3:].split(","))
            return [i for i in images if str(i.get(key)) in wanted]
        if key == "protected":
            flag = _parse_bool(value)
            if flag is None:
                raise glance_error(request, 400, f"Invalid value for protected: {value}")
            return [i for i in images if bool(i.get("protected")) == flag]
        # Core attributes and custom properties alike: exact string match.
        return [i for i in images if i.get(key) is not None and str(i.get(key)) == value]

    async def list_images(self, request: Request) -> Response:
        token = require_token(self.sim, request)
        images = self._filter(request, token, list(self.region.images.values()))
        spec = [(key, d == "asc") for key, d in self._sort_spec(request)]

        def sort(objects: list[Obj]) -> list[Obj]:
            ordered = list(objects)
            sort_objects(ordered, spec)
            return ordered

        # The caller and the query's filters are part of the key, so that different
        # listings do not evict each other's order.
        query = tuple(
            sorted((k, v) for k, v in request.query_params.multi_items() if k != "marker")
        )
        order_key = (self._is_admin(token), self._project(token), query)
        order = self._orders.order(order_key, images, (key for key, _ in spec), sort)
        images = order.items
        limit = self._limit(request)
        marker = request.query_params.get("marker")
        start = 0
        if marker:
            index = order.position(marker)
            if index is None:
                raise glance_error(request, 400, f"No image found with ID {marker}")
            start = index + 1
        page = images[start : start + limit]
        # Glance rebuilds the query from the request's params (one value per name).
        params = dict(request.query_params.multi_items())
        params.pop("marker", None)
        body: Obj = {
            "images": self._encoded.encode(
                (), page, self._view, population=len(self.region.images)
            ),
            "first": "/v2/images" + (f"?{urlencode(params)}" if params else ""),
            "schema": "/v2/schemas/images",
        }
        if page and len(page) == limit:
            params["marker"] = page[-1]["id"]
            body["next"] = f"/v2/images?{urlencode(params)}"
        return self._respond(body)

    # -- show / delete -------------------------------------------------------------------

    async def show_image(self, request: Request) -> Response:
        token = require_token(self.sim, request)
        image = self._image(request, token, request.path_params["image_id"])
        return self._respond(self._view(image))

    async def delete_image(self, request: Request) -> Response:
        token = require_token(self.sim, request)
        image_id = request.path_params["image_id"]
        with self.sim.state.lock:
            image = self._image(request, token, image_id)
            if not self._can_modify(token, image):
                raise glance_error(request, 403, "You are not permitted to delete this image.")
            if image.get("protected"):
                raise glance_error(
                    request, 403, f"Image {image_id} is protected and cannot be deleted."
                )
            del self.region.images[image_id]
        return Response(status_code=204, headers=_headers())

    # -- update --------------------------------------------------------------------------

    async def patch_image(self, request: Request) -> Response:
        token = require_token(self.sim, request)
        image_id = request.path_params["image_id"]
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type not in PATCH_MEDIA_TYPES:
            raise glance_error(request, 415, f"Unsupported Content-Type: {content_type}")
        try:
            changes = json.loads(await request.body() or b"null")
        except ValueError as exc:
            raise glance_error(request, 400, "Malformed JSON in request body.") from exc
        if not isinstance(changes, list):
            raise glance_error(
                request, 400, "Request body must be a JSON array of operation objects."
            )
        with self.sim.state.lock:
            image = self._image(request, token, image_id)
            if not self._can_modify(token, image):
                raise glance_error(request, 403, "You are not permitted to modify this image.")
            updated = dict(image)
            for change in changes:
                self._apply_change(request, token, updated, change)
            updated["updated_at"] = _now()
            image.clear()
            image.update(updated)
        return self._respond(self._view(image))

    def _apply_change(self, request: Request, token: Obj, image: Obj, change: Any) -> None:
        if not isinstance(change, dict) or "op" not in change or "path" not in change:
            raise glance_error(request, 400, "Operation objects must contain 'op' and 'path'.")
        op = change["op"]
        if op not in ("add", "remove", "replace"):
            raise glance_error(
                request,
                400,
                f"Invalid operation: `{op}`. It must be one of the following: add, remove, "
                "replace.",
            )
        path = str(change["path"])
        if not path.startswith("/") or path.count("/") != 1 or path == "/":
            raise glance_error(request, 400, f"Invalid JSON pointer for this resource: '{path}'")
        name = path[1:].replace("~1", "/").replace("~0", "~")
        if name in READ_ONLY:
            raise glance_error(request, 403, f"Attribute '{name}' is read-only.")
        if name in RESERVED:
            raise glance_error(request, 403, f"Attribute '{name}' is reserved.")
        if op in ("add", "replace") and "value" not in change:
            raise glance_error(request, 400, f"Operation '{op}' requires a member named 'value'.")
        value = change.get("value")
        if name in CORE_WRITABLE:
            if op == "remove":
                raise glance_error(request, 403, f"Attribute '{name}' is reserved.")
            if not isinstance(value, CORE_WRITABLE[name]) or (
                name in ("min_ram", "min_disk") and isinstance(value, bool)
            ):
                raise glance_error(request, 400, f"Invalid value for '{name}': {value!r}")
            if name == "visibility" and value not in VISIBILITIES:
                raise glance_error(request, 400, f"Invalid visibility value: {value}")
            if name == "owner" and not self._is_admin(token):
                raise glance_error(request, 403, "Attribute 'owner' can be only replaced by admin.")
            if isinstance(value, list):
                value = [str(tag) for tag in dict.fromkeys(value)]
            image[name] = value
            return
        # A custom property.
        if op == "remove" or op == "replace":
            if name not in image:
                raise glance_error(request, 409, f"Property {name} does not exist.")
        elif name in image:
            raise glance_error(request, 409, f"Property {name} already present.")
        if op == "remove":
            del image[name]
            return
        if not isinstance(value, str):
            raise glance_error(
                request, 400, f"Invalid value for property '{name}': a string is required."
            )
        image[name] = value

    async def add_tag(self, request: Request) -> Response:
        token = require_token(self.sim, request)
        tag = request.path_params["tag"]
        if len(tag) > 255:
            raise glance_error(request, 400, "Image tag must be at most 255 characters long.")
        with self.sim.state.lock:
            image = self._image(request, token, request.path_params["image_id"])
            if not self._can_modify(token, image):
                raise glance_error(
                    request, 403, "You are not permitted to modify tags on this image."
                )
            tags = list(image.get("tags") or [])
            if tag not in tags:
                tags.append(tag)
            image["tags"] = tags
            image["updated_at"] = _now()
        return Response(status_code=204, headers=_headers())

    async def delete_tag(self, request: Request) -> Response:
        token = require_token(self.sim, request)
        tag = request.path_params["tag"]
        with self.sim.state.lock:
            image = self._image(request, token, request.path_params["image_id"])
            if not self._can_modify(token, image):
                raise glance_error(
                    request, 403, "You are not permitted to modify tags on this image."
                )
            tags = list(image.get("tags") or [])
            if tag not in tags:
                raise glance_error(request, 404, f"Tag {tag} not found")
            tags.remove(tag)
            image["tags"] = tags
            image["updated_at"] = _now()
        return Response(status_code=204, headers=_headers())

    # -- schemas -------------------------------------------------------------------------

    @staticmethod
    def _image_schema() -> Obj:
        nullable_string = {"type": ["null", "string"]}
        return {
            "name": "image",
            "additionalProperties": {"type": "string"},
            "properties": {
                "id": {"type": "string", "pattern": _UUID_PATTERN},
                "name": {**nullable_string, "maxLength": 255},
                "status": {"type": "string", "readOnly": True, "enum": [
                    "queued", "saving", "active", "killed", "deleted", "uploading",
                    "importing", "pending_delete", "deactivated"]},
                "visibility": {"type": "string", "enum": list(VISIBILITIES)},
                "protected": {"type": "boolean"},
                "os_hidden": {"type": "boolean"},
                "checksum": {**nullable_string, "readOnly": True, "maxLength": 32},
                "os_hash_algo": {**nullable_string, "readOnly": True, "maxLength": 64},
                "os_hash_value": {**nullable_string, "readOnly": True, "maxLength": 128},
                "owner": {**nullable_string, "maxLength": 255},
                "size": {"type": ["null", "integer"], "readOnly": True},
                "virtual_size": {"type": ["null", "integer"], "readOnly": True},
                "container_format": {"type": ["null", "string"], "enum": [
                    None, "ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]},
                "disk_format": {"type": ["null", "string"], "enum": [
                    None, "ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi",
                    "iso", "ploop"]},
                "created_at": {"type": "string", "readOnly": True},
                "updated_at": {"type": "string", "readOnly": True},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
                "min_ram": {"type": "integer"},
                "min_disk": {"type": "integer"},
                "self": {"type": "string", "readOnly": True},
                "file": {"type": "string", "readOnly": True},
                "schema": {"type": "string", "readOnly": True},
                "stores": {"type": "string", "readOnly": True},
            },
            "links": [
                {"rel": "self", "href": "{self}"},
                {"rel": "enclosure", "href": "{file}"},
                {"rel": "describedby", "href": "{schema}"},
            ],
        }  # fmt: skip

    async def image_schema(self, request: Request) -> Response:
        require_token(self.sim, request)
        return self._respond(self._image_schema())

    async def images_schema(self, request: Request) -> Response:
        require_token(self.sim, request)
        return self._respond(
            {
                "name": "images",
                "properties": {
                    "images": {"type": "array", "items": self._image_schema()},
                    "schema": {"type": "string"},
                    "first": {"type": "string"},
                    "next": {"type": "string"},
                },
                "links": [
                    {"rel": "first", "href": "{first}"},
                    {"rel": "next", "href": "{next}"},
                    {"rel": "describedby", "href": "{schema}"},
                ],
            }
        )

    # -- routing -------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """Every route of the simulated Glance."""
        return [
            Route("/", self.versions, methods=["GET"]),
            Route("/versions", self.versions_explicit, methods=["GET"]),
            Route("/v2/images", self.list_images, methods=["GET"]),
            Route("/v2/images/{image_id}", self.show_image, methods=["GET"]),
            Route("/v2/images/{image_id}", self.delete_image, methods=["DELETE"]),
            Route("/v2/images/{image_id}", self.patch_image, methods=["PATCH"]),
            Route("/v2/images/{image_id}/tags/{tag}", self.add_tag, methods=["PUT"]),
            Route("/v2/images/{image_id}/tags/{tag}", self.delete_tag, methods=["DELETE"]),
            Route("/v2/schemas/image", self.image_schema, methods=["GET"]),
            Route("/v2/schemas/images", self.images_schema, methods=["GET"]),
        ]


def build(sim: Simulator, region: RegionState) -> Router:
    """The Glance API of `region`, to be mounted at ``/{region}/image``."""
    return Router(routes=Glance(sim, region).routes())
