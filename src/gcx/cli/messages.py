"""``gcx message``: send, list, read, status and recall secure messages through a gateway.

It talks to the gateway's local API like any back-office system would, with
the caller's own token (``--api``/``GCX_API_URL`` and ``--token``/``GCX_TOKEN``).
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from gcx.cli.common import fail
from gcx.errors import RemoteRefusal
from gcx.protocol import strict_json

api_option = click.option(
    "--api",
    "api_url",
    envvar="GCX_API_URL",
    required=True,
    help="The gateway's local API URL (or GCX_API_URL).",
)
token_option = click.option(
    "--token", envvar="GCX_TOKEN", required=True, help="Your API token (or GCX_TOKEN)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _call(
    api_url: str, token: str, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    if not api_url.startswith(("http://", "https://")):
        raise click.UsageError("The API URL must start with http:// or https://.")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        api_url.rstrip("/") + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            raw = response.read()
            if response.headers.get_content_type() == "application/json":
                return strict_json.loads(raw)
            return raw
    except urllib.error.HTTPError as error:
        try:
            data = strict_json.loads(error.read())
        except ValueError:
            data = {"code": "http-error", "message": f"HTTP {error.code}"}
        raise RemoteRefusal(error.code, str(data.get("code")), str(data.get("message"))) from None
    except urllib.error.URLError as error:
        raise RemoteRefusal(
            0,
            "api-unreachable",
            f"The gateway API at {api_url} could not be reached: {error.reason}.",
        ) from None


@click.group("message")
def message() -> None:
    """Secure messages between organisations."""


@message.command("send")
@api_option
@token_option
@json_option
@click.option("--to", "to", multiple=True, required=True, help="person@ORG, mailbox@ORG or ORG.")
@click.option("--cc", multiple=True)
@click.option("--subject", required=True)
@click.option("--body", help="The message text.")
@click.option(
    "--body-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the message text from a file (UTF-8).",
)
@click.option(
    "--marking",
    required=True,
    help="OFFICIAL or OFFICIAL-SENSITIVE (PROTECT and RESTRICTED are mapped).",
)
@click.option("--handling", help="Handling instructions for the recipient.")
@click.option(
    "--attach", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--read-receipt", is_flag=True, help="Ask for a receipt when it is read.")
def send(
    api_url: str,
    token: str,
    as_json: bool,
    to: tuple[str, ...],
    cc: tuple[str, ...],
    subject: str,
    body: str | None,
    body_file: Path | None,
    marking: str,
    handling: str | None,
    attach: tuple[Path, ...],
    read_receipt: bool,
) -> None:
    """Send a message; prints its id once the gateway has queued it."""
    if (body is None) == (body_file is None):
        raise click.UsageError("Give exactly one of --body or --body-file.")
    if body is not None:
        text = body
    else:
        assert body_file is not None
        try:
            text = body_file.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise click.UsageError(f"{body_file} is not UTF-8 text.") from exc
    attachments = [
        {
            "name": path.name,
            "media_type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            "content_base64": base64.b64encode(path.read_bytes()).decode(),
        }
        for path in attach
    ]
    try:
        result = _call(
            api_url,
            token,
            "POST",
            "/api/v1/messages",
            {
                "to": list(to),
                "cc": list(cc),
                "subject": subject,
                "body": text,
                "marking": marking,
                "handling": handling,
                "read_receipt": read_receipt,
                "attachments": attachments,
            },
        )
    except RemoteRefusal as error:
        fail(error)
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        mapped = (
            f" (marking {result['marking_mapped_from']} mapped to {result['marking']})"
            if result.get("marking_mapped_from")
            else ""
        )
        click.echo(f"queued {result['id']}{mapped}")


@message.command("list")
@api_option
@token_option
@json_option
@click.option("--box", type=click.Choice(["inbox", "sent"]), default="inbox", show_default=True)
@click.option("--limit", default=50, show_default=True)
@click.option("--before", type=int, default=None, help="The 'older' position a page ended with.")
def list_messages(
    api_url: str, token: str, as_json: bool, box: str, limit: int, before: int | None
) -> None:
    """List your inbox (and shared mailboxes you belong to) or your sent items."""
    path = f"/api/v1/messages?box={box}&limit={limit}"
    if before is not None:
        path += f"&before={before}"
    try:
        result = _call(api_url, token, "GET", path)
    except RemoteRefusal as error:
        fail(error)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for item in result["messages"]:
        state = "recalled" if item["recalled"] else ("read" if item["read_at"] else "new")
        subject = item.get("subject", "(recalled)")
        click.echo(f"{item['id']}  [{item['marking']}]  {item['from']:<32} {state:<8} {subject}")
    if result.get("older") is not None:
        click.echo(f"older messages: --before {result['older']}")


@message.command("read")
@api_option
@token_option
@json_option
@click.argument("message_id")
@click.option(
    "--save-attachments",
    type=click.Path(file_okay=False, path_type=Path),
    help="Save the attachments into this folder.",
)
def read(
    api_url: str, token: str, as_json: bool, message_id: str, save_attachments: Path | None
) -> None:
    """Read a message (marks it read)."""
    try:
        result = _call(api_url, token, "GET", f"/api/v1/messages/{message_id}")
        if save_attachments is not None:
            save_attachments.mkdir(parents=True, exist_ok=True)
            for item in result["attachments"]:
                data = _call(api_url, token, "GET", item["url"])
                target = save_attachments / Path(item["name"]).name
                target.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
                os.chmod(target, 0o600)
    except RemoteRefusal as error:
        fail(error)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"[{result['marking']}]")
    click.echo(f"From:    {result['from']}")
    click.echo(f"To:      {', '.join(result['to'])}")
    if result["cc"]:
        click.echo(f"Cc:      {', '.join(result['cc'])}")
    click.echo(f"Subject: {result['subject']}")
    if result.get("handling"):
        click.echo(f"Handling: {result['handling']}")
    click.echo("")
    click.echo(result["body"])
    for item in result["attachments"]:
        click.echo(
            f"  attachment {item['index']}: {item['name']} ({item['size']} bytes, "
            f"sha256 {item['sha256']})"
        )


@message.command("status")
@api_option
@token_option
@click.argument("message_id")
def status(api_url: str, token: str, message_id: str) -> None:
    """Delivery state and receipts of a message you sent."""
    try:
        result = _call(api_url, token, "GET", f"/api/v1/messages/{message_id}/status")
    except RemoteRefusal as error:
        fail(error)
    for receipt in result["receipts"]:
        receipt.pop("document", None)
    click.echo(json.dumps(result, indent=2))


@message.command("recall")
@api_option
@token_option
@click.argument("message_id")
def recall(api_url: str, token: str, message_id: str) -> None:
    """Withdraw a message you sent that has not been read."""
    try:
        _call(api_url, token, "POST", f"/api/v1/messages/{message_id}/recall")
    except RemoteRefusal as error:
        fail(error)
    click.echo(f"recalled {message_id}")
