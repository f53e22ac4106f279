"""A private OpenSSH server on loopback for the SSH and Ansible connector tests.

The machine runs no sshd (and should not get one listening on its interfaces): each test
starts its own `/usr/sbin/sshd -D -e` as a child process, listening on 127.0.0.1 at a
free port, with a host key and a client key generated into a temporary directory, the
client key its only authorized key, and logs in as the current user. It is stopped by
its PID. An `ssh_config` written beside it names the host aliases the tests use
(`cmp1`, ...) so that the connectors reach it exactly as an operator's ssh
configuration would (`ssh -F <that file> cmp1`).

sshd checks its privilege separation directory (/run/sshd, compiled in, not
configurable) before it starts even in `-D` mode; Debian creates it from the service
unit, which does not run here, so the helper creates it (root only)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")


def unavailable() -> str | None:
    """Why a private sshd cannot run here (None: it can)."""
    if not Path(SSHD).exists():
        return f"{SSHD} is not installed (Debian package openssh-server)"
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (Debian package openssh-client)"
    if not PRIVSEP_DIR.is_dir() and os.geteuid() != 0:
        return f"sshd needs its privilege separation directory {PRIVSEP_DIR} (create it as root)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stackfleet-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@dataclass
class Sshd:
    """A running private sshd and what a client needs to reach it."""

    directory: Path
    port: int
    user: str
    client_key: Path
    ssh_config: Path
    aliases: tuple[str, ...]
    process: subprocess.Popen[bytes]

    def ssh_options(self) -> list[str]:
        """Options that make `ssh HOST` reach this server for the aliases in ssh_config."""
        return ["-F", str(self.ssh_config)]

    def other_client(
        self, path: Path, key: Path | None = None, port: int | None = None
    ) -> list[str]:
        """ssh options for the same aliases with another key or port (bad input)."""
        config = client_config(
            path, self.aliases, port or self.port, self.user, key or self.client_key
        )
        return ["-F", str(config)]

    def log(self) -> str:
        """What sshd wrote so far (-e: its log on stderr, redirected to a file)."""
        return (self.directory / "sshd.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def client_config(path: Path, aliases: tuple[str, ...], port: int, user: str, key: Path) -> Path:
    """An ssh_config mapping `aliases` to 127.0.0.1:`port`, logging in with `key` only
    (IdentitiesOnly: no agent or default key can stand in for it)."""
    path.write_text(
        f"""\
Host {" ".join(aliases)} 127.0.0.1
  HostName 127.0.0.1
  Port {port}
  User {user}
  IdentityFile {key}
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile {path.parent / "known_hosts"}
  ConnectTimeout 5
  LogLevel ERROR
"""
    )
    return path


def start_sshd(directory: Path, aliases: tuple[str, ...] = ("cmp1",)) -> Sshd:
    """Start sshd in `directory` (keys, config, pid file, log) and wait until it accepts
    connections; `aliases` are host names ssh_config maps to it."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    host_key = directory / "ssh_host_ed25519_key"
    client_key = directory / "id_ed25519"
    keygen(host_key)
    keygen(client_key)
    authorized = directory / "authorized_keys"
    authorized.write_text((directory / "id_ed25519.pub").read_text())
    authorized.chmod(0o600)
    port = free_port()
    user = getpass.getuser()
    config = directory / "sshd_config"
    config.write_text(
        f"""\
ListenAddress 127.0.0.1
Port {port}
HostKey {host_key}
PidFile {directory / "sshd.pid"}
AuthorizedKeysFile {authorized}
AllowUsers {user}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
"""
    )
    ssh_config = client_config(directory / "ssh_config", aliases, port, user, client_key)
    log = (directory / "sshd.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - the test's own server
        [SSHD, "-D", "-e", "-f", str(config), "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = Sshd(directory, port, user, client_key, ssh_config, aliases, process)
    _wait_listening(server)
    return server


def _wait_listening(server: Sshd, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"sshd exited ({server.process.returncode}): {server.log()}")
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{server.port}: {server.log()}")
