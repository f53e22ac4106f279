"""The audit log: append-only, hash-chained and keyed.

Each entry's hash is an HMAC-SHA256, under a key kept outside the database, of the
previous entry's hash and the entry's canonical JSON: changing an entry, or removing
one, breaks every hash after it, and whoever can write the database but not read the
key file cannot forge a consistent chain. A one-row head (number and hash of the newest
entry) is updated with each append: removing the newest entries is detected as well.

What the key alone cannot catch — cutting the newest entries off and moving the head
back, or a rewrite by someone holding the key — the operator's **checkpoints** do: a
signed (seq, hash) of the head written outside the database (a file on other storage,
syslog, a webhook) at intervals; `verify` checks that every checkpointed entry is still
there with the same hash.

Logs begun before the key existed keep their plain SHA-256 entries (no `key_id`): they
are accepted only as a prefix older than the key file, and `verify` says how many there
are."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from stackfleet.core.config import config_dir
from stackfleet.core.errors import ConfigError, NotFoundError
from stackfleet.store.db import Store
from stackfleet.store.listing import aware
from stackfleet.store.schema import AuditEntry, AuditHead, Resource

log = logging.getLogger(__name__)

GENESIS = "0" * 64
KEY_FILE_ENV = "STACKFLEET_AUDIT_KEY_FILE"
CHECKPOINTS_ENV = "STACKFLEET_AUDIT_CHECKPOINTS"
# One writer per process at a time; the seq primary key stops two processes from
# both extending the chain from the same entry.
_APPEND = threading.Lock()


def project_targets(project: str) -> Any:
    """The audit targets (cloud/region/kind/id) of `project`'s resources, as a
    subquery."""
    target = (
        Resource.cloud + "/" + Resource.region + "/" + Resource.kind + "/" + Resource.resource_id
    )
    return select(target).where(Resource.project_id == project)


def target_in_project(store: Store, target: str | None, project: str) -> bool:
    """Whether an audit target names a resource of `project`."""
    parts = (target or "").split("/", 3)
    if len(parts) != 4:
        return False
    cloud, region, kind, resource_id = parts
    with store.session() as session:
        found = session.scalar(
            select(Resource.pk).where(
                Resource.cloud == cloud,
                Resource.region == region,
                Resource.kind == kind,
                Resource.resource_id == resource_id,
                Resource.project_id == project,
            )
        )
    return found is not None


def canonical(value: Any) -> Any:
    """`value` as it will read back from a JSON column (datetimes become text)."""
    return json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class AuditKey:
    """The secret that signs the chain, and when it was made (entries older than that
    may be unkeyed)."""

    secret: bytes = field(repr=False)
    created: datetime

    @property
    def id(self) -> str:
        """A short public name of the key (not the key): which key signed an entry."""
        return hashlib.sha256(b"stackfleet-audit-key\n" + self.secret).hexdigest()[:16]

    def sign(self, message: str) -> str:
        return hmac.new(self.secret, message.encode(), hashlib.sha256).hexdigest()


def key_path() -> Path:
    """$STACKFLEET_AUDIT_KEY_FILE, or audit.key in the configuration directory."""
    return Path(os.environ.get(KEY_FILE_ENV) or config_dir() / "audit.key")


def checkpoints_path() -> Path | None:
    """$STACKFLEET_AUDIT_CHECKPOINTS: where checkpoints are appended and read back (a
    file on storage the database's writers cannot change), or None."""
    value = os.environ.get(CHECKPOINTS_ENV)
    return Path(value) if value else None


def load_key(path: Path | None = None, create: bool = True) -> AuditKey:
    """The audit key from `path` (default `key_path()`), made on first use: 32 random
    bytes, readable by its owner only. ConfigError when it cannot be read or made."""
    path = path or key_path()
    try:
        raw = path.read_text(encoding="ascii")
    except FileNotFoundError:
        if not create:
            raise ConfigError(f"no audit key at {path}") from None
        return _create_key(path)
    except OSError as exc:
        raise ConfigError(f"cannot read the audit key {path}: {exc.strerror}") from exc
    try:
        data = json.loads(raw)
        return AuditKey(
            bytes.fromhex(data["key"]), datetime.fromisoformat(data["created"]).astimezone(UTC)
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"{path} is not a StackFleet audit key (JSON with 'key' and 'created')"
        ) from exc


def _create_key(path: Path) -> AuditKey:
    key = AuditKey(secrets.token_bytes(32), datetime.now(UTC))
    body = json.dumps({"key": key.secret.hex(), "created": key.created.isoformat()})
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting together agree on the first one's key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_key(path, create=False)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the audit key {path}: {exc.strerror}; set {KEY_FILE_ENV} to a "
            "writable path outside the database"
        ) from exc
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(body)
    log.info("created the audit key %s (id %s): keep it outside the database", path, key.id)
    return key


