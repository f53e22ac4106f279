"""The infrastructure monitoring file: which database servers and RabbitMQ clusters to
probe, and the policy files that judge them in place of the built-in packs' policies of
the same names.

```yaml
databases:
  - dsn: mysql://stackfleet:secret@db1.example.org:3306
    name: db1                      # optional: how the output names it
    cloud: prod                    # optional labels of its samples
    region: RegionOne
    expected_cluster_size: 3       # Galera: fewer nodes is a finding
    password_env: DB1_PASSWORD     # optional: the password from the environment
    tls: required                  # required | preferred | disabled (default: disabled
                                   # on loopback, preferred elsewhere)
message_queues:
  - url: http://stackfleet:secret@mq1.example.org:15672
    cloud: prod
policies:                          # copies of built-in packs (database.yaml,
  - database.yaml                  # rabbitmq.yaml, hardware.yaml), changed: a policy
  - rabbitmq.yaml                  # named as a pack's replaces it
```

Paths under `policies` are relative to this file. Thresholds are policies
(`stackfleet policy show pack:database`, `pack:rabbitmq`, `pack:hardware`): the former `thresholds:`
section is an error saying so.

Errors name the file, the line and the field.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stackfleet.core.config import config_dir
from stackfleet.core.errors import ConfigError
from stackfleet.sources.database import TLS_MODES, DatabaseTarget
from stackfleet.sources.rabbitmq import BrokerTarget

ENV = "STACKFLEET_INFRA_CONFIG"
FILE_NAME = "infrastructure.yaml"

TOP_LEVEL = ("databases", "message_queues", "policies")
DATABASE_FIELDS = (
    "dsn",
    "name",
    "cloud",
    "region",
    "expected_cluster_size",
    "password_env",
    "connect_timeout",
    "tls",
)
BROKER_FIELDS = ("url", "name", "cloud", "region", "password_env", "timeout")

Path_ = tuple[str | int, ...]


@dataclass
class InfraConfig:
    """Targets and rules, ready to use."""

    databases: list[DatabaseTarget] = field(default_factory=list)
    brokers: list[BrokerTarget] = field(default_factory=list)
    # policy files judging the swept kinds, in place of the built-in packs' policies of
    # the same names (the engine loads them)
    policies: list[Path] = field(default_factory=list)
    source: Path | None = None


def default_path() -> Path | None:
    """$STACKFLEET_INFRA_CONFIG, else infrastructure.yaml in the config directory if it
    exists, else None."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    candidate = config_dir() / FILE_NAME
    return candidate if candidate.exists() else None


