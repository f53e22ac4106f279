"""Probe a MariaDB, MySQL or Galera server: load, locks, slow statements, replication.

One sweep is a handful of cheap statements on one connection (global status, a few
variables, two reads of performance_schema's statement digests when it is on, and the
InnoDB transaction list when the user may see it), well under a few milliseconds of the
server's time; ``benchmarks/db_probe.py`` measures it.

Cumulative counters (Slow_queries, Innodb_row_lock_waits, ...) only mean something as a
rate, so a reading keeps them raw and ``derive_rates`` turns two readings into rates;
the caller keeps the previous counters (the store's metric samples are where they live).

Grants: a monitoring user needs ``PROCESS`` (InnoDB transactions and lock waits) and
``SELECT ON performance_schema.*`` (statement digests). Without them the probe still
reports everything else and says which grant is missing.
"""

from __future__ import annotations

import functools
import logging
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pymysql
import pymysql.cursors

from stackfleet.core.errors import CloudError, ConfigError
from stackfleet.core.redaction import redact_url

log = logging.getLogger(__name__)

KIND = "database_server"
SCHEMA_KIND = "database_schema"
DEFAULT_PORT = 3306

# performance_schema timers are in picoseconds
PICO = 1e-12

# SHOW GLOBAL STATUS name -> (metric, is a cumulative counter)
STATUS_METRICS: dict[str, tuple[str, bool]] = {
    "threads_connected": ("connections", False),
    "threads_running": ("threads_running", False),
    "max_used_connections": ("max_used_connections", False),
    "uptime": ("uptime_seconds", False),
    "innodb_row_lock_current_waits": ("innodb_row_lock_current_waits", False),
    "questions": ("queries_total", True),
    "slow_queries": ("slow_queries_total", True),
    "innodb_row_lock_waits": ("innodb_row_lock_waits_total", True),
    "innodb_row_lock_time": ("innodb_row_lock_time_ms_total", True),
    # MariaDB only; MySQL keeps deadlocks in information_schema.INNODB_METRICS
    "innodb_deadlocks": ("innodb_deadlocks_total", True),
    "innodb_log_waits": ("innodb_log_waits_total", True),
    "created_tmp_tables": ("tmp_tables_total", True),
    "created_tmp_disk_tables": ("tmp_disk_tables_total", True),
    "innodb_buffer_pool_read_requests": ("buffer_pool_read_requests_total", True),
    "innodb_buffer_pool_reads": ("buffer_pool_disk_reads_total", True),
    "connection_errors_max_connections": ("connections_refused_total", True),
    "aborted_connects": ("aborted_connects_total", True),
    # Galera (present on MariaDB even without a cluster: read only when wsrep_on)
    "wsrep_cluster_size": ("wsrep_cluster_size", False),
    "wsrep_local_state": ("wsrep_local_state", False),
    "wsrep_local_recv_queue": ("wsrep_recv_queue", False),
    "wsrep_local_recv_queue_avg": ("wsrep_recv_queue_avg", False),
    "wsrep_local_send_queue": ("wsrep_send_queue", False),
    "wsrep_local_send_queue_avg": ("wsrep_send_queue_avg", False),
    "wsrep_flow_control_paused": ("wsrep_flow_control_paused", False),
    "wsrep_flow_control_paused_ns": ("wsrep_flow_control_paused_ns_total", True),
    "wsrep_flow_control_sent": ("wsrep_flow_control_sent_total", True),
    "wsrep_local_cert_failures": ("wsrep_cert_failures_total", True),
}
# status values that are ON/OFF or words rather than numbers
TEXT_STATUS = (
    "wsrep_ready",
    "wsrep_connected",
    "wsrep_cluster_status",
    "wsrep_local_state_comment",
)
VARIABLES = ("max_connections", "performance_schema", "wsrep_on", "version", "long_query_time")

COUNTERS = tuple(metric for metric, counter in STATUS_METRICS.values() if counter)

# wsrep_local_state codes (Galera's node state machine)
WSREP_STATES = {1: "Joining", 2: "Donor/Desynced", 3: "Joined", 4: "Synced"}

# Rates and ratios below this much activity in an interval say nothing.
MIN_TMP_TABLES = 50
MIN_READ_REQUESTS = 1000

