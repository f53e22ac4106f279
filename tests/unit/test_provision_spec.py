"""Workload specs are checked before anything runs: their shape (file, line, field) and
their names against what the cloud has (closest valid choices)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stackfleet.provision.plan import (
    META_MEMBER,
    META_SPEC,
    META_WORKLOAD,
    member_of,
    plan_workload,
    spec_hash,
    workload_tag,
)
from stackfleet.provision.resolve import CloudFacts, resolve
from stackfleet.provision.spec import SpecError, load_spec_text

FACTS = CloudFacts(
    cloud="sim",
    region="RegionOne",
    project_id="p1",
    user_id="u1",
    images=[{"id": "img-1", "name": "ubuntu-24.04"}, {"id": "img-2", "name": "cirros"}],
    flavors=[
        {"id": "1", "name": "m1.small", "vcpus": 1, "ram": 2048, "disk": 20},
        {"id": "2", "name": "m1.medium", "vcpus": 2, "ram": 4096, "disk": 40},
        {"id": "3", "name": "m1.large", "vcpus": 4, "ram": 8192, "disk": 80},
    ],
    networks=[{"id": "net-1", "name": "private"}, {"id": "net-2", "name": "public"}],
    security_groups=[{"id": "sg-1", "name": "default"}, {"id": "sg-2", "name": "web"}],
    keypairs=["ops-key"],
    zones=["nova"],
    services={"compute", "network", "image", "identity"},
)


def one(text: str):
    return load_spec_text(text, "web.yaml")[0]


def problems(text: str) -> list[str]:
    workload = one(text)
    _resolved, found = resolve(workload, FACTS)
    return [str(p) for p in found]


BASE = """workloads:
  - name: web
    count: 2
    image: ubuntu-24.04
    size: m1.small
"""


def test_an_unknown_key_names_file_line_and_the_allowed_keys():
    with pytest.raises(SpecError) as caught:
        load_spec_text(BASE + "    flavour: m1.small\n", "web.yaml")
    text = str(caught.value)
    assert "web.yaml:6: workload 'web' flavour: unknown key 'flavour'" in text
    assert "size" in text and "nothing was created" in text


def test_a_bad_kind_says_which_kinds_exist():
    with pytest.raises(SpecError) as caught:
        load_spec_text(BASE + "    kind: vmm\n", "web.yaml")
    assert "'vmm' is not allowed; allowed: vm, baremetal, container" in str(caught.value)


def test_a_workload_name_used_twice_is_refused():
    with pytest.raises(SpecError, match="name used twice"):
        load_spec_text(BASE + BASE.removeprefix("workloads:\n"), "web.yaml")


def test_unknown_image_flavor_network_and_key_pair_name_the_closest_choices():
    found = problems(
        """workloads:
  - name: web
    count: 1
    image: ubuntu-24.4
    size: m1.smal
    networks: [privat]
    security_groups: [webb]
    key_pair: ops-keys
"""
    )
    joined = "\n".join(found)
    assert "image: no image 'ubuntu-24.4'; closest: ubuntu-24.04" in joined
    assert "size: no flavor 'm1.smal'; closest: m1.small" in joined
    assert "networks[0]: no network 'privat'; closest: private" in joined
    assert "security_groups[0]: no security group 'webb'; closest: web" in joined
    assert "key_pair: no key pair 'ops-keys'; closest: ops-key" in joined
    assert all(p.startswith("web.yaml:2:") for p in found)


def test_a_size_gets_the_smallest_flavor_that_holds_it():
    workload = one(BASE.replace("size: m1.small", "size: {vcpus: 2, ram: 3000, disk: 10}"))
    resolved, found = resolve(workload, FACTS)
    assert not found and resolved is not None
    assert resolved.flavor is not None and resolved.flavor["name"] == "m1.medium"
    assert resolved.flavor_chosen


def test_a_size_no_flavor_holds_names_the_largest_flavor():
    found = problems(BASE.replace("size: m1.small", "size: {vcpus: 16, ram: 65536}"))
    assert found == [
        "web.yaml:2: workload 'web' size: no flavor fits 16 vCPUs, 65536 MiB RAM, 0 GiB disk; "
        "the largest is m1.large (4 vCPUs, 8192 MiB, 80 GiB)"
    ]


def test_a_container_on_a_cloud_without_zun_says_so():
    found = problems(
        """workloads:
  - name: app
    kind: container
    count: 1
    container: {image: nginx, ports: [80]}
"""
    )
    assert len(found) == 1
    assert "no Container service (Zun, catalog type 'container')" in found[0]


def _server(sid: str, index: int, digest: str, created: datetime, status: str = "ACTIVE") -> dict:
    return {
        "id": sid,
        "name": f"web-{index}",
        "status": status,
        "tenant_id": "p1",
        "created": created.isoformat(),
        "tags": [workload_tag("web")],
        "metadata": {META_WORKLOAD: "web", META_MEMBER: str(index), META_SPEC: digest},
    }


def _plan(count: int, servers: list[dict]):
    workload = one(BASE.replace("count: 2", f"count: {count}"))
    resolved, _ = resolve(workload, FACTS)
    assert resolved is not None
    digest = spec_hash(resolved)
    members = [m for s in servers if (m := member_of(s, "web", "p1"))]
    return resolved, digest, members


def test_a_server_without_the_workload_labels_is_never_a_member():
    now = datetime.now(UTC)
    by_hand = {
        "id": "x",
        "name": "web-1",
        "status": "ACTIVE",
        "tenant_id": "p1",
        "tags": [],
        "metadata": {},
    }
    tag_only = {**by_hand, "id": "y", "tags": [workload_tag("web")]}
    resolved, digest, _ = _plan(2, [])
    assert member_of(by_hand, "web", "p1") is None
    assert member_of(tag_only, "web", "p1") is None
    assert member_of(_server("z", 1, digest, now), "web", "p1") is not None


def test_scaling_down_deletes_the_newest_members_first():
    now = datetime.now(UTC)
    resolved, digest, _ = _plan(1, [])
    servers = [_server(f"s{i}", i, digest, now - timedelta(hours=10 - i)) for i in (1, 2, 3)]
    members = [member_of(s, "web", "p1") for s in servers]
    plan = plan_workload(resolved, [m for m in members if m])
    assert [(s.kind, s.name) for s in plan.steps if s.kind == "delete"] == [
        ("delete", "web-3"),
        ("delete", "web-2"),
    ]
    assert [s.name for s in plan.of("keep")] == ["web-1"]


def test_a_member_in_error_is_replaced_and_a_missing_one_created():
    now = datetime.now(UTC)
    resolved, digest, _ = _plan(3, [])
    servers = [_server("s1", 1, digest, now), _server("s2", 2, digest, now, status="ERROR")]
    servers[1]["fault"] = {"message": "No valid host was found."}
    members = [m for s in servers if (m := member_of(s, "web", "p1"))]
    plan = plan_workload(resolved, members)
    assert [(s.kind, s.name) for s in plan.steps if s.kind != "keep"] == [
        ("replace", "web-2"),
        ("create", "web-3"),
    ]
    assert plan.of("replace")[0].reason == "in ERROR: No valid host was found."


def test_a_second_plan_over_converged_members_changes_nothing():
    now = datetime.now(UTC)
    resolved, digest, _ = _plan(2, [])
    members = [
        m
        for s in (_server("a", 1, digest, now), _server("b", 2, digest, now))
        if (m := member_of(s, "web", "p1"))
    ]
    assert not plan_workload(resolved, members).changes
