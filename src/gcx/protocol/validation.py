"""Strict request models, and the one translation of a pydantic refusal into ours.

A request body is read by :mod:`gcx.protocol.strict_json` and then checked
against a :class:`StrictModel`: no coercion (``"false"`` is not a boolean,
``5`` is not text, ``null`` is not a string), and no field the endpoint does
not know, so a misspelt ``read_reciept`` is refused instead of ignored.

pydantic's own messages name its internals ("1 validation error for
ServiceEntry", "Input should be a valid string [type=string_type, ...]"), so
they never reach a person: :func:`refusal` turns the first problem into a
sentence of ours naming the field, and puts the field's path in the details
for a program to match.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from gcx.errors import InputError

M = TypeVar("M", bound=BaseModel)

# What a field must be, for each kind of type problem pydantic reports.
_EXPECTED = {
    "string_type": "text",
    "bool_type": "true or false",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "none_required": "null",
}


class StrictModel(BaseModel):
    """A request body's shape: exact types, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def field_path(location: tuple[int | str, ...]) -> str:
    """``("attachments", 0, "name")`` as ``attachments[0].name``."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "body"


def _sentence(error: Any) -> str:
    """One sentence for one pydantic error, in our words only."""
    where = field_path(tuple(error.get("loc", ())))
    kind = str(error.get("type", ""))
    context = error.get("ctx") or {}
    if kind == "missing":
        return f"The field {where!r} is required."
    if kind == "extra_forbidden":
        return f"The field {where!r} is not one this request accepts."
    if kind in _EXPECTED:
        return f"The field {where!r} must be {_EXPECTED[kind]}."
    if kind in ("string_too_short", "too_short"):
        return f"The field {where!r} must have at least {context.get('min_length')} characters."
    if kind == "string_too_long":
        return f"The field {where!r} must be at most {context.get('max_length')} characters."
    if kind == "too_long":
        return f"The field {where!r} must have at most {context.get('max_length')} items."
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"The field {where!r} is out of range."
    if kind == "literal_error":
        return f"The field {where!r} must be one of {context.get('expected')}."
    if kind in ("value_error", "assertion_error") and isinstance(context.get("error"), Exception):
        # Raised by our own validators, whose messages are sentences meant for people.
        reason = str(context["error"]).rstrip(".")
        return f"The field {where!r} is not valid: {reason}."
    return f"The field {where!r} is not valid."


def refusal(
    exc: ValidationError, error: type[InputError] = InputError, *, prefix: str = ""
) -> InputError:
    """The refusal to raise for ``exc``: a sentence naming the first wrong field."""
    problems = exc.errors(include_url=False, include_input=False)
    if not problems:
        return error(prefix + "The request is not valid.")
    first = problems[0]
    return error(prefix + _sentence(first), field=field_path(tuple(first["loc"])))


def validated(model: type[M], value: Any, error: type[InputError] = InputError) -> M:
    """``value`` as ``model``, or ``error`` naming the first wrong field."""
    try:
        return model.model_validate(value, strict=True)
    except ValidationError as exc:
        raise refusal(exc, error) from exc
