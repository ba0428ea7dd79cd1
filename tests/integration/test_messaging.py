"""Secure messages between real gateway processes over mutual TLS, and every refusal.

The network is shared by the module (per database); each test sends its own
messages, so they do not disturb each other.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import json
from typing import Any

import aiohttp
import pytest

from gcx import crypto
from gcx.config import GatewayConfig
from gcx.gateway.home import load_keys
from gcx.localnet import DEMO_GATEWAYS, GatewayProcess, LocalNetwork
from gcx.protocol.batch import frame_batch
from gcx.protocol.envelope import frame
from gcx.protocol.message import MESSAGE_MEDIA_TYPE, MessageContent, parse_address

from .conftest import NetworkFactory
from .netutil import audit_log, central_directory, eventually, http

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def network(network_factory: NetworkFactory) -> LocalNetwork:
    return network_factory(DEMO_GATEWAYS)


def _gw(network: LocalNetwork, name: str) -> GatewayProcess:
    return network.gateways[name]


async def send(
    gateway: GatewayProcess, body: dict[str, Any], token: str | None = None
) -> tuple[int, Any]:
    status, data, _ = await http(
        "POST", f"{gateway.config.api_url}/api/v1/messages", token=token or gateway.token, body=body
    )
    return status, data


async def get(gateway: GatewayProcess, path: str, token: str | None = None) -> tuple[int, Any]:
    status, data, _ = await http(
        "GET", f"{gateway.config.api_url}{path}", token=token or gateway.token
    )
    return status, data


async def delivered(gateway: GatewayProcess, message_id: str, state: str = "delivered") -> Any:
    async def probe() -> Any:
        status, data = await get(gateway, f"/api/v1/messages/{message_id}/status")
        assert status == 200, data
        assert data["state"] == state, data["state"]
        return data

    return await eventually(probe, timeout=90, what=f"message {message_id} {state}")


def referral(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "to": ["safeguarding.officer@MPS"],
        "subject": "Safeguarding referral",
        "body": "Synthetic test referral.",
        "marking": "OFFICIAL-SENSITIVE",
    }
    body.update(overrides)
    return body


async def test_message_with_attachment_is_delivered_read_and_receipted(
    network: LocalNetwork,
) -> None:
    """A referral with an attachment reaches the police officer intact, with a signed receipt
    the sender holds and can check against the directory."""
    council, police = _gw(network, "tower-hamlets"), _gw(network, "met-police")
    attachment = b"%PDF-1.4 synthetic referral form\n" * 100
    status, sent = await send(
        council,
        referral(
            attachments=[
                {
                    "name": "referral.pdf",
                    "media_type": "application/pdf",
                    "content_base64": base64.b64encode(attachment).decode(),
                }
            ]
        ),
    )
    assert status == 202, sent
    state = await delivered(council, sent["id"])

    status, message = await get(police, f"/api/v1/messages/{sent['id']}")
    assert status == 200, message
    assert message["subject"] == "Safeguarding referral"
    assert message["marking"] == "OFFICIAL-SENSITIVE"
    assert message["from"] == f"{council.spec.account}@E09000030"
    status, data, _headers = await http(
        "GET", f"{police.config.api_url}{message['attachments'][0]['url']}", token=police.token
    )
    assert status == 200 and data.encode() == attachment if isinstance(data, str) else data
    assert message["attachments"][0]["sha256"] == crypto.sha256_hex(attachment)

    _, directory = await central_directory(network)
    mps = directory.organisation("MPS")
    assert mps is not None and mps.signing_key is not None
    receipt_doc = next(r for r in state["receipts"] if r["kind"] == "delivery")
    with audit_log(council.config.db_url) as log:
        sent_entry = next(
            e for e in log.entries() if e.action == "message.sent" and e.subject == sent["id"]
        )
    # The sending gateway asked for receipts signed per batch, and holds one.
    assert crypto.is_batch_signed(receipt_doc["document"].encode())
    receipt = crypto.verify_receipt(
        receipt_doc["document"].encode(),
        crypto.VerifyKey.from_b64(mps.signing_key),
        envelope_id=sent["id"],
        envelope_digest=sent_entry.details_dict["digest"],
        recipient="MPS",
    )
    assert receipt.accepted


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"marking": None}, 400, "marking-missing"),
        ({"marking": "BANANA"}, 400, "marking-unknown"),
        ({"marking": "SECRET"}, 422, "marking-not-allowed"),
        ({"marking": "top secret"}, 422, "marking-not-allowed"),
        ({"to": ["someone@E09000001"]}, 422, "recipient-unknown"),
        ({"to": ["not an address"]}, 400, "address-invalid"),
        (
            {"attachments": [{"name": "../../etc/passwd", "content_base64": "AA=="}]},
            400,
            "attachment-refused",
        ),
    ],
)
async def test_submission_refusals(
    network: LocalNetwork, overrides: dict[str, Any], status: int, code: str
) -> None:
    """What a person submits is refused with a stable code and a sentence, and nothing is
    queued."""
    council = _gw(network, "tower-hamlets")
    got, body = await send(council, referral(**overrides))
    assert (got, body["code"]) == (status, code), body
    assert body["message"].endswith(".")


async def test_attachment_over_the_limit_is_refused(network: LocalNetwork) -> None:
    """An attachment over 25 MiB is refused (413) and pointed at bulk transfer."""
    council = _gw(network, "tower-hamlets")
    big = base64.b64encode(b"\0" * (25 * 1024 * 1024 + 1)).decode()
    raw = json.dumps(referral(attachments=[{"name": "big.bin", "content_base64": big}]))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{council.config.api_url}/api/v1/messages",
            data=io.BytesIO(raw.encode()),
            headers={
                "Authorization": f"Bearer {council.token}",
                "Content-Type": "application/json",
            },
        ) as response,
    ):
        body = await response.json()
    assert (response.status, body["code"]) == (413, "attachment-too-large"), body
    assert "bulk file transfer" in body["message"]


async def test_body_that_is_not_utf8_is_refused(network: LocalNetwork) -> None:
    """A JSON body with bytes that are not UTF-8, and a multipart body field likewise, are
    refused with body-not-utf8."""
    council = _gw(network, "tower-hamlets")
    raw = json.dumps(referral(body="PLACEHOLDER")).encode().replace(b"PLACEHOLDER", b"\xff\xfe")
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{council.config.api_url}/api/v1/messages",
            data=raw,
            headers={
                "Authorization": f"Bearer {council.token}",
                "Content-Type": "application/json",
            },
        ) as response,
    ):
        assert response.status == 400
        assert (await response.json())["code"] == "body-not-utf8"
    boundary = "gcx-test-boundary"
    fields = [
        ("to", b"safeguarding.officer@MPS"),
        ("subject", b"x"),
        ("marking", b"OFFICIAL"),
        ("body", b"\xff\xfe"),
    ]
    multipart = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
            for name, value in fields
        )
        + f"--{boundary}--\r\n".encode()
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{council.config.api_url}/api/v1/messages",
            data=multipart,
            headers={
                "Authorization": f"Bearer {council.token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        ) as response,
    ):
        assert response.status == 400
        assert (await response.json())["code"] == "body-not-utf8"


async def test_only_addressed_users_may_read(network: LocalNetwork) -> None:
    """Another organisation's user, and a colleague the message was not addressed to, are
    refused with message-not-yours, and the refusal is audited."""
    council, police, dwp = (_gw(network, n) for n in ("tower-hamlets", "met-police", "dwp"))
    status, sent = await send(council, referral())
    assert status == 202
    await delivered(council, sent["id"])
    colleague = network.add_token("met-police", "desk.sergeant", ("staff",))
    for gateway, token in ((police, colleague), (dwp, dwp.token)):
        status, body = await get(gateway, f"/api/v1/messages/{sent['id']}", token=token)
        assert (status, body["code"]) == (403, "message-not-yours"), body
    with audit_log(police.config.db_url) as log:
        refused = [
            e for e in log.entries() if e.action == "message.refused" and e.subject == sent["id"]
        ]
    assert refused and refused[0].details_dict["code"] == "message-not-yours"


async def test_recall_before_reading_and_refused_after(network: LocalNetwork) -> None:
    """A message no one has read can be recalled (the recipient then gets 410); once read,
    a recall is refused with recall-refused and the message stays readable."""
    council, police = _gw(network, "tower-hamlets"), _gw(network, "met-police")
    _, first = await send(council, referral(subject="to be recalled"))
    await delivered(council, first["id"])
    status, body, _ = await http(
        "POST",
        f"{council.config.api_url}/api/v1/messages/{first['id']}/recall",
        token=council.token,
    )
    assert (status, body["state"]) == (200, "recalled"), body
    status, body = await get(police, f"/api/v1/messages/{first['id']}")
    assert (status, body["code"]) == (410, "message-recalled")

    _, second = await send(council, referral(subject="read first"))
    await delivered(council, second["id"])
    status, _ = await get(police, f"/api/v1/messages/{second['id']}")
    assert status == 200
    status, body, _ = await http(
        "POST",
        f"{council.config.api_url}/api/v1/messages/{second['id']}/recall",
        token=council.token,
    )
    assert (status, body["code"]) == (409, "recall-refused"), body
    status, _ = await get(police, f"/api/v1/messages/{second['id']}")
    assert status == 200
    with audit_log(police.config.db_url) as log:
        actions = {(e.action, e.subject) for e in log.entries()}
    assert ("message.recalled", first["id"]) in actions
    assert ("message.recall-refused", second["id"]) in actions


async def test_unknown_addresses_come_back_as_a_non_delivery_report(
    network: LocalNetwork,
) -> None:
    """An address the receiving gateway does not know is listed in the signed receipt; a
    message with no known address there fails with address-unknown."""
    council = _gw(network, "tower-hamlets")
    _, mixed = await send(council, referral(to=["safeguarding.officer@MPS", "nobody@MPS"]))
    state = await delivered(council, mixed["id"])
    receipt = next(r for r in state["receipts"] if r["kind"] == "delivery")
    payload = json.loads(base64.b64decode(json.loads(receipt["document"])["payload"]))
    assert payload["unknown_addresses"] == ["nobody@MPS"]

    _, lost = await send(council, referral(to=["nobody@MPS"]))
    state = await delivered(council, lost["id"], state="failed")
    assert state["deliveries"][0]["last_error"]["code"] == "address-unknown"


# -- envelopes crafted at the peer endpoint ------------------------------------------


def _keys(gateway: GatewayProcess) -> Any:
    return load_keys(GatewayConfig.load(gateway.home))


def _context(source: GatewayProcess, target_fingerprint: str) -> Any:
    home = source.home
    return crypto.pinned_client_context(
        home / "anchor.pem",
        home / "tls.pem",
        home / "tls.key",
        GatewayConfig.load(home).passphrase(),
        frozenset({target_fingerprint}),
    )


def _seal(
    network: LocalNetwork,
    directory: Any,
    sender: GatewayProcess,
    *,
    signer_org: str | None = None,
    now: dt.datetime | None = None,
    envelope_id: str | None = None,
    body: str = "crafted",
    kind: str = "message",
) -> crypto.SealedEnvelope:
    keys = _keys(sender)
    org = sender.codes[0]
    signing = (
        _keys(network.gateways[_host(network, signer_org)]).organisations[signer_org].signing
        if signer_org
        else keys.organisations[org].signing
    )
    content = MessageContent(
        sender=f"{sender.spec.account}@{org}",
        to=(parse_address("safeguarding.officer@MPS"),),
        cc=(),
        subject="crafted",
        body=body,
        marking="OFFICIAL",
    )
    mps = directory.organisation("MPS")
    return crypto.seal_envelope(
        kind=kind,
        sender_org=org,
        sender_user=sender.spec.account,
        sender_key=signing,
        recipients={"MPS": crypto.EncryptionPublicKey.from_b64(mps.encryption_key)},
        marking="OFFICIAL",
        parts=[("message.json", MESSAGE_MEDIA_TYPE, content.to_bytes())],
        now=now or dt.datetime.now(dt.UTC),
        envelope_id=envelope_id,
    )


def _host(network: LocalNetwork, org: str | None) -> str:
    return next(g.spec.name for g in network.gateways.values() if org in g.codes)


async def _post_batch(
    source: GatewayProcess,
    target: GatewayProcess,
    directory: Any,
    frames: list[bytes],
    receipts: str | None = None,
) -> list[dict[str, Any]]:
    entry = directory.gateway_named(target.spec.name)
    host, _, port = entry.peer_address.rpartition(":")
    async with (
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=_context(source, entry.certificate_fingerprint))
        ) as session,
        session.post(
            f"https://{host}:{port}/peer/v1/envelopes",
            data=frame_batch(frames),
            headers={
                "Content-Type": "application/vnd.gcx.batch",
                **({"X-Gcx-Receipts": receipts} if receipts else {}),
            },
        ) as response,
    ):
        assert response.status == 200, await response.text()
        results: list[dict[str, Any]] = (await response.json())["results"]
        return results


def _refusal_code(result: dict[str, Any]) -> str:
    if result["error"]:
        return str(result["error"]["code"])
    payload = json.loads(base64.b64decode(json.loads(result["receipts"][0])["payload"]))
    assert payload["outcome"] == "refused", payload
    return str(payload["refusal"]["code"])


async def test_tampered_envelopes_are_refused_with_signed_receipts(
    network: LocalNetwork,
) -> None:
    """At the police gateway's peer endpoint: a changed header byte, a part digest mismatch,
    a signature by another organisation's key and an expired envelope are each refused."""
    council, police = _gw(network, "tower-hamlets"), _gw(network, "met-police")
    _, directory = await central_directory(network)

    good = _seal(network, directory, council)
    header = bytearray(good.signed_header)
    position = header.index(b'"payload":"') + 40
    header[position] = ord("A") if header[position] != ord("A") else ord("B")
    changed_header = frame(bytes(header), good.parts)

    digest_mismatch = frame(
        good.signed_header, (good.parts[0][:-1] + bytes([good.parts[0][-1] ^ 1]),)
    )
    wrong_signer = _seal(network, directory, council, signer_org="DWP")
    expired = _seal(network, directory, council, now=dt.datetime.now(dt.UTC) - dt.timedelta(days=4))

    results = await _post_batch(
        council,
        police,
        directory,
        [changed_header, digest_mismatch, wrong_signer.framed(), expired.framed()],
    )
    codes = [_refusal_code(r) for r in results]
    assert codes[0] in ("signature-invalid", "envelope-malformed")
    assert codes[1] == "envelope-digest-mismatch"
    assert codes[2] == "signature-invalid"
    assert codes[3] == "envelope-expired"
    with audit_log(police.config.db_url) as log:
        refused = {
            e.details_dict.get("code") for e in log.entries() if e.action == "envelope.refused"
        }
    assert {"envelope-digest-mismatch", "signature-invalid", "envelope-expired"} <= refused


