"""The compute hosts' BMCs (sushy-tools fake systems): read and set power over Redfish.

Standard library only: `up`, `ctl` and the management stand-ins use it. sushy-tools'
fake driver applies a power change 1-11 s after the request (a random delay, "hardware
actions are not immediate"), on the first read after that time.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request

from . import layout as L


class BmcError(RuntimeError):
    pass


def _request(host: str, path: str, body: dict[str, object] | None = None, timeout: float = 3.0):
    token = base64.b64encode(f"{L.BMC_USER}:{L.BMC_PASSWORD}".encode()).decode()
    req = urllib.request.Request(
        L.bmc_url(host) + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def power_state(host: str, timeout: float = 3.0) -> str | None:
    """`On`/`Off` as the host's BMC reports it; None when the BMC does not answer."""
    try:
        system = _request(host, L.bmc_system_path(host), timeout=timeout)
    except (OSError, ValueError, urllib.error.HTTPError):
        return None
    return str(system.get("PowerState")) if isinstance(system, dict) else None


def power_on(host: str, timeout: float = 30.0) -> None:
    """Powers the host on through its BMC and waits until the BMC says On."""
    state = power_state(host)
    if state is None:
        raise BmcError(f"the BMC of {host} ({L.bmc_url(host)}) does not answer")
    if state == "On":
        return
    path = L.bmc_system_path(host) + "/Actions/ComputerSystem.Reset"
    try:
        _request(host, path, {"ResetType": "On"})
    except (OSError, ValueError) as exc:
        raise BmcError(f"the BMC of {host} refused to power it on: {exc}") from exc
    deadline = time.monotonic() + timeout
    while power_state(host) != "On":
        if time.monotonic() > deadline:
            raise BmcError(f"the BMC of {host} did not report On within {timeout:.0f} s")
        time.sleep(0.5)
