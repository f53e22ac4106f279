"""Benchmark: the 14-day metric window the waste pack's idle-servers rule reads (mean
`cpu_util` per server), over 20,000 servers, plus compaction and ingest at that size.

The store is filled as a steady state of `compact` would leave it: hourly rollups for
14 days and daily ones for the complete days, 5-minute rollups and raw samples (one
every 5 minutes) for the last 6 hours, for `cpu_util` and a second metric,
`memory_util`, so the reads must select by metric. Rows are written bucket by bucket
(SQLite's own executemany, PostgreSQL's COPY), the two tables' indexes dropped during
the fill and built after it; the file can be kept and reused (--db PATH --keep): a
reused file is migrated to the newest schema first. --postgres needs an empty database.

Timed: `metric_window` (what the `metric` filter calls; the idle rule is one call of it
over all servers), cold (first read after opening the store) and warm; a `compact` that
has one new 5-minute bucket to roll; and ingest of 100,000 raw samples through
`record_samples` into the large table. Times are wall and CPU (the machine may be
shared: CPU is the fair measure); peak RSS is the process's; size is the database file.

    .venv/bin/python benchmarks/metric_windows.py [--servers 20000] [--days 14]
        [--db PATH] [--keep] [--postgres URL [--no-sqlite]]
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from calibration import calibration_line
from rich.console import Console
from rich.table import Table
from sqlalchemy import Index, func, select, text
from sqlalchemy import Table as SqlTable

from stackfleet.store import open_store
from stackfleet.store.db import Store
from stackfleet.store.evaluation import metric_window
from stackfleet.store.metrics import (
    DAY,
    FIVE_MINUTES,
    HOUR,
    ROLLUPS,
    SAMPLES,
    Sample,
    compact,
    record_samples,
)

console = Console(width=max(Console().width, 120))
METRICS = ("cpu_util", "memory_util")
RAW_HOURS = 6


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(run: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _level(n: int, metric: str) -> float:
    # a tenth of the servers idle (mean cpu under 2 %)
    if metric != "cpu_util":
        return 50.0
    return 1.0 if n % 10 == 0 else 30.0


def _rollup_rows(servers: int, now: float, days: int) -> Iterator[tuple[Any, ...]]:
    """Bucket by bucket, as `compact` writes them (rows of one bucket are neighbours)."""
    rng = random.Random(7)
    first_hour = int((now - days * DAY - DAY) // HOUR) * HOUR
    rolled_hours = int(now // HOUR) * HOUR  # the hourly watermark: this hour's start
    five_from = int((now - RAW_HOURS * HOUR) // FIVE_MINUTES) * FIVE_MINUTES
    rolled_five = int(now // FIVE_MINUTES) * FIVE_MINUTES
    first_day = int(first_hour // DAY) * DAY + DAY
    rolled_days = int(rolled_hours // DAY) * DAY
    ids = [f"server-{n:06d}" for n in range(servers)]
    for hour in range(first_hour, rolled_hours, HOUR):
        for n, rid in enumerate(ids):
            for metric in METRICS:
                v = _level(n, metric) + rng.random()
                yield ("bench", "r1", "server", rid, metric, HOUR, float(hour), 12, v * 12, v, v)
        if hour % DAY == DAY - HOUR and first_day <= hour - DAY + HOUR < rolled_days:
            day = float(hour - DAY + HOUR)
            for n, rid in enumerate(ids):
                for metric in METRICS:
                    v = _level(n, metric) + 0.5
                    yield ("bench", "r1", "server", rid, metric, DAY, day, 288, v * 288, v, v)
    for bucket in range(five_from, rolled_five, FIVE_MINUTES):
        for n, rid in enumerate(ids):
            for metric in METRICS:
                v = _level(n, metric) + rng.random()
                yield (
                    "bench",
                    "r1",
                    "server",
                    rid,
                    metric,
                    FIVE_MINUTES,
                    float(bucket),
                    1,
                    v,
                    v,
                    v,
                )


def _raw_rows(servers: int, now: float) -> Iterator[tuple[Any, ...]]:
    """One reading of each series every 5 minutes, in time order."""
    rng = random.Random(8)
    start = now - RAW_HOURS * HOUR
    ids = [f"server-{n:06d}" for n in range(servers)]
    for step in range(RAW_HOURS * HOUR // FIVE_MINUTES):
        for n, rid in enumerate(ids):
            ts = start + step * FIVE_MINUTES + (n % FIVE_MINUTES)
            if ts < now:
                for metric in METRICS:
                    yield (
                        "bench",
                        "r1",
                        "server",
                        rid,
                        metric,
                        ts,
                        _level(n, metric) + rng.random(),
                    )


def _chunks(rows: Iterator[tuple[Any, ...]], size: int = 200_000) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def fill(store: Store, servers: int, now: float, days: int) -> None:
    """Write the steady state with the two tables' indexes dropped, then build them."""
    tables: list[SqlTable] = [SAMPLES, ROLLUPS]
    indexes: list[Index] = [index for table in tables for index in table.indexes]
    with store.engine.begin() as connection:
        for index in indexes:
            connection.execute(text(f"DROP INDEX IF EXISTS {index.name}"))
        rollup_sql = (
            "INSERT INTO metric_rollups (cloud, region, kind, resource_id, metric, resolution,"
            " bucket, count, total, minimum, maximum) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        )
        raw_sql = (
            "INSERT INTO metric_samples (cloud, region, kind, resource_id, metric, ts, value)"
            " VALUES (?,?,?,?,?,?,?)"
        )
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA cache_size=-262144")
            for chunk in _chunks(_rollup_rows(servers, now, days)):
                connection.exec_driver_sql(rollup_sql, chunk)
            for chunk in _chunks(_raw_rows(servers, now)):
                connection.exec_driver_sql(raw_sql, chunk)
        else:
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(
                "COPY metric_rollups (cloud, region, kind, resource_id, metric, resolution,"
                " bucket, count, total, minimum, maximum) FROM STDIN"
            ) as copy:
                for row in _rollup_rows(servers, now, days):
                    copy.write_row(row)
            with cursor.copy(
                "COPY metric_samples (cloud, region, kind, resource_id, metric, ts, value)"
                " FROM STDIN"
            ) as copy:
                for row in _raw_rows(servers, now):
                    copy.write_row(row)
        for index in indexes:
            index.create(connection)
        if connection.dialect.name == "postgresql":
            connection.execute(text("ANALYZE metric_rollups"))
            connection.execute(text("ANALYZE metric_samples"))
        else:
            connection.execute(text("ANALYZE"))


def run(url: str, servers: int, days: int, fresh: bool, path: Path | None) -> Table:
    store = open_store(url)
    table = Table(
        title=f"metric windows: {servers:,} servers × {days} d ({store.engine.dialect.name})"
    )
    for column in ("step", "wall s", "CPU s", "rows", "peak RSS MiB"):
        table.add_column(column, justify="right" if column != "step" else "left")
    with store.engine.connect() as connection:
        newest = connection.execute(select(func.max(SAMPLES.c.ts))).scalar()
    if fresh or newest is None:
        now = float(int(time.time()))
        _, wall, cpu = timed(lambda: fill(store, servers, now, days))
        table.add_row(
            "fill (bulk, indexes after)", f"{wall:.1f}", f"{cpu:.1f}", "", f"{_rss_mib():.0f}"
        )
    else:
        now = float(newest) + 1
    store.close()
    store = open_store(url)
    with store.engine.connect() as connection:
        counts: dict[int, int] = dict(
            connection.execute(
                select(ROLLUPS.c.resolution, func.count()).group_by(ROLLUPS.c.resolution)
            ).all()
        )
        raw = connection.execute(select(func.count()).select_from(SAMPLES)).scalar()
    table.add_row(
        "rows kept",
        "",
        "",
        f"raw {raw:,}; " + "; ".join(f"{r}s {n:,}" for r, n in sorted(counts.items())),
        "",
    )
    since = now - days * DAY
    for label in ("cold", "warm"):
        result, wall, cpu = timed(lambda: metric_window(store, "server", "cpu_util", since, "mean"))
        idle = sum(1 for value, count in result.values() if value < 2 and count >= 12)
        table.add_row(
            f"idle rule window, mean {days} d ({label})",
            f"{wall:.2f}",
            f"{cpu:.2f}",
            f"{len(result):,} servers, {idle:,} idle",
            f"{_rss_mib():.0f}",
        )
    result, wall, cpu = timed(lambda: metric_window(store, "server", "cpu_util", now - DAY, "max"))
    table.add_row("max 1 d", f"{wall:.2f}", f"{cpu:.2f}", f"{len(result):,}", f"{_rss_mib():.0f}")
    # one more 5-minute bucket of raw samples to roll, then compact with the defaults
    # (nothing old enough to drop but the raw samples of that bucket's turn)
    later = now + FIVE_MINUTES
    batch = [
        Sample("bench", "r1", "server", f"server-{n:06d}", metric, now + 1 + (n % 290), 1.0)
        for n in range(servers)
        for metric in METRICS
    ]
    record_samples(store, batch)
    outcome, wall, cpu = timed(lambda: compact(store, later + FIVE_MINUTES))
    table.add_row("compact (one new 5-min bucket)", f"{wall:.2f}", f"{cpu:.2f}", str(outcome), "")
    ingest = [
        Sample(
            "bench",
            "r1",
            "server",
            f"server-{n % servers:06d}",
            "ingest_probe",
            later + n * 1e-3,
            1.0,
        )
        for n in range(100_000)
    ]
    count, wall, cpu = timed(lambda: record_samples(store, ingest))
    table.add_row(
        "ingest 100,000 samples (large table)",
        f"{wall:.2f}",
        f"{cpu:.2f}",
        f"{count / wall:,.0f} samples/s",
        f"{_rss_mib():.0f}",
    )
    if path is not None:
        size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
        per = size / servers / len(METRICS) / days
        table.add_row(
            "store on disk", "", "", f"{size / 2**20:,.0f} MiB ({per:,.0f} B per series-day)", ""
        )
    store.close()
    return table


def main() -> None:
    console.print(calibration_line())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--db", type=Path, help="SQLite file (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="reuse --db if it holds data")
    parser.add_argument("--postgres", help="also run on this (empty) PostgreSQL database URL")
    parser.add_argument("--no-sqlite", action="store_true", help="only the PostgreSQL run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "metrics.db"
        if path.exists() and not args.keep:
            for leftover in path.parent.glob(path.name + "*"):
                leftover.unlink()
        if not args.no_sqlite:
            console.print(run(f"sqlite:///{path}", args.servers, args.days, not args.keep, path))
        if args.postgres:
            console.print(run(args.postgres, args.servers, args.days, True, None))


if __name__ == "__main__":
    main()
