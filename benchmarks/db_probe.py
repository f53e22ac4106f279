"""Benchmark: what one database probe sweep costs the probed server.

Runs the probe many times and reports, per sweep, the server's own time for the sweep's
statements (SHOW PROFILES on the probe's session), the time the client saw for them, and
the connection set-up. Two servers:

- the machine's MariaDB (default mysql://root@127.0.0.1:3306, or --dsn), as it is;
- a private MariaDB with performance_schema ON whose digest table is filled with
  --digests distinct statements in several OpenStack-named schemas: the worst case,
  since the two digest reads scan that whole table (skip with --no-private).

Target: <= 50 ms of the probed server's time per sweep.

    .venv/bin/python benchmarks/db_probe.py [--sweeps 50] [--digests 5000]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

from calibration import calibration_line
from rich.console import Console
from rich.table import Table

from stackfleet.sources.database import DatabaseTarget, connect, probe_database

# the throwaway-server helper the tests use
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))

console = Console(width=170)
TARGET_MS = 50.0
SCHEMAS = ("nova", "nova_api", "nova_cell1", "neutron", "keystone", "glance", "cinder")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(target: DatabaseTarget, sweeps: int) -> dict[str, object]:
    """Probe `sweeps` times; server, client and connect times in ms."""
    server, client, connecting = [], [], []
    statements = 0
    performance_schema = False
    for _ in range(sweeps):
        started = time.perf_counter()
        connect(target).close()
        connecting.append(1000 * (time.perf_counter() - started))
        reading = probe_database(target, measure_server_time=True)
        assert reading.server_seconds is not None
        server.append(1000 * reading.server_seconds)
        client.append(1000 * reading.probe_seconds)
        statements = reading.statements
        performance_schema = reading.performance_schema
    digests = None
    if performance_schema:
        with connect(target) as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM performance_schema.events_statements_summary_by_digest"
            )
            (digests,) = cursor.fetchone()
    return {
        "server": target.resource_id,
        "performance_schema": "ON" if performance_schema else "OFF",
        "digests": digests,
        "statements": statements,
        "server_median": statistics.median(server),
        "server_p95": percentile(server, 0.95),
        "server_max": max(server),
        "client_median": statistics.median(client),
        "connect_median": statistics.median(connecting),
    }


def fill_digests(port: int, count: int) -> None:
    """`count` distinct statement shapes spread over OpenStack-named schemas (the digest
    table keeps at most performance_schema_digests_size of them, 5,000 by default)."""
    target = DatabaseTarget("127.0.0.1", port)
    columns = ("id", "a", "b", "c", "d", "e")
    with connect(target) as conn, conn.cursor() as cursor:
        for schema in SCHEMAS:
            cursor.execute(f"CREATE DATABASE IF NOT EXISTS {schema}")
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {schema}.t "
                "(id INT PRIMARY KEY, a INT, b INT, c INT, d INT, e INT)"
            )
        # a different column list per statement: a different digest
        shapes = (combo for size in range(1, 7) for combo in itertools.permutations(columns, size))
        for i, combo in zip(range(count), shapes, strict=False):
            for schema in SCHEMAS[: max(1, min(len(SCHEMAS), count - i * len(SCHEMAS)))]:
                cursor.execute(f"SELECT {', '.join(combo)} FROM {schema}.t WHERE id = 1")
            if (i + 1) * len(SCHEMAS) >= count:
                break


def main() -> None:
    console.print(calibration_line())
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default="mysql://root@127.0.0.1:3306")
    parser.add_argument("--sweeps", type=int, default=50)
    parser.add_argument("--digests", type=int, default=5000)
    parser.add_argument("--no-private", action="store_true")
    args = parser.parse_args()

    rows = [measure(DatabaseTarget.from_dsn(args.dsn), args.sweeps)]
    if not args.no_private:
        from mariadb_server import PrivateMariaDB, available

        reason = available()
        if reason:
            console.print(f"[yellow]no private server:[/] {reason}")
        else:
            with PrivateMariaDB() as node:
                started = time.perf_counter()
                fill_digests(node.port, args.digests)
                console.print(
                    f"filled {args.digests} digests in {time.perf_counter() - started:.1f} s",
                    highlight=False,
                )
                rows.append(measure(DatabaseTarget("127.0.0.1", node.port), args.sweeps))

    table = Table(title=f"Database probe cost per sweep ({args.sweeps} sweeps; target <= 50 ms)")
    for header in (
        "Server",
        "perf_schema",
        "Digests",
        "Statements",
        "Server ms (median)",
        "Server ms (p95)",
        "Server ms (max)",
        "Client ms (median)",
        "Connect ms (median)",
        "Verdict",
    ):
        table.add_column(header, justify="right")
    for row in rows:
        ok = float(row["server_p95"]) <= TARGET_MS  # type: ignore[arg-type]
        table.add_row(
            str(row["server"]),
            str(row["performance_schema"]),
            "-" if row["digests"] is None else str(row["digests"]),
            str(row["statements"]),
            *(f"{float(row[k]):.2f}" for k in ("server_median", "server_p95", "server_max")),  # type: ignore[arg-type]
            f"{float(row['client_median']):.2f}",  # type: ignore[arg-type]
            f"{float(row['connect_median']):.2f}",  # type: ignore[arg-type]
            "[green]ok[/]" if ok else "[red]over target[/]",
        )
    console.print(table)


if __name__ == "__main__":
    main()
