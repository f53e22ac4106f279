"""The REST API and /metrics over a small fleet recorded through real passes.

The read-only tests share one fleet per backend (SQLite, and PostgreSQL when it is
reachable); tests that change the store build their own."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from stackfleet import __version__
from stackfleet.api import ApiServer, create_app
from stackfleet.api.metrics import metric_names
from stackfleet.core.errors import CloudError, StackFleetError
from stackfleet.model import KINDS, kind
from stackfleet.store import Store, open_store

CLOUD = "prod"
MIB = 1024**2

# ------------------------------------------------------------------ the fleet
# API-shaped objects (as Nova, Neutron and Cinder answer them), turned into records by
# each kind's own record builder.


def hypervisor(
    hid: str, host: str, state: str, vcpus: int, vcpus_used: int, memory_mb: int
) -> dict[str, Any]:
    record = kind("hypervisor").record_builder()(
        {
            "id": hid,
            "hypervisor_hostname": f"{host}.example",
            "service": {"host": host, "id": f"svc-{host}", "disabled_reason": None},
            "status": "enabled",
            "state": state,
            "hypervisor_type": "QEMU",
            "hypervisor_version": 8002000,
            "host_ip": "10.0.0.1",
        }
    )
    # Placement numbers, joined on by the compute source in real passes
    record.update(
        vcpu_total=vcpus,
        vcpu_reserved=0,
        vcpu_allocation_ratio=4.0,
        vcpu_used=vcpus_used,
        vcpu_capacity=vcpus * 4,
        memory_mb_total=memory_mb,
        memory_mb_reserved=512,
        memory_mb_allocation_ratio=1.0,
        memory_mb_used=4096,
        memory_mb_capacity=memory_mb - 512,
    )
    return record


def compute_service(binary: str, host: str, state: str) -> dict[str, Any]:
    return kind("compute_service").record_builder()(
        {
            "id": f"{binary}-{host}",
            "binary": binary,
            "host": host,
            "zone": "nova",
            "status": "enabled",
            "state": state,
            "forced_down": False,
        }
    )


def network_agent(host: str, alive: bool) -> dict[str, Any]:
    return kind("network_agent").record_builder()(
        {
            "id": f"agent-{host}",
            "agent_type": "Open vSwitch agent",
            "binary": "neutron-openvswitch-agent",
            "host": host,
            "alive": alive,
            "admin_state_up": True,
        }
    )


def server(
    sid: str,
    status: str = "ACTIVE",
    host: str | None = "cmp1",
    tags: list[str] | None = None,
    volumes: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return kind("server").record_builder()(
        {
            "id": f"srv-{sid}",
            "name": sid,
            "status": status,
            "tenant_id": "proj-1",
            "OS-EXT-SRV-ATTR:host": host,
            "OS-EXT-SRV-ATTR:hypervisor_hostname": f"{host}.example" if host else None,
            "flavor": {"original_name": "m1.small", "vcpus": 2, "ram": 2048, "disk": 20},
            "tags": tags or [],
            "os-extended-volumes:volumes_attached": [{"id": v} for v in volumes or []],
            **extra,
        }
    )


def port(pid: str, server_id: str) -> dict[str, Any]:
    return kind("port").record_builder()(
        {
            "id": pid,
            "name": "",
            "status": "ACTIVE",
            "project_id": "proj-1",
            "network_id": "net-1",
            "device_id": server_id,
            "device_owner": "compute:nova",
            "binding:host_id": "cmp1",
            "fixed_ips": [{"subnet_id": "sub-1", "ip_address": "192.0.2.10"}],
        }
    )


def volume(vid: str, server_id: str) -> dict[str, Any]:
    return kind("volume").record_builder()(
        {
            "id": vid,
            "name": "data",
            "status": "in-use",
            "os-vol-tenant-attr:tenant_id": "proj-1",
            "size": 10,
            "attachments": [{"server_id": server_id}],
        }
    )


def record_pass(
    store: Store,
    region: str,
    kinds: dict[str, list[dict[str, Any]]],
    failed: dict[str, str] | None = None,
) -> int:
    """One pass as the engine records it; kinds in `failed` are incomplete listings."""
    failed = failed or {}
    pass_id = store.begin_pass(CLOUD, region)
    for kind_name, records in kinds.items():
        store.record_kind(pass_id, CLOUD, region, kind_name, records, True, requests=1)
    for kind_name, error in failed.items():
        store.record_kind(pass_id, CLOUD, region, kind_name, [], False, error=error)
    store.finish_pass(pass_id, "partial" if failed else "complete", None, len(kinds))
    return pass_id


def fill_fleet(store: Store) -> None:
    """RegionOne: two hypervisors (cmp2 down), four servers, one gone; RegionTwo: one
    hypervisor and one server, from a partial pass."""
    common: dict[str, list[dict[str, Any]]] = {
        "hypervisor": [
            hypervisor("hv-1", "cmp1", "up", vcpus=32, vcpus_used=6, memory_mb=131072),
            hypervisor("hv-2", "cmp2", "down", vcpus=16, vcpus_used=2, memory_mb=65536),
        ],
        "compute_service": [
            compute_service("nova-compute", "cmp1", "up"),
            compute_service("nova-compute", "cmp2", "down"),
            compute_service("nova-conductor", "ctl1", "up"),
        ],
        "network_agent": [network_agent("cmp1", True), network_agent("cmp2", False)],
        "port": [port("port-1", "srv-web-1")],
        "volume": [volume("vol-1", "srv-web-1")],
    }
    web = [
        server("web-1", tags=["prod", "web"], volumes=["vol-1"], metadata={"owner": "ops"}),
        server("web-2", tags=["prod"], locked=True),
        server("broken-1", status="ERROR", host=None),
    ]
    record_pass(
        store,
        "RegionOne",
        {**common, "server": [*web, server("db-1", host="cmp2"), server("gone-1")]},
    )
    # db-1 stopped and gone-1 deleted since
    record_pass(
        store,
        "RegionOne",
        {**common, "server": [*web, server("db-1", status="SHUTOFF", host="cmp2")]},
    )
    record_pass(
        store,
        "RegionTwo",
        {
            "hypervisor": [hypervisor("hv-9", "cmp9", "up", 8, 1, 32768)],
            "server": [server("edge-1", host="cmp9")],
        },
        failed={"port": "GET /v2.0/ports answered 503"},
    )


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this module (skipped when there is none)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3
        )
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 as postgres: {exc}")
    name = f"sf_test_{secrets.token_hex(5)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def fleet(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """The fleet above, in a store of each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'stackfleet.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = open_store(url)
    fill_fleet(store)
    yield store
    store.close()


