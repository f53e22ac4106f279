"""The SSH connector and Ansible over SSH, against a real sshd (tests/sshd.py: a private
server on 127.0.0.1, logged into as the current user with a key made for the test).

The "host" `cmp1` is this machine reached through ssh; its service's files live in a
directory tree under the test's tmp directory standing in for /etc/nova, as in the
local connector's tests, so nothing outside the tmp directory is read or changed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sshd as private_sshd
from support import service_missing
from test_campaign_simulator import Cloud, running_cloud

from stackfleet.patching.connectors import (
    AnsibleConnector,
    ConnectorError,
    ConnectorSpec,
    SshConnector,
    connector_for,
)
from stackfleet.patching.drift import capture_and_record
from stackfleet.patching.revisions import apply_revision
from stackfleet.patching.services import ServiceDefinition
from stackfleet.patching.spec import load_spec
from stackfleet.store import Store, open_store
from stackfleet.store import patching as records
from stackfleet.store.audit import AuditLog

REMOTE_PYTHON = "/usr/bin/python3"
HOST = "cmp0002"  # a compute host of the simulator's small preset, for the campaign
NOVA_CONF = "[DEFAULT]\ndebug = false\n"

BECOME_PLAYBOOK = """\
- hosts: all
  gather_facts: false
  become: true
  tasks:
    - name: write nova.conf as root through sudo
      ansible.builtin.copy:
        dest: "{{ conf }}"
        content: "[DEFAULT]\\ndebug = true\\n"
    - name: record who ran it
      ansible.builtin.shell: 'echo "$(id -un) via sudo from ${SUDO_USER:-nobody}" > {{ who }}'
"""


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[private_sshd.Sshd]:
    reason = private_sshd.unavailable()
    if reason:
        service_missing(reason)
    server = private_sshd.start_sshd(tmp_path_factory.mktemp("sshd"), aliases=("cmp1", HOST))
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def ansible_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The "remote" host is this machine, whose root PATH has pyenv shims first: Ansible's
    interpreter discovery picks a `python3.13` shim that has no Python behind it. Pin the
    system Python as an operator would (ansible.cfg / ANSIBLE_PYTHON_INTERPRETER)."""
    monkeypatch.setenv("ANSIBLE_PYTHON_INTERPRETER", REMOTE_PYTHON)
    # no ssh master left behind for 60 s (Ansible's default ControlPersist) holding a
    # session of the private sshd after the test
    monkeypatch.setenv("ANSIBLE_SSH_ARGS", "-o ControlMaster=no")


@pytest.fixture
def host_root(tmp_path: Path) -> Path:
    """cmp1's files: etc/nova/nova.conf under a tmp directory."""
    conf = tmp_path / "hosts" / "cmp1" / "etc" / "nova" / "nova.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text(NOVA_CONF)
    return conf.parents[2]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.close()


def nova(host_root: Path) -> ServiceDefinition:
    """nova-compute as it would be defined on the host, its files under `host_root`,
    its packages those of this venv (pip freeze over ssh)."""
    return ServiceDefinition(
        config_files=[
            str(host_root / "etc/nova/nova.conf"),
            str(host_root / "etc/nova/absent.conf"),
        ],
        packages=["pydantic", "no-such-package"],
        package_manager="pip",
        venv=sys.prefix,
    )


def ssh(server: private_sshd.Sshd, **extra: object) -> SshConnector:
    connector = connector_for(ConnectorSpec(type="ssh", ssh_options=server.ssh_options(), **extra))
    assert isinstance(connector, SshConnector)
    return connector


def wrong_key_options(server: private_sshd.Sshd, tmp_path: Path) -> list[str]:
    """The server's aliases, but with a key it does not authorize."""
    other = tmp_path / "other_key"
    private_sshd.keygen(other)
    return server.other_client(tmp_path / "ssh_config", key=other)


def test_the_ssh_connector_captures_a_hosts_revision_over_ssh(sshd, host_root, store):
    import pydantic

    revision, new = capture_and_record(store, ssh(sshd), "cmp1", "nova-compute", nova(host_root))
    conf = str(host_root / "etc/nova/nova.conf")
    assert new
    assert revision.content["files"] == {
        conf: NOVA_CONF,
        str(host_root / "etc/nova/absent.conf"): None,
    }
    assert revision.content["packages"] == {
        "pydantic": pydantic.VERSION,
        "no-such-package": None,
    }
    kept = records.get_revision(store, "cmp1", "nova-compute", revision.digest)
    assert kept["content"]["files"][conf] == NOVA_CONF
    assert [e["event"] for e in records.history(store, "cmp1", "nova-compute")] == ["captured"]


