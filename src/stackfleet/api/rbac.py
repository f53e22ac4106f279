"""Who may call which route: the one policy table of the API (docs/security.md).

Every route of the API — method and OpenAPI path template — has one rule in `RULES`;
the authentication middleware (api/auth.py) applies it, and
tests/unit/test_rbac_table.py fails when a route of `app.openapi()["paths"]` has none.

Callers, from a valid token (Keystone's, or the local operator token):

* **operator** — the `admin` role (project- or system-scoped; Keystone's admin is
  cloud-wide) or the configured operator role (`--operator-role`, default
  `fleet-operator`), or the local operator token: everything.
* **system reader** — a system-scoped token (`system: all`) with `reader` or `member`:
  every read, fleet-wide; no writes.
* **project member** — a project-scoped token with `member`: its project's reads and
  extending its project's leases.
* **project reader** — a project-scoped token with `reader`: its project's reads.
* anyone else with a valid token (no known role): only what is public.

Rules:

* `public` — no token needed, ever (probes, the API's docs).
* `metrics` — `/metrics` (Prometheus scrapes: fleet-wide gauges): operators and system
  readers, or the scrape token (`serve --metrics-token-file`, the file Prometheus
  sends with `authorization.credentials_file`); anonymous only with `--metrics-public`
  (whatever `--auth-read` says).
* `authenticated` — any caller with a role above (nothing project- or fleet-specific).
* `project` — operators and system readers see everything; project readers and
  members see their own project's part only (the handler filters with `scope()`: lists
  narrowed, another project's object is 404, as Nova answers for another project's
  server).
* `fleet` — fleet-wide data (hypervisors, services, agents, capacity, databases,
  queues, hardware, jobs, the cluster, passes): operators and system readers only; a
  project-scoped token gets 403, as Nova refuses a project member its hypervisors.
* `member` — a write a project member may make for its own project (the route checks
  the project), and operators.
* `operator` — every other write: operators only.

Reads without a token: with reads `open` (the default) an anonymous read is allowed and
unfiltered, as before; a read that carries a token is checked and filtered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from fastapi import Request

from stackfleet.model import KINDS

if TYPE_CHECKING:
    from stackfleet.api.auth import Identity


class Rule(StrEnum):
    PUBLIC = "public"
    METRICS = "metrics"
    AUTHENTICATED = "authenticated"
    PROJECT = "project"
    FLEET = "fleet"
    MEMBER = "member"
    OPERATOR = "operator"


class Role(StrEnum):
    """The callers the policy table distinguishes (docs/security.md's columns)."""

    OPERATOR = "operator"
    SYSTEM_READER = "system-reader"
    PROJECT_MEMBER = "project-member"
    PROJECT_READER = "project-reader"
    NONE = "no-role"


class Decision(StrEnum):
    ALLOW = "allowed"
    FILTER = "filtered"
    DENY = "denied"


# (method, OpenAPI path template) -> rule. Keep it in the order of the API's routes.
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/healthz"): Rule.PUBLIC,
    ("GET", "/metrics"): Rule.METRICS,
    ("GET", "/docs"): Rule.PUBLIC,
    ("GET", "/docs/oauth2-redirect"): Rule.PUBLIC,
    ("GET", "/openapi.json"): Rule.PUBLIC,
    ("GET", "/redoc"): Rule.PUBLIC,
    # the dashboard's shell and assets hold no data: its scripts read the API with the
    # visitor's token, each read and write under its own rule
    ("GET", "/"): Rule.PUBLIC,
    ("GET", "/ui"): Rule.PUBLIC,
    ("GET", "/ui/{path}"): Rule.PUBLIC,
    ("GET", "/v1/whoami"): Rule.AUTHENTICATED,
    ("GET", "/v1/overview"): Rule.FLEET,
    ("GET", "/v1/kinds"): Rule.AUTHENTICATED,
    ("POST", "/v1/policies/validate"): Rule.AUTHENTICATED,
    # the inventory: a project's own resources; fleet kinds (hypervisors...) need scope
    ("GET", "/v1/resources"): Rule.PROJECT,
    ("GET", "/v1/resources/{kind}/{resource_id}"): Rule.PROJECT,
    ("GET", "/v1/summary"): Rule.FLEET,
    ("GET", "/v1/passes"): Rule.FLEET,
    ("GET", "/v1/databases"): Rule.FLEET,
    ("GET", "/v1/queues"): Rule.FLEET,
    # policies, audit, actions, leases
    ("GET", "/v1/findings"): Rule.PROJECT,
    ("GET", "/v1/findings/{finding_id}"): Rule.PROJECT,
    ("GET", "/v1/audit"): Rule.PROJECT,
    ("GET", "/v1/audit/verify"): Rule.FLEET,
    ("GET", "/v1/audit/{seq}"): Rule.PROJECT,
    ("GET", "/v1/actions"): Rule.PROJECT,
    ("POST", "/v1/actions/{action_id}/approve"): Rule.OPERATOR,
    ("POST", "/v1/actions/{action_id}/reject"): Rule.OPERATOR,
    ("GET", "/v1/leases"): Rule.PROJECT,
    ("POST", "/v1/leases/{resource}/extend"): Rule.MEMBER,
    # alerts and silences
    ("GET", "/v1/alerts"): Rule.PROJECT,
    # an incident joins alerts of every project on a host: fleet-wide readers only
    ("GET", "/v1/incidents"): Rule.FLEET,
    ("POST", "/v1/alerts"): Rule.OPERATOR,
    ("POST", "/v1/alerts/webhook"): Rule.OPERATOR,
    ("POST", "/v1/alerts/{alert_id}/ack"): Rule.OPERATOR,
    ("POST", "/v1/alerts/{alert_id}/resolve"): Rule.OPERATOR,
    ("GET", "/v1/silences"): Rule.FLEET,
    ("POST", "/v1/silences"): Rule.OPERATOR,
    ("DELETE", "/v1/silences/{silence_id}"): Rule.OPERATOR,
    # reports run over the whole fleet
    ("GET", "/v1/reports/waste"): Rule.FLEET,
    ("GET", "/v1/reports/compliance"): Rule.FLEET,
    ("GET", "/v1/events"): Rule.FLEET,
    ("POST", "/v1/events"): Rule.OPERATOR,
    ("GET", "/v1/hardware"): Rule.FLEET,
    ("GET", "/v1/hardware/{host}"): Rule.FLEET,
    ("GET", "/v1/nodes/{host}"): Rule.FLEET,
    ("GET", "/v1/nodes/{host}/series"): Rule.FLEET,
    ("GET", "/v1/capacity"): Rule.FLEET,
    ("GET", "/v1/capacity/flavors"): Rule.FLEET,
    ("GET", "/v1/capacity/quotas"): Rule.FLEET,
    ("GET", "/v1/capacity/ips"): Rule.FLEET,
    ("GET", "/v1/capacity/network"): Rule.FLEET,
    ("GET", "/v1/capacity/storage"): Rule.FLEET,
    ("GET", "/v1/usage/servers/{server}"): Rule.PROJECT,
    ("GET", "/v1/usage/hypervisors/{hypervisor}"): Rule.FLEET,
    # fleet health: hosts, services and recoveries are fleet-wide; a project sees its
    # own instances and the workloads made of them
    ("GET", "/v1/health/hosts"): Rule.FLEET,
    ("GET", "/v1/health/services"): Rule.FLEET,
    ("GET", "/v1/health/instances"): Rule.PROJECT,
    ("GET", "/v1/health/workloads"): Rule.PROJECT,
    ("GET", "/v1/recoveries"): Rule.FLEET,
    ("GET", "/v1/recoveries/{recovery_id}"): Rule.FLEET,
    ("GET", "/v1/sla"): Rule.PROJECT,
    ("GET", "/v1/sla/services"): Rule.FLEET,
    ("GET", "/v1/jobs"): Rule.FLEET,
    ("GET", "/v1/cluster"): Rule.FLEET,
    # workloads: the inventory's (a project's own); plan and apply act with the
    # server's cloud credentials: operators only
    ("GET", "/v1/workloads"): Rule.PROJECT,
    ("GET", "/v1/workloads/{name}"): Rule.PROJECT,
    ("POST", "/v1/workloads/plan"): Rule.OPERATOR,
    ("POST", "/v1/workloads/apply"): Rule.OPERATOR,
    # patching campaigns: hosts across the fleet; pause, resume, abort, batch approval
    # and rollback are operators'
    ("GET", "/v1/campaigns"): Rule.FLEET,
    ("GET", "/v1/campaigns/{name}"): Rule.FLEET,
    ("POST", "/v1/campaigns/{name}/pause"): Rule.OPERATOR,
    ("POST", "/v1/campaigns/{name}/resume"): Rule.OPERATOR,
    ("POST", "/v1/campaigns/{name}/abort"): Rule.OPERATOR,
    ("POST", "/v1/campaigns/{name}/approve"): Rule.OPERATOR,
    ("POST", "/v1/campaigns/{name}/rollback"): Rule.OPERATOR,
}

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_OPERATOR_ROLE = "fleet-operator"
# kinds a project owns (a project_id in the inventory); the others are fleet-wide
PROJECT_KINDS = frozenset(
    name
    for name, spec in KINDS.items()
    if spec.project_api is not None and name not in ("baremetal_node",)
)

