"""The BMC map: hosts to BMCs with credentials; mistakes named by file, line and field;
Ironic nodes as targets; the map's entries resolved to inventory resources."""

from __future__ import annotations

import pytest

from stackfleet.core.errors import ConfigError
from stackfleet.engine.hardware import resolve_targets
from stackfleet.sources.redfish import load_bmc_map, parse_bmc_map

GOOD = """\
credentials:
  lab: {username: admin, password_env: TEST_BMC_PASSWORD}
defaults:
  credentials: lab
  verify: false
  timeout: 4
bmcs:
  cmp0001: {address: "https://10.0.0.11", system_id: /redfish/v1/Systems/1}
  cmp0002:
    address: 10.0.0.12
    system_id: System.Embedded.1
    username: root
    password: calvin
    power_budget_watts: 650
ironic:
  credentials: lab
"""


def test_entries_take_defaults_and_named_credentials(monkeypatch):
    monkeypatch.setenv("TEST_BMC_PASSWORD", "from-env")
    bmc_map = parse_bmc_map(GOOD, "bmc.yaml")
    first, second = bmc_map.targets
    assert (first.name, first.username, first.password) == ("cmp0001", "admin", "from-env")
    assert first.verify is False and first.timeout == 4.0
    assert first.system_path == "/redfish/v1/Systems/1"
    assert first.source == "bmc.yaml line 8"
    # a bare address means HTTPS, a bare system id lives under the service root
    assert second.address == "https://10.0.0.12"
    assert second.system_path == "/redfish/v1/Systems/System.Embedded.1"
    assert (second.username, second.password, second.power_budget_watts) == ("root", "calvin", 650)
    assert bmc_map.ironic.username == "admin" and bmc_map.ironic.password == "from-env"


def test_a_path_prefix_in_the_address_moves_the_service_root():
    prefixed = parse_bmc_map("bmcs:\n  h: {address: 'http://127.0.0.1:8000/bmc/7', system_id: 1}\n")
    [target] = prefixed.targets
    assert target.base_url == "http://127.0.0.1:8000"
    assert target.root_prefix == "/bmc/7/redfish/v1/"
    assert target.system_path == "/bmc/7/redfish/v1/Systems/1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bmcs:\n  cmp1: {system_id: 1}\n", "bmc.yaml line 2: bmcs.cmp1: missing `address`"),
        (
            "bmcs:\n  cmp1:\n    address: https://10.0.0.1\n    adress: x\n",
            "bmc.yaml line 4: bmcs.cmp1.adress: unknown field",
        ),
        (
            "bmcs:\n  cmp1: {address: 'ftp://10.0.0.1'}\n",
            "bmc.yaml line 2: bmcs.cmp1.address: expected an http(s) URL",
        ),
        (
            "bmcs:\n  cmp1: {address: 10.0.0.1, credentials: nope}\n",
            "bmc.yaml line 2: bmcs.cmp1.credentials: no credentials named 'nope'",
        ),
        (
            "defaults:\n  timeout: -3\n",
            "bmc.yaml line 2: defaults.timeout: expected a positive number",
        ),
        (
            "credentials:\n  lab: {password: x}\n",
            "bmc.yaml line 2: credentials.lab: missing `username`",
        ),
        (
            "credentials:\n  lab: {username: a, password_env: STACKFLEET_NO_SUCH_VAR}\n",
            "credentials.lab.password_env: environment variable STACKFLEET_NO_SUCH_VAR is not set",
        ),
        ("bmcs: [a, b]\n", "bmc.yaml line 1: bmcs: expected a mapping"),
        ("bmcs:\n  cmp1: {address: [\n", "bmc.yaml line 3: not valid YAML"),
        ("hosts: {}\n", "bmc.yaml line 1: hosts: unknown section"),
    ],
)
def test_a_malformed_map_names_file_line_and_field(text, message):
    with pytest.raises(ConfigError) as caught:
        parse_bmc_map(text, "bmc.yaml")
    assert message in str(caught.value)


def test_a_missing_map_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the BMC map .*nothing.yaml"):
        load_bmc_map(tmp_path / "nothing.yaml")


