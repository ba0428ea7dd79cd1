"""Exporting evidence from a gateway: gather the stored rows, build, check, audit.

This is gateway code: it reads the gateway's database, blobs and keys. The
formats and their offline verifiers are :mod:`gcx.evidence`, which reads
nothing but the bytes it is given, so a third party can check a file with no
gateway at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from gcx import audit, crypto
from gcx.errors import InputError, MessageNotYours, MessageRecalled, NotFound
from gcx.evidence import (
    EvidenceInvalid,
    EvidenceUnavailable,
    HeldReceipt,
    ReceiptKind,
    build_call_evidence,
    build_evidence,
    verify_call_evidence,
    verify_evidence,
)
from gcx.gateway.messages.envelopes import load_envelope, stored_digest
from gcx.protocol import directory as dirproto
from gcx.store.schema import directory_archive, held_directory, receipts
from gcx.store.schema_services import service_calls

if TYPE_CHECKING:
    from gcx.gateway.messages.messaging import Messaging
    from gcx.gateway.runtime import Gateway
    from gcx.gateway.tokens import Caller

# Which stored receipts go into the file, by the direction of the copy held:
# the sender keeps the delivery receipts it was given and any read receipts;
# a receiving gateway keeps the receipts it issued (the same signed documents).
_RECEIPT_KINDS: dict[str, dict[str, ReceiptKind]] = {
    "out": {"delivery": "delivery", "read": "read"},
    "in": {"issued": "delivery", "read": "read"},
}


def _directory_document(conn: sa.Connection, version: int) -> bytes | None:
    archived = conn.execute(
        sa.select(directory_archive.c.document).where(directory_archive.c.version == version)
    ).scalar()
    if archived is not None:
        return bytes(archived)
    # Envelopes stored before the archive existed can still be proven while
    # the directory they used is the one held.
    held = conn.execute(
        sa.select(held_directory.c.document).where(
            held_directory.c.id == 1, held_directory.c.version == version
        )
    ).scalar()
    return None if held is None else bytes(held)


def _organisation_certificate(gateway: Gateway, directory: dirproto.Directory, code: str) -> bytes:
    entry = directory.organisation(code)
    if entry is not None and entry.signing_certificate:
        return entry.signing_certificate.encode()
    path = gateway.config.home / "orgs" / code / "signing.pem"
    if code in gateway.config.organisations and path.exists():
        return path.read_bytes()
    raise EvidenceUnavailable(
        f"Directory version {directory.version} holds no signing certificate for {code}, and "
        "this gateway does not host it."
    )


def export_message_evidence(
    gateway: Gateway, envelope_id: str, *, direction: str | None = None, actor: str
) -> bytes:
    """The evidence file for an envelope held on this gateway, checked before it is returned.

    ``direction`` picks the copy: ``"out"`` (as sent, with the receipts the
    sender holds) or ``"in"`` (as received, with the receipts issued here);
    by default the sent copy if there is one. The export is audited.
    """
    with gateway.db.transaction() as conn:
        if direction is None:
            direction = "out" if stored_digest(conn, envelope_id, "out") is not None else "in"
        if direction not in _RECEIPT_KINDS:
            raise InputError("The copy to export must be 'out' (as sent) or 'in' (as received).")
        stored = load_envelope(conn, gateway.blobs, envelope_id, direction)
        kinds = _RECEIPT_KINDS[direction]
        rows = conn.execute(
            sa.select(receipts.c.organisation, receipts.c.kind, receipts.c.document)
            .where(receipts.c.subject_id == envelope_id, receipts.c.kind.in_(list(kinds)))
            .order_by(receipts.c.id)
        ).all()
        directory_document = _directory_document(conn, stored.directory_version)
    done = "sent" if direction == "out" else "received"
    if directory_document is None:
        raise EvidenceUnavailable(
            f"Directory version {stored.directory_version}, in force when envelope "
            f"{envelope_id} was {done}, is not archived on this gateway, so its evidence cannot "
            "be assembled."
        )
    root = gateway.keys.anchor.public_key()
    directory = dirproto.Directory.from_bytes(
        crypto.verify_document(
            directory_document, dirproto.PAYLOAD_TYPE, {crypto.key_id(root): root}
        )
    )
    held = [HeldReceipt(kinds[r.kind], r.organisation, bytes(r.document)) for r in rows]
    codes = sorted({stored.header.sender.organisation} | {r.organisation for r in held})
    data = build_evidence(
        signed_header=stored.signed_header,
        parts=stored.parts,
        held_receipts=held,
        anchor_pem=gateway.keys.anchor.pem,
        certificates={code: _organisation_certificate(gateway, directory, code) for code in codes},
        directory_version=stored.directory_version,
        directory_document=directory_document,
    )
    # Never hand out a file that does not verify: if stored data were
    # inconsistent, this says so here rather than in a third party's hands.
    try:
        verify_evidence(data, anchor=gateway.keys.anchor)
    except EvidenceInvalid as error:
        raise EvidenceUnavailable(
            f"The evidence assembled for envelope {envelope_id} does not verify "
            f"({error.check}, {error.subject}): {error.message}"
        ) from error
    gateway.record(
        actor=actor,
        action="evidence.exported",
        subject=envelope_id,
        details={
            "copy": done,
            "digest": stored.digest,
            "directory_version": stored.directory_version,
            "receipts": [f"{r.kind}:{r.organisation}" for r in held],
        },
    )
    return data


def export_for_caller(messaging: Messaging, caller: Caller, envelope_id: str) -> bytes:
    """Evidence for a person of the local API: its sender, or a person it was addressed to.

    The copy is the one the caller may read (their sent item, or the inbox
    copy addressed to them or to a mailbox they belong to), with the same
    rule as reading the message; a refusal is audited.
    """
    gateway = messaging.gateway
    with audit.refusals_recorded(gateway.db, gateway.clock), gateway.db.transaction() as conn:
        try:
            direction, items = messaging.readable_copy(conn, caller, envelope_id)
            # Once recalled, the recipient no longer holds the message, as
            # reading it says; its evidence goes with it. The sender's copy
            # (and the gateway's administrator, from the command line) keep it.
            if direction == "in" and all(i.recalled_at for i in items):
                raise MessageRecalled("The sender recalled this message, so it is no longer yours.")
        except (MessageNotYours, MessageRecalled) as error:
            raise audit.AuditedRefusal(
                error, actor=caller.actor, action="evidence.refused", subject=envelope_id[:40]
            ) from None
    return export_message_evidence(gateway, envelope_id, direction=direction, actor=caller.actor)


# -- service calls --------------------------------------------------------------


def holds_call(gateway: Gateway, call_id: str) -> bool:
    with gateway.db.read() as conn:
        return (
            conn.execute(sa.select(service_calls.c.id).where(service_calls.c.id == call_id)).first()
            is not None
        )


def export_call_evidence(
    gateway: Gateway,
    call_id: str,
    *,
    actor: str,
    organisation: str | None = None,
    side: str | None = None,
) -> bytes:
    """The evidence file for an answered call logged here, checked before it is returned."""
    with gateway.db.read() as conn:
        query = sa.select(service_calls).where(
            service_calls.c.id == call_id, service_calls.c.response_document.is_not(None)
        )
        if side is not None:
            query = query.where(service_calls.c.side == side)
        rows = conn.execute(query.order_by(service_calls.c.side)).all()
        if organisation is not None:
            rows = [
                r
                for r in rows
                if (r.side == "consumer" and r.consumer == organisation)
                or (r.side == "provider" and r.provider == organisation)
            ]
        if not rows:
            raise NotFound(f"No answered call {call_id[:40]!r} is logged here for you.")
        row = rows[0]
        version = int(row.directory_version)
        document = conn.execute(
            sa.select(directory_archive.c.document).where(directory_archive.c.version == version)
        ).scalar()
        if document is None:
            document = conn.execute(
                sa.select(held_directory.c.document).where(held_directory.c.version == version)
            ).scalar()
    if document is None:
        raise EvidenceUnavailable(f"Directory version {version} is not archived on this gateway.")
    root = gateway.keys.anchor.public_key()
    directory = dirproto.Directory.from_bytes(
        crypto.verify_document(bytes(document), dirproto.PAYLOAD_TYPE, {crypto.key_id(root): root})
    )
    certificates = {}
    for code in {row.consumer, row.provider}:
        entry = directory.organisation(code)
        if entry is None or not entry.signing_certificate:
            raise EvidenceUnavailable(
                f"Directory version {version} holds no certificate for {code}."
            )
        certificates[code] = entry.signing_certificate.encode()
    data = build_call_evidence(
        call_id=call_id,
        side=row.side,
        request_document=bytes(row.request_document),
        response_document=bytes(row.response_document),
        anchor_pem=gateway.keys.anchor.pem,
        certificates=certificates,
        directory_version=version,
        directory_document=bytes(document),
    )
    try:
        verify_call_evidence(data, anchor=gateway.keys.anchor)
    except EvidenceInvalid as error:
        raise EvidenceUnavailable(
            f"The evidence assembled for call {call_id} does not verify ({error.check}): "
            f"{error.message}"
        ) from error
    gateway.record(
        actor=actor,
        action="evidence.exported",
        subject=call_id,
        details={"kind": "service-call", "side": row.side, "directory_version": version},
    )
    return data


def export_evidence(
    gateway: Gateway, envelope_id: str, *, direction: str | None = None, actor: str
) -> bytes:
    """The evidence file for an envelope or, if the id is a logged service call, for that call.

    For a call, ``direction`` picks the side: ``"out"`` as the consumer,
    ``"in"`` as the provider (by default whichever this gateway logged).
    """
    if holds_call(gateway, envelope_id):
        side = {"out": "consumer", "in": "provider", None: None}.get(direction)
        return export_call_evidence(gateway, envelope_id, actor=actor, side=side)
    return export_message_evidence(gateway, envelope_id, direction=direction, actor=actor)