def test_the_ssh_connector_applies_a_changed_revision_and_the_next_capture_sees_it(
    sshd, host_root, store
):
    connector = ssh(sshd)
    definition = nova(host_root)
    before, _ = capture_and_record(store, connector, "cmp1", "nova-compute", definition)
    conf = str(host_root / "etc/nova/nova.conf")
    wanted = {"files": {conf: "[DEFAULT]\ndebug = true\ncpu_allocation_ratio = 4.0\n"}}
    assert apply_revision(connector, wanted, definition, "cmp1") == [conf]
    assert Path(conf).read_text() == wanted["files"][conf]
    # no partial file left beside it
    assert sorted(p.name for p in Path(conf).parent.iterdir()) == ["nova.conf"]
    after, new = capture_and_record(store, connector, "cmp1", "nova-compute", definition)
    assert new and after.digest != before.digest
    assert after.content["files"][conf] == wanted["files"][conf]
    # applying the same revision again changes nothing
    assert apply_revision(connector, wanted, definition, "cmp1") == []


def test_the_ssh_connector_with_become_runs_through_sudo(sshd, host_root):
    connector = ssh(sshd, become=True)
    result = connector.run("cmp1", 'echo "$(id -un) from ${SUDO_USER:-nobody}"')
    assert result.ok, result.stderr
    assert result.stdout.strip() == f"root from {sshd.user}"
    conf = host_root / "etc/nova/nova.conf"
    connector.write_file("cmp1", str(conf), "[DEFAULT]\ndebug = true\n")
    assert conf.read_text() == "[DEFAULT]\ndebug = true\n"


def test_a_playbook_runs_over_ssh_with_become_through_the_ssh_connector(sshd, host_root, tmp_path):
    playbook = tmp_path / "become.yml"
    playbook.write_text(BECOME_PLAYBOOK)
    conf = host_root / "etc/nova/nova.conf"
    who = host_root / "who"
    result = ssh(sshd, become=True).run_playbook(
        "cmp1", str(playbook), {"conf": str(conf), "who": str(who)}
    )
    assert result.ok, result.stderr or result.stdout
    assert conf.read_text() == "[DEFAULT]\ndebug = true\n"
    assert who.read_text().strip() == f"root via sudo from {sshd.user}"


def test_the_ansible_connector_reads_writes_and_runs_become_over_ssh(sshd, host_root, tmp_path):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        # no ansible_user: ssh logs in as the current user (root here), and Ansible
        # skips `become` when ansible_user names the become user itself
        f"cmp1 ansible_host=127.0.0.1 ansible_port={sshd.port} "
        f"ansible_connection=ssh ansible_ssh_private_key_file={sshd.client_key} "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={sshd.directory / 'known_hosts'}'\n"
    )
    connector = connector_for(ConnectorSpec(type="ansible", inventory=str(inventory), become=True))
    assert isinstance(connector, AnsibleConnector)
    conf = host_root / "etc/nova/nova.conf"
    assert connector.read_file("cmp1", str(conf)) == NOVA_CONF
    connector.write_file("cmp1", str(conf), "[DEFAULT]\ndebug = true\n")
    assert conf.read_text() == "[DEFAULT]\ndebug = true\n"
    result = connector.run("cmp1", 'echo "$(id -un) from $SUDO_USER"; exit 3')
    assert result.rc == 3 and result.stdout.strip() == f"root from {sshd.user}"
    playbook = tmp_path / "become.yml"
    playbook.write_text(BECOME_PLAYBOOK)
    who = host_root / "who"
    result = connector.run_playbook("cmp1", str(playbook), {"conf": str(conf), "who": str(who)})
    assert result.ok, result.stderr or result.stdout
    assert who.read_text().strip() == f"root via sudo from {sshd.user}"


SERVICES_OVER_SSH = """\
  services:
    nova-compute:
      config_files: [{conf}]
      restart: >-
        if grep -q '^broken = true' {conf}; then up=false; else up=true; fi;
        curl -sf -X POST -H 'Content-Type: application/json' -d "{{\\"up\\": $up}}"
        {sim}/_sim/hosts/{host}/restart >/dev/null"""
