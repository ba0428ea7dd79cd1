"""Chunks sent ahead while the upload goes on (issue 16), with real gateways and real TLS.

An upload that says where it is going has its sealed chunks pushed to the
receiving gateway before the transfer exists; the offer then counts those the
signed manifest vouches for and asks for nothing else. The early endpoint
refuses what a manifest could not have and anything for a transfer already
offered.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os

import aiohttp
import pytest
import sqlalchemy as sa

from gcx import crypto
from gcx.config import GatewayConfig
from gcx.localnet import GatewayProcess, LocalNetwork
from gcx.protocol.transfer import TransferManifest
from gcx.store import open_database
from gcx.store.schema_transfers import transfers

from .conftest import NetworkFactory
from .netutil import (
    HTTP_TIMEOUT,
    audit_log,
    central_directory,
    eventually,
    http,
    peer_context,
    tus_upload,
)

COUNCIL = "E09000030"
MIB = 1024 * 1024
TAG = 16


@pytest.fixture(scope="module")
def network(network_factory: NetworkFactory) -> LocalNetwork:
    return network_factory(name="early-chunks")


def _metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _incoming(process: GatewayProcess) -> dict[str, int]:
    """Each incoming transfer's chunk file on ``process``'s disk, with the bytes it holds."""
    root = process.home / "blobs" / "transfers" / "incoming"
    found = {}
    for chunks in root.glob("*/chunks"):
        found[chunks.parent.name] = chunks.stat().st_blocks * 512
    return found


async def _all_sent_ahead(receiver: GatewayProcess, before: set[str], size: int) -> str:
    """The one new incoming transfer, once ``size`` bytes of its chunks are on disk."""

    async def all_there() -> str:
        new = {k: v for k, v in _incoming(receiver).items() if k not in before}
        assert len(new) == 1, new
        ((transfer_id, held),) = new.items()
        assert held >= size, held
        return transfer_id

    return await eventually(all_there, timeout=60, what="every chunk sent ahead")


async def _complete(process: GatewayProcess, transfer_id: str) -> dict[str, object]:
    async def probe() -> dict[str, object]:
        status, body, _ = await http(
            "GET", f"{process.config.api_url}/api/v1/transfers/{transfer_id}", token=process.token
        )
        assert status == 200 and body["state"] == "complete", body
        return dict(body)

    return await eventually(probe, timeout=90, what=f"transfer {transfer_id} receipted")


def _offers_answered(sender: GatewayProcess, transfer_id: str) -> list[tuple[int, int]]:
    """(missing, chunks) of each offer of ``transfer_id`` the sender recorded."""
    with audit_log(sender.config.db_url) as log:
        return [
            (int(e.details_dict["missing"]), int(e.details_dict["chunks"]))
            for e in log.entries("transfer.offer-answered")
            if e.subject == transfer_id
        ]


async def test_chunks_sent_ahead_are_counted_at_the_offer(network: LocalNetwork) -> None:
    """Every chunk is at the receiver before the transfer is made, and none is sent again."""
    sender, receiver = network.gateways["dwp"], network.gateways["tower-hamlets"]
    data = os.urandom(5 * MIB + 123)  # several chunks, the last short
    early_id = await _sent_ahead_then_made(sender, receiver, data, "claims.csv")
    assert _offers_answered(sender, early_id) == [(0, _chunks(sender, data))]
    body = await _downloaded(receiver, early_id)
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()


def _chunks(sender: GatewayProcess, data: bytes) -> int:
    """How many chunks ``sender`` seals ``data`` into (its configured segment size)."""
    return crypto.segment_count(len(data), sender.config.transfer_segment_bytes)


async def _sent_ahead_then_made(
    sender: GatewayProcess, receiver: GatewayProcess, data: bytes, name: str
) -> str:
    """Upload ``data`` saying where it goes, wait until every chunk is at the receiver, then
    make the transfer (it must be the one sent ahead) and wait for its receipt; its id."""
    before = set(_incoming(receiver))
    upload = await tus_upload(
        sender,
        data,
        _metadata(filename=name, **{"gcx-to": COUNCIL, "gcx-marking": "OFFICIAL"}),
    )
    early_id = await _all_sent_ahead(receiver, before, len(data) + _chunks(sender, data) * TAG)
    status, made, _ = await http(
        "POST",
        f"{sender.config.api_url}/api/v1/transfers",
        token=sender.token,
        body={"to": [COUNCIL], "marking": "OFFICIAL", "uploads": [upload]},
    )
    assert status == 201, made
    assert made["id"] == early_id
    await _complete(sender, early_id)
    return early_id


async def _downloaded(receiver: GatewayProcess, transfer_id: str) -> bytes:
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
        session.get(
            f"{receiver.config.api_url}/api/v1/transfers/{transfer_id}/files/0",
            headers={"Authorization": f"Bearer {receiver.token}"},
        ) as response,
    ):
        assert response.status == 200
        return await response.read()


def _manifest_held(process: GatewayProcess, transfer_id: str) -> TransferManifest:
    """The signed manifest of incoming ``transfer_id`` as ``process`` stored it."""
    database = open_database(process.config.db_url)
    try:
        with database.transaction() as conn:
            document = conn.execute(
                sa.select(transfers.c.manifest).where(
                    transfers.c.id == transfer_id, transfers.c.direction == "in"
                )
            ).scalar_one()
    finally:
        database.dispose()
    return TransferManifest.from_bytes(crypto.unverified_payload(document))


async def _restart_writing(network: LocalNetwork, name: str, transfer_format: str) -> None:
    gateway = network.gateways[name]
    network.stop_process(gateway.process)
    config = dataclasses.replace(GatewayConfig.load(gateway.home), transfer_format=transfer_format)
    config.save()
    gateway.config = config
    network.start_gateway(name)
    await network.wait_for_gateway(name)


async def test_a_sender_still_writing_gcx_transfer_1_is_received_and_its_chunks_count(
    network: LocalNetwork,
) -> None:
    """A gateway told to write the older format (SHA-256 chunk digests) for peers not yet
    upgraded: its chunks sent ahead say so, count at the offer, and the file arrives whole."""
    sender, receiver = network.gateways["dwp"], network.gateways["tower-hamlets"]
    await _restart_writing(network, "dwp", "gcx.transfer/1")
    try:
        data = os.urandom(3 * MIB + 5)
        transfer_id = await _sent_ahead_then_made(sender, receiver, data, "old.csv")
        assert _offers_answered(sender, transfer_id) == [(0, _chunks(sender, data))]
        with audit_log(receiver.config.db_url) as log:
            received = [e for e in log.entries("transfer.received") if e.subject == transfer_id]
        assert len(received) == 1
        manifest = _manifest_held(receiver, transfer_id)
        assert manifest.format == "gcx.transfer/1" and manifest.chunk_hash == "sha256"
        assert await _downloaded(receiver, transfer_id) == data
    finally:
        await _restart_writing(network, "dwp", "gcx.transfer/2")


async def test_an_upload_not_said_to_be_going_anywhere_sends_nothing_ahead(
    network: LocalNetwork,
) -> None:
    """Without gcx-to and gcx-marking the chunks wait for the offer, as before."""
    sender, receiver = network.gateways["dwp"], network.gateways["tower-hamlets"]
    before = set(_incoming(receiver))
    data = os.urandom(2 * MIB + 1)
    upload = await tus_upload(sender, data, _metadata(filename="plain.bin"))
    status, made, _ = await http(
        "POST",
        f"{sender.config.api_url}/api/v1/transfers",
        token=sender.token,
        body={"to": [COUNCIL], "marking": "OFFICIAL", "uploads": [upload]},
    )
    assert status == 201, made
    assert made["id"] not in before
    await _complete(sender, made["id"])
    chunks = _chunks(sender, data)
    assert _offers_answered(sender, made["id"]) == [(chunks, chunks)]


async def _push(
    network: LocalNetwork, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, object]]:
    """PUT ``body`` to DWP's peer endpoint as Tower Hamlets' gateway."""
    _, directory = await central_directory(network)
    entry = directory.gateway_named("dwp")
    assert entry is not None
    context = peer_context(network.gateways["tower-hamlets"], entry.certificate_fingerprint)
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context), timeout=HTTP_TIMEOUT
        ) as session,
        session.put(
            f"https://{entry.peer_address}{path}",
            data=body,
            headers={"Content-Type": "application/octet-stream", **headers},
        ) as response,
    ):
        answer = await response.json() if response.status != 204 else {}
        return response.status, answer


@pytest.mark.parametrize(
    ("path", "headers", "size", "status", "code"),
    [
        (
            "/peer/v1/transfers/NOTANID/early/0",
            {"Gcx-Chunk-Slot": str(MIB + TAG)},
            100,
            400,
            "envelope-malformed",
        ),
        ("/peer/v1/transfers/" + "a" * 32 + "/early/0", {}, 100, 400, "envelope-malformed"),
        (
            "/peer/v1/transfers/" + "a" * 32 + "/early/0",
            {"Gcx-Chunk-Slot": "1000"},
            100,
            400,
            "envelope-malformed",
        ),
        (
            "/peer/v1/transfers/" + "a" * 32 + "/early/-1",
            {"Gcx-Chunk-Slot": str(MIB + TAG)},
            100,
            400,
            "envelope-malformed",
        ),
        (
            "/peer/v1/transfers/" + "a" * 32 + "/early/0",
            {"Gcx-Chunk-Slot": str(65536 + TAG)},
            65536 + TAG + 1,
            400,
            "envelope-malformed",
        ),
        (
            "/peer/v1/transfers/" + "a" * 32 + "/early/0",
            {"Gcx-Chunk-Slot": str(MIB + TAG), "Gcx-Chunk-Digest": "md5"},
            100,
            400,
            "envelope-malformed",
        ),
    ],
    ids=[
        "bad id",
        "no slot",
        "slot too small",
        "negative chunk",
        "larger than its slot",
        "unknown digest",
    ],
)
async def test_early_chunks_no_manifest_could_have_are_refused(
    network: LocalNetwork, path: str, headers: dict[str, str], size: int, status: int, code: str
) -> None:
    got = await _push(network, path, os.urandom(size), headers)
    assert (got[0], got[1].get("code")) == (status, code)


async def test_early_chunks_for_an_offered_transfer_are_refused(network: LocalNetwork) -> None:
    """Once offered, a transfer's chunks go only through the manifest-checked route."""
    sender, receiver = network.gateways["tower-hamlets"], network.gateways["dwp"]
    upload = await tus_upload(sender, os.urandom(1000), _metadata(filename="x.bin"))
    status, made, _ = await http(
        "POST",
        f"{sender.config.api_url}/api/v1/transfers",
        token=sender.token,
        body={"to": ["DWP"], "marking": "OFFICIAL", "uploads": [upload]},
    )
    assert status == 201, made
    await _complete(sender, made["id"])
    del receiver
    got = await _push(
        network,
        f"/peer/v1/transfers/{made['id']}/early/0",
        os.urandom(1000 + TAG),
        {"Gcx-Chunk-Slot": str(MIB + TAG)},
    )
    assert (got[0], got[1].get("code")) == (409, "early-chunks-refused")
