"""A pass never treats anything as gone on the strength of an incomplete listing, and
bad input is one clear error, never a traceback."""

from __future__ import annotations

import httpx
import pytest
import yaml
from support import run_cli

from stackfleet.core.errors import CloudError, ConfigError
from stackfleet.engine.collect import collect
from stackfleet.simulator.generator import preset
from stackfleet.simulator.server import SimulatorServer
from stackfleet.store import open_store

CLOUD = "sim"


@pytest.fixture
def cloud(tmp_path):
    with SimulatorServer(preset("small")) as server:
        clouds = server.write_clouds_yaml(tmp_path / "clouds.yaml", CLOUD)
        yield server, clouds


@pytest.fixture
def store_url(tmp_path):
    return f"sqlite:///{tmp_path / 'store.db'}"


def add_fault(server: SimulatorServer, **rule: object) -> None:
    response = httpx.post(f"{server.base_url}/_sim/faults", json=rule)
    assert response.status_code in (200, 201), response.text


def test_failed_port_listing_marks_no_port_gone(cloud, store_url):
    server, clouds = cloud
    store = open_store(store_url)
    [first] = collect(store, CLOUD, config_files=[str(clouds)])
    assert first.status == "complete"
    region = server.state.regions["RegionOne"]
    removed = next(iter(region.ports))
    del region.ports[removed]
    add_fault(server, method="GET", path="/v2.0/ports", fail_always=True, error_status=500)

    [second] = collect(store, CLOUD, config_files=[str(clouds)])

    assert second.status == "partial"
    assert not second.listings["port"].complete
    assert "HTTP 500" in (second.listings["port"].error or "")
    live, _ = store.list_resources("port")
    assert removed in {p["id"] for p in live}
    assert store.list_passes(1)[0]["kinds"]["port"]["complete"] is False


def test_failure_on_a_later_page_marks_nothing_gone(cloud, store_url):
    server, clouds = cloud
    store = open_store(store_url)
    collect(store, CLOUD, config_files=[str(clouds)])
    region = server.state.regions["RegionOne"]
    removed = next(iter(region.servers))
    del region.servers[removed]
    # the second page request carries a marker: fail only those
    add_fault(server, method="GET", path="/servers/detail", fail_always=True)

    [result] = collect(store, CLOUD, config_files=[str(clouds)], kinds=["server"])

    assert result.status != "complete"
    live, _ = store.list_resources("server")
    assert removed in {s["id"] for s in live}


def test_complete_listing_marks_deleted_resources_gone(cloud, store_url):
    server, clouds = cloud
    store = open_store(store_url)
    collect(store, CLOUD, config_files=[str(clouds)])
    region = server.state.regions["RegionOne"]
    removed = next(iter(region.servers))
    del region.servers[removed]

    [result] = collect(store, CLOUD, config_files=[str(clouds)])

    assert result.status == "complete"
    live, _ = store.list_resources("server")
    assert removed not in {s["id"] for s in live}
    detail = store.get_resource("server", removed)
    assert detail["deleted_at"] is not None


def test_cli_collect_exits_non_zero_on_a_partial_pass(cloud, store_url):
    server, clouds = cloud
    add_fault(server, method="GET", path="/v2.0/floatingips", fail_always=True)
    result = run_cli(
        "--db-url",
        store_url,
        "collect",
        "--os-cloud",
        CLOUD,
        "-f",
        "json",
        env={"OS_CLIENT_CONFIG_FILE": str(clouds)},
    )
    assert result.code == 1
    rows = {r["kind"]: r for r in result.json()}
    assert rows["floating_ip"]["complete"] is False and rows["server"]["complete"] is True
    assert "partial" in result.stderr