# kinds of which every project may read some resources it does not own (shared and
# external networks, subnets of shared networks, public and community images, public
# flavors: Kind.shared_when / shared_through)
SHARED_KINDS = frozenset(
    name for name, spec in KINDS.items() if spec.shared_when or spec.shared_through
)
# what a project-scoped caller may list: its own kinds and the shared ones
VISIBLE_KINDS = PROJECT_KINDS | SHARED_KINDS

# what a project-scoped caller sees among a resource's relations: those kinds
RELATED_KINDS = VISIBLE_KINDS


def hidden_fields(kind: str) -> frozenset[str]:
    """The fields of `kind` a project-scoped caller never sees (the owning service
    shows them to administrators only: a server's host and hypervisor, a port's
    binding, a network's provider attributes, a volume's back-end host...)."""
    spec = KINDS.get(kind)
    return spec.admin_only_fields if spec is not None else frozenset()


def without_hidden(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    """`record` without the fields a project-scoped caller may not see."""
    hidden = hidden_fields(kind)
    return {k: v for k, v in record.items() if k not in hidden} if hidden else record


def without_hidden_deep(kind: str | None, value: Any) -> Any:
    """`value` (a finding's details, an action's plan and result, an audit entry: the
    live records they quote) without the fields of `kind` a project-scoped caller may
    not see, at any depth."""
    hidden = hidden_fields(kind or "")
    if not hidden:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items() if k not in hidden}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)