async def test_receipts_are_signed_per_batch_only_for_a_sender_that_asks(
    network: LocalNetwork,
) -> None:
    """Without X-Gcx-Receipts (an older sender) each receipt is a plain DSSE document; with
    it, the batch's receipts for one organisation share one signed root, and each verifies
    on its own with the organisation's key."""
    council, police = _gw(network, "tower-hamlets"), _gw(network, "met-police")
    _, directory = await central_directory(network)
    mps = directory.organisation("MPS")
    assert mps is not None and mps.signing_key is not None
    key = crypto.VerifyKey.from_b64(mps.signing_key)
    for asked in (None, crypto.BATCH_FORMAT):
        envelopes = [_seal(network, directory, council) for _ in range(3)]
        results = await _post_batch(
            council, police, directory, [e.framed() for e in envelopes], receipts=asked
        )
        documents = [r["receipts"][0].encode() for r in results]
        assert [crypto.is_batch_signed(d) for d in documents] == [asked is not None] * 3
        if asked:
            assert len({json.loads(d)["root"] for d in documents}) == 1
        for envelope, document in zip(envelopes, documents, strict=True):
            receipt = crypto.verify_receipt(
                document,
                key,
                envelope_id=envelope.header.id,
                envelope_digest=envelope.digest,
                recipient="MPS",
            )
            assert receipt.accepted


