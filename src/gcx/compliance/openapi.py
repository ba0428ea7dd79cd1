"""The OpenAPI 3.1 description of central's Code of Connection API.

Built from the route table in :mod:`gcx.central.compliance_api` plus the
facts below, so a route cannot exist without being described: a route with
no entry here fails the unit test that compares the two. Every ``{name}`` in
a path becomes a declared path parameter, and every operation names its
success body and the shared refusal (:mod:`gcx.openapi`).
"""

from __future__ import annotations

import re
from typing import Any

from gcx.openapi import REFUSALS, with_shared_components

_STR = {"type": "string"}
_REASON = {"type": "object", "required": ["reason"], "properties": {"reason": _STR}}

# (method, path) -> (summary, who may call, request body schema or None)
DESCRIPTIONS: dict[tuple[str, str], tuple[str, str, dict[str, Any] | None]] = {
    ("GET", "/openapi.json"): ("This description", "anyone", None),
    ("GET", "/me"): ("Who the token belongs to and its roles", "any account", None),
    ("GET", "/catalogues"): ("Catalogue versions published", "any account", None),
    ("POST", "/catalogues"): (
        "Publish a new catalogue version (YAML body); open statements keep theirs",
        "operator",
        {"type": "string", "description": "gcx.coco-catalogue/1 YAML"},
    ),
    ("GET", "/catalogues/{version}"): (
        "A catalogue's controls with model answers and guidance (?format=oscal for OSCAL)",
        "any account",
        None,
    ),
    ("GET", "/accounts"): ("Compliance accounts", "operator", None),
    ("POST", "/accounts"): (
        "Create an assessor or organisation officer account; the token is shown once",
        "operator",
        {
            "type": "object",
            "required": ["name", "roles"],
            "properties": {
                "name": _STR,
                "roles": {
                    "type": "array",
                    "items": {"enum": ["assessor", "security-officer", "sign-off"]},
                },
                "organisation": _STR,
            },
        },
    ),
    ("POST", "/accounts/{name}/revoke"): ("Revoke an account", "operator", None),
    ("GET", "/statements"): (
        "Statements (?organisation=, ?state=); officers see their own",
        "any account",
        None,
    ),
    ("POST", "/statements"): (
        "Start a statement; a renewal copies last year's answers for re-confirmation",
        "security-officer",
        {"type": "object", "required": ["organisation"], "properties": {"organisation": _STR}},
    ),
    ("GET", "/statements/{id}"): (
        "A statement: answers beside each control's model answer and guidance, evidence, "
        "assessments and history",
        "its organisation's officers, assessors, operators",
        None,
    ),
    ("PUT", "/statements/{id}/answers/{control}"): (
        "Write or re-confirm the answer to one control",
        "security-officer",
        {
            "type": "object",
            "required": ["answer"],
            "properties": {
                "answer": _STR,
                "choice": _STR,
                "plan": _STR,
                "plan_target": {"type": "string", "format": "date"},
            },
        },
    ),
    ("POST", "/statements/{id}/evidence"): (
        "Upload evidence (raw body, Content-Type; ?filename=&controls=A-01,B-02&expires_at=)",
        "security-officer",
        {"type": "string", "format": "binary"},
    ),
    ("GET", "/statements/{id}/export"): (
        "The statement with its assessment as ?format=csv, json or oscal (assessment results)",
        "its organisation's officers, assessors, operators",
        None,
    ),
    ("POST", "/statements/{id}/request-sign-off"): (
        "Ask a senior officer to sign the statement off",
        "security-officer",
        None,
    ),
    ("POST", "/statements/{id}/sign-off"): (
        "Sign off and submit (not by anyone who wrote it)",
        "sign-off",
        None,
    ),
    ("POST", "/statements/{id}/decline-sign-off"): (
        "Send back to draft with a reason",
        "sign-off",
        _REASON,
    ),
    ("POST", "/statements/{id}/abandon"): ("Abandon a draft", "security-officer", _REASON),
    ("POST", "/statements/{id}/assessments"): (
        "Open the assessment of record",
        "assessor",
        None,
    ),
    ("POST", "/statements/{id}/second-assessment"): (
        "Open a second, consistency-only assessment by another assessor",
        "assessor",
        None,
    ),
    ("POST", "/statements/{id}/return"): (
        "Send back with change requests",
        "assessor (under assessment) or operator (assessed)",
        {
            "type": "object",
            "required": ["change_requests"],
            "properties": {
                "change_requests": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"control": _STR, "request": _STR},
                    },
                }
            },
        },
    ),
    ("POST", "/statements/{id}/approve"): (
        "Approve: issue the certificate of compliance (refused unless the verdict meets)",
        "operator",
        {
            "type": "object",
            "required": ["reason"],
            "properties": {"reason": _STR, "valid_for_days": {"type": "number"}},
        },
    ),
    ("POST", "/statements/{id}/reject"): ("Reject with a reason", "operator", _REASON),
    ("GET", "/evidence/{id}"): (
        "An evidence file's content",
        "its organisation's officers, assessors, operators",
        None,
    ),
    ("GET", "/assessments/{id}"): ("An assessment and its results", "as the statement", None),
    ("PUT", "/assessments/{id}/results/{control}"): (
        "Record a result with its reason",
        "the assessment's assessor",
        {
            "type": "object",
            "required": ["result", "reason"],
            "properties": {
                "result": {
                    "enum": [
                        "compliant",
                        "partially-compliant",
                        "non-compliant",
                        "not-applicable",
                    ]
                },
                "reason": _STR,
            },
        },
    ),
    ("POST", "/assessments/{id}/complete"): (
        "Compute the verdict by the versioned rule; an override needs a justification",
        "the assessment's assessor",
        {
            "type": "object",
            "properties": {
                "override_outcome": {"enum": ["meets", "does-not-meet"]},
                "justification": _STR,
            },
        },
    ),
    ("GET", "/organisations/{code}/standing"): (
        "Whether an organisation is approved, extended, in grace, lapsed or withdrawn",
        "its officers, assessors, operators",
        None,
    ),
    ("POST", "/organisations/{code}/withdraw"): (
        "Withdraw the approval now; the organisation leaves the next directory",
        "operator",
        _REASON,
    ),
    ("POST", "/extensions"): (
        "Ask for more time (refused past the network's maximum)",
        "security-officer or sign-off",
        {
            "type": "object",
            "required": ["organisation", "until", "reason"],
            "properties": {"organisation": _STR, "until": _STR, "reason": _STR},
        },
    ),
    ("GET", "/extensions/{id}"): ("An extension request", "as the organisation", None),
    ("POST", "/extensions/{id}/grant"): (
        "Grant, optionally to an earlier date than asked",
        "operator",
        {
            "type": "object",
            "required": ["reason"],
            "properties": {"reason": _STR, "until": _STR},
        },
    ),
    ("POST", "/extensions/{id}/refuse"): ("Refuse with a reason", "operator", _REASON),
    ("GET", "/register"): (
        "Register of extensions and exemptions (enrolment and verdict overrides)",
        "operator, assessor",
        None,
    ),
    ("GET", "/notifications"): (
        "Expiry reminders (60, 30, 7, 1 days) and lapses",
        "any account",
        None,
    ),
    ("GET", "/dashboard"): (
        "Counts: approved, pending, under assessment, extended, lapsed, overrides",
        "operator, assessor",
        None,
    ),
    ("GET", "/report"): ("The network report, ?format=csv or json", "operator, assessor", None),
    ("GET", "/consistency"): (
        "Agreement between assessors: per control, overall, Cohen's kappa",
        "operator, assessor",
        None,
    ),
    ("POST", "/sweep"): ("Record due reminders and lapses now", "operator", None),
    ("POST", "/selfchecks"): (
        "A gateway's DSSE-signed self-check report; attached as evidence",
        "a gateway (signature by the organisation's registered key)",
        {
            "type": "object",
            "description": "DSSE envelope, payloadType application/vnd.gcx.selfcheck+json",
        },
    ),
}


