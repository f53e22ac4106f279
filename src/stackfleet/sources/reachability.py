"""Reachability of a host's management address: one TCP connect (to SSH or any port the
operator names), the cheapest sign of life that does not depend on OpenStack's own
services."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor


def split_address(address: str, default_port: int) -> tuple[str, int]:
    """`10.0.0.5`, `10.0.0.5:2222` or `[fd00::5]:22` -> (host, port)."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    if address.count(":") == 1:
        host, port = address.split(":")
        return host, int(port)
    return address, default_port


def tcp_probe(address: str, port: int, timeout: float) -> str:
    """ "" when a TCP connection to (address, port) opens within `timeout`, else why not."""
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return ""
    except TimeoutError:
        return f"{address}:{port} did not answer within {timeout:g} s"
    except OSError as exc:
        return f"{address}:{port}: {exc.strerror or exc}"


def probe_all(
    addresses: dict[str, tuple[str, int]], timeout: float, workers: int = 32
) -> dict[str, str]:
    """name -> "" (answers) or why not, probing in parallel."""
    if not addresses:
        return {}
    names = list(addresses)
    with ThreadPoolExecutor(max_workers=min(workers, len(names))) as pool:
        results = pool.map(lambda n: tcp_probe(*addresses[n], timeout), names)
        return dict(zip(names, results, strict=True))
