"""``gcx demo``: a local network on the embedded defaults, and a showcase run on it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import click

from gcx.errors import GcxError, RemoteRefusal
from gcx.localnet import LocalNetwork
from gcx.protocol import strict_json
from gcx.reference.demo_path import admit_through_coco, expect_refused, lapse_by_expiry
from gcx.reference.demo_steps import service_steps
from gcx.reference.showcase import Showcase


async def _api(
    method: str, url: str, token: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            url,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response,
    ):
        return response.status, strict_json.loads(await response.read())


async def _wait_delivered(gateway: Any, message_id: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        status, body = await _api(
            "GET", f"{gateway.config.api_url}/api/v1/messages/{message_id}/status", gateway.token
        )
        assert status == 200, f"status refused: {body}"
        if body["state"] == "delivered" or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.25)


def _verify_receipts(sender: Any, message_id: str, status: dict[str, Any]) -> str:
    """Check every delivery receipt's signature ourselves, against the directory."""
    from gcx import crypto
    from gcx.config import GatewayConfig
    from gcx.gateway.runtime import Gateway
    from gcx.store.schema import envelopes

    gateway = Gateway.open(GatewayConfig.load(sender.home))
    try:
        directory = gateway.directory.current()
        with gateway.db.transaction() as conn:
            digest = (
                conn.execute(
                    envelopes.select().where(
                        envelopes.c.id == message_id, envelopes.c.direction == "out"
                    )
                )
                .one()
                .digest
            )
    finally:
        gateway.close()
    checked = []
    for receipt in status["receipts"]:
        if receipt["kind"] != "delivery":
            continue
        org = directory.organisation(receipt["organisation"])
        assert org is not None and org.signing_key
        verified = crypto.verify_receipt(
            receipt["document"].encode(),
            crypto.VerifyKey.from_b64(org.signing_key),
            envelope_id=message_id,
            envelope_digest=digest,
            recipient=org.code,
        )
        assert verified.accepted, f"{org.code} refused: {verified.refusal}"
        checked.append(f"{org.code} at {verified.received_at.isoformat(timespec='seconds')}")
    assert checked, "no delivery receipt held"
    return "signed receipt verified: " + ", ".join(checked)


