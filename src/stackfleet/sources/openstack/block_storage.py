"""Cinder: volumes of every project, volume services, scheduler pools."""

from __future__ import annotations

from typing import Any

from stackfleet.model import kind
from stackfleet.sources.openstack.context import ListContext, list_kind
from stackfleet.sources.openstack.listing import request_json

MICROVERSION = "3.60"


def volumes(ctx: ListContext) -> list[dict[str, Any]]:
    return list_kind(
        ctx,
        "volume",
        ctx.target.conn.block_storage,
        "/volumes/detail",
        "volumes",
        {"all_tenants": "1"},
        MICROVERSION,
    )


def snapshots(ctx: ListContext) -> list[dict[str, Any]]:
    return list_kind(
        ctx,
        "volume_snapshot",
        ctx.target.conn.block_storage,
        "/snapshots/detail",
        "snapshots",
        {"all_tenants": "1"},
        MICROVERSION,
    )


def _single(ctx: ListContext, kind_name: str, path: str, key: str, **params: Any) -> list[Any]:
    body = request_json(
        ctx.target.conn.block_storage,
        path,
        ctx.log,
        ctx.label("block-storage", path),
        params or None,
        MICROVERSION,
    )
    build = kind(kind_name).record_builder()
    return [build(obj) for obj in body.get(key, [])]


def services(ctx: ListContext) -> list[dict[str, Any]]:
    return _single(ctx, "block_storage_service", "/os-services", "services")


def pools(ctx: ListContext) -> list[dict[str, Any]]:
    return _single(ctx, "storage_pool", "/scheduler-stats/get_pools", "pools", detail="True")