async def test_envelope_of_a_kind_with_no_router_is_refused_not_dropped(
    network: LocalNetwork,
) -> None:
    """A correctly signed envelope of a kind this gateway has no router for (a typed
    document, before documents exist) is refused with kind-not-supported and a signed
    refusal receipt, audited, and never shows in anyone's inbox."""
    council, police = _gw(network, "tower-hamlets"), _gw(network, "met-police")
    _, directory = await central_directory(network)
    document = _seal(network, directory, council, kind="document")
    [result] = await _post_batch(council, police, directory, [document.framed()])
    assert _refusal_code(result) == "kind-not-supported"
    with audit_log(police.config.db_url) as log:
        refused = [
            e.details_dict.get("code")
            for e in log.entries("envelope.refused")
            if e.subject == document.header.id
        ]
    assert refused == ["kind-not-supported"]
    _status, inbox = await get(police, "/api/v1/messages?box=inbox&limit=500")
    assert document.header.id not in {m["id"] for m in inbox["messages"]}


async def test_duplicates_are_eliminated_and_replayed_ids_refused(
    network: LocalNetwork,
) -> None:
    """The same envelope sent twice is stored once and answered with the same receipt; a
    different envelope reusing its id is refused as a replay."""
    council, police = _gw(network, "tower-hamlets"), _gw(network, "met-police")
    _, directory = await central_directory(network)
    sealed = _seal(network, directory, council)
    first = await _post_batch(council, police, directory, [sealed.framed()])
    second = await _post_batch(council, police, directory, [sealed.framed()])
    assert first[0]["receipts"] == second[0]["receipts"]
    _status, inbox = await get(police, "/api/v1/messages?box=inbox&limit=500")
    assert [m["id"] for m in inbox["messages"]].count(sealed.header.id) == 1

    replay = _seal(network, directory, council, envelope_id=sealed.header.id, body="other")
    results = await _post_batch(council, police, directory, [replay.framed()])
    assert results[0]["error"]["code"] == "envelope-replayed"


