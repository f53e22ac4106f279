"""Throwaway MariaDB servers on loopback for the database monitoring tests: a single
server with performance_schema on, and a 3-node Galera cluster.

The machine's MariaDB (127.0.0.1:3306) is shared with the OpenStack testbed and runs
with performance_schema off, which cannot change without a restart; these private
servers are ours to configure, load and kill. Each lives in its own directory under
/tmp (owned by `mysql`: Galera's rsync state transfer runs as that user) and listens
only on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
GALERA = "/usr/lib/galera/libgalera_smm.so"


def available() -> str | None:
    """Why private servers cannot run here (None: they can)."""
    if os.geteuid() != 0:
        return "private MariaDB servers need root (to run them as the mysql user)"
    for path in (MARIADBD, INSTALL_DB):
        if not Path(path).exists():
            return f"{path} is not installed"
    return None


def galera_available() -> str | None:
    """Why a Galera cluster cannot run here (None: it can)."""
    reason = available()
    if reason:
        return reason
    if not Path(GALERA).exists():
        return f"Galera ({GALERA}, Debian package galera-4) is not installed"
    if not shutil.which("rsync"):
        return "rsync (Galera's state transfer) is not installed"
    return None


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on 127.0.0.1."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _workdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def _install(datadir: Path) -> None:
    subprocess.run(
        [
            INSTALL_DB,
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=mysql",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _chown(path: Path) -> None:
    shutil.chown(path, "mysql", "mysql")
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            shutil.chown(os.path.join(root, name), "mysql", "mysql")


@dataclass
class Node:
    """One mariadbd we started."""

    name: str
    port: int
    datadir: Path
    process: subprocess.Popen[bytes] | None = None

    def connect(self, **kwargs: object) -> pymysql.connections.Connection[object]:
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", autocommit=True, **kwargs
        )

    def status(self, name: str) -> str | None:
        try:
            with self.connect(connect_timeout=2) as conn, conn.cursor() as cursor:
                cursor.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
                row = cursor.fetchone()
        except pymysql.err.MySQLError:
            return None
        return str(row[1]) if row else None

    def wait_until(self, ready: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                log = (self.datadir.parent / f"{self.name}.err").read_text()[-2000:]
                raise RuntimeError(f"mariadbd {self.name} exited while {what}:\n{log}")
            if callable(ready) and ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"mariadbd {self.name}: not {what} after {timeout} s")

    def kill(self, sig: int = signal.SIGTERM, wait: float = 30) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _start(node: Node, workdir: Path, extra: list[str]) -> None:
    args = [
        MARIADBD,
        "--no-defaults",
        "--user=mysql",
        f"--datadir={node.datadir}",
        f"--port={node.port}",
        "--bind-address=127.0.0.1",
        f"--socket={workdir / (node.name + '.sock')}",
        f"--pid-file={workdir / (node.name + '.pid')}",
        f"--log-error={workdir / (node.name + '.err')}",
        "--innodb-buffer-pool-size=32M",
        "--innodb-log-file-size=16M",
        "--max-connections=100",
        *extra,
    ]
    node.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclass
class PrivateMariaDB:
    """A single server with the given options (default: performance_schema on)."""

    options: list[str] = field(
        default_factory=lambda: [
            "--performance-schema=ON",
            "--performance-schema-consumer-statements-digest=ON",
        ]
    )
    node: Node | None = None
    workdir: Path | None = None

    def __enter__(self) -> Node:
        self.workdir = _workdir("sf-probe-mariadb-")
        datadir = self.workdir / "data"
        _install(datadir)
        _chown(self.workdir)
        self.node = Node("single", free_ports(1)[0], datadir)
        _start(self.node, self.workdir, self.options)
        self.node.wait_until(lambda: self.node.status("Uptime") is not None, 60, "answering")
        return self.node

    def __exit__(self, *_exc: object) -> None:
        if self.node:
            self.node.kill()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class GaleraCluster:
    """Three Galera nodes on loopback, the first bootstrapping the cluster."""

    size: int = 3
    nodes: list[Node] = field(default_factory=list)
    workdir: Path | None = None

    def __enter__(self) -> GaleraCluster:
        self.workdir = _workdir("sf-probe-galera-")
        ports = free_ports(4 * self.size)
        groups = [ports[4 * i : 4 * i + 4] for i in range(self.size)]
        address = "gcomm://" + ",".join(f"127.0.0.1:{g[1]}" for g in groups)
        _install(self.workdir / "n1")
        for i in range(2, self.size + 1):
            (self.workdir / f"n{i}").mkdir()
        _chown(self.workdir)
        try:
            for i, (port, gcomm, ist, sst) in enumerate(groups, start=1):
                node = Node(f"n{i}", port, self.workdir / f"n{i}")
                self.nodes.append(node)
                options = [
                    "--binlog-format=ROW",
                    "--innodb-autoinc-lock-mode=2",
                    "--wsrep-on=ON",
                    f"--wsrep-provider={GALERA}",
                    f"--wsrep-cluster-address={address}",
                    "--wsrep-cluster-name=sf-probe",
                    f"--wsrep-node-name=n{i}",
                    f"--wsrep-node-address=127.0.0.1:{gcomm}",
                    f"--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:{gcomm};"
                    f"ist.recv_addr=127.0.0.1:{ist};gcache.size=16M",
                    f"--wsrep-sst-receive-address=127.0.0.1:{sst}",
                    "--wsrep-sst-method=rsync",
                ]
                if i == 1:
                    options.append("--wsrep-new-cluster")
                _start(node, self.workdir, options)
                node.wait_until(
                    lambda n=node: n.status("wsrep_local_state_comment") == "Synced",
                    90,
                    "Synced",
                )
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        for node in reversed(self.nodes):
            node.kill()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
