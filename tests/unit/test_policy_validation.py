"""Policy files are validated before anything runs: every problem names the file, the
line and the field, and says what is allowed."""

from __future__ import annotations

import pytest
from support import run_cli

from stackfleet.policy import PolicyError, load_files, load_text


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_text(text, "p.yaml")
    return [str(p) for p in caught.value.problems]


def test_a_valid_file_gives_every_policy_bound_to_its_kind():
    policies = load_text(
        """
policies:
  - name: shutoff
    resource: server
    filters: [{status: SHUTOFF}]
    actions: [stop]
  - name: fips
    resource: floating_ip
    filters: [{type: relation, relation: port, absent: true}]
    actions: [release]
"""
    )
    assert [(p.name, p.kind, [a.type for a in p.actions]) for p in policies] == [
        ("shutoff", "server", ["stop"]),
        ("fips", "floating_ip", ["release"]),
    ]


def test_unknown_filter_type_names_file_line_and_the_known_types():
    [problem] = problems(
        """policies:
  - name: x
    resource: server
    filters:
      - type: vlaue
        key: status
"""
    )
    assert problem.startswith("p.yaml:5: policy 'x' filters[0].type: unknown filter type 'vlaue'")
    assert "value" in problem and "relation" in problem


def test_unknown_resource_kind_lists_the_kinds():
    [problem] = problems("policies:\n  - name: x\n    resource: servr\n")
    assert "p.yaml:3:" in problem
    assert "unknown resource kind 'servr'" in problem
    assert "floating_ip" in problem


def test_unknown_option_lists_the_options_allowed():
    [problem] = problems(
        """policies:
  - name: x
    resource: server
    filters:
      - type: age
        field: created
        older: 30d
"""
    )
    assert problem.startswith("p.yaml:7: policy 'x' filters[0].older: unknown option 'older'")
    assert "older_than" in problem and "newer_than" in problem


def test_a_value_of_the_wrong_type_names_the_field_and_its_type():
    [problem] = problems(
        """policies:
  - name: x
    resource: server
    filters:
      - type: value
        key: vcpus
        op: gt
        value: four
"""
    )
    assert "p.yaml:8:" in problem
    assert "'vcpus' is an integer; got 'four'" in problem


def test_a_field_the_kind_does_not_have_lists_its_fields():
    [problem] = problems(
        "policies:\n  - name: x\n    resource: volume\n    filters: [{vcpus: 2}]\n"
    )
    assert "volume has no field 'vcpus'" in problem
    assert "attached_server_ids" in problem


def test_an_operator_not_allowed_lists_the_allowed_ones():
    [problem] = problems(
        """policies:
  - name: x
    resource: server
    filters:
      - {type: value, key: status, op: equals, value: ACTIVE}
"""
    )
    assert "'equals' is not allowed; allowed: eq, ne, lt" in problem


def test_an_action_not_valid_for_the_kind_says_where_it_applies():
    [problem] = problems("policies:\n  - name: x\n    resource: server\n    actions: [release]\n")
    assert "p.yaml:4:" in problem
    assert "action 'release' is not valid for server; it applies to floating_ip" in problem
    assert "stop" in problem


def test_malformed_yaml_is_reported_with_its_line():
    [problem] = problems("policies:\n  - name: x\n    resource: [server\n")
    assert problem.startswith("p.yaml:")
    assert "not valid YAML" in problem


def test_a_key_given_twice_is_an_error_naming_both_lines():
    [problem] = problems("policies:\n  - name: x\n    resource: server\n    resource: volume\n")
    assert "p.yaml:4:" in problem
    assert "duplicate key 'resource' (first on line 3)" in problem


def test_on_is_a_key_not_a_yaml_boolean():
    [policy] = load_text(
        """policies:
  - name: x
    resource: server_group
    filters: [{type: colocated, on: availability_zone}]
"""
    )
    assert policy.filters[0].on == "availability_zone"  # type: ignore[attr-defined]


def test_an_invalid_regular_expression_is_reported():
    [problem] = problems(
        "policies:\n  - name: x\n    resource: server\n"
        "    filters: [{type: value, key: name, op: regex, value: '(['}]\n"
    )
    assert "not a valid regular expression" in problem


def test_a_duration_needs_a_unit():
    [problem] = problems(
        "policies:\n  - name: x\n    resource: server\n"
        "    filters: [{type: age, field: created, older_than: 30}]\n"
    )
    assert "give a duration with a unit, e.g. '30d'" in problem


