"""Zun's quotas and compute hosts in the simulator, from Zun's API reference
(api-ref/source/quotas.inc, hosts.inc) and code (zun/api/controllers/v1/quotas.py,
hosts.py, views/hosts_view.py; zun/common/quota.py; zun/conf/quota.py,
container_driver.py; zun/common/policies/quota.py, host.py):

- `GET /v1/quotas/{project_id}` (admin or the project's own): the limits, or with
  `?usages=true` `{resource: {"limit", "in_use"}}` for containers, cpu, memory (MiB),
  disk (GiB); `PUT` (admin) sets them; `GET /v1/quotas/{project_id}/defaults`;
  `DELETE` (admin) reverts to the defaults (40 containers, 20 cpu, 51200 MiB, 100 GiB).
  -1 is unlimited.
- A create is checked as `ContainersController._check_container_quotas` does: the
  project's count plus the request's delta (one container, the body's `cpu`, `memory`,
  `disk`, 0 when absent: Zun applies its defaults after the check) against each limit,
  else 403 `Quota exceeded for resources: ['cpu']`.
- `GET /v1/hosts` (admin, 1.4+): each zun-compute host with `cpus`, `cpu_used`,
  `mem_total`, `mem_used` (MiB), `disk_total`, `disk_used`, `total_containers`. The
  simulated hosts are the region's up nova-compute hosts, each with
  `Simulator.zun_host_cpus` / `zun_host_memory` / `zun_host_disk`.
- Scheduling (the filter scheduler's CPU, RAM and disk filters): a container goes to the
  host with room running the fewest containers, else `Error` with
  `There are not enough hosts available.`"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stackfleet.simulator.http import json_response
from stackfleet.simulator.state import Obj

if TYPE_CHECKING:
    from stackfleet.simulator.services.zun import Zun

# zun/conf/quota.py defaults
DEFAULT_QUOTAS: dict[str, int] = {"containers": 40, "cpu": 20, "memory": 51200, "disk": 100}
# zun/conf/container_driver.py: what a container gets when it asks for nothing
DEFAULT_CPU, DEFAULT_MEMORY, DEFAULT_DISK = 1.0, 512, 10
HOSTS_MINOR = 4
NO_HOST = "There are not enough hosts available."


def memory_mb(value: object) -> int:
    """A container's memory as Zun stores it (a string of MiB, maybe with an `M`)."""
    try:
        return int(str(value).rstrip("mM"))
    except ValueError:
        return 0


