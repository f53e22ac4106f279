"""Configuration revisions, their history, campaigns and campaign steps in the store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from stackfleet.core.errors import ConflictError, NotFoundError
from stackfleet.store.db import Store
from stackfleet.store.listing import aware
from stackfleet.store.schema import Campaign, CampaignStep, ConfigEvent, ConfigRevision


def _iso(value: datetime | None) -> str | None:
    moment = aware(value)
    return moment.isoformat() if moment is not None else None


# --------------------------------------------------------------------- revisions


def revision_dict(row: ConfigRevision) -> dict[str, Any]:
    return {
        "host": row.host,
        "service": row.service,
        "digest": row.digest,
        "content": row.content,
        "created_at": _iso(row.created_at),
        "tested_at": _iso(row.tested_at),
        "tested_by": row.tested_by,
    }


def save_revision(
    store: Store, host: str, service: str, digest: str, content: dict[str, Any], now: datetime
) -> bool:
    """Keep a revision (once per content); True when it was new."""
    with store.sessions.begin() as session:
        existing = session.scalar(
            select(ConfigRevision.id).where(
                ConfigRevision.host == host,
                ConfigRevision.service == service,
                ConfigRevision.digest == digest,
            )
        )
        if existing is not None:
            return False
        session.add(
            ConfigRevision(
                host=host, service=service, digest=digest, content=content, created_at=now
            )
        )
    return True


def add_event(
    store: Store,
    host: str,
    service: str,
    digest: str,
    event: str,
    now: datetime,
    campaign: str | None = None,
) -> None:
    """Append to a host's service history (captured, applied, tested, rolled-back)."""
    with store.sessions.begin() as session:
        session.add(
            ConfigEvent(
                host=host, service=service, digest=digest, event=event, campaign=campaign, at=now
            )
        )


def mark_tested(
    store: Store, host: str, service: str, digest: str, now: datetime, campaign: str
) -> None:
    with store.sessions.begin() as session:
        session.execute(
            update(ConfigRevision)
            .where(
                ConfigRevision.host == host,
                ConfigRevision.service == service,
                ConfigRevision.digest == digest,
            )
            .values(tested_at=now, tested_by=campaign)
        )
    add_event(store, host, service, digest, "tested", now, campaign)


def get_revision(store: Store, host: str, service: str, digest: str) -> dict[str, Any]:
    """One revision by its digest or a unique prefix of it."""
    with store.session() as session:
        rows = list(
            session.scalars(
                select(ConfigRevision).where(
                    ConfigRevision.host == host,
                    ConfigRevision.service == service,
                    ConfigRevision.digest.startswith(digest),
                )
            )
        )
    if not rows:
        raise NotFoundError(f"no revision {digest!r} of {service} on {host}")
    if len(rows) > 1:
        raise ConflictError(f"revision prefix {digest!r} names {len(rows)} revisions: give more")
    return revision_dict(rows[0])


def history(store: Store, host: str, service: str | None = None) -> list[dict[str, Any]]:
    """Events of a host (one service, or all), newest first."""
    conditions = [ConfigEvent.host == host]
    if service:
        conditions.append(ConfigEvent.service == service)
    with store.session() as session:
        return [
            {
                "id": e.id,
                "host": e.host,
                "service": e.service,
                "digest": e.digest,
                "event": e.event,
                "campaign": e.campaign,
                "at": _iso(e.at),
            }
            for e in session.scalars(
                select(ConfigEvent).where(*conditions).order_by(ConfigEvent.id.desc())
            )
        ]


def latest_event(store: Store, host: str, service: str, *events: str) -> dict[str, Any] | None:
    """The newest event of one of `events` for a host's service."""
    with store.session() as session:
        row = session.scalar(
            select(ConfigEvent)
            .where(
                ConfigEvent.host == host,
                ConfigEvent.service == service,
                ConfigEvent.event.in_(events),
            )
            .order_by(ConfigEvent.id.desc())
            .limit(1)
        )
    if row is None:
        return None
    return {"digest": row.digest, "event": row.event, "campaign": row.campaign, "at": _iso(row.at)}


def last_tested(store: Store, host: str, service: str) -> dict[str, Any] | None:
    """The revision most recently marked tested on this host's service."""
    event = latest_event(store, host, service, "tested")
    return None if event is None else get_revision(store, host, service, event["digest"])


def host_services(store: Store) -> list[tuple[str, str]]:
    """(host, service) pairs with any revision."""
    with store.session() as session:
        return sorted(
            {
                (h, s)
                for h, s in session.execute(select(ConfigRevision.host, ConfigRevision.service))
            }
        )