# Operations that answer 201 Created rather than 200.
CREATED = {
    ("POST", "/catalogues"),
    ("POST", "/accounts"),
    ("POST", "/statements"),
    ("POST", "/statements/{id}/evidence"),
    ("POST", "/extensions"),
    ("POST", "/selfchecks"),
}

_FORMAT_CHOICES = {"type": "string", "enum": ["csv", "json", "oscal"]}

# Query parameters an operation reads, by (method, path).
QUERY: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("GET", "/catalogues/{version}"): {"format": {"type": "string", "enum": ["oscal"]}},
    ("GET", "/statements"): {"organisation": _STR, "state": _STR},
    ("GET", "/notifications"): {"organisation": _STR},
    ("POST", "/statements/{id}/evidence"): {
        "filename": _STR,
        "controls": {**_STR, "description": "comma-separated control ids"},
        "expires_at": _STR,
    },
    ("GET", "/statements/{id}/export"): {"format": _FORMAT_CHOICES},
    ("GET", "/report"): {"format": {"type": "string", "enum": ["csv", "json"]}},
}

_BINARY = {"type": "string", "format": "binary"}
_CSV_OR_JSON = {"text/csv": {"schema": _STR}, "application/json": {"schema": {"type": "object"}}}
_CSV_OR_JSON_LIST = {
    "text/csv": {"schema": _STR},
    "application/json": {"schema": {"type": "array"}},
}

