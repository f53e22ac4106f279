"""Where StackFleet keeps its data and how it finds its settings.

Settings come from environment variables (STACKFLEET_*) and command-line options; the
defaults follow the platform's conventions for a user's data directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_config_dir, user_data_dir


def data_dir() -> Path:
    """The directory for StackFleet's database and state (created on demand)."""
    path = Path(os.environ.get("STACKFLEET_DATA_DIR") or user_data_dir("stackfleet"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    return Path(os.environ.get("STACKFLEET_CONFIG_DIR") or user_config_dir("stackfleet"))


def default_db_url() -> str:
    """STACKFLEET_DB_URL, or SQLite in the user's data directory."""
    return os.environ.get("STACKFLEET_DB_URL") or f"sqlite:///{data_dir() / 'stackfleet.db'}"
