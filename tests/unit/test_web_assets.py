"""The dashboard and the API's docs pages are served from assets bundled into the
package (web/build-assets), never from a CDN: they work on a machine with no internet."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from stackfleet.api.app import create_app
from stackfleet.store import Store
from stackfleet.web.pages import VENDOR_DIR

pytestmark = pytest.mark.skipif(
    not (VENDOR_DIR / "versions.json").is_file(), reason="run web/build-assets first"
)


@pytest.fixture
def client(store: Store) -> TestClient:
    return TestClient(create_app(store))


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/ui/", "/ui/hosts/cmp1"])
def test_every_script_and_stylesheet_comes_from_this_server(client: TestClient, path: str):
    page = client.get(path)
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    urls += re.findall(r"""url: ?["']([^"']+)["']""", page.text)
    assert urls
    outside = [u for u in urls if re.match(r"^(https?:)?//", u)]
    assert not outside, outside
    for url in urls:
        if url.startswith("/ui/static/"):
            assert client.get(url).status_code == 200, url


def test_the_docs_pages_may_load_nothing_from_another_host(client: TestClient):
    for path in ("/docs", "/redoc"):
        policy = client.get(path).headers["content-security-policy"]
        assert "default-src 'self'" in policy and "http" not in policy


def test_the_root_leads_to_the_dashboard(client: TestClient):
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == "/ui/"
