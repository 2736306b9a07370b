"""S2 error codes, their HTTP statuses (spec §6.2) and the domain errors.

This is the one error table of the project. Every failure that reaches a client
is an ``S2Error`` (or one of its subclasses) carrying a code from ``ErrorCode``;
the status always comes from ``STATUS_BY_CODE`` so that the pairing the SDKs
rely on for retries cannot drift. Rendering (JSON bodies, SSE ``error`` events,
S2S terminal frames) lives at the edge and reads ``S2Error.status`` and
``S2Error.body()``.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.StrEnum):
    ACCESS_TOKEN_NOT_FOUND = "access_token_not_found"
    AUTHN = "authn"
    BAD_FRAME = "bad_frame"
    BAD_HEADER = "bad_header"
    BAD_JSON = "bad_json"
    BAD_PATH = "bad_path"
    BAD_PROTO = "bad_proto"
    BAD_QUERY = "bad_query"
    BASIN_DELETION_PENDING = "basin_deletion_pending"
    BASIN_NOT_FOUND = "basin_not_found"
    CLIENT_HANGUP = "client_hangup"
    DECRYPTION_FAILED = "decryption_failed"
    HOT_SERVER = "hot_server"
    INVALID = "invalid"
    NOT_IMPLEMENTED = "not_implemented"
    OTHER = "other"
    PERMISSION_DENIED = "permission_denied"
    QUOTA_EXHAUSTED = "quota_exhausted"
    RATE_LIMITED = "rate_limited"
    REQUEST_TIMEOUT = "request_timeout"
    RESOURCE_ALREADY_EXISTS = "resource_already_exists"
    SERVER_DRAINING = "server_draining"
    STORAGE = "storage"
    STREAM_DELETION_PENDING = "stream_deletion_pending"
    STREAM_NOT_FOUND = "stream_not_found"
    TRANSACTION_CONFLICT = "transaction_conflict"
    UNAVAILABLE = "unavailable"
    UPSTREAM_TIMEOUT = "upstream_timeout"


STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.ACCESS_TOKEN_NOT_FOUND: 404,
    ErrorCode.AUTHN: 401,
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.BAD_HEADER: 400,
    ErrorCode.BAD_JSON: 400,
    ErrorCode.BAD_PATH: 400,
    ErrorCode.BAD_PROTO: 400,
    ErrorCode.BAD_QUERY: 400,
    ErrorCode.BASIN_DELETION_PENDING: 409,
    ErrorCode.BASIN_NOT_FOUND: 404,
    ErrorCode.CLIENT_HANGUP: 499,
    ErrorCode.DECRYPTION_FAILED: 400,
    ErrorCode.HOT_SERVER: 502,
    ErrorCode.INVALID: 422,
    ErrorCode.NOT_IMPLEMENTED: 501,
    ErrorCode.OTHER: 500,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.QUOTA_EXHAUSTED: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.RESOURCE_ALREADY_EXISTS: 409,
    ErrorCode.SERVER_DRAINING: 503,
    ErrorCode.STORAGE: 500,
    ErrorCode.STREAM_DELETION_PENDING: 409,
    ErrorCode.STREAM_NOT_FOUND: 404,
    ErrorCode.TRANSACTION_CONFLICT: 409,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.UPSTREAM_TIMEOUT: 504,
}


class S2Error(Exception):
    """A failure with an S2 error code; its HTTP status comes from the table."""

    code: ErrorCode = ErrorCode.OTHER

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]

    def body(self) -> dict[str, Any]:
        return {"code": self.code.value, "message": self.message}


# Parse failures at the edge (spec §1.4): always 400 with a ``bad_*`` code.
class BadHeader(S2Error):
    code = ErrorCode.BAD_HEADER

    @classmethod
    def missing(cls, name: str) -> BadHeader:
        return cls(f"Missing header `{name}`")

    @classmethod
    def invalid(cls, name: str, detail: str) -> BadHeader:
        return cls(f"Invalid header `{name}`: {detail}")


class BadPath(S2Error):
    code = ErrorCode.BAD_PATH

    def __init__(self, detail: str) -> None:
        super().__init__(f"Invalid URL: {detail}")


class BadQuery(S2Error):
    code = ErrorCode.BAD_QUERY

    def __init__(self, detail: str) -> None:
        super().__init__(f"Failed to deserialize query string: {detail}")


class BadJson(S2Error):
    code = ErrorCode.BAD_JSON


class BadProto(S2Error):
    code = ErrorCode.BAD_PROTO


class Invalid(S2Error):
    """Semantically unacceptable input: 422 ``invalid``."""

    code = ErrorCode.INVALID


class NotImplementedRoute(S2Error):
    code = ErrorCode.NOT_IMPLEMENTED

    def __init__(self) -> None:
        super().__init__("Not implemented")


# Resource states (spec §2, §6.3).
class BasinNotFound(S2Error):
    code = ErrorCode.BASIN_NOT_FOUND

    def __init__(self, basin: str) -> None:
        super().__init__(f"basin `{basin}` not found")


class StreamNotFound(S2Error):
    code = ErrorCode.STREAM_NOT_FOUND

    def __init__(self, basin: str, stream: str) -> None:
        super().__init__(f"stream `{stream}` in basin `{basin}` not found")


class BasinAlreadyExists(S2Error):
    code = ErrorCode.RESOURCE_ALREADY_EXISTS

    def __init__(self, basin: str) -> None:
        super().__init__(f"basin `{basin}` already exists")


class StreamAlreadyExists(S2Error):
    code = ErrorCode.RESOURCE_ALREADY_EXISTS

    def __init__(self, basin: str, stream: str) -> None:
        super().__init__(f"stream `{stream}` in basin `{basin}` already exists")


class BasinDeletionPending(S2Error):
    code = ErrorCode.BASIN_DELETION_PENDING

    def __init__(self, basin: str) -> None:
        super().__init__(f"basin `{basin}` is being deleted")


class StreamDeletionPending(S2Error):
    code = ErrorCode.STREAM_DELETION_PENDING

    def __init__(self) -> None:
        super().__init__("stream deletion pending")


class TransactionConflict(S2Error):
    code = ErrorCode.TRANSACTION_CONFLICT

    def __init__(self) -> None:
        super().__init__("transaction conflict occurred \u2013 this is usually retriable")


# Failures with their own body shapes (spec §3.5, §4.2). They are S2Errors so that
# every renderer handles them, but their status and body are not from the table.
class AppendConditionFailed(S2Error):
    """412: the fencing token or ``match_seq_num`` did not match."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(f"append condition failed: {body}")
        self._body = body

    @property
    def status(self) -> int:
        return 412

    def body(self) -> dict[str, Any]:
        return self._body

    @classmethod
    def fencing_token_mismatch(cls, current: str) -> AppendConditionFailed:
        return cls({"fencing_token_mismatch": current})

    @classmethod
    def seq_num_mismatch(cls, next_seq_num: int) -> AppendConditionFailed:
        return cls({"seq_num_mismatch": next_seq_num})


class ReadUnwritten(S2Error):
    """416: the read starts beyond the tail (or at it, when it may not wait)."""

    def __init__(self, tail_seq_num: int, tail_timestamp: int) -> None:
        super().__init__("read starts beyond the tail")
        self.tail = (tail_seq_num, tail_timestamp)

    @property
    def status(self) -> int:
        return 416

    def body(self) -> dict[str, Any]:
        return {"tail": {"seq_num": self.tail[0], "timestamp": self.tail[1]}}


class DecryptionFailed(S2Error):
    """A stored record did not authenticate under the key the reader sent (spec §7)."""

    code = ErrorCode.DECRYPTION_FAILED

    def __init__(self) -> None:
        super().__init__("record decryption failed")


class StorageFailure(S2Error):
    code = ErrorCode.STORAGE


class Unavailable(S2Error):
    code = ErrorCode.UNAVAILABLE
