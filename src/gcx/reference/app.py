"""The reference backends as small aiohttp applications, with their OpenAPI descriptions."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gcx import listeners
from gcx.protocol import strict_json
from gcx.reference._data import (
    LABEL,
    fsm_eligible,
    nino_is_valid,
    normalise_nino,
    person,
    sample_ninos,
    vehicle,
)

_HEADERS = {"X-Synthetic-Data": "true"}


def _answer(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps({"data_label": LABEL, **body}, separators=(",", ":")),
        status=status,
        content_type="application/json",
        headers=_HEADERS,
    )


async def customer(request: web.Request) -> web.Response:
    nino = normalise_nino(request.match_info["nino"])
    if not nino_is_valid(nino):
        return _answer({"error": "not a valid National Insurance number format"}, 400)
    record = person(nino)
    if record is None:
        return _answer({"error": "no customer record for that number", "nino": nino}, 404)
    return _answer({"customer": record})


async def samples(request: web.Request) -> web.Response:
    text = request.query.get("count", "10") or "10"
    if not (text.isascii() and text.isdigit()) or len(text) > 6:
        return _answer({"error": "count must be a whole number from 1 to 100"}, 400)
    return _answer({"ninos": sample_ninos(max(1, min(100, int(text))))})


async def eligibility(request: web.Request) -> web.Response:
    try:
        body = strict_json.loads(await request.read())
        nino = normalise_nino(str(body["nino"]))
    except (ValueError, KeyError, TypeError):
        return _answer({"error": "send a JSON object with 'nino'"}, 400)
    if not nino_is_valid(nino):
        return _answer({"error": "not a valid National Insurance number format"}, 400)
    eligible = fsm_eligible(nino)
    if eligible is None:
        return _answer({"nino": nino, "eligible": False, "reason": "no matching record"})
    return _answer({"nino": nino, "eligible": eligible})


async def keeper(request: web.Request) -> web.Response:
    record = vehicle(request.match_info["vrm"])
    if record is None:
        return _answer({"error": "no vehicle with that registration mark"}, 404)
    return _answer({"vehicle": record})


def openapi_for(name: str) -> dict[str, Any]:
    """The OpenAPI 3.1 description a provider publishes for a reference service."""

    def synthetic(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
        body = {
            "type": "object",
            "required": ["data_label"],
            "properties": {"data_label": {"const": LABEL}, **(schema or {})},
        }
        return {
            "description": f"{description} (SYNTHETIC data: every body has data_label SYNTHETIC)",
            "headers": {"X-Synthetic-Data": {"schema": {"const": "true"}}},
            "content": {"application/json": {"schema": body}},
        }

    refused = synthetic("refused", {"error": {"type": "string"}})
    docs: dict[str, dict[str, Any]] = {
        "dwp-cis": {
            "info": {"title": "DWP Customer Information (reference, SYNTHETIC)", "version": "1"},
            "paths": {
                "/customers/{nino}": {
                    "get": {
                        "summary": "Look up a customer by National Insurance number",
                        "parameters": [
                            {
                                "name": "nino",
                                "in": "path",
                                "required": True,
                                "schema": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{6}[A-D]$"},
                            }
                        ],
                        "responses": {
                            "200": synthetic("the customer", {"customer": {"type": "object"}}),
                            "400": refused,
                            "404": refused,
                        },
                    }
                },
                "/samples": {
                    "get": {
                        "summary": "Synthetic numbers to try",
                        "parameters": [
                            {
                                "name": "count",
                                "in": "query",
                                "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                            }
                        ],
                        "responses": {
                            "200": synthetic(
                                "numbers", {"ninos": {"type": "array", "items": {"type": "string"}}}
                            ),
                            "400": refused,
                        },
                    }
                },
            },
        },
        "fsm": {
            "info": {
                "title": "Free school meals eligibility (reference, SYNTHETIC)",
                "version": "1",
            },
            "paths": {
                "/eligibility-checks": {
                    "post": {
                        "summary": "Check a parent's eligibility by National Insurance number",
                        "requestBody": {
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["nino"],
                                        "properties": {"nino": {"type": "string"}},
                                    }
                                }
                            }
                        },
                        "responses": {
                            "200": synthetic(
                                "the answer",
                                {"nino": {"type": "string"}, "eligible": {"type": "boolean"}},
                            ),
                            "400": refused,
                        },
                    }
                }
            },
        },
        "dvla": {
            "info": {"title": "Vehicle keeper enquiry (reference, SYNTHETIC)", "version": "1"},
            "paths": {
                "/vehicles/{vrm}": {
                    "get": {
                        "summary": "Look up the registered keeper of a vehicle",
                        "parameters": [
                            {
                                "name": "vrm",
                                "in": "path",
                                "required": True,
                                "schema": {"type": "string"},
                            }
                        ],
                        "responses": {
                            "200": synthetic("the vehicle", {"vehicle": {"type": "object"}}),
                            "404": refused,
                        },
                    }
                }
            },
        },
    }
    return {"openapi": "3.1.0", **docs[name]}


def build_app(name: str) -> web.Application:
    app = web.Application()

    async def describe(_: web.Request) -> web.Response:
        return web.json_response(openapi_for(name), headers=_HEADERS)

    app.router.add_get("/openapi.json", describe)
    if name == "dwp-cis":
        app.router.add_get("/customers/{nino}", customer)
        app.router.add_get("/samples", samples)
    elif name == "fsm":
        app.router.add_post("/eligibility-checks", eligibility)
    elif name == "dvla":
        app.router.add_get("/vehicles/{vrm}", keeper)
    else:
        raise ValueError(f"unknown reference service {name!r}")
    return app


def serve(name: str, host: str, port: int) -> None:
    """Serve until interrupted, on the socket a parent handed down if it did (gcx.listeners)."""
    sock = listeners.inherited("http", port)
    if sock is not None:
        web.run_app(build_app(name), sock=sock, print=None, access_log=None)
    else:
        web.run_app(build_app(name), host=host, port=port, print=None, access_log=None)