# Schema name tokens that belong to an OpenStack service (nova_api, nova_cell0 -> nova).
OPENSTACK_SCHEMAS = (
    "nova",
    "neutron",
    "keystone",
    "glance",
    "cinder",
    "placement",
    "heat",
    "octavia",
    "barbican",
    "designate",
    "ironic",
    "manila",
    "magnum",
    "aodh",
    "gnocchi",
    "trove",
    "mistral",
    "zun",
    "masakari",
    "watcher",
    "cloudkitty",
    "senlin",
)


TLS_MODES = ("required", "preferred", "disabled")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class DatabaseProbeError(CloudError):
    """A database server could not be probed (unreachable, refused our user)."""


@dataclass(frozen=True)
class DatabaseTarget:
    """A database server to probe, and how to reach it."""

    host: str
    port: int = DEFAULT_PORT
    user: str = "root"
    # never in a repr: targets end up in logs and error messages
    password: str = field(default="", repr=False)
    name: str | None = None
    cloud: str = ""
    region: str = ""
    connect_timeout: float = 5.0
    # Galera: how many nodes the cluster should have (a smaller cluster is a finding)
    expected_cluster_size: int | None = None
    # TLS: "required", "preferred" (use it if the server offers it) or "disabled";
    # None: disabled on loopback, preferred elsewhere
    tls: str | None = None

    @property
    def resource_id(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        return self.name or self.resource_id

    @classmethod
    def from_dsn(cls, dsn: str, **extra: Any) -> DatabaseTarget:
        """A target from ``mysql://user:password@host:port`` (also ``mariadb://`` and
        ``mysql+pymysql://``; a path names no database and is ignored)."""
        parts = urlsplit(dsn)
        query = dict(parse_qsl(parts.query))
        if "tls" in query:
            extra.setdefault("tls", query["tls"])
        scheme = parts.scheme.split("+", 1)[0]
        if scheme not in ("mysql", "mariadb") or not parts.hostname:
            raise ConfigError(
                f"database DSN {redact_url(dsn)!r} is not of the form mysql://user:password@host:port"
            )
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError as exc:
            raise ConfigError(f"database DSN {redact_url(dsn)!r}: bad port ({exc})") from exc
        if extra.get("tls") not in (None, *TLS_MODES):
            raise ConfigError(
                f"database DSN {redact_url(dsn)!r}: tls must be one of {', '.join(TLS_MODES)}"
            )
        return cls(
            host=parts.hostname,
            port=port,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            **extra,
        )


@dataclass(frozen=True)
class SchemaLoad:
    """Statement load of one schema, summed over its digests (since the server started
    or performance_schema's digest table was last truncated)."""

    schema: str
    service: str
    statements: float
    latency_seconds: float
    lock_seconds: float
    rows_examined: float
    no_index_used: float
    tmp_disk_tables: float
    errors: float

    def metrics(self) -> dict[str, float]:
        return {
            "statements_total": self.statements,
            "statement_latency_seconds_total": self.latency_seconds,
            "lock_latency_seconds_total": self.lock_seconds,
            "rows_examined_total": self.rows_examined,
            "no_index_used_total": self.no_index_used,
            "tmp_disk_tables_total": self.tmp_disk_tables,
            "statement_errors_total": self.errors,
        }


@dataclass(frozen=True)
class StatementDigest:
    """One normalised statement and its totals."""

    schema: str
    service: str
    digest: str
    text: str
    calls: float
    latency_seconds: float
    max_seconds: float
    lock_seconds: float
    rows_examined: float
    rows_sent: float
    no_index_used: float

    def as_dict(self, total_latency: float) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "service": self.service,
            "digest": self.digest,
            "calls": int(self.calls),
            "total_latency_seconds": round(self.latency_seconds, 6),
            "avg_latency_ms": round(1000 * self.latency_seconds / self.calls, 3)
            if self.calls
            else None,
            "max_latency_ms": round(1000 * self.max_seconds, 3),
            "lock_seconds": round(self.lock_seconds, 6),
            "rows_examined_per_call": round(self.rows_examined / self.calls, 1)
            if self.calls
            else None,
            "no_index_used": int(self.no_index_used),
            "latency_share": round(self.latency_seconds / total_latency, 4)
            if total_latency
            else None,
            "text": self.text,
        }


