"""Cloud Custodian's policy language as StackFleet reads it: each operator alias, value
sentinel and value_type means what c7n's ValueFilter says (c7n/filters/core.py), in
Custodian policies (`resource: openstack.server`) and in StackFleet's own; what cannot
be honoured is a problem naming its file and line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stackfleet.policy import PolicyError, load_text
from stackfleet.policy.filters import compile_all
from stackfleet.policy.filters.base import select_all
from stackfleet.policy.view import FleetView

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def server(id: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": id,
        "name": id,
        "project_id": "p1",
        "status": "ACTIVE",
        "cloud": "c",
        "region": "r",
        "kind": "server",
        "first_seen": NOW - timedelta(days=400),
        "last_seen": NOW,
        "last_changed": NOW,
        "metadata": {},
        "tags": [],
    }
    base.update(fields)
    return base


SERVERS = [
    server(
        "a",
        name="web-01",
        vcpus=2,
        metadata={"owner": "x@y", "port": "8080", "cidr": "10.0.0.0/24"},
        tags=["env=prod", "team=a"],
        launched_at=(NOW - timedelta(days=40)).isoformat(),
        created=(NOW - timedelta(days=41)).isoformat(),
        key_name="k1",
        locked=False,
        host="cmp1",
        addresses=["10.0.0.5"],
    ),
    server(
        "b",
        name="DB-01",
        status="SHUTOFF",
        vcpus=8,
        metadata={"owner": "", "port": "x"},
        tags=["env=dev"],
        launched_at=(NOW - timedelta(days=3)).isoformat(),
        created=(NOW - timedelta(days=3)).isoformat(),
        key_name=None,
        locked=True,
        host="cmp2",
        addresses=["192.168.1.7", "10.0.1.1"],
    ),
    server(
        "c",
        name="web-02",
        status="ERROR",
        vcpus=None,
        metadata={" Owner ": "Z"},
        tags=[],
        launched_at=None,
        created=(NOW - timedelta(days=100)).isoformat(),
        key_name="",
        locked=False,
        host=None,
        addresses=[],
    ),
]


def policy_text(filters: str, resource: str) -> str:
    return f"policies:\n  - name: t\n    resource: {resource}\n    filters: {filters}\n"


def matching(filters: str, resource: str = "openstack.server") -> list[str]:
    """Ids of SERVERS the filters match — by the per-record predicates and by the
    column/index shortcuts a run uses, which must agree."""
    [policy] = load_text(policy_text(filters, resource))
    view = FleetView(None, NOW)
    view.add_records("server", SERVERS)
    predicate = compile_all(policy.filters, view)
    by_predicate = sorted(r["id"] for r in SERVERS if predicate(r))
    records = view.records("server")
    by_select = sorted(r["id"] for r in select_all(policy.filters, view, records, True))
    assert by_predicate == by_select
    return by_predicate


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_text(text, "c7n.yaml")
    return [str(p) for p in caught.value.problems]


def test_the_two_spellings_of_absent_agree():
    short = matching("[{metadata.owner: absent}]")
    long = matching("[{type: value, key: metadata.owner, value: absent}]")
    assert short == long == ["c"]


def test_the_two_spellings_of_absent_agree_in_stackfleet_policies_too():
    short = matching("[{metadata.owner: absent}]", "server")
    long = matching("[{type: value, key: metadata.owner, value: absent}]", "server")
    assert short == long == ["c"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ("[{type: value, key: status, op: equal, value: SHUTOFF}]", ["b"]),
        ("[{type: value, key: status, op: not-equal, value: SHUTOFF}]", ["a", "c"]),
        ("[{type: value, key: vcpus, op: greater-than, value: 2}]", ["b"]),
        ("[{type: value, key: vcpus, op: gte, value: 2}]", ["a", "b"]),
        ("[{type: value, key: vcpus, op: ge, value: 8}]", ["b"]),
        ("[{type: value, key: vcpus, op: less-than, value: 8}]", ["a"]),
        ("[{type: value, key: vcpus, op: lte, value: 8}]", ["a", "b"]),
        ("[{type: value, key: vcpus, op: le, value: 2}]", ["a"]),
        ("[{type: value, key: status, op: in, value: [ERROR, SHUTOFF]}]", ["b", "c"]),
        ("[{type: value, key: status, op: ni, value: [ERROR, SHUTOFF]}]", ["a"]),
        ("[{type: value, key: status, op: not-in, value: [ERROR]}]", ["a", "b"]),
        ("[{type: value, key: tags, op: contains, value: env=dev}]", ["b"]),
        ("[{type: value, key: tags, op: intersect, value: [team=a, env=dev]}]", ["a", "b"]),
        ("[{type: value, key: tags, op: difference, value: [env=prod]}]", ["a", "b"]),
        ("[{type: value, key: name, op: glob, value: 'web-*'}]", ["a", "c"]),
        ("[{type: value, key: name, op: glob, value: 'web'}]", []),
    ],
)
def test_custodian_operator_names(filters, expected):
    assert matching(filters) == expected


def test_custodian_regex_matches_at_the_start_ignoring_case():
    # c7n: re.match(value, field, IGNORECASE)
    assert matching("[{type: value, key: name, op: regex, value: 'db'}]") == ["b"]
    assert matching("[{type: value, key: name, op: regex, value: '01'}]") == []


def test_regex_case_matches_at_the_start_with_case():
    assert matching("[{type: value, key: name, op: regex-case, value: 'db'}]") == []
    assert matching("[{type: value, key: name, op: regex-case, value: 'DB'}]") == ["b"]


def test_stackfleet_regex_still_searches_anywhere_with_case():
    assert matching("[{type: value, key: name, op: regex, value: '01'}]", "server") == ["a", "b"]


@pytest.mark.parametrize(
    ("sentinel", "expected"),
    [
        ("absent", ["b"]),  # key_name None
        ("present", ["a", "c"]),
        ("empty", ["b", "c"]),  # c7n: not truthy
        ("not-null", ["a"]),
    ],
)
def test_value_sentinels_are_the_test_whatever_the_op(sentinel, expected):
    assert matching(f"[{{type: value, key: key_name, value: {sentinel}}}]") == expected
    assert matching(f"[{{type: value, key: key_name, op: eq, value: {sentinel}}}]") == expected
    assert matching(f"[{{key_name: {sentinel}}}]") == expected


def test_custodian_empty_counts_zero_and_false_as_empty():
    assert matching("[{type: value, key: locked, value: empty}]") == ["a", "c"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ("[{type: value, key: metadata.port, value_type: integer, op: gt, value: 80}]", ["a"]),
        # unreadable as a number: 0, as in c7n
        ("[{type: value, key: metadata.port, value_type: integer, value: 0}]", ["b", "c"]),
        ("[{type: value, key: metadata.port, value_type: float, op: ge, value: 8080.0}]", ["a"]),
        ("[{type: value, key: name, value_type: normalize, value: db-01}]", ["b"]),
        ("[{type: value, key: tags, value_type: size, op: ge, value: 1}]", ["a", "b"]),
        ("[{type: value, key: tags, value_type: size, value: 0}]", ["c"]),
        ("[{type: value, key: tags, value_type: unique_size, value: 2}]", ["a"]),
        ("[{type: value, key: tags, value_type: swap, op: in, value: env=dev}]", ["b"]),
        ("[{type: value, key: metadata.cidr, value_type: cidr, op: in, value: 10.0.0.0/8}]", ["a"]),
        (
            "[{type: value, key: metadata.cidr, value_type: cidr, op: in, value: 10.0.0.9}]",
            ["a"],
        ),
        ("[{type: value, key: metadata.cidr, value_type: cidr_size, op: gt, value: 16}]", ["a"]),
    ],
)
def test_value_types(filters, expected):
    assert matching(filters) == expected


def test_value_type_age_is_days_since_the_time():
    filters = "[{type: value, key: launched_at, value_type: age, op: gt, value: 30}]"
    assert matching(filters) == ["a"]
    filters = "[{type: value, key: launched_at, value_type: age, op: lt, value: 30}]"
    assert matching(filters) == ["b"]


def test_value_type_expiration_is_days_until_the_time():
    # b was launched 3 days ago: "expires" before now + 1 day; a and b before now + 0
    filters = "[{type: value, key: created, value_type: expiration, op: lt, value: 1}]"
    assert matching(filters) == ["a", "b", "c"]
    filters = "[{type: value, key: created, value_type: expiration, op: gt, value: -10}]"
    assert matching(filters) == ["b"]


def test_age_filter_days_and_op_on_servers_reads_launched_at():
    assert matching("[{type: age, days: 30}]") == ["a"]
    assert matching("[{type: age, days: 30, op: less-than}]") == ["b"]
    assert matching("[{type: age, days: 1, hours: 12, op: gt}]") == ["a", "b"]


def test_age_filter_days_works_in_stackfleet_policies_with_a_field():
    assert matching("[{type: age, field: created, days: 50}]", "server") == ["c"]


def test_custodian_keys_map_to_stackfleet_fields():
    records = [server("x", created=(NOW - timedelta(days=60)).isoformat(), vcpus=4)]
    [policy] = load_text(
        policy_text(
            "[{type: value, key: created_at, value_type: age, op: gt, value: 30},"
            " {type: value, key: flavor.vcpus, value: 4}]",
            "openstack.server",
        )
    )
    assert [f.kind for f in policy.filters] == ["server", "server"]
    view = FleetView(None, NOW)
    view.add_records("server", records)
    assert compile_all(policy.filters, view)(records[0])


def test_boolean_blocks_nest():
    filters = "[{or: [{status: ERROR}, {not: [{type: value, key: vcpus, op: lt, value: 8}]}]}]"
    assert matching(filters) == ["b", "c"]
    assert matching("[{and: [{status: ACTIVE}, {type: value, key: locked, value: false}]}]") == [
        "a"
    ]


def test_server_tags_filter_any_and_all():
    tags = "[{key: env, value: prod}, {key: team, value: a}]"
    assert matching(f"[{{type: tags, tags: {tags}}}]") == ["a"]
    tags = "[{key: env, value: prod}, {key: env, value: dev}]"
    assert matching(f"[{{type: tags, op: any, tags: {tags}}}]") == ["a", "b"]
    assert matching(f"[{{type: tags, op: all, tags: {tags}}}]") == []


def test_custodian_resource_names_map_to_kinds():
    for resource, kind in (
        ("openstack.server", "server"),
        ("openstack.volume", "volume"),
        ("openstack.flavor", "flavor"),
        ("openstack.image", "image"),
        ("openstack.project", "project"),
        ("openstack.security-group", "security_group"),
        ("openstack.user", "user"),
        ("security-group", "security_group"),
    ):
        [policy] = load_text(f"policies:\n  - name: t\n    resource: {resource}\n")
        assert policy.kind == kind


def test_webhook_becomes_a_notify_to_the_url():
    [policy] = load_text(
        "policies:\n  - name: t\n    resource: openstack.server\n"
        "    actions:\n      - type: webhook\n        url: http://127.0.0.1:9/x\n"
    )
    [action] = policy.actions
    assert action.type == "notify"
    assert action.webhook == "http://127.0.0.1:9/x"  # type: ignore[attr-defined]
    assert action.to == []  # type: ignore[attr-defined]


def test_pull_mode_and_comments_are_accepted():
    [policy] = load_text(
        "policies:\n  - name: t\n    resource: openstack.server\n    mode: {type: pull}\n"
        "    comment: old servers\n"
    )
    assert policy.spec.description == "old servers"


TEXT_WITH_PROBLEMS = """\
policies:
  - name: secrets
    resource: openstack.secret
  - name: sg
    resource: openstack.server
    filters:
      - type: security-group
        attrs: []
      - type: value
        key: security_groups
        op: contains
        value: default
      - type: value
        key: x
        value_from: {url: 'file:///x'}
      - type: value
        key: name
        value_type: expr
        value: id
      - type: marked-for-op
      - power_state: 1
    actions:
      - type: webhook
        url: http://x
        body: resource
      - type: webhook
        url: http://x
        method: GET