@pytest.fixture(scope="module")
def client(fleet: Store) -> Iterator[TestClient]:
    with TestClient(create_app(fleet)) as test_client:
        yield test_client


def names(body: dict[str, Any]) -> list[str]:
    return [item["name"] for item in body["items"]]


def assert_error(response: httpx.Response, status: int, *words: str) -> dict[str, Any]:
    """The response is an error in the API's shape whose message has `words`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == status
    for word in words:
        assert word in error["message"], error["message"]
    assert "Traceback" not in response.text
    return error


def scrape(test_client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics as {(sample name, sorted labels): value}."""
    response = test_client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


# ------------------------------------------------------------------ health


def test_healthz_answers_ok_when_the_store_answers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "store": "ok"}


def test_healthz_answers_503_when_the_store_does_not(tmp_path) -> None:
    # a database file in a directory that does not exist cannot be opened
    broken = Store(create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}"))
    with TestClient(create_app(broken)) as test_client:
        response = test_client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["store"] == "error"
    assert body["error"]["code"] == 503


# ------------------------------------------------------------------ listing


def test_listing_filters_on_status_and_host(client: TestClient) -> None:
    body = client.get(
        "/v1/resources", params={"kind": "server", "status": "ACTIVE", "host": "cmp1"}
    ).json()
    assert body["kind"] == "server"
    assert body["total"] == 2
    assert names(body) == ["web-1", "web-2"]
    assert body["links"] == {"next": None}


def test_listing_items_carry_fields_and_where_they_live(client: TestClient) -> None:
    body = client.get("/v1/resources", params={"kind": "server", "name": "web-1"}).json()
    (item,) = body["items"]
    assert item["id"] == "srv-web-1"
    assert item["cloud"] == CLOUD and item["region"] == "RegionOne"
    assert item["vcpus"] == 2 and item["flavor_name"] == "m1.small"
    assert item["deleted_at"] is None and item["first_seen"]


