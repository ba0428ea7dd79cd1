"""Central's side of service access: apply providers' signed changes, build directory sections.

A provider organisation's gateway signs each change (publish, withdraw,
grant, revoke, group) with the organisation's key; central checks it against
the key it certified when the gateway was admitted, keeps the document as
sent (the operator's record, and the replay guard), applies it, audits it and
publishes a new directory, all in one transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gcx import audit, crypto
from gcx.central.ports import CentralParts
from gcx.errors import (
    BodyNotUtf8,
    ChangeReplayed,
    CryptoError,
    Forbidden,
    InputError,
    JsonInvalid,
    NotFound,
)
from gcx.protocol import strict_json
from gcx.protocol.enrolment import EnrolmentState
from gcx.protocol.services import (
    CHANGE_TYPE,
    AccessRight,
    ServiceChange,
    ServiceEntry,
    ServiceGroup,
    check_change,
)
from gcx.store import iso
from gcx.store.schema import enrolments
from gcx.store.schema_services import (
    service_changes,
    service_definitions,
    service_groups,
    service_rights,
)


def _unverified_provider(document: bytes) -> str:
    try:
        payload = strict_json.loads(base64.b64decode(strict_json.loads(document)["payload"]))
        return str(payload["provider"])
    except (JsonInvalid, BodyNotUtf8):
        raise  # refused as what they are: the JSON itself is bad
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            "The service change is not a signed gcx.service-change/1 document."
        ) from exc


def _provider_key(conn: Connection, provider: str) -> crypto.VerifyKey:
    rows = conn.execute(
        sa.select(enrolments.c.organisations, enrolments.c.organisation_keys).where(
            enrolments.c.state == EnrolmentState.ACTIVE.value
        )
    ).all()
    for row in rows:
        if provider in row.organisations:
            return crypto.VerifyKey.from_b64(row.organisation_keys[provider]["signing_key"])
    raise Forbidden(
        f"{provider[:16]} has no admitted gateway, so it cannot publish or grant services."
    )


def apply_change(central: CentralParts, document: bytes) -> dict[str, Any]:
    """Verify a provider's signed change, apply it and publish the next directory."""
    provider = _unverified_provider(document)
    now = central.clock.now()
    with central.db.transaction() as conn:
        key = _provider_key(conn, provider)
        try:
            payload = crypto.verify_document(document, CHANGE_TYPE, {crypto.key_id(key): key})
        except CryptoError as exc:
            raise Forbidden(
                f"The service change does not verify against {provider[:16]}'s signing key."
            ) from exc
        change = ServiceChange.from_bytes(payload)
        check_change(change, now=now)
        if conn.execute(
            sa.select(service_changes.c.id).where(service_changes.c.id == change.id)
        ).first():
            raise ChangeReplayed()
        conn.execute(
            service_changes.insert().values(
                id=change.id,
                provider=provider,
                action=change.action,
                document=document,
                received_at=iso(now),
            )
        )
        subject, details = _apply(conn, change, now)
        audit.append(
            conn,
            actor=f"organisation:{provider}",
            action=f"service.{change.action}",
            subject=subject,
            now=now,
            details={"change": change.id, **details},
        )
        version = central.publish_in(conn, now, reason=f"service {change.action}: {subject}")
    return {"change": change.id, "action": change.action, "subject": subject, "directory": version}


