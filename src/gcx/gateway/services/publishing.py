"""Publishing services and granting access: signed changes an organisation sends to central.

A provider organisation's administrator publishes a service (its backend is
kept on this gateway, its entry goes into the directory), grants and revokes
access rights, and defines groups of consumers. Each change is signed with
the provider organisation's key and handed to central, which checks the
signature and publishes it in the next directory; this gateway never edits
the directory itself.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import sqlalchemy as sa

from gcx import crypto
from gcx.errors import NotFound, PeerUnreachable, RemoteRefusal
from gcx.gateway.home import client_ssl_for_central
from gcx.gateway.runtime import Gateway
from gcx.protocol import strict_json
from gcx.protocol.services import CHANGE_TYPE, ServiceChange, ServiceEntry
from gcx.store import iso
from gcx.store.schema_services import service_backends


async def submit_change(gateway: Gateway, change: ServiceChange) -> dict[str, Any]:
    """Sign a change as its provider organisation and hand it to central."""
    keys = gateway.keys.organisations[change.provider]
    document = crypto.sign_document(
        CHANGE_TYPE, change.to_bytes(), keys.signing, crypto.key_id(keys.signing.public)
    )
    url = gateway.config.central_url.rstrip("/") + "/api/v1/services/changes"
    try:
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=client_ssl_for_central(gateway.config)),
                timeout=aiohttp.ClientTimeout(total=30, connect=10),
            ) as session,
            session.post(
                url, data=document, headers={"Content-Type": "application/json"}
            ) as answer,
        ):
            status, data = answer.status, strict_json.loads_object(await answer.read())
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        raise PeerUnreachable(f"Central could not be reached: {type(exc).__name__}.") from exc
    if status == 404:
        # The administrator named a service or right that does not exist: their
        # mistake, not a failure of central's, so it is a 404 here too.
        raise NotFound(str(data.get("message") or NotFound.default_message))
    if status >= 400:
        raise RemoteRefusal(status, str(data.get("code")), str(data.get("message")))
    return data


def new_change(gateway: Gateway, provider: str, action: str, **fields: Any) -> ServiceChange:
    """A change to sign, with a fresh id and the gateway's time."""
    return ServiceChange(
        id=crypto.random_id(16),
        provider=provider,
        issued_at=gateway.clock.now(),
        action=action,  # type: ignore[arg-type]
        **fields,
    )


def store_backend(gateway: Gateway, entry: ServiceEntry, backend_url: str) -> None:
    """Keep (or replace) the backend that serves ``entry`` on this gateway, and audit it."""
    now = iso(gateway.clock.now())
    key = (service_backends.c.provider == entry.provider) & (service_backends.c.name == entry.name)
    values = {"backend_url": backend_url, "entry": entry.model_dump(mode="json"), "updated_at": now}
    with gateway.db.transaction() as conn:
        if conn.execute(sa.select(service_backends.c.name).where(key)).first():
            conn.execute(service_backends.update().where(key).values(**values))
        else:
            conn.execute(
                service_backends.insert().values(provider=entry.provider, name=entry.name, **values)
            )
    gateway.record(
        actor=f"organisation:{entry.provider}",
        action="service.backend.set",
        subject=f"{entry.provider}/{entry.name}",
        details={"version": entry.version, "logging": entry.logging},
    )
