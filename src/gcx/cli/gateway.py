"""``gcx gateway``: the process each organisation runs, its tokens and mailboxes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gcx.cli.central_log import central_log_group
from gcx.cli.common import home_option, json_option, refusals, run, show
from gcx.cli.web import web_user_group
from gcx.web.gateway import GATEWAY_WEB_ROLES


@click.group()
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
    """API tokens for the organisation's systems (people issue their own on the web pages)."""


@gateway_token.command("add")
@home_option
@click.option("--org", required=True)
@click.option(
    "--account",
    required=True,
    help="The system's name; it may not be a person's or a shared mailbox's.",
)
@click.option(
    "--kind",
    type=click.Choice(["user", "system"]),
    default="system",
    show_default=True,
    help="Only system: a person's token is issued to the person, on their account page.",
)
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    help="staff, admin, system, security-officer or sign-off; may repeat.",
)
@refusals
def token_add(home: Path, org: str, account: str, kind: str, roles: tuple[str, ...]) -> None:
    """Create a system's token and show it once."""
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

    show(gateway_status(Gateway.open(GatewayConfig.load(home))), as_json)


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
        show(result.to_dict(), True)
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
    from gcx.gateway.messages.mailboxes import MailboxService
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


gateway.add_command(web_user_group("gateway", GATEWAY_WEB_ROLES))
gateway.add_command(central_log_group())
