"""The OpenAPI 3.1 description of central's own API (``/api/v1/openapi.json``).

The Code of Connection API under ``/api/v1/compliance`` has its own document
(:mod:`gcx.compliance.openapi`). A unit test compares this one with the routes
:func:`gcx.central.app.build_app` adds, so a route cannot go undescribed.
"""

from __future__ import annotations

from typing import Any

from gcx.openapi import OBJECT, json_ok, with_shared_components

_STR = {"type": "string"}
_LIST = {"type": "array", "items": OBJECT}
_PUBLIC: list[dict[str, Any]] = []
_REASON: dict[str, Any] = {
    "type": "object",
    "required": ["reason"],
    "properties": {"reason": {"type": "string", "maxLength": 1000}},
}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _STR}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _signed(description: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": OBJECT}},
    }


PATHS: dict[str, Any] = {
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This description",
            "security": _PUBLIC,
            "responses": json_ok("the OpenAPI 3.1 document"),
        }
    },
    "/api/v1/health": {
        "get": {
            "summary": "Liveness and the network's name",
            "security": _PUBLIC,
            "responses": json_ok("up"),
        }
    },
    "/api/v1/directory": {
        "get": {
            "summary": "The latest signed directory (DSSE, verify with the network anchor)",
            "security": _PUBLIC,
            "responses": json_ok("the signed directory"),
        }
    },
    "/api/v1/enrolments": {
        "post": {
            "summary": "Ask for a gateway's certificates (CSR, peer address, organisation keys)",
            "security": _PUBLIC,
            "requestBody": _json(
                {
                    "type": "object",
                    "required": ["csr", "peer_address", "organisation_keys"],
                    "properties": {
                        "csr": _STR,
                        "peer_address": {"type": "string", "maxLength": 300},
                        "organisation_keys": OBJECT,
                    },
                }
            ),
            "responses": json_ok("submitted; ask its status by id", status="202"),
        },
        "get": {
            "summary": "Enrolment requests (operator)",
            "parameters": [{"name": "state", "in": "query", "schema": _STR}],
            "responses": json_ok("enrolments", _LIST),
        },
    },
    "/api/v1/enrolments/{id}": {
        "get": {
            "summary": "An enrolment's state, and its certificates once approved",
            "security": _PUBLIC,
            "parameters": [_path("id")],
            "responses": json_ok("the enrolment"),
        }
    },
    "/api/v1/enrolments/{id}/approve": {
        "post": {
            "summary": "Approve an enrolment (operator); an override of the Code of Connection "
            "gate needs its own reason",
            "parameters": [_path("id")],
            "requestBody": _json(
                {
                    **_REASON,
                    "properties": {
                        **_REASON["properties"],
                        "override": {"type": "boolean"},
                        "override_reason": {"type": ["string", "null"]},
                    },
                }
            ),
            "responses": json_ok("approved; certificates issued"),
        }
    },
    "/api/v1/enrolments/{id}/reject": {
        "post": {
            "summary": "Reject an enrolment (operator)",
            "parameters": [_path("id")],
            "requestBody": _json(_REASON),
            "responses": json_ok("rejected"),
        }
    },
    "/api/v1/gateways/{name}/revoke": {
        "post": {
            "summary": "Revoke a gateway's certificates from the next directory on (operator)",
            "parameters": [_path("name")],
            "requestBody": _json(_REASON),
            "responses": json_ok("revoked"),
        }
    },
    "/api/v1/organisations": {
        "post": {
            "summary": "Register an organisation (operator)",
            "requestBody": _json(
                {
                    "type": "object",
                    "required": ["code", "name", "type"],
                    "properties": {
                        "code": {"type": "string", "maxLength": 16},
                        "name": {"type": "string", "maxLength": 200},
                        "type": {"type": "string", "maxLength": 32},
                        "contacts": _LIST,
                    },
                }
            ),
            "responses": json_ok("registered", status="201"),
        },
        "get": {
            "summary": "The registered organisations (operator)",
            "responses": json_ok("organisations", _LIST),
        },
    },
    "/api/v1/audit/verify": {
        "get": {
            "summary": "Verify central's audit log (operator)",
            "responses": json_ok("the verification report"),
        }
    },
    "/api/v1/audit/checkpoint": {
        "get": {
            "summary": "Central's signed audit head, with a consistency proof from ?since",
            "security": _PUBLIC,
            "parameters": [
                {"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0}}
            ],
            "responses": json_ok("the signed head"),
        }
    },
    "/api/v1/services/changes": {
        "post": {
            "summary": "A provider's signed change to its services (no token: the signature "
            "by the organisation's certified key is the authority)",
            "security": _PUBLIC,
            "requestBody": _signed("DSSE envelope of a gcx service change"),
            "responses": json_ok("applied; the directory version carrying it", status="201"),
        }
    },
    "/api/v1/services": {
        "get": {
            "summary": "Everything published and granted, revoked rights included (operator)",
            "responses": json_ok("services and rights"),
        }
    },
    "/api/v1/checkpoints/{gateway}": {
        "get": {
            "summary": "The latest audit checkpoint a gateway lodged",
            "security": _PUBLIC,
            "parameters": [_path("gateway")],
            "responses": json_ok("the checkpoint"),
        }
    },
    "/api/v1/checkpoints": {
        "post": {
            "summary": "Lodge a gateway's signed audit checkpoint (signed by the gateway)",
            "security": _PUBLIC,
            "requestBody": _signed("DSSE envelope of a gcx checkpoint"),
            "responses": json_ok("witnessed", status="201"),
        }
    },
    "/api/v1/flags": {
        "get": {
            "summary": "Gateways whose audit logs stopped extending (operator)",
            "responses": json_ok("flags", _LIST),
        }
    },
}


OPENAPI: dict[str, Any] = with_shared_components(
    {
        "openapi": "3.1.0",
        "info": {"title": "gcx central API", "version": "1"},
        "components": {"securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
        "paths": PATHS,
    }
)
