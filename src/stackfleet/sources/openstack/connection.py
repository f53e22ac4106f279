"""Connecting to clouds named in clouds.yaml (or OS_* variables), one target per region.

All OpenStack access goes through openstacksdk: it owns auth, the service catalog,
version discovery and microversions. Errors a user can meet are turned into
`CloudError`/`ConfigError` with a message that says what to fix.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import keystoneauth1.exceptions as ksa_exc
import openstack
import openstack.config
import openstack.exceptions
import yaml
from openstack.config.loader import CONFIG_FILES

from stackfleet.core.errors import CloudError, ConfigError

log = logging.getLogger(__name__)

# Seconds an API call may take before it fails (keystoneauth's `timeout`): without one a
# hung endpoint stalls a pass, an action or a token check forever. A cloud's own
# `api_timeout` in clouds.yaml wins; the settings file's `api_timeout` sets this default.
DEFAULT_API_TIMEOUT = 60.0
_api_timeout = DEFAULT_API_TIMEOUT


def set_api_timeout(seconds: float) -> None:
    """The timeout of connections made from now on whose clouds.yaml entry sets none."""
    global _api_timeout
    if seconds <= 0:
        raise ConfigError(f"api_timeout: {seconds:g} s is not a positive number of seconds")
    _api_timeout = seconds


def api_timeout() -> float:
    """The default timeout of new connections (seconds)."""
    return _api_timeout


@dataclass
class CloudTarget:
    """One region of one cloud, with its authenticated connection. `system` is a
    system-scoped connection to the same cloud when one is configured (Ironic refuses
    project-scoped tokens for fleet-wide listings)."""

    cloud: str
    region: str
    conn: openstack.connection.Connection
    system: openstack.connection.Connection | None = None

    def close(self) -> None:
        """Release the connections' pooled sockets (and their thread pools). Without it
        every pass leaves its sockets behind until the garbage collector finds them."""
        for conn in (self.conn, self.system):
            if conn is not None:
                with suppress(Exception):  # closing is best effort, never an error
                    conn.close()


def close_targets(targets: Iterable[CloudTarget]) -> None:
    """Close every target's connections."""
    for target in targets:
        target.close()


@contextmanager
def connected(
    cloud: str,
    region: str | None = None,
    system_cloud: str | None = None,
    config_files: list[str] | None = None,
) -> Iterator[list[CloudTarget]]:
    """`connect()` for one piece of work: the targets are closed when it ends."""
    targets = connect(cloud, region, system_cloud, config_files)
    try:
        yield targets
    finally:
        close_targets(targets)


def _first_config_file(config_files: list[str] | None) -> str | None:
    """The clouds.yaml openstacksdk will read: the first that exists of
    OS_CLIENT_CONFIG_FILE and the given (or standard) locations."""
    candidates = list(config_files if config_files is not None else CONFIG_FILES)
    override = os.environ.get("OS_CLIENT_CONFIG_FILE")
    if override:
        candidates.insert(0, override)
    return next((path for path in candidates if os.path.exists(path)), None)


