"""Cheap questions about the store itself: does it answer, and has anything changed
since a caller last looked. The API's health check and its cached /metrics collectors
ask them instead of building SQL of their own."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import func, select

from stackfleet.store.db import Store
from stackfleet.store.schema import MetricSample, Pass


def ping(store: Store) -> None:
    """Read one row of a StackFleet table; raises SQLAlchemyError when the store does not
    answer. A table, not SELECT 1: a database without StackFleet's schema is no store."""
    with store.sessions() as session:
        session.execute(select(Pass.id).limit(1)).all()


def fleet_version(store: Store, metrics: Collection[str]) -> tuple[Any, ...]:
    """What changes when anything computed from the inventory and `metrics` can change:
    the newest pass (begun and finished) and the newest reading of those metrics. Two
    cheap indexed reads."""
    with store.sessions() as session:
        passes = session.execute(select(func.max(Pass.id), func.max(Pass.finished_at))).one()
        newest = session.scalar(
            select(func.max(MetricSample.ts)).where(MetricSample.metric.in_(list(metrics)))
        )
    return (*passes, newest)
