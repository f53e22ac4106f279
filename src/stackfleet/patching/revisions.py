"""Configuration revisions: what defines a service on a host, captured through a
connector, content-addressed and diffable.

A revision's content is `{"files": {path: text or None}, "packages": {name: version or
None}, "images": {container: image}}`; its digest is the SHA-256 of the canonical JSON
of that content (keys sorted, no spaces, UTF-8), so the same content captured twice, on
any host, has the same digest. Line endings are normalised to \\n before hashing (a file
saved with CRLF is the same configuration)."""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stackfleet.patching.connectors import Connector, ConnectorError
from stackfleet.patching.services import ServiceDefinition
from stackfleet.store import patching as records
from stackfleet.store.db import Store

log = logging.getLogger(__name__)

Content = dict[str, dict[str, Any]]


def canonical(content: Content) -> bytes:
    """The canonical form hashed: sorted-key, compact JSON of the three sections."""
    normal = {
        "files": {
            path: (text.replace("\r\n", "\n") if isinstance(text, str) else None)
            for path, text in (content.get("files") or {}).items()
        },
        "packages": dict(content.get("packages") or {}),
        "images": dict(content.get("images") or {}),
    }
    return json.dumps(normal, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest_of(content: Content) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


@dataclass(frozen=True)
class Revision:
    """One captured revision of a service on a host."""

    host: str
    service: str
    content: Content

    @property
    def digest(self) -> str:
        return digest_of(self.content)


def capture(
    connector: Connector, host: str, service: str, definition: ServiceDefinition
) -> Revision:
    """Read what defines `service` on `host` now."""
    files = {path: connector.read_file(host, path) for path in definition.config_files}
    packages = _packages(connector, host, definition)
    images: dict[str, Any] = {}
    for container in definition.containers:
        result = connector.run(
            host,
            "command -v docker >/dev/null 2>&1 && docker inspect --format "
            f"'{{{{.Config.Image}}}}' {shlex.quote(container)} 2>/dev/null",
            timeout=60,
        )
        if result.ok and result.stdout.strip():
            images[container] = result.stdout.strip()
    return Revision(host, service, {"files": files, "packages": packages, "images": images})


def _packages(connector: Connector, host: str, definition: ServiceDefinition) -> dict[str, Any]:
    if not definition.packages:
        return {}
    wanted = {name.lower(): name for name in definition.packages}
    found: dict[str, Any] = {name: None for name in definition.packages}
    if definition.package_manager == "pip":
        pip = f"{definition.venv.rstrip('/')}/bin/pip" if definition.venv else "pip"
        result = connector.run(host, f"{shlex.quote(pip)} freeze 2>/dev/null", timeout=120)
        for line in result.stdout.splitlines():
            name, sep, version = line.partition("==")
            original = wanted.get(name.strip().lower().replace("_", "-")) or wanted.get(
                name.strip().lower()
            )
            if sep and original:
                found[original] = version.strip()
        return found
    names = " ".join(shlex.quote(n) for n in definition.packages)
    result = connector.run(
        host,
        "dpkg-query -W -f='${Package}=${Version}=${db:Status-Status}\\n' " + names + " 2>/dev/null",
        timeout=120,
    )
    for line in result.stdout.splitlines():
        parts = line.split("=")
        if len(parts) >= 3 and parts[0] in found and parts[2] == "installed":
            found[parts[0]] = parts[1]
    return found


def record(
    store: Store,
    revision: Revision,
    now: datetime,
    event: str = "captured",
    campaign: str | None = None,
) -> str:
    """Keep a revision (its content once) and add `event` to the host's history."""
    digest = revision.digest
    records.save_revision(store, revision.host, revision.service, digest, revision.content, now)
    records.add_event(store, revision.host, revision.service, digest, event, now, campaign)
    return digest


def diff(old: Content, new: Content, old_name: str = "a", new_name: str = "b") -> list[str]:
    """Unified diff lines of two revisions: each file's text, then packages and images
    as `name=version` lines."""
    lines: list[str] = []
    paths = sorted(set(old.get("files") or {}) | set(new.get("files") or {}))
    for path in paths:
        before = (old.get("files") or {}).get(path)
        after = (new.get("files") or {}).get(path)
        if before == after:
            continue
        lines += difflib.unified_diff(
            (before or "").splitlines(),
            (after or "").splitlines(),
            f"{old_name}{path}" if before is not None else "/dev/null",
            f"{new_name}{path}" if after is not None else "/dev/null",
            lineterm="",
        )
    for section in ("packages", "images"):
        before_map = old.get(section) or {}
        after_map = new.get(section) or {}
        names = sorted(set(before_map) | set(after_map))
        changed = [n for n in names if before_map.get(n) != after_map.get(n)]
        if changed:
            lines.append(f"@@ {section} @@")
            for name in changed:
                if before_map.get(name) is not None:
                    lines.append(f"-{name}={before_map[name]}")
                if after_map.get(name) is not None:
                    lines.append(f"+{name}={after_map[name]}")
    return lines


def differences(old: Content, new: Content) -> list[str]:
    """What differs, in words: file paths, `package name`, `image name`."""
    found: list[str] = []
    for section, label in (("files", ""), ("packages", "package "), ("images", "image ")):
        before = old.get(section) or {}
        after = new.get(section) or {}
        for name in sorted(set(before) | set(after)):
            if before.get(name) != after.get(name):
                found.append(f"{label}{name}")
    return found


def apply_revision(
    connector: Connector, revision: Content, definition: ServiceDefinition, host: str
) -> list[str]:
    """Put a revision's files (and package versions) on a host; returns what changed."""
    changed: list[str] = []
    current_files = {p: connector.read_file(host, p) for p in (revision.get("files") or {})}
    for path, text in (revision.get("files") or {}).items():
        if current_files.get(path) != text:
            connector.write_file(host, path, text)
            changed.append(path)
    packages = {k: v for k, v in (revision.get("packages") or {}).items() if v}
    if packages:
        changed += install_packages(connector, host, definition, packages)
    return changed


def install_packages(
    connector: Connector, host: str, definition: ServiceDefinition, versions: dict[str, str]
) -> list[str]:
    """Install exact package versions (apt-get or the venv's pip)."""
    if not versions:
        return []
    if definition.package_manager == "pip":
        pip = f"{definition.venv.rstrip('/')}/bin/pip" if definition.venv else "pip"
        pins = " ".join(shlex.quote(f"{n}=={v}") for n, v in sorted(versions.items()))
        command = f"{shlex.quote(pip)} install --no-deps {pins}"
    else:
        pins = " ".join(shlex.quote(f"{n}={v}") for n, v in sorted(versions.items()))
        command = (
            "DEBIAN_FRONTEND=noninteractive apt-get install -y --allow-downgrades "
            f"-o Dpkg::Options::=--force-confold {pins}"
        )
    result = connector.run(host, command)
    if not result.ok:
        raise ConnectorError(f"{host}: installing {', '.join(versions)} failed: {result.tail()}")
    return [f"package {n}" for n in sorted(versions)]
