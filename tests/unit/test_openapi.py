"""The local API's OpenAPI description is valid and names every route the app serves."""

from __future__ import annotations

from openapi_spec_validator import validate

from gcx.gateway.app import OPENAPI


def test_openapi_document_is_valid() -> None:
    """The published OpenAPI 3.1 document passes the reference validator."""
    validate(OPENAPI)


def test_openapi_documents_the_message_routes() -> None:
    """Every messages route of the local API appears in the description."""
    paths = set(OPENAPI["paths"])
    for path in (
        "/api/v1/messages",
        "/api/v1/messages/{id}",
        "/api/v1/messages/{id}/status",
        "/api/v1/messages/{id}/attachments/{index}",
        "/api/v1/messages/{id}/recall",
    ):
        assert path in paths