def test_listing_filters_compare_as_the_fields_type(client: TestClient) -> None:
    locked = client.get("/v1/resources", params={"kind": "server", "locked": "true"}).json()
    assert names(locked) == ["web-2"]
    tagged = client.get("/v1/resources", params={"kind": "server", "tags": "web"}).json()
    assert names(tagged) == ["web-1"]
    owned = client.get("/v1/resources", params={"kind": "server", "metadata": "owner=ops"}).json()
    assert names(owned) == ["web-1"]


def test_listing_pages_with_next_links_until_the_last_page(client: TestClient) -> None:
    seen: list[str] = []
    url: str | None = "/v1/resources?kind=server&region=RegionOne&limit=3"
    pages = 0
    while url:
        body = client.get(url).json()
        assert body["total"] == 4 and body["limit"] == 3
        seen += names(body)
        url = body["links"]["next"]
        pages += 1
    assert pages == 2
    assert seen == ["broken-1", "db-1", "web-1", "web-2"]


def test_next_link_keeps_filters_and_moves_the_offset(client: TestClient) -> None:
    body = client.get(
        "/v1/resources", params={"kind": "server", "status": "ACTIVE", "limit": 1}
    ).json()
    following = httpx.URL(body["links"]["next"])
    assert following.params["status"] == "ACTIVE"
    assert following.params["offset"] == "1"
    assert following.params["kind"] == "server"


def test_listing_hides_gone_resources_unless_asked(client: TestClient) -> None:
    live = client.get("/v1/resources", params={"kind": "server", "name": "gone-1"}).json()
    assert live["total"] == 0
    everything = client.get(
        "/v1/resources", params={"kind": "server", "name": "gone-1", "include_deleted": "true"}
    ).json()
    assert everything["total"] == 1
    assert everything["items"][0]["deleted_at"] is not None


def test_listing_by_cloud_and_region(client: TestClient) -> None:
    two = client.get(
        "/v1/resources", params={"kind": "server", "cloud": CLOUD, "region": "RegionTwo"}
    ).json()
    assert names(two) == ["edge-1"]
    other = client.get("/v1/resources", params={"kind": "server", "cloud": "staging"}).json()
    assert other["total"] == 0 and other["items"] == []


def test_empty_cloud_and_region_mean_all(client: TestClient) -> None:
    body = client.get("/v1/resources?kind=server&cloud=&region=").json()
    assert body["total"] == 5


def test_unknown_kind_is_a_400_listing_the_known_kinds(client: TestClient) -> None:
    error = assert_error(client.get("/v1/resources?kind=spaceship"), 400, "kind", "spaceship")
    assert error["field"] == "kind"
    assert "hypervisor" in error["message"] and "floating_ip" in error["message"]


def test_missing_kind_is_a_400_naming_it(client: TestClient) -> None:
    error = assert_error(client.get("/v1/resources"), 400, "'kind' is required")
    assert error["field"] == "kind"


def test_unknown_field_is_a_400_naming_it(client: TestClient) -> None:
    assert_error(client.get("/v1/resources?kind=server&colour=red"), 400, "colour", "fields:")


def test_badly_typed_filter_is_a_400_saying_what_was_expected(client: TestClient) -> None:
    assert_error(client.get("/v1/resources?kind=server&vcpus=many"), 400, "vcpus", "integer")


@pytest.mark.parametrize("limit", ["0", "1001", "ten"])
def test_limit_outside_1_to_1000_is_a_400_naming_it(client: TestClient, limit: str) -> None:
    error = assert_error(client.get(f"/v1/resources?kind=server&limit={limit}"), 400, "limit")
    assert error["field"] == "limit"
    assert limit in error["message"]


def test_negative_offset_is_a_400(client: TestClient) -> None:
    assert_error(client.get("/v1/resources?kind=server&offset=-1"), 400, "offset")


def test_filter_given_twice_is_a_400(client: TestClient) -> None:
    assert_error(client.get("/v1/resources?kind=server&host=a&host=b"), 400, "host", "once")


# ------------------------------------------------------------------ one resource


def test_server_detail_shows_its_ports_hypervisor_and_volumes(client: TestClient) -> None:
    response = client.get("/v1/resources/server/srv-web-1")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "web-1" and body["status"] == "ACTIVE"
    relations = body["relations"]
    assert [r["id"] for r in relations["ports"]] == ["port-1"]
    assert [r["name"] for r in relations["hypervisor"]] == ["cmp1.example"]
    assert [r["id"] for r in relations["volumes"]] == ["vol-1"]