RATIO = "      - config: {{file: {conf}, set: {{DEFAULT: {{cpu_allocation_ratio: 4.0}}}}}}"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    with running_cloud(tmp_path) as running:
        yield running


def test_a_campaign_over_ssh_patches_gates_and_audits_the_host(sshd, cloud: Cloud):
    conf = cloud.work / "hosts" / HOST / "etc/nova/nova.conf"
    before = conf.read_text()
    spec = cloud.spec(
        "ratio-over-ssh",
        RATIO.format(conf=conf),
        hosts=[HOST],
        connector=f"{{type: ssh, ssh_options: [-F, {sshd.ssh_config}]}}",
        services=SERVICES_OVER_SSH.format(conf=conf, sim=cloud.sim.base_url, host=HOST),
    )
    runner = cloud.runner()
    runner.start(load_spec(spec))
    result = runner.run("ratio-over-ssh")
    assert result["status"] == "completed", result["error"]
    # the file on the host, written over ssh
    assert "cpu_allocation_ratio = 4.0" in conf.read_text()
    steps = records.steps_of(cloud.store, result["id"])
    assert steps and all(s["status"] == "done" for s in steps), steps
    # the audit log has the change with its before and after revision
    applied = [
        e for e in AuditLog(cloud.store).list(limit=100000)[0] if e["event"] == "campaign.applied"
    ]
    assert len(applied) == 1 and applied[0]["target"].endswith(f"/host/{HOST}")
    details = applied[0]["details"]
    old, new = details["before"]["nova-compute"], details["after"]["nova-compute"]
    assert old != new
    assert records.get_revision(cloud.store, HOST, "nova-compute", old)["content"]["files"] == {
        str(conf): before
    }
    assert "+cpu_allocation_ratio = 4.0" in details["diff"]["nova-compute"]
    # tested before the change (pre-check) and after it (gate)
    history = [e["event"] for e in records.history(cloud.store, HOST, "nova-compute")]
    assert history == ["tested", "applied", "tested", "captured"]


# ---------------------------------------------------------------------- bad input


def test_a_key_the_host_refuses_is_an_error_naming_the_host_and_nothing_is_recorded(
    sshd, host_root, store, tmp_path
):
    connector = connector_for(
        ConnectorSpec(type="ssh", ssh_options=wrong_key_options(sshd, tmp_path))
    )
    with pytest.raises(ConnectorError, match=r"^cmp1: ssh failed: .*Permission denied"):
        capture_and_record(store, connector, "cmp1", "nova-compute", nova(host_root))
    assert records.history(store, "cmp1", "nova-compute") == []
    assert records.host_services(store) == []


def test_a_write_with_a_refused_key_leaves_the_file_as_it_was(sshd, host_root, tmp_path):
    connector = connector_for(
        ConnectorSpec(type="ssh", ssh_options=wrong_key_options(sshd, tmp_path))
    )
    conf = host_root / "etc/nova/nova.conf"
    with pytest.raises(ConnectorError, match=r"^cmp1: "):
        connector.write_file("cmp1", str(conf), "[DEFAULT]\nbroken = true\n")
    assert conf.read_text() == NOVA_CONF
    assert sorted(p.name for p in conf.parent.iterdir()) == ["nova.conf"]


def test_an_unreachable_port_is_an_error_naming_the_host_and_nothing_is_recorded(
    sshd, host_root, store, tmp_path
):
    closed = private_sshd.free_port()
    connector = connector_for(
        ConnectorSpec(
            type="ssh",
            ssh_options=sshd.other_client(tmp_path / "ssh_config", port=closed),
        )
    )
    with pytest.raises(ConnectorError, match=r"^cmp1: ssh failed: .*Connection refused"):
        capture_and_record(store, connector, "cmp1", "nova-compute", nova(host_root))
    assert records.host_services(store) == []


def test_the_ansible_connector_says_which_host_is_unreachable(sshd, host_root, tmp_path):
    closed = private_sshd.free_port()
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"cmp1 ansible_host=127.0.0.1 ansible_port={closed} ansible_user={sshd.user} "
        f"ansible_connection=ssh ansible_ssh_private_key_file={sshd.client_key}\n"
    )
    connector = AnsibleConnector(ConnectorSpec(type="ansible", inventory=str(inventory)))
    with pytest.raises(ConnectorError, match=r"^cmp1: unreachable: .*Connection refused"):
        connector.read_file("cmp1", str(host_root / "etc/nova/nova.conf"))
