"""What every OpenAPI document gcx serves shares: the refusal, defined once.

Every gcx HTTP API refuses with the same body, ``{"code", "message",
"details"?}``, and an ``X-Gcx-Error`` header carrying the code
(:func:`gcx.httpapi.refusal`). Each served document takes that definition from
here through :func:`with_shared_components`, and its operations point at it
with :data:`REFUSED`, so the format is described in one place and a document
cannot describe it differently from the code that sends it.

The helpers for success bodies keep the documents short: most answers are a
JSON object, and :func:`json_ok` names the one status and schema an operation
answers with when it succeeds.
"""

from __future__ import annotations

import copy
from typing import Any

REFUSAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "description": "a stable code a program can match"},
        "message": {"type": "string", "description": "what went wrong and what to do"},
        "details": {"type": "object"},
    },
}

ERROR_HEADER: dict[str, Any] = {
    "description": "the refusal's code, the same as the body's 'code'",
    "required": True,
    "schema": {"type": "string"},
}

REFUSED: dict[str, Any] = {"$ref": "#/components/responses/Refused"}

# A refusal can come with any 4xx status, and with a 5xx one when something this
# service depends on failed (a peer, a backend, the directory); both carry the body.
REFUSALS: dict[str, Any] = {"4XX": REFUSED, "5XX": REFUSED}

OBJECT: dict[str, Any] = {"type": "object"}


def json_ok(
    description: str, schema: dict[str, Any] | None = None, status: str = "200"
) -> dict[str, Any]:
    """The responses of an operation answering JSON on success, and refusals otherwise."""
    return {
        status: {
            "description": description,
            "content": {"application/json": {"schema": schema or OBJECT}},
        },
        **REFUSALS,
    }


def shared_components() -> dict[str, Any]:
    """The components every served document carries: the refusal body, header and response."""
    return {
        "schemas": {"Refusal": copy.deepcopy(REFUSAL_SCHEMA)},
        "headers": {"X-Gcx-Error": copy.deepcopy(ERROR_HEADER)},
        "responses": {
            "Refused": {
                "description": "refused, with a stable code in the body and in X-Gcx-Error",
                "headers": {"X-Gcx-Error": {"$ref": "#/components/headers/X-Gcx-Error"}},
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Refusal"}}
                },
            }
        },
    }


def with_shared_components(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the shared components added to its own (the shared ones win)."""
    components = document.setdefault("components", {})
    for section, entries in shared_components().items():
        components[section] = {**components.get(section, {}), **entries}
    return document