async def test_envelope_from_a_gateway_not_hosting_the_sender_is_refused(
    network: LocalNetwork,
) -> None:
    """DWP's gateway cannot deliver an envelope that claims to come from the council, even
    signed with the council's own key: the directory names another gateway for it."""
    council, dwp, police = (_gw(network, n) for n in ("tower-hamlets", "dwp", "met-police"))
    _, directory = await central_directory(network)
    sealed = _seal(network, directory, council)
    results = await _post_batch(dwp, police, directory, [sealed.framed()])
    assert _refusal_code(results[0]) == "peer-not-sender-gateway"


async def test_recall_passes_over_a_delivery_that_failed(network: LocalNetwork) -> None:
    """A message delivered to the police but refused by DWP (unknown address) can still be
    recalled: the failed delivery has nothing to withdraw."""
    council, police = _gw(network, "tower-hamlets"), _gw(network, "met-police")
    _, sent = await send(council, referral(to=["safeguarding.officer@MPS", "nobody@DWP"]))

    async def settled() -> Any:
        status, data = await get(council, f"/api/v1/messages/{sent['id']}/status")
        assert status == 200, data
        states = sorted(d["state"] for d in data["deliveries"])
        assert states == ["delivered", "failed"], states
        return data

    await eventually(settled, timeout=90, what="one delivery delivered and one failed")
    status, body, _ = await http(
        "POST",
        f"{council.config.api_url}/api/v1/messages/{sent['id']}/recall",
        token=council.token,
    )
    assert (status, body["state"]) == (200, "recalled"), body
    status, body = await get(police, f"/api/v1/messages/{sent['id']}")
    assert (status, body["code"]) == (410, "message-recalled")