"""


def test_what_cannot_be_honoured_is_named_with_file_and_line():
    found = problems(TEXT_WITH_PROBLEMS)
    expected_starts = [
        "c7n.yaml:3: policy 'secrets' resource: Custodian resource 'openstack.secret'",
        "c7n.yaml:7: policy 'sg' filters[0].type: c7n's 'security-group' filter",
        "c7n.yaml:10: policy 'sg' filters[1].key: key 'security_groups' cannot be compared",
        "c7n.yaml:15: policy 'sg' filters[2].value_from: c7n option 'value_from'",
        "c7n.yaml:18: policy 'sg' filters[3].value_type: value_type 'expr'",
        "c7n.yaml:20: policy 'sg' filters[4].type: unknown filter type 'marked-for-op'",
        "c7n.yaml:21: policy 'sg' filters[5]: key 'power_state' cannot be compared",
        "c7n.yaml:25: policy 'sg' actions[0].body: webhook option 'body' is not supported",
        "c7n.yaml:28: policy 'sg' actions[1].method: StackFleet's webhook always POSTs",
    ]
    assert len(found) == len(expected_starts), found
    for line, start in zip(found, expected_starts, strict=True):
        assert line.startswith(start), line


def test_an_unknown_custodian_resource_lists_the_ones_that_run():
    [message] = problems("policies:\n  - name: t\n    resource: openstack.loadbalancer\n")
    assert "c7n.yaml:3" in message
    assert "openstack.server" in message
