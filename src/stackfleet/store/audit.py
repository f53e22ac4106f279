"""The audit log: append-only and hash-chained.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical
JSON, so changing an entry, or removing one, breaks every hash after it. A one-row head
(number and hash of the newest entry) is updated with each append: removing the newest
entries is detected as well. `verify` walks the chain and says where it breaks; an
operator who records the head hash elsewhere can detect a wholesale rewrite too."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from stackfleet.core.errors import NotFoundError
from stackfleet.store.db import Store
from stackfleet.store.inventory import aware
from stackfleet.store.schema import AuditEntry, AuditHead

GENESIS = "0" * 64
# One writer per process at a time; the seq primary key stops two processes from
# both extending the chain from the same entry.
_APPEND = threading.Lock()


def canonical(value: Any) -> Any:
    """`value` as it will read back from a JSON column (datetimes become text)."""
    return json.loads(json.dumps(value, default=str))


def entry_hash(prev_hash: str, content: dict[str, Any]) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{text}".encode()).hexdigest()


def _content(
    seq: int,
    at: datetime,
    actor: str,
    event: str,
    policy: str | None,
    target: str | None,
    action_id: int | None,
    details: dict[str, Any],
) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": aware(at).astimezone(UTC).isoformat(timespec="microseconds"),  # type: ignore[union-attr]
        "actor": actor,
        "event": event,
        "policy": policy,
        "target": target,
        "action_id": action_id,
        "details": details,
    }


@dataclass
class Verification:
    """The outcome of walking the chain."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    problems: list[str] = field(default_factory=list)


class AuditLog:
    """Append to, read and verify the audit log of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def append(
        self,
        event: str,
        details: dict[str, Any] | None = None,
        *,
        actor: str = "stackfleet",
        policy: str | None = None,
        target: str | None = None,
        action_id: int | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any]:
        """Add one entry at the end of the chain; returns it."""
        moment = (at or datetime.now(UTC)).astimezone(UTC)
        # microseconds are what every supported database keeps
        stored_details = canonical(details or {})
        with _APPEND, self.store.sessions.begin() as session:
            head = self._head(session, lock=True)
            seq = head.seq + 1
            content = _content(seq, moment, actor, event, policy, target, action_id, stored_details)
            digest = entry_hash(head.hash, content)
            session.add(
                AuditEntry(
                    seq=seq,
                    at=moment,
                    actor=actor,
                    event=event,
                    policy=policy,
                    target=target,
                    action_id=action_id,
                    details=stored_details,
                    prev_hash=head.hash,
                    hash=digest,
                )
            )
            session.execute(update(AuditHead).where(AuditHead.id == 1).values(seq=seq, hash=digest))
        return {**content, "prev_hash": head.hash, "hash": digest}

    def _head(self, session: Session, lock: bool = False) -> AuditHead:
        query = select(AuditHead).where(AuditHead.id == 1)
        if lock:
            query = query.with_for_update()
        head = session.scalar(query)
        if head is None:
            head = AuditHead(id=1, seq=0, hash=GENESIS)
            session.add(head)
            session.flush()
        return head

    def list(
        self,
        limit: int = 50,
        offset: int = 0,
        event: str | None = None,
        policy: str | None = None,
        target: str | None = None,
        action_id: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Entries, newest first, and how many match."""
        conditions = []
        if event:
            conditions.append(AuditEntry.event == event)
        if policy:
            conditions.append(AuditEntry.policy == policy)
        if target:
            conditions.append(AuditEntry.target.contains(target))
        if action_id is not None:
            conditions.append(AuditEntry.action_id == action_id)
        with self.store.session() as session:
            total = session.scalar(select(func.count()).select_from(AuditEntry).where(*conditions))
            rows = session.scalars(
                select(AuditEntry)
                .where(*conditions)
                .order_by(AuditEntry.seq.desc())
                .offset(offset)
                .limit(limit)
            )
            return [entry_dict(r) for r in rows], int(total or 0)

    def get(self, seq: int) -> dict[str, Any]:
        with self.store.session() as session:
            row = session.get(AuditEntry, seq)
            if row is None:
                raise NotFoundError(f"no audit entry {seq}")
            return entry_dict(row)

    def _entries(self, session: Session, batch: int = 1000) -> Iterator[AuditEntry]:
        last = 0
        while True:
            rows = list(
                session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.seq > last)
                    .order_by(AuditEntry.seq)
                    .limit(batch)
                )
            )
            if not rows:
                return
            yield from rows
            last = rows[-1].seq

    def verify(self) -> Verification:
        """Walk the chain: every entry must hash to its stored hash, follow the previous
        entry's hash, and carry the next number; the head must name the last entry."""
        problems: list[str] = []
        expected_prev = GENESIS
        expected_seq = 1
        count = 0
        last_seq, last_hash = 0, GENESIS
        with self.store.session() as session:
            head = session.scalar(select(AuditHead).where(AuditHead.id == 1))
            for row in self._entries(session):
                count += 1
                if row.seq != expected_seq:
                    missing = (
                        f"entry {expected_seq}"
                        if row.seq == expected_seq + 1
                        else f"entries {expected_seq}-{row.seq - 1}"
                    )
                    problems.append(
                        f"{missing} deleted: the log jumps from {expected_seq - 1} to {row.seq}"
                    )
                content = _content(
                    row.seq,
                    row.at,
                    row.actor,
                    row.event,
                    row.policy,
                    row.target,
                    row.action_id,
                    row.details,
                )
                if entry_hash(row.prev_hash, content) != row.hash:
                    problems.append(
                        f"entry {row.seq} was edited: its content does not match its hash"
                    )
                if row.prev_hash != expected_prev and row.seq == expected_seq:
                    problems.append(
                        f"entry {row.seq} does not follow entry {row.seq - 1}: the previous "
                        "hash differs (an earlier entry was edited or replaced)"
                    )
                expected_prev = row.hash
                expected_seq = row.seq + 1
                last_seq, last_hash = row.seq, row.hash
        head_seq = head.seq if head else 0
        head_hash = head.hash if head else GENESIS
        if head_seq != last_seq:
            problems.append(
                f"the head names entry {head_seq} but the log ends at entry {last_seq}"
                + (": the newest entries were deleted" if head_seq > last_seq else "")
            )
        elif head_hash != last_hash:
            problems.append(f"entry {last_seq} does not match the head hash: it was edited")
        return Verification(
            ok=not problems,
            entries=count,
            head_seq=head_seq,
            head_hash=head_hash,
            problems=problems,
        )


def entry_dict(row: AuditEntry) -> dict[str, Any]:
    at = aware(row.at)
    return {
        "seq": row.seq,
        "at": at.isoformat() if at else None,
        "actor": row.actor,
        "event": row.event,
        "policy": row.policy,
        "target": row.target,
        "action_id": row.action_id,
        "details": row.details,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }
