"""``gcx``: central, gateway, audit and demo commands.

Every command prints a refusal as ``error [code]: sentence`` on stderr and
exits 2, so scripts can match the code.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from gcx.cli.compliance import compliance as compliance_group
from gcx.cli.evidence import evidence as evidence_group
from gcx.cli.files import file_group
from gcx.cli.messages import message as message_group
from gcx.cli.services import service as service_group
from gcx.errors import GcxError

T = TypeVar("T")


def _fail(error: GcxError) -> None:
    body = error.to_dict()
    click.echo(f"error [{body['code']}]: {body['message']}", err=True)
    sys.exit(2)


def refusals(function: Callable[..., T]) -> Callable[..., T]:
    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return function(*args, **kwargs)
        except GcxError as error:
            _fail(error)
            raise  # unreachable; keeps the type checker content

    return wrapper


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def _print(value: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))
    elif isinstance(value, dict):
        for key, item in value.items():
            click.echo(f"{key}: {item}")
    else:
        click.echo(value)


home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The directory holding this service's configuration, keys and database.",
)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def main(verbose: bool) -> None:
    """gcx: the secure exchange for the UK public sector."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


# -- central ---------------------------------------------------------------


@main.group()
def central() -> None:
    """The network's trust service."""


@central.command("init")
@home_option
@click.option("--network", required=True, help="The network's name, e.g. 'gcx-demo'.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8443, show_default=True, type=int)
@click.option("--database-url", default="", help="postgresql://… (default: SQLite in --home).")
@refusals
def central_init(home: Path, network: str, host: str, port: int, database_url: str) -> None:
    """Create the network's root key and certificate and write the anchor."""
    from gcx.central.home import init_central
    from gcx.central.server import open_service
    from gcx.gateway.home import anchor_fingerprint

    init_central(
        home,
        network,
        now=dt.datetime.now(dt.UTC),
        listen_host=host,
        listen_port=port,
        database_url=database_url,
    )
    open_service(home).db.dispose()  # creates the schema now, not at first serve
    click.echo(f"anchor: {home / 'anchor.pem'}")
    click.echo(f"anchor fingerprint (SHA-256): {anchor_fingerprint(home / 'anchor.pem')}")


@central.command("serve")
@home_option
@refusals
def central_serve(home: Path) -> None:
    """Serve central's HTTPS API and refresh the directory every minute."""
    from gcx.central.server import serve

    serve(home)


@central.group("operator")
def central_operator() -> None:
    """Operator accounts (tokens for central's API)."""


@central_operator.command("add")
@home_option
@click.argument("name")
@refusals
def operator_add(home: Path, name: str) -> None:
    """Create an operator and show its token once."""
    from gcx.central.server import open_service

    service = open_service(home)
    token = service.add_operator(name)
    click.echo(token)


def _operator_client(home: Path, token: str | None) -> Any:
    from gcx.central.client import OperatorClient
    from gcx.config import CentralConfig

    config = CentralConfig.load(home)
    token = token or os.environ.get("GCX_OPERATOR_TOKEN")
    if not token:
        raise click.UsageError("Give --token or set GCX_OPERATOR_TOKEN.")
    return OperatorClient(config.url, home / "anchor.pem", token)


token_option = click.option("--token", help="Operator token (or GCX_OPERATOR_TOKEN).")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


async def _with_client(client: Any, call: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    async with client as c:
        return await call(c)


@central.group("org")
def central_org() -> None:
    """The member registry."""


@central_org.command("add")
@home_option
@token_option
@json_option
@click.argument("code")
@click.option("--name", required=True)
@click.option(
    "--type",
    "type_",
    required=True,
    help="local-authority, central-government, police, health, fire-and-rescue, supplier or other.",
)
@click.option("--contact", multiple=True, help="name <email>; may repeat.")
@refusals
def org_add(
    home: Path,
    token: str | None,
    as_json: bool,
    code: str,
    name: str,
    type_: str,
    contact: tuple[str, ...],
) -> None:
    """Register an organisation."""
    contacts = [{"contact": c} for c in contact]
    result = run(
        _with_client(
            _operator_client(home, token), lambda c: c.add_organisation(code, name, type_, contacts)
        )
    )
    _print(result, as_json)


@central_org.command("list")
@home_option
@token_option
@refusals
def org_list(home: Path, token: str | None) -> None:
    """List registered organisations."""
    result = run(_with_client(_operator_client(home, token), lambda c: c.list_organisations()))
    _print(result, True)


@central.group("enrolment")
def central_enrolment() -> None:
    """Gateway enrolment requests."""


@central_enrolment.command("list")
@home_option
@token_option
@click.option("--state", type=click.Choice(["pending", "active", "rejected", "revoked"]))
@refusals
def enrolment_list(home: Path, token: str | None, state: str | None) -> None:
    result = run(_with_client(_operator_client(home, token), lambda c: c.list_enrolments(state)))
    _print(
        [
            {
                k: v
                for k, v in e.items()
                if not k.endswith("certificates") and k != "certificate_pem"
            }
            for e in result
        ],
        True,
    )


@central_enrolment.command("approve")
@home_option
@token_option
@click.argument("enrolment_id")
@click.option("--reason", required=True, help="Recorded in the audit log.")
@click.option(
    "--override-reason",
    help="Approve without a current Code of Connection approval; the reason is recorded "
    "and shown on the dashboard.",
)
@refusals
def enrolment_approve(
    home: Path, token: str | None, enrolment_id: str, reason: str, override_reason: str | None
) -> None:
    """Approve a gateway: issue its certificates and add it to the directory.

    Every organisation it hosts needs a current Code of Connection approval or a
    granted extension, unless the operator overrides with a reason.
    """
    result = run(
        _with_client(
            _operator_client(home, token),
            lambda c: c.approve(
                enrolment_id,
                reason,
                override=override_reason is not None,
                override_reason=override_reason,
            ),
        )
    )
    click.echo(
        f"approved {result['gateway']} ({', '.join(result['organisations'])}); "
        f"certificate {result['certificate_fingerprint']}"
    )


@central_enrolment.command("reject")
@home_option
@token_option
@click.argument("enrolment_id")
@click.option("--reason", required=True)
@refusals
def enrolment_reject(home: Path, token: str | None, enrolment_id: str, reason: str) -> None:
    result = run(
        _with_client(_operator_client(home, token), lambda c: c.reject(enrolment_id, reason))
    )
    click.echo(f"rejected {result['gateway']}")


@central.group("gateway")
def central_gateway() -> None:
    """Admitted gateways."""


@central_gateway.command("revoke")
@home_option
@token_option
@click.argument("name")
@click.option("--reason", required=True)
@refusals
def gateway_revoke(home: Path, token: str | None, name: str, reason: str) -> None:
    """Revoke a gateway; its peers refuse it from the next directory on."""
    run(_with_client(_operator_client(home, token), lambda c: c.revoke_gateway(name, reason)))
    click.echo(f"revoked {name}")


# -- gateway ---------------------------------------------------------------


@main.group()
def gateway() -> None:
    """The process each organisation runs."""


@gateway.command("init")
@home_option
@click.option("--name", required=True, help="The gateway's name, e.g. 'tower-hamlets'.")
@click.option("--org", "orgs", multiple=True, required=True, help="A hosted organisation code.")
@click.option("--central", "central_url", required=True, help="Central's URL.")
@click.option(
    "--anchor",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    required=True,
    help="The network anchor file from the operator.",
)
@click.option("--anchor-fingerprint", help="Refuse the anchor unless it has this SHA-256.")
@click.option("--peer-host", default="127.0.0.1", show_default=True)
@click.option("--peer-port", default=9443, show_default=True, type=int)
@click.option("--api-host", default="127.0.0.1", show_default=True)
@click.option("--api-port", default=8080, show_default=True, type=int)
@click.option("--database-url", default="")
@click.option("--poll-seconds", default=30.0, show_default=True, type=float)
@click.option("--wait/--no-wait", default=False, help="Wait for approval and fetch certificates.")
@refusals
def gateway_init(
    home: Path,
    name: str,
    orgs: tuple[str, ...],
    central_url: str,
    anchor: Path,
    anchor_fingerprint: str | None,
    peer_host: str,
    peer_port: int,
    api_host: str,
    api_port: int,
    database_url: str,
    poll_seconds: float,
    wait: bool,
) -> None:
    """Make keys, pin the anchor and send the enrolment request."""
    from gcx.gateway.home import create_gateway_home, submit_enrolment
    from gcx.gateway.server import wait_for_certificates
    from gcx.store import open_database

    config, request = create_gateway_home(
        home,
        name=name,
        organisations=list(orgs),
        central_url=central_url,
        anchor=anchor,
        expected_anchor_fingerprint=anchor_fingerprint,
        peer_host=peer_host,
        peer_port=peer_port,
        api_host=api_host,
        api_port=api_port,
        database_url=database_url,
        directory_poll_seconds=poll_seconds,
    )
    open_database(config.db_url).dispose()
    result = run(submit_enrolment(config, request))
    click.echo(f"enrolment {result['id']} is {result['state']}; an operator must approve it.")
    if wait:
        run(wait_for_certificates(config))
        click.echo("approved: certificates stored")


@gateway.command("serve")
@home_option
@refusals
def gateway_serve(home: Path) -> None:
    """Run the gateway (waits for approval first if needed)."""
    from gcx.config import GatewayConfig
    from gcx.gateway.server import serve

    run(serve(GatewayConfig.load(home)))


@gateway.group("token")
def gateway_token() -> None:
    """API tokens for the organisation's people and systems."""


@gateway_token.command("add")
@home_option
@click.option("--org", required=True)
@click.option("--account", required=True, help="A user or system account name.")
@click.option("--kind", type=click.Choice(["user", "system"]), default="user", show_default=True)
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    help="staff, admin, system, security-officer or sign-off; may repeat.",
)
@refusals
def token_add(home: Path, org: str, account: str, kind: str, roles: tuple[str, ...]) -> None:
    """Create a token and show it once."""
    from gcx.clock import SystemClock
    from gcx.config import GatewayConfig
    from gcx.gateway.tokens import TokenService
    from gcx.store import open_database

    config = GatewayConfig.load(home)
    service = TokenService(open_database(config.db_url), list(config.organisations), SystemClock())
    click.echo(service.add(org, account, kind, list(roles)))


@gateway_token.command("revoke")
@home_option
@click.option("--org", required=True)
@click.option("--account", required=True)
@refusals
def token_revoke(home: Path, org: str, account: str) -> None:
    from gcx.clock import SystemClock
    from gcx.config import GatewayConfig
    from gcx.gateway.tokens import TokenService
    from gcx.store import open_database

    config = GatewayConfig.load(home)
    TokenService(open_database(config.db_url), list(config.organisations), SystemClock()).revoke(
        org, account
    )
    click.echo(f"revoked the tokens of {account}@{org}")


@gateway.command("status")
@home_option
@json_option
@refusals
def gateway_status_command(home: Path, as_json: bool) -> None:
    """The directory this gateway holds and whether it can exchange."""
    from gcx.config import GatewayConfig
    from gcx.gateway.app import gateway_status
    from gcx.gateway.runtime import Gateway

    _print(gateway_status(Gateway.open(GatewayConfig.load(home))), as_json)


@gateway.command("ping")
@home_option
@json_option
@click.argument("org")
@click.option("--from", "from_org", help="Which hosted organisation signs the ping.")
@refusals
def gateway_ping(home: Path, as_json: bool, org: str, from_org: str | None) -> None:
    """Send a signed ping to the gateway hosting ORG."""
    from gcx.config import GatewayConfig
    from gcx.gateway.peer import ping
    from gcx.gateway.runtime import Gateway

    gw = Gateway.open(GatewayConfig.load(home))
    gw.directory.reload()
    result = run(ping(gw, org, from_org=from_org))
    if as_json:
        _print(result.to_dict(), True)
    else:
        click.echo(
            f"{result.organisation} via gateway {result.gateway} at {result.peer_address}\n"
            f"  certificate {result.certificate_fingerprint}\n"
            f"  directory version {result.directory_version}\n"
            f"  round trip {result.round_trip_ms:.1f} ms"
        )


@gateway.group("mailbox")
def gateway_mailbox() -> None:
    """Shared mailboxes (e.g. benefits@E09000030) and their members."""


def _mailboxes(home: Path) -> Any:
    from gcx.clock import SystemClock
    from gcx.config import GatewayConfig
    from gcx.gateway.mailboxes import MailboxService
    from gcx.store import open_database

    config = GatewayConfig.load(home)
    return MailboxService(open_database(config.db_url), list(config.organisations), SystemClock())


@gateway_mailbox.command("add")
@home_option
@click.option("--org", required=True)
@click.option("--name", required=True, help="The mailbox name, e.g. 'benefits'.")
@click.option("--member", "members", multiple=True, help="An account that may read it.")
@refusals
def mailbox_add(home: Path, org: str, name: str, members: tuple[str, ...]) -> None:
    """Create a shared mailbox."""
    result = _mailboxes(home).add(org, name, list(members))
    click.echo(f"{result['mailbox']}: {', '.join(result['members']) or 'no members yet'}")


@gateway_mailbox.command("members")
@home_option
@click.option("--org", required=True)
@click.option("--name", required=True)
@click.option("--member", "members", multiple=True)
@refusals
def mailbox_members(home: Path, org: str, name: str, members: tuple[str, ...]) -> None:
    """Replace a shared mailbox's members."""
    result = _mailboxes(home).set_members(org, name, list(members))
    click.echo(f"{result['mailbox']}: {', '.join(result['members']) or 'no members'}")


@gateway_mailbox.command("list")
@home_option
@refusals
def mailbox_list(home: Path) -> None:
    for item in _mailboxes(home).list():
        click.echo(f"{item['mailbox']}: {', '.join(item['members']) or 'no members'}")


# -- audit -----------------------------------------------------------------


@main.group()
def audit() -> None:
    """The hash-chained audit log."""


@audit.command("verify")
@home_option
@json_option
@refusals
def audit_verify(home: Path, as_json: bool) -> None:
    """Check a central's or gateway's audit chain; name the first entry that does not fit."""
    from gcx.audit import verify
    from gcx.config import CENTRAL_FILE, CentralConfig, GatewayConfig
    from gcx.store import open_database

    config: CentralConfig | GatewayConfig = (
        CentralConfig.load(home) if (home / CENTRAL_FILE).exists() else GatewayConfig.load(home)
    )
    database = open_database(config.db_url)
    with database.transaction() as conn:
        report = verify(conn)
    if as_json:
        _print(report.to_dict(), True)
    elif report.ok:
        click.echo(f"ok: {report.entries} entries, head {report.head_hash}")
    else:
        click.echo(f"BROKEN at entry {report.first_bad_seq}: {report.problem}")
    sys.exit(0 if report.ok else 1)


main.add_command(message_group)
main.add_command(compliance_group)
main.add_command(evidence_group)
main.add_command(file_group)
main.add_command(service_group)


# -- demo ------------------------------------------------------------------


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo-network"),
    show_default=True,
)
@click.option("--serve", is_flag=True, help="Keep the network running until interrupted.")
@json_option
@refusals
def demo(directory: Path, serve: bool, as_json: bool) -> None:
    """Start a local demo network (central and three gateways) on loopback."""
    from gcx.demo import run_demo

    sys.exit(run_demo(directory, serve=serve, as_json=as_json))


if __name__ == "__main__":
    main()
