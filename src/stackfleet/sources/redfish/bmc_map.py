"""Which BMC belongs to which host: the BMC map file and Ironic's driver_info.

The map is YAML (docs/hardware.md has the reference)::

    credentials:                  # named credentials, referenced below
      lab: {username: admin, password_env: BMC_PASSWORD}
    defaults:                     # every BMC (and Ironic node) unless it says otherwise
      credentials: lab
      verify: false
      timeout: 5
    bmcs:
      cmp0001: {address: https://10.0.0.11, system_id: /redfish/v1/Systems/1}
      cmp0002: {address: https://10.0.0.12, username: root, password_file: /etc/bmc.pw}
    ironic:                       # nodes with a redfish_address in the store
      enabled: true
      credentials: lab
      allow_insecure_http: false  # send the shared credentials to http:// addresses

Ironic's BMC credentials are shared by every node: they are sent to a plain `http://`
address only when the map allows it (`ironic.allow_insecure_http: true`) or the address
is a loopback one (a simulator or a local emulator); otherwise the node is reported
unread with the reason, and a warning is logged.

A mistake is reported as a ConfigError naming the file, the line and the field. An
entry in `bmcs` wins over an Ironic node of the same name or uuid.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from stackfleet.core.errors import ConfigError

log = logging.getLogger(__name__)

AUTH_MODES = ("basic", "session")
TARGET_KINDS = ("hypervisor", "baremetal_node")
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class BmcTarget:
    """One BMC to read, and the host its readings belong to.

    `address` is the BMC's base URL (scheme and authority, optionally a path prefix in
    front of /redfish/v1); `system_id` the ComputerSystem's path (None: the BMC's only
    system). `kind`/`resource_id`/`cloud`/`region` name the inventory resource; when
    the map leaves them out they are resolved from the store by host name."""

    name: str
    address: str
    system_id: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify: bool | str = True
    auth: str = "basic"
    timeout: float | None = None
    power_budget_watts: float | None = None
    kind: str | None = None
    resource_id: str | None = None
    cloud: str | None = None
    region: str | None = None
    # where this target was declared: "bmc-map.yaml line 12" or "Ironic node <uuid>"
    source: str = ""
    # why it cannot be read at all (e.g. no credentials); the sweep reports it unread
    problem: str | None = None

    @property
    def root_prefix(self) -> str:
        """The service root path: /redfish/v1/, after the address's path prefix if any."""
        prefix = urlsplit(self.address).path.rstrip("/")
        if prefix.endswith("/redfish/v1"):
            prefix = prefix[: -len("/redfish/v1")]
        return f"{prefix}/redfish/v1/"

    @property
    def base_url(self) -> str:
        """Scheme and authority of the address (sushy joins absolute paths onto it)."""
        parts = urlsplit(self.address)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def system_path(self) -> str | None:
        """`system_id` as a path: a bare id becomes <root>/Systems/<id>."""
        if not self.system_id:
            return None
        if self.system_id.startswith("/"):
            return self.system_id
        return f"{self.root_prefix}Systems/{self.system_id}"


@dataclass(frozen=True)
class IronicMapping:
    """How Ironic nodes with a Redfish driver become targets."""

    enabled: bool = True
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    verify: bool | str = True
    auth: str = "basic"
    timeout: float | None = None
    power_budget_watts: float | None = None
    source: str = "built-in defaults"
    # send the shared credentials to http:// BMC addresses that are not loopback
    allow_insecure_http: bool = False


@dataclass(frozen=True)
class BmcMap:
    """A parsed BMC map: explicit targets and the Ironic settings."""

    targets: tuple[BmcTarget, ...] = ()
    ironic: IronicMapping = IronicMapping()
    path: str | None = None


# -- loading -----------------------------------------------------------------------------


