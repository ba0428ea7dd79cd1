"""Properties of the one strict JSON reader (gcx.protocol.strict_json)."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from tests.unit.fuzz._network import signed_directory
from tests.unit.fuzz._strategies import dsse_payload, json_texts, mutants, parse_or_refuse

from gcx.protocol import strict_json


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _check_accepted(value: Any) -> None:
    # What the reader accepts can be written again as strict JSON in UTF-8.
    assert _finite(value)
    json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_parse_or_are_refused(data: bytes) -> None:
    """Any bytes give a value or a gcx error, never another exception."""
    value = parse_or_refuse(strict_json.loads, data)
    if value is not None:
        _check_accepted(value)


@given(json_texts())
def test_hostile_json_parses_or_is_refused(data: bytes) -> None:
    """Deep nesting, NaN, huge numbers and surrogates are refused with a gcx error, or parse."""
    value = parse_or_refuse(strict_json.loads, data)
    if value is not None:
        _check_accepted(value)


@given(mutants(dsse_payload(signed_directory())))
def test_mutated_document_parses_or_is_refused(data: bytes) -> None:
    """Mutations of a real directory payload parse to strict JSON or are refused."""
    value = parse_or_refuse(strict_json.loads, data)
    if value is not None:
        _check_accepted(value)


_plain_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(_plain_json)
def test_round_trip(value: Any) -> None:
    """Whatever json.dumps writes from finite, valid text, the reader reads back equal."""
    data = json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    assert strict_json.loads(data) == value
