"""Nobody acts in another person's name: tokens, shared mailboxes and service calls (issue 14).

Over real gateway processes: an administrator or the operator cannot make a
token carrying a person's or a mailbox's name, a system's token reads no
mailbox even when listed as a member, a person's token calls services only
as that person, and a system that states an end user is logged beside them
on both gateways.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from gcx.localnet import DEMO_GATEWAYS, GatewayProcess, LocalNetwork
from gcx.reference._data import sample_ninos
from gcx.reference.network import set_up_dwp_lookup
from gcx.store import open_database
from gcx.store.schema_services import service_calls

from .conftest import NetworkFactory, run_async
from .netutil import audit_log, eventually, gcx, http, log_tails

pytestmark = pytest.mark.integration

COUNCIL = "E09000030"
NINO = sample_ninos(1)[0]
PURPOSE = "housing benefit review, case HB-7"


@pytest.fixture(scope="module")
def network(network_factory: NetworkFactory) -> LocalNetwork:
    net = network_factory(DEMO_GATEWAYS[:2], name="impersonation")
    try:
        run_async(set_up_dwp_lookup(net))
    except Exception as exc:
        raise AssertionError(f"reference service set-up failed: {exc}\n{log_tails(net)}") from exc
    return net


def _token_add(gateway: GatewayProcess, account: str, kind: str, *roles: str) -> Any:
    args = ["gateway", "token", "add", "--home", str(gateway.home), "--org", COUNCIL]
    args += ["--account", account, "--kind", kind]
    for role in roles:
        args += ["--role", role]
    return gcx(*args)


def _system(network: LocalNetwork, account: str, *roles: str) -> str:
    made = _token_add(network.gateways["tower-hamlets"], account, "system", *roles)
    assert made.returncode == 0, made.stderr
    return str(made.stdout.strip())


def test_the_command_line_makes_no_token_in_a_persons_or_mailboxs_name(
    network: LocalNetwork,
) -> None:
    """gcx gateway token add refuses a person's token and a system named as a person or mailbox."""
    council = network.gateways["tower-hamlets"]
    person = _token_add(council, "benefits.officer", "user", "staff")
    assert person.returncode == 2 and "[person-token-refused]" in person.stderr, person.stderr
    for name in ("benefits.officer", "benefits"):
        named = _token_add(council, name, "system", "system")
        assert named.returncode == 2 and "[account-name-taken]" in named.stderr, named.stderr


async def test_a_system_listed_as_a_member_still_cannot_read_the_mailbox(
    network: LocalNetwork,
) -> None:
    """Shared mailboxes are read through a person's membership only; each read names the reader."""
    council, dwp = network.gateways["tower-hamlets"], network.gateways["dwp"]
    robot = await asyncio.to_thread(_system, network, "mail-robot", "staff", "system")
    home = str(council.home)
    members = ["gateway", "mailbox", "members", "--home", home, "--org", COUNCIL]
    members += ["--name", "benefits", "--member", "benefits.officer"]
    changed = await asyncio.to_thread(gcx, *members, "--member", "mail-robot")
    assert changed.returncode == 0, changed.stderr
    try:
        status, sent, _ = await http(
            "POST",
            f"{dwp.config.api_url}/api/v1/messages",
            token=dwp.token,
            body={
                "to": [f"benefits@{COUNCIL}"],
                "subject": "c",
                "body": "x",
                "marking": "OFFICIAL",
            },
        )
        assert status == 202, sent

        async def arrived() -> None:
            _, page, _ = await http(
                "GET", f"{council.config.api_url}/api/v1/messages", token=council.token
            )
            assert sent["id"] in [m["id"] for m in page["messages"]], page

        await eventually(arrived, timeout=90, what="the message in the benefits mailbox")
        url = f"{council.config.api_url}/api/v1/messages/{sent['id']}"
        status, body, _ = await http("GET", url, token=robot)
        assert (status, body["code"]) == (403, "message-not-yours"), body
        status, page, _ = await http(
            "GET", f"{council.config.api_url}/api/v1/messages", token=robot
        )
        assert sent["id"] not in [m["id"] for m in page["messages"]]
        status, body, _ = await http("GET", url, token=council.token)
        assert status == 200, body
        with audit_log(council.config.db_url) as log:
            readers = [e.actor for e in log.entries("message.read") if e.subject == sent["id"]]
        assert readers == [f"user:benefits.officer@{COUNCIL}"]
    finally:
        restored = await asyncio.to_thread(gcx, *members)
        assert restored.returncode == 0, restored.stderr


