"""Name rules of spec §2.1, with the reference server's messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storagecore.names import (
    NameRejected,
    parse_basin_name,
    parse_basin_prefix,
    parse_basin_start_after,
    parse_location_name,
    parse_request_token,
    parse_stream_name,
    parse_stream_prefix,
)

BASIN_RE = r"[a-z0-9][a-z0-9-]{6,46}[a-z0-9]"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a" * 49, "basin name must not exceed 48 bytes in length"),
        ("abc", "basin name should be at least 8 bytes in length"),
        ("-abcdefgh", "basin name must begin with a lowercase letter or number"),
        ("Abcdefgh", "basin name must begin with a lowercase letter or number"),
        ("abcdefgh-", "basin name must end with a lowercase letter or number"),
        ("abcd_efgh", "basin name must comprise lowercase letters, numbers, and hyphens"),
        ("abcdEfgh", "basin name must comprise lowercase letters, numbers, and hyphens"),
    ],
)
def test_basin_name_rejections(name: str, message: str) -> None:
    with pytest.raises(NameRejected) as excinfo:
        parse_basin_name(name)
    assert str(excinfo.value) == message


@given(st.from_regex(BASIN_RE, fullmatch=True))
def test_every_name_of_the_documented_form_is_accepted(name: str) -> None:
    assert parse_basin_name(name) == name


@given(st.text(max_size=60))
def test_basin_names_accepted_iff_they_match_the_documented_form(name: str) -> None:
    import re

    expected = re.fullmatch(BASIN_RE, name) is not None
    try:
        parse_basin_name(name)
        accepted = True
    except NameRejected:
        accepted = False
    assert accepted == expected


def test_basin_prefix_and_start_after() -> None:
    assert parse_basin_prefix("") == ""
    assert parse_basin_prefix("ab-") == "ab-"  # trailing hyphen allowed in a prefix
    assert parse_basin_start_after("a") == "a"
    with pytest.raises(NameRejected, match="basin prefix must begin"):
        parse_basin_prefix("-a")
    with pytest.raises(NameRejected, match="basin start-after must comprise"):
        parse_basin_start_after("a_b")
    with pytest.raises(NameRejected, match="basin prefix must not exceed 48 bytes"):
        parse_basin_prefix("a" * 49)


def test_stream_names() -> None:
    assert parse_stream_name("a/b ü") == "a/b ü"
    assert parse_stream_name("x" * 512) == "x" * 512
    for bad, message in [
        ("", "stream name must not be empty"),
        (".", 'stream name must not be "." or ".."'),
        ("..", 'stream name must not be "." or ".."'),
        ("é" * 257, "stream name must not exceed 512 bytes in length"),
    ]:
        with pytest.raises(NameRejected) as excinfo:
            parse_stream_name(bad)
        assert str(excinfo.value) == message
    assert parse_stream_prefix("") == ""
    assert parse_stream_prefix("..") == ".."


def test_tokens_and_locations() -> None:
    assert parse_request_token("") == ""
    assert parse_request_token("t" * 36) == "t" * 36
    with pytest.raises(NameRejected):
        parse_request_token("t" * 37)
    assert parse_location_name("aws:us-east-1") == "aws:us-east-1"
    for bad in ["", "a" * 65, "bad location"]:
        with pytest.raises(NameRejected):
            parse_location_name(bad)
