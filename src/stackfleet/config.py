"""Moved to `stackfleet.core.config`; this alias keeps older branches importable. New
code imports `stackfleet.core.config` (tests/unit/test_layering.py enforces it)."""

from stackfleet.core.config import config_dir, data_dir, default_db_url

__all__ = ["config_dir", "data_dir", "default_db_url"]
