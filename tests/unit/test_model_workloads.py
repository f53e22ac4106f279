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