def test_problems_inside_nested_filters_are_located():
    [problem] = problems(
        """policies:
  - name: x
    resource: server
    filters:
      - type: relation
        relation: hypervisor
        filters:
          - type: relation
            relation: compute_service
            filters: [{stat: down}]
"""
    )
    assert problem.startswith(
        "p.yaml:10: policy 'x' filters[0].filters[0].filters[0].key: "
        "compute_service has no field 'stat'"
    )


def test_short_form_boolean_children_are_located_under_their_key():
    [problem] = problems(
        "policies:\n  - name: x\n    resource: server\n    filters:\n      - or:\n"
        "          - {status: SHUTOFF}\n          - {type: nope}\n"
    )
    assert "filters[0].or[1].type: unknown filter type 'nope'" in problem


def test_lifecycle_cancel_when_filters_are_validated_for_the_kind():
    [problem] = problems(
        """policies:
  - name: x
    resource: volume
    actions:
      - type: lifecycle
        cancel_when: [{type: relation, relation: port}]
"""
    )
    assert "actions[0].cancel_when[0].relation: volume has no relation 'port'" in problem


def test_every_problem_of_every_policy_is_reported_and_none_loaded(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("policies:\n  - name: ok\n    resource: server\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "policies:\n  - name: ok\n    resource: server\n"
        "  - name: Bad Name\n    resource: server\n    safety: {max_percent: 200}\n"
    )
    with pytest.raises(PolicyError) as caught:
        load_files([good, bad])
    text = str(caught.value)
    assert "nothing was run" in text
    assert "is not a valid name" in text
    assert "max_percent: input should be less than or equal to 100" in text
    assert "policy name 'ok' is used twice" in text


def test_filter_and_action_problems_are_reported_beside_a_bad_safety_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "policies:\n  - name: x\n    resource: server\n"
        "    filters:\n      - {type: age, field: created, older_than: lots}\n"
        "    actions: [explode]\n"
        "    safety: {max_actions_per_run: 3}\n"
    )
    with pytest.raises(PolicyError) as caught:
        load_files([bad])
    text = str(caught.value)
    assert "bad.yaml:7: policy 'x' safety.max_actions_per_run: unknown key" in text
    assert "bad.yaml:5: policy 'x' filters[0].older_than: 'lots' is not a duration" in text
    assert "bad.yaml:6: policy 'x' actions[0].type: unknown action 'explode'" in text


def test_the_built_in_packs_are_valid():
    policies = load_files(["pack:waste", "pack:security", "pack:ha"])
    assert {"shutoff-servers", "ssh-open-to-world", "servers-on-down-hosts"} <= {
        p.name for p in policies
    }


def test_policy_validate_exits_non_zero_naming_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("policies:\n  - name: x\n    resource: server\n    filters: [{type: nope}]\n")
    result = run_cli("policy", "validate", str(path))
    assert result.code == 2
    assert f"{path}:4: policy 'x' filters[0].type: unknown filter type 'nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_policy_validate_accepts_a_valid_file(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(
        "policies:\n  - name: x\n    resource: server\n    filters: [{status: ERROR}]\n"
    )
    result = run_cli("policy", "validate", str(path))
    assert result.code == 0, result.stderr
    assert "1 valid policy" in result.stdout


def test_an_invalid_file_runs_nothing(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "policies:\n  - name: good\n    resource: server\n    actions: [stop]\n"
        "  - name: bad\n    resource: server\n    actions: [explode]\n"
    )
    db = tmp_path / "s.db"
    result = run_cli("--db-url", f"sqlite:///{db}", "policy", "run", str(path), "--execute")
    assert result.code == 2
    assert "unknown action 'explode'" in result.stderr
    assert not db.exists()


def test_value_from_names_a_field_of_the_kind_and_takes_no_value():
    found = problems(
        """policies:
  - name: x
    resource: temperature_sensor
    filters:
      - {type: value, key: celsius, op: gt, value_from: upper_critcal}
      - {type: value, key: celsius, op: in, value_from: upper_critical, value: 3}
"""
    )
    assert any(
        "filters[0].value_from: temperature_sensor has no field 'upper_critcal'" in p for p in found
    )
    assert any("filters[1].op: with value_from, op is one of" in p for p in found)
    assert any("filters[1].value: give either value or value_from" in p for p in found)


def test_escalate_filters_are_checked_like_filters():
    [problem] = problems(
        """policies:
  - name: x
    resource: bmc
    filters: [{health: Warning}]
    escalate:
      - severity: critical
        filters: [{helth: Critical}]
"""
    )
    assert problem.startswith("p.yaml:7: policy 'x' escalate[0].filters[0].key: bmc has no field")