def ironic_node(uuid: str, name: str, address: str | None) -> dict:
    return {
        "id": uuid,
        "name": name,
        "provision_state": "active",
        "driver": "redfish",
        "bmc_address": address,
        "bmc_system_id": "/redfish/v1/Systems/abc" if address else None,
    }


def one_pass(store, kind: str, records: list[dict]) -> None:
    pass_id = store.begin_pass("c1", "r1")
    store.record_kind(pass_id, "c1", "r1", kind, records, True)
    store.finish_pass(pass_id, "complete", None, 1)


def test_hosts_resolve_to_hypervisors_and_ironic_nodes_fill_in(store):
    one_pass(
        store,
        "hypervisor",
        [{"id": "hyp-uuid-1", "name": "cmp0001.example.org", "host": "cmp0001", "state": "up"}],
    )
    one_pass(
        store,
        "baremetal_node",
        [
            ironic_node("node-1", "bm-1", "https://192.0.2.10"),
            ironic_node("node-2", "bm-2", "192.0.2.11"),
            ironic_node("node-3", "bm-3", None),  # IPMI: no Redfish address
        ],
    )
    bmc_map = parse_bmc_map(
        """
credentials:
  lab: {username: admin, password: pw}
bmcs:
  cmp0001: {address: "https://192.0.2.1", credentials: lab}
  bm-2: {address: "https://192.0.2.99", credentials: lab}
ironic: {credentials: lab}
""",
        "map.yaml",
    )
    targets = {t.name: t for t in resolve_targets(store, bmc_map)}
    assert sorted(targets) == ["bm-1", "bm-2", "cmp0001"]
    cmp = targets["cmp0001"]
    assert (cmp.kind, cmp.resource_id, cmp.cloud, cmp.region) == (
        "hypervisor",
        "hyp-uuid-1",
        "c1",
        "r1",
    )
    # the map's entry wins over Ironic's driver_info for the same node
    assert targets["bm-2"].address == "https://192.0.2.99"
    assert targets["bm-2"].kind == "baremetal_node" and targets["bm-2"].resource_id == "node-2"
    ironic = targets["bm-1"]
    assert ironic.source == "Ironic node node-1 (driver_info)"
    assert (ironic.username, ironic.password, ironic.problem) == ("admin", "pw", None)
    assert resolve_targets(store, bmc_map, include_ironic=False)[-1].name == "bm-2"


def test_ironic_nodes_without_credentials_are_reported_unread(store):
    one_pass(store, "baremetal_node", [ironic_node("node-1", "bm-1", "https://192.0.2.10")])
    [target] = resolve_targets(store, None)
    assert "no BMC credentials for Ironic node bm-1" in target.problem
    assert "ironic.credentials" in target.problem


SHARED = """
credentials:
  lab: {username: admin, password: shared-secret}
ironic: {credentials: lab}
"""


def test_ironic_credentials_are_not_sent_to_plain_http_bmcs(store, caplog):
    one_pass(store, "baremetal_node", [ironic_node("node-1", "bm-1", "http://192.0.2.10")])
    [target] = resolve_targets(store, parse_bmc_map(SHARED, "map.yaml"))
    assert "plain HTTP" in target.problem
    assert "allow_insecure_http" in target.problem
    assert "plain HTTP" in caplog.text


def test_plain_http_bmcs_get_the_credentials_when_the_map_allows_it(store, caplog):
    one_pass(store, "baremetal_node", [ironic_node("node-1", "bm-1", "http://192.0.2.10")])
    allowing = SHARED.replace(
        "ironic: {credentials: lab}", "ironic:\n  credentials: lab\n  allow_insecure_http: true"
    )
    [target] = resolve_targets(store, parse_bmc_map(allowing, "map.yaml"))
    assert target.problem is None and target.password == "shared-secret"
    assert "over plain HTTP" in caplog.text


def test_loopback_http_bmcs_get_the_credentials(store):
    one_pass(store, "baremetal_node", [ironic_node("node-1", "bm-1", "http://127.0.0.1:8000")])
    [target] = resolve_targets(store, parse_bmc_map(SHARED, "map.yaml"))
    assert target.problem is None


def test_allow_insecure_http_must_be_a_boolean():
    with pytest.raises(ConfigError, match="allow_insecure_http"):
        parse_bmc_map("ironic: {allow_insecure_http: maybe}", "map.yaml")
