"""The gateway's local API for its organisations' people and systems.

Authenticated with ``Authorization: Bearer gcxt_…`` tokens made by
``gcx gateway token add``; every use and every refusal is audited.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gcx.errors import Forbidden, InputError
from gcx.gateway.central_witness import central_log_state
from gcx.gateway.peer import GATEWAY, ping
from gcx.gateway.runtime import Gateway
from gcx.gateway.services.openapi import SERVICE_PATHS
from gcx.gateway.tokens import Caller
from gcx.httpapi import bearer_token, error_middleware, json_body, run_sync
from gcx.openapi import OBJECT, REFUSALS, json_ok, with_shared_components


async def caller_of(request: web.Request, *, record_use: bool = True) -> Caller:
    gateway = request.app[GATEWAY]
    token = bearer_token(request)
    if not record_use:
        # A caller looked up moments ago is answered here, without a worker thread.
        known = gateway.tokens.known(token)
        if known is not None:
            return known
    return await run_sync(
        gateway.tokens.authenticate,
        token,
        request=f"{request.method} {request.path}",
        record_use=record_use,
    )


def gateway_status(gateway: Gateway) -> dict[str, Any]:
    directory = gateway.directory.status()
    return {
        "gateway": gateway.config.name,
        "organisations": list(gateway.config.organisations),
        "network": gateway.config.network,
        "exchanging": directory["usable"],
        "directory": directory,
        "central_log": central_log_state(gateway.db),
    }


async def health(request: web.Request) -> web.Response:
    status = gateway_status(request.app[GATEWAY])
    return web.json_response(
        {
            "gateway": status["gateway"],
            "exchanging": status["exchanging"],
            "directory_version": status["directory"]["version"],
        },
        status=200 if status["exchanging"] else 503,
    )


async def status(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    body = gateway_status(request.app[GATEWAY])
    body["caller"] = caller.to_dict()
    return web.json_response(body)


async def post_ping(request: web.Request) -> web.Response:
    caller = await caller_of(request)
    body = await json_body(request)
    to_org = body.get("to")
    if not isinstance(to_org, str) or not to_org:
        raise InputError("The field 'to' (an organisation code) is required.")
    from_org = body.get("from", caller.organisation)
    if from_org != caller.organisation:
        raise Forbidden("You may only ping as your own organisation.")
    result = await ping(request.app[GATEWAY], to_org, from_org=caller.organisation)
    return web.json_response(result.to_dict())


_MESSAGES_PAGE = {
    "type": "object",
    "required": ["messages", "older"],
    "properties": {
        "messages": {"type": "array", "items": OBJECT},
        "older": {"type": ["integer", "null"]},
    },
}
_HEALTH = {
    "schema": {
        "type": "object",
        "required": ["gateway", "exchanging", "directory_version"],
        "properties": {
            "gateway": {"type": "string"},
            "exchanging": {"type": "boolean"},
            "directory_version": {"type": ["integer", "null"]},
        },
    }
}
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "gcx gateway local API", "version": "1"},
    "components": {
        "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        "parameters": {
            "MessageId": {
                "name": "id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            },
        },
        "schemas": {
            "Compose": {
                "type": "object",
                "additionalProperties": False,
                "required": ["to", "subject", "body", "marking"],
                "properties": {
                    "to": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "person@ORG, mailbox@ORG or ORG",
                    },
                    "cc": {"type": "array", "items": {"type": "string"}},
                    "subject": {"type": "string", "maxLength": 255},
                    "body": {"type": "string"},
                    "marking": {
                        "type": "string",
                        "enum": ["OFFICIAL", "OFFICIAL-SENSITIVE", "PROTECT", "RESTRICTED"],
                    },
                    "handling": {"type": "string", "maxLength": 2000},
                    "read_receipt": {"type": "boolean"},
                    "attachments": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "content_base64"],
                            "properties": {
                                "name": {"type": "string"},
                                "media_type": {"type": "string"},
                                "content_base64": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
    "security": [{"token": []}],
    "paths": {
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This description",
                "security": [],
                "responses": json_ok("the OpenAPI 3.1 document"),
            }
        },
        "/api/v1/health": {
            "get": {
                "summary": "Liveness and whether the gateway can exchange",
                "security": [],
                "responses": {
                    "200": {"description": "exchanging", "content": {"application/json": _HEALTH}},
                    "503": {
                        "description": "no usable directory",
                        "content": {"application/json": _HEALTH},
                    },
                    **REFUSALS,
                },
            }
        },
        "/api/v1/status": {
            "get": {
                "summary": "Gateway, directory and caller status",
                "responses": json_ok("status"),
            }
        },
        "/api/v1/messages": {
            "post": {
                "summary": "Send a secure message (202: sealed and queued for delivery)",
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Compose"}},
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "to": {"type": "string"},
                                    "cc": {"type": "string"},
                                    "subject": {"type": "string"},
                                    "body": {"type": "string"},
                                    "marking": {"type": "string"},
                                    "handling": {"type": "string"},
                                    "read_receipt": {"type": "string"},
                                    "attachment": {
                                        "type": "array",
                                        "items": {"type": "string", "format": "binary"},
                                    },
                                },
                            }
                        },
                    }
                },
                "responses": json_ok("queued; Location is the status URL", status="202"),
            },
            "get": {
                "summary": "List the inbox (with shared mailboxes) or sent items",
                "parameters": [
                    {
                        "name": "box",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["inbox", "sent"]},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                    },
                    {
                        "name": "before",
                        "in": "query",
                        "description": "the 'older' value of the previous page",
                        "schema": {"type": "integer", "minimum": 1},
                    },
                ],
                "responses": json_ok(
                    "messages, newest first, and 'older' for the next page", _MESSAGES_PAGE
                ),
            },
        },
        "/api/v1/messages/{id}": {
            "get": {
                "summary": "Read a message (marks it read; may send a read receipt)",
                "parameters": [{"$ref": "#/components/parameters/MessageId"}],
                "responses": json_ok(
                    "the decrypted message; 410 if recalled by the sender before it was read"
                ),
            }
        },
        "/api/v1/messages/{id}/status": {
            "get": {
                "summary": "Delivery state and signed receipts (sender only)",
                "parameters": [{"$ref": "#/components/parameters/MessageId"}],
                "responses": json_ok("state, deliveries, receipts"),
            }
        },
        "/api/v1/messages/{id}/attachments/{index}": {
            "get": {
                "summary": "Download an attachment",
                "parameters": [
                    {"$ref": "#/components/parameters/MessageId"},
                    {
                        "name": "index",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                ],
                "responses": {
                    "200": {"description": "the attachment's bytes", "content": _BYTES},
                    **REFUSALS,
                },
            }
        },
        "/api/v1/messages/{id}/evidence": {
            "get": {
                "summary": "Evidence file proving what was sent and delivered (gcx.evidence/1)",
                "parameters": [{"$ref": "#/components/parameters/MessageId"}],
                "responses": {
                    "200": {
                        "description": "the evidence file; verify with 'gcx evidence verify'",
                        "content": {"application/vnd.gcx.evidence+json": {"schema": OBJECT}},
                    },
                    **REFUSALS,
                },
            }
        },
        "/api/v1/messages/{id}/recall": {
            "post": {
                "summary": "Withdraw a message no recipient has read",
                "parameters": [{"$ref": "#/components/parameters/MessageId"}],
                "responses": json_ok(
                    "recalled everywhere; 409 recall-refused if already read somewhere"
                ),
            }
        },
        "/api/v1/ping": {
            "post": {
                "summary": "Send a signed ping to the gateway hosting an organisation",
                "requestBody": {
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["to"],
                                "properties": {"to": {"type": "string"}},
                            }
                        }
                    }
                },
                "responses": json_ok("the peer's signed answer, checked"),
            }
        },
    },
}


OPENAPI["paths"].update(SERVICE_PATHS)
with_shared_components(OPENAPI)


async def openapi(_: web.Request) -> web.Response:
    return web.json_response(OPENAPI)


def build_local_app(gateway: Gateway) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=1 << 20)
    app[GATEWAY] = gateway
    app.router.add_get("/api/v1/health", health)
    app.router.add_get("/api/v1/status", status)
    app.router.add_post("/api/v1/ping", post_ping)
    app.router.add_get("/api/v1/openapi.json", openapi)
    return app
