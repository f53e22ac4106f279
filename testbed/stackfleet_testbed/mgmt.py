"""A compute host's management port (`mgmt-<host>`): the stand-in for its SSH daemon.

    python -m stackfleet_testbed.mgmt --host cmp2

Listens on the host's own address and management port (layout.HOST_ADDRESSES,
MGMT_PORT) and greets each connection with an SSH-like banner, so a health probe that
connects to it sees the host as reachable; when the process is gone the port refuses.

It also makes the host obey its BMC: it reads the BMC's power state every half second,
and when the BMC says Off (the host was fenced or powered off) it kills the host's
nova-compute (the PID recorded in run/state.json, checked against its start time) and
exits, as a real host's processes die with its power. A BMC that does not answer
changes nothing: a host runs on without its BMC.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time

from . import bmc
from . import layout as L
from . import processes as P
from .layout import Layout

POLL_SECONDS = 0.5


def _say(message: str) -> None:
    print(f"{time.strftime('%F %T')} {message}", flush=True)


def _serve(sock: socket.socket, host: str) -> None:
    banner = f"SSH-2.0-sftb-mgmt-{host}\r\n".encode()
    while True:
        conn, _ = sock.accept()
        with conn, contextlib.suppress(OSError):
            conn.sendall(banner)


def _power_off_host(layout: Layout, host: str) -> None:
    record = P.load_state(layout).get(f"nova-compute-{host}")
    if record is not None and record.alive():
        _say(f"killing nova-compute-{host} (PID {record.pid}): its host lost power")
        for pid in record.members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stackfleet_testbed.mgmt", description=__doc__)
    parser.add_argument("--host", required=True, choices=sorted(L.HOST_ADDRESSES))
    args = parser.parse_args(argv)
    host = args.host
    layout = Layout.from_env()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((L.HOST_ADDRESSES[host], L.MGMT_PORT))
    sock.listen(64)
    _say(f"management port of {host} on {L.HOST_ADDRESSES[host]}:{L.MGMT_PORT}")
    threading.Thread(target=_serve, args=(sock, host), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        if bmc.power_state(host, timeout=2) == "Off":
            _power_off_host(layout, host)
            _say(f"the BMC of {host} says Off: the host is powered off")
            return 0
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
