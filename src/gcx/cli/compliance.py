"""``gcx compliance``: the Code of Connection from the command line.

Central-side commands talk to central's API with a token: an operator's
(``GCX_OPERATOR_TOKEN``) or a compliance account's (``GCX_COMPLIANCE_TOKEN``),
given with ``--token`` or either variable. ``selfcheck`` runs on a gateway's
host and needs only its home. Refusals print ``error [code]: sentence`` and
exit 2, as every gcx command does.

This module is over 400 lines because it is one command group with a
sub-command per step of a statement's life; each is short.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from gcx.cli.common import fail
from gcx.errors import GcxError
from gcx.protocol import strict_json

T = TypeVar("T")


def _run(home: Path, token: str | None, call: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    import asyncio

    from gcx.central.client import OperatorClient
    from gcx.config import CentralConfig

    token = token or os.environ.get("GCX_COMPLIANCE_TOKEN") or os.environ.get("GCX_OPERATOR_TOKEN")
    if not token:
        raise click.UsageError("Give --token or set GCX_COMPLIANCE_TOKEN or GCX_OPERATOR_TOKEN.")
    config = CentralConfig.load(home)

    async def go() -> T:
        async with OperatorClient(config.url, home / "anchor.pem", token) as client:
            return await call(client)

    try:
        return asyncio.run(go())
    except GcxError as error:
        fail(error)
        raise  # unreachable


def _show(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


central_home = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Central's home (for its URL and anchor).",
)
token_option = click.option("--token", help="Operator or compliance account token.")


@click.group()
def compliance() -> None:
    """The Code of Connection: catalogue, statements, assessment, approvals, extensions."""


@compliance.command("catalogue")
@central_home
@token_option
@click.option("--version", "version", help="Show one version's controls.")
@click.option("--oscal", is_flag=True, help="As an OSCAL catalog.")
def catalogue_show(home: Path, token: str | None, version: str | None, oscal: bool) -> None:
    """List catalogue versions, or show one."""
    if version is None:
        _show(_run(home, token, lambda c: c.compliance("GET", "/catalogues")))
        return
    suffix = "?format=oscal" if oscal else ""
    _show(_run(home, token, lambda c: c.compliance("GET", f"/catalogues/{version}{suffix}")))


@compliance.command("publish")
@central_home
@token_option
@click.argument("document", type=click.Path(dir_okay=False, exists=True, path_type=Path))
def catalogue_publish(home: Path, token: str | None, document: Path) -> None:
    """Publish a new catalogue version (operator); open statements keep theirs."""
    data = document.read_bytes()
    raw = _run(home, token, lambda c: c.compliance_raw("POST", "/catalogues", data, "text/yaml"))
    _show(strict_json.loads(raw))


@compliance.command("account")
@central_home
@token_option
@click.argument("name")
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice(["assessor", "security-officer", "sign-off"]),
)
@click.option("--org", "organisation", help="The organisation an officer acts for.")
def account_add(
    home: Path, token: str | None, name: str, roles: tuple[str, ...], organisation: str | None
) -> None:
    """Create an assessor or organisation officer account (operator); prints its token once."""
    click.echo(
        _run(home, token, lambda c: c.add_compliance_account(name, list(roles), organisation))
    )


@compliance.command("statements")
@central_home
@token_option
@click.option("--org", "organisation")
@click.option("--state")
def statements(home: Path, token: str | None, organisation: str | None, state: str | None) -> None:
    """List statements."""
    query = "&".join(f"{k}={v}" for k, v in (("organisation", organisation), ("state", state)) if v)
    _show(
        _run(
            home,
            token,
            lambda c: c.compliance("GET", "/statements" + ("?" + query if query else "")),
        )
    )


@compliance.command("show")
@central_home
@token_option
@click.argument("statement_id")
def statement_show(home: Path, token: str | None, statement_id: str) -> None:
    """Show a statement with answers, model answers, evidence and assessments."""
    _show(_run(home, token, lambda c: c.compliance("GET", f"/statements/{statement_id}")))


@compliance.command("start")
@central_home
@token_option
@click.argument("organisation")
def statement_start(home: Path, token: str | None, organisation: str) -> None:
    """Start a statement (security officer); a renewal copies last year's answers."""
    result = _run(
        home, token, lambda c: c.compliance("POST", "/statements", {"organisation": organisation})
    )
    click.echo(f"statement {result['id']} ({result['catalogue_version']}) is {result['state']}")


