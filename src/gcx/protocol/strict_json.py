"""The one JSON reader for bytes gcx did not write itself.

Python's ``json.loads`` is lenient in ways that matter for a security product:

* a repeated key silently keeps the last value, so a signed header with
  ``"marking"`` twice means one thing to gcx and another to a first-wins
  parser: a parser differential in a signed statement is a forgery waiting
  to happen;
* ``NaN``, ``Infinity`` and ``-Infinity`` are accepted, though they are not
  JSON (RFC 8259) and no other implementation need read them;
* deep nesting raises ``RecursionError``, which escapes every ``except
  ValueError`` and became a 500;
* a lone surrogate escape (``"\\udfff"``) decodes to a ``str`` that cannot be
  encoded as UTF-8 again, so it fails later, far from the input.

:func:`loads` refuses all four, with :class:`~gcx.errors.JsonInvalid` (or
:class:`~gcx.errors.BodyNotUtf8` for surrogates). Both are ``ValueError``
subclasses, so it drops in where ``json.loads`` was used. Every request body,
peer answer, signed payload and file that gcx reads goes through it.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from gcx.errors import BodyNotUtf8, JsonInvalid

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted. gcx's own documents nest
fewer than ten levels; 64 leaves room for back-office payloads of services."""

# A \uD800-\uDFFF escape, the only way a surrogate can appear in parsed JSON
# read from bytes; when the text holds none, the walk for them is skipped.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _no_constants(name: str) -> Any:
    raise JsonInvalid(f"The JSON holds {name}, which is not a JSON number.")


def _finite(text: str) -> float:
    # A number beyond a double's range, such as 1e400, is read as infinity by
    # float(): the back door to the Infinity that parse_constant refuses.
    value = float(text)
    if not math.isfinite(value):
        raise JsonInvalid("The JSON holds a number too large to represent.")
    return value


def _integer(text: str) -> int:
    # int() refuses more than sys.get_int_max_str_digits() digits with a bare
    # ValueError, which is not a JSON syntax error and so escaped as a 500.
    try:
        return int(text)
    except ValueError as exc:
        raise JsonInvalid("The JSON holds a number with too many digits.") from exc


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonInvalid(f"The JSON repeats the key {key!r} in one object.")
            seen.add(key)
    return value


def _check(value: Any, max_depth: int, surrogates_possible: bool) -> None:
    """Refuse nesting deeper than ``max_depth`` and strings with lone surrogates."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > max_depth:
                raise JsonInvalid(f"The JSON is nested more than {max_depth} levels deep.")
            if surrogates_possible:
                for key in item:
                    _text(key)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            if depth > max_depth:
                raise JsonInvalid(f"The JSON is nested more than {max_depth} levels deep.")
            stack.extend((v, depth + 1) for v in item)
        elif surrogates_possible and isinstance(item, str):
            _text(item)


def _text(value: str) -> None:
    if _SURROGATE.search(value):
        raise BodyNotUtf8("The JSON holds a lone surrogate escape, which is not valid UTF-8 text.")


def loads(data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON strictly: UTF-8, unique keys, no NaN or Infinity, bounded depth.

    Raises :class:`~gcx.errors.JsonInvalid` or :class:`~gcx.errors.BodyNotUtf8`
    (both ``ValueError``) with a sentence saying what was wrong.
    """
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BodyNotUtf8("The JSON is not valid UTF-8 text.") from exc
    else:
        text = data
        # A str may already hold raw surrogates, not only escapes of them.
        _text(text)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constants,
            parse_float=_finite,
            parse_int=_integer,
        )
    except RecursionError as exc:
        raise JsonInvalid(f"The JSON is nested more than {max_depth} levels deep.") from exc
    except json.JSONDecodeError as exc:
        raise JsonInvalid(
            f"The JSON is malformed at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from exc
    _check(value, max_depth, surrogates_possible=bool(_SURROGATE_ESCAPE.search(text)))
    return value


def loads_object(data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Parse strictly, as :func:`loads`, and require a JSON object at the top."""
    value = loads(data, max_depth=max_depth)
    if not isinstance(value, dict):
        raise JsonInvalid("The JSON must be an object at the top level.")
    return value
