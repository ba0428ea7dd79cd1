"""The one strict JSON reader refuses what json.loads lets through."""

from __future__ import annotations

import pytest

from gcx.errors import BodyNotUtf8, JsonInvalid
from gcx.protocol import strict_json


def test_reads_ordinary_json() -> None:
    """Objects, arrays, numbers, text and a surrogate pair (one emoji) read as json does."""
    assert strict_json.loads(b'{"a":[1,2.5,"x",null,true],"e":"\\ud83d\\ude00"}') == {
        "a": [1, 2.5, "x", None, True],
        "e": "\U0001f600",
    }


@pytest.mark.parametrize(
    "data",
    [b'{"marking":"OFFICIAL","marking":"OFFICIAL-SENSITIVE"}', b'[{"a":1,"b":2,"a":3}]'],
)
def test_refuses_a_repeated_key(data: bytes) -> None:
    """A key repeated in one object is refused, at any depth (no last-one-wins)."""
    with pytest.raises(JsonInvalid):
        strict_json.loads(data)


@pytest.mark.parametrize("data", [b"NaN", b'{"a":Infinity}', b"[-Infinity]"])
def test_refuses_nan_and_infinity(data: bytes) -> None:
    """NaN and the infinities are not JSON numbers and are refused."""
    with pytest.raises(JsonInvalid):
        strict_json.loads(data)


@pytest.mark.parametrize("depth", [65, 5_000, 200_000])
def test_refuses_deep_nesting(depth: int) -> None:
    """Nesting past the limit is a JsonInvalid (a 400), never a RecursionError (a 500)."""
    with pytest.raises(JsonInvalid):
        strict_json.loads(b"[" * depth + b"]" * depth)
    with pytest.raises(JsonInvalid):
        strict_json.loads(b'{"a":' * depth + b"1" + b"}" * depth)


def test_accepts_nesting_at_the_limit() -> None:
    """Exactly MAX_DEPTH levels are still read."""
    depth = strict_json.MAX_DEPTH
    assert strict_json.loads(b"[" * depth + b"]" * depth) is not None


@pytest.mark.parametrize(
    "data", [b'{"handling":"\\udfff"}', b'["\\ud800"]', b'{"\\udc00":1}', b'"\\ud83d x"']
)
def test_refuses_lone_surrogates(data: bytes) -> None:
    """A lone surrogate escape, in a value or a key, is refused as not UTF-8."""
    with pytest.raises(BodyNotUtf8):
        strict_json.loads(data)


def test_refuses_bytes_that_are_not_utf8_and_raw_surrogates_in_text() -> None:
    """Invalid UTF-8 bytes, and a str already holding a surrogate, are refused."""
    with pytest.raises(BodyNotUtf8):
        strict_json.loads(b'{"a":"\xff"}')
    with pytest.raises(BodyNotUtf8):
        strict_json.loads('{"a":"\udfff"}')


@pytest.mark.parametrize("data", [b"", b"{", b'{"a":1,}', b"[1] 2", b"'x'"])
def test_refuses_malformed_json(data: bytes) -> None:
    """Malformed text is a JsonInvalid, which is also a ValueError as json's errors are."""
    with pytest.raises(JsonInvalid):
        strict_json.loads(data)
    with pytest.raises(ValueError):
        strict_json.loads(data)


def test_loads_object_requires_an_object() -> None:
    """loads_object refuses a top-level array, string or number."""
    assert strict_json.loads_object(b'{"a":1}') == {"a": 1}
    for data in (b"[]", b'"x"', b"1"):
        with pytest.raises(JsonInvalid):
            strict_json.loads_object(data)