class _Doc:
    """A YAML document as plain values, remembering the line of every mapping key."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines: dict[tuple[str, ...], int] = {}
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            self.data: Any = loader.construct_document(node) if node is not None else {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"{path}{where}: not valid YAML ({problem})") from exc
        finally:
            loader.dispose()
        if node is not None:
            self._note_lines(node, ())

    def _note_lines(self, node: yaml.Node, where: tuple[str, ...]) -> None:
        self.lines.setdefault(where, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = (*where, str(key_node.value))
                self.lines[key] = key_node.start_mark.line + 1
                self._note_lines(value_node, key)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._note_lines(item, (*where, str(index)))

    def error(self, where: tuple[str, ...], problem: str) -> ConfigError:
        line = None
        for depth in range(len(where), -1, -1):
            line = self.lines.get(where[:depth])
            if line is not None:
                break
        field_name = ".".join(where) or "(top level)"
        return ConfigError(f"{self.path} line {line or 1}: {field_name}: {problem}")


def load_bmc_map(path: str | Path) -> BmcMap:
    """Parse the BMC map at `path`; ConfigError names the file, line and field of the
    first mistake."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the BMC map {source}: {exc.strerror}") from exc
    return parse_bmc_map(text, source)


def parse_bmc_map(text: str, source: str = "<bmc map>") -> BmcMap:
    """Parse BMC map text (see `load_bmc_map`)."""
    doc = _Doc(source, text)
    data = doc.data
    if data in (None, ""):
        return BmcMap(path=source)
    if not isinstance(data, dict):
        raise doc.error((), "expected a mapping with `bmcs`, `defaults`, `credentials`, `ironic`")
    unknown = set(data) - {"bmcs", "defaults", "credentials", "ironic"}
    if unknown:
        key = sorted(unknown)[0]
        raise doc.error((key,), "unknown section; known: bmcs, credentials, defaults, ironic")
    named = _named_credentials(doc, data.get("credentials"))
    defaults = _section(doc, data.get("defaults"), ("defaults",))
    _check_keys(doc, defaults, ("defaults",), _COMMON_KEYS)
    base = _common(doc, defaults, ("defaults",), named, {})

    targets = []
    bmcs = data.get("bmcs")
    if bmcs is not None and not isinstance(bmcs, dict):
        raise doc.error(("bmcs",), "expected a mapping of host name -> BMC settings")
    for host, entry in (bmcs or {}).items():
        where = ("bmcs", str(host))
        if isinstance(entry, str):
            entry = {"address": entry}
        if not isinstance(entry, dict):
            raise doc.error(where, "expected a mapping with at least `address`")
        _check_keys(doc, entry, where, _COMMON_KEYS + _TARGET_KEYS)
        settings = _common(doc, entry, where, named, base)
        address = entry.get("address")
        if address in (None, ""):
            raise doc.error(where, "missing `address` (the BMC's URL, e.g. https://10.0.0.11)")
        kind = entry.get("kind")
        if kind is not None and kind not in TARGET_KINDS:
            raise doc.error((*where, "kind"), f"expected one of {', '.join(TARGET_KINDS)}")
        system_id = entry.get("system_id")
        if system_id is not None and not isinstance(system_id, str | int):
            raise doc.error((*where, "system_id"), "expected a path or an id")
        targets.append(
            BmcTarget(
                name=str(host),
                address=_address(doc, address, (*where, "address")),
                system_id=None if system_id is None else str(system_id),
                kind=kind,
                resource_id=_opt_str(entry.get("resource_id")),
                cloud=_opt_str(entry.get("cloud")),
                region=_opt_str(entry.get("region")),
                source=f"{source} line {doc.lines.get(where, 1)}",
                **settings,
            )
        )

    ironic_section = _section(doc, data.get("ironic"), ("ironic",))
    _check_keys(doc, ironic_section, ("ironic",), (*_COMMON_KEYS, "enabled", "allow_insecure_http"))
    enabled = ironic_section.get("enabled", True)
    if not isinstance(enabled, bool):
        raise doc.error(("ironic", "enabled"), "expected true or false")
    insecure = ironic_section.get("allow_insecure_http", False)
    if not isinstance(insecure, bool):
        raise doc.error(("ironic", "allow_insecure_http"), "expected true or false")
    ironic_settings = _common(doc, ironic_section, ("ironic",), named, base)
    ironic = IronicMapping(
        enabled=enabled,
        allow_insecure_http=insecure,
        source=f"{source} line {doc.lines.get(('ironic',), doc.lines.get(('defaults',), 1))}",
        **ironic_settings,
    )
    return BmcMap(targets=tuple(targets), ironic=ironic, path=source)


