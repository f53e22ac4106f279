"""A small client of StackFleet's REST API for the OSC plugin: GETs with the Keystone
session (its token in X-Auth-Token) or a local token (Authorization: Bearer)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
from keystoneauth1 import exceptions as ks_exceptions


class FleetApiError(Exception):
    """The StackFleet API refused or failed a request; the message says which and why."""


class FleetClient:
    """GET JSON from a StackFleet API at `url`."""

    def __init__(
        self, session: Any = None, url: str | None = None, token: str | None = None
    ) -> None:
        if not url:
            raise FleetApiError(
                "no StackFleet API URL: register a 'fleet' endpoint in the catalog "
                "or give --fleet-url"
            )
        self.url = url.rstrip("/")
        self.session = session
        self.token = token

    def get(self, path: str, **params: Any) -> Any:
        """The decoded JSON of GET `path` (query `params` with None left out)."""
        query = {k: v for k, v in params.items() if v is not None}
        target = f"{self.url}{path}"
        try:
            if self.session is not None:
                response = self.session.get(
                    target, params=query, raise_exc=False, headers={"Accept": "application/json"}
                )
            else:
                headers = {"Accept": "application/json"}
                if self.token:
                    headers["Authorization"] = f"Bearer {self.token}"
                response = requests.get(target, params=query, headers=headers, timeout=60)
        except (requests.RequestException, ks_exceptions.ConnectionError) as exc:
            raise FleetApiError(f"cannot reach the StackFleet API at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise FleetApiError(
                f"StackFleet API answered {response.status_code} to GET {path}: {detail}"
            )
        return response.json()

    def pages(self, path: str, page_size: int = 1000, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paged list (`items`, `total`, `limit`, `offset`)."""
        offset = 0
        while True:
            body = self.get(path, limit=page_size, offset=offset, **params)
            items = body.get("items", [])
            yield from items
            offset += len(items)
            if not items or offset >= body.get("total", offset):
                return
