"""JSON record formats (spec §3.2, §4.4): parsing appends, rendering read batches.

The ``s2-format`` header chooses how header names, values and bodies appear as
JSON strings: ``raw`` (UTF-8 text; invalid bytes become U+FFFD when reading) or
``base64`` (standard Base64 with padding). Sans-IO: values in, values out.
"""

from __future__ import annotations

import base64
import binascii
import enum
from typing import Any

from storagecore import limits
from storagecore.errors import BadHeader, BadJson, Invalid
from storagecore.records import AppendBatch, Record, parse_record
from streams.protocol import messages

FORMAT_HEADER = "s2-format"


class Format(enum.Enum):
    RAW = "raw"
    BASE64 = "base64"

    @classmethod
    def parse(cls, value: str | None) -> Format:
        if value is None:
            return cls.RAW
        text = value.strip()
        if text in ("raw", "json"):
            return cls.RAW
        if text in ("base64", "json-binsafe"):
            return cls.BASE64
        raise BadHeader.invalid(FORMAT_HEADER, value)

    def decode(self, data: bytes) -> bytes:
        """A JSON string's UTF-8 bytes as record data."""
        if self is Format.RAW:
            return data
        try:
            decoded = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid("invalid Base64 encoding") from None
        # Strict like the reference: padded to a multiple of 4, no stray bits in the last group.
        rest = len(decoded) % 3
        if len(data) % 4 or (rest and base64.b64encode(decoded[-rest:]) != data[-4:]):
            raise Invalid("invalid Base64 encoding")
        return decoded

    def encode(self, data: bytes) -> str:
        if self is Format.RAW:
            return data.decode("utf-8", errors="replace")
        return base64.b64encode(data).decode("ascii")


def _u64(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= limits.u64_max:
        raise BadJson(f"{what}: invalid type or value, expected u64")
    return value


def _string(value: Any, what: str) -> bytes:
    """A JSON string as UTF-8; lone surrogates (``"\\ud800"``) are a JSON error."""
    if not isinstance(value, str):
        raise BadJson(f"{what}: invalid type, expected a string")
    try:
        return value.encode()
    except UnicodeEncodeError:
        raise BadJson(f"{what}: invalid unicode code point") from None


def parse_append(document: Any, fmt: Format) -> AppendBatch:
    """An ``AppendInput`` JSON document: shapes first (400), then records (422)."""
    if not isinstance(document, dict):
        raise BadJson("invalid type: expected struct AppendInput")
    if "records" not in document:
        raise BadJson("missing field `records`")
    raw_records = document["records"]
    if not isinstance(raw_records, list):
        raise BadJson("records: invalid type, expected a sequence")
    match_seq_num = document.get("match_seq_num")
    if match_seq_num is not None:
        match_seq_num = _u64(match_seq_num, "match_seq_num")
    fencing_token = document.get("fencing_token")
    if (
        fencing_token is not None
        and len(_string(fencing_token, "fencing_token")) > limits.fencing_token_bytes_max
    ):
        raise BadJson(
            f"fencing_token: must not exceed {limits.fencing_token_bytes_max} bytes in length"
        )
    shaped: list[tuple[int | None, list[tuple[bytes, bytes]], bytes]] = []
    for raw in raw_records:
        if not isinstance(raw, dict):
            raise BadJson("records: invalid type, expected struct AppendRecord")
        timestamp = raw.get("timestamp")
        if timestamp is not None:
            timestamp = _u64(timestamp, "timestamp")
        headers = raw.get("headers", [])
        if headers is None or not isinstance(headers, list):
            raise BadJson("headers: invalid type, expected a sequence")
        pairs = []
        for header in headers:
            if not isinstance(header, list) or len(header) != 2:
                raise BadJson("headers: expected a [name, value] pair")
            pairs.append((_string(header[0], "header name"), _string(header[1], "header value")))
        body = raw.get("body", "")
        shaped.append((timestamp, pairs, _string(body, "body")))
    records: list[Record] = []
    for timestamp, pairs, body in shaped:
        headers_bytes = [(fmt.decode(name), fmt.decode(value)) for name, value in pairs]
        records.append(parse_record(timestamp, headers_bytes, fmt.decode(body)))
    return AppendBatch.build(records, match_seq_num, fencing_token)


def render_records(payload: bytes, fmt: Format) -> list[dict[str, Any]]:
    """Stored records (a ``ReadBatch`` body) as JSON ``SequencedRecord`` objects."""
    batch = messages.ReadBatch.FromString(payload)
    out: list[dict[str, Any]] = []
    encode = fmt.encode
    for record in batch.records:
        item: dict[str, Any] = {"seq_num": record.seq_num, "timestamp": record.timestamp}
        if record.headers:
            item["headers"] = [[encode(h.name), encode(h.value)] for h in record.headers]
        if record.body:
            item["body"] = encode(record.body)
        out.append(item)
    return out