def test_resource_detail_by_unique_name(client: TestClient) -> None:
    body = client.get("/v1/resources/hypervisor/cmp1.example").json()
    assert body["id"] == "hv-1"
    assert [s["name"] for s in body["relations"]["servers"]] == ["web-1", "web-2"]


def test_resource_detail_shows_recorded_changes(client: TestClient) -> None:
    body = client.get("/v1/resources/server/db-1").json()
    assert {"field": "status", "old": "ACTIVE", "new": "SHUTOFF"}.items() <= body["changes"][
        0
    ].items()


def test_missing_resource_is_a_404_in_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/v1/resources/server/no-such-server"), 404, "no-such-server")


def test_detail_of_unknown_kind_is_a_400(client: TestClient) -> None:
    assert_error(client.get("/v1/resources/spaceship/x"), 400, "kind")


def test_unknown_path_is_a_404_in_the_error_shape(client: TestClient) -> None:
    assert_error(client.get("/v2/nothing"), 404, "Not Found")


# ------------------------------------------------------------------ kinds, summary, passes


def test_kinds_lists_every_kind_with_typed_fields_and_relations(client: TestClient) -> None:
    kinds = {k["name"]: k for k in client.get("/v1/kinds").json()["kinds"]}
    assert set(kinds) == set(KINDS)
    server_kind = kinds["server"]
    types = {f["name"]: f["type"] for f in server_kind["fields"]}
    assert types["id"] == "string" and types["vcpus"] == "integer"
    assert types["tags"] == "array" and types["locked"] == "boolean"
    assert types["metadata"] == "object"
    assert {"name": "hypervisor", "target": "hypervisor"}.items() <= next(
        r for r in server_kind["relations"] if r["name"] == "hypervisor"
    ).items()
    assert {"name": "ports", "source": "port", "field": "device_id"} in server_kind[
        "reverse_relations"
    ]
    assert server_kind["doc"]


def test_summary_counts_hosts_capacity_servers_and_services(client: TestClient) -> None:
    body = client.get("/v1/summary", params={"cloud": CLOUD, "region": "RegionOne"}).json()
    assert body["clouds"] == [f"{CLOUD}/RegionOne"]
    assert body["hypervisors"] == {"total": 2, "up": 1, "down": 1}
    assert body["capacity"]["vcpu"] == {"used": 8, "capacity": 192, "percent": 4.2}
    assert body["servers_by_status"] == {"ACTIVE": 2, "SHUTOFF": 1, "ERROR": 1}
    assert body["services"]["compute_service"] == {"up": 2, "down": 1}
    assert body["counts"]["server"] == 4


def test_summary_without_filters_spans_every_region(client: TestClient) -> None:
    body = client.get("/v1/summary").json()
    assert body["hypervisors"]["total"] == 3
    assert body["counts"]["server"] == 5


def test_passes_newest_first_with_their_kind_outcomes(client: TestClient) -> None:
    passes = client.get("/v1/passes").json()["passes"]
    assert [(p["region"], p["status"]) for p in passes] == [
        ("RegionTwo", "partial"),
        ("RegionOne", "complete"),
        ("RegionOne", "complete"),
    ]
    ports = passes[0]["kinds"]["port"]
    assert ports["complete"] is False and "503" in ports["error"]
    assert passes[1]["kinds"]["server"]["count"] == 4


def test_passes_limit_and_cloud(client: TestClient) -> None:
    assert len(client.get("/v1/passes?limit=1").json()["passes"]) == 1
    assert client.get("/v1/passes?cloud=staging").json()["passes"] == []
    assert_error(client.get("/v1/passes?limit=0"), 400, "limit")


# ------------------------------------------------------------------ metrics


def test_metrics_show_hypervisor_capacity_in_prometheus_units(client: TestClient) -> None:
    samples = scrape(client)
    cmp1 = labels(cloud=CLOUD, region="RegionOne", hypervisor="cmp1.example", state="up")
    assert samples[("stackfleet_hypervisor_vcpus", cmp1)] == 32
    assert samples[("stackfleet_hypervisor_vcpus_used", cmp1)] == 6
    assert samples[("stackfleet_hypervisor_vcpus_capacity", cmp1)] == 128
    assert samples[("stackfleet_hypervisor_memory_capacity_bytes", cmp1)] == (131072 - 512) * MIB
    assert samples[("stackfleet_hypervisor_memory_used_bytes", cmp1)] == 4096 * MIB
    # no PCPU inventory in Placement is no series, not a zero
    assert ("stackfleet_hypervisor_pcpus_capacity", cmp1) not in samples


