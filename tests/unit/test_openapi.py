"""Every OpenAPI document gcx serves is valid, describes every route, and names its bodies.

The served documents are found in the source: every route that serves an
``openapi.json`` must have an entry in ``SERVED`` below, so a new one cannot be
added without being validated here. The route tables of the gateway's local
API and of central are read from the source too and compared with their
documents, so a route cannot go undescribed.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

import gcx
import gcx.gateway.server  # imports every module that adds to the local API's document
from gcx.central.compliance_api import PREFIX, ROUTES
from gcx.central.openapi import OPENAPI as CENTRAL_OPENAPI
from gcx.compliance.openapi import openapi_document
from gcx.gateway.app import OPENAPI as GATEWAY_OPENAPI
from gcx.openapi import shared_components
from gcx.reference import REFERENCE_SERVICES, openapi_for

SOURCE = Path(gcx.__file__).parent
METHODS = {"add_get": "GET", "add_post": "POST", "add_put": "PUT", "add_patch": "PATCH"}
METHODS |= {"add_delete": "DELETE"}


def _compliance() -> dict[str, Any]:
    return openapi_document(PREFIX, [(m, p) for m, p, _ in ROUTES])


def _reference() -> list[dict[str, Any]]:
    return [openapi_for(name) for name in REFERENCE_SERVICES]


# (module, route) -> the documents that route serves. The gateway relays what a
# provider published for its service; the reference services are what the demo
# and the tests publish.
SERVED: dict[tuple[str, str], Callable[[], list[dict[str, Any]]]] = {
    ("gateway/app.py", "/api/v1/openapi.json"): lambda: [GATEWAY_OPENAPI],
    ("central/app.py", "/api/v1/openapi.json"): lambda: [CENTRAL_OPENAPI],
    ("central/compliance_api.py", "/openapi.json"): lambda: [_compliance()],
    ("reference/app.py", "/openapi.json"): _reference,
    ("gateway/services/api.py", "/api/v1/services/{provider}/{service}/openapi.json"): _reference,
}
# Documents whose refusals are gcx's own (the reference backends answer in their own format).
GCX_DOCUMENTS = {
    "gateway": GATEWAY_OPENAPI,
    "central": CENTRAL_OPENAPI,
    "compliance": _compliance(),
}


def _routes(relative: str) -> Iterator[tuple[str, str]]:
    """(method, path) of every route a module adds with ``router.add_*`` or lists in a table."""
    tree = ast.parse((SOURCE / relative).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            args = [a.value for a in node.args if isinstance(a, ast.Constant)]
            if node.func.attr in METHODS and args:
                yield METHODS[node.func.attr], str(args[0])
            elif node.func.attr == "add_route" and len(args) >= 2:
                yield str(args[0]), str(args[1])
        elif isinstance(node, ast.Tuple) and len(node.elts) == 3:
            method, path = node.elts[0], node.elts[1]
            if (
                isinstance(method, ast.Constant)
                and isinstance(path, ast.Constant)
                and method.value in METHODS.values()
                and str(path.value).startswith("/")
            ):
                yield str(method.value), str(path.value)


def _documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method != "parameters"
    }


def _local_routes(modules: list[str]) -> set[tuple[str, str]]:
    found = set()
    for module in modules:
        for method, path in _routes(module):
            if path.startswith("/peer/") or method == "*":
                continue  # the peer port is not the local API; "*" is the service call relay
            found.add((method, re.sub(r"{(\w+):[^}]*}", r"{\1}", path)))
    return found


def test_every_served_document_is_listed() -> None:
    """Each route serving an openapi.json in the source has an entry in SERVED."""
    serving = {
        (str(path.relative_to(SOURCE)), route)
        for path in SOURCE.rglob("*.py")
        for _, route in _routes(str(path.relative_to(SOURCE)))
        if route.endswith("openapi.json")
    }
    assert serving == set(SERVED)


@pytest.mark.parametrize("served", list(SERVED), ids=lambda s: f"{s[0]}:{s[1]}")
def test_served_document_is_valid(served: tuple[str, str]) -> None:
    """Every served OpenAPI document passes the reference validator (openapi-spec-validator)."""
    for document in SERVED[served]():
        validate(document)


@pytest.mark.parametrize("name", list(GCX_DOCUMENTS))
def test_gcx_documents_share_the_one_refusal(name: str) -> None:
    """Each gcx document carries the shared refusal, and each operation may answer with it."""
    document = GCX_DOCUMENTS[name]
    for section, entries in shared_components().items():
        for key, value in entries.items():
            assert document["components"][section][key] == value
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            if "default" in responses:
                continue  # the service call relay: the backend's own answer, or a refusal
            assert responses.get("4XX") == {"$ref": "#/components/responses/Refused"}, (
                f"{method.upper()} {path} does not name the shared refusal"
            )


@pytest.mark.parametrize(
    "document",
    [*GCX_DOCUMENTS.values(), *_reference()],
    ids=[*GCX_DOCUMENTS, *REFERENCE_SERVICES],
)
def test_every_body_has_a_schema(document: dict[str, Any]) -> None:
    """Every response with a body, success or error, declares a schema for it."""
    components = document.get("components", {}).get("responses", {})
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert any(status.startswith("2") for status in operation["responses"]) or (
                "default" in operation["responses"]
            ), f"{method.upper()} {path} names no success"
            for status, response in operation["responses"].items():
                if "$ref" in response:
                    response = components[response["$ref"].rsplit("/", 1)[1]]
                for media_type, content in response.get("content", {}).items():
                    if status == "default" and media_type == "*/*":
                        continue  # a relayed answer is whatever the backend sends
                    assert "schema" in content, f"{method.upper()} {path} {status} {media_type}"


def test_gateway_document_describes_every_local_route() -> None:
    """Every route of the gateway's local API appears in its document, and nothing else."""
    routes = _local_routes(
        [
            "gateway/app.py",
            "gateway/messages/api.py",
            "gateway/transfers/api.py",
            "gateway/services/api.py",
        ]
    )
    documented = {
        operation
        for operation in _documented(GATEWAY_OPENAPI)
        if not operation[1].startswith("/services/")
    }
    assert routes == documented


def test_central_document_describes_every_route() -> None:
    """Every route of central's API, outside the Code of Connection API, is in its document."""
    routes = _local_routes(["central/app.py", "central/services_api.py"])
    assert routes == _documented(CENTRAL_OPENAPI)


def test_openapi_documents_the_message_routes() -> None:
    """Every messages route of the local API appears in the description."""
    paths = set(GATEWAY_OPENAPI["paths"])
    for path in (
        "/api/v1/messages",
        "/api/v1/messages/{id}",
        "/api/v1/messages/{id}/status",
        "/api/v1/messages/{id}/attachments/{index}",
        "/api/v1/messages/{id}/recall",
    ):
        assert path in paths