@compliance.command("answer")
@central_home
@token_option
@click.argument("statement_id")
@click.argument("control")
@click.option("--text", "answer", required=True)
@click.option("--choice")
@click.option("--plan")
@click.option("--plan-target", help="YYYY-MM-DD, for an unmet SHOULD control.")
def answer(
    home: Path,
    token: str | None,
    statement_id: str,
    control: str,
    answer: str,
    choice: str | None,
    plan: str | None,
    plan_target: str | None,
) -> None:
    """Answer (or re-confirm) one control."""
    body = {"answer": answer, "choice": choice, "plan": plan, "plan_target": plan_target}
    _run(
        home,
        token,
        lambda c: c.compliance("PUT", f"/statements/{statement_id}/answers/{control}", body),
    )
    click.echo(f"answered {control}")


@compliance.command("evidence")
@central_home
@token_option
@click.argument("statement_id")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--control", "controls", multiple=True, required=True)
@click.option("--type", "media_type", required=True, help="e.g. application/pdf")
@click.option("--expires", help="YYYY-MM-DD (default: a year)")
def evidence(
    home: Path,
    token: str | None,
    statement_id: str,
    file: Path,
    controls: tuple[str, ...],
    media_type: str,
    expires: str | None,
) -> None:
    """Attach an evidence file to controls."""
    from urllib.parse import quote

    query = f"?filename={quote(file.name)}&controls={','.join(controls)}"
    if expires:
        query += f"&expires_at={expires}"
    data = file.read_bytes()
    raw = _run(
        home,
        token,
        lambda c: c.compliance_raw(
            "POST", f"/statements/{statement_id}/evidence{query}", data, media_type
        ),
    )
    _show(strict_json.loads(raw))


def _step(name: str, help_text: str, *, reason: bool = False) -> None:
    @compliance.command(name, help=help_text)
    @central_home
    @token_option
    @click.argument("statement_id")
    @click.option("--reason", required=reason, default=None)
    def command(home: Path, token: str | None, statement_id: str, reason: str | None) -> None:
        body = {"reason": reason} if reason else {}
        result = _run(
            home, token, lambda c: c.compliance("POST", f"/statements/{statement_id}/{name}", body)
        )
        click.echo(f"{statement_id}: {result.get('state', result.get('id'))}")


_step("request-sign-off", "Ask a senior officer to sign the statement off.")
_step("sign-off", "Sign off and submit the statement (not by its author).")
_step("decline-sign-off", "Send the statement back to draft.", reason=True)
_step("second-assessment", "Open a second, consistency-only assessment (assessor).")
_step("reject", "Reject an assessed statement (operator).", reason=True)


@compliance.command("assess")
@central_home
@token_option
@click.argument("statement_id")
def assess(home: Path, token: str | None, statement_id: str) -> None:
    """Open the assessment of record (assessor)."""
    result = _run(
        home, token, lambda c: c.compliance("POST", f"/statements/{statement_id}/assessments", {})
    )
    click.echo(f"assessment {result['id']} is open")


@compliance.command("result")
@central_home
@token_option
@click.argument("assessment_id")
@click.argument("control")
@click.argument(
    "result",
    type=click.Choice(["compliant", "partially-compliant", "non-compliant", "not-applicable"]),
)
@click.option("--reason", required=True)
def result(
    home: Path, token: str | None, assessment_id: str, control: str, result: str, reason: str
) -> None:
    """Record a result for one control (assessor)."""
    body = {"result": result, "reason": reason}
    _run(
        home,
        token,
        lambda c: c.compliance("PUT", f"/assessments/{assessment_id}/results/{control}", body),
    )
    click.echo(f"{control}: {result}")


@compliance.command("complete")
@central_home
@token_option
@click.argument("assessment_id")
@click.option("--override", "override_outcome", type=click.Choice(["meets", "does-not-meet"]))
@click.option("--justification")
def complete(
    home: Path,
    token: str | None,
    assessment_id: str,
    override_outcome: str | None,
    justification: str | None,
) -> None:
    """Compute the verdict; an override needs --justification."""
    body = {"override_outcome": override_outcome, "justification": justification}
    _show(
        _run(
            home,
            token,
            lambda c: c.compliance("POST", f"/assessments/{assessment_id}/complete", body),
        )
    )


@compliance.command("return")
@central_home
@token_option
@click.argument("statement_id")
@click.option("--request", "requests", multiple=True, required=True, help="CONTROL:what to change")
def return_statement(
    home: Path, token: str | None, statement_id: str, requests: tuple[str, ...]
) -> None:
    """Send a statement back with change requests."""
    items = [
        {"control": r.split(":", 1)[0], "request": r.split(":", 1)[1] if ":" in r else r}
        for r in requests
    ]
    body = {"change_requests": items}
    result = _run(
        home, token, lambda c: c.compliance("POST", f"/statements/{statement_id}/return", body)
    )
    click.echo(f"{statement_id}: {result['state']}")


