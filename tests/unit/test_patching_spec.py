"""Campaign specs are checked before anything starts: each problem names the file, the
line and the field, with the closest allowed choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackfleet.patching.planning import HostInfo, batches_of, check_spec, select_hosts
from stackfleet.patching.spec import CampaignError, load_spec, parse_spec

GOOD = """\
campaign:
  name: nova-ratio
  cloud: sim
  targets:
    hosts: {names: [cmp0002, cmp0003]}
    services: [nova-compute]
  steps:
    apply:
      - config: {file: /etc/nova/nova.conf, set: {DEFAULT: {cpu_allocation_ratio: 4.0}}}
  rollout: {canary_hosts: 1, batch_size: 2}
"""

HOSTS = {
    name: HostInfo(name, "az1" if i % 2 else "az2", ["nova-compute"], ["ssd"] if i < 3 else [])
    for i, name in enumerate(["cmp0001", "cmp0002", "cmp0003", "cmp0004", "ctl0001"])
}
HOSTS["ctl0001"] = HostInfo("ctl0001", None, ["nova-conductor", "nova-scheduler"])


def problems_of(text: str) -> list[str]:
    with pytest.raises(CampaignError) as caught:
        parse_spec(text, "c.yaml")
    return [str(p) for p in caught.value.problems]


def test_a_valid_spec_parses_with_its_defaults():
    loaded = parse_spec(GOOD, "c.yaml")
    spec = loaded.spec
    assert spec.steps.drain.enabled and spec.steps.undrain
    assert spec.steps.apply[0].config is not None
    assert spec.steps.apply[0].config.set == {"DEFAULT": {"cpu_allocation_ratio": "4.0"}}


def test_an_unknown_key_names_file_line_field_and_the_closest_key():
    text = GOOD.replace("  rollout:", "  rolout:")
    [problem] = problems_of(text)
    assert problem.startswith("c.yaml:10: campaign.rolout: unknown key 'rolout'")
    assert "did you mean 'rollout'?" in problem


def test_an_apply_item_is_exactly_one_kind_of_change():
    text = GOOD.replace(
        "      - config: {file", "      - command: apt-get -y upgrade\n        config: {file"
    )
    [problem] = problems_of(text)
    assert "c.yaml:9" in problem
    assert "exactly one of playbook, command, config, packages" in problem


def test_a_batch_size_is_a_count_or_a_percentage():
    [problem] = problems_of(GOOD.replace("batch_size: 2", "batch_size: lots"))
    assert "campaign.rollout.batch_size" in problem and "percentage" in problem


def test_a_spec_without_services_is_refused():
    [problem] = problems_of(GOOD.replace("    services: [nova-compute]\n", ""))
    assert "campaign.targets.services" in problem and "missing" in problem


def test_unknown_hosts_are_named_with_the_closest_known_ones():
    loaded = parse_spec(GOOD.replace("cmp0003]", "cmp003]"), "c.yaml")
    chosen, problems = select_hosts(loaded, HOSTS)
    assert chosen == ["cmp0002"]
    [problem] = [str(p) for p in problems]
    assert problem.startswith("c.yaml:5: campaign.targets.hosts.names[1]: unknown host 'cmp003'")
    assert "did you mean cmp0003" in problem


def test_hosts_are_chosen_by_role_zone_and_aggregate():
    text = GOOD.replace(
        "hosts: {names: [cmp0002, cmp0003]}",
        "hosts: {roles: [compute], availability_zones: [az1], aggregates: [ssd]}",
    )
    chosen, problems = select_hosts(parse_spec(text, "c.yaml"), HOSTS)
    assert problems == []
    assert chosen == ["cmp0002"]  # az1 (odd index) and ssd (index < 3)


def test_an_unknown_availability_zone_is_a_problem():
    text = GOOD.replace("hosts: {names: [cmp0002, cmp0003]}", "hosts: {availability_zones: [az9]}")
    _, problems = select_hosts(parse_spec(text, "c.yaml"), HOSTS)
    assert any("unknown availability zone 'az9'" in str(p) for p in problems)


def test_canary_hosts_go_alone_first_then_batches_of_a_percentage():
    text = GOOD.replace("batch_size: 2", "batch_size: 50%")
    spec = parse_spec(text, "c.yaml").spec
    assert batches_of(spec, ["a", "b", "c", "d", "e"]) == [["a"], ["b", "c"], ["d", "e"]]


def test_an_unknown_service_is_named_with_the_closest_one():
    loaded = parse_spec(GOOD.replace("[nova-compute]", "[nova-compte]"), "c.yaml")
    [problem] = [str(p) for p in check_spec(loaded, datetime.now(UTC))]
    assert "campaign.targets.services[0]: unknown service 'nova-compte'" in problem
    assert "did you mean nova-compute" in problem


def test_a_closed_window_stops_the_campaign_before_it_starts():
    ended = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    loaded = parse_spec(GOOD + f"  window: {{end: '{ended}'}}\n", "c.yaml")
    [problem] = [str(p) for p in check_spec(loaded, datetime.now(UTC))]
    assert "campaign.window" in problem and "closed" in problem


def test_a_missing_playbook_is_a_problem(tmp_path: Path):
    spec = tmp_path / "c.yaml"
    spec.write_text(GOOD.replace("      - config:", "      - playbook: patch.yml\n      - config:"))
    [problem] = [str(p) for p in check_spec(load_spec(spec), datetime.now(UTC))]
    assert "campaign.steps.apply[0].playbook" in problem and "does not exist" in problem


def test_a_playbook_failing_its_syntax_check_is_a_problem(tmp_path: Path):
    pytest.importorskip("ansible_runner")
    (tmp_path / "patch.yml").write_text("- hosts: all\n  tasks:\n    - no_such_module_x: {}\n")
    spec = tmp_path / "c.yaml"
    spec.write_text(GOOD.replace("      - config:", "      - playbook: patch.yml\n      - config:"))
    [problem] = [str(p) for p in check_spec(load_spec(spec), datetime.now(UTC))]
    assert "c.yaml:9: campaign.steps.apply[0].playbook" in problem
    assert "syntax-check failed" in problem


def test_a_playbook_passing_its_syntax_check_is_accepted(tmp_path: Path):
    pytest.importorskip("ansible_runner")
    (tmp_path / "patch.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n"
    )
    spec = tmp_path / "c.yaml"
    spec.write_text(GOOD.replace("      - config:", "      - playbook: patch.yml\n      - config:"))
    assert check_spec(load_spec(spec), datetime.now(UTC)) == []


def test_members_of_one_anti_affinity_group_are_never_migrated_together():
    from stackfleet.patching.drain import spread_groups

    servers = [{"id": i} for i in ("a", "b", "c", "d")]
    groups = {"a": {"g1"}, "b": {"g1"}, "c": {"g2"}, "d": {"g1", "g2"}}
    waves = spread_groups(servers, groups)
    assert [[s["id"] for s in wave] for wave in waves] == [["a", "c"], ["b"], ["d"]]


INSTANCES = """\
campaign:
  name: web-image
  cloud: sim
  targets:
    instances: {tags: [web]}
  steps:
    apply:
      - image: ubuntu-24.04
