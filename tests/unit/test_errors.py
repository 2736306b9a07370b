"""The code-to-status table is exactly spec §6.2."""

from __future__ import annotations

from storagecore.errors import STATUS_BY_CODE, ErrorCode, S2Error, TransactionConflict

SPEC_TABLE = {
    "access_token_not_found": 404, "authn": 401, "bad_frame": 400, "bad_header": 400,
    "bad_json": 400, "bad_path": 400, "bad_proto": 400, "bad_query": 400,
    "basin_deletion_pending": 409, "basin_not_found": 404, "client_hangup": 499,
    "decryption_failed": 400, "hot_server": 502, "invalid": 422, "not_implemented": 501,
    "other": 500, "permission_denied": 403, "quota_exhausted": 403, "rate_limited": 429,
    "request_timeout": 408, "resource_already_exists": 409, "server_draining": 503,
    "storage": 500, "stream_deletion_pending": 409, "stream_not_found": 404,
    "transaction_conflict": 409, "unavailable": 503, "upstream_timeout": 504,
}  # fmt: skip


def test_table_matches_the_spec() -> None:
    assert {code.value: status for code, status in STATUS_BY_CODE.items()} == SPEC_TABLE
    assert set(ErrorCode) == set(STATUS_BY_CODE)


def test_errors_render_code_and_message() -> None:
    error = TransactionConflict()
    assert error.status == 409
    assert error.body() == {
        "code": "transaction_conflict",
        "message": "transaction conflict occurred \u2013 this is usually retriable",
    }
    assert S2Error("x", ErrorCode.STORAGE).status == 500
