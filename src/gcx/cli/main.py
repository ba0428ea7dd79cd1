"""``gcx``: the command line of central, the gateways, the audit log and the demo network.

Every command prints a refusal as ``error [code]: sentence`` on stderr and
exits 2, so scripts can match the code (:mod:`gcx.cli.common`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from gcx.cli.central import central
from gcx.cli.common import home_option, json_option, refusals, show
from gcx.cli.compliance import compliance as compliance_group
from gcx.cli.evidence import evidence as evidence_group
from gcx.cli.files import file_group
from gcx.cli.gateway import gateway
from gcx.cli.messages import message as message_group
from gcx.cli.services import service as service_group
from gcx.cli.web import web_code


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
        show(report.to_dict(), True)
    elif report.ok:
        click.echo(f"ok: {report.entries} entries, head {report.head_hash}")
    else:
        click.echo(f"BROKEN at entry {report.first_bad_seq}: {report.problem}")
    sys.exit(0 if report.ok else 1)


for group in (
    central,
    gateway,
    message_group,
    compliance_group,
    evidence_group,
    file_group,
    service_group,
    web_code,
):
    main.add_command(group)


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
