"""Nova's management calls a workload's verbs use, in the simulator: server actions
`rebuild`, `resize` (then the existing confirmResize / revertResize),
`os-getConsoleOutput`, and `POST /servers/{id}/remote-consoles` (2.6+).

Shapes and errors follow the compute API reference (Servers - run an action: Rebuild
Server, Resize Server, Show Console Output; Server Remote Consoles) and
nova/api/openstack/compute/{servers,console_output,remote_consoles}.py. The simulated
cloud resizes on the same host, as DevStack configures Nova
(`allow_resize_to_same_host = True`): the old flavor's allocation is held by the
migration record until the resize is confirmed or reverted."""

from __future__ import annotations

import copy
import secrets
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from stackfleet.simulator.http import empty_response, json_response
from stackfleet.simulator.services.nova import (
    HOST,
    NODE,
    POWER_STATE,
    RUNNING,
    SHUTDOWN,
    VM_STATE,
    Caller,
    _read_body,
    nova_error,
)
from stackfleet.simulator.state import Obj

if TYPE_CHECKING:
    from stackfleet.simulator.services.nova import Nova

CONSOLE_TYPES = {
    "vnc": ("novnc", "xvpvnc"),
    "spice": ("spice-html5",),
    "serial": ("serial",),
    "rdp": ("rdp-html5",),
    "mks": ("webmks",),
}
CONSOLE_PORTS = {"vnc": 6080, "spice": 6082, "serial": 6083, "rdp": 6084, "mks": 6090}


def _ref_id(ref: Any) -> str:
    return str(ref or "").rstrip("/").rsplit("/", 1)[-1]


def console_lines(server: Obj) -> list[str]:
    """What the simulated guest wrote to its serial console: a boot log."""
    name = server.get("name") or server["id"]
    lines = [
        "[    0.000000] Linux version 6.1.0-simulated (stackfleet-simulator)",
        f"[    0.000000] Command line: root=LABEL=cloudimg-rootfs console=ttyS0 ({name})",
        "[    1.204518] cloud-init[312]: Cloud-init v. 23.1 running 'init-local'",
        f"[    2.881034] cloud-init[398]: hostname set to {name}",
    ]
    for index, address in enumerate(
        a["addr"] for addrs in (server.get("addresses") or {}).values() for a in addrs
    ):
        lines.append(f"[    3.{index:06d}] cloud-init[398]: ci-info: eth{index}: {address}")
    state = server.get(VM_STATE)
    lines.append(f"[    4.502113] systemd[1]: Reached target multi-user.target ({state})")
    lines.append(f"{name} login:")
    return lines


