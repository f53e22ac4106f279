"""Connecting to clouds named in clouds.yaml (or OS_* variables), one target per region.

All OpenStack access goes through openstacksdk: it owns auth, the service catalog,
version discovery and microversions. Errors a user can meet are turned into
`CloudError`/`ConfigError` with a message that says what to fix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import keystoneauth1.exceptions as ksa_exc
import openstack
import openstack.config
import openstack.exceptions
import yaml

from stackfleet.errors import CloudError, ConfigError

log = logging.getLogger(__name__)


@dataclass
class CloudTarget:
    """One region of one cloud, with its authenticated connection. `system` is a
    system-scoped connection to the same cloud when one is configured (Ironic refuses
    project-scoped tokens for fleet-wide listings)."""

    cloud: str
    region: str
    conn: openstack.connection.Connection
    system: openstack.connection.Connection | None = None


def _config(config_files: list[str] | None) -> openstack.config.OpenStackConfig:
    try:
        return openstack.config.OpenStackConfig(config_files=config_files)
    except yaml.YAMLError as exc:
        raise ConfigError(f"clouds.yaml is not valid YAML: {exc}") from exc
    except (openstack.exceptions.ConfigException, ksa_exc.ClientException) as exc:
        raise ConfigError(f"cannot read clouds.yaml: {exc}") from exc


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
    """Authenticated targets for every region of `cloud` (or just `region`)."""
    config = _config(config_files)
    targets = []
    for cloud_region in _regions(config, cloud, region):
        conn = openstack.connection.Connection(config=cloud_region)
        authorize(conn, cloud)
        system = None
        if system_cloud:
            system_region = _regions(config, system_cloud, cloud_region.region_name)[0]
            system = openstack.connection.Connection(config=system_region)
            authorize(system, system_cloud)
        targets.append(
            CloudTarget(cloud=cloud, region=cloud_region.region_name or "", conn=conn, system=system)
        )
    return targets


def authorize(conn: openstack.connection.Connection, cloud: str) -> None:
    """Get a token now, so a bad password or a dead Keystone is one clear error."""
    auth_url = (conn.config.config.get("auth") or {}).get("auth_url", "?")
    try:
        conn.authorize()
    except ksa_exc.Unauthorized as exc:
        raise CloudError(
            f"cloud {cloud!r}: Keystone at {auth_url} refused the credentials (401); "
            "check username, password, project and domains in clouds.yaml"
        ) from exc
    except (ksa_exc.ConnectFailure, ksa_exc.ConnectTimeout, ksa_exc.DiscoveryFailure) as exc:
        raise CloudError(f"cloud {cloud!r}: cannot reach Keystone at {auth_url}: {exc}") from exc
    except ksa_exc.MissingRequiredOptions as exc:
        raise ConfigError(f"cloud {cloud!r} in clouds.yaml is incomplete: {exc}") from exc
    except (ksa_exc.ClientException, openstack.exceptions.SDKException) as exc:
        raise CloudError(f"cloud {cloud!r}: authentication failed: {exc}") from exc