async def test_sender_in_their_own_inbox_still_sees_status_and_recalls(
    network: LocalNetwork,
) -> None:
    """An administrator who writes to their own whole organisation holds an inbox copy too,
    but status and recall still treat them as the sender."""
    council = _gw(network, "tower-hamlets")
    _, sent = await send(council, referral(to=["E09000030"], subject="to all of us"))
    state = await delivered(council, sent["id"])
    assert state["receipts"][0]["organisation"] == "E09000030"
    status, body, _ = await http(
        "POST",
        f"{council.config.api_url}/api/v1/messages/{sent['id']}/recall",
        token=council.token,
    )
    assert (status, body["state"]) == (200, "recalled"), body


async def test_multipart_attachment_keeps_its_media_type(network: LocalNetwork) -> None:
    """A multipart attachment sent as 'text/plain; charset=utf-8' is accepted, and its media
    type is kept without the parameter."""
    council, police = _gw(network, "tower-hamlets"), _gw(network, "met-police")
    form = aiohttp.FormData()
    form.add_field("to", "safeguarding.officer@MPS")
    form.add_field("subject", "multipart")
    form.add_field("body", "see attached")
    form.add_field("marking", "OFFICIAL")
    form.add_field(
        "attachment",
        io.BytesIO(b"notes"),
        filename="notes.txt",
        content_type="text/plain; charset=utf-8",
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{council.config.api_url}/api/v1/messages",
            data=form,
            headers={"Authorization": f"Bearer {council.token}"},
        ) as response,
    ):
        assert response.status == 202, await response.text()
        sent = await response.json()
    await delivered(council, sent["id"])
    status, message = await get(police, f"/api/v1/messages/{sent['id']}")
    assert status == 200, message
    assert message["attachments"][0]["media_type"] == "text/plain"


