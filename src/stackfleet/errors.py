"""Moved to `stackfleet.core.errors`; this alias keeps older branches importable. New
code imports `stackfleet.core.errors` (tests/unit/test_layering.py enforces it)."""

from stackfleet.core.errors import (
    CloudError,
    ConfigError,
    InvalidQueryError,
    NotFoundError,
    StackFleetError,
)

__all__ = ["CloudError", "ConfigError", "InvalidQueryError", "NotFoundError", "StackFleetError"]
