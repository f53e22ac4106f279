"""No wrongful action under faults: the bounded version of benchmarks/faults.py, and the
fixes it led to (a small cut listing read again, stale listings held, world-open SSH
rules really deleted, verified deletions marked gone)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import yaml

from stackfleet.engine.collect import collect
from stackfleet.engine.execute import Connections
from stackfleet.engine.policies import PolicyRunner
from stackfleet.engine.settings import Settings
from stackfleet.policy import load_files, load_text
from stackfleet.simulator.faults import FaultRule
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.sources.openstack.connection import DEFAULT_API_TIMEOUT, connect
from stackfleet.store import open_store
from stackfleet.store.inventory import STALE_LISTING

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::PendingDeprecationWarning"),
]

CLOUD = "sim"
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "faults.py"


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("faults_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_random_faults_over_churning_passes_cause_no_wrongful_action(tmp_path):
    bench = _benchmark()
    tally = bench.run(passes=16, seed=7, workdir=tmp_path)
    assert tally.passes == 16
    assert tally.wrongful == []
    assert sum(tally.hidden.values()) == 0, tally.hidden_details
    # the run exercised what it claims to
    assert sum(tally.effective.values()) >= 10
    assert sum(tally.executed.values()) >= 20
    assert tally.verdicts["skipped"] > 0


@pytest.fixture
def cloud(tmp_path):
    with SimulatorServer(preset("small", now=datetime.now(UTC))) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        yield server, clouds


def _fault(server: SimulatorServer, **rule: object) -> None:
    response = httpx.post(f"{server.base_url}/_sim/faults", json=rule)
    assert response.status_code == 201, response.text


def test_a_listing_cut_by_one_item_is_read_again_and_not_believed(cloud, tmp_path):
    server, clouds = cloud
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    collect(store, CLOUD, config_files=[str(clouds)], kinds=["floating_ip"])
    total = len(server.state.regions["RegionOne"].floatingips)
    # one item short, far under the shrink limit (10 % and 10)
    _fault(server, method="GET", path=r"/v2\.0/floatingips$", max_items=total - 1, times=1)
    [result] = collect(store, CLOUD, config_files=[str(clouds)], kinds=["floating_ip"])
    listing = result.listings["floating_ip"]
    assert not listing.complete
    assert "inconsistent listing" in (listing.error or "")
    live = store.list_resources("floating_ip", limit=1000)[0]
    assert len(live) == total
    store.close()


def test_a_listing_older_than_the_store_is_held(cloud, tmp_path):
    server, clouds = cloud
    server.sim.faults.keep_answers = True
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    collect(store, CLOUD, config_files=[str(clouds)], kinds=["server"])
    region = server.state.regions["RegionOne"]
    sid = next(s for s, v in region.servers.items() if v["status"] == "ACTIVE")
    region.servers[sid].update(
        {
            "status": "SHUTOFF",
            "OS-EXT-STS:vm_state": "stopped",
            "OS-EXT-STS:power_state": 4,
            "updated": "2099-01-01T00:00:00Z",
        }
    )
    collect(store, CLOUD, config_files=[str(clouds)], kinds=["server"])
    # a lagging replica answers with the listing of two passes ago
    server.sim.faults.add(FaultRule(method="GET", path="/servers/detail", stale=True, stale_by=2))
    [result] = collect(store, CLOUD, config_files=[str(clouds)], kinds=["server"])
    listing = result.listings["server"]
    assert not listing.complete
    assert (listing.error or "").startswith(STALE_LISTING)
    stored = {r["id"]: r for r in store.list_resources("server", limit=1000)[0]}
    assert stored[sid]["status"] == "SHUTOFF"
    store.close()


def test_a_listing_from_before_new_resources_were_made_is_not_believed(cloud, tmp_path):
    """A lagging replica answers both reads of a listing from before two security group
    rules were made: nothing in it is older than the store's copy, and too few are
    missing for the shrink limit. Read by id, the missing rules are still there: the
    listing is incomplete and nothing is marked gone (benchmarks/faults.py found such a
    listing believed)."""
    server, clouds = cloud
    server.sim.faults.keep_answers = True
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    kinds = ["security_group_rule"]
    collect(store, CLOUD, config_files=[str(clouds)], kinds=kinds)
    rules = server.state.regions["RegionOne"].security_group_rules
    template = next(iter(rules.values()))
    made = [f"00000000-0000-4000-8000-00000000000{n}" for n in (1, 2)]
    for rule_id in made:
        rules[rule_id] = {**template, "id": rule_id, "port_range_min": 2222}
    collect(store, CLOUD, config_files=[str(clouds)], kinds=kinds)
    assert set(made) <= {r["id"] for r in store.list_resources(kinds[0], limit=1000)[0]}
    # the replica lags by two answers: the listing before the rules were made
    server.sim.faults.add(
        FaultRule(method="GET", path=r"/security-group-rules$", stale=True, stale_by=2)
    )
    [result] = collect(store, CLOUD, config_files=[str(clouds)], kinds=kinds)
    listing = result.listings["security_group_rule"]
    assert not listing.complete
    assert "still there when read by id" in (listing.error or "")
    assert set(made) <= {r["id"] for r in store.list_resources(kinds[0], limit=1000)[0]}
    # deleted for real: read by id they answer 404, and the listing is believed
    server.sim.faults.clear()
    for rule_id in made:
        del rules[rule_id]
    [result] = collect(store, CLOUD, config_files=[str(clouds)], kinds=kinds)
    assert result.listings["security_group_rule"].complete
    assert not set(made) & {r["id"] for r in store.list_resources(kinds[0], limit=1000)[0]}
    store.close()


WORLD_SSH = """
policies:
  - name: close-ssh
    resource: security_group_rule
    filters:
      - direction: ingress
      - {type: value, key: remote_ip_prefix, op: in, value: ['0.0.0.0/0']}
      - {type: port-range, ports: [22]}
    actions: [delete]
    safety: {max_percent: 100}