async def test_content_that_disagrees_with_its_signed_header_is_refused(
    network: LocalNetwork,
) -> None:
    """A sealed message whose inner sender is not the one its signed header names is refused
    with envelope-inconsistent, so a reader never sees a forged 'from'."""
    council, police = _gw(network, "tower-hamlets"), _gw(network, "met-police")
    _, directory = await central_directory(network)
    keys = _keys(council)
    content = MessageContent(
        sender="chief.constable@MPS",
        to=(parse_address("safeguarding.officer@MPS"),),
        cc=(),
        subject="forged",
        body="x",
        marking="OFFICIAL",
    )
    mps = directory.organisation("MPS")
    sealed = crypto.seal_envelope(
        kind="message",
        sender_org="E09000030",
        sender_user=council.spec.account,
        sender_key=keys.organisations["E09000030"].signing,
        recipients={"MPS": crypto.EncryptionPublicKey.from_b64(mps.encryption_key)},
        marking="OFFICIAL",
        parts=[("message.json", MESSAGE_MEDIA_TYPE, content.to_bytes())],
        now=dt.datetime.now(dt.UTC),
    )
    results = await _post_batch(council, police, directory, [sealed.framed()])
    assert _refusal_code(results[0]) == "envelope-inconsistent"


async def test_a_long_mailbox_is_read_page_by_page(network: LocalNetwork) -> None:
    """Listing with a limit gives an 'older' cursor; following it reaches every message once."""
    council = _gw(network, "tower-hamlets")
    clerk = network.add_token("tower-hamlets", "pager.clerk", ("staff",))
    sent_ids = []
    for n in range(5):
        status, queued = await send(council, referral(subject=f"Page test {n}"), token=clerk)
        assert status == 202, queued
        sent_ids.append(queued["id"])

    seen: list[str] = []
    pages = 0
    path = "/api/v1/messages?box=sent&limit=2"
    while True:
        status, page = await get(council, path, token=clerk)
        assert status == 200, page
        assert len(page["messages"]) <= 2
        seen += [m["id"] for m in page["messages"]]
        pages += 1
        if page["older"] is None:
            break
        path = f"/api/v1/messages?box=sent&limit=2&before={page['older']}"
    assert pages == 3
    assert seen == list(reversed(sent_ids)), "newest first, each message once"

    status, all_at_once = await get(council, "/api/v1/messages?box=sent&limit=5", token=clerk)
    assert status == 200 and all_at_once["older"] is None, "an exact last page says so"
    for bad in ("abc", "0", "-3"):
        status, refused = await get(council, f"/api/v1/messages?before={bad}", token=clerk)
        assert status == 400, refused
        assert refused["code"] == "input-invalid", refused


