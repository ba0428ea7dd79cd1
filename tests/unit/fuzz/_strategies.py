"""Strategies shared by the parser properties: hostile JSON, and mutations of valid documents.

A parser of untrusted bytes has one contract whatever it is given: it
returns a value or raises a :class:`gcx.errors.GcxError`. Anything else
(``KeyError``, ``TypeError``, ``RecursionError``, ``UnicodeError``,
``OverflowError``…) escapes every handler that maps gcx errors to a refusal
and becomes a 500 or a crashed worker.

Hostile inputs come three ways: arbitrary bytes; arbitrary JSON values; and,
most useful, small mutations of a valid document made by gcx's own writers,
which get past the first checks and reach the code behind them. JSON
mutations are written by :func:`dump`, which, unlike ``json.dumps``, can
repeat a key in one object (:class:`Pairs`) and splice in text no Python
value serialises to (:class:`Raw`): ``NaN``, ``1e400``, lone surrogate
escapes, nesting thousands of levels deep.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import strategies as st

from gcx.errors import GcxError

T = TypeVar("T")


def parse_or_refuse(parse: Callable[[bytes], T], data: bytes) -> T | None:
    """The parsed value, or None if ``parse`` refused with a gcx error; anything else propagates."""
    try:
        return parse(data)
    except GcxError:
        return None


# -- JSON text that json.dumps cannot write ------------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text spliced in verbatim."""

    text: str


@dataclass(frozen=True)
class Pairs:
    """A JSON object as written key by key, so a key may appear more than once."""

    items: tuple[tuple[str, Any], ...]


