"""How StackFleet reaches a host: read a file, write a file, run a command, run an
Ansible playbook.

- `local`: this machine. With `root`, each host is a directory `<root>/<host>` (its
  files under it, its commands run there with STACKFLEET_HOST and STACKFLEET_HOST_ROOT
  set): the simulator's hosts in demos and tests.
- `ssh`: the OpenSSH client (`ssh HOST -- COMMAND`), with the operator's own ssh
  configuration, keys and agent; no Python SSH library.
- `ansible`: ansible-runner over the operator's inventory (ad-hoc `slurp`, `copy`,
  `shell` modules for files and commands; playbooks as they are).

Playbooks run through ansible-runner with every connector (an inventory of the one host
with `ansible_connection=local` for `local`, the host by name for `ssh`): StackFleet
runs the operator's playbooks, it does not reinvent them."""

from __future__ import annotations

import base64
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from stackfleet.core.errors import ConfigError, StackFleetError

log = logging.getLogger(__name__)


class ConnectorError(StackFleetError):
    """A host could not be reached or a command could not be started on it."""

    exit_code = 5


@dataclass(frozen=True)
class CommandResult:
    """What a command did on a host."""

    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def tail(self, lines: int = 5) -> str:
        text = (self.stderr or self.stdout).strip().splitlines()
        return " | ".join(text[-lines:])


class ConnectorSpec(BaseModel):
    """How to reach the hosts of a campaign (`connector:` in the spec)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["local", "ssh", "ansible"] = "local"
    root: str | None = Field(
        default=None, description="local: a directory per host (<root>/<host>); unset: this machine"
    )
    user: str | None = Field(default=None, description="ssh/ansible: the remote user")
    ssh_options: list[str] = Field(
        default_factory=list, description="ssh: extra options (-o BatchMode=yes, ...)"
    )
    inventory: str | None = Field(default=None, description="ansible: the inventory file")
    become: bool = Field(default=False, description="run as root through sudo (ssh, ansible)")
    timeout: float = Field(default=600.0, gt=0, description="seconds a command may take")


class Connector:
    """Base of the connectors (see the module doc)."""

    def __init__(self, spec: ConnectorSpec) -> None:
        self.spec = spec

    def read_file(self, host: str, path: str) -> str | None:
        """A file's text, None when it does not exist."""
        raise NotImplementedError

    def write_file(self, host: str, path: str, content: str | None) -> None:
        """Write (None: remove) a file."""
        raise NotImplementedError

    def run(self, host: str, command: str, timeout: float | None = None) -> CommandResult:
        """Run a shell command on the host."""
        raise NotImplementedError

    def inventory(self, host: str) -> dict[str, Any]:
        """An Ansible inventory naming just `host`."""
        variables: dict[str, Any] = {}
        if self.spec.user:
            variables["ansible_user"] = self.spec.user
        return {"all": {"hosts": {host: variables}}}

    def run_playbook(
        self,
        host: str,
        playbook: str,
        extravars: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        """Run an Ansible playbook against `host` through ansible-runner."""
        return run_playbook(
            playbook,
            self.inventory(host),
            limit=host,
            extravars=extravars,
            timeout=timeout or self.spec.timeout,
            become=self.spec.become,
        )


class LocalConnector(Connector):
    """This machine, or a directory per host (see the module doc)."""

    def _path(self, host: str, path: str) -> Path:
        if self.spec.root is None:
            return Path(path)
        return Path(self.spec.root) / host / path.lstrip("/")

    def read_file(self, host: str, path: str) -> str | None:
        target = self._path(host, path)
        try:
            return target.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConnectorError(f"{host}: cannot read {path}: {exc.strerror or exc}") from exc

    def write_file(self, host: str, path: str, content: str | None) -> None:
        target = self._path(host, path)
        try:
            if content is None:
                target.unlink(missing_ok=True)
                return
            target.parent.mkdir(parents=True, exist_ok=True)
            # written beside and renamed: a reader never sees half a file
            partial = target.with_name(f".{target.name}.stackfleet")
            partial.write_text(content, encoding="utf-8")
            partial.replace(target)
        except OSError as exc:
            raise ConnectorError(f"{host}: cannot write {path}: {exc.strerror or exc}") from exc

    def run(self, host: str, command: str, timeout: float | None = None) -> CommandResult:
        env = dict(os.environ, STACKFLEET_HOST=host)
        cwd = None
        if self.spec.root is not None:
            cwd = Path(self.spec.root) / host
            cwd.mkdir(parents=True, exist_ok=True)
            env["STACKFLEET_HOST_ROOT"] = str(cwd.resolve())
        return _subprocess(["/bin/sh", "-c", command], host, timeout or self.spec.timeout, env, cwd)

    def inventory(self, host: str) -> dict[str, Any]:
        variables: dict[str, Any] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
        }
        if self.spec.root is not None:
            variables["stackfleet_host_root"] = str((Path(self.spec.root) / host).resolve())
        return {"all": {"hosts": {host: variables}}}


