"""Waste and compliance reports."""

from __future__ import annotations

from datetime import UTC, datetime

from support import run_cli

from stackfleet.engine.reports import compliance_html, compliance_report, waste_report
from stackfleet.policy import load_text


def collect(store, **kinds):
    pass_id = store.begin_pass("c", "r")
    for kind, records in kinds.items():
        store.record_kind(pass_id, "c", "r", kind, records, True)
    store.finish_pass(pass_id, "complete", None, 0)


WASTE = load_text(
    """policies:
  - name: off
    resource: server
    filters: [{status: SHUTOFF}]
  - name: spare-ips
    resource: floating_ip
    filters: [{type: relation, relation: port, absent: true}]
"""
)


def test_the_waste_report_sums_what_reclaiming_frees(store):
    collect(
        store,
        server=[
            {"id": "a", "status": "SHUTOFF", "vcpus": 4, "ram_mb": 8192, "disk_gb": 40},
            {"id": "b", "status": "SHUTOFF", "vcpus": 2, "ram_mb": 2048, "disk_gb": 20},
            {"id": "c", "status": "ACTIVE", "vcpus": 8, "ram_mb": 8192, "disk_gb": 80},
        ],
        floating_ip=[{"id": "f1", "port_id": None}, {"id": "f2", "port_id": "p"}],
        port=[{"id": "p"}],
    )
    rows = {r["policy"]: r for r in waste_report(store, WASTE)}
    assert (
        rows["off"]["count"],
        rows["off"]["vcpus"],
        rows["off"]["ram_gb"],
        rows["off"]["disk_gb"],
    ) == (2, 6, 10, 60)
    assert rows["spare-ips"]["floating_ips"] == 1
    assert rows["total"]["count"] == 3


RULES = load_text(
    """policies:
  - name: ssh-open
    resource: security_group_rule
    description: SSH open to the world.
    severity: critical
    filters: [{remote_ip_prefix: 0.0.0.0/0}, {type: port-range, ports: [22]}]
"""
)


def rules(*items):
    return [
        {
            "id": rid,
            "protocol": "tcp",
            "port_range_min": low,
            "port_range_max": high,
            "remote_ip_prefix": prefix,
        }
        for rid, low, high, prefix in items
    ]


def test_compliance_report_counts_pass_and_fail_and_tracks_the_trend(store):
    collect(
        store, security_group_rule=rules(("r1", 22, 22, "0.0.0.0/0"), ("r2", 443, 443, "0.0.0.0/0"))
    )
    compliance_report(store, RULES)
    collect(
        store, security_group_rule=rules(("r1", 22, 22, "0.0.0.0/0"), ("r3", 22, 22, "0.0.0.0/0"))
    )
    [result] = compliance_report(store, RULES)
    assert (result.checked, result.passing, result.failing) == (2, 0, 2)
    assert sorted(o["id"] for o in result.offenders) == ["r1", "r3"]
    assert [count for _at, count in result.trend] == [1, 2]


def test_the_html_report_is_a_standalone_page(store):
    collect(store, security_group_rule=rules(("r1", 22, 22, "0.0.0.0/0")))
    page = compliance_html(compliance_report(store, RULES), datetime.now(UTC))
    assert page.startswith("<!DOCTYPE html>")
    assert "ssh-open" in page and "FAIL" in page and "r1" in page
    assert "http" not in page.replace("http-equiv", "")  # no external assets


def test_compliance_report_cli_writes_html_and_json(tmp_path):
    db = f"sqlite:///{tmp_path / 's.db'}"
    html = tmp_path / "report.html"
    result = run_cli("--db-url", db, "compliance", "report", "--html", str(html), "-f", "json")
    assert result.code == 0, result.stderr
    names = {row["policy"] for row in result.json()}
    assert {"ssh-open-to-world", "servers-on-down-hosts"} <= names
    assert html.read_text().startswith("<!DOCTYPE html>")


def test_the_reports_through_the_api(store):
    from fastapi.testclient import TestClient

    from stackfleet.api.app import create_app

    client = TestClient(create_app(store))
    old = "2020-01-01T00:00:00Z"
    world = [{**r, "direction": "ingress"} for r in rules(("r1", 22, 22, "0.0.0.0/0"))]
    lan = [{**r, "direction": "ingress"} for r in rules(("r2", 22, 22, "10.0.0.0/8"))]
    collect(
        store,
        image=[
            {
                "id": "i1",
                "status": "active",
                "protected": False,
                "created_at": old,
                "size": 2 * 1024**3,
            },
            {"id": "i2", "status": "active", "protected": True, "created_at": old, "size": 1},
        ],
        server=[],
        security_group_rule=world + lan,
    )
    freed = {row["policy"]: row for row in client.get("/v1/reports/waste").json()["items"]}
    assert (freed["unused-images"]["count"], freed["unused-images"]["image_gb"]) == (1, 2.0)
    assert freed["total"]["image_gb"] == 2.0
    checked = {r["policy"]: r for r in client.get("/v1/reports/compliance").json()["items"]}
    ssh = checked["ssh-open-to-world"]
    assert (ssh["checked"], ssh["passing"], ssh["failing"], ssh["status"]) == (2, 1, 1, "fail")
    assert [o["id"] for o in ssh["offenders"]] == ["r1"]
    page = client.get("/v1/reports/compliance", params={"format": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert page.text.startswith("<!DOCTYPE html>") and "r1" in page.text
    unknown = client.get("/v1/reports/compliance", params={"pack": "nope"})
    assert unknown.status_code == 400 and unknown.json()["error"]["field"] == "pack.0"
    assert "waste" in unknown.json()["error"]["message"]  # names the packs there are


def test_getting_the_compliance_report_records_no_finding(store):
    from fastapi.testclient import TestClient

    from stackfleet.api.app import create_app
    from stackfleet.store.findings import list_findings

    world = [{**r, "direction": "ingress"} for r in rules(("r1", 22, 22, "0.0.0.0/0"))]
    collect(store, security_group_rule=world)
    client = TestClient(create_app(store))
    checked = {r["policy"]: r for r in client.get("/v1/reports/compliance").json()["items"]}
    assert checked["ssh-open-to-world"]["failing"] == 1
    assert list_findings(store)[0] == []


def test_a_pack_name_cannot_reach_outside_the_built_in_packs(store, tmp_path):
    from fastapi.testclient import TestClient

    from stackfleet.api.app import create_app

    client = TestClient(create_app(store))
    outside = tmp_path / "evil.yaml"
    outside.write_text("policies: []\n")
    for name in ("../packs/waste", str(tmp_path / "evil"), "waste/../waste"):
        answer = client.get("/v1/reports/compliance", params={"pack": name})
        assert answer.status_code == 400, name
        assert answer.json()["error"]["field"] == "pack.0", name
