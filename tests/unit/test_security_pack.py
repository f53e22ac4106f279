"""Each rule of the built-in security pack finds its offender and passes a compliant
resource, over records as the store holds them (the simulator cannot create security
group rules, public images of a tenant or encrypted volume types)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stackfleet.policy import load_files
from stackfleet.policy.filters import compile_all
from stackfleet.policy.view import FleetView

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
RULES = {p.name: p for p in load_files(["pack:security"])}


def rec(kind: str, id: str, **fields: Any) -> dict[str, Any]:
    base = {
        "id": id,
        "name": id,
        "project_id": "pt",
        "status": None,
        "cloud": "c",
        "region": "r",
        "kind": kind,
        "first_seen": NOW - timedelta(days=400),
        "last_seen": NOW,
        "last_changed": NOW,
    }
    base.update(fields)
    return base


def rule(id: str, prefix: str | None, protocol: str | None, low: int | None, high: int | None):
    return rec(
        "security_group_rule",
        id,
        direction="ingress",
        remote_ip_prefix=prefix,
        protocol=protocol,
        port_range_min=low,
        port_range_max=high,
    )


SG_RULES = [
    rule("ssh-world", "0.0.0.0/0", "tcp", 22, 22),
    rule("ssh-lan", "10.0.0.0/8", "tcp", 22, 22),
    rule("rdp-world-v6", "::/0", "tcp", 3389, 3389),
    rule("mysql-world", "0.0.0.0/0", "tcp", 3306, 3306),
    rule("postgres-lan", "192.168.0.0/16", "tcp", 5432, 5432),
    rule("everything-world", "0.0.0.0/0", None, None, None),
    rule("https-world", "0.0.0.0/0", "tcp", 443, 443),
    {**rule("egress-world", "0.0.0.0/0", None, None, None), "direction": "egress"},
]
RECORDS: dict[str, list[dict[str, Any]]] = {
    "security_group_rule": SG_RULES,
    "project": [rec("project", "pa", name="admin"), rec("project", "pt", name="tenant")],
    "image": [
        rec("image", "img-admin-public", project_id="pa", visibility="public"),
        rec("image", "img-tenant-public", project_id="pt", visibility="public"),
        rec("image", "img-tenant-private", project_id="pt", visibility="private"),
    ],
    "volume": [
        rec("volume", "vol-plain-on-luks-type", encrypted=False, volume_type="luks-encrypted"),
        rec("volume", "vol-encrypted", encrypted=True, volume_type="luks-encrypted"),
        rec("volume", "vol-plain-default-type", encrypted=False, volume_type="__DEFAULT__"),
    ],
    "server": [
        rec("server", "srv-no-sg", host="cmp1", security_groups=[]),
        rec("server", "srv-default-sg", host="cmp1", security_groups=[{"name": "default"}]),
        rec("server", "srv-unplaced", host=None, security_groups=[]),
    ],
}


def offenders(name: str) -> list[str]:
    policy = RULES[name]
    view = FleetView(None, NOW)
    for kind, items in RECORDS.items():
        view.add_records(kind, items)
    predicate = compile_all(policy.filters, view)
    return sorted(r["id"] for r in RECORDS[policy.kind] if predicate(r))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ssh-open-to-world", ["everything-world", "ssh-world"]),
        ("rdp-open-to-world", ["everything-world", "rdp-world-v6"]),
        ("database-ports-open-to-world", ["everything-world", "mysql-world"]),
        ("all-ports-open-to-world", ["everything-world"]),
        ("public-images-not-owned-by-admin", ["img-tenant-public"]),
        ("unencrypted-volumes", ["vol-plain-on-luks-type"]),
        ("servers-without-security-group", ["srv-no-sg"]),
    ],
)
def test_each_security_rule_finds_its_offenders_and_passes_the_rest(name, expected):
    assert offenders(name) == expected