"""


def test_world_open_ssh_rules_are_deleted_and_marked_gone(cloud, tmp_path):
    server, clouds = cloud
    server.sim.faults.record_mutations = True
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    collect(store, CLOUD, config_files=[str(clouds)])
    open_rules = set(server.state.ground_truth["RegionOne"]["open_ssh_security_group_rules"])
    assert open_rules
    settings = Settings.model_validate({"verify_timeout": "10s", "poll_interval": "0.1s"})
    runner = PolicyRunner(store, settings, Connections([str(clouds)]))

    report = runner.run(load_text(WORLD_SSH), execute=True)

    verdicts = {c.record["id"]: (c.verdict, c.reason) for c in report.policies[0].candidates}
    assert set(verdicts) == open_rules
    # the re-check reads the rule's ethertype (openstacksdk: ether_type)
    assert all(v == "succeeded" for v, _ in verdicts.values()), verdicts
    rules = server.state.regions["RegionOne"].security_group_rules
    assert not open_rules & set(rules)
    deleted = [m for m in server.sim.faults.take_mutations() if m.method == "DELETE"]
    assert {m.before["id"] for m in deleted if m.before} == open_rules
    # marked gone at once: the next pass sees no shrink to hold
    live = {r["id"] for r in store.list_resources("security_group_rule", limit=10_000)[0]}
    assert not open_rules & live
    store.close()


def _admin_headers(server: SimulatorServer) -> dict[str, str]:
    token = httpx.post(
        f"{server.auth_url}/v3/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": "admin", "domain": {"id": "default"}, "password": "secret"}
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        },
    ).headers["X-Subject-Token"]
    return {"X-Auth-Token": token}


def test_simulator_repeats_pages_and_answers_409(cloud):
    server, _ = cloud
    headers = _admin_headers(server)
    url = f"{server.base_url}/RegionOne/networking/v2.0/ports"
    first = httpx.get(url, params={"limit": 5}, headers=headers).json()["ports"]
    server.sim.faults.add(FaultRule(method="GET", path="/v2.0/ports$", repeat_page=True))
    again = httpx.get(url, params={"limit": 5, "marker": first[-1]["id"]}, headers=headers)
    assert [p["id"] for p in again.json()["ports"]] == [p["id"] for p in first]
    server.sim.faults.add(
        FaultRule(method="DELETE", path="/floatingips/", fail_always=True, error_status=409)
    )
    fid = next(iter(server.state.regions["RegionOne"].floatingips))
    answer = httpx.delete(
        f"{server.base_url}/RegionOne/networking/v2.0/floatingips/{fid}", headers=headers
    )
    assert answer.status_code == 409
    assert answer.json()["NeutronError"]["type"] == "Conflict"
    assert fid in server.state.regions["RegionOne"].floatingips


def test_a_repeated_page_replaced_by_a_stale_answer_is_not_counted_a_hit(cloud):
    """Two rules on one URL: the stale answer is what the client gets, so only the stale
    rule changed the answer (benchmarks/faults.py counted the repeated page as hidden)."""
    server, _ = cloud
    faults = server.sim.faults
    faults.keep_answers = True
    headers = _admin_headers(server)
    url = f"{server.base_url}/RegionOne/networking/v2.0/ports"
    first = httpx.get(url, params={"limit": 5}, headers=headers).json()["ports"]
    page_two = {"limit": 5, "marker": first[-1]["id"]}
    kept = httpx.get(url, params=page_two, headers=headers).json()["ports"]
    region = server.state.regions["RegionOne"]
    region.ports[kept[0]["id"]]["name"] = "renamed since"
    repeat = faults.add(FaultRule(method="GET", path="/v2.0/ports$", repeat_page=True))
    stale = faults.add(FaultRule(method="GET", path="/v2.0/ports$", stale=True))

    answer = httpx.get(url, params=page_two, headers=headers).json()["ports"]

    assert answer == kept  # the stale page two, not page one again
    assert faults.hits.get(stale.id) == 1
    assert not faults.hits.get(repeat.id)


def test_api_calls_time_out_unless_clouds_yaml_says_otherwise(cloud, tmp_path):
    server, clouds = cloud
    [target] = connect(CLOUD, config_files=[str(clouds)])
    assert target.conn.config.config["api_timeout"] == DEFAULT_API_TIMEOUT
    content = yaml.safe_load(clouds.read_text())
    content["clouds"][CLOUD]["api_timeout"] = 0.5
    clouds.write_text(yaml.safe_dump(content))
    [target] = connect(CLOUD, config_files=[str(clouds)])
    assert float(target.conn.config.config["api_timeout"]) == 0.5
    # a hung list call ends the listing as failed instead of stalling the pass
    server.sim.faults.add(FaultRule(method="GET", path=r"/v2\.0/floatingips$", latency_ms=2000))
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    [result] = collect(store, CLOUD, config_files=[str(clouds)], kinds=["floating_ip"])
    assert not result.listings["floating_ip"].complete
    assert "timed out" in (result.listings["floating_ip"].error or "")
    store.close()


def _fip(fid: str, saved: str, port: str | None = None) -> dict[str, object]:
    return {
        "id": fid,
        "name": fid,
        "project_id": "p1",
        "status": "DOWN",
        "port_id": port,
        "updated_at": saved,
    }


def test_a_listing_saved_before_the_store_copy_is_stale_unless_an_event_stored_it(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")

    def record(listed: list[dict[str, object]]) -> str | None:
        pass_id = store.begin_pass("c1", "r1")
        outcome = store.record_kind(pass_id, "c1", "r1", "floating_ip", listed, True)
        store.finish_pass(pass_id, "complete", None, 1)
        return outcome.held

    assert record([_fip("fip-1", "2026-01-02T00:00:00Z", "port-1")]) is None
    held = record([_fip("fip-1", "2026-01-01T00:00:00Z")])
    assert held is not None and held.startswith(STALE_LISTING)
    assert store.get_resource("floating_ip", "fip-1")["port_id"] == "port-1"
    # an event stores a newer copy while a pass is listing: the pass's older copy is
    # not a stale listing
    pass_id = store.begin_pass("c1", "r1")
    store.upsert_resource("c1", "r1", "floating_ip", _fip("fip-1", "2026-01-03T00:00:00Z"))
    listed = [_fip("fip-1", "2026-01-02T00:00:00Z", "port-1")]
    outcome = store.record_kind(pass_id, "c1", "r1", "floating_ip", listed, True)
    assert outcome.held is None
    store.close()


@pytest.mark.parametrize("kind", ["server", "port", "floating_ip", "volume"])
@pytest.mark.parametrize("status", [500, 503])
def test_a_first_pass_cut_short_mid_listing_is_partial_and_acts_on_nothing(
    tmp_path, monkeypatch, kind, status
):
    """The very first pass (nothing stored to compare with): a later page of one
    kind's listing fails (the next link's request answers 5xx). The pass is partial,
    the kind recorded incomplete with none of its first pages kept, and execute-mode
    policies neither open findings on that kind nor act on it."""
    bench = _benchmark()
    from stackfleet.sources.openstack import listing as listing_module
    from stackfleet.store.findings import list_findings

    defaults = list(listing_module.iter_pages.__defaults__ or ())
    monkeypatch.setattr(
        listing_module.iter_pages,
        "__defaults__",
        (*defaults[:3], bench.PAGE_SIZE, *defaults[4:]),
    )
    with SimulatorServer(preset("small", now=datetime.now(UTC))) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        server.sim.faults.record_mutations = True
        # the first page answers (with its next link); every page after it fails
        path = bench.LISTED[kind][1]
        server.sim.faults.add(
            FaultRule(
                method="GET", path=path, query="marker=", fail_always=True, error_status=status
            )
        )
        store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
        settings = Settings.model_validate(bench.SETTINGS)
        [result] = collect(store, CLOUD, config_files=[str(clouds)], shrink=settings.collect.shrink)
        assert result.status == "partial"
        listing = result.listings[kind]
        assert not listing.complete and f"HTTP {status}" in (listing.error or "")
        assert store.list_resources(kind)[1] == 0  # not a page of it believed
        assert store.list_passes(1)[0]["kinds"][kind]["complete"] is False
        policies = [
            *load_text(bench.IMMEDIATE, "immediate"),
            *load_files(["pack:waste", "pack:security"]),
        ]
        report = PolicyRunner(store, settings, Connections([str(clouds)])).run(
            policies, execute=True
        )
        acted = [
            c
            for p in report.policies
            for c in p.candidates
            if c.record["kind"] == kind and c.verdict not in ("planned", "blocked")
        ]
        assert acted == []
        assert list_findings(store, kind=kind)[0] == []
        changed = [m for m in server.sim.faults.take_mutations() if kind_path(kind) in m.path]
        assert changed == []
        store.close()


def kind_path(kind: str) -> str:
    """The part of an action request's path naming the kind's collection."""
    return {
        "server": "/servers/",
        "port": "/ports/",
        "floating_ip": "/floatingips/",
        "volume": "/volumes/",
    }[kind]