# Success bodies that are not a JSON object: exports, reports and evidence files.
CONTENT: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/statements/{id}/export"): _CSV_OR_JSON,
    ("GET", "/report"): _CSV_OR_JSON_LIST,
    ("GET", "/evidence/{id}"): {"*/*": {"schema": _BINARY}},
    ("GET", "/accounts"): {"application/json": {"schema": {"type": "array"}}},
    ("GET", "/catalogues"): {"application/json": {"schema": {"type": "array"}}},
    ("GET", "/statements"): {"application/json": {"schema": {"type": "array"}}},
    ("GET", "/notifications"): {"application/json": {"schema": {"type": "array"}}},
}

_PATH_PARAMETER = re.compile(r"{([a-z_]+)}")


def _parameters(method: str, path: str) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _STR}
        for name in _PATH_PARAMETER.findall(path)
    ]
    parameters += [
        {"name": name, "in": "query", "schema": schema}
        for name, schema in QUERY.get((method, path), {}).items()
    ]
    return parameters


def openapi_document(prefix: str, routes: list[tuple[str, str]]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path in routes:
        summary, who, body = DESCRIPTIONS[(method, path)]
        status = "201" if (method, path) in CREATED else "200"
        content = CONTENT.get((method, path), {"application/json": {"schema": {"type": "object"}}})
        operation: dict[str, Any] = {
            "summary": summary,
            "description": f"Who may call: {who}.",
            "responses": {status: {"description": "done", "content": content}, **REFUSALS},
        }
        parameters = _parameters(method, path)
        if parameters:
            operation["parameters"] = parameters
        if who in ("anyone",) or path == "/selfchecks":
            operation["security"] = []
        if body is not None:
            media = (
                "application/octet-stream"
                if body.get("format") == "binary"
                else "application/yaml"
                if path == "/catalogues"
                else "application/json"
            )
            operation["requestBody"] = {"content": {media: {"schema": body}}}
        paths.setdefault(prefix + path, {})[method.lower()] = operation
    return with_shared_components(
        {
            "openapi": "3.1.0",
            "info": {"title": "gcx central: Code of Connection API", "version": "1"},
            "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
            "security": [{"token": []}],
            "paths": paths,
        }
    )
