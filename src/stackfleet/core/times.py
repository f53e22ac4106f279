"""Durations as policies write them ("30d", "12h", "1w2d") and timestamps as OpenStack
services return them (with or without a zone, a "Z", a space instead of "T")."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([wdhms])")


def parse_duration(value: Any) -> timedelta:
    """ "30d", "12h", "1w2d", "90m", "45s" -> timedelta. A bare number is refused: a unit
    makes a policy readable and avoids days-or-seconds mistakes."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"give a duration with a unit, e.g. '30d', '12h' (got {value!r})")
    text = value.strip().lower()
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise ValueError(
            f"{value!r} is not a duration; use a number and a unit: w, d, h, m, s (e.g. '30d')"
        )
    seconds = sum(float(number) * UNITS[unit] for number, unit in parts)
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """timedelta -> the shortest "30d"-style text (a fraction of a second is kept:
    "0.25s" reads back as it was written)."""
    total = delta.total_seconds()
    seconds = int(total)
    fraction = round(total - seconds, 6)
    if seconds == 0:
        return f"{fraction:g}s" if fraction else "0s"
    parts = []
    for unit, size in UNITS.items():
        if seconds >= size:
            count, seconds = divmod(seconds, size)
            parts.append(f"{count}{unit}")
    if fraction:
        if parts and parts[-1].endswith("s"):
            parts[-1] = f"{int(parts[-1][:-1]) + fraction:g}s"
        else:
            parts.append(f"{fraction:g}s")
    return "".join(parts)


# A pydantic type: accepts "30d" style text, keeps a timedelta, dumps as text.
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


def parse_time(value: Any) -> datetime | None:
    """An OpenStack timestamp as an aware UTC datetime; None when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