def _apply(conn: Connection, change: ServiceChange, now: dt.datetime) -> tuple[str, dict[str, Any]]:
    provider = change.provider
    if change.action == "publish" and change.service is not None:
        entry = change.service.model_copy(update={"updated_at": now})
        key = (service_definitions.c.provider == provider) & (
            service_definitions.c.name == entry.name
        )
        values = {"entry": entry.model_dump(mode="json"), "updated_at": iso(now)}
        if conn.execute(sa.select(service_definitions.c.name).where(key)).first():
            conn.execute(
                service_definitions.update().where(key).values(withdrawn_at=None, **values)
            )
        else:
            conn.execute(
                service_definitions.insert().values(provider=provider, name=entry.name, **values)
            )
        return f"{provider}/{entry.name}", {"version": entry.version}
    if change.action == "withdraw" and change.service_name is not None:
        updated = conn.execute(
            service_definitions.update()
            .where(
                service_definitions.c.provider == provider,
                service_definitions.c.name == change.service_name,
                service_definitions.c.withdrawn_at.is_(None),
            )
            .values(withdrawn_at=iso(now))
        ).rowcount
        if not updated:
            raise NotFound(f"{provider} has no published service {change.service_name!r}.")
        return f"{provider}/{change.service_name}", {}
    if change.action == "grant" and change.right is not None:
        right = change.right
        if not conn.execute(
            sa.select(service_definitions.c.name).where(
                service_definitions.c.provider == provider,
                service_definitions.c.name == right.service,
                service_definitions.c.withdrawn_at.is_(None),
            )
        ).first():
            raise NotFound(f"{provider} has no published service {right.service!r} to grant.")
        if conn.execute(
            sa.select(service_rights.c.id).where(service_rights.c.id == right.id)
        ).first():
            raise ChangeReplayed(f"An access right with id {right.id} already exists.")
        conn.execute(
            service_rights.insert().values(
                id=right.id,
                provider=provider,
                service=right.service,
                entry=right.model_dump(mode="json"),
                granted_at=iso(right.granted_at),
            )
        )
        return f"{provider}/{right.service}", {
            "right": right.id,
            "grantee": right.grantee,
            "methods": list(right.methods),
            "paths": list(right.paths),
        }
    if change.action == "revoke" and change.right_id is not None:
        updated = conn.execute(
            service_rights.update()
            .where(
                service_rights.c.id == change.right_id,
                service_rights.c.provider == provider,
                service_rights.c.revoked_at.is_(None),
            )
            .values(revoked_at=iso(now))
        ).rowcount
        if not updated:
            raise NotFound(f"{provider} holds no active access right {change.right_id!r}.")
        return change.right_id, {}
    if change.action == "group" and change.group is not None:
        group = change.group
        key = (service_groups.c.provider == provider) & (service_groups.c.name == group.name)
        values = {"entry": group.model_dump(mode="json"), "updated_at": iso(now)}
        if conn.execute(sa.select(service_groups.c.name).where(key)).first():
            conn.execute(service_groups.update().where(key).values(**values))
        else:
            conn.execute(
                service_groups.insert().values(provider=provider, name=group.name, **values)
            )
        return f"{provider}/group:{group.name}", {"members": list(group.members)}
    raise InputError(f"The {change.action!r} change is missing what it changes.")


def directory_sections(conn: Connection, hosted: set[str]) -> dict[str, Any]:
    """Services, rights and groups for the next directory.

    Only providers with a gateway in the directory are listed: a provider
    whose admission lapsed offers nothing, and its rights go with it.
    """
    services = [
        ServiceEntry.model_validate(r.entry)
        for r in conn.execute(
            sa.select(service_definitions.c.entry)
            .where(service_definitions.c.withdrawn_at.is_(None))
            .order_by(service_definitions.c.provider, service_definitions.c.name)
        )
    ]
    services = [s for s in services if s.provider in hosted]
    offered = {(s.provider, s.name) for s in services}
    rights = [
        AccessRight.model_validate(r.entry)
        for r in conn.execute(
            sa.select(service_rights.c.entry)
            .where(service_rights.c.revoked_at.is_(None))
            .order_by(service_rights.c.granted_at, service_rights.c.id)
        )
    ]
    groups = [
        ServiceGroup.model_validate(r.entry)
        for r in conn.execute(
            sa.select(service_groups.c.entry).order_by(
                service_groups.c.provider, service_groups.c.name
            )
        )
    ]
    return {
        "services": tuple(services),
        "service_rights": tuple(r for r in rights if (r.provider, r.service) in offered),
        "service_groups": tuple(g for g in groups if g.provider in hosted),
    }


def operator_view(central: CentralParts) -> dict[str, Any]:
    """Everything published and granted, including withdrawn services and revoked rights."""
    with central.db.read() as conn:
        services = [
            {**dict(r.entry), "withdrawn_at": r.withdrawn_at}
            for r in conn.execute(
                sa.select(service_definitions).order_by(
                    service_definitions.c.provider, service_definitions.c.name
                )
            )
        ]
        rights = [
            {**dict(r.entry), "revoked_at": r.revoked_at}
            for r in conn.execute(sa.select(service_rights).order_by(service_rights.c.granted_at))
        ]
        groups = [
            dict(r.entry)
            for r in conn.execute(sa.select(service_groups).order_by(service_groups.c.name))
        ]
        changes = [
            {"id": r.id, "provider": r.provider, "action": r.action, "received_at": r.received_at}
            for r in conn.execute(
                sa.select(
                    service_changes.c.id,
                    service_changes.c.provider,
                    service_changes.c.action,
                    service_changes.c.received_at,
                ).order_by(service_changes.c.received_at)
            )
        ]
    return {"services": services, "rights": rights, "groups": groups, "changes": changes}
