"""`stackfleet policy run -f csv|value` prints one row per matched resource, with each
planned action and its verdict, as the other listings do."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from typer.testing import CliRunner

from stackfleet.cli.main import app
from stackfleet.model import kind
from stackfleet.store import open_store

POLICY = """policies:
  - name: stopped-servers
    resource: server
    filters: [{status: SHUTOFF}]
    actions: [{type: tag, tags: [reclaim]}]
"""


def server(sid: str, status: str) -> dict[str, object]:
    return kind("server").record_builder()(
        {"id": f"srv-{sid}", "name": sid, "status": status, "tenant_id": "proj-1"}
    )


def test_policy_run_prints_matches_as_csv_and_value(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    pass_id = store.begin_pass("prod", "RegionOne")
    records = [server("web-1", "ACTIVE"), server("old-1", "SHUTOFF")]
    store.record_kind(pass_id, "prod", "RegionOne", "server", records, True, requests=1)
    store.finish_pass(pass_id, "complete", None, 1)
    policy = tmp_path / "stopped.yaml"
    policy.write_text(POLICY)

    result = CliRunner().invoke(app, ["--db-url", url, "policy", "run", str(policy), "-f", "csv"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows == [
        {
            "policy": "stopped-servers",
            "kind": "server",
            "id": "srv-old-1",
            "name": "old-1",
            "cloud": "prod",
            "region": "RegionOne",
            "actions": "tag: planned",
        }
    ]

    value = CliRunner().invoke(app, ["--db-url", url, "policy", "run", str(policy), "-f", "value"])
    assert value.stdout.split() == [
        "stopped-servers", "server", "srv-old-1", "old-1", "prod", "RegionOne", "tag:", "planned"
    ]  # fmt: skip
