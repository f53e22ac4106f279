"""What the API's authentication and RBAC tests put in the store and ask Keystone for:
inventory recorded by one pass, leases, the policy whose actions wait for approval, and
users and tokens of the simulator's Keystone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import leases
from stackfleet.store.db import Store

# the cloud and region the recorded inventory is in
CLOUD, REGION = "c", "r"
PASSWORD = "password"

# servers in ERROR: a finding each, and a notice waiting for approval
APPROVAL_POLICY = """policies:
  - name: errors
    resource: server
    filters: [{status: ERROR}]
    actions: [{type: notify, to: [ops@example.org]}]
    safety: {require_approval: true}
"""


def record(store: Store, complete: bool = True, **kinds: list[dict[str, Any]]) -> None:
    """One pass of cloud c, region r that listed `kinds` (kind -> records): complete,
    or partial with every listing incomplete."""
    pass_id = store.begin_pass(CLOUD, REGION)
    for kind, records in kinds.items():
        store.record_kind(pass_id, CLOUD, REGION, kind, records, complete)
    store.finish_pass(pass_id, "complete" if complete else "partial", None, 0)


def lease(store: Store, resource_id: str, project_id: str) -> None:
    """A marked lease of server `resource_id` (name vm-ID) in `project_id`: next step in
    7 days, 10 days of extension allowed."""
    now = datetime.now(UTC)
    leases.create(
        store,
        policy="waste",
        cloud=CLOUD,
        region=REGION,
        kind="server",
        resource_id=resource_id,
        resource_name=f"vm-{resource_id}",
        project_id=project_id,
        stage="marked",
        started_at=now,
        next_at=now + timedelta(days=7),
        updated_at=now,
        extended_seconds=0.0,
        max_extension_seconds=10 * 86400.0,
        reminded=[],
        history=[],
    )


def add_user(server: SimulatorServer, name: str, target: str, role: str) -> None:
    """A user of the simulated Keystone with `role` on `target` (a project id, or
    "system"), creating the role if Keystone does not have it yet."""
    state = server.state
    if not any(r["name"] == role for r in state.roles.values()):
        state.roles[f"role-{role}"] = {
            "id": f"role-{role}",
            "name": role,
            "domain_id": None,
            "description": None,
            "options": {},
        }
    user_id = f"user-{name}"
    state.users[user_id] = {
        "id": user_id,
        "name": name,
        "domain_id": "default",
        "enabled": True,
        "password_expires_at": None,
        "options": {},
    }
    state.passwords[user_id] = PASSWORD
    state.assignments[(user_id, target)] = [role]


def keystone_token(server: SimulatorServer, user: str, project: str | None) -> str:
    """A token of the simulated Keystone for `user`, project-scoped (by name) or
    system-scoped (None)."""
    scope: dict[str, Any] = (
        {"project": {"name": project, "domain": {"id": "default"}}}
        if project
        else {"system": {"all": True}}
    )
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"id": "default"}, "password": PASSWORD}
                },
            },
            "scope": scope,
        }
    }
    answer = requests.post(f"{server.auth_url}/v3/auth/tokens", json=body, timeout=10)
    assert answer.status_code == 201, answer.text
    return str(answer.headers["X-Subject-Token"])
