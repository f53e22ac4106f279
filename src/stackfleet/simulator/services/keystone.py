"""Keystone v3 (identity), as far as openstacksdk, keystoneauth and the openstack CLI use it.

Served at ``/identity`` for every region. Tokens are opaque random strings kept in
``CloudState.tokens``; their lifetime is ``Simulator.token_ttl`` seconds. The catalog
follows DevStack: every service of every region with public, internal and admin
endpoints; Cinder's endpoints carry the project id (``.../volume/v3/{project_id}``) and,
as in real Keystone, are left out of catalogs of tokens that are not project-scoped.

Keystone objects are stored without their ``links`` (they depend on the URL the
simulator is served on); routes add them.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from stackfleet.simulator.http import ApiError, empty_response, json_response, read_json

if TYPE_CHECKING:
    from stackfleet.simulator.app import Simulator

Obj = dict[str, Any]

# The version Keystone 2023.1 and later report (keystone/api/discovery.py).
IDENTITY_VERSION = "v3.14"
IDENTITY_UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPE = "application/vnd.openstack.identity-v3+json"

# Stable ids for catalog rows, so clients that cache them see the same cloud each run.
_CATALOG_NAMESPACE = uuid.UUID("5b2f7c8e-3d1a-4c55-9f0e-6a1d2b3c4d5e")

INTERFACES = ("public", "internal", "admin")

# Keystone's default roles imply each other (keystone-manage bootstrap creates them so):
# a token for an admin carries member and reader too.
IMPLIED_ROLES: dict[str, tuple[str, ...]] = {
    "admin": ("member", "reader"),
    "member": ("reader",),
}


class CatalogService:
    """One row of the service catalog: its type, name, and the URL under its region
    root (``Simulator.endpoint_url``) that the catalog advertises."""

    def __init__(self, service_type: str, name: str, root_type: str, suffix: str, desc: str):
        self.type = service_type
        self.name = name
        self.root_type = root_type
        self.suffix = suffix
        self.description = desc
        self.id = uuid.uuid5(_CATALOG_NAMESPACE, f"service:{service_type}").hex

    def url_template(self, sim: Simulator, region: str) -> str:
        """The endpoint URL as Keystone stores it (with ``$(project_id)s`` unexpanded)."""
        return sim.endpoint_url(self.root_type, region) + self.suffix

    def endpoint_id(self, region: str, interface: str) -> str:
        return uuid.uuid5(_CATALOG_NAMESPACE, f"endpoint:{self.type}:{region}:{interface}").hex


# The same services and URL shapes DevStack registers.
CATALOG: tuple[CatalogService, ...] = (
    CatalogService("identity", "keystone", "identity", "", "Keystone Identity Service"),
    CatalogService("compute", "nova", "compute", "/v2.1", "Nova Compute Service"),
    CatalogService("placement", "placement", "placement", "", "Placement Service"),
    CatalogService("network", "neutron", "network", "", "Neutron Service"),
    CatalogService(
        "block-storage", "cinder", "block-storage", "/v3/$(project_id)s", "Cinder Volume Service"
    ),
    CatalogService(
        "volumev3", "cinderv3", "block-storage", "/v3/$(project_id)s", "Cinder Volume Service V3"
    ),
    CatalogService("image", "glance", "image", "", "Glance Image Service"),
    CatalogService("baremetal", "ironic", "baremetal", "", "Ironic baremetal provisioning service"),
    # only when the simulator serves Zun (Simulator.zun); DevStack's URL ends in /v1
    CatalogService("container", "zun", "container", "/v1", "Container Management Service"),
)


def keystone_error(status: int, message: str) -> ApiError:
    """An ApiError with Keystone's error body."""
    titles = {
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden",
        404: "Not Found",
        409: "Conflict",
    }
    body = {"error": {"code": status, "title": titles.get(status, "Error"), "message": message}}
    return ApiError(status, body)


def _unauthorized(sim: Simulator, message: str | None = None) -> ApiError:
    error = keystone_error(401, message or "The request you have made requires authentication.")
    error.headers["WWW-Authenticate"] = f'Keystone uri="{sim.base_url}/identity"'
    return error


