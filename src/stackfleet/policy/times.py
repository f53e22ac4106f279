"""Moved to `stackfleet.core.times`; this alias keeps older branches importable. New
code imports `stackfleet.core.times` (tests/unit/test_layering.py enforces it)."""

from stackfleet.core.times import (
    UNITS,
    Duration,
    format_duration,
    parse_duration,
    parse_time,
)

__all__ = ["UNITS", "Duration", "format_duration", "parse_duration", "parse_time"]
