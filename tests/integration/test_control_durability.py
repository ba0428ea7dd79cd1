"""Read receipts and forwarded recalls ride the outbox, so a SIGKILL at the wrong moment loses
neither: real gateway processes, killed and restarted, on SQLite and PostgreSQL.

The network is shared by the module (per database); each test restores every
gateway it stopped to a plain ``gateway serve`` before it ends.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from gcx import crypto
from gcx.config import GatewayConfig
from gcx.gateway.messages.envelopes import load_envelopes
from gcx.localnet import GatewayProcess, LocalNetwork
from gcx.protocol.batch import frame_batch
from gcx.protocol.envelope import frame
from gcx.store import Database
from gcx.store.blobs import FileBlobStore
from gcx.store.schema import outbox, receipts

from .conftest import NetworkFactory
from .fault_gateway import fault_program, waiting_marker
from .netutil import audit_log, central_directory, eventually, http

pytestmark = pytest.mark.integration

# A killed worker's lease (60 s) must lapse before its row is claimed again.
RECOVERY_TIMEOUT = 240


@pytest.fixture(scope="module")
def network(network_factory: NetworkFactory) -> LocalNetwork:
    return network_factory()  # tower-hamlets (E09000030) and dwp (DWP)


async def _send(council: GatewayProcess, *, read_receipt: bool) -> str:
    status, data, _ = await http(
        "POST",
        f"{council.config.api_url}/api/v1/messages",
        token=council.token,
        body={
            "to": ["claims.processor@DWP"],
            "subject": "Change of circumstances",
            "body": "Synthetic test message.",
            "marking": "OFFICIAL-SENSITIVE",
            "read_receipt": read_receipt,
        },
    )
    assert status == 202, data
    return str(data["id"])


async def _status(council: GatewayProcess, message_id: str) -> Any:
    status, data, _ = await http(
        "GET",
        f"{council.config.api_url}/api/v1/messages/{message_id}/status",
        token=council.token,
    )
    assert status == 200, data
    return data


async def _restart(network: LocalNetwork, name: str, **program: Any) -> None:
    network.start_gateway(name, **program)
    await network.wait_for_gateway(name)


def _outbox_rows(db_url: str, message_id: str) -> list[tuple[str, str]]:
    database = Database(db_url)
    try:
        with database.read() as conn:
            rows = conn.execute(
                sa.select(outbox.c.kind, outbox.c.state)
                .where(outbox.c.subject_id == message_id)
                .order_by(outbox.c.id)
            ).all()
        return [(r.kind, r.state) for r in rows]
    finally:
        database.dispose()


def _delivery_receipts(db_url: str, message_id: str) -> int:
    database = Database(db_url)
    try:
        with database.read() as conn:
            return len(
                conn.execute(
                    sa.select(receipts.c.id).where(
                        receipts.c.subject_id == message_id, receipts.c.kind == "delivery"
                    )
                ).all()
            )
    finally:
        database.dispose()


def _audited(db_url: str, action: str, subject: str) -> bool:
    with audit_log(db_url) as log:
        return any(e.action == action and e.subject == subject for e in log.entries())


async def test_read_receipt_survives_sigkill_of_the_reading_gateway(
    network: LocalNetwork,
) -> None:
    """A message read while its sender's gateway is down, the reader's gateway then SIGKILLed
    and restarted: the sender still ends up holding the signed read receipt."""
    council, dwp = network.gateways["tower-hamlets"], network.gateways["dwp"]
    message_id = await _send(council, read_receipt=True)
    await eventually(
        lambda: _state_is(council, message_id, "delivered"), timeout=90, what="delivered"
    )

    network.stop_process(council.process)  # the sender's gateway is unreachable
    status, data, _ = await http(
        "GET", f"{dwp.config.api_url}/api/v1/messages/{message_id}", token=dwp.token
    )
    assert status == 200, data
    # The receipt was committed with the read, whatever the worker has done since.
    assert [k for k, _ in _outbox_rows(dwp.config.db_url, message_id)] == ["read-receipt"]
    network.stop_process(dwp.process, signal.SIGKILL)

    await _restart(network, "dwp")
    await _restart(network, "tower-hamlets")

    async def read_receipt_held() -> None:
        data = await _status(council, message_id)
        kinds = {(r["kind"], r["organisation"]) for r in data["receipts"]}
        assert ("read", "DWP") in kinds, kinds

    await eventually(read_receipt_held, timeout=RECOVERY_TIMEOUT, what="the read receipt")

    # The council holds the receipt before DWP's worker has recorded the council's answer.
    async def row_delivered() -> None:
        rows = _outbox_rows(dwp.config.db_url, message_id)
        assert rows == [("read-receipt", "delivered")], rows

    await eventually(row_delivered, timeout=RECOVERY_TIMEOUT, what="the read receipt's row ended")


async def _state_is(council: GatewayProcess, message_id: str, state: str) -> None:
    data = await _status(council, message_id)
    assert data["state"] == state, data["state"]


async def test_recall_of_a_batch_in_flight_survives_sigkill_of_the_sending_gateway(
    network: LocalNetwork, tmp_path: Path
) -> None:
    """A message recalled while its batch is on the wire, accepted by the peer, the sender's
    gateway SIGKILLed before the recall leaves: after a restart the recall reaches the peer."""
    council, dwp = network.gateways["tower-hamlets"], network.gateways["dwp"]
    envelopes_gate, recalls_gate = tmp_path / "envelopes", tmp_path / "recalls"
    network.stop_process(council.process)
    await _restart(
        network,
        "tower-hamlets",
        program=fault_program(
            hold={"/peer/v1/envelopes": envelopes_gate, "/peer/v1/recalls": recalls_gate}
        ),
    )
    try:
        message_id = await _send(council, read_receipt=False)

        async def batch_held() -> None:
            assert waiting_marker(envelopes_gate).exists(), "the batch is not on its way yet"

        await eventually(batch_held, timeout=90, what="the batch held on its way out")
        status, data, _ = await http(
            "POST",
            f"{council.config.api_url}/api/v1/messages/{message_id}/recall",
            token=council.token,
        )
        assert status == 200, data
        envelopes_gate.touch()  # the batch goes on and the peer accepts it

        async def recall_held() -> None:
            assert waiting_marker(recalls_gate).exists(), "the recall is not on its way yet"

        await eventually(recall_held, timeout=90, what="the recall held on its way out")
        # The recall row was written with the receipts that showed it was due.
        assert _delivery_receipts(council.config.db_url, message_id) == 1
        assert _outbox_rows(council.config.db_url, message_id) == [
            ("message", "recalled"),
            ("recall", "sending"),
        ]
        assert not _audited(dwp.config.db_url, "message.recalled", message_id)
        network.stop_process(council.process, signal.SIGKILL)
    finally:
        network.stop_process(council.process)
        await _restart(network, "tower-hamlets")

    async def recalled_at_peer() -> None:
        assert _audited(dwp.config.db_url, "message.recalled", message_id), "not yet"

    await eventually(recalled_at_peer, timeout=RECOVERY_TIMEOUT, what="the recall at dwp")
    status, data, _ = await http(
        "GET", f"{dwp.config.api_url}/api/v1/messages/{message_id}", token=dwp.token
    )
    assert status != 200, data

    async def forwarded() -> None:
        assert _outbox_rows(council.config.db_url, message_id) == [
            ("message", "recalled"),
            ("recall", "delivered"),
        ]
        with audit_log(council.config.db_url) as log:
            outcomes = [
                e.details_dict.get("outcome")
                for e in log.entries("message.recall-forwarded")
                if e.subject == message_id
            ]
        # Believed from dwp's signed results, not from its 200 alone.
        assert outcomes == ["recalled"]

    await eventually(forwarded, timeout=30, what="the recall recorded as forwarded")


def _stored_frames(gateway: GatewayProcess, message_ids: list[str]) -> list[bytes]:
    """The envelopes as the sender stored them, framed as its worker sends them."""
    home = gateway.home
    database = Database(gateway.config.db_url)
    try:
        with database.read() as conn:
            stored = load_envelopes(conn, FileBlobStore(home / "blobs"), message_ids, "out")
        return [frame(stored[i].signed_header, stored[i].parts) for i in message_ids]
    finally:
        database.dispose()


async def _post_batch(
    network: LocalNetwork, source: GatewayProcess, target: GatewayProcess, frames: list[bytes]
) -> Any:
    """POST a batch to ``target``'s peer endpoint with ``source``'s own TLS identity."""
    _, directory = await central_directory(network)
    entry = directory.gateway_named(target.spec.name)
    assert entry is not None
    home = source.home
    context = crypto.pinned_client_context(
        home / "anchor.pem",
        home / "tls.pem",
        home / "tls.key",
        GatewayConfig.load(home).passphrase(),
        frozenset({entry.certificate_fingerprint}),
    )
    host, _, port = entry.peer_address.rpartition(":")
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session,
        session.post(
            f"https://{host}:{port}/peer/v1/envelopes",
            data=frame_batch(frames),
            headers={"Content-Type": "application/vnd.gcx.batch"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return (await response.json())["results"]


async def test_a_batch_the_peer_took_whose_answer_was_lost_is_delivered_once_after_sigkill(
    network: LocalNetwork, tmp_path: Path
) -> None:
    """Messages submitted together reach the peer, and the sender's gateway is SIGKILLed
    before it records the answer (its own request held on the way out, the envelopes
    handed over by this test as a first try whose answer was lost). After a restart each
    message is in the peer's inbox once, the sender holds one delivery receipt and one
    receipt.received entry for each, and the peer one envelope.received entry: the batched
    duplicate check and receipt recording neither lose nor repeat anything."""
    council, dwp = network.gateways["tower-hamlets"], network.gateways["dwp"]
    gate = tmp_path / "envelopes"
    network.stop_process(council.process)
    await _restart(
        network, "tower-hamlets", program=fault_program(hold={"/peer/v1/envelopes": gate})
    )
    try:
        ids = list(await asyncio.gather(*(_send(council, read_receipt=False) for _ in range(6))))

        async def batch_held() -> None:
            assert waiting_marker(gate).exists(), "no batch is on its way yet"

        await eventually(batch_held, timeout=90, what="a batch held on its way out")
        first = await _post_batch(network, council, dwp, _stored_frames(council, ids))
        assert [r["error"] for r in first] == [None] * len(ids)
        network.stop_process(council.process, signal.SIGKILL)
    finally:
        network.stop_process(council.process)
        await _restart(network, "tower-hamlets")

    async def all_delivered() -> None:
        for message_id in ids:
            assert _outbox_rows(council.config.db_url, message_id) == [("message", "delivered")]

    await eventually(all_delivered, timeout=RECOVERY_TIMEOUT, what="every message delivered")
    assert [_delivery_receipts(council.config.db_url, i) for i in ids] == [1] * len(ids)
    with audit_log(council.config.db_url) as log:
        receipted = [e.subject for e in log.entries("receipt.received") if e.subject in ids]
    with audit_log(dwp.config.db_url) as log:
        received = [e.subject for e in log.entries("envelope.received") if e.subject in ids]
    assert sorted(receipted) == sorted(received) == sorted(ids)
    status, inbox, _ = await http(
        "GET", f"{dwp.config.api_url}/api/v1/messages?box=inbox&limit=500", token=dwp.token
    )
    assert status == 200, inbox
    assert sorted(m["id"] for m in inbox["messages"] if m["id"] in ids) == sorted(ids)