class SshConnector(Connector):
    """The OpenSSH client: `ssh [options] [user@]host -- command`."""

    def _argv(self, host: str, command: str) -> list[str]:
        target = f"{self.spec.user}@{host}" if self.spec.user else host
        if self.spec.become:
            command = f"sudo -n sh -c {shlex.quote(command)}"
        return ["ssh", "-o", "BatchMode=yes", *self.spec.ssh_options, target, "--", command]

    def inventory(self, host: str) -> dict[str, Any]:
        """The host by name over Ansible's ssh connection, with the same `ssh_options`
        the connector's own commands use (an `-F` config, a key, a port): a playbook
        reaches the host exactly as `ssh HOST` does."""
        variables = super().inventory(host)["all"]["hosts"][host]
        variables["ansible_connection"] = "ssh"
        if self.spec.ssh_options:
            variables["ansible_ssh_common_args"] = shlex.join(self.spec.ssh_options)
        return {"all": {"hosts": {host: variables}}}

    def run(self, host: str, command: str, timeout: float | None = None) -> CommandResult:
        result = _subprocess(self._argv(host, command), host, timeout or self.spec.timeout)
        if result.rc == 255:
            raise ConnectorError(f"{host}: ssh failed: {result.tail()}")
        return result

    def read_file(self, host: str, path: str) -> str | None:
        quoted = shlex.quote(path)
        result = self.run(host, f"if [ -e {quoted} ]; then cat {quoted}; else exit 3; fi")
        if result.rc == 3:
            return None
        if not result.ok:
            raise ConnectorError(f"{host}: cannot read {path}: {result.tail()}")
        return result.stdout

    def write_file(self, host: str, path: str, content: str | None) -> None:
        quoted = shlex.quote(path)
        if content is None:
            result = self.run(host, f"rm -f {quoted}")
        else:
            partial = shlex.quote(f"{path}.stackfleet")
            argv = self._argv(host, f"cat > {partial} && mv {partial} {quoted}")
            result = _subprocess(argv, host, self.spec.timeout, stdin=content)
        if not result.ok:
            raise ConnectorError(f"{host}: cannot write {path}: {result.tail()}")


