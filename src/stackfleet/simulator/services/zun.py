"""A minimal simulated Zun (Container API v1) of one region, written from Zun's API
reference (api-ref/source/containers.inc) and its controller
(zun/api/controllers/v1/containers.py, zun/common/utils.py VALID_STATES): containers
create (`?run=true` starts it), list, show (uuid or name), delete (`force`, `stop`),
start, stop, reboot, rebuild and logs; quotas, hosts and host choice in
`zun_quotas.py`.

Statuses: a create answers 202 with `Creating`; the container becomes `Created` (and
`Running` when run), or `Error` with a `status_reason` (a `glance` image driver needs an
active Glance image of that name). An action in a state Zun refuses answers 409
`Cannot <action> container <uuid> in <status> state`. Deletion is asynchronous (1.10+):
`Deleting`, then gone. Errors carry Zun's `{"errors": [...]}` body. Microversions come
from `OpenStack-API-Version: container 1.x` (1.1 to 1.40). Registered in the catalog as
service type `container` only when the simulator is started with Zun enabled
(`Simulator.zun`). With `Simulator.action_delay` each transition lasts that long."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from stackfleet.simulator.http import ApiError, json_response, require_token
from stackfleet.simulator.services.zun_quotas import DEFAULT_MEMORY, NO_HOST, ZunResources
from stackfleet.simulator.state import Obj, RegionState
from stackfleet.simulator.stepping import later

if TYPE_CHECKING:
    from stackfleet.simulator.app import Simulator

MIN_MINOR, MAX_MINOR = 1, 40
_TITLES = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 406: "Not Acceptable",
           409: "Conflict"}  # fmt: skip

# zun/common/utils.py VALID_STATES (the actions simulated)
VALID_STATES: dict[str, tuple[str, ...]] = {
    "delete": ("Created", "Error", "Stopped", "Deleted", "Dead"),
    "delete_force": ("Created", "Creating", "Error", "Running", "Stopped", "Unknown",
                     "Deleted", "Dead", "Restarting", "Rebuilding", "Deleting"),
    "delete_after_stop": ("Running", "Created", "Error", "Stopped", "Deleted", "Dead"),
    "start": ("Created", "Stopped", "Error"),
    "stop": ("Running",),
    "reboot": ("Created", "Running", "Stopped", "Error"),
    "rebuild": ("Created", "Running", "Stopped", "Error"),
    "logs": ("Created", "Error", "Paused", "Running", "Stopped", "Unknown"),
}  # fmt: skip
FIELDS = (
    "uuid", "name", "image", "labels", "image_driver", "security_groups", "command", "cpu",
    "memory", "workdir", "environment", "restart_policy", "interactive", "tty", "hostname",
    "status", "status_detail", "host", "task_state", "status_reason", "ports", "addresses",
    "auto_remove", "auto_heal", "privileged", "healthcheck", "user_id", "project_id", "disk",
    "registry_id", "cpu_policy", "entrypoint", "runtime",
)  # fmt: skip
LIST_FILTERS = ("name", "image", "project_id", "user_id", "memory", "host", "task_state",
                "status", "auto_remove")  # fmt: skip


def zun_error(status: int, message: str) -> ApiError:
    """Zun's error body (zun/api/middleware/parsable_error.py)."""
    return ApiError(
        status,
        {
            "errors": [
                {
                    "request_id": "",
                    "code": f"container.{message.lower()}",
                    "status": status,
                    "title": _TITLES.get(status, "Error"),
                    "detail": message,
                    "links": [],
                }
            ]
        },
    )


def _bool(raw: str | None, name: str) -> bool:
    if raw is None:
        return False
    lowered = raw.strip().lower()
    if lowered in ("1", "t", "true", "on", "y", "yes"):
        return True
    if lowered in ("0", "f", "false", "off", "n", "no"):
        return False
    raise zun_error(
        400, f"Valid {name} values are: 1, t, true, on, y, yes, 0, f, false, off, n, no"
    )


def _minor(request: Request) -> int:
    raw = request.headers.get("openstack-api-version", "")
    words = raw.split()
    if len(words) == 2 and words[0].lower() == "container":
        version = words[1]
        if version == "latest":
            return MAX_MINOR
        try:
            major, minor = (int(p) for p in version.split("."))
        except ValueError as exc:
            raise zun_error(400, f"Invalid API version: {version}") from exc
        if major != 1 or not MIN_MINOR <= minor <= MAX_MINOR:
            raise zun_error(
                406,
                f"Version {version} was requested but the minor version is not supported by "
                f"this service. The supported version range is: [1.{MIN_MINOR}, 1.{MAX_MINOR}].",
            )
        return minor
    return MIN_MINOR


