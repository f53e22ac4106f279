"""The current hardware status of each host (the newest BMC read and its last good
reading), kept in `bmc_status`. History lives in metric samples (store.metrics)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from stackfleet.core.errors import NotFoundError
from stackfleet.model.hardware import BmcReading, BmcStatus
from stackfleet.store.db import Store
from stackfleet.store.schema import BmcStatusRecord

_COLUMNS = (
    "kind",
    "resource_id",
    "address",
    "system_id",
    "source",
    "status",
    "error",
    "checked_at",
    "ok_at",
    "changed_at",
    "fingerprint",
    "power_budget_watts",
)


def save_statuses(store: Store, statuses: Iterable[BmcStatus]) -> int:
    """Insert or replace the status of each host (keyed by cloud, region, name)."""
    wanted = {(s.cloud, s.region, s.name): s for s in statuses}
    if not wanted:
        return 0
    with store.sessions.begin() as session:
        existing = {
            (row.cloud, row.region, row.name): row
            for row in session.scalars(
                select(BmcStatusRecord).where(
                    BmcStatusRecord.name.in_({name for _c, _r, name in wanted})
                )
            )
        }
        for key, status in wanted.items():
            row = existing.get(key)
            if row is None:
                row = BmcStatusRecord(cloud=status.cloud, region=status.region, name=status.name)
                session.add(row)
            for column in _COLUMNS:
                setattr(row, column, getattr(status, column))
            row.reading = status.reading.to_dict() if status.reading is not None else None
    return len(wanted)


def load_statuses(
    store: Store,
    cloud: str | None = None,
    region: str | None = None,
    names: Iterable[str] | None = None,
) -> list[BmcStatus]:
    """Stored statuses, ordered by cloud, region and host name."""
    query = select(BmcStatusRecord)
    if cloud:
        query = query.where(BmcStatusRecord.cloud == cloud)
    if region:
        query = query.where(BmcStatusRecord.region == region)
    if names is not None:
        query = query.where(BmcStatusRecord.name.in_(list(names)))
    query = query.order_by(BmcStatusRecord.cloud, BmcStatusRecord.region, BmcStatusRecord.name)
    with store.sessions() as session:
        return [_status(row) for row in session.scalars(query)]


def get_status(store: Store, name: str) -> BmcStatus:
    """The status of one host, by host name or inventory resource id."""
    with store.sessions() as session:
        row = session.scalars(
            select(BmcStatusRecord)
            .where((BmcStatusRecord.name == name) | (BmcStatusRecord.resource_id == name))
            .limit(1)
        ).first()
    if row is None:
        raise NotFoundError(
            f"no hardware status for {name!r}: is it in the BMC map (or an Ironic node with a "
            "Redfish address), and has `stackfleet hardware sweep` run?"
        )
    return _status(row)


def _status(row: BmcStatusRecord) -> BmcStatus:
    return BmcStatus(
        name=row.name,
        cloud=row.cloud,
        region=row.region,
        reading=BmcReading.from_dict(row.reading) if row.reading else None,
        **{column: getattr(row, column) for column in _COLUMNS},
    )