class AnsibleConnector(Connector):
    """ansible-runner over the operator's inventory: ad-hoc modules per call."""

    def inventory(self, host: str) -> dict[str, Any]:
        raise NotImplementedError  # the operator's inventory file is used as it is

    def _adhoc(self, host: str, module: str, args: str, timeout: float | None = None) -> Any:
        runner = _runner()
        with tempfile.TemporaryDirectory(prefix="stackfleet-ansible-") as workdir:
            result = runner.run(
                private_data_dir=workdir,
                inventory=str(Path(self.spec.inventory or "").resolve()),
                host_pattern=host,
                module=module,
                module_args=args,
                quiet=True,
                timeout=int(timeout or self.spec.timeout),
                envvars=_ansible_env(),
                cmdline="--become" if self.spec.become else None,
            )
            for event in result.events:
                data = event.get("event_data") or {}
                if event.get("event") in ("runner_on_ok", "runner_on_failed"):
                    res = dict(data.get("res") or {})
                    # a failed task's result does not always say so itself
                    res.setdefault("failed", event.get("event") == "runner_on_failed")
                    return res
                if event.get("event") == "runner_on_unreachable":
                    res = data.get("res") or {}
                    raise ConnectorError(f"{host}: unreachable: {res.get('msg', '')}")
        raise ConnectorError(f"{host}: no such host in the inventory {self.spec.inventory}")

    def run(self, host: str, command: str, timeout: float | None = None) -> CommandResult:
        res = self._adhoc(host, "shell", command, timeout)
        return CommandResult(
            int(res.get("rc", 1 if res.get("failed") else 0)),
            str(res.get("stdout", "")),
            str(res.get("stderr", "") or res.get("msg", "") if res.get("failed") else ""),
        )

    def read_file(self, host: str, path: str) -> str | None:
        res = self._adhoc(host, "slurp", f"src={shlex.quote(path)}")
        if res.get("failed"):
            if "not found" in str(res.get("msg", "")).lower():
                return None
            raise ConnectorError(f"{host}: cannot read {path}: {res.get('msg')}")
        return base64.b64decode(res.get("content", "")).decode("utf-8", "replace")

    def write_file(self, host: str, path: str, content: str | None) -> None:
        if content is None:
            res = self._adhoc(host, "file", f"path={shlex.quote(path)} state=absent")
        else:
            args = json.dumps({"dest": path, "content": content})
            res = self._adhoc(host, "copy", args)
        if res.get("failed"):
            raise ConnectorError(f"{host}: cannot write {path}: {res.get('msg')}")

    def run_playbook(
        self,
        host: str,
        playbook: str,
        extravars: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> CommandResult:
        return run_playbook(
            playbook,
            str(Path(self.spec.inventory or "").resolve()),
            limit=host,
            extravars=extravars,
            timeout=timeout or self.spec.timeout,
            become=self.spec.become,
        )


def connector_for(spec: ConnectorSpec) -> Connector:
    """The connector a spec names."""
    if spec.type == "ssh":
        if shutil.which("ssh") is None:
            raise ConfigError("connector ssh: no `ssh` client on this machine (openssh-client)")
        return SshConnector(spec)
    if spec.type == "ansible":
        if not spec.inventory:
            raise ConfigError("connector ansible: `inventory` (the inventory file) is required")
        return AnsibleConnector(spec)
    return LocalConnector(spec)


def _subprocess(
    argv: list[str],
    host: str,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | None = None,
) -> CommandResult:
    try:
        done = subprocess.run(  # noqa: S603 - the operator's own commands
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=cwd,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return CommandResult(124, str(exc.stdout or ""), f"timed out after {timeout:g} s")
    except OSError as exc:
        raise ConnectorError(f"{host}: cannot run {argv[0]}: {exc.strerror or exc}") from exc
    return CommandResult(done.returncode, done.stdout, done.stderr)


def _runner() -> Any:
    try:
        import ansible_runner
    except ImportError as exc:
        raise ConfigError(
            "Ansible is not installed: pip install 'stackfleet[patching]' "
            "(ansible-core and ansible-runner)"
        ) from exc
    if (
        shutil.which("ansible-playbook") is None
        and not (Path(sys.executable).parent / "ansible-playbook").exists()
    ):
        raise ConfigError("ansible-playbook is not installed (pip install ansible-core)")
    return ansible_runner


def _ansible_env() -> dict[str, str]:
    return {
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        # the venv's ansible-playbook, also when the caller's PATH lacks it
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }


def run_playbook(
    playbook: str,
    inventory: dict[str, Any] | str,
    limit: str,
    extravars: dict[str, Any] | None = None,
    timeout: float = 600.0,
    become: bool = False,
) -> CommandResult:
    """Run a playbook through ansible-runner; rc 0 when every task on `limit` was ok."""
    runner = _runner()
    with tempfile.TemporaryDirectory(prefix="stackfleet-ansible-") as workdir:
        result = runner.run(
            private_data_dir=workdir,
            playbook=str(Path(playbook).resolve()),
            inventory=inventory,
            limit=limit,
            extravars=extravars or {},
            quiet=True,
            timeout=int(timeout),
            envvars=_ansible_env(),
            cmdline="--become" if become else None,
        )
        stdout = result.stdout.read() if result.stdout else ""
        rc = int(result.rc if result.rc is not None else 1)
        if result.status != "successful" and rc == 0:
            rc = 1
        failed = [
            f"{(e.get('event_data') or {}).get('task', '?')}: "
            f"{((e.get('event_data') or {}).get('res') or {}).get('msg', '')}"
            for e in result.events
            if e.get("event") in ("runner_on_failed", "runner_on_unreachable")
        ]
        return CommandResult(rc, stdout, "; ".join(failed) or ("" if rc == 0 else result.status))


def syntax_check(playbook: str) -> str:
    """Problems `ansible-playbook --syntax-check` finds ("" when none)."""
    executable = shutil.which("ansible-playbook") or str(
        Path(sys.executable).parent / "ansible-playbook"
    )
    if not Path(executable).exists():
        return "ansible-playbook is not installed (pip install 'stackfleet[patching]')"
    done = subprocess.run(  # noqa: S603
        [executable, "--syntax-check", "-i", "localhost,", playbook],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1"),
        check=False,
    )
    if done.returncode == 0:
        return ""
    lines = [ln for ln in (done.stderr or done.stdout).strip().splitlines() if ln.strip()]
    return "ansible-playbook --syntax-check failed: " + " ".join(lines[:6])