class Zun:
    """The routes of one region's simulated Zun."""

    def __init__(self, sim: Simulator, region: RegionState) -> None:
        self.sim = sim
        self.region = region
        self.resources = ZunResources(self)

    # -- helpers ------------------------------------------------------------------------

    def _call(self, request: Request) -> tuple[Obj, int]:
        token = require_token(self.sim, request)
        return token, _minor(request)

    @staticmethod
    def _admin(token: Obj) -> bool:
        return any(role.get("name") == "admin" for role in token.get("roles", []))

    @staticmethod
    def _project(token: Obj) -> str | None:
        project = token.get("project")
        return str(project["id"]) if isinstance(project, dict) else None

    def _headers(self, minor: int) -> dict[str, str]:
        return {
            "OpenStack-API-Version": f"container 1.{minor}",
            "OpenStack-API-Minimum-Version": f"container 1.{MIN_MINOR}",
            "OpenStack-API-Maximum-Version": f"container 1.{MAX_MINOR}",
            "Vary": "OpenStack-API-Version",
        }

    def _view(self, request: Request, container: Obj) -> Obj:
        view = {k: container.get(k) for k in FIELDS}
        root = f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"
        view["links"] = [
            {"href": f"{root}/v1/containers/{container['uuid']}", "rel": "self"},
            {"href": f"{root}/containers/{container['uuid']}", "rel": "bookmark"},
        ]
        return view

    def _container(self, token: Obj, ident: str, all_projects: bool = False) -> Obj:
        project = self._project(token)
        mine = [
            c
            for c in self.region.containers.values()
            if (all_projects and self._admin(token)) or c.get("project_id") == project
        ]
        found = [c for c in mine if c["uuid"] == ident]
        if not found:
            found = [c for c in mine if c.get("name") == ident]
        if len(found) > 1:
            raise zun_error(
                409,
                "Multiple containers exist with same name. Please use the container uuid instead.",
            )
        if not found:
            raise zun_error(404, f"Container {ident} could not be found.")
        return found[0]

    @staticmethod
    def _check_state(container: Obj, action: str) -> None:
        if container.get("status") not in VALID_STATES[action]:
            verb = action.split("_")[0] if action.startswith("delete") else action
            raise zun_error(
                409,
                f"Cannot {verb} container {container['uuid']} in {container.get('status')} state",
            )

    def _later(self, step: Callable[[], None]) -> None:
        later(self.sim, step)

    def _set(self, container: Obj, status: str, task: str | None = None) -> None:
        container["status"] = status
        container["task_state"] = task
        container["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")

    def _log(self, container: Obj, line: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        container.setdefault("_logs", []).append(f"{stamp} {line}")

    def _run(self, container_id: str) -> None:
        """Created → Running (the container's command starts)."""
        current = self.region.containers.get(container_id)
        if current is None:
            return
        self._set(current, "Running")
        command = current.get("command") or []
        shown = " ".join(command) if isinstance(command, list) else str(command)
        self._log(current, f"starting {current.get('image')}: {shown or '(image entrypoint)'}")
        for key, value in sorted((current.get("environment") or {}).items()):
            self._log(current, f"env {key}={value}")

    # -- routes -------------------------------------------------------------------------

    async def version(self, request: Request) -> Response:
        return json_response(
            {
                "id": "v1",
                "links": [{"href": str(request.url), "rel": "self"}],
                "min_version": f"1.{MIN_MINOR}",
                "max_version": f"1.{MAX_MINOR}",
            }
        )

    async def list_containers(self, request: Request) -> Response:
        token, minor = self._call(request)
        params = request.query_params
        all_projects = _bool(params.get("all_projects"), "all_projects")
        if all_projects and not self._admin(token):
            raise zun_error(
                403, "Policy doesn't allow container:get_all_all_projects to be performed."
            )
        unknown = sorted(
            set(params) - set(LIST_FILTERS) - {"all_projects", "limit", "marker", "sort_key",
                                               "sort_dir"}
        )  # fmt: skip
        if unknown:
            raise zun_error(400, f"Unknown parameters: {', '.join(unknown)}")
        project = self._project(token)
        items = [
            c
            for c in self.region.containers.values()
            if all_projects or c.get("project_id") == project
        ]
        for key in LIST_FILTERS:
            if key in params:
                items = [c for c in items if str(c.get(key)) == params[key]]
        items.sort(key=lambda c: c["_seq"])
        body = {"containers": [self._view(request, c) for c in items]}
        return json_response(body, 200, self._headers(minor))

    async def show_container(self, request: Request) -> Response:
        token, minor = self._call(request)
        all_projects = _bool(request.query_params.get("all_projects"), "all_projects")
        container = self._container(token, request.path_params["ident"], all_projects)
        return json_response(self._view(request, container), 200, self._headers(minor))

    async def create_container(self, request: Request) -> Response:
        token, minor = self._call(request)
        run = _bool(request.query_params.get("run"), "run")
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError as exc:
            raise zun_error(400, "Invalid JSON in the request body.") from exc
        if not isinstance(body, dict):
            raise zun_error(400, "Invalid input: the request body must be an object.")
        image = body.get("image")
        if not isinstance(image, str) or not image:
            raise zun_error(400, "Invalid input for field 'image': 'image' is a required property")
        command = body.get("command")
        if command is not None and minor >= 20 and not isinstance(command, list):
            raise zun_error(
                400, f"Invalid input for field 'command': {command!r} is not of type 'array'"
            )
        for key, kind in (("environment", dict), ("labels", dict)):
            if body.get(key) is not None and not isinstance(body[key], kind):
                raise zun_error(400, f"Invalid input for field '{key}': not an object")
        memory = body.get("memory")
        if memory is not None:
            try:
                memory_mb = int(str(memory).rstrip("mM"))
            except ValueError as exc:
                raise zun_error(400, f"Invalid input for field 'memory': {memory}") from exc
            if memory_mb < 4:
                raise zun_error(400, "Invalid input for field 'memory': minimum is 4 MiB")
        exposed = body.get("exposed_ports")
        if exposed is not None and minor < 24:
            raise zun_error(400, "Invalid input: 'exposed_ports' requires API version 1.24")
        driver = body.get("image_driver") or "docker"
        if driver not in ("docker", "glance"):
            raise zun_error(
                400, "Invalid input for image_driver, it should be within the image drivers list"
            )
        name = body.get("name") or f"zun-{uuid.uuid4().hex[:8]}-container"
        now = datetime.now(UTC).isoformat(timespec="seconds")
        container_id = str(uuid.uuid4())
        with self.sim.state.lock:
            self.resources.check_create(str(self._project(token)), body)
            container: Obj = {
                "uuid": container_id, "name": name, "image": image, "image_driver": driver,
                "labels": dict(body.get("labels") or {}), "command": command,
                "cpu": float(body["cpu"]) if body.get("cpu") is not None else 1.0,
                "memory": str(memory) if memory is not None else str(DEFAULT_MEMORY),
                "workdir": body.get("workdir"),
                "environment": dict(body.get("environment") or {}),
                "restart_policy": body.get("restart_policy") or {},
                "interactive": bool(body.get("interactive")), "tty": bool(body.get("tty")),
                "hostname": body.get("hostname") or name[:63],
                "security_groups": list(body.get("security_groups") or ["default"]),
                "status": "Creating", "status_detail": None, "status_reason": None,
                "task_state": "image_pulling", "host": None, "addresses": None,
                "ports": sorted(int(p.split("/")[0]) for p in (exposed or {})) or None,
                "auto_remove": bool(body.get("auto_remove")),
                "auto_heal": bool(body.get("auto_heal")),
                "privileged": bool(body.get("privileged")), "healthcheck": body.get("healthcheck"),
                "user_id": (token.get("user") or {}).get("id"),
                "project_id": self._project(token), "disk": int(body.get("disk") or 0),
                "registry_id": None, "cpu_policy": "shared", "entrypoint": body.get("entrypoint"),
                "runtime": body.get("runtime") or "runc",
                "created_at": now, "updated_at": None, "_seq": len(self.region.containers),
                "_logs": [],
            }  # fmt: skip
            self.region.containers[container_id] = container
            self._later(lambda: self._created(container_id, run))
        return json_response(self._view(request, container), 202, self._headers(minor))

    def _created(self, container_id: str, run: bool) -> None:
        """The image pulled (or not) and the container made: Created, or Error."""
        current = self.region.containers.get(container_id)
        if current is None or current.get("status") != "Creating":
            return
        if current["image_driver"] == "glance" and not any(
            i.get("name") == current["image"] and i.get("status") == "active"
            for i in self.region.images.values()
        ):
            self._set(current, "Error")
            current["status_reason"] = f"Image {current['image']} could not be found."
            return
        host = self.resources.pick_host(current)
        if host is None:
            self._set(current, "Error")
            current["status_reason"] = NO_HOST
            return
        current["host"] = host
        current["addresses"] = {}
        self._set(current, "Created")
        if run:
            self._later(lambda: self._run(container_id))

    async def delete_container(self, request: Request) -> Response:
        token, minor = self._call(request)
        params = request.query_params
        force = _bool(params.get("force"), "force")
        stop = _bool(params.get("stop"), "stop")
        all_projects = _bool(params.get("all_projects"), "all_projects")
        if all_projects and not self._admin(token):
            raise zun_error(
                403, "Policy doesn't allow container:delete_all_projects to be performed."
            )
        with self.sim.state.lock:
            container = self._container(token, request.path_params["ident"], all_projects)
            if stop and minor < 12:
                raise zun_error(406, "Invalid input: 'stop' requires API version 1.12")
            if force and not stop:
                if minor >= 7 and not self._admin(token):
                    raise zun_error(
                        403, "Policy doesn't allow container:delete_force to be performed."
                    )
                self._check_state(container, "delete_force")
            elif stop:
                self._check_state(container, "delete_after_stop")
            else:
                self._check_state(container, "delete")
            self._set(container, "Deleting", "container_deleting")
            container_id = container["uuid"]

            def gone() -> None:
                self.region.containers.pop(container_id, None)

            if minor >= 10:
                self._later(gone)
            else:
                gone()
        return Response(status_code=204, headers=self._headers(minor))

    async def action(self, request: Request) -> Response:
        token, minor = self._call(request)
        action = request.path_params["action"]
        if action not in ("start", "stop", "reboot", "rebuild"):
            raise zun_error(404, "The resource could not be found.")
        with self.sim.state.lock:
            container = self._container(token, request.path_params["ident"])
            self._check_state(container, action)
            container_id = container["uuid"]
            if action == "start":
                self._set(container, container["status"], "container_starting")
                self._later(lambda: self._run(container_id))
            elif action == "stop":
                self._set(container, container["status"], "container_stopping")

                def stopped() -> None:
                    current = self.region.containers.get(container_id)
                    if current is not None:
                        self._set(current, "Stopped")
                        self._log(current, "stopped (SIGTERM)")

                self._later(stopped)
            elif action == "reboot":
                self._set(container, "Restarting", "container_rebooting")
                self._later(lambda: self._run(container_id))
            else:
                image = request.query_params.get("image")
                if image:
                    container["image"] = image
                self._set(container, "Rebuilding", "container_rebuilding")
                self._later(lambda: self._run(container_id))
        return Response(status_code=202, headers=self._headers(minor))

    async def logs(self, request: Request) -> Response:
        token, minor = self._call(request)
        params = request.query_params
        container = self._container(token, request.path_params["ident"])
        self._check_state(container, "logs")
        timestamps = _bool(params.get("timestamps"), "timestamps")
        stdout = _bool(params.get("stdout", "true"), "stdout")
        lines: list[str] = list(container.get("_logs") or []) if stdout else []
        tail = params.get("tail", "all")
        if tail != "all":
            try:
                count = int(tail)
            except ValueError as exc:
                raise zun_error(400, f"Invalid input for tail: {tail}") from exc
            lines = lines[-count:] if count > 0 else []
        if not timestamps:
            lines = [line.split(" ", 1)[1] if " " in line else line for line in lines]
        text = "".join(f"{line}\n" for line in lines)
        # the controller is exposed as JSON: the logs arrive as a JSON string
        return json_response(text, 200, self._headers(minor))

    def routes(self) -> list[Route]:
        return [
            *self.resources.routes(),
            Route("/v1", self.version, methods=["GET"]),
            Route("/v1/", self.version, methods=["GET"]),
            Route("/v1/containers", self.list_containers, methods=["GET"]),
            Route("/v1/containers/", self.list_containers, methods=["GET"]),
            Route("/v1/containers", self.create_container, methods=["POST"]),
            Route("/v1/containers/", self.create_container, methods=["POST"]),
            Route("/v1/containers/{ident}", self.show_container, methods=["GET"]),
            Route("/v1/containers/{ident}", self.delete_container, methods=["DELETE"]),
            Route("/v1/containers/{ident}/logs", self.logs, methods=["GET"]),
            Route("/v1/containers/{ident}/{action}", self.action, methods=["POST"]),
        ]


def build(sim: Simulator, region: RegionState) -> Router:
    """The Zun API of `region`, mounted at ``/{region}/container`` when enabled."""
    return Router(routes=Zun(sim, region).routes())