async def test_messages_submitted_together_are_each_kept_answered_and_audited(
    network: LocalNetwork,
) -> None:
    """Submissions that arrive at once are stored in shared transactions (group commit),
    yet each is answered on its own: one addressed to an unknown organisation is refused
    with its code while the others are accepted, each with its own message.sent entry,
    and each is delivered."""
    council = _gw(network, "tower-hamlets")
    bodies = [referral(subject=f"Together {index}") for index in range(12)]
    bodies[5] = referral(to=["someone@E09000001"])
    answers = await asyncio.gather(*(send(council, body) for body in bodies))
    assert answers[5][0] == 422 and answers[5][1]["code"] == "recipient-unknown"
    accepted = [data["id"] for index, (status, data) in enumerate(answers) if index != 5]
    assert all(status == 202 for index, (status, _) in enumerate(answers) if index != 5)
    assert len(set(accepted)) == 11
    for message_id in accepted:
        await delivered(council, message_id)
    with audit_log(council.config.db_url) as log:
        sent = [e.subject for e in log.entries("message.sent") if e.subject in accepted]
    assert sorted(sent) == sorted(accepted)


async def test_one_batch_of_new_repeated_and_replayed_envelopes_is_answered_per_envelope(
    network: LocalNetwork,
) -> None:
    """In one batch, with duplicates looked for once for the whole batch: new envelopes are
    stored (once each, each with its envelope.received entry), an envelope already held is
    answered with the receipts issued the first time, and a different envelope reusing a
    held id is refused as a replay."""
    council, police = _gw(network, "tower-hamlets"), _gw(network, "met-police")
    _, directory = await central_directory(network)
    held = _seal(network, directory, council)
    [first] = await _post_batch(council, police, directory, [held.framed()])
    new_one, new_two = _seal(network, directory, council), _seal(network, directory, council)
    replay = _seal(network, directory, council, envelope_id=held.header.id, body="other")
    results = await _post_batch(
        council,
        police,
        directory,
        [new_one.framed(), held.framed(), replay.framed(), new_two.framed()],
    )
    assert results[1]["receipts"] == first["receipts"]
    assert results[2]["error"]["code"] == "envelope-replayed"
    for result, sealed in ((results[0], new_one), (results[3], new_two)):
        assert result["error"] is None and len(result["receipts"]) == 1
        assert result["envelope_id"] == sealed.header.id
    ids = {new_one.header.id, new_two.header.id, held.header.id}
    _status, inbox = await get(police, "/api/v1/messages?box=inbox&limit=500")
    assert sorted(m["id"] for m in inbox["messages"] if m["id"] in ids) == sorted(ids)
    with audit_log(police.config.db_url) as log:
        received = [e.subject for e in log.entries("envelope.received") if e.subject in ids]
    assert sorted(received) == sorted(ids)
