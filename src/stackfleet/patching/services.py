"""What defines each OpenStack service on a host: which configuration files, which
packages and which containers to capture. The built-in definitions follow the usual
packaging (Debian/Ubuntu packages, Kolla container names); a services file overrides or
adds definitions (`services:` in a campaign spec, or `--services FILE`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackfleet.core.errors import ConfigError


class ServiceDefinition(BaseModel):
    """One service: configuration files, packages (Debian, or pip in a virtual
    environment), container names."""

    model_config = ConfigDict(extra="forbid")

    config_files: list[str] = Field(default_factory=list, description="Absolute paths.")
    packages: list[str] = Field(
        default_factory=list, description="Package names (Debian, or pip in `venv`)."
    )
    package_manager: Literal["dpkg", "pip"] = Field(
        default="dpkg", description="dpkg: dpkg-query; pip: `<venv>/bin/pip freeze`."
    )
    venv: str | None = Field(default=None, description="The virtual environment (pip).")
    containers: list[str] = Field(
        default_factory=list, description="Container names whose image tag is captured."
    )
    restart: str | None = Field(
        default=None, description="The command that restarts the service on its host."
    )


def _nova(*extra: str, package: str, container: str, unit: str) -> ServiceDefinition:
    return ServiceDefinition(
        config_files=["/etc/nova/nova.conf", *extra],
        packages=[package, "python3-nova"],
        containers=[container],
        restart=f"systemctl restart {unit}",
    )


BUILT_IN: dict[str, ServiceDefinition] = {
    "nova-compute": _nova(
        "/etc/nova/nova-compute.conf",
        package="nova-compute",
        container="nova_compute",
        unit="nova-compute",
    ),
    "nova-api": _nova(
        "/etc/nova/api-paste.ini", package="nova-api", container="nova_api", unit="nova-api"
    ),
    "nova-conductor": _nova(
        package="nova-conductor", container="nova_conductor", unit="nova-conductor"
    ),
    "nova-scheduler": _nova(
        package="nova-scheduler", container="nova_scheduler", unit="nova-scheduler"
    ),
    "neutron-server": ServiceDefinition(
        config_files=["/etc/neutron/neutron.conf", "/etc/neutron/plugins/ml2/ml2_conf.ini"],
        packages=["neutron-server", "python3-neutron"],
        containers=["neutron_server"],
        restart="systemctl restart neutron-server",
    ),
    "neutron-ovs-agent": ServiceDefinition(
        config_files=[
            "/etc/neutron/neutron.conf",
            "/etc/neutron/plugins/ml2/openvswitch_agent.ini",
        ],
        packages=["neutron-openvswitch-agent"],
        containers=["neutron_openvswitch_agent"],
        restart="systemctl restart neutron-openvswitch-agent",
    ),
    "cinder-volume": ServiceDefinition(
        config_files=["/etc/cinder/cinder.conf"],
        packages=["cinder-volume", "python3-cinder"],
        containers=["cinder_volume"],
        restart="systemctl restart cinder-volume",
    ),
    "glance-api": ServiceDefinition(
        config_files=["/etc/glance/glance-api.conf"],
        packages=["glance-api", "python3-glance"],
        containers=["glance_api"],
        restart="systemctl restart glance-api",
    ),
    "keystone": ServiceDefinition(
        config_files=["/etc/keystone/keystone.conf"],
        packages=["keystone", "python3-keystone"],
        containers=["keystone"],
        restart="systemctl restart apache2",
    ),
}


def definitions(
    overrides: dict[str, ServiceDefinition] | None = None,
) -> dict[str, ServiceDefinition]:
    """The built-in definitions with `overrides` replacing or adding services."""
    return {**BUILT_IN, **(overrides or {})}


def load_services_file(path: str | Path) -> dict[str, ServiceDefinition]:
    """Definitions from a YAML file: `services: {name: {config_files: [...], ...}}`."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    services = raw.get("services") if isinstance(raw, dict) else None
    if not isinstance(services, dict):
        raise ConfigError(f"{path}: expected a mapping `services: {{name: definition}}`")
    found: dict[str, ServiceDefinition] = {}
    for name, body in services.items():
        try:
            found[str(name)] = ServiceDefinition.model_validate(body or {})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise ConfigError(f"{path}: services.{name}.{where}: {first.get('msg')}") from exc
    return found
