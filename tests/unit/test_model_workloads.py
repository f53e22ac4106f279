"""Workload records derived from server records: only servers carrying both the tag
and the metadata label are members; one workload per project and name."""

from __future__ import annotations

from stackfleet.model.workloads import workloads_from_servers


def server(sid: str, workload: str | None, project: str = "p", status: str = "ACTIVE",
           tag: bool = True, index: int = 1) -> dict:  # fmt: skip
    metadata = (
        {"stackfleet-workload": workload, "stackfleet-member": str(index)} if workload else {}
    )
    tags = [f"stackfleet-workload:{workload}"] if workload and tag else []
    return {"id": sid, "name": f"{workload}-{index}", "project_id": project, "status": status,
            "metadata": metadata, "tags": tags, "host": f"h{index}"}  # fmt: skip


def test_members_need_the_tag_and_the_label():
    records = workloads_from_servers(
        [
            server("a", "web", index=2),
            server("b", "web", index=1),
            server("c", "web", tag=False),
            server("d", None),
        ]  # fmt: skip
    )
    assert len(records) == 1
    web = records[0]
    assert web["id"] == "p/web" and web["member_ids"] == ["b", "a"]
    assert web["status"] == "ACTIVE" and web["member_count"] == 2


def test_one_workload_per_project_and_status_from_members():
    records = workloads_from_servers(
        [server("a", "web", "p1"), server("b", "web", "p2", status="ERROR")]
    )
    assert [(r["id"], r["status"], r["failed_count"]) for r in records] == [
        ("p1/web", "ACTIVE", 0),
        ("p2/web", "ERROR", 1),
    ]


def test_allocations_with_their_nodes_and_containers_are_workloads_too():
    from stackfleet.model.workloads import workloads_from_members

    labels = {"stackfleet-workload": "rack", "stackfleet-member": "1"}
    records = workloads_from_members(
        servers=[server("s1", "web")],
        allocations=[
            {"id": "a1", "name": "rack-1", "project_id": "p", "status": "active",
             "node_uuid": "n1", "extra": labels},
            {"id": "a2", "name": "rack-2", "project_id": "p", "status": "error",
             "node_uuid": None, "last_error": "no nodes",
             "extra": {**labels, "stackfleet-member": "2"}},
            {"id": "a3", "name": "other", "project_id": "p", "status": "active", "extra": {}},
        ],
        nodes=[{"id": "n1", "name": "bm-1", "provision_state": "active",
                "power_state": "power off"}],
        containers=[{"id": "c1", "name": "api-1", "project_id": "p", "status": "Running",
                     "host": "h1", "labels": {"stackfleet-workload": "api"}}],
    )  # fmt: skip
    by_name = {r["name"]: r for r in records}
    assert sorted(by_name) == ["api", "rack", "web"]
    rack = by_name["rack"]
    assert (rack["backend"], rack["member_kind"], rack["node_ids"]) == (
        "ironic", "baremetal_node", ["n1", "a2"]
    )  # fmt: skip
    assert (rack["status"], rack["failed_count"], rack["hosts"]) == ("ERROR", 1, ["bm-1"])
    api = by_name["api"]
    assert (api["backend"], api["container_ids"], api["status"]) == ("zun", ["c1"], "ACTIVE")
    assert by_name["web"]["server_ids"] == ["s1"] and by_name["web"]["node_ids"] == []


def test_a_name_a_project_uses_on_two_backends_is_novas():
    from stackfleet.model.workloads import workloads_from_members

    records = workloads_from_members(
        servers=[server("s1", "web")],
        containers=[{"id": "c1", "name": "web-1", "project_id": "p", "status": "Running",
                     "labels": {"stackfleet-workload": "web"}}],
    )  # fmt: skip
    assert [(r["backend"], r["member_ids"]) for r in records] == [("nova", ["s1"])]
