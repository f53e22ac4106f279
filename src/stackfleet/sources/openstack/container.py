"""Zun: containers.

openstacksdk has no proxy for Zun, so its calls go through a keystoneauth adapter on
the connection's session for the catalog's `container` service. A fleet-wide listing
asks for `all_projects` (admin); a cloud whose catalog has no Container service is
skipped, so nothing of the kind looks gone."""

from __future__ import annotations

from typing import Any

from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1.adapter import Adapter

from stackfleet.sources.openstack.context import ListContext, list_kind
from stackfleet.sources.openstack.listing import ServiceMissing, endpoint_of

MICROVERSION = "1.40"  # 1.24 exposed_ports, 1.20 command as a list, 1.12 delete ?stop


def adapter(conn: Any) -> Adapter:
    """A keystoneauth adapter for the catalog's `container` service, on the
    connection's session and region (one per connection: its endpoint is looked up
    once)."""
    made: Adapter | None = getattr(conn, "_stackfleet_zun", None)
    if made is None:
        made = Adapter(
            session=conn.session,
            service_type="container",
            region_name=conn.config.region_name,
            interface=conn.config.interface or "public",
            default_microversion=MICROVERSION,
        )
        conn._stackfleet_zun = made
    return made


def containers(ctx: ListContext) -> list[dict[str, Any]]:
    zun = adapter(ctx.target.conn)
    try:
        endpoint_of(zun)  # before any call is counted: a cloud without Zun is asked nothing
    except ksa_exc.EndpointNotFound as exc:
        raise ServiceMissing("container: service not in the catalog") from exc
    return list_kind(
        ctx, "container", zun, "/containers", "containers",
        {"all_projects": "true"}, MICROVERSION, marker_key="uuid",
    )  # fmt: skip
