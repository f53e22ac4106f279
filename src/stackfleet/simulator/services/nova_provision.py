"""Nova's provisioning calls in the simulator: server create (networks, ports, security
groups, key pair, availability zone, metadata, tags, server-group hint,
block_device_mapping_v2), server groups create/delete and key pairs.

Shapes and errors follow the compute API reference
(https://docs.openstack.org/api-ref/compute/) and nova/api/openstack/compute/servers.py:
a create answers 202 with the new server's id at once; the server shows BUILD until the
simulated scheduler placed it (ACTIVE) or found no valid host (ERROR with Nova's fault).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import secrets
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from stackfleet.simulator.http import ApiError, empty_response, json_response
from stackfleet.simulator.services.nova import (
    Caller,
    _db_time,
    _read_body,
    host_id,
    nova_error,
    nova_time,
    server_resources,
)
from stackfleet.simulator.state import Obj

if TYPE_CHECKING:
    from stackfleet.simulator.services.nova import Nova

NO_VALID_HOST = "No valid host was found. There are not enough hosts available."
SERVER_GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


def _error(status: int, message: str) -> ApiError:
    return nova_error(status, message)


def _ref_id(ref: Any) -> str:
    """flavorRef / imageRef: an id or a link ending in the id."""
    text = str(ref or "")
    return text.rstrip("/").rsplit("/", 1)[-1]


def keypair_key(user_id: str, name: str) -> str:
    return f"{user_id}:{name}"


def fingerprint(public_key: str) -> str:
    digest = hashlib.md5(public_key.encode(), usedforsecurity=False).hexdigest()  # noqa: S324
    return ":".join(digest[i : i + 2] for i in range(0, 32, 2))


class NovaProvisioning:
    """The provisioning routes, sharing the Nova simulator's state and helpers."""

    def __init__(self, nova: Nova) -> None:
        self.nova = nova
        self.region = nova.region
        self.sim = nova.sim

    # -- key pairs --------------------------------------------------------------------

    def _keypair_user(self, request: Request, caller: Caller) -> str:
        requested = request.query_params.get("user_id")
        if requested and requested != caller.user_id:
            if not caller.is_admin:
                raise _error(
                    403, "Policy doesn't allow os_compute_api:os-keypairs:index to be performed."
                )
            return requested
        return caller.user_id

    @staticmethod
    def _render_keypair(keypair: Obj, caller: Caller, *, show: bool) -> Obj:
        out = {k: keypair[k] for k in ("name", "public_key", "fingerprint")}
        if caller.at_least(2):
            out["type"] = keypair.get("type", "ssh")
        if show:
            out.update(
                user_id=keypair["user_id"],
                created_at=keypair["created_at"],
                deleted=False,
                deleted_at=None,
                id=keypair["id"],
                updated_at=None,
            )
        return out

    async def list_keypairs(self, request: Request, caller: Caller) -> Response:
        user = self._keypair_user(request, caller)
        items = [
            {"keypair": self._render_keypair(k, caller, show=False)}
            for k in self.region.keypairs.values()
            if k["user_id"] == user
        ]
        return json_response({"keypairs": items})

    def _keypair(self, request: Request, caller: Caller) -> Obj:
        user = self._keypair_user(request, caller)
        name = request.path_params["name"]
        keypair = self.region.keypairs.get(keypair_key(user, name))
        if keypair is None:
            raise _error(404, f"Keypair {name} not found for user {user}")
        return keypair

    async def show_keypair(self, request: Request, caller: Caller) -> Response:
        keypair = self._keypair(request, caller)
        return json_response({"keypair": self._render_keypair(keypair, caller, show=True)})

    async def create_keypair(self, request: Request, caller: Caller) -> Response:
        body = await _body(request)
        data = body.get("keypair") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise _error(400, "Invalid input for field/attribute keypair.")
        name = data["name"]
        user = str(data.get("user_id") or caller.user_id)
        if user != caller.user_id and not caller.is_admin:
            raise _error(
                403, "Policy doesn't allow os_compute_api:os-keypairs:create to be performed."
            )
        key = keypair_key(user, name)
        with self.nova._lock():
            if key in self.region.keypairs:
                raise _error(409, f"Key pair '{name}' already exists.")
            public_key = data.get("public_key") or f"ssh-ed25519 AAAA{secrets.token_hex(16)} {name}"
            keypair = {
                "id": len(self.region.keypairs) + 1,
                "name": name,
                "public_key": public_key,
                "fingerprint": fingerprint(public_key),
                "type": data.get("type") or "ssh",
                "user_id": user,
                "created_at": _db_time(),
            }
            self.region.keypairs[key] = keypair
        out = self._render_keypair(keypair, caller, show=False)
        out["user_id"] = user
        status = 201 if caller.at_least(2) else 200
        return json_response({"keypair": out}, status)

    async def delete_keypair(self, request: Request, caller: Caller) -> Response:
        keypair = self._keypair(request, caller)
        with self.nova._lock():
            self.region.keypairs.pop(keypair_key(keypair["user_id"], keypair["name"]), None)
        return empty_response(202 if not caller.at_least(2) else 204)

    # -- server groups ----------------------------------------------------------------

    async def create_server_group(self, request: Request, caller: Caller) -> Response:
        self.nova._require_write(caller, "os_compute_api:os-server-groups:create")
        body = await _body(request)
        data = body.get("server_group") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise _error(400, "Invalid input for field/attribute server_group.")
        if caller.at_least(64):
            policy = data.get("policy")
        else:
            policies = data.get("policies")
            policy = policies[0] if isinstance(policies, list) and len(policies) == 1 else None
        if policy not in SERVER_GROUP_POLICIES:
            raise _error(
                400,
                f"Invalid input for field/attribute policy. Value: {policy}. "
                f"{policy!r} is not one of {list(SERVER_GROUP_POLICIES)}",
            )
        with self.nova._lock():
            usage = self.nova._project_usage(caller.project_id)
            limit = self.nova._project_limits(caller, caller.project_id).get("server_groups", -1)
            if 0 <= limit <= usage["server_groups"]:
                raise _error(403, "Quota exceeded, too many server groups.")
            group_id = str(uuid.uuid4())
            group = {
                "id": group_id,
                "name": data["name"],
                "policy": policy,
                "rules": dict(data.get("rules") or {}),
                "members": [],
                "project_id": caller.project_id,
                "user_id": caller.user_id,
            }
            self.region.server_groups[group_id] = group
        return json_response({"server_group": self.nova.render_server_group(group, caller)})

    async def delete_server_group(self, request: Request, caller: Caller) -> Response:
        group_id = request.path_params["group_id"]
        group = self.region.server_groups.get(group_id)
        if group is None or (not caller.is_admin and group.get("project_id") != caller.project_id):
            raise _error(404, f"Instance group {group_id} could not be found.")
        with self.nova._lock():
            del self.region.server_groups[group_id]
            for server in self.region.servers.values():
                if group_id in (server.get("server_groups") or []):
                    server["server_groups"] = [g for g in server["server_groups"] if g != group_id]
        return empty_response(204)

    # -- server create ----------------------------------------------------------------

    async def create_server(self, request: Request, caller: Caller) -> Response:
        nova = self.nova
        nova._require_write(caller, "os_compute_api:servers:create")
        body = await _body(request)
        data = body.get("server") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise _error(400, "Invalid input for field/attribute server.")
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise _error(400, "Invalid input for field/attribute name.")
        flavor = self._flavor(data.get("flavorRef"))
        bdms = data.get("block_device_mapping_v2") or []
        if not isinstance(bdms, list):
            raise _error(400, "Invalid input for field/attribute block_device_mapping_v2.")
        boot_volume = next(
            (b for b in bdms if isinstance(b, dict) and str(b.get("boot_index", "")) == "0"), None
        )
        image_id = _ref_id(data.get("imageRef"))
        if boot_volume is not None and boot_volume.get("source_type") == "image":
            image_id = str(boot_volume.get("uuid") or image_id)
        if image_id:
            image = self.region.images.get(image_id)
            if image is None or image.get("status") != "active":
                raise _error(400, "Can not find requested image")
        elif boot_volume is None:
            raise _error(400, "Invalid input for field/attribute imageRef.")
        networks = self._networks(data.get("networks"), caller)
        groups = self._security_groups(data.get("security_groups"), caller)
        key_name = data.get("key_name")
        if (
            key_name is not None
            and keypair_key(caller.user_id, str(key_name)) not in self.region.keypairs
        ):
            raise _error(400, "Invalid key_name provided.")
        zone = data.get("availability_zone")
        forced_host: str | None = None
        if isinstance(zone, str) and ":" in zone:
            # "zone:host[:node]": an admin forces the host (the scheduler's filters,
            # are skipped, as in Nova; a disabled compute is still refused)
            if not caller.is_admin:
                raise nova_error(
                    403,
                    "Policy doesn't allow os_compute_api:servers:create:forced_host "
                    "to be performed.",
                )
            zone, _, rest = zone.partition(":")
            forced_host = rest.split(":", 1)[0] or None
            zone = zone or None
        if zone is not None and zone not in self._zones():
            raise _error(400, "The requested availability zone is not available")
        metadata = nova._valid_metadata(data.get("metadata") or {})
        tags = data.get("tags") or []
        if tags and not caller.at_least(52):
            raise _error(400, "Additional properties are not allowed ('tags' was unexpected)")
        if not isinstance(tags, list) or len(tags) > 50:
            raise _error(400, "Invalid input for field/attribute tags.")
        tags = [nova._valid_tag(t) for t in tags]
        # Nova's schema takes both spellings (openstacksdk sends the second)
        hints = body.get("os:scheduler_hints") or body.get("OS-SCH-HNT:scheduler_hints") or {}
        group_id = hints.get("group") if isinstance(hints, dict) else None
        group: Obj | None = None
        if group_id:
            group = self.region.server_groups.get(str(group_id))
            if group is None:
                raise _error(400, f"Invalid input for field/attribute group. Value: {group_id}.")
        with nova._lock():
            self._check_quota(caller, flavor, group)
            server = self._new_server(
                caller, name, flavor, image_id, key_name, zone, metadata, tags, groups
            )
            server_id = server["id"]
            if forced_host is not None:
                server["_forced_host"] = forced_host
            self.region.servers[server_id] = server
            if group is not None:
                group["members"] = [*(group.get("members") or []), server_id]
                server["server_groups"] = [group["id"]]
            self._volumes(server, bdms, boot_volume, caller)
        view = nova._view(request, caller)
        self._later(lambda: self._build(server_id, networks, groups))
        out = {
            "id": server_id,
            "links": nova._links(view, "servers", server_id),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": g["name"]} for g in groups],
            "adminPass": secrets.token_urlsafe(9),
        }
        response = json_response({"server": out}, 202)
        response.headers["Location"] = f"{view.root}/servers/{server_id}"
        return response

    def _later(self, step: Callable[[], None]) -> None:
        delay = self.nova._action_delay()
        if delay <= 0:
            step()
        else:
            asyncio.get_running_loop().call_later(delay, step)

    def _flavor(self, ref: Any) -> Obj:
        flavor_id = _ref_id(ref)
        flavor = self.region.flavors.get(flavor_id)
        if flavor is None:
            raise _error(400, "Invalid flavorRef provided.")
        return flavor

    def _zones(self) -> set[str]:
        return {
            str(s.get("zone") or "nova")
            for s in self.region.compute_services.values()
            if s.get("binary") == "nova-compute"
        }

    def _networks(self, raw: Any, caller: Caller) -> list[tuple[str, Obj | None]]:
        """(network id, existing port or None) per requested NIC."""
        if raw is None:
            if caller.at_least(37):
                raise _error(400, "Invalid input for field/attribute networks.")
            raw = "auto"
        if raw == "none":
            return []
        if raw == "auto":
            own = [
                n for n in self.region.networks.values()
                if n.get("project_id") == caller.project_id and not n.get("router:external")
            ]  # fmt: skip
            if not own:
                raise _error(400, "Unable to automatically allocate a network for project")
            return [(str(own[0]["id"]), None)]
        if not isinstance(raw, list):
            raise _error(400, "Invalid input for field/attribute networks.")
        nics: list[tuple[str, Obj | None]] = []
        for item in raw:
            if not isinstance(item, dict):
                raise _error(400, "Invalid input for field/attribute networks.")
            if item.get("port"):
                port = self.region.ports.get(str(item["port"]))
                if port is None:
                    raise _error(400, f"Port id {item['port']} could not be found.")
                if port.get("device_id"):
                    raise _error(409, f"Port {item['port']} is still in use.")
                nics.append((str(port["network_id"]), port))
                continue
            network_id = str(item.get("uuid") or "")
            network = self.region.networks.get(network_id)
            if network is None or not (
                caller.is_admin
                or network.get("shared")
                or network.get("project_id") == caller.project_id
            ):
                raise _error(400, f"Network {network_id} could not be found.")
            nics.append((network_id, None))
        return nics

    def _security_groups(self, raw: Any, caller: Caller) -> list[Obj]:
        names = [str(g.get("name")) for g in raw or [{"name": "default"}] if isinstance(g, dict)]
        found: list[Obj] = []
        for name in names:
            match = next(
                (
                    g
                    for g in self.region.security_groups.values()
                    if (g.get("name") == name or g.get("id") == name)
                    and g.get("project_id") == caller.project_id
                ),
                None,
            )
            if match is None and name != "default":
                raise _error(400, f"Security group {name} not found.")
            if match is not None:
                found.append(match)
        return found

    def _check_quota(self, caller: Caller, flavor: Obj, group: Obj | None) -> None:
        nova = self.nova
        limits = nova._project_limits(caller, caller.project_id)
        usage = nova._project_usage(caller.project_id)
        wanted = {
            "instances": 1,
            "cores": int(flavor.get("vcpus") or 0),
            "ram": int(flavor.get("ram") or 0),
        }
        for resource, amount in wanted.items():
            limit = limits.get(resource, -1)
            if limit >= 0 and usage[resource] + amount > limit:
                raise _error(
                    403,
                    f"Quota exceeded for {resource}: Requested {amount}, but already used "
                    f"{usage[resource]} of {limit} {resource}",
                )
        if group is not None:
            limit = limits.get("server_group_members", -1)
            members = [m for m in group.get("members") or [] if m in self.region.servers]
            if 0 <= limit <= len(members):
                raise _error(403, "Quota exceeded, too many servers in group")

    def _new_server(
        self,
        caller: Caller,
        name: str,
        flavor: Obj,
        image_id: str,
        key_name: Any,
        zone: Any,
        metadata: dict[str, str],
        tags: list[str],
        groups: list[Obj],
    ) -> Obj:
        server_id = str(uuid.uuid4())
        now = nova_time()
        return {
            "id": server_id,
            "name": name,
            "status": "BUILD",
            "tenant_id": caller.project_id,
            "user_id": caller.user_id,
            "metadata": metadata,
            "hostId": "",
            "image": {"id": image_id} if image_id else "",
            "flavor": {
                "vcpus": flavor.get("vcpus"),
                "ram": flavor.get("ram"),
                "disk": flavor.get("disk"),
                "ephemeral": flavor.get("OS-FLV-EXT-DATA:ephemeral", 0),
                "swap": flavor.get("swap") or 0,
                "original_name": flavor.get("name"),
                "extra_specs": dict(flavor.get("extra_specs") or {}),
            },
            "created": now,
            "updated": now,
            "addresses": {},
            "accessIPv4": "",
            "accessIPv6": "",
            "key_name": key_name,
            "config_drive": "",
            "progress": 0,
            "OS-DCF:diskConfig": "MANUAL",
            "OS-EXT-AZ:availability_zone": zone or "",
            "OS-EXT-SRV-ATTR:host": None,
            "OS-EXT-SRV-ATTR:hypervisor_hostname": None,
            "OS-EXT-SRV-ATTR:instance_name": f"instance-{len(self.region.servers) + 1:08x}",
            "OS-EXT-SRV-ATTR:hostname": name,
            "OS-EXT-SRV-ATTR:reservation_id": f"r-{secrets.token_hex(4)}",
            "OS-EXT-SRV-ATTR:launch_index": 0,
            "OS-EXT-SRV-ATTR:kernel_id": "",
            "OS-EXT-SRV-ATTR:ramdisk_id": "",
            "OS-EXT-SRV-ATTR:root_device_name": None,
            "OS-EXT-SRV-ATTR:user_data": None,
            "OS-EXT-STS:task_state": "scheduling",
            "OS-EXT-STS:vm_state": "building",
            "OS-EXT-STS:power_state": 0,
            "OS-SRV-USG:launched_at": None,
            "OS-SRV-USG:terminated_at": None,
            "os-extended-volumes:volumes_attached": [],
            "security_groups": [{"name": g["name"]} for g in groups],
            "locked": False,
            "locked_reason": None,
            "description": None,
            "tags": tags,
            "trusted_image_certificates": None,
            "host_status": "",
            "server_groups": [],
            "pinned_availability_zone": zone,
            # the zone asked for, kept for the scheduler (not an API field)
            "_requested_zone": zone,
        }

    def _volumes(
        self, server: Obj, bdms: list[Any], boot_volume: Obj | None, caller: Caller
    ) -> None:
        """Volumes of block_device_mapping_v2 with destination_type volume: made from
        the image (boot) or blank (extra), attached to the server."""
        for index, bdm in enumerate(b for b in bdms if isinstance(b, dict)):
            if bdm.get("destination_type") != "volume":
                continue
            if bdm.get("source_type") == "volume":
                volume_id = str(bdm.get("uuid") or "")
                if volume_id not in self.region.volumes:
                    raise _error(400, f"Volume {volume_id} could not be found.")
            else:
                size = int(bdm.get("volume_size") or 0)
                if size <= 0:
                    raise _error(400, "Invalid input for field/attribute volume_size.")
                volume_id = str(uuid.uuid4())
                now = _db_time()
                self.region.volumes[volume_id] = {
                    "id": volume_id,
                    "name": "",
                    "description": None,
                    "status": "in-use",
                    "size": size,
                    "availability_zone": "nova",
                    "created_at": now,
                    "updated_at": now,
                    "attachments": [],
                    "bootable": "true" if bdm is boot_volume else "false",
                    "encrypted": False,
                    "multiattach": False,
                    "metadata": {},
                    "volume_type": None,
                    "volume_type_id": None,
                    "user_id": caller.user_id,
                    "os-vol-tenant-attr:tenant_id": caller.project_id,
                    "os-vol-host-attr:host": None,
                    "os-vol-mig-status-attr:migstat": None,
                    "os-vol-mig-status-attr:name_id": None,
                    "migration_status": None,
                    "replication_status": None,
                    "consistencygroup_id": None,
                    "group_id": None,
                    "snapshot_id": None,
                    "source_volid": None,
                    "provider_id": None,
                    "service_uuid": None,
                    "shared_targets": None,
                    "cluster_name": None,
                    "consumes_quota": True,
                    "encryption_key_id": None,
                }
            volume = self.region.volumes[volume_id]
            volume["status"] = "in-use"
            volume["attachments"] = [
                {
                    "id": volume_id,
                    "attachment_id": str(uuid.uuid4()),
                    "volume_id": volume_id,
                    "server_id": server["id"],
                    "host_name": None,
                    "device": f"/dev/vd{chr(ord('a') + index)}",
                    "attached_at": _db_time(),
                }
            ]
            server["os-extended-volumes:volumes_attached"].append(
                {"id": volume_id, "delete_on_termination": bool(bdm.get("delete_on_termination"))}
            )

    def _build(
        self, server_id: str, networks: list[tuple[str, Obj | None]], groups: list[Obj]
    ) -> None:
        """The scheduler and the compute host: place the server or put it in ERROR."""
        nova = self.nova
        with nova._lock():
            server = self.region.servers.get(server_id)
            if server is None:
                return
            zone = server.pop("_requested_zone", None)
            forced = server.pop("_forced_host", None)
            if forced is None:
                destination = nova._schedule(server, requested_host=None, zone=zone)
            else:
                destination = nova._schedule(
                    server, requested_host=forced, force=True, candidates_from_placement=True
                )
            if destination is None:
                # Placement offering no candidate (a forced host disabled or full) is
                # NoValidHost with no reason; the scheduler's filters give the reason
                message = NO_VALID_HOST if forced is None else "No valid host was found. "
                server["OS-EXT-STS:vm_state"] = "error"
                server["OS-EXT-STS:task_state"] = None
                server["fault"] = {
                    "code": 500,
                    "created": nova_time(),
                    "message": message,
                    "details": "Traceback (most recent call last):\n  ...\n"
                    "nova.exception.NoValidHost: " + message,
                }
                nova._touch(server)
                return
            host = (destination.get("service") or {}).get("host")
            provider = nova._provider_of(destination)
            nova._ensure_usages(provider)
            nova._add_usage(provider, server_resources(server), +1)
            service = nova._compute_service(host)
            zone_name = str((service or {}).get("zone") or "nova")
            server.update(
                {
                    "OS-EXT-SRV-ATTR:host": host,
                    "OS-EXT-SRV-ATTR:hypervisor_hostname": destination.get("hypervisor_hostname"),
                    "OS-EXT-AZ:availability_zone": zone_name,
                    "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                    "hostId": host_id(host, str(server["tenant_id"])),
                    "OS-EXT-STS:vm_state": "active",
                    "OS-EXT-STS:task_state": None,
                    "OS-EXT-STS:power_state": 1,
                    "OS-SRV-USG:launched_at": _db_time(),
                    "host_status": "UP",
                }
            )
            addresses: dict[str, list[Obj]] = {}
            for network_id, port in networks:
                port = port or self._new_port(server, network_id, groups, zone_name)
                port.update(
                    device_id=server_id,
                    device_owner=f"compute:{zone_name}",
                    status="ACTIVE",
                )
                port["binding:host_id"] = host
                port["binding:vif_type"] = "ovs"
                network = self.region.networks.get(network_id) or {}
                ip = (port.get("fixed_ips") or [{}])[0].get("ip_address")
                addresses.setdefault(str(network.get("name") or network_id), []).append(
                    {
                        "addr": ip,
                        "version": 4,
                        "OS-EXT-IPS-MAC:mac_addr": port.get("mac_address"),
                        "OS-EXT-IPS:type": "fixed",
                    }
                )
            server["addresses"] = addresses
            for attachment in server["os-extended-volumes:volumes_attached"]:
                volume = self.region.volumes.get(attachment["id"])
                for item in (volume or {}).get("attachments") or []:
                    item["host_name"] = host
            nova._touch(server)

    def _new_port(self, server: Obj, network_id: str, groups: list[Obj], zone: str) -> Obj:
        subnet = next(
            (s for s in self.region.subnets.values() if s.get("network_id") == network_id), None
        )
        used = {
            ip.get("ip_address")
            for p in self.region.ports.values()
            for ip in p.get("fixed_ips") or []
        }
        fixed_ips: list[Obj] = []
        if subnet is not None:
            cidr = ipaddress.ip_network(str(subnet.get("cidr")), strict=False)
            for address in cidr.hosts():
                text = str(address)
                if text not in used and text != subnet.get("gateway_ip"):
                    fixed_ips.append({"subnet_id": subnet["id"], "ip_address": text})
                    break
        port_id = str(uuid.uuid4())
        value = secrets.randbits(24)
        mac = f"fa:16:3e:{value >> 16:02x}:{(value >> 8) & 0xFF:02x}:{value & 0xFF:02x}"
        now = nova_time()
        port = {
            "id": port_id,
            "name": "",
            "network_id": network_id,
            "tenant_id": server["tenant_id"],
            "project_id": server["tenant_id"],
            "mac_address": mac,
            "admin_state_up": True,
            "status": "DOWN",
            "device_id": server["id"],
            "device_owner": f"compute:{zone}",
            "fixed_ips": fixed_ips,
            "allowed_address_pairs": [],
            "extra_dhcp_opts": [],
            "security_groups": [g["id"] for g in groups],
            "description": "",
            "binding:host_id": "",
            "binding:profile": {},
            "binding:vif_details": {},
            "binding:vif_type": "unbound",
            "binding:vnic_type": "normal",
            "port_security_enabled": True,
            "dns_name": "",
            "dns_assignment": [],
            "qos_policy_id": None,
            "qos_network_policy_id": None,
            "resource_request": None,
            "ip_allocation": "immediate",
            "propagate_uplink_status": False,
            "tags": [],
            "revision_number": 1,
            "created_at": now,
            "updated_at": now,
        }
        self.region.ports[port_id] = port
        return port


async def _body(request: Request) -> Any:
    return await _read_body(request)