def _check_yaml(path: str | None) -> None:
    """openstacksdk skips a clouds.yaml it cannot parse (and then reports the cloud as
    unknown); say what is wrong with the file instead."""
    if path is None or path.endswith(".json"):
        return
    try:
        with open(path, encoding="utf-8") as handle:
            yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise ConfigError(f"{path}:{where}: clouds.yaml is not valid YAML: {problem}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def _config(config_files: list[str] | None) -> openstack.config.OpenStackConfig:
    _check_yaml(_first_config_file(config_files))
    try:
        return openstack.config.OpenStackConfig(config_files=config_files)
    except yaml.YAMLError as exc:
        raise ConfigError(f"clouds.yaml is not valid YAML: {exc}") from exc
    except (openstack.exceptions.ConfigException, ksa_exc.ClientException) as exc:
        raise ConfigError(f"cannot read clouds.yaml: {exc}") from exc


# Seconds a request may take unless clouds.yaml sets `api_timeout`: without one,
# keystoneauth waits forever, and one hung API call stalls a pass (and the daemon).
def _regions(config: openstack.config.OpenStackConfig, cloud: str, region: str | None) -> list[Any]:
    try:
        if region:
            return [config.get_one(cloud, region_name=region)]
        regions = [c for c in config.get_all() if c.name == cloud]
        return regions or [config.get_one(cloud)]
    except openstack.exceptions.ConfigException as exc:
        known = ", ".join(config.get_cloud_names()) or "none"
        raise ConfigError(f"{exc} (clouds known: {known})") from exc
    except ksa_exc.MissingRequiredOptions as exc:
        raise ConfigError(f"cloud {cloud!r} in clouds.yaml is incomplete: {exc}") from exc
    except (ksa_exc.ClientException, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"cloud {cloud!r} in clouds.yaml is not usable: {exc}") from exc


def connect(
    cloud: str,
    region: str | None = None,
    system_cloud: str | None = None,
    config_files: list[str] | None = None,
) -> list[CloudTarget]:
    """Authenticated targets for every region of `cloud` (or just `region`).

    The system-scoped twin is `system_cloud`, or by convention a cloud named
    `<cloud>-system` when clouds.yaml has one."""
    config = _config(config_files)
    if system_cloud is None and f"{cloud}-system" in config.get_cloud_names():
        system_cloud = f"{cloud}-system"
    targets: list[CloudTarget] = []
    try:
        for cloud_region in _regions(config, cloud, region):
            target = CloudTarget(
                cloud=cloud, region=cloud_region.region_name or "", conn=_connection(cloud_region)
            )
            targets.append(target)
            authorize(target.conn, cloud)
            if system_cloud:
                system_region = _regions(config, system_cloud, cloud_region.region_name)[0]
                target.system = _connection(system_region)
                authorize(target.system, system_cloud)
    except BaseException:
        # a later region failing must not leak the connections already made
        close_targets(targets)
        raise
    return targets


def _connection(cloud_region: Any) -> openstack.connection.Connection:
    """A connection whose calls time out: clouds.yaml's `api_timeout` (or the older
    `timeout`), else the default (the session reads it when it is first made)."""
    if cloud_region.config.get("api_timeout") is None:
        cloud_region.config["api_timeout"] = _api_timeout
    return openstack.connection.Connection(config=cloud_region)


def authorize(conn: openstack.connection.Connection, cloud: str) -> None:
    """Get a token now, so a bad password or a dead Keystone is one clear error."""
    auth_url = (conn.config.config.get("auth") or {}).get("auth_url", "?")
    try:
        conn.authorize()
    except (ksa_exc.ConnectFailure, ksa_exc.ConnectTimeout, ksa_exc.DiscoveryFailure) as exc:
        raise CloudError(
            f"cloud {cloud!r}: cannot reach Keystone at {auth_url}: {_network_reason(exc)}"
        ) from exc
    except ksa_exc.MissingRequiredOptions as exc:
        raise ConfigError(f"cloud {cloud!r} in clouds.yaml is incomplete: {exc}") from exc
    except (ksa_exc.ClientException, openstack.exceptions.SDKException) as exc:
        if _caused_by(
            exc, ksa_exc.ConnectFailure, ksa_exc.ConnectTimeout, ksa_exc.DiscoveryFailure
        ):
            raise CloudError(
                f"cloud {cloud!r}: cannot reach Keystone at {auth_url}: {_network_reason(exc)}"
            ) from exc
        if _is_unauthorized(exc):
            raise CloudError(
                f"cloud {cloud!r}: Keystone at {auth_url} refused the credentials (401); "
                "check username, password, project and domains in clouds.yaml"
            ) from exc
        raise CloudError(f"cloud {cloud!r}: authentication failed: {exc}") from exc


def _is_unauthorized(exc: BaseException) -> bool:
    """openstacksdk wraps keystoneauth's 401 in a plain SDKException; look down the chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ksa_exc.Unauthorized) or 401 in (
            getattr(seen, "status_code", None),
            getattr(seen, "http_status", None),
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return "(HTTP 401)" in str(exc)


def _network_reason(exc: BaseException) -> str:
    """What the operating system said (connection refused, name not known, timed out,
    certificate verify failed) rather than the chain of library messages around it."""
    seen: BaseException | None = exc
    reason = None
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            reason = seen.strerror
        seen = seen.__cause__ or seen.__context__
    return reason or str(exc)


def _caused_by(exc: BaseException, *types: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, types):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def cloud_regions(cloud: str, config_files: list[str] | None = None) -> list[str]:
    """The region names clouds.yaml gives `cloud` (read locally, nothing asked of the
    cloud): the partitions scale-out workers share. A cloud without `regions` is one
    partition named ''."""
    return [c.region_name or "" for c in _regions(_config(config_files), cloud, None)]
