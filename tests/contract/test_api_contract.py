"""Contract tests: every OpenStack call StackFleet makes, made against the real testbed and
against the simulator, must be answered alike — the same status codes, keys and value
types, the same paging, the same error bodies. A difference is a simulator bug (or, where
the real service's answer depends on how it is deployed, a normalisation documented in
contract_calls.py).

The list of calls is generated: a StackFleet pass runs against the simulator while every
request is recorded (contract_calls.record_calls), and each call is replayed on both
sides with its own query and microversion.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from contract_calls import CONTRACTS, SESSION_CALLS, Contract, GeneratedCalls, template
from contract_shapes import differences, shape_of

from stackfleet.sources.openstack.listing import marker_from, next_link

pytestmark = pytest.mark.contract

MARKER_PAGED = sorted(label for label, c in CONTRACTS.items() if c.paging == "marker")
OFFSET_PAGED = sorted(label for label, c in CONTRACTS.items() if c.paging == "offset")
WITH_MISSING = sorted(label for label, c in CONTRACTS.items() if c.missing or "{uuid}" in label)
SERVICES = ("identity", "compute", "network", "block-storage", "image", "placement", "baremetal")
# Response headers that echo the microversion a call asked for
ECHO_HEADERS = (
    "openstack-api-version",
    "x-openstack-nova-api-version",
    "x-openstack-ironic-api-version",
)
# ... and those giving the range a release supports (values differ between releases)
RANGE_HEADERS = ("x-openstack-ironic-api-min-version", "x-openstack-ironic-api-max-version")
# Cinder documents "infinite" and "unknown" as capacities a driver may report; the
# testbed's fake driver reports "infinite", a real backend numbers.
CAPACITY_WORDS = {"infinite", "unknown"}
# Lists the testbed cannot fill: it runs Neutron without agents.
EMPTY_IN_REALITY = {"network GET /agents", "block-storage GET /snapshots/detail"}
# Per-agent calls, answered on the testbed (no agents) by the list of the same objects
STAND_INS = {
    "network GET /agents/{uuid}/l3-routers": "/routers",
    "network GET /agents/{uuid}/dhcp-networks": "/networks",
}


def _call(generated: GeneratedCalls, label: str) -> Any:
    call = generated.api.get(label)
    if call is None:
        pytest.skip(f"StackFleet does not make {label} (see the coverage test)")
    return call


def _media_type(response: requests.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def _object_path(side: Any, call: Any) -> str:
    """The call's path for an object of this side's own fleet."""
    path = template(call.path)
    if "{uuid}" not in path:
        return str(call.path)
    assert call.service == "placement", f"no object to read {path} for on {side.name}"
    return path.replace("{uuid}", side.first_provider)


def _normalised(contract: Contract, body: Any) -> Any:
    if contract.collection == "pools" and isinstance(body, dict):
        for pool in body.get("pools", []):
            capabilities = pool.get("capabilities") or {}
            for key in ("total_capacity_gb", "free_capacity_gb"):
                if capabilities.get(key) in CAPACITY_WORDS:
                    capabilities[key] = None
    return body


def _body_differences(
    contract: Contract, real: Any, sim: Any, real_body: Any, sim_body: Any
) -> list[str]:
    optional = list(contract.optional)
    for alias, keys in contract.extension_keys.items():
        if not (alias in real.neutron_extensions and alias in sim.neutron_extensions):
            optional += [f"$.{contract.collection}[].{key}" for key in keys]
    problems: list[str] = []
    if contract.collection == "images":
        # Glance images are flat: besides the attributes of its schema, every key is a
        # custom property (data), always a string.
        core = real.image_core_properties
        custom = {
            key
            for body in (real_body, sim_body)
            for image in body.get("images", [])
            for key in image
            if key not in core
        }
        optional += [f"$.images[].{key}" for key in custom]
        problems += [
            f"$.images[].{key}: custom property {image['id']} is not a string"
            for image in sim_body.get("images", [])
            for key in custom
            if key in image and not isinstance(image[key], str)
        ]
    real_shape = shape_of(_normalised(contract, real_body), contract.maps)
    sim_shape = shape_of(_normalised(contract, sim_body), contract.maps)
    return problems + differences(
        real_shape, sim_shape, optional=optional, open_objects=contract.open
    )


def _version_headers(response: requests.Response) -> dict[str, str | None]:
    headers = {name: response.headers.get(name) for name in ECHO_HEADERS}
    headers |= {name: "present" for name in RANGE_HEADERS if name in response.headers}
    return headers


# -- the generated list ------------------------------------------------------------------


def test_every_call_stackfleet_makes_has_a_contract_check(generated: GeneratedCalls) -> None:
    assert generated.pass_result.status == "complete", generated.pass_result.error
    # every call of the pass went through the recorder, and the simulator served each
    assert set(generated.pass_result.requests) == set(generated.api)
    assert set(generated.api) <= set(generated.served)
    unchecked = sorted(
        label for label in generated.labels if label not in CONTRACTS and label not in SESSION_CALLS
    )
    assert not unchecked, (
        "StackFleet makes OpenStack calls that no contract test compares with the real "
        f"service: {unchecked}; add them to CONTRACTS in tests/contract/contract_calls.py"
    )
    stale = sorted(set(CONTRACTS) - set(generated.api))
    assert not stale, f"contracts for calls StackFleet no longer makes: {stale}"


def test_the_generated_list_holds_every_service_stackfleet_reads(generated: GeneratedCalls) -> None:
    services = {label.split()[0] for label in generated.labels}
    assert set(SERVICES) <= services
    assert "identity POST /auth/tokens" in generated.labels
    assert len(generated.api) >= 20


# -- each call ---------------------------------------------------------------------------


@pytest.mark.parametrize("label", sorted(CONTRACTS))
def test_response_matches_reality(
    label: str, generated: GeneratedCalls, real: Any, sim: Any
) -> None:
    call = _call(generated, label)
    contract = CONTRACTS[label]
    if label in STAND_INS:
        real_response, sim_response = real.get(call, STAND_INS[label]), sim.get(call)
    else:
        real_response = real.get(call, _object_path(real, call))
        sim_response = sim.get(call, _object_path(sim, call))
    assert real_response.status_code == 200, real_response.text[:300]
    assert sim_response.status_code == real_response.status_code, sim_response.text[:300]
    assert _media_type(sim_response) == _media_type(real_response)
    assert _version_headers(sim_response) == _version_headers(real_response)
    real_body, sim_body = real_response.json(), sim_response.json()
    if contract.collection and label not in EMPTY_IN_REALITY:
        assert real_body[contract.collection], f"the testbed's {contract.collection} list is empty"
    problems = _body_differences(contract, real, sim, real_body, sim_body)
    assert not problems, "\n".join(problems)


@dataclass(frozen=True)
class Paging:
    """How one side pages a list, seen through small pages near its start and end."""

    first_page: tuple[int, tuple[str, ...]]  # objects, link rels
    link_form: tuple[bool, tuple[str, ...]]  # absolute URL?, query parameters
    next_link_leads_on: bool
    last_object_alone: tuple[int, tuple[str, ...]]  # a full page that ends the list
    after_the_last: tuple[int, tuple[str, ...]]  # the marker of the last object
    unknown_marker: int  # status code
    top_level_keys: tuple[str, ...]


def _rels(body: dict[str, Any], collection: str) -> tuple[str, ...]:
    rels = [str(link.get("rel")) for link in body.get(f"{collection}_links") or []]
    if isinstance(body.get("next"), str):
        rels.append("next")
    return tuple(rels)


def _paging(side: Any, call: Any, contract: Contract) -> tuple[Paging, int]:
    collection, key = str(contract.collection), contract.marker_key

    def page(**params: Any) -> tuple[int, dict[str, Any]]:
        response = side.get(call, params=params)
        return response.status_code, response.json() if response.status_code < 400 else {}

    _, whole = page(limit=1000)
    ids = [str(obj[key]) for obj in whole[collection]]
    assert len(ids) >= 2, f"{side.name} has fewer than 2 {collection}: cannot see paging"
    _, first = page(limit=1)
    link = next_link(first, collection) or ""
    _, second = page(limit=1, marker=marker_from(link))
    _, last_alone = page(limit=1, marker=ids[-2])
    _, after = page(limit=1, marker=ids[-1])
    unknown, _ = page(limit=1, marker=str(uuid.uuid4()))
    observed = Paging(
        first_page=(len(first[collection]), _rels(first, collection)),
        link_form=(link.startswith("http"), tuple(sorted(parse_qs(urlsplit(link).query)))),
        next_link_leads_on=[str(o[key]) for o in second.get(collection, [])] == ids[1:2],
        last_object_alone=(len(last_alone[collection]), _rels(last_alone, collection)),
        after_the_last=(len(after[collection]), _rels(after, collection)),
        unknown_marker=unknown,
        top_level_keys=tuple(sorted(first)),
    )
    return observed, len(ids)


@pytest.mark.parametrize("label", MARKER_PAGED)
def test_marker_paging_matches_reality(
    label: str, generated: GeneratedCalls, real: Any, sim: Any
) -> None:
    if label in EMPTY_IN_REALITY:
        pytest.skip(f"the testbed has nothing to page for {label}")
    call = _call(generated, label)
    contract = CONTRACTS[label]
    real_paging, _ = _paging(real, call, contract)
    sim_paging, _ = _paging(sim, call, contract)
    assert real_paging.first_page[0] == 1 and real_paging.next_link_leads_on
    assert sim_paging == real_paging


@pytest.mark.parametrize("label", OFFSET_PAGED)
def test_offset_paging_matches_reality(
    label: str, generated: GeneratedCalls, real: Any, sim: Any
) -> None:
    call = _call(generated, label)
    collection = str(CONTRACTS[label].collection)

    def observe(side: Any) -> tuple[Any, ...]:
        def ids(**params: Any) -> list[str]:
            response = side.get(call, params=params)
            assert response.status_code == 200, response.text[:300]
            return [str(obj["id"]) for obj in response.json()[collection]]

        whole = ids(limit=1000, offset=0)
        assert len(whole) >= 2, f"{side.name} has fewer than 2 {collection}"
        first, second = ids(limit=1, offset=0), ids(limit=1, offset=1)
        return (
            first == whole[:1],
            second == whole[1:2],
            ids(limit=1, offset=len(whole)),
            sorted(side.get(call, params={"limit": 1, "offset": 0}).json()),
        )

    assert observe(sim) == observe(real)


@pytest.mark.parametrize("label", WITH_MISSING)
def test_missing_resource_error_matches_reality(
    label: str, generated: GeneratedCalls, real: Any, sim: Any
) -> None:
    call = _call(generated, label)
    contract = CONTRACTS[label]
    missing = str(uuid.uuid4())
    path = (contract.missing or template(call.path)).replace("{uuid}", missing)
    # the single-object URL of a listing takes no list parameters
    no_query = dict.fromkeys(call.params or {})
    responses = [side.get(call, path, params=no_query) for side in (real, sim)]
    real_response, sim_response = responses
    assert real_response.status_code == 404, real_response.text[:300]
    assert sim_response.status_code == 404, sim_response.text[:300]
    assert _media_type(sim_response) == _media_type(real_response)
    if _media_type(real_response) != "application/json":
        assert sim_response.text == real_response.text
        return
    real_body, sim_body = (_decoded_error(r.json()) for r in responses)
    problems = differences(shape_of(real_body), shape_of(sim_body))
    assert not problems, "\n".join(problems)


def _decoded_error(body: Any) -> Any:
    """Ironic nests its error as a JSON string in `error_message`: compare its shape too."""
    if isinstance(body, dict) and isinstance(body.get("error_message"), str):
        return {**body, "error_message": json.loads(body["error_message"])}
    return body


# -- what keystoneauth does on its own ---------------------------------------------------


@pytest.mark.parametrize("scope", ["project", "system"])
def test_token_issue_matches_reality(scope: str, real: Any, sim: Any) -> None:
    def issue(side: Any) -> requests.Response:
        auth = side.auth
        scoped = (
            {"project": {"name": auth["project_name"], "domain": {"name": "Default"}}}
            if scope == "project"
            else {"system": {"all": True}}
        )
        user = {
            "name": auth["username"],
            "domain": {"name": auth.get("user_domain_name") or "Default"},
            "password": auth["password"],
        }
        body = {
            "auth": {
                "identity": {"methods": ["password"], "password": {"user": user}},
                "scope": scoped,
            }
        }
        return requests.post(side.root("identity") + "v3/auth/tokens", json=body, timeout=30)

    real_response, sim_response = issue(real), issue(sim)
    assert real_response.status_code == 201, real_response.text[:300]
    assert sim_response.status_code == 201, sim_response.text[:300]
    assert "X-Subject-Token" in sim_response.headers
    problems = differences(shape_of(real_response.json()), shape_of(sim_response.json()))
    assert not problems, "\n".join(problems)


def _version_range(service: str, root_document: dict[str, Any]) -> tuple[str, str] | None:
    """The microversion range a service's version document advertises."""
    if service == "baremetal":
        version = root_document["default_version"]
        return version["min_version"], version["version"]
    for version in root_document.get("versions") or []:
        if service == "placement":
            return version["min_version"], version["max_version"]
        if version.get("status") == "CURRENT" and version.get("version"):
            return version["min_version"], version["version"]
    return None


