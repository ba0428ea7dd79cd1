"""The local API's OpenAPI paths for service access, merged into ``gcx.gateway.app.OPENAPI``."""

from __future__ import annotations

from typing import Any

from gcx.openapi import OBJECT, REFUSALS, json_ok

_NAME = {"type": "string", "pattern": "^[a-z][a-z0-9-]{1,62}$"}


def _param(name: str, schema: dict[str, Any], where: str = "path") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema}


_JSON_BODY = {"content": {"application/json": {"schema": OBJECT}}}
_PROVIDER = _param("provider", {"type": "string"})
_SERVICE = _param("service", _NAME)
_CALL_RESPONSES = {
    "default": {
        "description": (
            "The backend's own answer, signed by the provider and checked by this gateway "
            "(X-Gcx-Call-Id names the call), or a gateway refusal carrying X-Gcx-Error: "
            "service-forbidden 403, service-unknown 404, rate-limited 429 (Retry-After), "
            "backend-unreachable 502, backend-timeout 504, body-too-large 413, "
            "user-required / purpose-required 400, call-response-invalid 502"
        ),
        "content": {"*/*": {}},
    }
}
_CALL_PARAMETERS = [
    _PROVIDER,
    _SERVICE,
    _param("X-Gcx-User", {"type": "string", "maxLength": 200}, "header"),
    _param("X-Gcx-Purpose", {"type": "string", "maxLength": 500}, "header"),
]
_CALL = {
    method: {
        "summary": "Call a service of another organisation through the gateways",
        "parameters": _CALL_PARAMETERS,
        "responses": _CALL_RESPONSES,
    }
    for method in ("get", "post", "put", "patch", "delete")
}

SERVICE_PATHS: dict[str, Any] = {
    "/services/{provider}/{service}/{path}": {
        **_CALL,
        "parameters": [_param("path", {"type": "string"})],
    },
    "/api/v1/services": {
        "get": {
            "summary": "The services this organisation may call, with its access rights",
            "responses": json_ok("services"),
        }
    },
    "/api/v1/services/{provider}/{service}/openapi.json": {
        "get": {
            "summary": "A callable service's OpenAPI description",
            "parameters": [_PROVIDER, _SERVICE],
            "responses": json_ok("the OpenAPI document"),
        }
    },
    "/api/v1/services/calls": {
        "get": {
            "summary": "This organisation's call log (admin or security officer)",
            "parameters": [_param("limit", {"type": "integer", "minimum": 1}, "query")],
            "responses": json_ok("calls, newest first"),
        }
    },
    "/api/v1/services/calls/{id}/evidence": {
        "get": {
            "summary": "Evidence file for a call (gcx.call-evidence/1)",
            "parameters": [_param("id", {"type": "string", "pattern": "^[0-9a-f]{32}$"})],
            "responses": {
                "200": {
                    "description": "verify with 'gcx service verify-evidence'",
                    "content": {"application/vnd.gcx.evidence+json": {"schema": OBJECT}},
                },
                **REFUSALS,
            },
        }
    },
    "/api/v1/services/published": {
        "post": {
            "summary": "Publish or update a service of this organisation (admin)",
            "requestBody": _JSON_BODY,
            "responses": json_ok("published; directory version", status="201"),
        }
    },
    "/api/v1/services/published/{service}/grants": {
        "post": {
            "summary": "Grant an organisation or group:NAME an access right (admin)",
            "parameters": [_SERVICE],
            "requestBody": _JSON_BODY,
            "responses": json_ok("granted; right id", status="201"),
        }
    },
    "/api/v1/services/published/{service}/withdraw": {
        "post": {
            "summary": "Withdraw a published service (admin)",
            "parameters": [_SERVICE],
            "responses": json_ok("withdrawn"),
        }
    },
    "/api/v1/services/grants/{id}/revoke": {
        "post": {
            "summary": "Revoke an access right (admin); refused from the next directory on",
            "parameters": [_param("id", {"type": "string"})],
            "responses": json_ok("revoked"),
        }
    },
    "/api/v1/services/groups": {
        "post": {
            "summary": "Define or replace a named group of organisations (admin)",
            "requestBody": _JSON_BODY,
            "responses": json_ok("defined", status="201"),
        }
    },
}
