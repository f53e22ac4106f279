"""Every API route is documented in docs/api.md, and every StackFleet metric family on
/metrics in docs/ (api.md, or the feature's own page: capacity, usage, hardware, ...)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from stackfleet.api import create_app
from stackfleet.store import Store

DOCS = Path(__file__).parents[2] / "docs"
METHOD_AND_PATH = re.compile(r"\b(GET|POST|PUT|PATCH|DELETE) (/[^\s`?\[),]*)")
# the standard metrics of any Python process, documented as such in api.md
PROCESS_PREFIXES = ("process_", "python_")


def without_parameter_names(path: str) -> str:
    """`/v1/alerts/{alert_id}/ack` and `/v1/alerts/{id}/ack` are the same route."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def documented_routes(text: str) -> set[tuple[str, str]]:
    return {(m, without_parameter_names(p)) for m, p in METHOD_AND_PATH.findall(text)}


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store)) as test_client:
        yield test_client


def test_every_route_is_documented_in_api_md(client: TestClient):
    documented = documented_routes((DOCS / "api.md").read_text(encoding="utf-8"))
    served = {
        (method.upper(), without_parameter_names(path))
        for path, item in client.get("/openapi.json").json()["paths"].items()
        for method in item
    }
    assert len(served) > 30
    missing = sorted(f"{m} {p}" for m, p in served - documented)
    assert not missing, f"routes missing from docs/api.md (as `METHOD /path`): {missing}"


def documented_metric_patterns() -> list[re.Pattern[str]]:
    """Metric names written in backticks in docs/*.md; `<metric>` in a name stands for
    the families named after what a probe read (stackfleet_rabbitmq_<metric>)."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(DOCS.glob("*.md")))
    names = set(re.findall(r"`(stackfleet_[a-z0-9_<>]+)", text))
    return [re.compile(re.escape(n).replace("<metric>", "[a-z0-9_]+") + "$") for n in names]


def test_every_metric_family_on_metrics_is_documented(client: TestClient):
    families = text_string_to_metric_families(client.get("/metrics").text)
    served = {f.name for f in families if not f.name.startswith(PROCESS_PREFIXES)}
    assert {"stackfleet_servers", "stackfleet_bmc_up", "stackfleet_quota_used"} <= served
    patterns = documented_metric_patterns()
    undocumented = sorted(
        name
        for name in served
        if not any(p.match(name) or p.match(f"{name}_total") for p in patterns)
    )
    assert not undocumented, f"metric families documented in no docs/*.md: {undocumented}"