def dump(value: Any) -> str:
    """Serialise a tree of JSON values, :class:`Raw` and :class:`Pairs` (ASCII, escaped)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items) + "}"
    if isinstance(value, dict):
        return dump(Pairs(tuple(value.items())))
    if isinstance(value, list | tuple):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


DEEP_ARRAY = Raw("[" * 5000 + "]" * 5000)
DEEP_OBJECT = Raw('{"a":' * 3000 + "1" + "}" * 3000)

_SPECIAL_RAW = [
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e400"),
    Raw("-1e400"),
    Raw("1" * 5000),
    Raw("-0"),
    Raw("1.0"),
    Raw('"\\udfff"'),
    Raw('"\\ud800x"'),
    Raw('"a\\u0000b"'),
    DEEP_ARRAY,
    DEEP_OBJECT,
]

_SPECIAL_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    2**64 + 1,
    -(2**63) - 1,
    0.5,
    "",
    " ",
    "\x00",
    "false",
    "0",
    "E09000030",
    "OFFICIAL",
    "SECRET",
    "gcx.envelope/1",
    "2026-11-21T09:00:00",
    "2026-11-21T09:00:00Z",
    "2026-11-21T09:00:00+00:00",
    "0001-01-01T00:00:00+00:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999+00:00",
    "2026-02-30T00:00:00+00:00",
    "a" * 70,
    "A" * 5000,
    "0" * 64,
    "sha256:" + "0" * 64,
    "AAAA",
    "====",
    "ü",
    "\u202e",
]

json_leaves = st.one_of(
    st.sampled_from(_SPECIAL_VALUES),
    st.sampled_from(_SPECIAL_RAW),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=()), max_size=20),
)

json_values: st.SearchStrategy[Any] = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=8), children, max_size=4),
    ),
    max_leaves=12,
)
"""Arbitrary JSON, including what no honest writer produces (see :class:`Raw`)."""


def json_texts(values: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[bytes]:
    return values.map(lambda v: dump(v).encode())


# -- mutations of a valid JSON document ---------------------------------------------

Path = tuple[Any, ...]


def _children(node: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(node, Pairs):
        yield from enumerate(v for _, v in node.items)
    elif isinstance(node, dict):
        yield from node.items()
    elif isinstance(node, list):
        yield from enumerate(node)


def _paths(node: Any, prefix: Path = ()) -> Iterator[Path]:
    yield prefix
    for key, child in _children(node):
        yield from _paths(child, (*prefix, key))


def _get(node: Any, path: Path) -> Any:
    for key in path:
        node = node.items[key][1] if isinstance(node, Pairs) else node[key]
    return node


def _set(node: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    key, rest = path[0], path[1:]
    if isinstance(node, Pairs):
        items = list(node.items)
        items[key] = (items[key][0], _set(items[key][1], rest, new))
        return Pairs(tuple(items))
    if isinstance(node, dict):
        return {**node, key: _set(node[key], rest, new)}
    copy = list(node)
    copy[key] = _set(copy[key], rest, new)
    return copy


def _mutate_object(draw: st.DrawFn, node: dict[str, Any] | Pairs) -> Any:
    items = list(node.items if isinstance(node, Pairs) else node.items())
    op = draw(st.sampled_from(["delete", "repeat", "repeat-other", "add", "retype"]))
    if not items:
        op = "add"
    if op == "add":
        key = draw(st.one_of(st.text(max_size=10), st.sampled_from([k for k, _ in items] or ["x"])))
        items.insert(draw(st.integers(0, len(items))), (key, draw(json_values)))
        return Pairs(tuple(items))
    at = draw(st.integers(0, len(items) - 1))
    key, value = items[at]
    if op == "delete":
        del items[at]
    elif op == "repeat":
        items.insert(draw(st.integers(0, len(items))), (key, value))
    elif op == "repeat-other":
        items.insert(draw(st.integers(0, len(items))), (key, draw(json_values)))
    else:  # the object as an array of its values, or of its pairs
        return [v for _, v in items] if draw(st.booleans()) else [list(p) for p in items]
    return Pairs(tuple(items))


def _mutate_string(draw: st.DrawFn, text: str) -> Any:
    op = draw(st.sampled_from(["case", "append", "cut", "surrogate", "pad", "number"]))
    if op == "case":
        return text.swapcase()
    if op == "append":
        return text + draw(st.text(st.characters(exclude_categories=()), min_size=1, max_size=3))
    if op == "cut":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if op == "surrogate":
        return Raw(json.dumps(text)[:-1] + '\\udc80"')
    if op == "pad":
        return f" {text}\n"
    return Raw(text) if text.isdigit() else len(text)


@st.composite
def json_mutants(draw: st.DrawFn, document: bytes, *, max_steps: int = 3) -> bytes:
    """``document`` (JSON) with one to ``max_steps`` structural or value mutations."""
    root: Any = json.loads(document)
    new: Any
    for _ in range(draw(st.integers(1, max_steps))):
        paths = list(_paths(root))
        path = draw(st.sampled_from(paths))
        node = _get(root, path)
        kind = draw(st.sampled_from(["replace", "shape", "wrap", "deep"]))
        if kind == "replace":
            new = draw(json_values)
        elif kind == "deep":
            new = draw(st.sampled_from([DEEP_ARRAY, DEEP_OBJECT]))
        elif kind == "wrap":
            new = [node] if draw(st.booleans()) else {"value": node}
        elif isinstance(node, dict | Pairs):
            new = _mutate_object(draw, node)
        elif isinstance(node, list):
            shorten = bool(node) and draw(st.booleans())
            new = node[1:] if shorten else [*node, draw(json_values)]
        elif isinstance(node, str):
            new = _mutate_string(draw, node)
        elif isinstance(node, bool) or node is None:
            new = draw(st.sampled_from([0, 1, "true", "false", "null", [], {}]))
        elif isinstance(node, int | float):
            new = draw(
                st.sampled_from(
                    [str(node), node + 0.5, -node - 1, 2**64, Raw("1e400"), Raw("NaN"), True]
                )
            )
        else:  # Raw: already hostile
            new = draw(json_values)
        root = _set(root, path, new)
    return dump(root).encode()


# -- mutations of bytes ------------------------------------------------------------


@st.composite
def byte_mutants(draw: st.DrawFn, original: bytes, *, max_steps: int = 3) -> bytes:
    """``original`` with bits flipped, bytes inserted, deleted, repeated, or cut off."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, max_steps))):
        op = draw(st.sampled_from(["flip", "flip", "insert", "delete", "repeat", "truncate"]))
        if not data:
            op = "insert"
        if op == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
            continue
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "repeat":
            end = min(len(data), at + draw(st.integers(1, 16)))
            data[end:end] = data[at:end]
        else:
            del data[at:]
    return bytes(data)


def mutants(document: bytes) -> st.SearchStrategy[bytes]:
    """Byte-level or, when ``document`` is JSON, JSON-level mutations of it."""
    try:
        json.loads(document)
    except ValueError:
        return byte_mutants(document)
    return st.one_of(byte_mutants(document), json_mutants(document))


# -- DSSE documents ----------------------------------------------------------------


def dsse_payload(document: bytes) -> bytes:
    """The payload a DSSE document carries (the document is gcx's own, so well formed)."""
    return base64.b64decode(json.loads(document)["payload"])


def dsse_with_payload(document: bytes, payload: bytes) -> bytes:
    """The DSSE document with its payload replaced and the old signature kept."""
    value = json.loads(document)
    value["payload"] = base64.b64encode(payload).decode()
    return json.dumps(value, separators=(",", ":")).encode()