@dataclass(frozen=True)
class LockBlocker:
    """A transaction others wait for (from information_schema.INNODB_LOCK_WAITS)."""

    thread_id: int
    user: str
    host: str
    schema: str
    seconds: float
    waiting: int
    query: str


@dataclass
class DatabaseReading:
    """What one sweep of one server saw."""

    target: DatabaseTarget
    ts: float
    version: str
    values: dict[str, float]
    performance_schema: bool
    galera: bool
    wsrep_state: str = ""
    wsrep_cluster_status: str = ""
    long_query_time: float | None = None
    schemas: list[SchemaLoad] = field(default_factory=list)
    top_statements: list[StatementDigest] = field(default_factory=list)
    blockers: list[LockBlocker] = field(default_factory=list)
    missing_grants: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # wall time of the sweep's statements as the client saw it (upper bound of the
    # server's time), and the server's own time when measured (SHOW PROFILES)
    probe_seconds: float = 0.0
    server_seconds: float | None = None
    statements: int = 0

    def labels(self) -> dict[str, str]:
        return {
            "server": self.target.label,
            "wsrep_state": self.wsrep_state,
            "long_query_time": f"{self.long_query_time:g} s"
            if self.long_query_time is not None
            else "long_query_time",
        }


def schema_service(schema: str) -> str:
    """The OpenStack service a schema belongs to ("" if none): nova_api -> nova,
    sftb_nova_cell1 -> nova, neutron -> neutron."""
    tokens = re.split(r"[_\-]", schema.lower())
    for token in tokens:
        if token in OPENSTACK_SCHEMAS:
            return token
    return ""


def _number(raw: Any) -> float | None:
    if raw is None:
        return None
    text = str(raw).strip()
    if text.upper() in ("ON", "YES", "TRUE"):
        return 1.0
    if text.upper() in ("OFF", "NO", "FALSE"):
        return 0.0
    try:
        return float(text)
    except ValueError:
        return None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Building a context loads the system's CA certificates: ~20-40 ms of CPU that
    # PyMySQL would otherwise spend on every connection.
    return ssl.create_default_context()


def _tls_options(target: DatabaseTarget) -> dict[str, Any]:
    mode = target.tls or ("disabled" if target.host in LOOPBACK else "preferred")
    if mode == "disabled":
        return {"ssl_disabled": True}
    if mode == "required":
        return {"ssl": _tls_context()}
    return {}  # PyMySQL's default: TLS if the server offers it


def connect(target: DatabaseTarget) -> pymysql.connections.Connection[Any]:
    """A connection to `target`, or a DatabaseProbeError that says what to fix."""
    try:
        return pymysql.connect(
            **_tls_options(target),
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
            connect_timeout=target.connect_timeout,
            read_timeout=max(target.connect_timeout, 10.0),
            autocommit=True,
            charset="utf8mb4",
        )
    except pymysql.err.OperationalError as exc:
        code = exc.args[0] if exc.args else None
        if code == 1045:
            raise DatabaseProbeError(
                f"{target.resource_id}: access denied for user {target.user!r}: check the "
                f"user and password of this database target ({exc.args[1]})"
            ) from exc
        raise DatabaseProbeError(
            f"{target.resource_id}: cannot connect to the database server: "
            f"{exc.args[1] if len(exc.args) > 1 else exc}"
        ) from exc


