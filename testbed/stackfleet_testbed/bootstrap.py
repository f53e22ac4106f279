"""First-time set-up of a fresh testbed: databases and schemas, Keystone's keys and
bootstrap, Nova's cells. Runs the services' own ``*-manage`` tools from the venv."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from . import infra
from . import layout as L
from .layout import Layout


class BootstrapError(RuntimeError):
    pass


def _env(layout: Layout) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{layout.bin}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


def _run(layout: Layout, log_name: str, argv: list[str]) -> None:
    log_path = layout.log(f"bootstrap-{log_name}")
    with open(log_path, "a") as log:
        log.write(f"\n$ {' '.join(argv)}\n")
        log.flush()
        proc = subprocess.run(
            argv, env=_env(layout), stdout=log, stderr=subprocess.STDOUT, cwd=layout.data
        )
    if proc.returncode != 0:
        raise BootstrapError(
            f"{' '.join(argv[:4])} failed with exit code {proc.returncode}; see {log_path}"
        )


def _keystone(layout: Layout) -> None:
    conf = ["--config-file", str(layout.conf("keystone", "keystone.conf"))]
    manage = [str(layout.bin / "keystone-manage"), *conf]
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    for repo in ("fernet-keys", "credential-keys"):
        (layout.data / "keystone" / repo).mkdir(parents=True, exist_ok=True, mode=0o700)
    _run(layout, "keystone", [*manage, "db_sync"])
    owner = ["--keystone-user", user, "--keystone-group", group]
    _run(layout, "keystone", [*manage, "fernet_setup", *owner])
    _run(layout, "keystone", [*manage, "credential_setup", *owner])
    url = L.endpoint("keystone")
    _run(
        layout,
        "keystone",
        [
            *manage,
            "bootstrap",
            "--bootstrap-password",
            L.ADMIN_PASSWORD,
            "--bootstrap-username",
            L.ADMIN_USER,
            "--bootstrap-project-name",
            "admin",
            "--bootstrap-role-name",
            "admin",
            "--bootstrap-service-name",
            "keystone",
            "--bootstrap-region-id",
            L.REGION,
            "--bootstrap-admin-url",
            url,
            "--bootstrap-public-url",
            url,
            # Nova's API answers 500 (EndpointNotFound) without an internal identity URL.
            "--bootstrap-internal-url",
            url,
        ],
    )


def _placement(layout: Layout) -> None:
    conf = str(layout.conf("placement", "placement.conf"))
    _run(
        layout,
        "placement",
        [str(layout.bin / "placement-manage"), "--config-file", conf, "db", "sync"],
    )


def _nova(layout: Layout) -> None:
    manage = [
        str(layout.bin / "nova-manage"),
        "--config-file",
        str(layout.conf("nova", "nova.conf")),
    ]
    _run(layout, "nova", [*manage, "api_db", "sync"])
    _run(
        layout,
        "nova",
        [*manage, "cell_v2", "map_cell0", "--database_connection", L.db_url("nova_cell0")],
    )
    _run(
        layout,
        "nova",
        [
            *manage,
            "cell_v2",
            "create_cell",
            "--name",
            "cell1",
            "--database_connection",
            L.db_url("nova_cell1"),
            "--transport-url",
            L.rpc_url("nova"),
        ],
    )
    _run(layout, "nova", [*manage, "db", "sync"])


def _neutron(layout: Layout) -> None:
    etc = layout.etc / "neutron"
    _run(
        layout,
        "neutron",
        [
            str(layout.bin / "neutron-db-manage"),
            "--config-file",
            str(etc / "neutron.conf"),
            "--config-file",
            str(etc / "ml2_conf.ini"),
            "upgrade",
            "heads",
        ],
    )


def _glance(layout: Layout) -> None:
    conf = str(layout.conf("glance", "glance-api.conf"))
    _run(layout, "glance", [str(layout.bin / "glance-manage"), "--config-file", conf, "db_sync"])


def _cinder(layout: Layout) -> None:
    conf = str(layout.conf("cinder", "cinder.conf"))
    _run(layout, "cinder", [str(layout.bin / "cinder-manage"), "--config-file", conf, "db", "sync"])


def _ironic(layout: Layout) -> None:
    conf = str(layout.conf("ironic", "ironic.conf"))
    _run(
        layout,
        "ironic",
        [str(layout.bin / "ironic-dbsync"), "--config-file", conf, "create_schema"],
    )


def fresh(layout: Layout, say) -> float:
    """Drops whatever an earlier testbed left (databases, vhosts, data) and sets up
    everything anew. Returns the seconds it took."""
    t0 = time.monotonic()
    layout.bootstrapped_marker.unlink(missing_ok=True)
    if layout.data.exists():
        shutil.rmtree(layout.data)
    layout.data.mkdir(parents=True)
    for old in layout.logs.glob("bootstrap-*.log"):
        old.unlink()
    say("creating databases and RabbitMQ vhosts")
    infra.recreate_databases()
    infra.recreate_vhosts()
    say("syncing database schemas (keystone, placement, nova, neutron, glance, cinder, ironic)")
    steps = [_keystone, _placement, _nova, _neutron, _glance, _cinder, _ironic]
    # Two cores: three at a time keeps both busy while one waits on MariaDB.
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(step, layout) for step in steps]
        errors = [f.exception() for f in futures if f.exception()]
    if errors:
        raise BootstrapError("; ".join(str(e) for e in errors))
    layout.bootstrapped_marker.write_text(time.strftime("%F %T\n"))
    return time.monotonic() - t0


def needed(layout: Layout) -> bool:
    """A fresh bootstrap is needed unless the marker is there and so are the databases."""
    if not layout.bootstrapped_marker.exists():
        return True
    return set(infra.all_db_names()) - infra.existing_databases() != set()
