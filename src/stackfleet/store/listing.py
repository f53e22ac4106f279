"""Listing resources from the store with SQLAlchemy Core: the query behind `servers
list`, `resources list` and `GET /v1/...` listings (through InventoryStore), written
against the Core table so a command that only lists imports neither the ORM nor the
mapping of every table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from stackfleet.core.errors import InvalidQueryError
from stackfleet.model import Kind, kind
from stackfleet.store.tables import RESOURCES, last_seen_of

# a resource's columns as shown: `last_seen` is the derived time (tables.last_seen_of)
SHOWN = (
    *(c for c in RESOURCES.c if c.name != "last_seen"),
    last_seen_of().label("last_seen"),
)

# fields kept in their own columns as well as in `attrs`
COLUMN_FIELDS = ("name", "project_id", "status")


def aware(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def list_resources(
    connection: Any,
    kind_name: str,
    filters: dict[str, str] | None = None,
    cloud: str | None = None,
    region: str | None = None,
    include_deleted: bool = False,
    limit: int | None = None,
    offset: int = 0,
    visible_to: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Resources of a kind matching `filters` (field name -> value, compared as the
    field's declared type; list fields match when they contain the value), with the
    total count before paging. `visible_to`: only what that project may read (its own,
    and what the kind shares with every project: `Kind.shared_when`). `connection`: a
    Core connection or an ORM session."""
    spec = known_kind(kind_name)
    columns = RESOURCES.c
    conditions = [columns.kind == spec.name]
    if visible_to is not None:
        conditions.append(visible_condition(spec, visible_to))
    if cloud:
        conditions.append(columns.cloud == cloud)
    if region:
        conditions.append(columns.region == region)
    if not include_deleted:
        conditions.append(columns.deleted_at.is_(None))
    list_filters: dict[str, str] = {}
    for field, raw in (filters or {}).items():
        condition = filter_condition(spec, field, raw)
        if condition is None:
            list_filters[field] = raw
        else:
            conditions.append(condition)
    query = select(*SHOWN).where(*conditions).order_by(columns.name, columns.resource_id)
    if list_filters:
        rows = [r for r in connection.execute(query) if _matches_lists(r.attrs, list_filters)]
        total = len(rows)
        rows = rows[offset : offset + limit if limit is not None else None]
    else:
        total = connection.scalar(select(func.count()).select_from(RESOURCES).where(*conditions))
        rows = list(connection.execute(query.offset(offset).limit(limit)))
    return [resource_dict(r) for r in rows], int(total or 0)


def known_kind(name: str) -> Kind:
    try:
        return kind(name)
    except KeyError as exc:
        raise InvalidQueryError(str(exc.args[0])) from None


def iso(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat() if value else None


def _field_type(spec: Kind, field: str) -> type:
    if field in ("id", *COLUMN_FIELDS):
        return str
    for f in spec.fields:
        if f.name == field:
            return f.type
    raise InvalidQueryError(
        f"{spec.name} has no field {field!r}; fields: {', '.join(spec.field_names())}"
    )


def _parse(field: str, typ: type, raw: str) -> Any:
    if typ is bool:
        lowered = raw.lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
        raise InvalidQueryError(f"filter {field}={raw!r}: expected true or false")
    if typ is int:
        try:
            return int(raw)
        except ValueError:
            raise InvalidQueryError(f"filter {field}={raw!r}: expected an integer") from None
    if typ is float:
        try:
            return float(raw)
        except ValueError:
            raise InvalidQueryError(f"filter {field}={raw!r}: expected a number") from None
    return raw


def filter_condition(spec: Kind, field: str, raw: str) -> Any:
    """A SQL condition for one filter, or None when it must be checked in Python
    (list and dict fields)."""
    typ = _field_type(spec, field)
    if field == "id":
        return RESOURCES.c.resource_id == raw
    if field in COLUMN_FIELDS:
        return RESOURCES.c[field] == raw
    if typ in (list, dict):
        return None
    value = _parse(field, typ, raw)
    element = RESOURCES.c.attrs[field]
    if typ is bool:
        return element.as_boolean() == value
    if typ is int:
        return element.as_integer() == value
    if typ is float:
        return element.as_float() == value
    if value == "":
        # FIELD= asks for "not set": JSON null, a missing key or an empty string
        return or_(element.as_string().is_(None), element.as_string() == "")
    return element.as_string() == value


def _attr_equals(table: Any, field: str, value: Any) -> ColumnElement[bool]:
    element = table.c.attrs[field]
    if isinstance(value, bool):
        return element.as_boolean() == value
    return element.as_string() == str(value)


def visible_condition(spec: Kind, project: str) -> ColumnElement[bool]:
    """What `project` may read of kind `spec`: its own resources, and those the kind
    shares with every project, by their own fields or through a related resource."""
    here = RESOURCES.c
    conditions: list[ColumnElement[bool]] = [here.project_id == project]
    conditions += [_attr_equals(RESOURCES, f, v) for f, v in spec.shared_when]
    if spec.shared_through is not None:
        field, target, pairs = spec.shared_through
        related = RESOURCES.alias()
        shared = (
            select(related.c.resource_id)
            .where(
                related.c.kind == target,
                related.c.cloud == here.cloud,
                related.c.region == here.region,
                related.c.deleted_at.is_(None),
                or_(*(_attr_equals(related, f, v) for f, v in pairs)),
            )
            .correlate(RESOURCES)
        )
        conditions.append(here.attrs[field].as_string().in_(shared))
    return or_(*conditions)


def _matches_lists(attrs: dict[str, Any], filters: dict[str, str]) -> bool:
    for field, raw in filters.items():
        value = attrs.get(field)
        if isinstance(value, dict):
            key, _, expected = raw.partition("=")
            if key not in value or (expected and str(value[key]) != expected):
                return False
        elif raw not in map(str, value or []):
            return False
    return True


def resource_dict(row: Any) -> dict[str, Any]:
    result = dict(row.attrs)
    result.update(
        cloud=row.cloud,
        region=row.region,
        kind=row.kind,
        first_seen=iso(row.first_seen),
        last_seen=iso(row.last_seen),
        last_changed=iso(row.last_changed),
        deleted_at=iso(row.deleted_at),
    )
    return result
