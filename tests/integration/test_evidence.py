"""Evidence for a message carried between real gateways: exported by CLI and API, checked offline.

One network per database backend is shared by the module: the council sends
the police a referral that asks for a read receipt, the police officer reads
it, and every test then exports and verifies evidence for that message (or
sends its own). Verification runs as a separate ``gcx`` process given only the
file and the anchor: no network and no database.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from gcx import crypto
from gcx.localnet import DEMO_GATEWAYS, GatewayProcess, LocalNetwork
from gcx.store import open_database
from gcx.store.schema import directory_archive, envelopes

from .conftest import NetworkFactory, run_async
from .netutil import HTTP_TIMEOUT, audit_log, eventually, gcx, http

pytestmark = pytest.mark.integration

COUNCIL, POLICE = "tower-hamlets", "met-police"


def evidence_cli(*args: str) -> Any:
    """Run ``gcx evidence …`` as its own process."""
    return gcx("evidence", *args)


async def get_bytes(
    gateway: GatewayProcess, path: str, token: str | None = None
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token or gateway.token}"}
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
        session.get(f"{gateway.config.api_url}{path}", headers=headers) as response,
    ):
        return response.status, await response.read()


async def send_referral(council: GatewayProcess, *, read_receipt: bool) -> str:
    status, sent, _ = await http(
        "POST",
        f"{council.config.api_url}/api/v1/messages",
        token=council.token,
        body={
            "to": ["safeguarding.officer@MPS"],
            "subject": "Safeguarding referral",
            "body": "Synthetic test referral.",
            "marking": "OFFICIAL-SENSITIVE",
            "read_receipt": read_receipt,
            "attachments": [
                {
                    "name": "referral.txt",
                    "media_type": "text/plain",
                    "content_base64": base64.b64encode(b"synthetic referral form\n").decode(),
                }
            ],
        },
    )
    assert status == 202, sent
    return str(sent["id"])


async def receipts_held(council: GatewayProcess, message_id: str, kinds: set[str]) -> Any:
    async def probe() -> Any:
        status, data, _ = await http(
            "GET",
            f"{council.config.api_url}/api/v1/messages/{message_id}/status",
            token=council.token,
        )
        assert status == 200, data
        held = {r["kind"] for r in data["receipts"]}
        assert data["state"] == "delivered" and kinds <= held, (data["state"], held)
        return data

    return await eventually(probe, timeout=90, what=f"receipts {kinds} for {message_id}")


async def _deliver_and_read(network: LocalNetwork) -> str:
    council, police = network.gateways[COUNCIL], network.gateways[POLICE]
    message_id = await send_referral(council, read_receipt=True)
    await receipts_held(council, message_id, {"delivery"})
    status, _, _ = await http(
        "GET", f"{police.config.api_url}/api/v1/messages/{message_id}", token=police.token
    )
    assert status == 200
    await receipts_held(council, message_id, {"delivery", "read"})
    return message_id


@pytest.fixture(scope="module")
def network(network_factory: NetworkFactory) -> LocalNetwork:
    return network_factory((DEMO_GATEWAYS[0], DEMO_GATEWAYS[2]))


@pytest.fixture(scope="module")
def message_id(network: LocalNetwork) -> str:
    """A referral delivered to the police and read there, with both receipts held."""
    return run_async(_deliver_and_read(network))


@pytest.fixture(scope="module")
def exported(
    network: LocalNetwork, message_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The council's evidence file for the referral, written by ``gcx evidence export``."""
    out = tmp_path_factory.mktemp("evidence") / "referral.json"
    result = evidence_cli(
        "export", message_id, "--home", str(network.gateways[COUNCIL].home), "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    return out


def verify(path: Path, *args: str) -> Any:
    return evidence_cli("verify", str(path), *args)


def test_cli_export_verifies_offline_with_the_anchor(
    network: LocalNetwork, message_id: str, exported: Path
) -> None:
    """The exported file verifies in a separate process given only the file and the anchor."""
    result = verify(exported, "--anchor", str(network.anchor))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Evidence for envelope {message_id}" in result.stdout
    assert "from       benefits.officer at E09000030" in result.stdout
    assert "marked OFFICIAL-SENSITIVE" in result.stdout
    assert "MPS (Metropolitan Police Service): accepted at" in result.stdout
    assert "read by safeguarding.officer" in result.stdout
    assert "VERIFIED: every check passed." in result.stdout
    assert exported.stat().st_mode & 0o077 == 0


def test_file_holds_what_the_brief_requires(network: LocalNetwork, exported: Path) -> None:
    """The file carries the header, the parts, both receipts, the certificates and the directory."""
    body = json.loads(exported.read_bytes())
    assert body["format"] == "gcx.evidence/1"
    assert len(body["envelope"]["parts"]) == 2
    assert [(r["organisation"], r["kind"]) for r in body["receipts"]] == [
        ("MPS", "delivery"),
        ("MPS", "read"),
    ]
    assert set(body["certificates"]["organisations"]) == {"E09000030", "MPS"}
    anchor = crypto.Certificate.from_pem(network.anchor.read_bytes())
    assert body["certificates"]["anchor"] == anchor.pem.decode()


def test_directory_version_used_is_archived(network: LocalNetwork, message_id: str) -> None:
    """Both gateways archived the directory version they stored the envelope under."""
    for name, direction in [(COUNCIL, "out"), (POLICE, "in")]:
        database = open_database(network.gateways[name].config.db_url)
        try:
            with database.transaction() as conn:
                version = conn.execute(
                    sa.select(envelopes.c.directory_version).where(
                        envelopes.c.id == message_id, envelopes.c.direction == direction
                    )
                ).scalar_one()
                archived = conn.execute(
                    sa.select(directory_archive.c.version).where(
                        directory_archive.c.version == version
                    )
                ).all()
        finally:
            database.dispose()
        assert len(archived) == 1, (name, version)


def test_export_is_audited(network: LocalNetwork, message_id: str, exported: Path) -> None:
    """An export leaves evidence.exported in the exporting gateway's audit log."""
    with audit_log(network.gateways[COUNCIL].config.db_url) as log:
        entries = [e for e in log.entries("evidence.exported") if e.subject == message_id]
    assert entries and entries[0].details_dict["copy"] == "sent"


async def test_api_export_gives_the_sender_the_same_file(
    network: LocalNetwork, message_id: str, exported: Path
) -> None:
    """GET /api/v1/messages/{id}/evidence answers the sender with the file the CLI wrote."""
    status, data = await get_bytes(
        network.gateways[COUNCIL], f"/api/v1/messages/{message_id}/evidence"
    )
    assert status == 200, data[:300]
    assert data == exported.read_bytes()


async def test_recipient_exports_its_copy_as_received(
    network: LocalNetwork, message_id: str, tmp_path: Path
) -> None:
    """The police officer's evidence (API) and the police gateway's (CLI) both verify offline."""
    police = network.gateways[POLICE]
    status, data = await get_bytes(police, f"/api/v1/messages/{message_id}/evidence")
    assert status == 200, data[:300]
    (tmp_path / "api.json").write_bytes(data)
    body = json.loads(data)
    assert [(r["organisation"], r["kind"]) for r in body["receipts"]] == [("MPS", "delivery")]
    result = evidence_cli(
        "export", message_id, "--home", str(police.home), "--out", str(tmp_path / "cli.json")
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cli.json").read_bytes() == data
    checked = verify(tmp_path / "api.json", "--anchor", str(network.anchor))
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_evidence_refused_to_someone_the_message_was_not_for(
    network: LocalNetwork, message_id: str
) -> None:
    """Another person at the council gets 403, and the refusal is audited."""
    council = network.gateways[COUNCIL]
    token = network.add_token(COUNCIL, "another.officer")
    status, data = await get_bytes(council, f"/api/v1/messages/{message_id}/evidence", token)
    assert status == 403, data[:300]
    assert json.loads(data)["code"] == "message-not-yours"
    with audit_log(council.config.db_url) as log:
        refusals = [e for e in log.entries("evidence.refused") if e.subject == message_id]
    assert refusals and refusals[-1].actor == "user:another.officer@E09000030"


async def test_recipient_cannot_export_evidence_of_a_recalled_message(
    network: LocalNetwork,
) -> None:
    """Once recalled, the recipient is refused its evidence (410, audited); the sender is not."""
    council, police = network.gateways[COUNCIL], network.gateways[POLICE]
    message_id = await send_referral(council, read_receipt=False)
    await receipts_held(council, message_id, {"delivery"})
    status, body, _ = await http(
        "POST", f"{council.config.api_url}/api/v1/messages/{message_id}/recall", token=council.token
    )
    assert (status, body["state"]) == (200, "recalled"), body
    status, data = await get_bytes(police, f"/api/v1/messages/{message_id}/evidence")
    assert status == 410, data[:300]
    assert json.loads(data)["code"] == "message-recalled"
    with audit_log(police.config.db_url) as log:
        assert any(e.subject == message_id for e in log.entries("evidence.refused"))
    status, data = await get_bytes(council, f"/api/v1/messages/{message_id}/evidence")
    assert status == 200, data[:300]


def test_changed_byte_fails_verification(
    network: LocalNetwork, exported: Path, tmp_path: Path
) -> None:
    """One byte changed in the exported file makes verification exit 1."""
    changed = bytearray(exported.read_bytes())
    changed[len(changed) // 2] ^= 0x01
    (tmp_path / "changed.json").write_bytes(bytes(changed))
    result = verify(tmp_path / "changed.json", "--anchor", str(network.anchor))
    assert result.returncode == 1, result.stdout
    assert "NOT VERIFIED" in result.stdout


async def test_receipt_from_another_message_fails_verification(
    network: LocalNetwork, exported: Path, tmp_path: Path
) -> None:
    """A genuine receipt of another message put in the file makes verification exit 1."""
    council = network.gateways[COUNCIL]
    other_id = await send_referral(council, read_receipt=False)
    other = await receipts_held(council, other_id, {"delivery"})
    other_receipt = next(r["document"] for r in other["receipts"] if r["kind"] == "delivery")
    body = json.loads(exported.read_bytes())
    body["receipts"][0]["document"] = other_receipt
    tampered = json.dumps(body, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
    (tmp_path / "swapped.json").write_text(tampered)
    result = verify(tmp_path / "swapped.json", "--anchor", str(network.anchor), "--json")
    assert result.returncode == 1, result.stdout
    failed = json.loads(result.stdout)["failed"]
    assert failed["check"] == "receipt" and other_id in failed["message"]


def test_wrong_anchor_fails_verification(exported: Path, tmp_path: Path) -> None:
    """The file checked against another network's anchor makes verification exit 1."""
    key = crypto.SigningKey.generate()
    other = crypto.create_network_root(
        key, "gcx-demo", dt.datetime.now(dt.UTC), dt.timedelta(days=30)
    )
    (tmp_path / "other.pem").write_bytes(other.pem)
    result = verify(exported, "--anchor", str(tmp_path / "other.pem"))
    assert result.returncode == 1, result.stdout
    assert "FAILED  anchor" in result.stdout


def test_anchor_fingerprint_pins_and_no_anchor_warns(network: LocalNetwork, exported: Path) -> None:
    """--anchor-fingerprint verifies; no anchor exits 2; --no-anchor shows it with a warning."""
    fingerprint = crypto.Certificate.from_pem(network.anchor.read_bytes()).fingerprint
    pinned = verify(exported, "--anchor-fingerprint", fingerprint)
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    assert verify(exported).returncode == 2
    unpinned = verify(exported, "--no-anchor")
    assert unpinned.returncode == 0
    assert f"SHA-256 fingerprint: {fingerprint}" in unpinned.stdout
    assert "WARNING: --no-anchor" in unpinned.stdout


def test_export_of_an_unknown_message_is_refused(network: LocalNetwork, tmp_path: Path) -> None:
    """Exporting a message the gateway does not hold exits 2 with not-found."""
    result = evidence_cli(
        "export",
        "0" * 32,
        "--home",
        str(network.gateways[COUNCIL].home),
        "--out",
        str(tmp_path / "none.json"),
    )
    assert result.returncode == 2
    assert "error [not-found]" in result.stderr
    assert not (tmp_path / "none.json").exists()
