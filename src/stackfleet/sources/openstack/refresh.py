"""Reading one resource by id (event-driven refresh): the same record a pass builds,
from one GET through the service's openstacksdk proxy, at the microversion its
listing uses (docs/api-calls.md)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keystoneauth1.exceptions as ksa_exc
import openstack.exceptions

from stackfleet.model import kind
from stackfleet.sources.openstack import block_storage, compute
from stackfleet.sources.openstack.connection import CloudTarget
from stackfleet.sources.openstack.listing import (
    ListingError,
    RequestLog,
    ServiceMissing,
    endpoint_of,
)


class ResourceGone(Exception):
    """The service answered 404: it does not know the resource (any more)."""


@dataclass(frozen=True)
class SingleRead:
    """How to GET one resource of a kind: the proxy, the path, the key of the object
    in the body and the microversion."""

    proxy: Callable[[CloudTarget], Any]
    path: str
    key: str
    microversion: str | None = None


READS: dict[str, SingleRead] = {
    "server": SingleRead(lambda t: t.conn.compute, "/servers/{id}", "server", compute.MICROVERSION),
    "port": SingleRead(lambda t: t.conn.network, "/ports/{id}", "port"),
    "floating_ip": SingleRead(lambda t: t.conn.network, "/floatingips/{id}", "floatingip"),
    "network": SingleRead(lambda t: t.conn.network, "/networks/{id}", "network"),
    "subnet": SingleRead(lambda t: t.conn.network, "/subnets/{id}", "subnet"),
    "router": SingleRead(lambda t: t.conn.network, "/routers/{id}", "router"),
    "security_group": SingleRead(
        lambda t: t.conn.network, "/security-groups/{id}", "security_group"
    ),
    "security_group_rule": SingleRead(
        lambda t: t.conn.network, "/security-group-rules/{id}", "security_group_rule"
    ),
    "volume": SingleRead(
        lambda t: t.conn.block_storage, "/volumes/{id}", "volume", block_storage.MICROVERSION
    ),
    # Glance answers the image itself, not wrapped in a key
    "image": SingleRead(lambda t: t.conn.image, "/images/{id}", ""),
}


def refreshable(kind_name: str) -> bool:
    """Whether one resource of the kind can be re-read on its own."""
    return kind_name in READS


def read_one(
    target: CloudTarget, kind_name: str, resource_id: str, log: RequestLog | None = None
) -> dict[str, Any]:
    """The current record of one resource; ResourceGone on 404, ListingError when the
    read fails in any other way (then nothing about the resource is known)."""
    read = READS.get(kind_name)
    if read is None:
        raise ListingError(f"{kind_name}: cannot be re-read on its own")
    proxy = read.proxy(target)
    label = f"{kind(kind_name).service} GET {read.path}"
    (log or RequestLog()).add(label)
    try:
        response = proxy.get(
            endpoint_of(proxy) + read.path.format(id=resource_id),
            microversion=read.microversion,
            raise_exc=False,
        )
    except ksa_exc.EndpointNotFound as exc:
        raise ServiceMissing(f"{label}: service not in the catalog") from exc
    except (ksa_exc.ClientException, openstack.exceptions.SDKException) as exc:
        raise ListingError(f"{label}: {type(exc).__name__}: {exc}") from exc
    if response.status_code == 404:
        raise ResourceGone(f"{kind_name} {resource_id}: not found (404)")
    if response.status_code >= 400:
        text = (response.text or "").strip().replace("\n", " ")[:300]
        raise ListingError(f"{label}: HTTP {response.status_code}: {text}")
    try:
        body = response.json()
    except ValueError as exc:
        raise ListingError(f"{label}: response is not JSON ({exc})") from exc
    obj = body.get(read.key) if read.key else body
    if not isinstance(obj, dict):
        raise ListingError(f"{label}: response has no {read.key or 'object'!r}")
    return kind(kind_name).record_builder()(obj)
