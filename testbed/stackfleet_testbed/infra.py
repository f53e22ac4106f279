"""MariaDB and RabbitMQ: installed from Debian if missing, started if stopped, and the
testbed's databases, vhosts and accounts created or dropped.

These two servers are shared with the rest of the machine: the testbed never stops
them, and touches only the databases, vhosts and users it names (see ``layout``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time

from . import layout as L


class InfraError(RuntimeError):
    pass


def _port_open(port: int, address: str = L.HOST) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def _run(argv: list[str], *, input: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(argv, input=input, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise InfraError(
            f"{' '.join(argv[:3])} failed ({proc.returncode}): {proc.stderr.strip()[-800:]}"
        )
    return proc.stdout


def _apt_install(packages: list[str], say) -> None:
    say(f"installing {' '.join(packages)} from Debian packages")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", *packages], check=True, env=env, capture_output=True
    )


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise InfraError(f"{what} did not come up within {timeout:.0f} s")


def _mysql_ok() -> bool:
    return (
        subprocess.run(
            _mysql_argv() + ["-e", "SELECT 1"], capture_output=True, text=True
        ).returncode
        == 0
    )


def ensure_mariadb(say) -> None:
    if _port_open(3306) and _mysql_ok():
        return
    if not shutil.which("mariadbd", path="/usr/sbin:/usr/bin"):
        _apt_install(["mariadb-server", "mariadb-client"], say)
    if not _port_open(3306):
        say("starting MariaDB")
        os.makedirs("/run/mysqld", exist_ok=True)
        shutil.chown("/run/mysqld", "mysql", "mysql")
        subprocess.run(
            [
                "start-stop-daemon",
                "--start",
                "--oknodo",
                "--background",
                "--exec",
                "/usr/sbin/mariadbd",
            ],
            check=True,
        )
    _wait(lambda: _port_open(3306) and _mysql_ok(), 60, "MariaDB on 127.0.0.1:3306")


def _rabbit_ok() -> bool:
    return _port_open(5672)


def ensure_rabbitmq(say) -> None:
    if _rabbit_ok():
        return
    if not shutil.which("rabbitmq-server", path="/usr/sbin:/usr/bin"):
        _apt_install(["rabbitmq-server"], say)
    say("starting RabbitMQ")
    subprocess.run(["rabbitmq-server", "-detached"], check=True, capture_output=True)
    _wait(_rabbit_ok, 90, "RabbitMQ on 127.0.0.1:5672")
    _run(["rabbitmqctl", "await_startup"], check=False)


def ensure_rabbitmq_management(say) -> None:
    """Turns RabbitMQ's management plugin on (it ships with the server, off): its HTTP
    API shows each queue's consumers, which health checks read. Only ever enabled."""
    if _port_open(15672):
        return
    plugins = shutil.which("rabbitmq-plugins", path="/usr/sbin:/usr/bin")
    if not plugins:
        say("rabbitmq-plugins not found: RabbitMQ's management API stays off")
        return
    say("enabling RabbitMQ's management plugin (HTTP API on 127.0.0.1:15672)")
    _run([plugins, "enable", "rabbitmq_management"])
    _wait(lambda: _port_open(15672), 60, "RabbitMQ's management API on 127.0.0.1:15672")


# --- MariaDB -------------------------------------------------------------------------


def _mysql_argv() -> list[str]:
    argv = ["mysql", "-h", L.HOST, "-u", os.environ.get("STACKFLEET_TESTBED_DB_ROOT_USER", "root")]
    password = os.environ.get("STACKFLEET_TESTBED_DB_ROOT_PASSWORD")
    if password:
        argv.append(f"-p{password}")
    return argv


def mysql(sql: str) -> str:
    return _run(_mysql_argv() + ["-N", "-B"], input=sql)


def all_db_names() -> list[str]:
    return [L.db_name(short) for shorts in L.DATABASES.values() for short in shorts]


def existing_databases() -> set[str]:
    out = mysql(f"SHOW DATABASES LIKE '{L.DB_PREFIX.replace('_', chr(92) + '_')}%';")
    return set(out.split())


def recreate_databases() -> None:
    statements = []
    for name in all_db_names():
        statements.append(f"DROP DATABASE IF EXISTS `{name}`;")
        statements.append(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb3;")
    for host in ("127.0.0.1", "localhost"):
        statements.append(
            f"CREATE USER IF NOT EXISTS '{L.DB_USER}'@'{host}' IDENTIFIED BY '{L.DB_PASSWORD}';"
        )
        statements.append(
            f"GRANT ALL PRIVILEGES ON `{L.DB_PREFIX.replace('_', chr(92) + '_')}%`.* "
            f"TO '{L.DB_USER}'@'{host}';"
        )
    mysql("\n".join(statements))


def drop_databases() -> None:
    statements = [f"DROP DATABASE IF EXISTS `{name}`;" for name in all_db_names()]
    statements += [f"DROP USER IF EXISTS '{L.DB_USER}'@'{h}';" for h in ("127.0.0.1", "localhost")]
    mysql("\n".join(statements))


# --- RabbitMQ ------------------------------------------------------------------------


def all_vhosts() -> list[str]:
    return [*L.RPC_VHOSTS.values(), L.NOTIFICATIONS_VHOST]


def existing_vhosts() -> set[str]:
    return set(_run(["rabbitmqctl", "list_vhosts", "-q", "--no-table-headers"]).split())


def drop_vhosts() -> None:
    for vhost in sorted(existing_vhosts() & set(all_vhosts())):
        _run(["rabbitmqctl", "delete_vhost", "-q", vhost])
    users = _run(["rabbitmqctl", "list_users", "-q", "--no-table-headers"]).split()
    if L.MQ_USER in users:
        _run(["rabbitmqctl", "delete_user", "-q", L.MQ_USER])


def recreate_vhosts() -> None:
    """Drops the testbed's vhosts (so no message from an earlier run survives) and
    creates them again, with the testbed's user, in one definitions import."""
    drop_vhosts()
    definitions = {
        "users": [
            {"name": L.MQ_USER, "password": L.MQ_PASSWORD, "tags": ""},
        ],
        "vhosts": [{"name": v} for v in all_vhosts()],
        "permissions": [
            {"user": L.MQ_USER, "vhost": v, "configure": ".*", "write": ".*", "read": ".*"}
            for v in all_vhosts()
        ],
    }
    # Read from standard input: the broker runs as another user and may not read our files.
    _run(
        ["rabbitmqctl", "import_definitions", "-q", "--format", "json"],
        input=json.dumps(definitions),
    )
