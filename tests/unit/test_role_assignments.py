"""Keystone users and role assignments as StackFleet records, and the security pack's
"admin role held outside an allowed list" rule over them."""

from __future__ import annotations

from typing import Any

from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.model import kind
from stackfleet.policy import load_files

ADMIN_ROLE = {"id": "r-admin", "name": "admin"}
MEMBER_ROLE = {"id": "r-member", "name": "member"}


def grant(user: str | None, role: dict[str, str], scope: dict[str, Any]) -> dict[str, Any]:
    """A role assignment as Keystone lists it with include_names."""
    obj: dict[str, Any] = {"role": dict(role), "scope": scope, "links": {"assignment": "x"}}
    if user is not None:
        obj["user"] = {"id": f"u-{user}", "name": user, "domain": {"id": "default"}}
    return obj


def on_project(project: str) -> dict[str, Any]:
    return {"project": {"id": f"p-{project}", "name": project, "domain": {"id": "default"}}}


def test_a_project_grant_becomes_a_record_named_after_who_holds_what_where() -> None:
    record = kind("role_assignment").record_builder()(
        grant("mallory", ADMIN_ROLE, on_project("demo"))
    )
    assert record["id"] == "project:p-demo:user:u-mallory:role:r-admin"
    assert record["name"] == "mallory: admin on project demo"
    assert (record["role_name"], record["user_name"], record["user_id"]) == (
        "admin",
        "mallory",
        "u-mallory",
    )
    assert (record["scope_type"], record["scope_project_id"], record["scope_project_name"]) == (
        "project",
        "p-demo",
        "demo",
    )
    assert record["inherited"] is False
    # not a resource the project owns: it must not make an empty project look used
    assert record["project_id"] is None


def test_a_system_grant_and_an_inherited_group_grant_have_distinct_ids() -> None:
    build = kind("role_assignment").record_builder()
    system = build(grant("admin", ADMIN_ROLE, {"system": {"all": True}}))
    assert system["id"] == "system:all:user:u-admin:role:r-admin"
    assert system["scope_type"] == "system" and system["name"] == "admin: admin on system"
    inherited = build(
        {
            "role": {"id": "r-admin"},
            "group": {"id": "g-ops", "name": "ops"},
            "scope": {
                "domain": {"id": "d1", "name": "corp"},
                "OS-INHERIT:inherited_to": "projects",
            },
        }
    )
    assert inherited["id"] == "domain:d1:group:g-ops:role:r-admin:inherited"
    assert inherited["inherited"] is True
    assert (inherited["group_name"], inherited["user_name"]) == ("ops", None)
    assert (inherited["scope_domain_id"], inherited["scope_domain_name"]) == ("d1", "corp")


def test_a_user_record_keeps_its_domain_default_project_and_enabled_state() -> None:
    record = kind("user").record_builder()(
        {
            "id": "u1",
            "name": "alice",
            "domain_id": "default",
            "enabled": False,
            "email": "alice@example.org",
            "default_project_id": "p1",
            "password_expires_at": None,
            "options": {},
        }
    )
    assert record["status"] == "disabled" and record["enabled"] is False
    assert (record["email"], record["default_project_id"]) == ("alice@example.org", "p1")
    assert record["project_id"] is None


def test_security_pack_flags_admin_held_outside_the_allowed_list_only(store) -> None:
    build = kind("role_assignment").record_builder()
    grants = [
        grant("admin", ADMIN_ROLE, on_project("admin")),
        grant("admin", ADMIN_ROLE, {"system": {"all": True}}),
        grant("nova", ADMIN_ROLE, on_project("service")),
        grant("alice", MEMBER_ROLE, on_project("demo")),
        grant("mallory", ADMIN_ROLE, on_project("demo")),
        {"role": ADMIN_ROLE, "group": {"id": "g1", "name": "ops"}, "scope": on_project("demo")},
    ]
    pass_id = store.begin_pass("c", "r")
    store.record_kind(pass_id, "c", "r", "role_assignment", [build(g) for g in grants], True)
    store.finish_pass(pass_id, "complete", None, 0)
    [rule] = [
        p for p in load_files(["pack:security"]) if p.name == "admin-role-outside-allowed-list"
    ]
    report = PolicyRunner(store, Settings()).run([rule])
    assert sorted(r["name"] for r in report.policies[0].matched) == [
        "mallory: admin on project demo",
        "ops: admin on project demo",
    ]
