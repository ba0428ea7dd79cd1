"""``gcx central web-user`` and ``gcx gateway web-user``: people who sign in to the web pages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from gcx.cli.common import home_option, refusals
from gcx.web.accounts import WebAccounts
from gcx.web.people import NewUser


def open_accounts(side: str, home: Path) -> tuple[WebAccounts, list[str] | None]:
    """The sign-in rules of central or of a gateway, and the organisations it hosts."""
    if side == "central":
        from gcx.central.server import open_service
        from gcx.web.central import central_accounts

        return central_accounts(open_service(home)), None
    from gcx.config import GatewayConfig
    from gcx.gateway.runtime import Gateway
    from gcx.web.gateway import gateway_accounts

    gateway = Gateway.open(GatewayConfig.load(home))
    return gateway_accounts(gateway), list(gateway.config.organisations)


def _show(new: NewUser) -> None:
    click.echo(
        json.dumps(
            {
                "username": new.username,
                "password": new.password,
                "totp_secret": new.totp_secret,
                "totp_uri": new.totp_uri,
            },
            indent=2,
        )
    )


def web_user_group(side: str, roles: tuple[str, ...]) -> click.Group:
    @click.group("web-user")
    def group() -> None:
        """People who sign in to the web pages (password and authenticator app)."""

    @group.command("add")
    @home_option
    @click.option("--username", required=True)
    @click.option("--name", "display_name", required=True, help="The person's full name.")
    @click.option("--role", "chosen", multiple=True, required=True, type=click.Choice(roles))
    @click.option("--org", default=None, help="The organisation the person acts for.")
    @click.option(
        "--password-stdin", is_flag=True, help="Read the first password from standard input."
    )
    @refusals
    def add(
        home: Path,
        username: str,
        display_name: str,
        chosen: tuple[str, ...],
        org: str | None,
        password_stdin: bool,
    ) -> None:
        """Create a person; show their first password and authenticator secret once."""
        from gcx.errors import InputError

        accounts, hosted = open_accounts(side, home)
        if hosted is not None and org not in hosted:
            raise InputError(f"Give --org, one of the organisations here: {', '.join(hosted)}.")
        password = sys.stdin.readline().rstrip("\n") if password_stdin else None
        _show(
            accounts.add_user(
                username, display_name, list(chosen), org, by="administrator", password=password
            )
        )

    @group.command("unlock")
    @home_option
    @click.option("--username", required=True)
    @refusals
    def unlock(home: Path, username: str) -> None:
        """Unlock a person locked out after failed sign-ins."""
        open_accounts(side, home)[0].unlock(username, by="administrator")
        click.echo(f"{username} unlocked")

    @group.command("reset")
    @home_option
    @click.option("--username", required=True)
    @refusals
    def reset(home: Path, username: str) -> None:
        """New password and authenticator secret for someone who lost theirs, shown once.

        Their security keys are removed and every session of theirs ends.
        """
        _show(open_accounts(side, home)[0].reset_sign_in(username, by="administrator"))

    @group.command("list")
    @home_option
    @refusals
    def list_users(home: Path) -> None:
        """Everyone who can sign in here."""
        click.echo(json.dumps(open_accounts(side, home)[0].users(), indent=2))

    return group


@click.command("web-code")
@click.argument("secret")
def web_code(secret: str) -> None:
    """Print the security code an authenticator app would show now for SECRET.

    For the demo network and for testing; a real person uses an authenticator app.
    """
    import datetime as dt

    from gcx import crypto

    click.echo(crypto.totp_code(crypto.totp_secret_from_text(secret), dt.datetime.now(dt.UTC)))
