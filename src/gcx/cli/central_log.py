"""``gcx gateway central-log``: what this gateway witnessed of central's audit log."""

from __future__ import annotations

import json
from pathlib import Path

import click

from gcx.cli.common import home_option, refusals


def central_log_group() -> click.Group:
    @click.group("central-log")
    def group() -> None:
        """This gateway's check that central never rewrites its audit history."""

    @group.command("show")
    @home_option
    @refusals
    def show(home: Path) -> None:
        """The head of central's log held here, and any alarm about it."""
        from gcx.config import GatewayConfig
        from gcx.gateway.central_witness import central_log_state
        from gcx.store import open_database

        db = open_database(GatewayConfig.load(home).db_url)
        try:
            click.echo(json.dumps(central_log_state(db), indent=2))
        finally:
            db.dispose()

    @group.command("accept")
    @home_option
    @refusals
    def accept(home: Path) -> None:
        """Clear the alarm by holding the head that raised it; audited.

        For when the change to central's log is explained (a restore from
        backup the operator announced); every later head must extend this one.
        """
        from gcx.config import GatewayConfig
        from gcx.gateway.central_witness import CentralLogWitness
        from gcx.gateway.runtime import Gateway

        gateway = Gateway.open(GatewayConfig.load(home))
        try:
            witness = CentralLogWitness(gateway.db, gateway.keys.anchor.public_key(), gateway.clock)
            click.echo(json.dumps(witness.accept_alarm(by="administrator"), indent=2))
        finally:
            gateway.close()

    return group