_COMMON_KEYS: tuple[str, ...] = (
    "credentials",
    "username",
    "password",
    "password_env",
    "password_file",
    "verify",
    "auth",
    "timeout",
    "power_budget_watts",
)
_TARGET_KEYS = ("address", "system_id", "kind", "resource_id", "cloud", "region")


def _section(doc: _Doc, value: Any, where: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error(where, "expected a mapping")
    return value


def _check_keys(
    doc: _Doc, entry: dict[str, Any], where: tuple[str, ...], known: Iterable[str]
) -> None:
    allowed = set(known)
    for key in entry:
        if key not in allowed:
            raise doc.error((*where, key), f"unknown field; known: {', '.join(sorted(allowed))}")


def _named_credentials(doc: _Doc, value: Any) -> dict[str, tuple[str | None, str | None]]:
    section = _section(doc, value, ("credentials",))
    named: dict[str, tuple[str | None, str | None]] = {}
    for name, entry in section.items():
        where = ("credentials", str(name))
        if not isinstance(entry, dict):
            raise doc.error(where, "expected a mapping with `username` and a password")
        _check_keys(doc, entry, where, ("username", "password", "password_env", "password_file"))
        if not entry.get("username"):
            raise doc.error(where, "missing `username`")
        named[str(name)] = (str(entry["username"]), _password(doc, entry, where))
    return named


def _password(doc: _Doc, entry: dict[str, Any], where: tuple[str, ...]) -> str | None:
    given = [k for k in ("password", "password_env", "password_file") if k in entry]
    if len(given) > 1:
        raise doc.error(
            (*where, given[1]),
            f"give one of password, password_env, password_file, not {' and '.join(given)}",
        )
    if not given:
        return None
    key = given[0]
    value = entry[key]
    if key == "password":
        return str(value)
    if key == "password_env":
        secret = os.environ.get(str(value))
        if secret is None:
            raise doc.error((*where, key), f"environment variable {value} is not set")
        return secret
    try:
        return Path(str(value)).expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise doc.error((*where, key), f"cannot read {value}: {exc.strerror}") from exc


def _common(
    doc: _Doc,
    entry: dict[str, Any],
    where: tuple[str, ...],
    named: dict[str, tuple[str | None, str | None]],
    base: dict[str, Any],
) -> dict[str, Any]:
    """The settings shared by defaults, BMC entries and the Ironic section, on top of
    `base` (the defaults)."""
    result = dict(base)
    if "credentials" in entry:
        ref = entry["credentials"]
        if str(ref) not in named:
            known = ", ".join(sorted(named)) or "none are defined"
            raise doc.error((*where, "credentials"), f"no credentials named {ref!r} ({known})")
        result["username"], result["password"] = named[str(ref)]
    if "username" in entry:
        result["username"] = str(entry["username"])
    password = _password(doc, entry, where)
    if password is not None:
        result["password"] = password
    if "verify" in entry:
        verify = entry["verify"]
        if not isinstance(verify, bool | str):
            raise doc.error((*where, "verify"), "expected true, false or a CA bundle path")
        result["verify"] = verify
    if "auth" in entry:
        if entry["auth"] not in AUTH_MODES:
            raise doc.error((*where, "auth"), f"expected one of {', '.join(AUTH_MODES)}")
        result["auth"] = entry["auth"]
    for key in ("timeout", "power_budget_watts"):
        if key in entry:
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise doc.error((*where, key), f"expected a positive number, got {value!r}")
            result[key] = float(value)
    return result


def _address(doc: _Doc, value: Any, where: tuple[str, ...]) -> str:
    text = str(value).strip()
    if "://" not in text:
        text = f"https://{text}"  # Ironic accepts a bare host and means HTTPS
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise doc.error(where, f"expected an http(s) URL like https://10.0.0.11, got {value!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise doc.error(where, f"bad port in {value!r}") from exc
    return text.rstrip("/")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


# -- Ironic ------------------------------------------------------------------------------


def targets_from_ironic(nodes: Iterable[dict[str, Any]], mapping: IronicMapping) -> list[BmcTarget]:
    """Targets for Ironic nodes (store records of kind baremetal_node) that have a
    Redfish address. Ironic masks BMC passwords in its API, so the credentials come
    from the map's `ironic` section (or its defaults); a node without any is reported
    unread rather than tried with no password."""
    if not mapping.enabled:
        return []
    targets = []
    for node in nodes:
        address = node.get("bmc_address")
        if not address:
            continue
        name = node.get("name") or node["id"]
        problem = None
        if not mapping.username or mapping.password is None:
            problem = (
                f"no BMC credentials for Ironic node {name}: Ironic does not reveal them; "
                "set `ironic.credentials` (or `defaults`) in the BMC map"
            )
        url = str(address) if "://" in str(address) else f"https://{address}"
        if problem is None and _cleartext(url):
            problem = _insecure_problem(str(name), url, mapping)
        targets.append(
            BmcTarget(
                name=str(name),
                address=url.rstrip("/"),
                system_id=node.get("bmc_system_id"),
                username=mapping.username,
                password=mapping.password,
                verify=mapping.verify,
                auth=mapping.auth,
                timeout=mapping.timeout,
                power_budget_watts=mapping.power_budget_watts,
                kind="baremetal_node",
                resource_id=str(node["id"]),
                cloud=node.get("cloud"),
                region=node.get("region"),
                source=f"Ironic node {node['id']} (driver_info)",
                problem=problem,
            )
        )
    return targets


def is_loopback(host: str | None) -> bool:
    """Whether `host` names this machine (127.0.0.0/8, ::1, localhost)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cleartext(url: str) -> bool:
    """Credentials sent to `url` would cross a network unencrypted."""
    parts = urlsplit(url)
    return parts.scheme == "http" and not is_loopback(parts.hostname)


def _insecure_problem(name: str, url: str, mapping: IronicMapping) -> str | None:
    """Why the shared credentials are not sent to `url` (None: allowed, with a warning)."""
    host = urlsplit(url).hostname
    if mapping.allow_insecure_http:
        log.warning(
            "Ironic node %s: sending the shared BMC credentials to %s over plain HTTP "
            "(allowed by ironic.allow_insecure_http in %s)",
            name,
            host,
            mapping.source,
        )
        return None
    log.warning(
        "Ironic node %s: BMC address %s is plain HTTP; not sending the shared BMC "
        "credentials (set ironic.allow_insecure_http: true in the BMC map to allow it)",
        name,
        host,
    )
    return (
        f"Ironic node {name}: BMC address {host} is plain HTTP and the shared BMC "
        "credentials would cross the network unencrypted; give the node an https:// "
        "redfish_address or set `ironic.allow_insecure_http: true` in the BMC map"
    )


def merge_targets(explicit: Iterable[BmcTarget], ironic: Iterable[BmcTarget]) -> list[BmcTarget]:
    """The map's targets, then Ironic's for nodes the map does not name (by node name
    or uuid): the operator's file wins."""
    chosen = list(explicit)
    names = {t.name for t in chosen} | {t.resource_id for t in chosen if t.resource_id}
    for target in ironic:
        if target.name in names or target.resource_id in names:
            continue
        chosen.append(target)
    return chosen


def with_defaults(target: BmcTarget, **changes: Any) -> BmcTarget:
    """A copy of `target` with `changes` applied (used to resolve the inventory resource)."""
    return replace(target, **changes)
