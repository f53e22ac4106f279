"""Keystone role assignments on the real testbed: StackFleet lists the real grants
(the cloud admin holds admin on the admin project), and a user the test makes an admin
of a tenant project through openstacksdk is what the security pack's
`admin-role-outside-allowed-list` rule reports — not the cloud admin, not the service
users. A cloud without the admin role gets 403 from Keystone: the kinds are skipped,
not listed empty (the simulator's e2e test shows the records stay)."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openstack.exceptions
import pytest
from testbed_fleet import MEMBER_PROJECT, collect_testbed

from stackfleet.engine.collect import collect
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.policy import load_files
from stackfleet.store import Store, open_store

pytestmark = pytest.mark.integration

PREFIX = "sfrole-"
RULE = "admin-role-outside-allowed-list"
KINDS = ("project", "user", "role_assignment")


@dataclass(frozen=True)
class Outsider:
    """The user the test made an admin of the tenant project."""

    user_id: str
    project_id: str
    role_id: str

    @property
    def grant_id(self) -> str:
        return f"project:{self.project_id}:user:{self.user_id}:role:{self.role_id}"


def _delete_prefixed_users(identity: Any) -> None:
    for user in identity.users():
        if (user.name or "").startswith(PREFIX):
            # deleting a user deletes its role assignments
            with contextlib.suppress(openstack.exceptions.NotFoundException):
                identity.delete_user(user)


@pytest.fixture(scope="module")
def admin(testbed: Any) -> Any:
    return testbed.connect(testbed.admin_cloud)


@pytest.fixture(scope="module")
def outsider(admin: Any) -> Iterator[Outsider]:
    """A user `sfrole-mallory` with the admin role on the tenant project (deleted after)."""
    identity = admin.identity
    _delete_prefixed_users(identity)
    project = identity.find_project(MEMBER_PROJECT, ignore_missing=False)
    role = identity.find_role("admin", ignore_missing=False)
    user = identity.create_user(
        name=f"{PREFIX}mallory", domain_id="default", password=secrets.token_urlsafe(16)
    )
    try:
        identity.assign_project_role_to_user(project, user, role)
        yield Outsider(user.id, project.id, role.id)
    finally:
        _delete_prefixed_users(identity)


@pytest.fixture(scope="module")
def store(
    testbed: Any, outsider: Outsider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """A store after one pass of the identity kinds over the testbed, as the admin."""
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('roles') / 'store.db'}")
    try:
        result = collect_testbed(store, testbed, list(KINDS))
        assert result.status == "complete", result.error
        yield store
    finally:
        store.close()


def _grants(store: Store, cloud: str) -> dict[str, dict[str, Any]]:
    rows, _ = store.list_resources("role_assignment", cloud=cloud, limit=10_000)
    return {row["id"]: row for row in rows}


def test_stackfleet_lists_the_real_role_assignments(
    store: Store, testbed: Any, admin: Any, outsider: Outsider
) -> None:
    real = set()
    for grant in admin.identity.role_assignments():
        scope = grant.scope or {}
        if "project" in scope:
            where = f"project:{scope['project']['id']}"
        elif "domain" in scope:
            where = f"domain:{scope['domain']['id']}"
        else:
            where = "system:all"
        actor = f"user:{grant.user['id']}" if grant.user else f"group:{grant.group['id']}"
        real.add(f"{where}:{actor}:role:{grant.role['id']}")
    assert set(_grants(store, testbed.admin_cloud)) == real
    assert outsider.grant_id in real


def test_the_cloud_admin_holds_admin_on_the_admin_project(
    store: Store, testbed: Any, admin: Any
) -> None:
    identity = admin.identity
    user = identity.find_user("admin", ignore_missing=False)
    project = identity.find_project("admin", ignore_missing=False)
    role = identity.find_role("admin", ignore_missing=False)
    grant_id = f"project:{project.id}:user:{user.id}:role:{role.id}"
    record = store.get_resource("role_assignment", grant_id, cloud=testbed.admin_cloud)
    assert (record["user_name"], record["role_name"], record["scope_project_name"]) == (
        "admin",
        "admin",
        "admin",
    )
    assert [u["id"] for u in record["relations"]["user"]] == [user.id]
    assert [p["id"] for p in record["relations"]["project"]] == [project.id]


def test_the_security_pack_flags_the_new_tenant_admin_and_not_the_allowed_ones(
    store: Store, testbed: Any, outsider: Outsider
) -> None:
    [rule] = [p for p in load_files(["pack:security"]) if p.name == RULE]
    report = PolicyRunner(store, Settings()).run([rule], record_findings=False)
    matched = {r["id"] for r in report.policies[0].matched}
    assert outsider.grant_id in matched
    grants = _grants(store, testbed.admin_cloud)
    allowed = {"admin", "nova", "neutron", "glance", "cinder", "placement", "ironic"}
    held_by_allowed = {i for i, g in grants.items() if g["name"].split(":")[0] in allowed}
    assert len(held_by_allowed) >= 7
    assert not matched & held_by_allowed


def test_a_member_cloud_gets_403_and_skips_the_identity_kinds(store: Store, testbed: Any) -> None:
    [result] = collect(
        store,
        testbed.member_cloud,
        config_files=[str(testbed.clouds_yaml)],
        kinds=["user", "role_assignment"],
    )
    # skipped is not failed: the pass is complete
    assert result.status == "complete", result.error
    for kind in ("user", "role_assignment"):
        listing = result.listings[kind]
        assert listing.skipped and (listing.complete, listing.records) == (False, [])
        assert "HTTP 403" in str(listing.error) and "admin role" in str(listing.error)
