"""Properties of the parsers of short untrusted text: identifiers, addresses, markings,
file names and tus upload headers."""

from __future__ import annotations

import base64
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.unit.fuzz._strategies import parse_or_refuse

from gcx.gateway.transfers.api import _int_header, parse_metadata
from gcx.protocol.identifiers import (
    check_account_name,
    check_gateway_name,
    check_organisation_code,
    parse_organisation_type,
)
from gcx.protocol.marking import parse_marking, subject_with_marking
from gcx.protocol.message import check_file_name, parse_address

# Text as it reaches gcx from a header, a form or JSON: any code point, lone
# surrogates included (aiohttp decodes header bytes with surrogateescape).
_any_text = st.text(st.characters(exclude_categories=()), max_size=40)
_near_valid = st.sampled_from(
    [
        "E09000030",
        "DWP",
        "a@DWP",
        "benefits@E09000030",
        "OFFICIAL",
        "official sensitive",
        "RESTRICTED",
        "TOP SECRET",
        "report.pdf",
        "con.txt",
        "mps",
        "1.0",
    ]
).flatmap(lambda s: st.builds(lambda a, b: a + s + b, _any_text, _any_text) | st.just(s))

TEXT_PARSERS: dict[str, Callable[[str], Any]] = {
    "organisation code": check_organisation_code,
    "gateway name": check_gateway_name,
    "account name": check_account_name,
    "organisation type": parse_organisation_type,
    "address": parse_address,
    "marking": parse_marking,
    "file name": check_file_name,
}


@pytest.mark.parametrize("name", sorted(TEXT_PARSERS))
@given(text=_any_text | _near_valid)
def test_text_parses_or_refuses(name: str, text: str) -> None:
    """Any text is accepted or refused with a gcx error, never another exception."""
    parse_or_refuse(
        lambda t: TEXT_PARSERS[name](t.decode("utf-8", "surrogatepass")),
        text.encode("utf-8", "surrogatepass"),
    )


@given(_any_text)
def test_accepted_address_round_trips(text: str) -> None:
    """An accepted address prints as text that parses to the same address."""
    address = parse_or_refuse(lambda _: parse_address(text), b"")
    if address is not None:
        assert parse_address(str(address)) == address


@given(_any_text | _near_valid)
def test_accepted_marking_round_trips(text: str) -> None:
    """An accepted marking's canonical name parses to itself, and tags a subject."""
    decision = parse_or_refuse(lambda _: parse_marking(text), b"")
    if decision is not None:
        assert parse_marking(decision.marking.value).marking == decision.marking
        subject_with_marking(text, decision.marking)


# -- tus headers --------------------------------------------------------------------------


@given(
    _any_text | st.from_regex(r"[ ,a-z]{0,8}( [A-Za-z0-9+/=]{0,12})?(,.{0,10})?", fullmatch=True)
)
def test_upload_metadata_parses_or_refuses(header: str) -> None:
    """Any Upload-Metadata header gives text values or a gcx error."""
    parsed = parse_or_refuse(lambda _: parse_metadata(header), b"")
    if parsed is not None:
        for value in parsed.values():
            value.encode("utf-8")


_keys = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)


@given(st.dictionaries(_keys, st.text(max_size=30), max_size=5))
def test_upload_metadata_round_trip(metadata: dict[str, str]) -> None:
    """What a tus client writes (key, space, base64 of the UTF-8 value) reads back equal."""
    header = ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key
        for key, value in metadata.items()
    )
    assert parse_metadata(header) == metadata


@given(_any_text | st.integers().map(str))
def test_integer_header_parses_or_refuses(value: str) -> None:
    """Upload-Length and Upload-Offset give a non-negative integer or a gcx error."""
    request: Any = SimpleNamespace(headers={"Upload-Offset": value})
    number = parse_or_refuse(lambda _: _int_header(request, "Upload-Offset"), b"")
    if number is not None:
        assert number >= 0


@given(_any_text | st.integers().map(str))
def test_integer_header_accepts_only_ascii_digits(value: str) -> None:
    """A tus integer header reads only when it is plain ASCII digits, as tus defines it."""
    request: Any = SimpleNamespace(headers={"Upload-Offset": value})
    number = parse_or_refuse(lambda _: _int_header(request, "Upload-Offset"), b"")
    plain = value.isascii() and value.isdigit() and len(value) <= 18
    assert (number is not None) == plain
    if plain:
        assert number == int(value)


def test_integer_header_refuses_what_int_would_take() -> None:
    """Underscores, spaces, signs and other scripts' digits are refused, not read."""
    for value in ("1_0", " 10", "10 ", "+10", "\u0663", "-0"):
        request: Any = SimpleNamespace(headers={"Upload-Offset": value})
        assert parse_or_refuse(lambda _, r=request: _int_header(r, "Upload-Offset"), b"") is None