@compliance.command("approve")
@central_home
@token_option
@click.argument("statement_id")
@click.option("--reason", required=True)
@click.option("--valid-for-days", type=float)
def approve(
    home: Path, token: str | None, statement_id: str, reason: str, valid_for_days: float | None
) -> None:
    """Approve an assessed statement and issue the certificate of compliance (operator)."""
    body = {"reason": reason, "valid_for_days": valid_for_days}
    result = _run(
        home, token, lambda c: c.compliance("POST", f"/statements/{statement_id}/approve", body)
    )
    click.echo(f"{statement_id}: {result['state']}")


@compliance.command("withdraw")
@central_home
@token_option
@click.argument("organisation")
@click.option("--reason", required=True)
def withdraw(home: Path, token: str | None, organisation: str, reason: str) -> None:
    """Withdraw an organisation's approval now (operator)."""
    _show(_run(home, token, lambda c: c.withdraw_approval(organisation, reason)))


@compliance.command("extension")
@central_home
@token_option
@click.argument("organisation")
@click.option("--until", required=True, help="YYYY-MM-DD")
@click.option("--reason", required=True)
def extension(home: Path, token: str | None, organisation: str, until: str, reason: str) -> None:
    """Ask for an extension (organisation officer)."""
    body = {"organisation": organisation, "until": until, "reason": reason}
    _show(_run(home, token, lambda c: c.compliance("POST", "/extensions", body)))


@compliance.command("decide-extension")
@central_home
@token_option
@click.argument("extension_id")
@click.option("--grant/--refuse", required=True)
@click.option("--reason", required=True)
@click.option("--until", help="Grant to an earlier date than asked.")
def decide_extension(
    home: Path, token: str | None, extension_id: str, grant: bool, reason: str, until: str | None
) -> None:
    """Grant or refuse an extension (operator)."""
    body = {"reason": reason, "until": until}
    action = "grant" if grant else "refuse"
    _show(
        _run(
            home,
            token,
            lambda c: c.compliance("POST", f"/extensions/{extension_id}/{action}", body),
        )
    )


def _get(name: str, path: str, help_text: str) -> None:
    @compliance.command(name, help=help_text)
    @central_home
    @token_option
    def command(home: Path, token: str | None) -> None:
        _show(_run(home, token, lambda c: c.compliance("GET", path)))


_get("dashboard", "/dashboard", "Network counts: approved, pending, extended, lapsed, overrides.")
_get("register", "/register", "The register of extensions and exemptions.")
_get("notifications", "/notifications", "Expiry reminders and lapses.")
_get("consistency", "/consistency", "Agreement between assessors (Cohen's kappa).")


@compliance.command("export")
@central_home
@token_option
@click.argument("statement_id")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "oscal"]), default="json")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path))
def export(home: Path, token: str | None, statement_id: str, fmt: str, out: Path | None) -> None:
    """Export a statement with its assessment."""
    data = _run(
        home,
        token,
        lambda c: c.compliance_raw("GET", f"/statements/{statement_id}/export?format={fmt}"),
    )
    _write(data, out)


@compliance.command("report")
@central_home
@token_option
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="json")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path))
def report(home: Path, token: str | None, fmt: str, out: Path | None) -> None:
    """The network report."""
    _write(_run(home, token, lambda c: c.compliance_raw("GET", f"/report?format={fmt}")), out)


def _write(data: bytes, out: Path | None) -> None:
    if out is None:
        click.echo(data.decode())
    else:
        out.write_bytes(data)
        click.echo(f"wrote {out}")


@compliance.command("sweep")
@central_home
@token_option
def sweep(home: Path, token: str | None) -> None:
    """Record due reminders and lapses now (operator)."""
    _show(_run(home, token, lambda c: c.compliance_sweep()))


@compliance.command("selfcheck")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The gateway's home.",
)
@click.option("--org", "organisation", help="Which hosted organisation signs the report.")
@click.option("--submit", is_flag=True, help="Send the signed report to central.")
@click.option("--no-probe", is_flag=True, help="Skip the TLS probes (gateway not running).")
def selfcheck(home: Path, organisation: str | None, submit: bool, no_probe: bool) -> None:
    """Run the gateway's technical self-checks; sign and optionally submit the report."""
    import asyncio

    from gcx.config import GatewayConfig
    from gcx.gateway.selfcheck import self_check

    try:
        result = asyncio.run(
            self_check(
                GatewayConfig.load(home),
                organisation=organisation,
                submit=submit,
                probe=not no_probe,
            )
        )
    except GcxError as error:
        fail(error)
    _show(result)