def test_wrong_password_is_one_clear_error_and_a_failed_pass(cloud, tmp_path, store_url):
    _, clouds = cloud
    config = yaml.safe_load(clouds.read_text())
    config["clouds"][CLOUD]["auth"]["password"] = "wrong"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    store = open_store(store_url)
    with pytest.raises(CloudError, match="refused the credentials"):
        collect(store, CLOUD, config_files=[str(bad)])
    [failed] = store.list_passes()
    assert failed["status"] == "failed" and failed["kinds"] == {}
    assert store.list_resources("server")[1] == 0

    result = run_cli(
        "--db-url",
        store_url,
        "collect",
        "--os-cloud",
        CLOUD,
        env={"OS_CLIENT_CONFIG_FILE": str(bad)},
    )
    assert result.code == 3
    assert "refused the credentials" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_cloud_names_the_known_ones(cloud, store_url):
    _, clouds = cloud
    result = run_cli(
        "--db-url",
        store_url,
        "collect",
        "--os-cloud",
        "nosuch",
        env={"OS_CLIENT_CONFIG_FILE": str(clouds)},
    )
    assert result.code == 2
    assert "nosuch" in result.stderr and CLOUD in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_keystone_is_a_cloud_error(tmp_path, store_url):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        yaml.safe_dump(
            {
                "clouds": {
                    "dead": {
                        "auth": {
                            "auth_url": "http://127.0.0.1:9/identity",
                            "username": "a",
                            "password": "b",
                            "project_name": "p",
                            "user_domain_name": "Default",
                            "project_domain_name": "Default",
                        }
                    }
                }
            }
        )
    )
    result = run_cli(
        "--db-url",
        store_url,
        "collect",
        "--os-cloud",
        "dead",
        env={"OS_CLIENT_CONFIG_FILE": str(clouds)},
    )
    assert result.code == 3
    assert "cannot reach Keystone at http://127.0.0.1:9/identity: Connection refused" in (
        result.stderr
    )
    assert "HTTPConnectionPool" not in result.stderr  # the cause, not the library chain
    assert "Traceback" not in result.stderr


def test_malformed_clouds_yaml_is_a_config_error(tmp_path, store_url):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  sim: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        collect(open_store(store_url), "sim", config_files=[str(clouds)])
    result = run_cli(
        "--db-url",
        store_url,
        "collect",
        "--os-cloud",
        "sim",
        env={"OS_CLIENT_CONFIG_FILE": str(clouds)},
    )
    assert result.code == 2 and "not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_cli_arguments_exit_with_usage(store_url):
    result = run_cli("--db-url", store_url, "servers", "list", "-f", "xml")
    assert result.code == 2 and "xml" in result.stderr
    result = run_cli("--db-url", store_url, "resources", "list", "spaceship")
    assert result.code == 2 and "unknown kind 'spaceship'" in result.stderr
    result = run_cli("--db-url", store_url, "resources", "list", "server", "--filter", "colour=red")
    assert result.code == 2 and "no field 'colour'" in result.stderr


def test_ironic_without_a_system_scoped_cloud_is_skipped_not_emptied(cloud, tmp_path, store_url):
    server, clouds = cloud
    store = open_store(store_url)
    collect(store, CLOUD, config_files=[str(clouds)])
    nodes = store.list_resources("baremetal_node")[1]
    assert nodes == len(server.state.regions["RegionOne"].nodes) > 0
    config = yaml.safe_load(clouds.read_text())
    del config["clouds"][f"{CLOUD}-system"]
    project_only = tmp_path / "project-only.yaml"
    project_only.write_text(yaml.safe_dump(config))

    [result] = collect(store, CLOUD, config_files=[str(project_only)])

    listing = result.listings["baremetal_node"]
    assert listing.skipped and "system-scoped" in (listing.error or "")
    assert result.status == "complete"
    assert store.list_resources("baremetal_node")[1] == nodes


