"""How the store writes JSON: records serialised once, with orjson, and hashed.

Light on purpose (no SQLAlchemy): the engine of every store, the CLI's read-only one
included, takes `json_serializer`."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

# Records are serialised with orjson (about ten times faster than the standard
# library's encoder, the largest cost of storing a pass): compact, UTF-8, field order
# kept. What orjson would write differently from `json.dumps(value, default=str)`
# goes to `str` as before (datetimes, dataclasses); values it cannot write at all
# (integers beyond 64 bits) fall back to the standard library.
_ORJSON_OPTIONS = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)
_stdlib_encode = json.JSONEncoder(separators=(",", ":"), default=str, check_circular=False).encode


def encode_json(value: Any) -> bytes:
    """A value's JSON text as UTF-8 bytes, as the store writes it."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return _stdlib_encode(value).encode()


def digest_of(encoded: bytes) -> str:
    """The content hash of a record's JSON text (`Resource.attrs_hash`)."""
    return hashlib.blake2b(encoded, digest_size=16).hexdigest()


class EncodedRecord(dict[str, Any]):
    """A record that carries its JSON text, so it is serialised once per pass: for its
    hash and for the store (see `json_serializer`)."""

    __slots__ = ("encoded",)

    def __init__(self, record: dict[str, Any], encoded: str | None = None) -> None:
        super().__init__(record)
        self.encoded = encode_json(record).decode() if encoded is None else encoded


def json_serializer(value: Any) -> str:
    """The engine's JSON serialiser: reuses the text of an EncodedRecord."""
    if isinstance(value, EncodedRecord):
        return value.encoded
    return encode_json(value).decode()


def record_hash(record: dict[str, Any]) -> str:
    """A digest of a record's content (field order is fixed by the kind's builder)."""
    if isinstance(record, EncodedRecord):
        return digest_of(record.encoded.encode())
    return digest_of(encode_json(record))