class ZunResources:
    """Quotas, hosts and host choice of one region's simulated Zun."""

    def __init__(self, zun: Zun) -> None:
        self.zun = zun
        self.region = zun.region
        self.sim = zun.sim

    def routes(self) -> list[Route]:
        return [
            Route("/v1/quotas/{project_id}/defaults", self.defaults, methods=["GET"]),
            Route("/v1/quotas/{project_id}", self.get_quotas, methods=["GET"]),
            Route("/v1/quotas/{project_id}", self.put_quotas, methods=["PUT"]),
            Route("/v1/quotas/{project_id}", self.delete_quotas, methods=["DELETE"]),
            Route("/v1/hosts", self.list_hosts, methods=["GET"]),
        ]

    # -- quotas -------------------------------------------------------------------------

    def limits(self, project_id: str) -> dict[str, int]:
        overrides = self.region.quotas.get("container", {}).get(project_id, {})
        return {k: int(overrides.get(k, v)) for k, v in DEFAULT_QUOTAS.items()}

    def usage(self, project_id: str) -> dict[str, float]:
        """zun/common/quota.py's counts: every container of the project."""
        mine = [c for c in self.region.containers.values() if c.get("project_id") == project_id]
        return {
            "containers": len(mine),
            "cpu": round(sum(float(c.get("cpu") or 0) for c in mine), 3),
            "memory": sum(memory_mb(c.get("memory")) for c in mine),
            "disk": sum(int(c.get("disk") or 0) for c in mine),
        }

    def check_create(self, project_id: str, body: Obj) -> None:
        """Refuse a create the project's quota cannot hold (403, as Zun words it)."""
        from stackfleet.simulator.services.zun import zun_error

        deltas = {
            "containers": 1,
            "cpu": float(body.get("cpu") or 0),
            "memory": memory_mb(body.get("memory") or 0),
            "disk": int(body.get("disk") or 0),
        }
        used, limits = self.usage(project_id), self.limits(project_id)
        overs = sorted(
            k for k, delta in deltas.items() if limits[k] >= 0 and used[k] + delta > limits[k]
        )
        if overs:
            raise zun_error(403, f"Quota exceeded for resources: {overs!r}")

    def _target(self, request: Request, admin_only: bool) -> tuple[str, int]:
        from stackfleet.simulator.services.zun import zun_error

        token, minor = self.zun._call(request)
        project_id = request.path_params["project_id"]
        if not self.zun._admin(token) and (admin_only or self.zun._project(token) != project_id):
            action = "update" if admin_only else "get"
            raise zun_error(403, f"Policy doesn't allow quota:{action} to be performed.")
        return project_id, minor

    async def get_quotas(self, request: Request) -> Response:
        from stackfleet.simulator.services.zun import _bool

        project_id, minor = self._target(request, admin_only=False)
        limits = self.limits(project_id)
        body: Obj = dict(limits)
        if _bool(request.query_params.get("usages"), "usages"):
            used = self.usage(project_id)
            body = {k: {"limit": limits[k], "in_use": used[k]} for k in limits}
        return json_response(body, 200, self.zun._headers(minor))

    async def defaults(self, request: Request) -> Response:
        _project_id, minor = self._target(request, admin_only=False)
        return json_response(dict(DEFAULT_QUOTAS), 200, self.zun._headers(minor))

    async def put_quotas(self, request: Request) -> Response:
        import json

        from stackfleet.simulator.services.zun import zun_error

        project_id, minor = self._target(request, admin_only=True)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError as exc:
            raise zun_error(400, "Invalid JSON in the request body.") from exc
        if not isinstance(body, dict):
            raise zun_error(400, "Invalid input: the request body must be an object.")
        unknown = sorted(set(body) - set(DEFAULT_QUOTAS))
        if unknown:
            raise zun_error(
                400, f"Additional properties are not allowed ({', '.join(unknown)} unexpected)"
            )
        with self.sim.state.lock:
            stored = self.region.quotas.setdefault("container", {}).setdefault(project_id, {})
            for key, value in body.items():
                try:
                    stored[key] = int(value)
                except (TypeError, ValueError) as exc:
                    raise zun_error(400, f"Invalid input for field '{key}': {value!r}") from exc
        return json_response(self.limits(project_id), 200, self.zun._headers(minor))

    async def delete_quotas(self, request: Request) -> Response:
        project_id, minor = self._target(request, admin_only=True)
        with self.sim.state.lock:
            self.region.quotas.get("container", {}).pop(project_id, None)
        return Response(status_code=202, headers=self.zun._headers(minor))

    # -- hosts --------------------------------------------------------------------------

    def hosts(self) -> list[Obj]:
        """The zun-compute hosts (the region's up nova-compute hosts) and their use."""
        names = sorted(
            str(s.get("host"))
            for s in self.region.compute_services.values()
            if s.get("binary") == "nova-compute" and s.get("state") == "up"
        ) or ["zun-compute-1"]
        cpus = int(getattr(self.sim, "zun_host_cpus", 16))
        memory = int(getattr(self.sim, "zun_host_memory", 32768))
        disk = int(getattr(self.sim, "zun_host_disk", 500))
        hosts = []
        for index, name in enumerate(names):
            on = [c for c in self.region.containers.values() if c.get("host") == name]
            hosts.append(
                {
                    "uuid": f"00000000-0000-4000-a000-{index:012d}",
                    "hostname": name,
                    "cpus": cpus,
                    "cpu_used": round(sum(float(c.get("cpu") or 0) for c in on), 3),
                    "mem_total": memory,
                    "mem_used": sum(memory_mb(c.get("memory")) for c in on),
                    "disk_total": disk,
                    "disk_used": sum(int(c.get("disk") or 0) for c in on),
                    "total_containers": len(on),
                    "architecture": "x86_64",
                    "os_type": "linux",
                    "os": "Debian GNU/Linux 12 (bookworm)",
                    "kernel_version": "6.1.0",
                    "labels": {},
                    "disk_quota_supported": False,
                    "runtimes": ["runc"],
                    "enable_cpu_pinning": False,
                }
            )
        return hosts

    def pick_host(self, container: Obj) -> str | None:
        """Among the hosts with room for the container (CPU, RAM and disk filters), the
        one running the fewest containers."""
        room = [
            host
            for host in self.hosts()
            if host["cpu_used"] + float(container.get("cpu") or 0) <= host["cpus"]
            and host["mem_used"] + memory_mb(container.get("memory")) <= host["mem_total"]
            and host["disk_used"] + int(container.get("disk") or 0) <= host["disk_total"]
        ]
        if not room:
            return None
        return str(min(room, key=lambda h: (h["total_containers"], h["hostname"]))["hostname"])

    async def list_hosts(self, request: Request) -> Response:
        from stackfleet.simulator.services.zun import zun_error

        token, minor = self.zun._call(request)
        if minor < HOSTS_MINOR:
            raise zun_error(404, "The resource could not be found.")
        if not self.zun._admin(token):
            raise zun_error(403, "Policy doesn't allow host:get_all to be performed.")
        root = f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"
        hosts = []
        for host in self.hosts():
            view = dict(host)
            view["links"] = [
                {"href": f"{root}/v1/hosts/{host['uuid']}", "rel": "self"},
                {"href": f"{root}/hosts/{host['uuid']}", "rel": "bookmark"},
            ]
            hosts.append(view)
        return json_response({"hosts": hosts, "next": None}, 200, self.zun._headers(minor))