# --------------------------------------------------------------------- campaigns


def campaign_dict(row: Campaign) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "spec": row.spec,
        "plan": row.plan,
        "error": row.error,
        "approved_batches": list(row.approved_batches or []),
        "owner": row.owner,
        "heartbeat_at": _iso(row.heartbeat_at),
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def create_campaign(
    store: Store,
    name: str,
    spec: dict[str, Any],
    plan: dict[str, Any],
    source: str,
    steps: list[tuple[str, int, int, str]],
    now: datetime,
    status: str = "running",
) -> int:
    """A new campaign with its steps (host, batch, position, step), all pending."""
    try:
        with store.sessions.begin() as session:
            row = Campaign(
                name=name,
                status=status,
                spec=spec,
                plan=plan,
                source=source,
                approved_batches=[],
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            for host, batch, position, step in steps:
                session.add(
                    CampaignStep(
                        campaign_id=row.id,
                        host=host,
                        batch=batch,
                        position=position,
                        step=step,
                        status="pending",
                        detail={},
                    )
                )
            return row.id
    except IntegrityError as exc:
        raise ConflictError(
            f"a campaign named {name!r} exists already: give the new one another name "
            "(or see `stackfleet campaign status " + name + "`)"
        ) from exc


def get_campaign(store: Store, name: str) -> dict[str, Any]:
    with store.session() as session:
        row = session.scalar(select(Campaign).where(Campaign.name == name))
        if row is None:
            known = list(session.scalars(select(Campaign.name)))
            raise NotFoundError(
                f"no campaign {name!r}"
                + (f"; campaigns: {', '.join(sorted(known))}" if known else "")
            )
        return campaign_dict(row)


def list_campaigns(store: Store, status: str | None = None) -> list[dict[str, Any]]:
    with store.session() as session:
        query = select(Campaign).order_by(Campaign.id)
        if status:
            query = query.where(Campaign.status == status)
        return [campaign_dict(r) for r in session.scalars(query)]


def set_campaign(store: Store, campaign_id: int, now: datetime, **values: Any) -> None:
    with store.sessions.begin() as session:
        session.execute(
            update(Campaign).where(Campaign.id == campaign_id).values(updated_at=now, **values)
        )


def claim_campaign(
    store: Store, campaign_id: int, owner: str, now: datetime, stale_before: datetime
) -> bool:
    """Take the campaign's lease: free, ours, or stale (no heartbeat since
    `stale_before`). One process carries a campaign out at a time."""
    with store.sessions.begin() as session:
        result = session.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign_id,
                (Campaign.owner.is_(None))
                | (Campaign.owner == owner)
                | (Campaign.heartbeat_at < stale_before),
            )
            .values(owner=owner, heartbeat_at=now)
        )
        return bool(getattr(result, "rowcount", 0))


def release_campaign(store: Store, campaign_id: int, owner: str) -> None:
    with store.sessions.begin() as session:
        session.execute(
            update(Campaign)
            .where(Campaign.id == campaign_id, Campaign.owner == owner)
            .values(owner=None, heartbeat_at=None)
        )


def step_dict(row: CampaignStep) -> dict[str, Any]:
    return {
        "id": row.id,
        "host": row.host,
        "batch": row.batch,
        "position": row.position,
        "step": row.step,
        "status": row.status,
        "detail": row.detail or {},
        "error": row.error,
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "seconds": row.seconds,
    }


def steps_of(store: Store, campaign_id: int) -> list[dict[str, Any]]:
    with store.session() as session:
        return [
            step_dict(r)
            for r in session.scalars(
                select(CampaignStep)
                .where(CampaignStep.campaign_id == campaign_id)
                .order_by(CampaignStep.batch, CampaignStep.host, CampaignStep.position)
            )
        ]


def add_step(
    store: Store, campaign_id: int, host: str, batch: int, position: int, step: str
) -> None:
    """Add a step (a rollback found needed) unless it exists."""
    try:
        with store.sessions.begin() as session:
            session.add(
                CampaignStep(
                    campaign_id=campaign_id,
                    host=host,
                    batch=batch,
                    position=position,
                    step=step,
                    status="pending",
                    detail={},
                )
            )
    except IntegrityError:
        return


def set_step(store: Store, step_id: int, **values: Any) -> None:
    with store.sessions.begin() as session:
        session.execute(update(CampaignStep).where(CampaignStep.id == step_id).values(**values))