async def _call(
    gateway: GatewayProcess, token: str, user: str | None
) -> tuple[int, Any, dict[str, str]]:
    import aiohttp

    headers = {"Authorization": f"Bearer {token}", "X-Gcx-Purpose": PURPOSE}
    if user is not None:
        headers["X-Gcx-User"] = user
    url = f"{gateway.config.api_url}/services/DWP/dwp-cis/customers/{NINO}"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        return answer.status, await answer.read(), dict(answer.headers)


def _rows(gateway: GatewayProcess, **where: Any) -> list[Any]:
    database = open_database(gateway.config.db_url)
    try:
        with database.read() as conn:
            query = sa.select(service_calls).where(
                *(service_calls.c[name] == value for name, value in where.items())
            )
            return list(conn.execute(query).all())
    finally:
        database.dispose()


async def test_a_persons_token_calls_only_as_that_person(network: LocalNetwork) -> None:
    """X-Gcx-User naming someone else on a person's token: 403 user-mismatch, logged as them."""
    council = network.gateways["tower-hamlets"]
    status, body, headers = await _call(council, council.token, "another.officer")
    assert (status, headers.get("X-Gcx-Error")) == (403, "user-mismatch"), body
    refused = await asyncio.to_thread(_rows, council, outcome="user-mismatch")
    assert [(r.consumer_user, r.consumer_system) for r in refused] == [("benefits.officer", None)]
    status, body, _ = await _call(council, council.token, "benefits.officer")
    assert status == 200, body


async def test_a_system_stating_a_user_is_logged_with_them_on_both_sides(
    network: LocalNetwork,
) -> None:
    """A system's call for an end user records the user and the system in both call logs."""
    council, dwp = network.gateways["tower-hamlets"], network.gateways["dwp"]
    system = await asyncio.to_thread(_system, network, "housing-system", "system")
    status, body, headers = await _call(council, system, "benefits.officer")
    assert status == 200, body
    call_id = headers["X-Gcx-Call-Id"]
    for gateway in (council, dwp):
        rows = await asyncio.to_thread(_rows, gateway, id=call_id)
        assert [(r.consumer_user, r.consumer_system) for r in rows] == [
            ("benefits.officer", "housing-system")
        ], gateway.spec.name


@pytest.mark.parametrize("header", ["X-Gcx-User", "X-Gcx-Purpose"])
async def test_non_utf8_caller_headers_are_refused_with_a_code(
    network: LocalNetwork, header: str
) -> None:
    """Bytes that are not UTF-8 in X-Gcx-User or X-Gcx-Purpose: 400 header-invalid, not 500."""
    council = network.gateways["tower-hamlets"]
    system = await asyncio.to_thread(_system, network, f"raw-{header.lower()[6:]}", "system")
    host, port = council.config.api_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        request = (
            f"GET /services/DWP/dwp-cis/customers/{NINO} HTTP/1.1\r\n"
            f"Host: {host}\r\nAuthorization: Bearer {system}\r\nConnection: close\r\n"
        ).encode()
        request += f"{header}: ".encode() + b"caf\xe9 \xff\r\n\r\n"
        writer.write(request)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    assert head.startswith("http/1.1 400"), head
    assert "x-gcx-error: header-invalid" in head, head