def entry_hash(prev_hash: str, content: dict[str, Any], key: AuditKey | None = None) -> str:
    """The entry's HMAC under `key` (plain SHA-256 for entries of an unkeyed log)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    message = f"{prev_hash}\n{text}"
    if key is None:
        return hashlib.sha256(message.encode()).hexdigest()
    return key.sign(message)


def checkpoint_mac(key: AuditKey, seq: int, digest: str, at: str) -> str:
    return key.sign(f"checkpoint\n{seq}\n{digest}\n{at}")


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
    # entries written before the log was keyed (plain SHA-256)
    unkeyed: int = 0
    # checkpoints read from outside the database and found consistent
    checkpoints: int = 0


class AuditLog:
    """Append to, read and verify the audit log of one store."""

    def __init__(self, store: Store, key: AuditKey | None = None) -> None:
        self.store = store
        self._key = key

    @property
    def key(self) -> AuditKey:
        """The signing key, read (or made) on first use."""
        if self._key is None:
            self._key = load_key()
        return self._key

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
        key = self.key
        with _APPEND, self.store.sessions.begin() as session:
            head = self._head(session, lock=True)
            seq = head.seq + 1
            content = _content(seq, moment, actor, event, policy, target, action_id, stored_details)
            digest = entry_hash(head.hash, content, key)
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
                    key_id=key.id,
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
        project: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Entries, newest first, and how many match (`project`: only entries about
        that project's resources)."""
        conditions: list[ColumnElement[bool]] = []
        if project is not None:
            conditions.append(AuditEntry.target.in_(project_targets(project)))
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

    def verify(self, checkpoints: Path | None = None) -> Verification:
        """Walk the chain: every entry must carry its HMAC under the audit key, follow
        the previous entry's hash, and carry the next number; the head must name the
        last entry. Unkeyed (plain SHA-256) entries pass only as a prefix older than the
        key. With `checkpoints` (a file written by `checkpoint`), every checkpointed
        entry must still be there with the same hash."""
        key = self.key
        problems: list[str] = []
        expected_prev = GENESIS
        expected_seq = 1
        count = unkeyed = 0
        keyed_seen = False
        last_seq, last_hash = 0, GENESIS
        hashes: dict[int, str] = {}
        wanted = _checkpoint_seqs(checkpoints)
        with self.store.session() as session:
            head = session.scalar(select(AuditHead).where(AuditHead.id == 1))
            for row in self._entries(session):
                count += 1
                if row.seq in wanted:
                    hashes[row.seq] = row.hash
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
                problem = self._check_signature(row, content, key, keyed_seen)
                if problem:
                    problems.append(problem)
                if row.key_id is None:
                    unkeyed += 1
                else:
                    keyed_seen = True
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
        checked = 0
        if checkpoints is not None:
            checked, wrong = _check_checkpoints(checkpoints, key, hashes)
            problems += wrong
        return Verification(
            ok=not problems,
            entries=count,
            head_seq=head_seq,
            head_hash=head_hash,
            problems=problems,
            unkeyed=unkeyed,
            checkpoints=checked,
        )

    @staticmethod
    def _check_signature(
        row: AuditEntry, content: dict[str, Any], key: AuditKey, keyed_seen: bool
    ) -> str | None:
        if row.key_id is None:
            # a plain SHA-256 entry: only the log's older part, from before the key
            if keyed_seen:
                return f"entry {row.seq} is unkeyed after keyed entries: it was rewritten"
            if aware(row.at) > key.created:  # type: ignore[operator]
                return (
                    f"entry {row.seq} is unkeyed but newer than the audit key: it was "
                    "rewritten without the key"
                )
            if entry_hash(row.prev_hash, content) != row.hash:
                return f"entry {row.seq} was edited: its content does not match its hash"
            return None
        if row.key_id != key.id:
            return (
                f"entry {row.seq} was signed by key {row.key_id}, not the configured audit "
                f"key {key.id}"
            )
        if not hmac.compare_digest(entry_hash(row.prev_hash, content, key), row.hash):
            return f"entry {row.seq} was edited: its content does not match its hash"
        return None

    def checkpoint(self, path: Path | None = None) -> dict[str, Any]:
        """A signed record of the head (seq, hash, time, HMAC) to keep outside the
        database; appended as a JSON line to `path` when given."""
        key = self.key
        with self.store.session() as session:
            head = self._head(session)
            seq, digest = head.seq, head.hash
        at = datetime.now(UTC).isoformat(timespec="seconds")
        point = {
            "seq": seq,
            "hash": digest,
            "at": at,
            "key_id": key.id,
            "mac": checkpoint_mac(key, seq, digest, at),
        }
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(point, sort_keys=True) + "\n")
        # a copy in the log stream too (syslog, journald): one more place outside
        log.info("audit checkpoint seq=%d hash=%s at=%s", seq, digest, at)
        return point


def _read_checkpoints(path: Path) -> list[tuple[int, dict[str, Any] | None]]:
    """(line number, checkpoint or None when the line is not one) of `path`."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the audit checkpoints {path}: {exc.strerror}") from exc
    points: list[tuple[int, dict[str, Any] | None]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            points.append((number, item if isinstance(item, dict) else None))
        except ValueError:
            points.append((number, None))
    return points


def _checkpoint_seqs(path: Path | None) -> set[int]:
    if path is None:
        return set()
    return {p["seq"] for _, p in _read_checkpoints(path) if p and isinstance(p.get("seq"), int)}


def _check_checkpoints(path: Path, key: AuditKey, hashes: dict[int, str]) -> tuple[int, list[str]]:
    checked, problems = 0, []
    for number, point in _read_checkpoints(path):
        where = f"{path}:{number}"
        try:
            seq, digest, at, mac = point["seq"], point["hash"], point["at"], point["mac"]  # type: ignore[index]
        except (KeyError, TypeError):
            problems.append(f"{where}: not a checkpoint (seq, hash, at, mac)")
            continue
        if not isinstance(mac, str) or not hmac.compare_digest(
            checkpoint_mac(key, seq, digest, at), mac
        ):
            problems.append(
                f"{where}: the checkpoint's signature is wrong (edited, or another key)"
            )
            continue
        if seq == 0:
            checked += 1
            continue
        found = hashes.get(seq)
        if found is None:
            problems.append(
                f"{where}: entry {seq}, checkpointed at {at}, is gone: the log was truncated "
                "or rewritten since"
            )
        elif found != digest:
            problems.append(
                f"{where}: entry {seq} no longer has the hash checkpointed at {at}: the log "
                "was rewritten since"
            )
        else:
            checked += 1
    return checked, problems


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
        "key_id": row.key_id,
    }
