"""``gcx``: the command line of central, the gateways, the audit log and the demo network.

Every command prints a refusal as ``error [code]: sentence`` on stderr and
exits 2, so scripts can match the code (:mod:`gcx.cli.common`).
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import click

from gcx.cli.common import home_option, json_option, refusals, show

# Each command group, imported only when it is used: importing them all (central's
# web pages, the store, alembic) took about a second before any command ran, which
# every ``gcx file send`` or ``gcx message send`` paid.
_GROUPS = {
    "central": ("gcx.cli.central", "central"),
    "compliance": ("gcx.cli.compliance", "compliance"),
    "evidence": ("gcx.cli.evidence", "evidence"),
    "file": ("gcx.cli.files", "file_group"),
    "gateway": ("gcx.cli.gateway", "gateway"),
    "message": ("gcx.cli.messages", "message"),
    "service": ("gcx.cli.services", "service"),
    "web-code": ("gcx.cli.web", "web_code"),
}


class _LazyGroup(click.Group):
    """A group whose subcommand groups (``_GROUPS``) are imported when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_GROUPS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _GROUPS and cmd_name not in self.commands:
            module, attribute = _GROUPS[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup)
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