def test_metrics_count_hypervisors_servers_and_resources(client: TestClient) -> None:
    samples = scrape(client)
    one = {"cloud": CLOUD, "region": "RegionOne"}
    assert samples[("stackfleet_hypervisors", labels(**one, state="down"))] == 1
    assert samples[("stackfleet_hypervisors", labels(**one, state="up"))] == 1
    # down is published as 0 where nothing is down, so alerts see it change
    two_down = labels(cloud=CLOUD, region="RegionTwo", state="down")
    assert samples[("stackfleet_hypervisors", two_down)] == 0
    assert samples[("stackfleet_servers", labels(**one, status="ACTIVE"))] == 2
    assert samples[("stackfleet_servers", labels(**one, status="ERROR"))] == 1
    assert samples[("stackfleet_resources", labels(**one, kind="server"))] == 4
    assert samples[("stackfleet_resources", labels(**one, kind="port"))] == 1


def test_metrics_count_services_up_and_down_by_binary(client: TestClient) -> None:
    samples = scrape(client)
    one = {"cloud": CLOUD, "region": "RegionOne"}
    compute = {**one, "kind": "compute_service", "binary": "nova-compute"}
    assert samples[("stackfleet_services", labels(**compute, state="up"))] == 1
    assert samples[("stackfleet_services", labels(**compute, state="down"))] == 1
    conductor = {**one, "kind": "compute_service", "binary": "nova-conductor"}
    assert samples[("stackfleet_services", labels(**conductor, state="down"))] == 0
    agents = {**one, "kind": "network_agent", "binary": "neutron-openvswitch-agent"}
    assert samples[("stackfleet_services", labels(**agents, state="down"))] == 1


def test_metrics_show_last_pass_time_and_completeness(client: TestClient) -> None:
    samples = scrape(client)
    one = {"cloud": CLOUD, "region": "RegionOne"}
    two = {"cloud": CLOUD, "region": "RegionTwo"}
    finished = samples[("stackfleet_last_pass_timestamp_seconds", labels(**one, status="complete"))]
    assert abs(time.time() - finished) < 600
    assert ("stackfleet_last_pass_timestamp_seconds", labels(**two, status="partial")) in samples
    assert ("stackfleet_last_pass_timestamp_seconds", labels(**two, status="complete")) not in (
        samples
    )
    assert samples[("stackfleet_last_pass_complete", labels(**one))] == 1
    assert samples[("stackfleet_last_pass_complete", labels(**two))] == 0
    assert samples[("stackfleet_store_up", ())] == 1


def test_metrics_have_help_text(client: TestClient) -> None:
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    assert "Placement" in families["stackfleet_hypervisor_vcpus_capacity"].documentation
    assert families["stackfleet_servers"].type == "gauge"


def test_metrics_are_read_from_the_store_at_each_scrape(store: Store) -> None:
    with TestClient(create_app(store)) as test_client:
        key = ("stackfleet_servers", labels(cloud=CLOUD, region="r1", status="ACTIVE"))
        assert key not in scrape(test_client)
        record_pass(store, "r1", {"server": [server("a"), server("b")]})
        assert scrape(test_client)[key] == 2
        record_pass(store, "r1", {"server": [server("a")]})
        assert scrape(test_client)[key] == 1


def test_each_app_publishes_only_its_own_store(store: Store, tmp_path) -> None:
    other = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        record_pass(store, "r1", {"server": [server("a")]})
        record_pass(other, "r2", {"server": [server("b"), server("c")]})
        first = scrape(TestClient(create_app(store)))
        second = scrape(TestClient(create_app(other)))
    finally:
        other.close()
    r1 = ("stackfleet_servers", labels(cloud=CLOUD, region="r1", status="ACTIVE"))
    r2 = ("stackfleet_servers", labels(cloud=CLOUD, region="r2", status="ACTIVE"))
    assert first[r1] == 1 and r2 not in first
    assert second[r2] == 2 and r1 not in second