class NovaManagement:
    """The management routes, sharing the Nova simulator's state and helpers."""

    def __init__(self, nova: Nova) -> None:
        self.nova = nova
        self.region = nova.region

    def actions(self) -> dict[str, Any]:
        return {
            "rebuild": self.rebuild,
            "resize": self.resize,
            "os-getConsoleOutput": self.console_output,
        }

    # -- rebuild ------------------------------------------------------------------------

    async def rebuild(self, request: Request, caller: Caller, server: Obj, arg: Any) -> Response:
        nova = self.nova
        nova._require_write(caller, "os_compute_api:servers:rebuild")
        if not isinstance(arg, dict) or "imageRef" not in arg:
            raise nova_error(
                400,
                "Invalid input for field/attribute rebuild. Value: "
                f"{arg}. 'imageRef' is a required property",
            )
        image_id = _ref_id(arg["imageRef"])
        image = self.region.images.get(image_id)
        if image is None:
            raise nova_error(400, f"Image {image_id} could not be found.")
        if image.get("status") != "active":
            raise nova_error(400, f"Image {image_id} is not active.")
        nova._check_lock(caller, server)
        nova._check_state(server, "rebuild", ("active", "stopped", "error"))
        was_stopped = server.get(VM_STATE) == "stopped"
        name = arg.get("name")

        def finish(current: Obj) -> None:
            current["image"] = {"id": image_id}
            if isinstance(name, str) and name:
                current["name"] = name
            current.pop("fault", None)
            if was_stopped:
                nova._set_power(current, "stopped", SHUTDOWN)
            else:
                nova._set_power(current, "active", RUNNING)

        nova._transition(server, "rebuilding", finish)
        view = nova._view(request, caller)
        return json_response({"server": nova.render_server(server, view, show=True)}, 202)

    # -- resize ---------------------------------------------------------------------------

    async def resize(self, request: Request, caller: Caller, server: Obj, arg: Any) -> Response:
        nova = self.nova
        nova._require_write(caller, "os_compute_api:servers:resize")
        if not isinstance(arg, dict) or "flavorRef" not in arg:
            raise nova_error(
                400,
                "Invalid input for field/attribute resize. Value: "
                f"{arg}. 'flavorRef' is a required property",
            )
        flavor_id = _ref_id(arg["flavorRef"])
        flavor = self.region.flavors.get(flavor_id)
        if flavor is None:
            raise nova_error(400, f"Flavor {flavor_id} could not be found.")
        nova._check_lock(caller, server)
        nova._check_state(server, "resize", ("active", "stopped"))
        old = copy.deepcopy(server.get("flavor") or {})
        if old.get("original_name") == flavor.get("name"):
            raise nova_error(400, "When resizing, instances must change flavor!")
        if int(flavor.get("disk") or 0) < int(old.get("disk") or 0) and server.get("image"):
            raise nova_error(400, "Resize error: Unable to resize disk down.")
        hypervisor = next(
            (
                h
                for h in self.region.hypervisors.values()
                if h.get("hypervisor_hostname") == server.get(NODE)
            ),
            None,
        )
        if hypervisor is None:
            raise nova_error(400, "No valid host was found. There are not enough hosts available.")
        migration = nova._new_migration(server, "resize", hypervisor, "pre-migrating")
        migration["old_flavor"] = old
        migration["new_instance_type_id"] = (
            int(flavor_id) if str(flavor_id).isdigit() else migration["new_instance_type_id"]
        )

        def finish(current: Obj) -> None:
            current["flavor"] = {
                "vcpus": flavor.get("vcpus"),
                "ram": flavor.get("ram"),
                "disk": flavor.get("disk"),
                "ephemeral": flavor.get("OS-FLV-EXT-DATA:ephemeral", 0),
                "swap": flavor.get("swap") or 0,
                "original_name": flavor.get("name"),
                "extra_specs": dict(flavor.get("extra_specs") or {}),
            }
            # the new flavor's allocation on the (same) host; the old one stays held by
            # the migration until confirmResize
            nova._move(current, hypervisor, release_source=False)
            current[VM_STATE] = "resized"
            nova._set_migration(migration, "finished")

        nova._transition(server, "resize_prep", finish)
        return empty_response(202)

    # -- consoles ---------------------------------------------------------------------------

    async def console_output(
        self, request: Request, caller: Caller, server: Obj, arg: Any
    ) -> Response:
        self.nova._require_write(caller, "os_compute_api:os-console-output")
        length = arg.get("length") if isinstance(arg, dict) else None
        if server.get(VM_STATE) not in ("active", "stopped", "error", "resized") or not server.get(
            HOST
        ):
            raise nova_error(
                409, f"Instance {server['id']} is not ready (vm_state {server.get(VM_STATE)})"
            )
        lines = console_lines(server)
        if length is not None:
            try:
                count = int(length)
            except (TypeError, ValueError) as exc:
                raise nova_error(
                    400, f"Invalid input for field/attribute length. Value: {length}."
                ) from exc
            if count >= 0:
                lines = lines[-count:] if count else []
        return json_response({"output": "\n".join(lines) + ("\n" if lines else "")})

    async def remote_console(self, request: Request, caller: Caller) -> Response:
        nova = self.nova
        if not caller.at_least(6):
            raise nova_error(404, "The resource could not be found.")
        nova._require_write(caller, "os_compute_api:os-remote-consoles")
        server = nova._server_for(caller, request.path_params["server_id"])
        body = await _read_body(request)
        console = body.get("remote_console") if isinstance(body, dict) else None
        if not isinstance(console, dict):
            raise nova_error(400, "Invalid input for field/attribute remote_console. Value: None.")
        protocol, kind = console.get("protocol"), console.get("type")
        if protocol not in CONSOLE_TYPES or kind not in CONSOLE_TYPES[protocol]:
            raise nova_error(400, f"Invalid input for field/attribute type. Value: {kind}.")
        if server.get(VM_STATE) != "active" or server.get(POWER_STATE) != RUNNING:
            raise nova_error(
                409, f"Instance {server['id']} is not ready (vm_state {server.get(VM_STATE)})"
            )
        token = secrets.token_hex(16)
        host = request.url.hostname or "127.0.0.1"
        port = CONSOLE_PORTS[protocol]
        paths = {
            "novnc": f"vnc_auto.html?path=%3Ftoken%3D{token}",
            "xvpvnc": f"console?token={token}",
            "spice-html5": f"spice_auto.html?token={token}",
            "serial": f"?token={token}",
            "rdp-html5": f"?token={token}",
            "webmks": f"?token={token}",
        }
        scheme = "ws" if protocol == "serial" else "http"
        url = f"{scheme}://{host}:{port}/{paths[kind]}"
        return json_response({"remote_console": {"protocol": protocol, "type": kind, "url": url}})
