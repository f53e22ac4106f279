"""The Ansible side of patching, for real: ansible-runner runs playbooks and ad-hoc
modules against localhost (`ansible_connection=local`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stackfleet.patching.connectors import AnsibleConnector, ConnectorSpec, LocalConnector

pytest.importorskip("ansible_runner")

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: write the motd
      ansible.builtin.copy:
        dest: "{{ stackfleet_host_root }}/etc/motd"
        content: "{{ message }}\\n"
"""

FAILING = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: refuse
      ansible.builtin.fail:
        msg: boom from the playbook
"""


def test_a_playbook_runs_against_a_local_host(tmp_path: Path):
    (tmp_path / "hosts" / "cmp1" / "etc").mkdir(parents=True)
    playbook = tmp_path / "motd.yml"
    playbook.write_text(PLAYBOOK)
    connector = LocalConnector(ConnectorSpec(type="local", root=str(tmp_path / "hosts")))
    result = connector.run_playbook("cmp1", str(playbook), {"message": "patched"})
    assert result.ok, result.stderr
    assert (tmp_path / "hosts" / "cmp1" / "etc" / "motd").read_text() == "patched\n"


def test_a_failing_playbook_says_which_task_failed(tmp_path: Path):
    playbook = tmp_path / "fail.yml"
    playbook.write_text(FAILING)
    connector = LocalConnector(ConnectorSpec(type="local", root=str(tmp_path)))
    result = connector.run_playbook("cmp1", str(playbook))
    assert not result.ok
    assert "refuse: boom from the playbook" in result.stderr


def test_the_ansible_connector_reads_writes_and_runs_through_its_inventory(tmp_path: Path):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n"
    )
    connector = AnsibleConnector(ConnectorSpec(type="ansible", inventory=str(inventory)))
    target = tmp_path / "nova.conf"
    connector.write_file("localhost", str(target), "[DEFAULT]\ndebug = true\n")
    assert target.read_text() == "[DEFAULT]\ndebug = true\n"
    assert connector.read_file("localhost", str(target)) == "[DEFAULT]\ndebug = true\n"
    assert connector.read_file("localhost", str(tmp_path / "absent.conf")) is None
    result = connector.run("localhost", "echo hello; exit 3")
    assert result.rc == 3 and result.stdout.strip() == "hello"
