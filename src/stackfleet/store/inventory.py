"""Inventory in the store: recording passes, upserting what they saw, and queries.

The one rule that protects users' data lives here: a resource is marked gone
(`deleted_at`) only by a pass whose listing of that kind was complete.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    String,
    and_,
    cast,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from stackfleet.core.errors import InvalidQueryError, NotFoundError
from stackfleet.model import KINDS, Kind, kind
from stackfleet.store.encoding import EncodedRecord, digest_of, encode_json, record_hash
from stackfleet.store.listing import (
    iso,
    known_kind,
    list_resources,
    resource_dict,
    visible_condition,
)
from stackfleet.store.schema import (
    ActionRecord,
    KindSeen,
    Pass,
    PassKind,
    Resource,
    ResourceChange,
)
from stackfleet.store.tables import RESOURCES  # the Core table Resource maps, bulk inserts

# SQLite accepts at most 32766 bound parameters per statement
CHUNK = 500


def _no_raw_hash(_resource_id: str) -> str | None:
    return None


def utcnow() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class KindOutcome:
    """What recording one kind of one pass changed in the store."""

    added: int
    changed: int
    unchanged: int
    gone: int
    # why a listing that looked complete was recorded as incomplete (a sharp shrink
    # waiting for confirmation), else None
    held: str | None = None


# The message of a kind held back for shrinking sharply (PassKind.error starts with it).
SHRINK_HELD = "suspect shrink"
# ... and of a listing older than what the store holds (a stale replica or cache).
STALE_LISTING = "stale listing"
# the service's last-save stamps, in the order they are looked for
SAVED_STAMPS = ("updated_at", "updated")


@dataclass(frozen=True)
class ShrinkLimit:
    """When a listing that looks complete shrinks too sharply to be believed at once.

    A page cut short with its next link dropped looks exactly like the end of the list:
    every resource after the cut would be marked gone, and policies would judge what
    is left (floating IPs whose port "is gone" look unattached). So a kind whose
    complete-looking listing misses more than `percent` % **and** more than `count` of
    the resources the store has live in that cloud region is recorded as incomplete
    (nothing marked gone, no policy decides on the kind there) until the next pass
    sees the same shrink and confirms it (a listing of about the same size: within
    `count` of the held one; truncations cut at different places are held again).

    Why 10 % and 10: passes run minutes apart, and ordinary churn between two of them
    is a few resources, far under 10 % of any kind big enough to matter; both must be
    exceeded, so small kinds (a handful of routers) are not held for every deletion.
    A real mass deletion (a project torn down) is only recognised one pass later, which
    costs little; believing a truncated listing costs users' resources. Operators tune
    it in the settings file (`collect.shrink_percent`, `collect.shrink_count`)."""

    percent: float = 10.0
    count: int = 10

    def exceeded(self, missing: int, live: int) -> bool:
        return missing > self.count and missing * 100.0 > self.percent * live


class InventoryStore:
    """Inventory reads and writes; mixed into `stackfleet.store.Store`."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        # recorded on every pass this process begins (a worker's member id)
        self.collector: str | None = None

    # ---------------------------------------------------------------- passes
    def begin_pass(self, cloud: str, region: str) -> int:
        """Record a new running pass of `cloud`/`region`. An older pass of that region
        still marked running was cut off (its collector was killed, or lost the region
        to another worker mid-pass): it becomes `interrupted`, never complete."""
        now = utcnow()
        with self._sessions.begin() as session:
            row = Pass(
                cloud=cloud,
                region=region,
                started_at=now,
                status="running",
                collector=self.collector,
            )
            session.add(row)
            session.flush()
            session.execute(
                update(Pass)
                .where(
                    Pass.cloud == cloud,
                    Pass.region == region,
                    Pass.status == "running",
                    Pass.id < row.id,
                )
                .values(
                    status="interrupted",
                    finished_at=now,
                    error=f"still running when pass {row.id} of the region began",
                )
            )
            return row.id

    def newest_pass_id(self) -> int:
        """The id of the newest pass that ended complete or partial (0: none yet)."""
        with self._sessions() as session:
            found = session.scalar(
                select(func.max(Pass.id)).where(Pass.status.in_(("complete", "partial")))
            )
            return int(found or 0)

    def finish_pass(self, pass_id: int, status: str, error: str | None, requests: int) -> None:
        with self._sessions.begin() as session:
            session.execute(
                update(Pass)
                .where(Pass.id == pass_id)
                .values(status=status, error=error, requests=requests, finished_at=utcnow())
            )

    def record_kind(
        self,
        pass_id: int,
        cloud: str,
        region: str,
        kind_name: str,
        records: Sequence[dict[str, Any]],
        complete: bool,
        error: str | None = None,
        requests: int = 0,
        seconds: float = 0.0,
        shrink: ShrinkLimit | None = None,
        unchanged: Sequence[str] = (),
        raw_hashes: Mapping[str, str] | None = None,
    ) -> KindOutcome:
        """Upsert what a pass saw of one kind; when the listing was complete, mark what it
        did not see as gone. Field changes of history fields are recorded.

        `unchanged`: ids of resources listed exactly as their stored rows were built
        (same raw hash, see sources/openstack/rawskip.py), seen without a record.
        `raw_hashes`: resource id -> the raw hash of the item each record was built
        from, stored with the row (rows without one store none).

        With `shrink`, a complete listing missing more of the live resources than the
        limit allows is recorded as incomplete instead (`KindOutcome.held` says why),
        unless the newest earlier pass of this kind in this cloud region was held for
        the same reason with about as many resources: the second pass in a row to see
        the shrink confirms it.

        A complete listing that answers from an older state of the cloud — a record
        last saved earlier than its stored copy, or a resource a verified StackFleet
        action deleted listed again — is not recorded at all (incomplete, `held` says
        why)."""
        spec = kind(kind_name)
        now = utcnow()
        with self._sessions.begin() as session:
            # resources an event re-read (or saw deleted) after this pass began: its
            # older listing neither makes them gone nor brings them back
            started = session.scalar(select(Pass.started_at).where(Pass.id == pass_id))
            columns = RESOURCES.c
            is_newer = (
                and_(
                    or_(columns.last_seen > started, columns.deleted_at > started),
                    columns.last_pass_id != pass_id,
                )
                if started is not None
                else false()
            )
            # One read of the kind's rows, answering both (every read of them costs a
            # walk of the rows' pages); Core columns on the connection, fetched at
            # once: the ORM's row loading, or iterating the result (one fetchone per
            # row), costs more than the query for 40,000 rows.
            existing: dict[str, tuple[int, str, datetime | None]] = {}
            stored_raw: dict[int, str | None] = {}
            newer: set[int] = set()
            for pk, rid, digest, deleted, moved, raw in (
                session.connection()
                .execute(
                    select(
                        columns.pk,
                        columns.resource_id,
                        columns.attrs_hash,
                        columns.deleted_at,
                        is_newer.label("newer"),
                        columns.raw_hash,
                    ).where(
                        columns.cloud == cloud,
                        columns.region == region,
                        columns.kind == kind_name,
                    )
                )
                .all()
            ):
                existing[rid] = (pk, digest, deleted)
                stored_raw[pk] = raw
                if moved:
                    newer.add(pk)
            # new resources: (record, its JSON text, its hash). The text is kept as str:
            # the bytes orjson returns keep its whole output buffer (~4 kB each).
            new_rows: list[tuple[dict[str, Any], str, str]] = []
            changed: dict[int, tuple[dict[str, Any], str]] = {}
            revived: list[int] = []
            revived_ids: list[str] = []
            seen_pks: list[int] = []
            known = existing.get
            raw_of = (raw_hashes or {}).get
            # rows whose record is unchanged but whose raw hash moved (or was cleared)
            rehashed: list[dict[str, Any]] = []
            lost: list[str] = []
            for rid in unchanged:
                current = known(rid)
                if current is None:
                    lost.append(rid)  # its row went away since the pass read the hashes
                    continue
                pk, _digest, deleted = current
                seen_pks.append(pk)
                if deleted is not None and pk not in newer:
                    revived.append(pk)
                    revived_ids.append(rid)
            for record in records:
                encoded = encode_json(record)
                digest = digest_of(encoded)
                current = known(record["id"])
                if current is None:
                    new_rows.append((record, encoded.decode(), digest))
                    continue
                pk, old_digest, deleted = current
                seen_pks.append(pk)
                if deleted is not None and pk not in newer:
                    revived.append(pk)
                    revived_ids.append(str(record["id"]))
                if old_digest != digest:
                    changed[pk] = (EncodedRecord(record, encoded.decode()), digest)
                elif stored_raw[pk] != (raw := raw_of(record["id"])) and pk not in newer:
                    rehashed.append({"pk": pk, "raw_hash": raw})
            held: str | None = None
            if lost and complete:
                # without their records they cannot be stored: believe none of it
                complete = False
                error = held = (
                    f"{len(lost)} {kind_name}s listed as unchanged have no row any more; "
                    "nothing of this listing is marked gone"
                )
            # (an event may have stored a newer copy while this pass was listing)
            settled = {pk: change for pk, change in changed.items() if pk not in newer}
            older = self._older_than_stored(session, settled) if complete and settled else 0
            back = (
                self._deleted_by_us(session, cloud, region, kind_name, revived_ids)
                if complete and revived_ids
                else 0
            )
            if older or back:
                # an answer from the past (a lagging replica, a cache): none of it is
                # believed, as for a listing that failed
                why = (
                    f"{older} {kind_name}s were last saved earlier than the store's copy says"
                    if older
                    else f"{back} {kind_name}s StackFleet deleted (the service answered 404 "
                    "for them) are listed again"
                )
                held = (
                    f"{STALE_LISTING}: {why} (the service answered from an older state); "
                    "nothing of this listing is recorded"
                )
                complete, error = False, held
                new_rows, changed, revived, seen_pks, rehashed = [], {}, [], [], []
            if new_rows:
                _insert_new(session, cloud, region, kind_name, now, pass_id, new_rows, raw_of)
            if changed:
                self._apply_changes(session, spec, pass_id, now, changed, raw_of)
            if rehashed:
                session.execute(update(Resource), rehashed)
            gone = 0
            missing: list[int] = []
            if complete:
                seen_ids = {r["id"] for r in records}.union(unchanged)
                missing = [
                    pk
                    for rid, (pk, _d, deleted) in existing.items()
                    if rid not in seen_ids and deleted is None and pk not in newer
                ]
                live = sum(1 for _pk, _d, deleted in existing.values() if deleted is None)
                if (
                    shrink is not None
                    and shrink.exceeded(len(missing), live)
                    and not self._shrink_confirms(
                        session,
                        pass_id,
                        cloud,
                        region,
                        kind_name,
                        len(records) + len(unchanged),
                        shrink,
                    )
                ):
                    held = (
                        f"{SHRINK_HELD}: the listing looked complete but misses "
                        f"{len(missing)} of {live} {kind_name}s seen before (more than "
                        f"{shrink.percent:g}% and {shrink.count}); nothing is marked gone "
                        "until the next pass confirms it"
                    )
                    complete, error = False, held
            if complete:
                for chunk in _chunks(missing):
                    session.execute(
                        update(Resource)
                        .where(Resource.pk.in_(chunk))
                        .values(deleted_at=now, row_seen=_LAST_SEEN)
                    )
                gone = len(missing)
                # everything else of this kind was seen now: one row for the kind (after
                # the gone ones took their last-seen time from the previous one), no
                # write of the unchanged resources
                _mark_kind_seen(session, cloud, region, kind_name, pass_id, now)
            else:
                for chunk in _chunks(seen_pks):
                    session.execute(
                        update(Resource)
                        .where(Resource.pk.in_(chunk))
                        .values(row_seen=now, last_pass_id=pass_id)
                    )
            for chunk in _chunks(revived):
                session.execute(
                    update(Resource).where(Resource.pk.in_(chunk)).values(deleted_at=None)
                )
            session.add(
                PassKind(
                    pass_id=pass_id,
                    kind=kind_name,
                    complete=complete,
                    count=len(records) + len(unchanged),
                    requests=requests,
                    seconds=seconds,
                    error=error,
                )
            )
        return KindOutcome(
            added=len(new_rows),
            changed=len(changed),
            unchanged=len(records) + len(unchanged) - len(new_rows) - len(changed),
            gone=gone,
            held=held,
        )

    @staticmethod
    def _deleted_by_us(
        session: Session, cloud: str, region: str, kind_name: str, ids: list[str]
    ) -> int:
        """How many of `ids` a verified action deleted or released: OpenStack never
        gives an id back, so a listing showing one again answers from the past."""
        found = 0
        for chunk in _chunks(ids):
            found += (
                session.scalar(
                    select(func.count(func.distinct(ActionRecord.resource_id))).where(
                        ActionRecord.cloud == cloud,
                        ActionRecord.region == region,
                        ActionRecord.kind == kind_name,
                        ActionRecord.resource_id.in_(chunk),
                        ActionRecord.action.in_(("delete", "release")),
                        ActionRecord.status == "succeeded",
                    )
                )
                or 0
            )
        return found

    @staticmethod
    def _older_than_stored(session: Session, changed: dict[int, tuple[dict[str, Any], str]]) -> int:
        """How many changed records carry a last-save stamp (`updated_at`, Nova's
        `updated`) earlier than the stored copy's: the service cannot save a resource
        into the past, so the listing came from an older state of the cloud."""
        older = 0
        for chunk in _chunks(list(changed)):
            for pk, old in session.execute(
                select(Resource.pk, Resource.attrs).where(Resource.pk.in_(chunk))
            ):
                record = changed[pk][0]
                for stamp in SAVED_STAMPS:
                    new_value, old_value = record.get(stamp), old.get(stamp)
                    if isinstance(new_value, str) and isinstance(old_value, str):
                        older += new_value < old_value
                        break
        return older

    @staticmethod
    def _shrink_confirms(
        session: Session,
        pass_id: int,
        cloud: str,
        region: str,
        kind_name: str,
        count: int,
        shrink: ShrinkLimit,
    ) -> bool:
        """Whether the newest earlier listing of this kind in this cloud region was held
        for shrinking and saw about as many resources as this one (within
        `shrink.count`): two listings agreeing on the smaller size confirm it, while
        truncations cut at different places are held again."""
        previous = session.execute(
            select(PassKind.error, PassKind.count)
            .join(Pass, Pass.id == PassKind.pass_id)
            .where(
                Pass.cloud == cloud,
                Pass.region == region,
                PassKind.kind == kind_name,
                PassKind.pass_id < pass_id,
            )
            .order_by(PassKind.pass_id.desc())
            .limit(1)
        ).first()
        if previous is None:
            return False
        error, seen = previous
        return bool(error and error.startswith(SHRINK_HELD)) and abs(seen - count) <= shrink.count

    def _apply_changes(
        self,
        session: Session,
        spec: Kind,
        pass_id: int,
        now: datetime,
        changed: dict[int, tuple[dict[str, Any], str]],
        raw_of: Callable[[str], str | None] = _no_raw_hash,
    ) -> None:
        """Write changed records (and their history-field changes); each row's raw
        hash becomes `raw_of(its id)`: none unless a pass built it from a raw item."""
        history = spec.history_fields + ("status",)
        changes: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for chunk in _chunks(list(changed)):
            for pk, rid, cloud, region, old in session.execute(
                select(
                    Resource.pk,
                    Resource.resource_id,
                    Resource.cloud,
                    Resource.region,
                    Resource.attrs,
                ).where(Resource.pk.in_(chunk))
            ):
                record, digest = changed[pk]
                for field in history:
                    if old.get(field) != record.get(field):
                        changes.append(
                            {
                                "cloud": cloud,
                                "region": region,
                                "kind": spec.name,
                                "resource_id": rid,
                                "field": field,
                                "old": old.get(field),
                                "new": record.get(field),
                                "changed_at": now,
                                "pass_id": pass_id,
                            }
                        )
                updates.append(
                    {
                        "pk": pk,
                        "name": _text(record.get("name")),
                        "project_id": _text(record.get("project_id")),
                        "status": _text(record.get("status")),
                        "attrs": record,
                        "attrs_hash": digest,
                        "raw_hash": raw_of(rid),
                        "last_changed": now,
                    }
                )
        if updates:
            session.execute(update(Resource), updates)
        if changes:
            session.execute(insert(ResourceChange), changes)

    def list_passes(self, limit: int = 20, cloud: str | None = None) -> list[dict[str, Any]]:
        """The newest passes first, each with its per-kind outcome."""
        with self._sessions() as session:
            query = select(Pass).order_by(Pass.id.desc()).limit(limit)
            if cloud:
                query = query.where(Pass.cloud == cloud)
            passes = list(session.scalars(query))
            kinds: dict[int, list[PassKind]] = {}
            if passes:
                for row in session.scalars(
                    select(PassKind).where(PassKind.pass_id.in_([p.id for p in passes]))
                ):
                    kinds.setdefault(row.pass_id, []).append(row)
            return [_pass_dict(p, kinds.get(p.id, [])) for p in passes]

    def last_complete_pass(self, cloud: str, region: str, kind_name: str) -> int | None:
        """The newest pass that listed `kind_name` of this cloud region completely."""
        with self._sessions() as session:
            return session.scalar(
                select(func.max(PassKind.pass_id))
                .join(Pass, Pass.id == PassKind.pass_id)
                .where(
                    Pass.cloud == cloud,
                    Pass.region == region,
                    PassKind.kind == kind_name,
                    PassKind.complete.is_(True),
                )
            )

    # ---------------------------------------------------------------- queries
    def list_resources(
        self,
        kind_name: str,
        filters: dict[str, str] | None = None,
        cloud: str | None = None,
        region: str | None = None,
        include_deleted: bool = False,
        limit: int | None = None,
        offset: int = 0,
        visible_to: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Resources of a kind matching `filters`, with the total count before paging
        (store/listing.py, which the CLI's listings call without the ORM)."""
        with self._sessions() as session:
            return list_resources(
                session,
                kind_name,
                filters,
                cloud=cloud,
                region=region,
                include_deleted=include_deleted,
                limit=limit,
                offset=offset,
                visible_to=visible_to,
            )

    def visible_to_project(self, record: dict[str, Any], project: str) -> bool:
        """Whether `project` may read the resource `record` (its own, or shared with
        every project: `Kind.shared_when`, `Kind.shared_through`)."""
        spec = known_kind(record["kind"])
        with self._sessions() as session:
            found = session.scalar(
                select(Resource.resource_id).where(
                    Resource.kind == spec.name,
                    Resource.cloud == record["cloud"],
                    Resource.region == record["region"],
                    Resource.resource_id == str(record["id"]),
                    visible_condition(spec, project),
                )
            )
            return found is not None

    def get_resource(
        self, kind_name: str, resource_id: str, cloud: str | None = None, region: str | None = None
    ) -> dict[str, Any]:
        """One resource by id (or unique name), with its relations and recent changes."""
        spec = known_kind(kind_name)
        with self._sessions() as session:
            row = self._find(session, spec, resource_id, cloud, region)
            result = resource_dict(row)
            result["relations"] = self._relations(session, spec, row)
            result["changes"] = [
                {
                    "field": c.field,
                    "old": c.old,
                    "new": c.new,
                    "changed_at": iso(c.changed_at),
                    "pass_id": c.pass_id,
                }
                for c in session.scalars(
                    select(ResourceChange)
                    .where(
                        ResourceChange.cloud == row.cloud,
                        ResourceChange.region == row.region,
                        ResourceChange.kind == row.kind,
                        ResourceChange.resource_id == row.resource_id,
                    )
                    .order_by(ResourceChange.id.desc())
                    .limit(50)
                )
            ]
            return result

    def _find(
        self, session: Session, spec: Kind, ident: str, cloud: str | None, region: str | None
    ) -> Resource:
        base = [Resource.kind == spec.name]
        if cloud:
            base.append(Resource.cloud == cloud)
        if region:
            base.append(Resource.region == region)
        rows = list(
            session.scalars(
                select(Resource)
                .where(*base, Resource.resource_id == ident)
                .order_by(Resource.deleted_at.is_not(None), Resource.last_seen.desc())
            )
        )
        if not rows:
            rows = list(
                session.scalars(
                    select(Resource).where(
                        *base, Resource.name == ident, Resource.deleted_at.is_(None)
                    )
                )
            )
            if len(rows) > 1:
                raise InvalidQueryError(
                    f"{len(rows)} {spec.collection} are named {ident!r}; give the id instead"
                )
        if not rows:
            raise NotFoundError(f"no {spec.name} with id or name {ident!r}")
        return rows[0]

    def _relations(self, session: Session, spec: Kind, row: Resource) -> dict[str, list[Any]]:
        related: dict[str, list[Any]] = {}
        same_place = [Resource.cloud == row.cloud, Resource.region == row.region]
        for rel in spec.relations:
            value = row.attrs.get(rel.field)
            values = [str(v) for v in (value if isinstance(value, list) else [value]) if v]
            if not values:
                related[rel.name] = []
                continue
            column = (
                Resource.resource_id
                if rel.target_field == "id"
                else Resource.name
                if rel.target_field == "name"
                else Resource.attrs[rel.target_field].as_string()
            )
            targets = session.scalars(
                select(Resource).where(
                    *same_place,
                    Resource.kind == rel.target,
                    Resource.deleted_at.is_(None),
                    column.in_(values),
                )
            )
            related[rel.name] = [_brief(t) for t in targets]
        # reverse relations: kinds that point at this one
        for other in KINDS.values():
            for rel in other.relations:
                if rel.target != spec.name or not rel.reverse:
                    continue
                key = (
                    row.attrs.get(rel.target_field) if rel.target_field != "id" else row.resource_id
                )
                if not key:
                    related.setdefault(rel.reverse, [])
                    continue
                conditions = [
                    *same_place,
                    Resource.kind == other.name,
                    Resource.deleted_at.is_(None),
                ]
                if rel.many:
                    # JSON text prefilter, then an exact check in Python
                    conditions.append(cast(Resource.attrs, String).like(f'%"{key}"%'))
                else:
                    conditions.append(Resource.attrs[rel.field].as_string() == str(key))
                found = [
                    _brief(r)
                    for r in session.scalars(select(Resource).where(*conditions))
                    if not rel.many or str(key) in map(str, r.attrs.get(rel.field) or [])
                ]
                related.setdefault(rel.reverse, []).extend(found)
        return related

    def summary(self, cloud: str | None = None, region: str | None = None) -> dict[str, Any]:
        """Hosts up/down, capacity and utilisation, servers by status, services up/down."""
        where: list[ColumnElement[bool]] = [Resource.deleted_at.is_(None)]
        if cloud:
            where.append(Resource.cloud == cloud)
        if region:
            where.append(Resource.region == region)
        with self._sessions() as session:
            counts = {
                k: n
                for k, n in session.execute(
                    select(Resource.kind, func.count()).where(*where).group_by(Resource.kind)
                )
            }
            servers_by_status = {
                s or "UNKNOWN": n
                for s, n in session.execute(
                    select(Resource.status, func.count())
                    .where(*where, Resource.kind == "server")
                    .group_by(Resource.status)
                )
            }
            hypervisors = [
                r.attrs
                for r in session.scalars(
                    select(Resource).where(*where, Resource.kind == "hypervisor")
                )
            ]
            services: dict[str, Counter[str]] = {}
            for kind_name in ("compute_service", "network_agent", "block_storage_service"):
                services[kind_name] = Counter(
                    {
                        s or "unknown": n
                        for s, n in session.execute(
                            select(Resource.status, func.count())
                            .where(*where, Resource.kind == kind_name)
                            .group_by(Resource.status)
                        )
                    }
                )
            clouds = sorted(
                {
                    f"{c}/{r}"
                    for c, r in session.execute(
                        select(Resource.cloud, Resource.region).where(*where).distinct()
                    )
                }
            )
        hosts = Counter(h.get("state") or "unknown" for h in hypervisors)
        capacity = {}
        for rc in ("vcpu", "pcpu", "memory_mb", "disk_gb"):
            used = sum(h.get(f"{rc}_used") or 0 for h in hypervisors)
            cap = sum(h.get(f"{rc}_capacity") or 0 for h in hypervisors)
            capacity[rc] = {
                "used": used,
                "capacity": cap,
                "percent": round(100.0 * used / cap, 1) if cap else None,
            }
        return {
            "clouds": clouds,
            "counts": counts,
            "hypervisors": {
                "total": len(hypervisors),
                "up": hosts.get("up", 0),
                "down": hosts.get("down", 0),
            },
            "capacity": capacity,
            "servers_by_status": servers_by_status,
            "services": {k: dict(v) for k, v in services.items()},
        }

    # ------------------------------------------------------- single resources (events)
    def upsert_resource(
        self, cloud: str, region: str, kind_name: str, record: dict[str, Any]
    ) -> str:
        """Record one resource as just read (event-driven refresh, no pass): insert it,
        or update it recording history-field changes (with pass id 0: an event), and
        mark it seen now. A resource a pass had marked gone is live again. Marks
        nothing else gone. Returns "added", "changed", "revived" or "unchanged"."""
        spec = kind(kind_name)
        now = utcnow()
        encoded = EncodedRecord(record)
        digest = record_hash(encoded)
        with self._sessions.begin() as session:
            row = session.execute(
                select(Resource.pk, Resource.attrs_hash, Resource.deleted_at).where(
                    Resource.cloud == cloud,
                    Resource.region == region,
                    Resource.kind == kind_name,
                    Resource.resource_id == record["id"],
                )
            ).first()
            if row is None:
                session.execute(
                    insert(Resource),
                    {
                        "cloud": cloud,
                        "region": region,
                        "kind": kind_name,
                        "resource_id": record["id"],
                        "name": _text(record.get("name")),
                        "project_id": _text(record.get("project_id")),
                        "status": _text(record.get("status")),
                        "attrs": dict(record),
                        "attrs_hash": digest,
                        "raw_hash": None,
                        "first_seen": now,
                        "row_seen": now,
                        "last_changed": now,
                        "last_pass_id": 0,
                        "deleted_at": None,
                    },
                )
                return "added"
            pk, old_digest, deleted = row
            if old_digest != digest:
                self._apply_changes(session, spec, 0, now, {pk: (dict(record), digest)})
            # an event's copy was not built from a listed item: the next pass builds
            # and compares that resource again (no raw hash)
            session.execute(
                update(Resource)
                .where(Resource.pk == pk)
                .values(row_seen=now, deleted_at=None, raw_hash=None)
            )
        if deleted is not None:
            return "revived"
        return "changed" if old_digest != digest else "unchanged"

    def mark_resource_gone(self, cloud: str, region: str, kind_name: str, resource_id: str) -> bool:
        """Mark one resource gone (its deletion was announced and the service answers
        404 for it). True when it was live."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(Resource)
                .where(
                    Resource.cloud == cloud,
                    Resource.region == region,
                    Resource.kind == kind_name,
                    Resource.resource_id == resource_id,
                    Resource.deleted_at.is_(None),
                )
                .values(deleted_at=utcnow(), row_seen=_LAST_SEEN, raw_hash=None)
            )
            return bool(getattr(result, "rowcount", 0))

    def regions_of(self, cloud: str, kind_name: str, resource_id: str) -> list[str]:
        """The regions of `cloud` where a resource of this id is known (live first)."""
        with self._sessions() as session:
            return [
                region
                for (region,) in session.execute(
                    select(Resource.region)
                    .where(
                        Resource.cloud == cloud,
                        Resource.kind == kind_name,
                        Resource.resource_id == resource_id,
                    )
                    .order_by(Resource.deleted_at.is_not(None))
                )
            ]

    def purge_cloud(self, cloud: str) -> None:
        """Forget everything about one cloud (used by tests and `stackfleet forget`)."""
        with self._sessions.begin() as session:
            session.execute(delete(Resource).where(Resource.cloud == cloud))
            session.execute(delete(KindSeen).where(KindSeen.cloud == cloud))
            session.execute(delete(ResourceChange).where(ResourceChange.cloud == cloud))


# A live row's last-seen time, as a value to write when it is marked gone: from then on
# the newest complete listing of its kind no longer speaks for it.
_LAST_SEEN = Resource.last_seen.expression


def _mark_kind_seen(
    session: Session, cloud: str, region: str, kind_name: str, pass_id: int, now: datetime
) -> None:
    """Record that `pass_id` listed this kind of this cloud region completely at `now`
    (unless a newer pass already did: an interrupted pass may finish a kind late). One
    upsert, so two collectors finishing the kind at once (a worker taking over a region
    from one still running) both succeed."""
    # (the two dialects' inserts share their upsert API, not a type)
    statement: Any
    if session.connection().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        statement = postgresql_insert(KindSeen)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(KindSeen)
    statement = statement.values(
        cloud=cloud, region=region, kind=kind_name, pass_id=pass_id, seen_at=now
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[KindSeen.cloud, KindSeen.region, KindSeen.kind],
            set_={"pass_id": statement.excluded.pass_id, "seen_at": statement.excluded.seen_at},
            where=KindSeen.pass_id < statement.excluded.pass_id,
        )
    )


# the columns of a new resource row, in the order _insert_new gives them
_NEW_ROW_COLUMNS = (
    "cloud",
    "region",
    "kind",
    "resource_id",
    "name",
    "project_id",
    "status",
    "attrs",
    "attrs_hash",
    "raw_hash",
    "first_seen",
    "last_seen",
    "last_changed",
    "last_pass_id",
    "deleted_at",
)


def _insert_new(
    session: Session,
    cloud: str,
    region: str,
    kind_name: str,
    now: datetime,
    pass_id: int,
    rows: list[tuple[dict[str, Any], str, str]],
    raw_of: Callable[[str], str | None],
) -> None:
    """Insert new resources (record, JSON text, hash; raw hash by id from `raw_of`) of
    one kind in one executemany.

    On SQLite the rows go straight to the driver's cursor, built one at a time as it
    asks for them: SQLAlchemy's per-row parameter processing costs more than the insert
    itself (1.4 s for 40,000 ports), and a list of every row's parameters would hold a
    copy of the kind's JSON texts at once. The values every row shares (cloud, region,
    kind, the pass time) are converted once with SQLAlchemy's own bind processors, so
    they read back the same. Elsewhere, Core executemany."""
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "sqlite":
        session.execute(
            insert(RESOURCES),
            [
                {
                    "cloud": cloud,
                    "region": region,
                    "kind": kind_name,
                    "resource_id": record["id"],
                    "name": _text(record.get("name")),
                    "project_id": _text(record.get("project_id")),
                    "status": _text(record.get("status")),
                    "attrs": EncodedRecord(record, encoded),
                    "attrs_hash": digest,
                    "raw_hash": raw_of(record["id"]),
                    "first_seen": now,
                    "last_seen": now,
                    "last_changed": now,
                    "last_pass_id": pass_id,
                    "deleted_at": None,
                }
                for record, encoded, digest in rows
            ],
        )
        return

    def bound(name: str, value: Any) -> Any:
        processor = RESOURCES.columns[name].type.dialect_impl(dialect).bind_processor(dialect)
        return value if processor is None or value is None else processor(value)

    place = (bound("cloud", cloud), bound("region", region), bound("kind", kind_name))
    stamps = (bound("first_seen", now), bound("last_seen", now), bound("last_changed", now))
    tail = (*stamps, bound("last_pass_id", pass_id), None)

    def parameters() -> Iterator[tuple[Any, ...]]:
        # resource_id .. raw_hash are text columns: SQLite takes them as they are
        for record, encoded, digest in rows:
            get = record.get
            name, project, status = get("name"), get("project_id"), get("status")
            yield (
                *place,
                record["id"],
                None if name is None else str(name)[:255],
                None if project is None else str(project)[:255],
                None if status is None else str(status)[:255],
                encoded,
                digest,
                raw_of(record["id"]),
                *tail,
            )

    sql = (
        f"INSERT INTO {RESOURCES.name} ({', '.join(_NEW_ROW_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(_NEW_ROW_COLUMNS))})"
    )
    cursor = connection.connection.cursor()
    try:
        # sqlite3 takes any iterable of rows (the DB-API stub says Sequence)
        cursor.executemany(sql, parameters())  # type: ignore[arg-type]
    finally:
        cursor.close()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:255]


def _brief(row: Resource) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "id": row.resource_id,
        "name": row.name,
        "status": row.status,
        "project_id": row.project_id,
    }


def _pass_dict(row: Pass, kinds: list[PassKind]) -> dict[str, Any]:
    return {
        "id": row.id,
        "cloud": row.cloud,
        "region": row.region,
        "status": row.status,
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "error": row.error,
        "requests": row.requests,
        "collector": row.collector,
        "kinds": {
            k.kind: {
                "complete": k.complete,
                "count": k.count,
                "requests": k.requests,
                "seconds": round(k.seconds, 3),
                "error": k.error,
            }
            for k in sorted(kinds, key=lambda k: k.kind)
        },
    }


def current_attrs(
    store: InventoryStore, cloud: str, region: str, kind_name: str
) -> dict[str, dict[str, Any]]:
    """The stored records of one kind of one cloud region, by id (not gone ones)."""
    with store._sessions() as session:
        return {
            rid: attrs
            for rid, attrs in session.execute(
                select(Resource.resource_id, Resource.attrs).where(
                    Resource.cloud == cloud,
                    Resource.region == region,
                    Resource.kind == kind_name,
                    Resource.deleted_at.is_(None),
                )
            )
        }


def live_ids(store: InventoryStore, cloud: str, region: str, kind_name: str) -> set[str]:
    """The ids of the stored, not gone resources of one kind of one cloud region."""
    columns = RESOURCES.c
    with store._sessions() as session:
        return set(
            session.connection()
            .execute(
                select(columns.resource_id).where(
                    columns.cloud == cloud,
                    columns.region == region,
                    columns.kind == kind_name,
                    columns.deleted_at.is_(None),
                )
            )
            .scalars()
            .all()
        )


def raw_hashes(store: InventoryStore, cloud: str, region: str, kind_name: str) -> dict[str, str]:
    """Raw hash -> resource id of the live rows of one kind of one cloud region that a
    pass built from a listed item (sources/openstack/rawskip.py)."""
    columns = RESOURCES.c
    with store._sessions() as session:
        return {
            raw: rid
            for raw, rid in session.connection()
            .execute(
                select(columns.raw_hash, columns.resource_id).where(
                    columns.cloud == cloud,
                    columns.region == region,
                    columns.kind == kind_name,
                    columns.deleted_at.is_(None),
                    columns.raw_hash.is_not(None),
                )
            )
            .all()
        }