"""


def test_an_instance_campaign_rebuilds_onto_one_image():
    spec = parse_spec(INSTANCES, "c.yaml").spec
    assert spec.targets.instances is not None and spec.targets.instances.tags == ["web"]
    assert spec.steps.apply[0].image == "ubuntu-24.04"
    assert spec.steps.rebuild.snapshot  # a snapshot first, by default


def test_an_instance_campaign_with_another_change_or_services_is_refused():
    text = INSTANCES.replace(
        "      - image: ubuntu-24.04\n",
        "      - image: ubuntu-24.04\n      - command: apt-get -y upgrade\n",
    ).replace(
        "    instances: {tags: [web]}\n", "    instances: {tags: [web]}\n    services: [nova]\n"
    )
    problems = problems_of(text)
    assert (
        "c.yaml:6: campaign.targets.services: a campaign targets hosts and services or "
        "instances, not both" in problems
    )
    assert any(
        p.startswith("c.yaml:8: campaign.steps.apply: an instance campaign's apply is one `image:`")
        for p in problems
    )


def test_an_image_change_in_a_host_campaign_names_its_field():
    text = GOOD.replace("      - config:", "      - image: cirros\n      - config:")
    [problem] = problems_of(text)
    assert problem.startswith(
        "c.yaml:9: campaign.steps.apply[0].image: an image change patches servers"
    )


def test_an_instance_selector_with_no_condition_is_refused():
    [problem] = problems_of(INSTANCES.replace("{tags: [web]}", "{}"))
    assert "campaign.targets.instances: give at least one of names, tags" in problem