def test_a_member_clouds_pass_marks_no_other_projects_resources_gone(cloud, tmp_path, store_url):
    """Cinder and Neutron answer a project member's fleet-wide listing with just that
    project's resources and a 200: such a pass keeps what it saw but is partial, and
    every other project's volumes and ports stay live."""
    server, clouds = cloud
    store = open_store(store_url)
    [first] = collect(store, CLOUD, config_files=[str(clouds)], kinds=["volume", "port"])
    assert first.status == "complete"
    before = {
        kind: {r["id"] for r in store.list_resources(kind, limit=100_000)[0]}
        for kind in ("volume", "port")
    }
    entry = yaml.safe_load(clouds.read_text())["clouds"][CLOUD]
    entry["auth"].update(username="alpha-01-user", password="password", project_name="alpha-01")
    member_file = tmp_path / "member.yaml"
    member_file.write_text(yaml.safe_dump({"clouds": {CLOUD: entry}}))

    [second] = collect(store, CLOUD, config_files=[str(member_file)], kinds=["volume", "port"])

    assert second.status == "failed"
    for kind in ("volume", "port"):
        listing = second.listings[kind]
        assert not listing.complete
        assert "see only project alpha-01" in (listing.error or "")
        live = {r["id"] for r in store.list_resources(kind, limit=100_000)[0]}
        assert live == before[kind]


def _fip_policy():
    from stackfleet.policy import load_files

    return [p for p in load_files(["pack:waste"]) if p.name == "unattached-floating-ips"]


def test_a_truncated_port_listing_is_not_believed_while_the_missing_ports_are_there(
    cloud, store_url
):
    """A port page cut short with its next link dropped looks like the end of the list:
    read by id, the missing ports are still there, so the pass records the kind
    incomplete (nothing gone), pass after pass; the waste pack opens no finding for a
    floating IP whose own port_id says it is attached."""
    from stackfleet.engine.policies import PolicyRunner
    from stackfleet.store.findings import list_findings

    server, clouds = cloud
    store = open_store(store_url)
    [first] = collect(store, CLOUD, config_files=[str(clouds)])
    assert first.status == "complete"
    ports = {p["id"] for p in store.list_resources("port", limit=100_000)[0]}
    assert len(ports) > 20
    add_fault(server, method="GET", path=r"/v2\.0/ports$", drop_next_link=True, max_items=10)

    [second] = collect(store, CLOUD, config_files=[str(clouds)])

    assert second.status == "partial"
    listing = second.listings["port"]
    assert not listing.complete and len(listing.records) == 10
    assert f"{len(ports) - 10} ports missing" in (listing.error or "")
    assert "still there when read by id" in (listing.error or "")
    assert {p["id"] for p in store.list_resources("port", limit=100_000)[0]} == ports
    # the waste pack decides a floating IP from its own port_id, not from the ports
    report = PolicyRunner(store).run(_fip_policy())
    attached = {
        f["id"] for f in server.state.regions["RegionOne"].floatingips.values() if f["port_id"]
    }
    matched = {r["id"] for r in report.policies[0].matched}
    assert attached and not matched & attached
    assert not {f["resource_id"] for f in list_findings(store)[0]} & attached

    # the next pass sees the same cut: still not believed
    [third] = collect(store, CLOUD, config_files=[str(clouds)])
    assert not third.listings["port"].complete
    assert {p["id"] for p in store.list_resources("port", limit=100_000)[0]} == ports


def test_a_sharp_shrink_is_held_until_the_next_pass_confirms_it(cloud, store_url):
    """Most ports deleted at once: read by id they are gone (404), but a shrink past the
    limit is held for a pass (nothing gone, the kind incomplete) and believed when the
    next pass sees it too."""
    server, clouds = cloud
    store = open_store(store_url)
    collect(store, CLOUD, config_files=[str(clouds)], kinds=["port"])
    region = server.state.regions["RegionOne"]
    ports = set(region.ports)
    kept = set(sorted(ports)[:10])
    for port_id in ports - kept:
        del region.ports[port_id]

    [held] = collect(store, CLOUD, config_files=[str(clouds)], kinds=["port"])

    listing = held.listings["port"]
    assert not listing.complete
    assert f"misses {len(ports) - 10} of {len(ports)} ports" in (listing.error or "")
    assert "suspect shrink" in store.list_passes(1)[0]["kinds"]["port"]["error"]
    assert {p["id"] for p in store.list_resources("port", limit=100_000)[0]} == ports

    [confirmed] = collect(store, CLOUD, config_files=[str(clouds)], kinds=["port"])
    assert confirmed.listings["port"].complete
    assert {p["id"] for p in store.list_resources("port", limit=100_000)[0]} == kept


