"""The services' virtualenv: built once from requirements.txt and kept.

A hash of requirements.txt and of the Python used is stored in the venv; ``up``
rebuilds the venv only when either changes, so a second ``up`` installs nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import layout as L
from .layout import Layout

MARKER = ".sftb-requirements"


class InstallError(RuntimeError):
    pass


def base_python() -> str:
    """The interpreter the venv is built from: the services are tested on 3.11."""
    chosen = os.environ.get("STACKFLEET_TESTBED_PYTHON")
    if chosen:
        return chosen
    for name in ("python3.11", "python3.12", "python3"):
        found = shutil.which(name)
        if found:
            return found
    return sys.executable


def _fingerprint(python: str) -> str:
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True
    ).stdout.strip()
    digest = hashlib.sha256(L.REQUIREMENTS.read_bytes())
    digest.update(version.encode())
    return digest.hexdigest()


def is_current(layout: Layout) -> bool:
    marker = layout.venv / MARKER
    if not marker.exists() or not (layout.bin / "python").exists():
        return False
    return marker.read_text().strip() == _fingerprint(str(layout.bin / "python"))


def ensure_venv(layout: Layout, say) -> float | None:
    """Builds the venv if needed; returns the seconds it took, or None if it was current."""
    if is_current(layout):
        return None
    python = base_python()
    t0 = time.monotonic()
    say(f"installing the OpenStack services into {layout.venv} (about 2 minutes cold)")
    if layout.venv.exists():
        shutil.rmtree(layout.venv)
    layout.logs.mkdir(parents=True, exist_ok=True)
    log_path = layout.log("install")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    with open(log_path, "w") as log:
        for argv in (
            [python, "-m", "venv", str(layout.venv)],
            [str(layout.bin / "pip"), "install", "-q", "-U", "pip"],
            [str(layout.bin / "pip"), "install", "-r", str(L.REQUIREMENTS)],
        ):
            log.write(f"$ {' '.join(argv)}\n")
            log.flush()
            proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
            if proc.returncode != 0:
                raise InstallError(f"{' '.join(argv[:4])} failed; see {log_path}")
    (layout.venv / MARKER).write_text(_fingerprint(str(layout.bin / "python")) + "\n")
    return time.monotonic() - t0


def venv_python(layout: Layout) -> Path:
    return layout.bin / "python"