class _Located:
    """A parsed YAML document that remembers the line of every value."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines: dict[Path_, int] = {}
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            self.data = self._value(loader, node, ()) if node is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark else str(path)
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(f"{where}: not valid YAML: {problem}") from exc
        finally:
            loader.dispose()

    def _value(self, loader: yaml.SafeLoader, node: yaml.Node, at: Path_) -> Any:
        self.lines[at] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                result[str(key)] = self._value(loader, value_node, (*at, str(key)))
                self.lines[(*at, str(key))] = key_node.start_mark.line + 1
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self._value(loader, item, (*at, i)) for i, item in enumerate(node.value)]
        return loader.construct_object(node, deep=True)

    def error(self, at: Path_, message: str) -> ConfigError:
        line = None
        for depth in range(len(at), -1, -1):
            line = self.lines.get(at[:depth])
            if line is not None:
                break
        name = ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in at)
        name = name.replace(".[", "[")
        where = f"{self.path}:{line}" if line else str(self.path)
        return ConfigError(f"{where}: {name + ': ' if name else ''}{message}")


def _text(doc: _Located, item: Mapping[str, Any], key: str, at: Path_) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise doc.error((*at, key), f"expected text, got {type(value).__name__}")
    return str(value)


def _number(doc: _Located, item: Mapping[str, Any], key: str, at: Path_) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise doc.error((*at, key), f"expected a number > 0, got {value!r}")
    return float(value)


def _entries(doc: _Located, data: Mapping[str, Any], key: str) -> list[Any]:
    entries = data.get(key) or []
    if not isinstance(entries, list):
        raise doc.error((key,), "expected a list of targets")
    return entries


def _check_fields(
    doc: _Located, item: Any, at: Path_, allowed: tuple[str, ...], required: str
) -> None:
    if not isinstance(item, dict):
        raise doc.error(at, "expected a mapping")
    for key in item:
        if key not in allowed:
            raise doc.error((*at, key), f"unknown field (allowed: {', '.join(allowed)})")
    if not item.get(required):
        raise doc.error(at, f"{required} is required")


def _password(doc: _Located, item: Mapping[str, Any], at: Path_) -> str | None:
    env = _text(doc, item, "password_env", at)
    if env is None:
        return None
    if env not in os.environ:
        raise doc.error((*at, "password_env"), f"environment variable {env} is not set")
    return os.environ[env]


def load_infra_config(path: Path | str | None = None) -> InfraConfig:
    """Read the monitoring file at `path` (or the default location; no file: no targets
    and the default rules)."""
    path = Path(path) if path is not None else default_path()
    if path is None:
        return InfraConfig()
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    doc = _Located(path, text)
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise doc.error((), "expected a mapping with databases, message_queues, policies")
    if "thresholds" in data:
        raise doc.error(
            ("thresholds",),
            "thresholds are policies now: copy the pack (stackfleet policy show "
            "pack:database or pack:rabbitmq), change the number, and list the copy under "
            "`policies:`",
        )
    for key in data:
        if key not in TOP_LEVEL:
            raise doc.error((key,), f"unknown section (allowed: {', '.join(TOP_LEVEL)})")
    config = InfraConfig(source=path)
    for index, item in enumerate(_entries(doc, data, "databases")):
        at: Path_ = ("databases", index)
        _check_fields(doc, item, at, DATABASE_FIELDS, "dsn")
        extra: dict[str, Any] = {
            "name": _text(doc, item, "name", at),
            "cloud": _text(doc, item, "cloud", at) or "",
            "region": _text(doc, item, "region", at) or "",
        }
        size = _number(doc, item, "expected_cluster_size", at)
        if size is not None:
            extra["expected_cluster_size"] = int(size)
        timeout = _number(doc, item, "connect_timeout", at)
        if timeout is not None:
            extra["connect_timeout"] = timeout
        tls = _text(doc, item, "tls", at)
        if tls is not None:
            if tls not in TLS_MODES:
                raise doc.error((*at, "tls"), f"expected one of {', '.join(TLS_MODES)}")
            extra["tls"] = tls
        try:
            target = DatabaseTarget.from_dsn(str(item["dsn"]), **extra)
        except ConfigError as exc:
            raise doc.error((*at, "dsn"), str(exc)) from exc
        password = _password(doc, item, at)
        if password is not None:
            target = DatabaseTarget(**{**target.__dict__, "password": password})
        config.databases.append(target)
    for index, item in enumerate(_entries(doc, data, "message_queues")):
        at = ("message_queues", index)
        _check_fields(doc, item, at, BROKER_FIELDS, "url")
        extra = {
            "name": _text(doc, item, "name", at),
            "cloud": _text(doc, item, "cloud", at) or "",
            "region": _text(doc, item, "region", at) or "",
        }
        timeout = _number(doc, item, "timeout", at)
        if timeout is not None:
            extra["timeout"] = timeout
        try:
            broker = BrokerTarget.from_url(str(item["url"]), **extra)
        except ConfigError as exc:
            raise doc.error((*at, "url"), str(exc)) from exc
        password = _password(doc, item, at)
        if password is not None:
            broker = BrokerTarget(**{**broker.__dict__, "password": password})
        config.brokers.append(broker)
    files = data.get("policies") or []
    if not isinstance(files, list):
        raise doc.error(("policies",), "expected a list of policy files")
    for index, name in enumerate(files):
        if not isinstance(name, str) or not name:
            raise doc.error(("policies", index), "expected the path of a policy file")
        policy_file = (path.parent / Path(name).expanduser()).resolve()
        if not policy_file.is_file():
            raise doc.error(("policies", index), f"no policy file {policy_file}")
        config.policies.append(policy_file)
    return config