async def _showcase(network: LocalNetwork, show: Showcase) -> None:
    council = network.gateways["tower-hamlets"]
    dwp = network.gateways["dwp"]
    police = network.gateways["met-police"]

    async def ping() -> str:
        status, body = await _api(
            "POST", f"{council.config.api_url}/api/v1/ping", council.token, {"to": "MPS"}
        )
        assert status == 200, f"ping refused: {body}"
        return (
            f"MPS answered from {body['peer_address']} over mutual TLS "
            f"(directory v{body['directory_version']}) in {body['round_trip_ms']} ms"
        )

    await show.step("the council's gateway pings the police gateway", ping)

    referral: dict[str, str] = {}

    async def send_referral() -> str:
        attachment = base64.b64encode(
            b"Child protection referral form (synthetic demo data)\n"
        ).decode()
        status, body = await _api(
            "POST",
            f"{council.config.api_url}/api/v1/messages",
            council.token,
            {
                "to": ["safeguarding.officer@MPS"],
                "subject": "Safeguarding referral: child at risk (synthetic)",
                "body": "Please see the attached referral. Synthetic demo data only.",
                "marking": "OFFICIAL-SENSITIVE",
                "handling": "Do not forward outside the safeguarding team.",
                "attachments": [
                    {
                        "name": "referral.txt",
                        "media_type": "text/plain",
                        "content_base64": attachment,
                    }
                ],
            },
        )
        assert status == 202, f"refused: {body}"
        referral["id"] = body["id"]
        delivered = await _wait_delivered(council, body["id"])
        assert delivered["state"] == "delivered", f"not delivered: {delivered['state']}"
        referral["receipts"] = json.dumps(delivered)
        return f"message {body['id']} delivered to MPS"

    await show.step(
        "the council sends an OFFICIAL-SENSITIVE safeguarding referral with an attachment "
        "to the police",
        send_referral,
    )

    async def police_reads() -> str:
        status, body = await _api(
            "GET", f"{police.config.api_url}/api/v1/messages/{referral['id']}", police.token
        )
        assert status == 200, f"refused: {body}"
        assert body["marking"] == "OFFICIAL-SENSITIVE" and body["attachments"], body
        return (
            f'the safeguarding officer read "{body["subject"]}" with '
            f"{len(body['attachments'])} attachment"
        )

    await show.step("the police officer reads it on the police gateway", police_reads)

    async def referral_receipt() -> str:
        return _verify_receipts(council, referral["id"], strict_json.loads(referral["receipts"]))

    await show.step("the referral's receipt is verified", referral_receipt)

    async def evidence() -> str:
        from gcx import crypto
        from gcx.evidence import verify_evidence

        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{council.config.api_url}/api/v1/messages/{referral['id']}/evidence",
                headers={"Authorization": f"Bearer {council.token}"},
            ) as response,
        ):
            assert response.status == 200, await response.text()
            data = await response.read()
        path = network.root / f"evidence-{referral['id']}.json"
        path.write_bytes(data)
        # Offline: nothing but the file and the network's anchor.
        anchor = crypto.Certificate.from_pem(network.anchor.read_bytes())
        verified = verify_evidence(data, anchor=anchor)
        receipts = ", ".join(f"{r.organisation} {r.outcome}" for r in verified.receipts)
        return f"{path.name} ({len(data)} bytes) verified offline: {receipts}"

    await show.step("evidence for the referral is exported and verified offline", evidence)

    notice: dict[str, Any] = {}

    async def send_notice() -> str:
        status, body = await _api(
            "POST",
            f"{dwp.config.api_url}/api/v1/messages",
            dwp.token,
            {
                "to": ["benefits@E09000030"],
                "subject": "Benefit award notice (synthetic)",
                "body": "Universal Credit award changed from 1 December. Synthetic demo data.",
                "marking": "OFFICIAL",
            },
        )
        assert status == 202, f"refused: {body}"
        delivered = await _wait_delivered(dwp, body["id"])
        assert delivered["state"] == "delivered", f"not delivered: {delivered['state']}"
        notice.update(id=body["id"], status=delivered)
        return f"message {body['id']} delivered to the council's benefits mailbox"

    await show.step("DWP sends an OFFICIAL benefit notice to the council", send_notice)

    async def notice_receipt() -> str:
        return _verify_receipts(dwp, notice["id"], notice["status"])

    await show.step("the notice's receipt is verified", notice_receipt)

    async def secret_refused() -> str:
        status, body = await _api(
            "POST",
            f"{council.config.api_url}/api/v1/messages",
            council.token,
            {"to": ["safeguarding.officer@MPS"], "subject": "x", "body": "x", "marking": "SECRET"},
        )
        assert status == 422 and body["code"] == "marking-not-allowed", body
        return f"refused with {status} [{body['code']}]: {body['message']}"

    await show.step("a SECRET message is refused", secret_refused)

    async def outsider_refused() -> str:
        status, body = await _api(
            "POST",
            f"{council.config.api_url}/api/v1/messages",
            council.token,
            {"to": ["someone@E09000001"], "subject": "x", "body": "x", "marking": "OFFICIAL"},
        )
        assert status == 422 and body["code"] == "recipient-unknown", body
        return f"refused with {status} [{body['code']}]: {body['message']}"

    await show.step("a message to an organisation outside the network is refused", outsider_refused)

    async def bad_token() -> str:
        status, body = await _api(
            "GET", f"{council.config.api_url}/api/v1/status", "gcxt_not-a-real-token"
        )
        assert status == 401 and body["code"] == "token-invalid", body
        return f"refused with {status} [{body['code']}]"

    await show.step("an unknown API token is refused", bad_token)

    async def audits() -> str:
        from gcx.audit import verify
        from gcx.config import CentralConfig
        from gcx.store import open_database

        homes: list[tuple[str, str]] = [
            ("central", CentralConfig.load(network.central_home).db_url)
        ]
        homes += [(g.spec.name, g.config.db_url) for g in network.gateways.values()]
        counts = []
        for name, url in homes:
            database = open_database(url)
            with database.transaction() as conn:
                report = verify(conn)
            database.dispose()
            assert report.ok, f"{name}: {report.problem}"
            counts.append(f"{name} {report.entries}")
        return "every audit chain verifies: " + ", ".join(counts)

    async def ping_from_police() -> None:
        status, body = await _api(
            "POST", f"{police.config.api_url}/api/v1/ping", police.token, {"to": "DWP"}
        )
        if status != 200:
            raise RemoteRefusal(status, str(body.get("code")), str(body.get("message")))

    async def lapse() -> str:
        async with network.operator() as operator:
            await lapse_by_expiry(
                operator, network.client_for, "MPS", tokens=network.compliance_tokens, seconds=3
            )
        outcome = await expect_refused(ping_from_police)
        return f"MPS's Code of Connection approval lapsed; DWP's gateway {outcome} it"

    await show.step(
        "the police force's approval lapses and its gateway is refused by a peer", lapse
    )

    async def reapprove() -> str:
        async with network.operator() as operator:
            await admit_through_coco(
                operator, network.client_for, "MPS", tokens=network.compliance_tokens
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                await ping_from_police()
                return "MPS re-approved through the Code of Connection; the exchange works again"
            except RemoteRefusal:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    await show.step("the police force is re-approved and exchanges again", reapprove)

    await service_steps(network, show)

    await show.step("every audit log verifies", audits)


def run_demo(directory: Path, *, serve: bool, as_json: bool) -> int:
    return asyncio.run(_run(directory.resolve(), serve=serve, as_json=as_json))


async def _run(directory: Path, *, serve: bool, as_json: bool) -> int:
    network = LocalNetwork(directory, reference_services=True, web=True)
    started = time.perf_counter()
    show = Showcase(quiet=as_json)
    try:
        try:
            await network.start()
        except GcxError as error:
            click.echo(
                f"error [{error.code}]: {error.message} (logs in {directory / 'logs'})", err=True
            )
            return 2
        path = network.write_description()
        ready = round(time.perf_counter() - started, 1)
        if serve:
            _print_serving(network, path, ready)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            return 0
        if not as_json:
            click.echo(f"network up in {ready} s; {path}\n")
        await _showcase(network, show)
        if as_json:
            click.echo(
                json.dumps({"ok": show.ok, "network": str(path), "steps": show.steps}, indent=2)
            )
        else:
            click.echo(
                f"\n{'all steps passed' if show.ok else 'SOME STEPS FAILED'} "
                f"({round(time.perf_counter() - started, 1)} s)"
            )
        return 0 if show.ok else 1
    finally:
        with contextlib.suppress(Exception):
            network.stop()


def _print_serving(network: LocalNetwork, path: Path, ready: float) -> None:
    click.echo(f"gcx demo network up in {ready} s (Ctrl-C stops it)")
    click.echo(f"  central   {network.central_url}  anchor {network.anchor}")
    for gateway in network.gateways.values():
        click.echo(
            f"  {gateway.spec.name:<14} orgs {','.join(gateway.codes):<10} "
            f"peer {gateway.config.peer_address}  api {gateway.config.api_url}"
        )
    click.echo("\nWeb pages (sign in with the user name and password, then the 6-digit code an")
    click.echo("authenticator app shows for the secret; 'gcx web-code SECRET' prints it too):")
    for where, people in network.web_users.items():
        click.echo(f"  {where:<14} {network.web_url(where)}")
        for person in people:
            roles = ",".join(person["roles"])
            org = f" for {person['organisation']}" if person["organisation"] else ""
            click.echo(
                f"    {roles:<17} {person['username']:<26} password {person['password']}  "
                f"2FA secret {person['totp_secret']}{org}"
            )
    if {"tower-hamlets", "dwp"} <= set(network.web_users):
        click.echo(
            "\n  To try it: sign in to tower-hamlets as benefits.officer, open the Address book,"
            "\n  search for Claims and write to Claims Processor at DWP; sign in to dwp as"
            "\n  claims.processor to read it and reply."
        )
    click.echo(f"\n  details, tokens and TLS file paths: {path}")
