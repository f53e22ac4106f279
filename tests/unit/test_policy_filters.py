"""Each filter of the policy language, over records as the store holds them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stackfleet.policy import load_text
from stackfleet.policy.filters import compile_all
from stackfleet.policy.view import FleetView
from stackfleet.store.metrics import Sample, record_samples

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def rec(kind: str, id: str, **fields: Any) -> dict[str, Any]:
    base = {
        "id": id,
        "name": id,
        "project_id": "p1",
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


def matching(
    kind: str, filters: str, records: dict[str, list[dict[str, Any]]], store=None
) -> list[str]:
    """Ids of `kind` records that `filters` (YAML list) match."""
    [policy] = load_text(f"policies:\n  - name: t\n    resource: {kind}\n    filters: {filters}\n")
    view = FleetView(store, NOW)
    for name, items in records.items():
        view.add_records(name, items)
    predicate = compile_all(policy.filters, view)
    return sorted(r["id"] for r in records[kind] if predicate(r))


SERVERS = [
    rec(
        "server",
        "a",
        status="ACTIVE",
        vcpus=2,
        metadata={"owner": "x@y"},
        tags=["prod"],
        locked=False,
    ),
    rec("server", "b", status="SHUTOFF", vcpus=8, metadata={}, tags=[], locked=True),
    rec(
        "server",
        "c",
        status="ERROR",
        vcpus=None,
        metadata={"Owner": "z"},
        tags=["dev"],
        locked=False,
    ),
]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ("[{status: SHUTOFF}]", ["b"]),
        ("[{type: value, key: status, op: ne, value: SHUTOFF}]", ["a", "c"]),
        ("[{type: value, key: vcpus, op: gt, value: 2}]", ["b"]),
        ("[{type: value, key: vcpus, op: ge, value: 2}]", ["a", "b"]),
        ("[{type: value, key: vcpus, op: lt, value: 8}]", ["a"]),
        ("[{type: value, key: vcpus, op: le, value: 8}]", ["a", "b"]),
        ("[{type: value, key: status, op: in, value: [ERROR, SHUTOFF]}]", ["b", "c"]),
        ("[{type: value, key: status, op: not-in, value: [ERROR, SHUTOFF]}]", ["a"]),
        ("[{type: value, key: name, op: regex, value: '^[ab]$'}]", ["a", "b"]),
        ("[{type: value, key: name, op: not-regex, value: '^[ab]$'}]", ["c"]),
        ("[{vcpus: absent}]", ["c"]),
        ("[{vcpus: present}]", ["a", "b"]),
        ("[{metadata: empty}]", ["b"]),
        ("[{tags: not-empty}]", ["a", "c"]),
        ("[{type: value, key: tags, op: contains, value: prod}]", ["a"]),
        ("[{type: value, key: tags, op: not-contains, value: prod}]", ["b", "c"]),
        ("[{type: value, key: metadata.owner, op: eq, value: x@y}]", ["a"]),
        ("[{type: value, key: metadata.owner, op: absent}]", ["b", "c"]),
        ("[{locked: true}]", ["b"]),
        ("[{type: value, key: status, op: eq, value: active, ignore_case: true}]", ["a"]),
    ],
)
def test_value_filter_operators(filters, expected):
    assert matching("server", filters, {"server": SERVERS}) == expected


def test_a_number_and_its_text_compare_equal_but_a_boolean_never_equals_a_number():
    records = [rec("server", "a", vcpus=1), rec("server", "b", vcpus=True)]
    assert matching("server", "[{vcpus: 1}]", {"server": records}) == ["a"]


def test_ordering_a_missing_value_never_matches_either_way():
    records = [rec("server", "a", vcpus=None)]
    assert (
        matching("server", "[{type: value, key: vcpus, op: lt, value: 4}]", {"server": records})
        == []
    )
    assert (
        matching("server", "[{type: value, key: vcpus, op: ge, value: 4}]", {"server": records})
        == []
    )


def test_and_or_not_combine_filters():
    records = {"server": SERVERS}
    assert matching("server", "[{or: [{status: SHUTOFF}, {status: ERROR}]}]", records) == ["b", "c"]
    assert matching("server", "[{not: {status: ACTIVE}}]", records) == ["b", "c"]
    assert matching("server", "[{not: [{status: ERROR}, {tags: not-empty}]}]", records) == [
        "a",
        "b",
    ]
    assert matching("server", "[{and: [{status: SHUTOFF}, {vcpus: 8}]}]", records) == ["b"]


def test_age_of_a_timestamp_field_older_and_newer():
    records = [
        rec("server", "old", created=(NOW - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%SZ")),
        rec("server", "new", created=(NOW - timedelta(days=3)).isoformat()),
        rec("server", "none", created=None),
    ]
    older = "[{type: age, field: created, older_than: 30d}]"
    newer = "[{type: age, field: created, newer_than: 1w}]"
    assert matching("server", older, {"server": records}) == ["old"]
    assert matching("server", newer, {"server": records}) == ["new"]


def test_age_of_first_seen_uses_the_stores_bookkeeping():
    records = [rec("server", "a"), rec("server", "b", first_seen=NOW - timedelta(hours=2))]
    assert matching(
        "server", "[{type: age, field: first_seen, newer_than: 1d}]", {"server": records}
    ) == ["b"]


def test_tag_filter_exact_regex_and_absent():
    records = {"server": SERVERS}
    assert matching("server", "[{type: tag, tag: prod}]", records) == ["a"]
    assert matching("server", "[{type: tag, regex: '^d'}]", records) == ["c"]
    assert matching("server", "[{type: tag, tag: prod, absent: true}]", records) == ["b", "c"]


def test_metadata_filter():
    records = {"server": SERVERS}
    assert matching("server", "[{type: metadata, key: owner}]", records) == ["a"]
    assert matching("server", "[{type: metadata, key: owner, op: absent}]", records) == ["b", "c"]
    assert matching("server", "[{type: metadata, key: owner, op: regex, value: '@'}]", records) == [
        "a"
    ]


NETWORK = {
    "floating_ip": [
        rec("floating_ip", "fip-attached", port_id="p1"),
        rec("floating_ip", "fip-free", port_id=None),
        rec("floating_ip", "fip-dangling", port_id="gone-port"),
    ],
    "port": [rec("port", "p1", device_id="s1", status="ACTIVE")],
}


def test_relation_absent_finds_floating_ips_whose_port_is_missing():
    found = matching("floating_ip", "[{type: relation, relation: port, absent: true}]", NETWORK)
    assert found == ["fip-dangling", "fip-free"]


def test_relation_with_nested_filters_tests_the_related_resource():
    found = matching(
        "floating_ip",
        "[{type: relation, relation: port, filters: [{status: ACTIVE}]}]",
        NETWORK,
    )
    assert found == ["fip-attached"]


def test_relations_nest_server_to_hypervisor_to_compute_service():
    records = {
        "server": [
            rec("server", "on-dead", hypervisor_hostname="h1.x"),
            rec("server", "on-live", hypervisor_hostname="h2.x"),
            rec("server", "unplaced", hypervisor_hostname=None),
        ],
        "hypervisor": [
            rec("hypervisor", "hv1", hypervisor_hostname="h1.x", host="h1"),
            rec("hypervisor", "hv2", hypervisor_hostname="h2.x", host="h2"),
        ],
        "compute_service": [
            rec("compute_service", "cs1", host="h1", state="down", binary="nova-compute"),
            rec("compute_service", "cs2", host="h2", state="up", binary="nova-compute"),
        ],
    }
    filters = (
        "[{type: relation, relation: hypervisor, filters: [{type: relation, "
        "relation: compute_service, filters: [{state: down}]}]}]"
    )
    assert matching("server", filters, records) == ["on-dead"]


def test_reverse_relations_and_match_modes():
    records = {
        "image": [rec("image", "used"), rec("image", "unused"), rec("image", "mixed")],
        "server": [
            rec("server", "s1", image_id="used", status="ACTIVE"),
            rec("server", "s2", image_id="mixed", status="ACTIVE"),
            rec("server", "s3", image_id="mixed", status="ERROR"),
        ],
    }
    assert matching("image", "[{type: relation, relation: servers, absent: true}]", records) == [
        "unused"
    ]
    all_active = "[{type: relation, relation: servers, match: all, filters: [{status: ACTIVE}]}]"
    assert matching("image", all_active, records) == ["used"]
    none_error = "[{type: relation, relation: servers, match: none, filters: [{status: ERROR}]}]"
    assert matching("image", none_error, records) == ["unused", "used"]


def test_owned_finds_projects_without_resources_in_any_region():
    records = {
        "project": [rec("project", "busy", region="r1"), rec("project", "empty", region="r1")],
        "server": [rec("server", "s1", project_id="busy", region="r2")],
    }
    assert matching("project", "[{type: relation, relation: owned, absent: true}]", records) == [
        "empty"
    ]


def test_project_filter_by_name_or_id():
    records = {
        "image": [
            rec("image", "i-admin", project_id="pa"),
            rec("image", "i-tenant", project_id="pt"),
            rec("image", "i-none", project_id=None),
        ],
        "project": [rec("project", "pa", name="admin"), rec("project", "pt", name="tenant")],
    }
    assert matching("image", "[{type: project, not_in: [admin]}]", records) == [
        "i-none",
        "i-tenant",
    ]
    assert matching("image", "[{type: project, in: [pt]}]", records) == ["i-tenant"]


def test_port_range_finds_rules_opening_a_port_or_every_port():
    rules = [
        rec("security_group_rule", "ssh", protocol="tcp", port_range_min=22, port_range_max=22),
        rec("security_group_rule", "range", protocol="tcp", port_range_min=1, port_range_max=1024),
        rec("security_group_rule", "web", protocol="tcp", port_range_min=443, port_range_max=443),
        rec("security_group_rule", "any", protocol=None, port_range_min=None, port_range_max=None),
        rec(
            "security_group_rule", "icmp", protocol="icmp", port_range_min=None, port_range_max=None
        ),
        rec("security_group_rule", "udp", protocol="17", port_range_min=22, port_range_max=22),
    ]
    records = {"security_group_rule": rules}
    assert matching("security_group_rule", "[{type: port-range, ports: [22]}]", records) == [
        "any",
        "range",
        "ssh",
    ]
    assert matching(
        "security_group_rule", "[{type: port-range, ports: [22], protocols: [udp]}]", records
    ) == ["udp"]
    assert matching("security_group_rule", "[{type: port-range}]", records) == ["any"]


def test_allocation_compares_placement_use_with_capacity():
    records = {
        "hypervisor": [
            rec("hypervisor", "full", vcpu_used=58, vcpu_capacity=64),
            rec("hypervisor", "half", vcpu_used=32, vcpu_capacity=64),
            rec("hypervisor", "no-data", vcpu_used=None, vcpu_capacity=None),
        ]
    }
    assert matching("hypervisor", "[{type: allocation, percent: 90}]", records) == ["full"]
    assert matching("hypervisor", "[{type: allocation, op: lt, percent: 60}]", records) == ["half"]


def test_colocated_server_groups_with_all_members_on_one_host():
    records = {
        "server_group": [
            rec("server_group", "together", members=["s1", "s2"]),
            rec("server_group", "spread", members=["s3", "s4"]),
            rec("server_group", "alone", members=["s5"]),
        ],
        "server": [
            rec("server", "s1", host="h1"),
            rec("server", "s2", host="h1"),
            rec("server", "s3", host="h1"),
            rec("server", "s4", host="h2"),
            rec("server", "s5", host="h2"),
        ],
    }
    assert matching("server_group", "[{type: colocated, on: host}]", records) == ["together"]


def test_colocated_services_by_name_pattern():
    records = {
        "server": [
            rec("server", "web-1", host="h1"),
            rec("server", "web-2", host="h1"),
            rec("server", "db-1", host="h1"),
            rec("server", "db-2", host="h2"),
        ]
    }
    filters = "[{type: colocated, group_by: name, pattern: '^(.+)-\\d+$', on: host}]"
    assert matching("server", filters, records) == ["web-1", "web-2"]


def test_colocated_never_matches_where_there_is_only_one_place():
    records = {
        "server_group": [rec("server_group", "g", members=["s1", "s2"])],
        "server": [
            rec("server", "s1", availability_zone="nova"),
            rec("server", "s2", availability_zone="nova"),
        ],
    }
    assert matching("server_group", "[{type: colocated, on: availability_zone}]", records) == []


def test_peers_counts_resources_sharing_field_values():
    agents = [
        rec("network_agent", "dhcp1", agent_type="DHCP agent", alive=True),
        rec("network_agent", "dhcp2", agent_type="DHCP agent", alive=False),
        rec("network_agent", "l3a", agent_type="L3 agent", alive=True),
        rec("network_agent", "l3b", agent_type="L3 agent", alive=True),
    ]
    filters = "[{type: peers, group_by: [agent_type], filters: [{alive: true}], count: 2}]"
    assert matching("network_agent", filters, {"network_agent": agents}) == ["dhcp1", "dhcp2"]


def test_imbalance_flags_the_largest_group():
    services = [rec("compute_service", f"a{i}", zone="az1") for i in range(4)]
    services += [rec("compute_service", "b1", zone="az2"), rec("compute_service", "b2", zone="az2")]
    records = {"compute_service": services}
    assert matching(
        "compute_service", "[{type: imbalance, field: zone, max_ratio: 1.5}]", records
    ) == [
        "a0",
        "a1",
        "a2",
        "a3",
    ]
    assert (
        matching("compute_service", "[{type: imbalance, field: zone, max_ratio: 2}]", records) == []
    )


def add_samples(store, rid: str, values: list[float], days_ago: float = 1.0) -> None:
    start = (NOW - timedelta(days=days_ago)).timestamp()
    record_samples(
        store,
        [
            Sample("c", "r", "server", rid, "cpu_util", start + i * 3600, value)
            for i, value in enumerate(values)
        ],
    )


def test_metric_mean_below_threshold_matches(store):
    add_samples(store, "idle", [0.5, 1.0, 0.8])
    add_samples(store, "busy", [40.0, 60.0, 55.0])
    records = {"server": [rec("server", "idle"), rec("server", "busy")]}
    filters = "[{type: metric, metric: cpu_util, window: 14d, op: lt, value: 2}]"
    assert matching("server", filters, records, store) == ["idle"]


def test_metric_without_data_never_matches_whatever_the_operator(store):
    records = {"server": [rec("server", "silent")]}
    below = "[{type: metric, metric: cpu_util, window: 14d, op: lt, value: 2}]"
    above = "[{type: metric, metric: cpu_util, window: 14d, op: ge, value: 2}]"
    assert matching("server", below, records, store) == []
    assert matching("server", above, records, store) == []


def test_metric_needs_min_samples_and_only_reads_the_window(store):
    add_samples(store, "few", [0.1, 0.1])
    add_samples(store, "old", [0.1] * 20, days_ago=30)
    records = {"server": [rec("server", "few"), rec("server", "old")]}
    filters = "[{type: metric, metric: cpu_util, window: 7d, op: lt, value: 2, min_samples: 3}]"
    assert matching("server", filters, records, store) == []


def test_metric_aggregates_max_min_last(store):
    add_samples(store, "s", [1.0, 90.0, 5.0])
    records = {"server": [rec("server", "s")]}

    def agg(aggregate: str, op: str, value: float) -> list[str]:
        filters = (
            f"[{{type: metric, metric: cpu_util, aggregate: {aggregate}, window: 2d, "
            f"op: {op}, value: {value}}}]"
        )
        return matching("server", filters, records, store)

    assert agg("max", "ge", 90) == ["s"]
    assert agg("min", "le", 1) == ["s"]
    assert agg("last", "eq", 5) == ["s"]
    assert agg("last", "gt", 5) == []


def test_in_and_not_in_on_a_list_field_do_not_fail():
    records = {"server": [rec("server", "a", tags=["x"]), rec("server", "b", tags=None)]}
    assert matching("server", "[{type: value, key: tags, op: in, value: [x]}]", records) == []
    not_in = "[{type: value, key: tags, op: not-in, value: [x]}]"
    assert matching("server", not_in, records) == ["a", "b"]


@pytest.mark.parametrize(
    "filters",
    [
        "[{key_name: '4'}]",
        "[{locked: true}]",
        "[{status: absent}]",
        "[{type: value, key: status, op: in, value: [ACTIVE, ERROR]}]",
        "[{status: ACTIVE}, {key_name: '4'}]",
    ],
)
def test_whole_kind_lookups_match_exactly_what_testing_each_record_matches(filters):
    from stackfleet.engine.evaluate import evaluate_policy

    records = [
        rec("server", "int", key_name=4, status="ACTIVE", locked=True),
        rec("server", "text", key_name="4", status="ERROR", locked=1),
        rec("server", "float", key_name=4.0, status=None, locked=False),
        rec("server", "list", key_name=[4], status="ACTIVE", locked=None),
    ]
    [policy] = load_text(f"policies:\n  - name: t\n    resource: server\n    filters: {filters}\n")
    view = FleetView(None, NOW)
    view.add_records("server", records)
    indexed = sorted(r["id"] for r in evaluate_policy(policy, view).matches)
    assert indexed == matching("server", filters, {"server": records})


@pytest.mark.parametrize(
    "filters",
    [
        "[{status: ACTIVE}, {key_name: '4'}]",
        "[{status: ACTIVE}, {type: value, key: key_name, op: ne, value: '4'}]",
        "[{status: ACTIVE}, {locked: true}]",
        "[{status: ACTIVE}, {locked: absent}]",
        "[{status: ACTIVE}, {type: value, key: vcpus, op: gt, value: 1}]",
        "[{status: ACTIVE}, {type: value, key: vcpus, op: le, value: 4}]",
        "[{status: ACTIVE}, {type: value, key: key_name, op: regex, value: '^4'}]",
        "[{status: ACTIVE}, {type: value, key: key_name, op: not-regex, value: '^4'}]",
    ],
)
def test_inline_selection_matches_exactly_what_testing_each_record_matches(filters):
    from stackfleet.engine.evaluate import evaluate_policy

    records = [
        rec("server", "int", key_name=4, status="ACTIVE", locked=True, vcpus=4),
        rec("server", "text", key_name="4", status="ACTIVE", locked=1, vcpus=True),
        rec("server", "float", key_name=4.0, status="ACTIVE", locked=False, vcpus=2.5),
        rec("server", "list", key_name=[4], status="ACTIVE", locked=None, vcpus="8"),
        rec("server", "none", key_name=None, status="ACTIVE", vcpus=None),
    ]
    [policy] = load_text(f"policies:\n  - name: t\n    resource: server\n    filters: {filters}\n")
    view = FleetView(None, NOW)
    view.add_records("server", records)
    selected = sorted(r["id"] for r in evaluate_policy(policy, view).matches)
    assert selected == matching("server", filters, {"server": records})


# --- Evaluation from columns and indexes -------------------------------------------
# A run answers whole-kind filters from per-field columns and shared indexes (by record
# position, at C speed when the types in a column allow). Whatever path it takes, it
# must keep exactly the records, in the order, that testing each record keeps.


def _uniform_servers() -> list[dict[str, Any]]:
    """One type per field (the fast paths): texts, integers, lists, mappings."""
    statuses = ["ACTIVE", "SHUTOFF", "ERROR"]
    return [
        rec(
            "server",
            f"u{i}",
            status=statuses[i % 3],
            vcpus=[1, 2, 4, 8][i % 4],
            key_name=["k1", "k2"][i % 2],
            name=f"p{i % 4}-web-{i}",
            tags=[["prod"], [], ["dev", "prod"]][i % 3],
            metadata=[{"owner": "x@y"}, {}, {"owner": "z"}][i % 3],
            created=f"2025-{i % 12 + 1:02d}-01T00:00:00Z",
            locked=i % 5 == 0,
        )
        for i in range(24)
    ]


def _mixed_servers() -> list[dict[str, Any]]:
    """Every field holding values of several types, missing and null (the slow paths)."""
    odd: list[Any] = ["ACTIVE", "4", 4, 4.0, True, None, [4], {"a": 1}, "", "SHUTOFF"]
    times: list[Any] = ["2025-01-01T00:00:00Z", None, "not a time", 1700000000, ""]
    records = []
    for i in range(30):
        fields: dict[str, Any] = {
            "status": odd[i % len(odd)],
            "vcpus": odd[(i + 3) % len(odd)],
            "key_name": odd[(i + 5) % len(odd)],
            "tags": [["prod"], [], None, "prod-x", {"prod": 1}, [4]][i % 6],
            "metadata": [{"owner": "x@y"}, {}, None, "text", {"owner": None}, {"owner": 4}][i % 6],
            "created": times[i % len(times)],
            "locked": odd[(i + 7) % len(odd)],
        }
        if i % 7 == 0:
            del fields["key_name"]  # a record without the field at all
        records.append(rec("server", f"m{i}", **fields))
    return records


COLUMN_FILTERS = [
    "[{status: ACTIVE}]",
    "[{status: '4'}]",
    "[{status: null}]",
    "[{status: true}]",
    "[{type: value, key: status, op: eq, value: 4}]",
    "[{type: value, key: status, op: ne, value: ACTIVE}]",
    "[{type: value, key: status, op: in, value: [ACTIVE, '4']}]",
    "[{type: value, key: status, op: in, value: [4, true]}]",
    "[{type: value, key: status, op: not-in, value: [ACTIVE, ERROR]}]",
    "[{type: value, key: status, op: regex, value: '^(S|4)'}]",
    "[{type: value, key: status, op: not-regex, value: 'IVE$'}]",
    "[{type: value, key: status, op: contains, value: 'CT'}]",
    "[{type: value, key: status, op: gt, value: 'B'}]",
    "[{status: absent}]",
    "[{status: present}]",
    "[{status: empty}]",
    "[{status: not-empty}]",
    "[{type: value, key: vcpus, op: gt, value: 2}]",
    "[{type: value, key: vcpus, op: le, value: 4}]",
    "[{type: value, key: vcpus, op: eq, value: 8}]",
    "[{type: value, key: vcpus, op: ne, value: 4}]",
    "[{type: value, key: vcpus, op: in, value: [1, 8]}]",
    "[{key_name: '4'}]",
    "[{key_name: absent}]",
    "[{type: value, key: key_name, op: ne, value: k1}]",
    "[{locked: true}]",
    "[{type: value, key: tags, op: contains, value: prod}]",
    "[{type: value, key: tags, op: not-contains, value: prod}]",
    "[{type: value, key: tags, op: contains, value: 4}]",
    "[{tags: empty}]",
    "[{metadata.owner: absent}]",
    "[{metadata.owner: present}]",
    "[{metadata.owner: x@y}]",
    "[{type: value, key: metadata.owner, op: regex, value: '^x'}]",
    "[{type: value, key: name, op: regex, value: '^p1-web'}]",
    "[{type: value, key: status, op: eq, value: active, ignore_case: true}]",
    "[{or: [{status: SHUTOFF}, {status: ERROR}]}]",
    "[{or: [{status: SHUTOFF}, {type: value, key: vcpus, op: ge, value: 8}]}]",
    "[{not: [{status: ACTIVE}]}]",
    "[{not: [{type: value, key: vcpus, op: gt, value: 2}]}]",
    "[{not: [{status: ACTIVE}, {locked: true}]}]",
    "[{and: [{status: ACTIVE}, {locked: true}]}]",
    "[{status: ACTIVE}, {type: value, key: vcpus, op: ge, value: 4}]",
    "[{status: ACTIVE}, {type: value, key: status, op: ne, value: '4'}]",
    "[{type: value, key: vcpus, op: gt, value: 1}, {or: [{key_name: k2}, {tags: empty}]}]",
    "[{status: SHUTOFF}, {not: {key_name: absent}}]",
    "[{type: age, field: created, older_than: 200d}]",
    "[{type: age, field: created, newer_than: 200d}]",
    "[{type: age, field: created, older_than: 100d, newer_than: 300d}]",
    "[{type: age, field: first_seen, older_than: 30d}]",
    "[{status: ACTIVE}, {type: age, field: created, older_than: 200d}]",
    "[{or: [{type: age, field: created, older_than: 300d}, {status: ERROR}]}]",
]


@pytest.mark.parametrize(
    "records", [_uniform_servers(), _mixed_servers()], ids=["uniform", "mixed"]
)
@pytest.mark.parametrize("filters", COLUMN_FILTERS)
def test_a_run_keeps_exactly_the_records_and_order_that_testing_each_record_keeps(filters, records):
    from stackfleet.engine.evaluate import evaluate_policy, prepare

    [policy] = load_text(f"policies:\n  - name: t\n    resource: server\n    filters: {filters}\n")
    expected_view = FleetView(None, NOW)
    expected_view.add_records("server", records)
    predicate = compile_all(policy.filters, expected_view)
    expected = [r["id"] for r in records if predicate(r)]
    # a fresh view (columns read one by one), the same view again (now with shared
    # indexes), and a view whose columns were read together beforehand
    fresh = FleetView(None, NOW)
    fresh.add_records("server", records)
    first = [r["id"] for r in evaluate_policy(policy, fresh).matches]
    again = [r["id"] for r in evaluate_policy(policy, fresh).matches]
    prepared = FleetView(None, NOW)
    prepared.add_records("server", records)
    prepare([policy], prepared)
    together = [r["id"] for r in evaluate_policy(policy, prepared).matches]
    assert first == expected
    assert again == expected
    assert together == expected


def test_an_event_run_over_a_few_resources_matches_as_a_whole_run_does():
    from stackfleet.engine.evaluate import evaluate_policy

    records = _mixed_servers()
    view = FleetView(None, NOW)
    view.add_records("server", records)
    for filters in COLUMN_FILTERS:
        [policy] = load_text(
            f"policies:\n  - name: t\n    resource: server\n    filters: {filters}\n"
        )
        whole = {r["id"] for r in evaluate_policy(policy, view).matches}
        some = {("c", "r", r["id"]) for r in records[::3]}
        only = {r["id"] for r in evaluate_policy(policy, view, some).matches}
        assert only == {i for i in whole if ("c", "r", i) in some}, filters


def test_prefetched_columns_equal_the_fields_read_one_by_one():
    records = _mixed_servers()
    del records[3]["status"]  # one record without a field: no shortcut may invent it
    together = FleetView(None, NOW)
    together.add_records("server", records)
    together.prefetch("server", ["status", "vcpus", "tags", "created"])
    alone = FleetView(None, NOW)
    alone.add_records("server", records)
    for field in ("status", "vcpus", "tags", "created", "metadata.owner"):
        assert together.column("server", field) == alone.column("server", field)
        assert together.column_types("server", field) == alone.column_types("server", field)
    complete = _uniform_servers()
    view = FleetView(None, NOW)
    view.add_records("server", complete)
    view.prefetch("server", ["status", "vcpus"])
    assert view.column("server", "vcpus") == [r["vcpus"] for r in complete]


def test_relations_across_regions_and_clouds_only_join_within_a_region():
    # the same image id in two regions (and a second cloud) is three different images
    records = {
        "image": [
            rec("image", "img", region="r1"),
            rec("image", "img", region="r2"),
            rec("image", "img", cloud="c2", region="r1"),
        ],
        "server": [
            rec("server", "s1", image_id="img", region="r1"),
            rec("server", "s2", image_id="img", region="r3"),
        ],
    }
    found = matching("server", "[{type: relation, relation: image, absent: true}]", records)
    assert found == ["s2"]
    unused = matching("image", "[{type: relation, relation: servers, absent: true}]", records)
    assert unused == ["img", "img"]  # r2 and c2/r1
    # the same, each kind in one region: the index comes from the value index
    one_region = {"image": records["image"][:1], "server": records["server"][:1]}
    assert matching("server", "[{type: relation, relation: image, absent: true}]", one_region) == []


def test_records_given_again_for_a_kind_replace_what_was_read_from_the_old_ones():
    from stackfleet.engine.evaluate import evaluate_policy

    [policy] = load_text(
        "policies:\n  - name: t\n    resource: server\n    filters: [{status: ERROR}]\n"
    )
    view = FleetView(None, NOW)
    view.add_records("server", [rec("server", "a", status="ERROR")])
    assert [r["id"] for r in evaluate_policy(policy, view).matches] == ["a"]
    evaluate_policy(policy, view)  # the second ask builds the shared index
    view.add_records("server", [rec("server", "b", status="ERROR"), rec("server", "c")])
    assert [r["id"] for r in evaluate_policy(policy, view).matches] == ["b"]


SENSORS = [
    rec("temperature_sensor", "cool", celsius=40.0, upper_noncritical=80.0, upper_critical=95.0),
    rec("temperature_sensor", "warm", celsius=85.0, upper_noncritical=80.0, upper_critical=95.0),
    rec("temperature_sensor", "hot", celsius=95.0, upper_noncritical=80.0, upper_critical=95.0),
    rec("temperature_sensor", "unknown", celsius=99.0, upper_noncritical=None, upper_critical=None),
]


def test_value_from_compares_with_another_field_of_the_same_record():
    records = {"temperature_sensor": SENSORS}
    above = "[{type: value, key: celsius, op: gt, value_from: upper_noncritical}]"
    assert matching("temperature_sensor", above, records) == ["hot", "warm"]
    at_critical = "[{type: value, key: celsius, op: ge, value_from: upper_critical}]"
    assert matching("temperature_sensor", at_critical, records) == ["hot"]
    # a missing limit matches no operator, not even its `not`-looking opposite
    below = "[{type: value, key: celsius, op: le, value_from: upper_noncritical}]"
    assert matching("temperature_sensor", below, records) == ["cool"]


def test_escalate_gives_each_finding_the_severity_of_its_reading():
    [policy] = load_text(
        """
policies:
  - name: hot
    resource: temperature_sensor
    severity: warning
    filters: [{type: value, key: celsius, op: gt, value_from: upper_noncritical}]
    escalate:
      - severity: critical
        filters: [{type: value, key: celsius, op: ge, value_from: upper_critical}]
"""
    )
    severity_of = policy.severity_rule(FleetView(None, NOW))
    assert severity_of is not None
    by_id = {r["id"]: r for r in SENSORS}
    assert (severity_of(by_id["warm"]), severity_of(by_id["hot"])) == ("warning", "critical")