def format_time(moment: datetime) -> str:
    """Keystone's timestamp format: microseconds and a literal Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def token_expired(token: Obj, now: datetime | None = None) -> bool:
    """Whether the token body's expires_at has passed."""
    moment = format_time(now or datetime.now(UTC))
    # Same fixed-width format on both sides, so text order is time order.
    return bool(token["expires_at"] <= moment)


def _flag(value: str | None) -> bool:
    """Keystone's boolean query flags (query_filter_is_true): present and not "0" means
    true, so `?include_names`, `?include_names=1` and even `?include_names=false` are
    all true."""
    return value is not None and value != "0"


# Roles each role implies directly (keystone-manage bootstrap's chain), for effective
# role assignments, which list every implied role with a `prior_role` link.
DIRECTLY_IMPLIED: dict[str, tuple[str, ...]] = {"admin": ("member",), "member": ("reader",)}


class Keystone:
    """The routes of the simulated Keystone over `sim.state`."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    # -- helpers -------------------------------------------------------------------------

    @property
    def root(self) -> str:
        return f"{self.sim.base_url}/identity"

    def _link(self, collection: str, obj_id: str) -> dict[str, str]:
        return {"self": f"{self.root}/v3/{collection}/{obj_id}"}

    def _with_links(self, collection: str, obj: Obj) -> Obj:
        return {**obj, "links": self._link(collection, str(obj["id"]))}

    def _collection(self, request: Request, key: str, items: Iterable[Obj]) -> Response:
        body = {
            key: [self._with_links(key, item) for item in items],
            "links": {"self": str(request.url), "previous": None, "next": None},
        }
        return json_response(body)

    def _domain(self, domain_id: str) -> Obj:
        domain = self.sim.state.domains.get(domain_id)
        if domain is None:
            raise keystone_error(404, f"Could not find domain: {domain_id}.")
        return domain

    def _find_domain(self, ref: Any) -> Obj | None:
        if not isinstance(ref, dict):
            return None
        if "id" in ref:
            return self.sim.state.domains.get(str(ref["id"]))
        name = ref.get("name")
        return next((d for d in self.sim.state.domains.values() if d["name"] == name), None)

    def _authenticated(self, request: Request) -> Obj:
        """The caller's token (X-Auth-Token), or a 401 when missing, unknown or expired."""
        token_id = request.headers.get("x-auth-token", "")
        token = self.sim.state.tokens.get(token_id)
        if token is None or token_expired(token):
            raise _unauthorized(self.sim)
        return token

    def _require_admin(self, request: Request, action: str) -> Obj:
        token = self._authenticated(request)
        if not any(role["name"] == "admin" for role in token.get("roles", [])):
            raise keystone_error(
                403, f"You are not authorized to perform the requested action: {action}."
            )
        return token

    @staticmethod
    def _filter(items: Iterable[Obj], request: Request, keys: Iterable[str]) -> list[Obj]:
        """Keystone's exact-match list filters (?name=..&domain_id=..&enabled=..)."""
        result = list(items)
        for key in keys:
            wanted = request.query_params.get(key)
            if wanted is None:
                continue
            if key == "enabled":
                flag = wanted.lower() not in ("0", "false", "no", "off")
                result = [item for item in result if bool(item.get("enabled")) == flag]
            else:
                result = [item for item in result if str(item.get(key)) == wanted]
        return result

    def _role_names(self, user_id: str, target: str) -> list[str]:
        """The roles a user holds on a project (or "system"), implied roles included."""
        names: list[str] = []
        for name in self.sim.state.assignments.get((user_id, target), []):
            for candidate in (name, *IMPLIED_ROLES.get(name, ())):
                if candidate not in names:
                    names.append(candidate)
        return names

    def _role_refs(self, names: list[str]) -> list[Obj]:
        by_name = {role["name"]: role for role in self.sim.state.roles.values()}
        return [{"id": by_name[n]["id"], "name": n} for n in names if n in by_name]

    def _catalog(self, project_id: str | None) -> list[Obj]:
        catalog: list[Obj] = []
        for service in self._served():
            endpoints: list[Obj] = []
            for region in self.sim.state.regions:
                template = service.url_template(self.sim, region)
                if "$(project_id)s" in template:
                    # Keystone silently drops endpoints it cannot fill in.
                    if project_id is None:
                        continue
                    template = template.replace("$(project_id)s", project_id)
                for interface in INTERFACES:
                    endpoints.append(
                        {
                            "id": service.endpoint_id(region, interface),
                            "interface": interface,
                            "region": region,
                            "region_id": region,
                            "url": template,
                        }
                    )
            if endpoints:
                catalog.append(
                    {
                        "id": service.id,
                        "type": service.type,
                        "name": service.name,
                        "endpoints": endpoints,
                    }
                )
        for added in self.sim.state.added_services:
            if not added["enabled"]:
                continue
            endpoints = [
                {key: e[key] for key in ("id", "interface", "region", "region_id", "url")}
                for e in self.sim.state.added_endpoints
                if e["service_id"] == added["id"] and e["enabled"]
            ]
            # Keystone lists a service without endpoints with an empty list
            catalog.append(
                {
                    "id": added["id"],
                    "type": added["type"],
                    "name": added["name"],
                    "endpoints": endpoints,
                }
            )
        return catalog

    # -- version discovery ---------------------------------------------------------------

    def _version(self) -> Obj:
        return {
            "id": IDENTITY_VERSION,
            "status": "stable",
            "updated": IDENTITY_UPDATED,
            "links": [{"rel": "self", "href": f"{self.root}/v3/"}],
            "media-types": [{"base": "application/json", "type": MEDIA_TYPE}],
        }

    async def versions(self, request: Request) -> Response:
        # Keystone answers its root with 300 Multiple Choices and the version list.
        return json_response({"versions": {"values": [self._version()]}}, status=300)

    async def version_v3(self, request: Request) -> Response:
        return json_response({"version": self._version()})

    # -- tokens --------------------------------------------------------------------------

    def _password_user(self, password_method: Any) -> Obj:
        user_ref = password_method.get("user") if isinstance(password_method, dict) else None
        if not isinstance(user_ref, dict) or "password" not in user_ref:
            raise keystone_error(
                400,
                "Expecting to find user in password. The server could not "
                "comply with the request since it is either malformed or "
                "otherwise incorrect. The client is assumed to be in error.",
            )
        users = self.sim.state.users
        user: Obj | None = None
        if "id" in user_ref:
            user = users.get(str(user_ref["id"]))
        elif "name" in user_ref:
            domain = self._find_domain(user_ref.get("domain"))
            if domain is None:
                raise _unauthorized(self.sim)
            user = next(
                (
                    u
                    for u in users.values()
                    if u["name"] == user_ref["name"] and u["domain_id"] == domain["id"]
                ),
                None,
            )
        if (
            user is None
            or not user.get("enabled", True)
            or self.sim.state.passwords.get(user["id"]) != user_ref["password"]
        ):
            raise _unauthorized(self.sim)
        return user

    def _token_user(self, token_method: Any) -> tuple[Obj, list[str]]:
        token_id = token_method.get("id") if isinstance(token_method, dict) else None
        parent = self.sim.state.tokens.get(str(token_id))
        if parent is None or token_expired(parent):
            raise _unauthorized(self.sim)
        user = self.sim.state.users.get(parent["user"]["id"])
        if user is None:
            raise _unauthorized(self.sim)
        return user, list(parent["audit_ids"][:1])

    def _project_scope(self, ref: Any) -> Obj:
        projects = self.sim.state.projects
        project: Obj | None = None
        if isinstance(ref, dict) and "id" in ref:
            project = projects.get(str(ref["id"]))
        elif isinstance(ref, dict) and "name" in ref:
            domain = self._find_domain(ref.get("domain"))
            if domain is None:
                raise _unauthorized(self.sim)
            project = next(
                (
                    p
                    for p in projects.values()
                    if p["name"] == ref["name"] and p["domain_id"] == domain["id"]
                ),
                None,
            )
        else:
            raise keystone_error(400, "Expecting to find id or name in project.")
        if project is None or not project.get("enabled", True):
            raise _unauthorized(self.sim)
        return project

    def _domain_ref(self, domain_id: str) -> Obj:
        domain = self.sim.state.domains.get(domain_id, {"id": domain_id, "name": domain_id})
        return {"id": domain["id"], "name": domain["name"]}

    async def issue_token(self, request: Request) -> Response:
        body = await read_json(request)
        auth = body.get("auth") if isinstance(body, dict) else None
        identity = auth.get("identity") if isinstance(auth, dict) else None
        if not isinstance(auth, dict) or not isinstance(identity, dict):
            raise keystone_error(400, "Expecting to find identity in auth.")
        methods = identity.get("methods")
        if not isinstance(methods, list) or not methods:
            raise keystone_error(400, "Expecting to find methods in identity.")
        audit_chain: list[str] = []
        if "password" in methods:
            user = self._password_user(identity.get("password"))
        elif "token" in methods:
            user, audit_chain = self._token_user(identity.get("token"))
        else:
            raise _unauthorized(self.sim, f"Unsupported authentication method: {methods[0]}")

        now = datetime.now(UTC)
        token: Obj = {
            "methods": [m for m in methods if m in ("password", "token")],
            "user": {
                "id": user["id"],
                "name": user["name"],
                "domain": self._domain_ref(user["domain_id"]),
                "password_expires_at": user.get("password_expires_at"),
            },
            "audit_ids": [secrets.token_urlsafe(16)[:22], *audit_chain],
            "issued_at": format_time(now),
            "expires_at": format_time(now + timedelta(seconds=self.sim.token_ttl)),
        }

        scope = auth.get("scope")
        project_id: str | None = None
        if isinstance(scope, dict) and "project" in scope:
            project = self._project_scope(scope["project"])
            roles = self._role_names(user["id"], project["id"])
            if not roles:
                raise _unauthorized(
                    self.sim, f"User {user['id']} has no access to project {project['id']}"
                )
            project_id = project["id"]
            token["project"] = {
                "id": project["id"],
                "name": project["name"],
                "domain": self._domain_ref(project["domain_id"]),
            }
            token["is_domain"] = bool(project.get("is_domain", False))
            token["roles"] = self._role_refs(roles)
        elif isinstance(scope, dict) and "system" in scope:
            if not isinstance(scope["system"], dict) or scope["system"].get("all") is not True:
                raise keystone_error(400, "Only the system scope 'all' is supported.")
            roles = self._role_names(user["id"], "system")
            if not roles:
                raise _unauthorized(self.sim, f"User {user['id']} has no access to the system")
            token["system"] = {"all": True}
            token["roles"] = self._role_refs(roles)
        elif isinstance(scope, dict) and "domain" in scope:
            raise keystone_error(400, "Domain-scoped tokens are not supported by the simulator.")
        elif scope not in (None, "unscoped"):
            raise keystone_error(400, "Invalid scope in auth request.")

        if project_id is not None or "system" in token:
            token["catalog"] = self._catalog(project_id)
        token_id = "gAAAAAB" + secrets.token_urlsafe(132)
        with self.sim.state.lock:
            self._prune_tokens(now)
            self.sim.state.tokens[token_id] = token
        response_token = dict(token)
        if "nocatalog" in request.query_params:
            response_token.pop("catalog", None)
        return json_response({"token": response_token}, 201, {"X-Subject-Token": token_id})

    def _prune_tokens(self, now: datetime) -> None:
        tokens = self.sim.state.tokens
        if len(tokens) < 10_000:
            return
        for token_id in [t for t, body in tokens.items() if token_expired(body, now)]:
            del tokens[token_id]

    def _subject(self, request: Request) -> tuple[str, Obj]:
        self._authenticated(request)
        subject_id = request.headers.get("x-subject-token")
        if not subject_id:
            raise keystone_error(400, "Expecting to find X-Subject-Token in the request headers.")
        subject = self.sim.state.tokens.get(subject_id)
        if subject is None or token_expired(subject):
            raise keystone_error(404, f"Could not find token: {subject_id}.")
        return subject_id, subject

    async def validate_token(self, request: Request) -> Response:
        subject_id, subject = self._subject(request)
        body = dict(subject)
        if "nocatalog" in request.query_params:
            body.pop("catalog", None)
        headers = {"X-Subject-Token": subject_id}
        if request.method == "HEAD":
            return empty_response(200, headers)
        return json_response({"token": body}, 200, headers)

    async def revoke_token(self, request: Request) -> Response:
        subject_id, _ = self._subject(request)
        with self.sim.state.lock:
            self.sim.state.tokens.pop(subject_id, None)
        return empty_response(204)

    async def auth_catalog(self, request: Request) -> Response:
        token = self._authenticated(request)
        return json_response(
            {"catalog": token.get("catalog", []), "links": {"self": str(request.url)}}
        )

    async def auth_projects(self, request: Request) -> Response:
        token = self._authenticated(request)
        return self._collection(request, "projects", self._user_projects(token["user"]["id"]))

    async def auth_domains(self, request: Request) -> Response:
        token = self._authenticated(request)
        domain_ids = {p["domain_id"] for p in self._user_projects(token["user"]["id"])}
        domains = [d for d in self.sim.state.domains.values() if d["id"] in domain_ids]
        return self._collection(request, "domains", domains)

    async def auth_system(self, request: Request) -> Response:
        token = self._authenticated(request)
        has_system = bool(self._role_names(token["user"]["id"], "system"))
        return json_response(
            {"system": [{"all": True}] if has_system else [], "links": {"self": str(request.url)}}
        )

    def _user_projects(self, user_id: str) -> list[Obj]:
        return [
            p
            for p in self.sim.state.projects.values()
            if self.sim.state.assignments.get((user_id, p["id"]))
        ]

    # -- identity resources --------------------------------------------------------------

    async def list_projects(self, request: Request) -> Response:
        self._require_admin(request, "identity:list_projects")
        projects = self._filter(
            self.sim.state.projects.values(),
            request,
            ("name", "domain_id", "enabled", "parent_id", "is_domain"),
        )
        return self._collection(request, "projects", projects)

    async def get_project(self, request: Request) -> Response:
        token = self._authenticated(request)
        project_id = request.path_params["project_id"]
        project = self.sim.state.projects.get(project_id)
        if project is None:
            raise keystone_error(404, f"Could not find project: {project_id}.")
        is_admin = any(role["name"] == "admin" for role in token.get("roles", []))
        if not is_admin and token.get("project", {}).get("id") != project_id:
            raise keystone_error(
                403, "You are not authorized to perform the requested action: identity:get_project."
            )
        return json_response({"project": self._with_links("projects", project)})

    async def delete_project(self, request: Request) -> Response:
        """DELETE /v3/projects/{id}: admin only; 204. Keystone deletes the project and
        its role assignments, and nothing of what other services hold for it."""
        self._require_admin(request, "identity:delete_project")
        project_id = request.path_params["project_id"]
        with self.sim.state.lock:
            if self.sim.state.projects.pop(project_id, None) is None:
                raise keystone_error(404, f"Could not find project: {project_id}.")
            for key in [k for k in self.sim.state.assignments if k[1] == project_id]:
                del self.sim.state.assignments[key]
        return Response(status_code=204)

    async def list_users(self, request: Request) -> Response:
        self._require_admin(request, "identity:list_users")
        # Keystone's SQL backend answers in id order
        users = self._filter(
            sorted(self.sim.state.users.values(), key=lambda user: str(user["id"])),
            request,
            ("name", "domain_id", "enabled"),
        )
        return self._collection(request, "users", users)

    async def get_user(self, request: Request) -> Response:
        token = self._authenticated(request)
        user_id = request.path_params["user_id"]
        user = self.sim.state.users.get(user_id)
        if user is None:
            raise keystone_error(404, f"Could not find user: {user_id}.")
        is_admin = any(role["name"] == "admin" for role in token.get("roles", []))
        if not is_admin and token["user"]["id"] != user_id:
            raise keystone_error(
                403, "You are not authorized to perform the requested action: identity:get_user."
            )
        return json_response({"user": self._with_links("users", user)})

    async def user_projects(self, request: Request) -> Response:
        token = self._authenticated(request)
        user_id = request.path_params["user_id"]
        is_admin = any(role["name"] == "admin" for role in token.get("roles", []))
        if not is_admin and token["user"]["id"] != user_id:
            raise keystone_error(
                403,
                "You are not authorized to perform the requested action: "
                "identity:list_user_projects.",
            )
        if user_id not in self.sim.state.users:
            raise keystone_error(404, f"Could not find user: {user_id}.")
        return self._collection(request, "projects", self._user_projects(user_id))

    async def list_roles(self, request: Request) -> Response:
        self._authenticated(request)
        roles = self._filter(self.sim.state.roles.values(), request, ("name", "domain_id"))
        return self._collection(request, "roles", roles)

    async def get_role(self, request: Request) -> Response:
        self._authenticated(request)
        role_id = request.path_params["role_id"]
        role = self.sim.state.roles.get(role_id)
        if role is None:
            raise keystone_error(404, f"Could not find role: {role_id}.")
        return json_response({"role": self._with_links("roles", role)})

    async def list_domains(self, request: Request) -> Response:
        self._require_admin(request, "identity:list_domains")
        domains = self._filter(self.sim.state.domains.values(), request, ("name", "enabled"))
        return self._collection(request, "domains", domains)

    async def get_domain(self, request: Request) -> Response:
        self._authenticated(request)
        domain = self._domain(request.path_params["domain_id"])
        return json_response({"domain": self._with_links("domains", domain)})

    def _assignment_names(self, user_id: str, target: str, include_names: bool) -> tuple[Obj, Obj]:
        """The `user` and `scope` objects of a role assignment."""
        state = self.sim.state
        user_ref: Obj = {"id": user_id}
        if include_names:
            # Keystone answers empty names for a user its backend no longer has
            user = state.users.get(user_id)
            user_ref["name"] = user["name"] if user else ""
            user_ref["domain"] = self._domain_ref(user["domain_id"]) if user else {}
        if target == "system":
            return user_ref, {"system": {"all": True}}
        project_ref: Obj = {"id": target}
        if include_names:
            project = state.projects.get(target, {"name": target, "domain_id": "default"})
            project_ref["name"] = project.get("name")
            project_ref["domain"] = self._domain_ref(project.get("domain_id", "default"))
        return user_ref, {"project": project_ref}

    async def list_role_assignments(self, request: Request) -> Response:
        """GET /v3/role_assignments as Keystone's assignment API answers it
        (keystone/api/role_assignments.py): direct grants on projects first, then system
        grants, each in the order of Keystone's grant tables (actor, target, role); with
        `effective`, every implied role too (with its `prior_role` link) and no system
        grants. The simulator has no groups, domain grants or inherited grants, so
        filters asking for those find nothing."""
        self._require_admin(request, "identity:list_role_assignments")
        state = self.sim.state
        params = request.query_params
        for first, second, message in (
            ("scope.domain.id", "scope.project.id", "Specify a domain or project, not both"),
            ("scope.domain.id", "scope.system", "Specify system or domain, not both"),
            ("scope.project.id", "scope.system", "Specify system or project, not both"),
            ("user.id", "group.id", "Specify a user or group, not both"),
        ):
            if params.get(first) and params.get(second):
                raise keystone_error(400, message)
        include_names = _flag(params.get("include_names"))
        effective = _flag(params.get("effective"))
        if effective and params.get("group.id"):
            raise keystone_error(
                400, "Combining effective and group filter will always result in an empty list."
            )
        inherited_key = "scope.OS-INHERIT:inherited_to"
        inherited = params[inherited_key] == "projects" if inherited_key in params else None
        system = params.get("scope.system") == "all"
        user_filter, role_filter = params.get("user.id"), params.get("role.id")
        project_filter = params.get("scope.project.id")
        roles_by_name = {role["name"]: role for role in state.roles.values()}

        grants: list[tuple[str, str, Obj]] = []  # (user id, target, role)
        for (user_id, target), role_names in state.assignments.items():
            if user_filter not in (None, user_id):
                continue
            grants.extend(
                (user_id, target, roles_by_name[name])
                for name in role_names
                if name in roles_by_name
            )
        grants.sort(key=lambda grant: (grant[0], grant[1], grant[2]["id"]))
        on_projects = [
            g
            for g in grants
            if g[1] != "system"
            and not system
            and not params.get("scope.domain.id")
            and not params.get("group.id")
            and not inherited
            and project_filter in (None, g[1])
        ]
        on_system = [
            g
            for g in grants
            if g[1] == "system"
            and not effective
            and (system or not (project_filter or params.get("scope.domain.id")))
            and not params.get("group.id")
        ]

        result: list[Obj] = []

        def add(user_id: str, target: str, role: Obj, prior: Obj | None = None) -> None:
            if role_filter not in (None, role["id"]):
                return
            user_ref, scope = self._assignment_names(user_id, target, include_names)
            role_ref: Obj = {"id": role["id"]}
            if include_names:
                role_ref["name"] = role["name"]
            where = "system" if target == "system" else f"projects/{target}"
            granted = prior or role
            links = {"assignment": f"{self.root}/v3/{where}/users/{user_id}/roles/{granted['id']}"}
            if prior is not None:
                links["prior_role"] = (
                    f"{self.root}/v3/prior_role/{role['id']}/implies/{prior['id']}"
                )
            result.append({"links": links, "scope": scope, "user": user_ref, "role": role_ref})

        for user_id, target, role in [*on_projects, *on_system]:
            add(user_id, target, role)
        if effective:
            for user_id, target, role in on_projects:
                for name in DIRECTLY_IMPLIED.get(role["name"], ()):
                    prior, implied = role, roles_by_name.get(name)
                    while implied is not None:
                        add(user_id, target, implied, prior)
                        prior = implied
                        following = DIRECTLY_IMPLIED.get(implied["name"], ())
                        implied = roles_by_name.get(following[0]) if following else None
        return json_response(
            {
                "role_assignments": result,
                "links": {"self": str(request.url), "previous": None, "next": None},
            }
        )

    # -- catalog resources ---------------------------------------------------------------

    def _services(self) -> list[Obj]:
        return [
            {
                "id": s.id,
                "type": s.type,
                "name": s.name,
                "description": s.description,
                "enabled": True,
            }
            for s in self._served()
        ] + [dict(s) for s in self.sim.state.added_services]

    def _served(self) -> list[CatalogService]:
        """The catalog's services this simulator serves."""
        return [s for s in CATALOG if self.sim.serves(s.type)]

    def _endpoints(self) -> list[Obj]:
        endpoints: list[Obj] = []
        for service in self._served():
            for region in self.sim.state.regions:
                for interface in INTERFACES:
                    endpoints.append(
                        {
                            "id": service.endpoint_id(region, interface),
                            "interface": interface,
                            "region": region,
                            "region_id": region,
                            "service_id": service.id,
                            "url": service.url_template(self.sim, region),
                            "enabled": True,
                        }
                    )
        return endpoints + [dict(e) for e in self.sim.state.added_endpoints]

    async def _entity(self, request: Request, key: str) -> Obj:
        """The `{key: {...}}` body of a create request (400 as Keystone otherwise)."""
        body = await read_json(request)
        entity = body.get(key) if isinstance(body, dict) else None
        if not isinstance(entity, dict):
            raise keystone_error(400, f"'{key}' is a required property")
        return entity

    async def create_service(self, request: Request) -> Response:
        """POST /v3/services: register a service (type required), as `openstack service
        create` does; it joins the catalog of tokens issued afterwards."""
        self._require_admin(request, "identity:create_service")
        given = await self._entity(request, "service")
        if not isinstance(given.get("type"), str) or not given["type"]:
            raise keystone_error(400, "'type' is a required property")
        service = {
            "id": uuid.uuid4().hex,
            "type": given["type"],
            "name": given.get("name") or "",
            "description": given.get("description") or "",
            "enabled": bool(given.get("enabled", True)),
        }
        with self.sim.state.lock:
            self.sim.state.added_services.append(service)
        return json_response({"service": self._with_links("services", service)}, status=201)

    async def create_endpoint(self, request: Request) -> Response:
        """POST /v3/endpoints: an endpoint of a service (service_id, interface, url;
        region_id or the older region), as `openstack endpoint create` does."""
        self._require_admin(request, "identity:create_endpoint")
        given = await self._entity(request, "endpoint")
        for required in ("service_id", "interface", "url"):
            if not isinstance(given.get(required), str) or not given[required]:
                raise keystone_error(400, f"'{required}' is a required property")
        if given["interface"] not in INTERFACES:
            raise keystone_error(400, f"'{given['interface']}' is not one of {list(INTERFACES)}")
        if not any(s["id"] == given["service_id"] for s in self._services()):
            raise keystone_error(400, f"Could not find service: {given['service_id']}.")
        region = given.get("region_id") or given.get("region")
        if region is not None and region not in self.sim.state.regions:
            raise keystone_error(400, f"Could not find region: {region}.")
        endpoint = {
            "id": uuid.uuid4().hex,
            "interface": given["interface"],
            "region": region,
            "region_id": region,
            "service_id": given["service_id"],
            "url": given["url"],
            "enabled": bool(given.get("enabled", True)),
        }
        with self.sim.state.lock:
            self.sim.state.added_endpoints.append(endpoint)
        return json_response({"endpoint": self._with_links("endpoints", endpoint)}, status=201)

    async def list_services(self, request: Request) -> Response:
        self._require_admin(request, "identity:list_services")
        services = self._filter(self._services(), request, ("type", "name"))
        return self._collection(request, "services", services)

    async def list_endpoints(self, request: Request) -> Response:
        self._require_admin(request, "identity:list_endpoints")
        endpoints = self._filter(
            self._endpoints(), request, ("interface", "service_id", "region_id")
        )
        return self._collection(request, "endpoints", endpoints)

    async def get_service(self, request: Request) -> Response:
        self._require_admin(request, "identity:get_service")
        return json_response(
            {"service": self._one("services", self._services(), request.path_params["service_id"])}
        )

    async def get_endpoint(self, request: Request) -> Response:
        self._require_admin(request, "identity:get_endpoint")
        endpoints = self._endpoints()
        return json_response(
            {"endpoint": self._one("endpoints", endpoints, request.path_params["endpoint_id"])}
        )

    async def get_region(self, request: Request) -> Response:
        self._authenticated(request)
        region_id = request.path_params["region_id"]
        if region_id not in self.sim.state.regions:
            raise keystone_error(404, f"Could not find region: {region_id}.")
        region = {"id": region_id, "description": "", "parent_region_id": None}
        return json_response({"region": self._with_links("regions", region)})

    def _one(self, collection: str, items: list[Obj], item_id: str) -> Obj:
        for item in items:
            if item["id"] == item_id:
                return self._with_links(collection, item)
        raise keystone_error(404, f"Could not find {collection[:-1]}: {item_id}.")

    async def list_regions(self, request: Request) -> Response:
        self._authenticated(request)
        regions = [
            {"id": name, "description": "", "parent_region_id": None}
            for name in self.sim.state.regions
        ]
        return self._collection(request, "regions", regions)

    def routes(self) -> list[Route]:
        return [
            Route("/", self.versions, methods=["GET"]),
            Route("/v3", self.version_v3, methods=["GET"]),
            Route("/v3/", self.version_v3, methods=["GET"]),
            Route("/v3/auth/tokens", self.issue_token, methods=["POST"]),
            Route("/v3/auth/tokens", self.validate_token, methods=["GET", "HEAD"]),
            Route("/v3/auth/tokens", self.revoke_token, methods=["DELETE"]),
            Route("/v3/auth/catalog", self.auth_catalog, methods=["GET"]),
            Route("/v3/auth/projects", self.auth_projects, methods=["GET"]),
            Route("/v3/auth/domains", self.auth_domains, methods=["GET"]),
            Route("/v3/auth/system", self.auth_system, methods=["GET"]),
            Route("/v3/projects", self.list_projects, methods=["GET"]),
            Route("/v3/projects/{project_id}", self.get_project, methods=["GET"]),
            Route("/v3/projects/{project_id}", self.delete_project, methods=["DELETE"]),
            Route("/v3/users", self.list_users, methods=["GET"]),
            Route("/v3/users/{user_id}", self.get_user, methods=["GET"]),
            Route("/v3/users/{user_id}/projects", self.user_projects, methods=["GET"]),
            Route("/v3/roles", self.list_roles, methods=["GET"]),
            Route("/v3/roles/{role_id}", self.get_role, methods=["GET"]),
            Route("/v3/domains", self.list_domains, methods=["GET"]),
            Route("/v3/domains/{domain_id}", self.get_domain, methods=["GET"]),
            Route("/v3/role_assignments", self.list_role_assignments, methods=["GET"]),
            Route("/v3/services", self.list_services, methods=["GET"]),
            Route("/v3/services", self.create_service, methods=["POST"]),
            Route("/v3/endpoints", self.list_endpoints, methods=["GET"]),
            Route("/v3/endpoints", self.create_endpoint, methods=["POST"]),
            Route("/v3/services/{service_id}", self.get_service, methods=["GET"]),
            Route("/v3/endpoints/{endpoint_id}", self.get_endpoint, methods=["GET"]),
            Route("/v3/regions", self.list_regions, methods=["GET"]),
            Route("/v3/regions/{region_id}", self.get_region, methods=["GET"]),
        ]


def build(sim: Simulator) -> Router:
    """The Keystone v3 router of `sim`, mounted at ``/identity``."""
    return Router(routes=Keystone(sim).routes())