def _as_tuple(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


@pytest.mark.parametrize("service", SERVICES)
def test_version_discovery_matches_reality(
    service: str, generated: GeneratedCalls, real: Any, sim: Any
) -> None:
    urls = {side.name: [side.root(service)] for side in (real, sim)}
    if service == "identity":  # keystoneauth also reads the v3 document
        for side in (real, sim):
            urls[side.name].append(side.root(service) + "v3")
    documents = {}
    for real_url, sim_url in zip(urls["testbed"], urls["simulator"], strict=True):
        real_response = requests.get(real_url, timeout=30, allow_redirects=False)
        sim_response = requests.get(sim_url, timeout=30, allow_redirects=False)
        assert sim_response.status_code == real_response.status_code, sim_url
        assert _media_type(sim_response) == _media_type(real_response)
        problems = differences(shape_of(real_response.json()), shape_of(sim_response.json()))
        assert not problems, "\n".join(problems)
        documents.setdefault("testbed", real_response.json())
        documents.setdefault("simulator", sim_response.json())
    # The microversion StackFleet pins for this service is one both sides serve.
    asked = {c.microversion for c in generated.api.values() if c.service == service} - {None}
    for side_name, document in documents.items() if asked else ():
        supported = _version_range(service, document)
        for microversion in asked:
            assert supported, f"{side_name} {service} advertises no microversions"
            low, high = supported
            assert _as_tuple(low) <= _as_tuple(str(microversion)) <= _as_tuple(high), (
                f"{side_name} {service} serves {low}-{high}, StackFleet asks for {microversion}"
            )
