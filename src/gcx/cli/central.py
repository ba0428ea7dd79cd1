"""``gcx central``: the network's trust service, and the operator's commands for it."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from gcx.cli.common import home_option, json_option, refusals, run, show
from gcx.cli.web import web_user_group
from gcx.web.central import CENTRAL_WEB_ROLES

T = TypeVar("T")


@click.group()
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
    show(result, as_json)


@central_org.command("list")
@home_option
@token_option
@refusals
def org_list(home: Path, token: str | None) -> None:
    """List registered organisations."""
    result = run(_with_client(_operator_client(home, token), lambda c: c.list_organisations()))
    show(result, True)


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
    show(
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


@central_gateway.command("audit")
@home_option
@json_option
@refusals
def gateway_audit(home: Path, as_json: bool) -> None:
    """Each gateway's last accepted audit checkpoint, and any flag that its history changed.

    Exits 1 while a flag stands (until that gateway lodges a head central accepts).
    """
    from gcx.central.checkpoints import CheckpointWitness
    from gcx.central.server import open_service

    service = open_service(home)
    try:
        standing = CheckpointWitness(service.db, service.clock).standing()
    finally:
        service.db.dispose()
    if as_json:
        click.echo(json.dumps(standing, indent=2, sort_keys=True))
    elif not standing:
        click.echo("no gateway has lodged an audit checkpoint yet")
    else:
        for name, entry in sorted(standing.items()):
            flag = entry["flag"]
            if flag is not None:
                click.echo(f"{name}  FLAGGED {flag['flagged_at']}: {flag['reason']}")
            else:
                click.echo(f"{name}  {entry['tree_size']} entries, checked {entry['checked_at']}")
    if any(entry["flag"] is not None for entry in standing.values()):
        sys.exit(1)


central.add_command(web_user_group("central", CENTRAL_WEB_ROLES))
