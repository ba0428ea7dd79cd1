"""``gcx evidence``: export the proof of an envelope from a gateway, and verify it offline.

``export`` runs on a gateway's host against its home (database and keys), as
``gcx gateway token add`` does. ``verify`` needs only the file and, ideally,
the network's anchor: no network and no database.

``verify`` exits 0 when every check passes and 1 when one fails, naming it.
It needs the network's anchor (``--anchor`` or ``--anchor-fingerprint``): a
file checked only against the anchor it carries proves nothing, since a
forger makes their own root, so without one it refuses to run (exit 2)
unless ``--no-anchor`` asks for that structural check on purpose.
A refusal (a message this gateway does not hold, an unreadable anchor file)
prints ``error [code]: sentence`` and exits 2, as every gcx command does.
Heavy imports wait until a command runs, so ``gcx --help`` stays quick.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from gcx.errors import GcxError
from gcx.private_files import open_private

if TYPE_CHECKING:
    from gcx.evidence import EvidenceInvalid, VerifiedEvidence

T = TypeVar("T")
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
_COPIES = {"sent": "out", "received": "in"}


def _refusals(function: Callable[..., T]) -> Callable[..., T]:
    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return function(*args, **kwargs)
        except GcxError as error:
            body = error.to_dict()
            click.echo(f"error [{body['code']}]: {body['message']}", err=True)
            sys.exit(2)

    return wrapper


@click.group()
def evidence() -> None:
    """Evidence files: proof of what was sent, and who signed for it."""


@evidence.command("export")
@click.argument("envelope_id")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The gateway's home directory.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the evidence file ('-' for standard output).",
)
@click.option(
    "--copy",
    type=click.Choice(sorted(_COPIES)),
    help="The copy to prove: as sent or as received (default: as sent, if sent from here).",
)
@_refusals
def export_command(envelope_id: str, home: Path, out: Path, copy: str | None) -> None:
    """Write the evidence file for a message this gateway sent or received."""
    from gcx.config import GatewayConfig
    from gcx.gateway.messages.evidence_export import export_evidence
    from gcx.gateway.runtime import Gateway

    gateway = Gateway.open(GatewayConfig.load(home))
    try:
        data = export_evidence(
            gateway,
            envelope_id,
            direction=_COPIES[copy] if copy else None,
            actor="administrator",
        )
    finally:
        gateway.close()
    if str(out) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    # The file names who wrote to whom and at what marking, so it is
    # created readable by its owner only; sharing it is a deliberate act.
    with open_private(out) as handle:
        handle.write(data)
    click.echo(f"evidence for envelope {envelope_id} written to {out} ({len(data):,} bytes)")


@evidence.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--anchor",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The network's anchor (root certificate, PEM) to check the file against.",
)
@click.option(
    "--anchor-fingerprint",
    help="The SHA-256 fingerprint of the network's anchor (hex; colons allowed).",
)
@click.option(
    "--no-anchor",
    is_flag=True,
    help="Check the file against the anchor it carries: consistency only, not its origin.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_refusals
def verify_command(
    file: Path,
    anchor: Path | None,
    anchor_fingerprint: str | None,
    no_anchor: bool,
    as_json: bool,
) -> None:
    """Check an evidence file offline; exit 0 only if every check passes."""
    from gcx import crypto
    from gcx.evidence import EvidenceInvalid, verify_call_evidence, verify_evidence
    from gcx.evidence._calls import is_call_evidence

    pinned = anchor is not None or anchor_fingerprint is not None
    if pinned and no_anchor:
        raise click.UsageError("give --anchor or --anchor-fingerprint, or --no-anchor, not both")
    if not pinned and not no_anchor:
        # A complete forgery, made under the forger's own root, is consistent
        # with the anchor it carries; passing it would be a false "verified".
        raise click.UsageError(
            "give the network's anchor (--anchor FILE or --anchor-fingerprint HEX); "
            "--no-anchor checks only that the file is consistent with the anchor it carries"
        )
    fingerprint = None
    if anchor_fingerprint is not None:
        fingerprint = anchor_fingerprint.replace(":", "").strip().lower()
        if not _FINGERPRINT.match(fingerprint):
            raise click.BadParameter(
                "give the 64 hex digits of the SHA-256 fingerprint",
                param_hint="--anchor-fingerprint",
            )
    trusted = crypto.Certificate.from_pem(anchor.read_bytes()) if anchor else None
    data = file.read_bytes()
    if is_call_evidence(data):
        # A service call's evidence (gcx service calls): the same command checks it.
        try:
            call = verify_call_evidence(data, anchor=trusted, anchor_fingerprint=fingerprint)
        except EvidenceInvalid as error:
            _print_failure(error, as_json)
            sys.exit(1)
        click.echo(json.dumps(call.to_dict(), indent=2, sort_keys=True))
        return
    try:
        result = verify_evidence(data, anchor=trusted, anchor_fingerprint=fingerprint)
    except EvidenceInvalid as error:
        _print_failure(error, as_json)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    else:
        _print_report(result)


def _print_failure(error: EvidenceInvalid, as_json: bool) -> None:
    if as_json:
        body = {
            "ok": False,
            "failed": {"check": error.check, "subject": error.subject, "message": error.message},
            "checks": [c.to_dict() for c in error.passed],
        }
        click.echo(json.dumps(body, indent=2, sort_keys=True))
        return
    click.echo("Checks")
    for check in error.passed:
        click.echo(f"  ok      {check.name:<19} {check.subject}")
    click.echo(f"  FAILED  {error.check:<19} {error.subject}: {error.message}")
    click.echo("")
    click.echo(f"NOT VERIFIED: the {error.check} check failed ({error.subject}).")


_WARNING = """\
WARNING: --no-anchor was given, so this file was checked against the network
anchor it carries. That shows the file is consistent, not that it comes from
your network: anyone can make such a file under a root of their own. Compare
the fingerprint above with the one the network operator publishes (``gcx
central init`` prints it), or verify again with --anchor or
--anchor-fingerprint."""


def _print_report(result: VerifiedEvidence) -> None:
    header = result.header
    sender = header.sender.organisation
    name = result.organisation_name

    click.echo(f"Evidence for envelope {header.id}")
    click.echo("")
    click.echo("Network anchor")
    click.echo(f"  {result.anchor.common_name}")
    click.echo(f"  SHA-256 fingerprint: {result.anchor.fingerprint}")
    if result.anchor_source == "file":
        click.echo("")
        click.echo(_WARNING)
    click.echo("")
    click.echo("What was sent")
    click.echo(f"  kind       {header.kind}, marked {header.marking}")
    click.echo(f"  from       {header.sender.user} at {sender} ({name(sender)})")
    click.echo(
        f"  sent at    {header.created_at.isoformat()} (expires {header.expires_at.isoformat()})"
    )
    for index, code in enumerate(header.recipients):
        label = "to" if index == 0 else ""
        own = ", the sender's own copy" if code == sender else ""
        click.echo(f"  {label:<10} {code} ({name(code)}){own}")
    click.echo(
        f"  content    {len(result.part_sizes)} encrypted parts, "
        f"{sum(result.part_sizes):,} bytes; digest {result.digest}"
    )
    directory = result.directory
    click.echo(
        f"  directory  version {directory.version} of {directory.network}, issued "
        f"{directory.issued_at.isoformat()}"
    )
    click.echo("")
    click.echo("Receipts")
    receipted = {r.organisation for r in result.receipts if r.kind == "delivery"}
    for receipt in result.receipts:
        who = f"{receipt.organisation} ({name(receipt.organisation)})"
        when = receipt.at.isoformat()
        if receipt.kind == "read":
            click.echo(f"  {who}: read by {receipt.reader} at {when}")
        elif receipt.outcome == "accepted":
            click.echo(f"  {who}: accepted at {when} by gateway {receipt.gateway}")
        else:
            click.echo(
                f"  {who}: refused at {when} by gateway {receipt.gateway}: {receipt.refusal}"
            )
        if receipt.unknown_addresses:
            click.echo(f"    not delivered to: {', '.join(receipt.unknown_addresses)}")
    for code in header.recipients:
        if code != sender and code not in receipted:
            click.echo(f"  {code} ({name(code)}): no delivery receipt held")
    click.echo("")
    click.echo("Checks")
    for check in result.checks:
        click.echo(f"  ok      {check.name:<19} {check.subject}: {check.detail}")
    click.echo("")
    if result.anchor_source == "file":
        click.echo("CONSISTENT: every check passed, against the anchor the file carries only.")
    else:
        click.echo("VERIFIED: every check passed.")