def kind_of_target(target: str | None) -> str | None:
    """The kind in an audit target `cloud/region/kind/id`."""
    parts = (target or "").split("/")
    return parts[2] if len(parts) >= 4 else None


def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    # {resource_id} is declared {resource_id:path}: it may hold slashes; {path} (the
    # dashboard's pages and assets) is any rest of the path, the empty one too
    slashed = {"{resource_id}": ".+", "{path}": ".*"}
    regex = "".join(slashed.get(p, "[^/]+") if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{regex}$")


@dataclass(frozen=True)
class _Entry:
    method: str
    template: str
    pattern: re.Pattern[str]
    rule: Rule


# literal templates before templated ones: /v1/audit/verify is not /v1/audit/{seq}
_ENTRIES = sorted(
    (_Entry(m, t, _compile(t), r) for (m, t), r in RULES.items()),
    key=lambda e: ("{" in e.template, e.template),
)


def rule_for(method: str, path: str) -> Rule:
    """The rule of a request. HEAD and OPTIONS follow GET. A path with no rule (not a
    route: it will be 404) is `authenticated` for reads and `operator` for writes."""
    lookup = "GET" if method in READ_METHODS else method
    for entry in _ENTRIES:
        if entry.method == lookup and entry.pattern.match(path):
            return entry.rule
    return Rule.AUTHENTICATED if method in READ_METHODS else Rule.OPERATOR


def role_of(identity: Identity, operator_role: str = DEFAULT_OPERATOR_ROLE) -> Role:
    """Which column of the policy table a caller falls in."""
    roles = identity.roles
    if "admin" in roles or operator_role.lower() in roles:
        return Role.OPERATOR
    if identity.system and roles & {"reader", "member"}:
        return Role.SYSTEM_READER
    if identity.project_id is not None and "member" in roles:
        return Role.PROJECT_MEMBER
    if identity.project_id is not None and "reader" in roles:
        return Role.PROJECT_READER
    return Role.NONE


def decide(rule: Rule, role: Role) -> Decision:
    """The policy table: what a caller of `role` gets from a route under `rule`."""
    if rule is Rule.PUBLIC or role is Role.OPERATOR:
        return Decision.ALLOW
    if role is Role.NONE:
        return Decision.DENY
    if rule is Rule.AUTHENTICATED:
        return Decision.ALLOW
    if rule is Rule.PROJECT:
        return Decision.ALLOW if role is Role.SYSTEM_READER else Decision.FILTER
    if rule in (Rule.FLEET, Rule.METRICS):
        return Decision.ALLOW if role is Role.SYSTEM_READER else Decision.DENY
    if rule is Rule.MEMBER:
        return Decision.FILTER if role is Role.PROJECT_MEMBER else Decision.DENY
    return Decision.DENY


def denial(rule: Rule, role: Role) -> str:
    """Why a request was refused, for the 403's message."""
    if role is Role.NONE:
        return "the token has none of the roles reader, member or admin"
    if rule is Rule.FLEET:
        return "fleet-wide data needs a system-scoped token (system reader) or the operator role"
    if rule is Rule.METRICS:
        return (
            "the metrics need a system-scoped token (system reader), the operator role or "
            "the scrape token (--metrics-token-file)"
        )
    return "it needs the admin role or the operator role"


def scope(request: Request) -> str | None:
    """The project a read of `request` is narrowed to: the caller's project when its
    token is project-scoped without operator rights, else None (everything)."""
    project: str | None = getattr(request.state, "project_scope", None)
    return project


def policy_table(paths: list[tuple[str, str]] | None = None) -> str:
    """The policy table as Markdown (route × caller: allowed, filtered or denied), the
    table of docs/security.md; `paths`: the (method, template) rows, default RULES's."""
    columns = [Role.OPERATOR, Role.SYSTEM_READER, Role.PROJECT_MEMBER, Role.PROJECT_READER]
    lines = [
        "| Route | Rule | " + " | ".join(c.value for c in columns) + " | anonymous |",
        "|---|---|" + "---|" * (len(columns) + 1),
    ]
    for method, template in paths or list(RULES):
        rule = RULES[(method, template)]
        cells = [decide(rule, c).value for c in columns]
        if rule is Rule.PUBLIC:
            anonymous = "allowed"
        elif rule is Rule.METRICS:
            anonymous = "401; scrape token or --metrics-public"
        elif method in READ_METHODS:
            anonymous = "allowed if reads open"
        else:
            anonymous = "401"
        lines.append(
            f"| `{method} {template}` | {rule.value} | " + " | ".join(cells) + f" | {anonymous} |"
        )
    return "\n".join(lines) + "\n"