def test_metrics_say_store_down_instead_of_failing(tmp_path) -> None:
    broken = Store(create_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}"))
    with TestClient(create_app(broken)) as test_client:
        samples = scrape(test_client)
    assert samples[("stackfleet_store_up", ())] == 0
    assert not any(name.startswith("stackfleet_servers") for name, _ in samples)


def test_metrics_answer_openmetrics_when_asked(client: TestClient) -> None:
    response = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


# ------------------------------------------------------------------ errors and OpenAPI


def test_stackfleet_errors_map_to_statuses(store: Store, monkeypatch) -> None:
    class QuotaError(StackFleetError):
        http_status = 409

    app = create_app(store)
    with TestClient(app) as test_client:
        for error, status in ((CloudError("nova is down"), 502), (QuotaError("no room"), 409)):

            def fail(*_args: Any, error: Exception = error, **_kwargs: Any) -> Any:
                raise error

            monkeypatch.setattr(store, "summary", fail)
            assert_error(test_client.get("/v1/summary"), status, str(error))


def test_unexpected_errors_answer_500_without_details(store: Store, monkeypatch) -> None:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret internals at /srv/stackfleet")

    monkeypatch.setattr(store, "list_passes", fail)
    with TestClient(create_app(store), raise_server_exceptions=False) as test_client:
        response = test_client.get("/v1/passes")
    assert_error(response, 500, "internal error")
    assert "secret" not in response.text


def test_openapi_names_the_app_and_lists_the_kinds(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"] == {
        "title": "StackFleet",
        "version": __version__,
        "description": spec["info"]["description"],
    }
    assert spec["components"]["schemas"]["ResourceKind"]["enum"] == list(KINDS)
    listing = spec["paths"]["/v1/resources"]["get"]
    assert "422" not in listing["responses"]
    assert listing["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }
    assert client.get("/docs").status_code == 200


# ------------------------------------------------------------------ serving


def test_api_server_serves_on_a_free_port_and_stops(store: Store) -> None:
    server_ = ApiServer(store)
    with server_ as url:
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok", "store": "ok"}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)


def test_a_1000_hypervisor_20000_server_fleet_scrapes_in_well_under_a_second(
    store: Store,
) -> None:
    record_pass(
        store,
        "r1",
        {
            "hypervisor": [
                hypervisor(f"hv-{i}", f"cmp{i}", "up", 64, i % 64, 262144) for i in range(1000)
            ],
            "compute_service": [
                compute_service("nova-compute", f"cmp{i}", "up") for i in range(1000)
            ],
            "server": [server(f"vm-{i}", host=f"cmp{i % 1000}") for i in range(20000)],
        },
    )
    with TestClient(create_app(store)) as test_client:
        scrape(test_client)  # first use warms connections and caches
        # CPU time of this process (the app runs in it), so busy neighbours on a shared
        # test machine do not count against the scrape
        started = time.process_time()
        samples = scrape(test_client)
        elapsed = time.process_time() - started
    assert (
        samples[("stackfleet_servers", labels(cloud=CLOUD, region="r1", status="ACTIVE"))] == 20000
    )
    assert elapsed < 1.0


def test_docs_list_every_fleet_metric() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    for name, help_text in metric_names():
        assert f"`{name}`" in docs, name
        assert help_text in docs, name


def test_an_oversized_body_is_a_413_naming_the_body(store):
    from fastapi.testclient import TestClient

    from stackfleet.api.app import create_app
    from stackfleet.api.limits import MAX_BODY_BYTES

    client = TestClient(create_app(store))
    huge = [{"labels": {"alertname": "x" * 1000, "n": str(i)}} for i in range(1200)]
    answer = client.post("/v1/alerts", json=huge)
    assert answer.status_code == 413
    assert answer.json()["error"]["field"] == "body"
    assert str(MAX_BODY_BYTES) in answer.json()["error"]["message"]

    def chunks():
        for _ in range(MAX_BODY_BYTES // 1000 + 10):
            yield b"x" * 1000

    chunked = client.post(
        "/v1/alerts", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413
    assert client.get("/v1/alerts").json()["items"] == []


def test_an_overlong_url_is_a_414(store):
    from fastapi.testclient import TestClient

    from stackfleet.api.app import create_app

    client = TestClient(create_app(store))
    answer = client.get("/v1/resources", params={"name": "x" * 9000})
    assert answer.status_code == 414 and answer.json()["error"]["field"] == "url"