def _name_list(names: Sequence[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


class _Sweep:
    """The statements of one sweep on one connection, counted and timed."""

    def __init__(self, connection: pymysql.connections.Connection[Any]) -> None:
        self.connection = connection
        self.statements = 0
        self.seconds = 0.0

    def rows(self, sql: str, args: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        started = time.perf_counter()
        with self.connection.cursor() as cursor:
            cursor.execute(sql, args)
            rows = list(cursor.fetchall())
        self.seconds += time.perf_counter() - started
        self.statements += 1
        return rows


def _grant_note(target: DatabaseTarget, grant: str, skipped: str) -> str:
    return (
        f"{target.resource_id}: user {target.user!r} lacks the {grant} grant, so {skipped} "
        f"are not read; grant it with: GRANT {grant} TO '{target.user}'@'<probe host>'"
    )


def probe_database(
    target: DatabaseTarget,
    *,
    top: int = 10,
    schema: str | None = None,
    measure_server_time: bool = False,
    now: float | None = None,
) -> DatabaseReading:
    """One sweep of `target`. `top` statement digests by total latency (only of `schema`
    when given); `measure_server_time` asks the server (SHOW PROFILES) how long it spent
    on the sweep's statements."""
    connection = connect(target)
    try:
        return _probe(connection, target, top, schema, measure_server_time, now)
    except pymysql.err.MySQLError as exc:
        raise DatabaseProbeError(f"{target.resource_id}: probe failed: {exc}") from exc
    finally:
        connection.close()


def _probe(
    connection: pymysql.connections.Connection[Any],
    target: DatabaseTarget,
    top: int,
    schema: str | None,
    measure_server_time: bool,
    now: float | None,
) -> DatabaseReading:
    sweep = _Sweep(connection)
    if measure_server_time:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION profiling = 1")
            cursor.execute("SET SESSION profiling_history_size = 100")
    ts = time.time() if now is None else now
    names = list(STATUS_METRICS) + list(TEXT_STATUS)
    status = {
        str(name).lower(): value
        for name, value in sweep.rows(
            f"SHOW GLOBAL STATUS WHERE Variable_name IN ({_name_list(names)})"
        )
    }
    variables = {
        str(name).lower(): value
        for name, value in sweep.rows(
            f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({_name_list(VARIABLES)})"
        )
    }
    galera = _number(variables.get("wsrep_on")) == 1.0
    performance_schema = _number(variables.get("performance_schema")) == 1.0
    values: dict[str, float] = {}
    for name, (metric, _counter) in STATUS_METRICS.items():
        if name.startswith("wsrep_") and not galera:
            continue
        number = _number(status.get(name))
        if number is not None:
            values[metric] = number
    max_connections = _number(variables.get("max_connections")) or 0.0
    values["max_connections"] = max_connections
    if max_connections:
        values["connections_used_ratio"] = values.get("connections", 0.0) / max_connections
        values["threads_running_ratio"] = values.get("threads_running", 0.0) / max_connections
    requests = values.get("buffer_pool_read_requests_total", 0.0)
    if requests:
        # since the server started; derive_rates replaces it with the interval's ratio
        values["buffer_pool_hit_ratio"] = 1 - values.get("buffer_pool_disk_reads_total", 0.0) / (
            requests
        )
    values["performance_schema_enabled"] = 1.0 if performance_schema else 0.0
    values["galera"] = 1.0 if galera else 0.0
    if target.expected_cluster_size is not None:
        values["wsrep_cluster_size_expected"] = float(target.expected_cluster_size)
    reading = DatabaseReading(
        target=target,
        ts=ts,
        version=str(variables.get("version", "")),
        values=values,
        performance_schema=performance_schema,
        galera=galera,
        long_query_time=_number(variables.get("long_query_time")),
    )
    if galera:
        reading.wsrep_state = str(status.get("wsrep_local_state_comment") or "")
        reading.wsrep_cluster_status = str(status.get("wsrep_cluster_status") or "")
        for word in ("wsrep_ready", "wsrep_connected"):
            number = _number(status.get(word))
            if number is not None:
                values[word] = number
        values["wsrep_primary"] = 1.0 if reading.wsrep_cluster_status == "Primary" else 0.0
        if target.expected_cluster_size is not None and "wsrep_cluster_size" in values:
            values["wsrep_cluster_nodes_missing"] = max(
                0.0, target.expected_cluster_size - values["wsrep_cluster_size"]
            )
    if performance_schema:
        # when it is off, the policy database/performance-schema-off says so and what it costs
        _read_digests(sweep, reading, top, schema)
    _read_transactions(sweep, reading)
    if measure_server_time:
        profiles = sweep.rows("SHOW PROFILES")
        reading.server_seconds = sum(
            float(duration)
            for _id, duration, query in profiles
            if not str(query).upper().startswith(("SET SESSION PROFILING", "SHOW PROFILES"))
        )
    reading.probe_seconds = sweep.seconds
    reading.statements = sweep.statements
    values["probe_duration_seconds"] = sweep.seconds
    return reading


def _denied(exc: pymysql.err.MySQLError) -> bool:
    # 1142 table access denied, 1044 database access denied, 1227 privilege needed
    return bool(exc.args) and exc.args[0] in (1142, 1044, 1227)


def _read_digests(sweep: _Sweep, reading: DatabaseReading, top: int, schema: str | None) -> None:
    table = "performance_schema.events_statements_summary_by_digest"
    try:
        per_schema = sweep.rows(
            "SELECT COALESCE(SCHEMA_NAME, ''), SUM(COUNT_STAR), SUM(SUM_TIMER_WAIT), "
            "SUM(SUM_LOCK_TIME), SUM(SUM_ROWS_EXAMINED), SUM(SUM_NO_INDEX_USED), "
            "SUM(SUM_CREATED_TMP_DISK_TABLES), SUM(SUM_ERRORS) "
            f"FROM {table} GROUP BY SCHEMA_NAME"
        )
        where, args = ("WHERE SCHEMA_NAME = %s", [schema]) if schema else ("", [])
        digests = sweep.rows(
            "SELECT COALESCE(SCHEMA_NAME, ''), DIGEST, LEFT(DIGEST_TEXT, 400), COUNT_STAR, "
            "SUM_TIMER_WAIT, MAX_TIMER_WAIT, SUM_LOCK_TIME, SUM_ROWS_EXAMINED, "
            f"SUM_ROWS_SENT, SUM_NO_INDEX_USED FROM {table} {where} "
            "ORDER BY SUM_TIMER_WAIT DESC LIMIT %s",
            [*args, top],
        )
    except pymysql.err.MySQLError as exc:
        if not _denied(exc):
            raise
        reading.missing_grants.append("SELECT ON performance_schema.*")
        reading.notes.append(
            _grant_note(
                reading.target,
                "SELECT ON performance_schema.*",
                "top statements and per-schema latency",
            )
        )
        return
    reading.schemas = [
        SchemaLoad(
            schema=name,
            service=schema_service(name),
            statements=float(count or 0),
            latency_seconds=float(wait or 0) * PICO,
            lock_seconds=float(lock or 0) * PICO,
            rows_examined=float(examined or 0),
            no_index_used=float(no_index or 0),
            tmp_disk_tables=float(tmp_disk or 0),
            errors=float(errors or 0),
        )
        for name, count, wait, lock, examined, no_index, tmp_disk, errors in per_schema
    ]
    reading.schemas.sort(key=lambda load: load.latency_seconds, reverse=True)
    reading.top_statements = [
        StatementDigest(
            schema=name,
            service=schema_service(name),
            digest=str(digest or ""),
            text=" ".join(str(text or "").split()),
            calls=float(count or 0),
            latency_seconds=float(wait or 0) * PICO,
            max_seconds=float(max_wait or 0) * PICO,
            lock_seconds=float(lock or 0) * PICO,
            rows_examined=float(examined or 0),
            rows_sent=float(sent or 0),
            no_index_used=float(no_index or 0),
        )
        for name, digest, text, count, wait, max_wait, lock, examined, sent, no_index in digests
    ]


def _read_transactions(sweep: _Sweep, reading: DatabaseReading) -> None:
    try:
        ((open_trx, waiting, oldest),) = sweep.rows(
            "SELECT COUNT(*), COALESCE(SUM(trx_state = 'LOCK WAIT'), 0), "
            "COALESCE(MAX(TIMESTAMPDIFF(SECOND, trx_started, NOW())), 0) "
            "FROM information_schema.INNODB_TRX"
        )
    except pymysql.err.MySQLError as exc:
        if not _denied(exc):
            raise
        reading.missing_grants.append("PROCESS ON *.*")
        reading.notes.append(
            _grant_note(
                reading.target,
                "PROCESS ON *.*",
                "open transactions, lock waits and their blockers",
            )
        )
        return
    reading.values["innodb_open_transactions"] = float(open_trx)
    reading.values["innodb_lock_waiting_transactions"] = float(waiting)
    reading.values["innodb_oldest_transaction_seconds"] = float(oldest)
    if not waiting:
        return
    # Only when someone waits: who holds the locks they wait for.
    rows = sweep.rows(
        "SELECT b.trx_mysql_thread_id, COALESCE(p.USER, ''), COALESCE(p.HOST, ''), "
        "COALESCE(p.DB, ''), TIMESTAMPDIFF(SECOND, b.trx_started, NOW()), "
        "COUNT(DISTINCT w.requesting_trx_id), COALESCE(LEFT(b.trx_query, 200), '') "
        "FROM information_schema.INNODB_LOCK_WAITS w "
        "JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id "
        "LEFT JOIN information_schema.PROCESSLIST p ON p.ID = b.trx_mysql_thread_id "
        "GROUP BY b.trx_id ORDER BY COUNT(DISTINCT w.requesting_trx_id) DESC LIMIT 5"
    )
    reading.blockers = [
        LockBlocker(
            thread_id=int(thread),
            user=str(user),
            host=str(host),
            schema=str(db),
            seconds=float(age or 0),
            waiting=int(waiting_count),
            query=str(query or ""),
        )
        for thread, user, host, db, age, waiting_count, query in rows
    ]


def derive_rates(
    values: dict[str, float],
    previous: Mapping[str, float],
    interval: float,
) -> dict[str, float]:
    """Rates and interval ratios from this reading's counters and an earlier reading's
    (`interval` seconds before). A counter that went down (a restart, FLUSH STATUS)
    gives no rate. Returns the new metrics (also added to `values`)."""
    if interval <= 0:
        return {}
    if values.get("uptime_seconds", 0) < previous.get("uptime_seconds", 0):
        return {}  # restarted in between: every counter started again

    def delta(metric: str) -> float | None:
        if metric not in values or metric not in previous:
            return None
        change = values[metric] - previous[metric]
        return change if change >= 0 else None

    rates: dict[str, float] = {"rate_interval_seconds": interval}
    per_second = {
        "queries_total": "queries_per_second",
        "slow_queries_total": "slow_queries_per_second",
        "innodb_row_lock_waits_total": "innodb_row_lock_waits_per_second",
        "innodb_deadlocks_total": "innodb_deadlocks_per_second",
        "innodb_log_waits_total": "innodb_log_waits_per_second",
        "connections_refused_total": "connections_refused_per_second",
        "wsrep_flow_control_sent_total": "wsrep_flow_control_sent_per_second",
        "wsrep_cert_failures_total": "wsrep_cert_failures_per_second",
    }
    for counter, rate in per_second.items():
        change = delta(counter)
        if change is not None:
            rates[rate] = change / interval
    lock_ms = delta("innodb_row_lock_time_ms_total")
    if lock_ms is not None:
        # sessions waiting for a row lock, on average over the interval
        rates["innodb_row_lock_wait_ratio"] = lock_ms / 1000 / interval
        waits = delta("innodb_row_lock_waits_total")
        if waits:
            rates["innodb_row_lock_time_avg_ms"] = lock_ms / waits
    tmp, tmp_disk = delta("tmp_tables_total"), delta("tmp_disk_tables_total")
    if tmp is not None and tmp_disk is not None and tmp >= MIN_TMP_TABLES:
        rates["tmp_disk_tables_ratio"] = tmp_disk / tmp
    requests, misses = (
        delta("buffer_pool_read_requests_total"),
        delta("buffer_pool_disk_reads_total"),
    )
    if requests is not None and misses is not None and requests >= MIN_READ_REQUESTS:
        rates["buffer_pool_hit_ratio"] = 1 - misses / requests
    paused = delta("wsrep_flow_control_paused_ns_total")
    if paused is not None:
        rates["wsrep_flow_control_paused_ratio"] = paused / 1e9 / interval
    values.update(rates)
    return rates


def schema_rates(
    current: SchemaLoad, previous: Mapping[str, float], interval: float
) -> dict[str, float]:
    """Per-second statement load of one schema between two readings."""
    if interval <= 0:
        return {}
    now = current.metrics()
    rates = {}
    for counter, rate in (
        ("statements_total", "statements_per_second"),
        ("statement_latency_seconds_total", "statement_latency_seconds_per_second"),
    ):
        if counter in previous and now[counter] >= previous[counter]:
            rates[rate] = (now[counter] - previous[counter]) / interval
    return rates
