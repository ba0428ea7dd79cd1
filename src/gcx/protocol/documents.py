"""Reading signed payloads and files strictly: one meaning for every byte string.

A signed statement is only as good as the agreement of everyone who reads
it. If gcx and a second implementation could parse the same bytes to
different values, a signer could say one thing to one reader and another to
the next. So every payload gcx signs, and every file it reads back, is read
here under rules a second implementation can follow exactly (they are
written down in docs/protocol.md, "Conventions"):

* the JSON is read by :mod:`gcx.protocol.strict_json`: UTF-8, no repeated
  key, no ``NaN`` or ``Infinity``, no lone surrogate, at most 64 levels;
* types are exact: an integer is a JSON integer (never ``true``, ``1.0`` or
  ``"1"``), a string is a JSON string, and nothing is coerced;
* every field the format defines is present, except the few the format
  names as optional, and no other field is;
* a time is ``YYYY-MM-DDTHH:MM:SS``, optionally ``.`` and one to six digits,
  then ``Z`` or an offset ``+HH:MM`` / ``-HH:MM`` (RFC 3339, upper case,
  with seconds), and nothing else: no space for ``T``, no week dates, no
  numbers of seconds.

Pydantic models are read with :func:`load_model`; the few formats written as
dataclasses use :func:`load_object` and the ``field_*`` readers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterator
from typing import Annotated, Any, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator

from gcx.protocol import strict_json

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})$")

M = TypeVar("M", bound=BaseModel)


def parse_time(text: object) -> dt.datetime:
    """A time in the one documented form; raise ``ValueError`` for anything else."""
    if not isinstance(text, str) or not _TIME.match(text):
        raise ValueError(
            "a time must be written YYYY-MM-DDTHH:MM:SS, with up to six fractional digits, "
            "then Z or +HH:MM"
        )
    # fromisoformat checks the ranges (month 13, second 61) the pattern lets by.
    return dt.datetime.fromisoformat(text)


def _time_input(value: object) -> object:
    # Models are also built in code from datetime values; only text, as read
    # from a document, is held to the documented form.
    return value if isinstance(value, dt.datetime) else parse_time(value)


Time = Annotated[AwareDatetime, BeforeValidator(_time_input)]
"""A model field holding a time, read only in the documented form."""


def _key_paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from _key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            yield from _key_paths(item, prefix + "[]")


def key_paths(value: Any) -> set[str]:
    """Every key path in a JSON value, lists written ``[]``: ``parts[].sha256``."""
    return set(_key_paths(value))


def load_model(model: type[M], payload: bytes, *, optional: Collection[str] = ()) -> M:
    """Read ``payload`` as ``model`` under the strict rules above.

    ``optional`` names the key paths the format allows to be absent (they
    then take the model's default); every other field must be written out.
    Raises ``ValueError`` (pydantic's ``ValidationError`` is one) on anything
    else; callers turn it into their own refusal.
    """
    raw = strict_json.loads_object(payload)
    value = model.model_validate_json(payload, strict=True)
    missing = key_paths(value.model_dump(mode="json")) - key_paths(raw) - set(optional)
    if missing:
        raise ValueError(f"the document leaves out {', '.join(sorted(missing))}")
    return value


def load_object(payload: bytes, fields: Collection[str]) -> dict[str, Any]:
    """A JSON object with exactly the keys ``fields``, read strictly."""
    raw = strict_json.loads_object(payload)
    if set(raw) != set(fields):
        raise ValueError("the document's fields are not those of its format")
    return raw


def field_str(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def field_optional_str(raw: dict[str, Any], key: str) -> str | None:
    return None if raw[key] is None else field_str(raw, key)


def field_int(raw: dict[str, Any], key: str) -> int:
    value = raw[key]
    # bool is a subclass of int in Python; true is not an integer in JSON.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} must be an integer")
    return value


def field_time(raw: dict[str, Any], key: str) -> dt.datetime:
    return parse_time(raw[key])


def field_str_list(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = raw[key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{key} must be an array of strings")
    return tuple(value)
