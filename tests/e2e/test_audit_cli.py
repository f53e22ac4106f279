"""The audit key and checkpoints from the command line, as an operator runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import delete, update

from stackfleet.store import open_store
from stackfleet.store.audit import AuditLog
from stackfleet.store.schema import AuditEntry, AuditHead


def stackfleet(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackfleet.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_checkpoint_then_truncate_then_verify_exits_1_naming_the_entry(tmp_path):
    db = f"sqlite:///{tmp_path / 'sf.db'}"
    points = tmp_path / "worm" / "audit.jsonl"
    env = {
        **os.environ,
        "STACKFLEET_DB_URL": db,
        "STACKFLEET_AUDIT_KEY_FILE": str(tmp_path / "keys" / "audit.key"),
        "STACKFLEET_AUDIT_CHECKPOINTS": str(points),
    }
    store = open_store(db)
    from stackfleet.store.audit import load_key

    log = AuditLog(store, load_key(tmp_path / "keys" / "audit.key"))
    for n in range(3):
        log.append("test.event", {"n": n})
    made = stackfleet("audit", "checkpoint", env=env)
    assert made.returncode == 0, made.stderr
    assert json.loads(points.read_text())["seq"] == 3
    ok = stackfleet("audit", "verify", env=env)
    assert ok.returncode == 0 and "1 checkpoints consistent" in ok.stdout
    with store.sessions.begin() as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
        prev = session.get(AuditEntry, 2)
        session.execute(update(AuditHead).values(seq=2, hash=prev.hash))
    store.close()
    bad = stackfleet("audit", "verify", env=env)
    assert bad.returncode == 1
    assert "entry 3, checkpointed at" in bad.stdout and "is gone" in bad.stdout