def test_a_truncated_listing_then_a_full_one_marks_nothing_gone(cloud, store_url):
    server, clouds = cloud
    store = open_store(store_url)
    collect(store, CLOUD, config_files=[str(clouds)])
    ports = {p["id"] for p in store.list_resources("port", limit=100_000)[0]}
    add_fault(
        server, method="GET", path=r"/v2\.0/ports$", drop_next_link=True, max_items=10, times=1
    )
    [held] = collect(store, CLOUD, config_files=[str(clouds)], kinds=["port"])
    assert not held.listings["port"].complete
    [full] = collect(store, CLOUD, config_files=[str(clouds)], kinds=["port"])
    assert full.status == "complete"
    assert {p["id"] for p in store.list_resources("port", limit=100_000)[0]} == ports


def test_a_small_deletion_is_believed_at_once(cloud, store_url):
    server, clouds = cloud
    store = open_store(store_url)
    collect(store, CLOUD, config_files=[str(clouds)], kinds=["port"])
    region = server.state.regions["RegionOne"]
    removed = [p for p, port in region.ports.items() if not port.get("device_id")][:3]
    for pid in removed:
        del region.ports[pid]
    [result] = collect(store, CLOUD, config_files=[str(clouds)], kinds=["port"])
    assert result.status == "complete"
    live = {p["id"] for p in store.list_resources("port", limit=100_000)[0]}
    assert not live & set(removed)


def test_the_waste_pack_judges_floating_ips_by_their_own_port_id(cloud, store_url):
    """Even when a truncated port listing is believed (shrink holding off), no attached
    floating IP is found unattached: the pack reads the floating IP's own port_id."""
    from stackfleet.engine.policies import PolicyRunner
    from stackfleet.store.findings import list_findings

    server, clouds = cloud
    store = open_store(store_url)
    collect(store, CLOUD, config_files=[str(clouds)], shrink=None)
    add_fault(server, method="GET", path=r"/v2\.0/ports$", drop_next_link=True, max_items=10)
    [result] = collect(store, CLOUD, config_files=[str(clouds)], shrink=None)
    assert result.status == "complete"  # believed: 84 ports marked gone
    fips = server.state.regions["RegionOne"].floatingips.values()
    attached = {f["id"] for f in fips if f["port_id"]}
    unattached = {f["id"] for f in fips if not f["port_id"]}

    report = PolicyRunner(store).run(_fip_policy())

    matched = {r["id"] for r in report.policies[0].matched}
    assert attached and not matched & attached
    assert matched <= unattached
    assert not {f["resource_id"] for f in list_findings(store)[0]} & attached


def test_cli_collect_takes_the_shrink_limit_from_the_settings_file(cloud, store_url, tmp_path):
    server, clouds = cloud
    env = {"OS_CLIENT_CONFIG_FILE": str(clouds)}
    args = ("--db-url", store_url, "collect", "--os-cloud", CLOUD, "--kind", "port", "-f", "json")
    (tmp_path / "held.yaml").write_text("collect: {shrink_percent: 10, shrink_count: 5}\n")
    (tmp_path / "off.yaml").write_text("collect: {hold_shrinks: false}\n")
    first = run_cli(*args, env={**env, "STACKFLEET_CONFIG": str(tmp_path / "held.yaml")})
    assert first.code == 0
    add_fault(server, method="GET", path=r"/v2\.0/ports$", drop_next_link=True, max_items=10)
    held = run_cli(*args, env={**env, "STACKFLEET_CONFIG": str(tmp_path / "held.yaml")})
    assert held.code == 1
    [row] = held.json()
    assert row["complete"] is False
    believed = run_cli(*args, env={**env, "STACKFLEET_CONFIG": str(tmp_path / "off.yaml")})
    assert believed.code == 0 and believed.json()[0]["complete"] is True
