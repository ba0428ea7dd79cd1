"""``gcx service``: publish, grant, revoke, list and call services through a gateway.

Like ``gcx message``, it talks to the gateway's local API with the caller's
own token (``--api``/``GCX_API_URL``, ``--token``/``GCX_TOKEN``); publishing,
granting and revoking need an admin token. ``gcx service reference NAME``
runs a reference backend with synthetic data, and ``gcx service
verify-evidence FILE`` checks a call's evidence file offline.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import click

from gcx.cli.common import fail
from gcx.errors import RemoteRefusal
from gcx.protocol import strict_json

api_option = click.option(
    "--api", "api_url", envvar="GCX_API_URL", required=True, help="The gateway's local API URL."
)
token_option = click.option("--token", envvar="GCX_TOKEN", required=True, help="Your API token.")


def _request(
    api_url: str,
    token: str,
    method: str,
    path: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    if not api_url.startswith(("http://", "https://")):
        raise click.UsageError("The API URL must start with http:// or https://.")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        api_url.rstrip("/") + path,
        method=method,
        data=data,
        headers={"Authorization": f"Bearer {token}", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except urllib.error.URLError as error:
        raise RemoteRefusal(0, "api-unreachable", f"{api_url} could not be reached.") from error


def _json(api_url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    status, _headers, raw = _request(
        api_url, token, method, path, data=data, headers={"Content-Type": "application/json"}
    )
    try:
        parsed = strict_json.loads(raw)
    except ValueError:
        parsed = {"code": "http-error", "message": f"HTTP {status}"}
    if status >= 400:
        fail(RemoteRefusal(status, str(parsed.get("code")), str(parsed.get("message"))))
    return parsed


@click.group("service")
def service() -> None:
    """Service access: signed, access-controlled, logged calls between organisations."""


@service.command("publish")
@api_option
@token_option
@click.option("--name", required=True)
@click.option("--version", "version", default="1", show_default=True)
@click.option("--title", default="")
@click.option("--openapi", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--backend", "backend_url", required=True, help="The backend's URL (kept private).")
@click.option("--timeout", "timeout_seconds", type=float, default=10.0, show_default=True)
@click.option("--max-body", "max_body_bytes", type=int, default=1 << 20, show_default=True)
@click.option("--logging", type=click.Choice(["full", "metadata"]), default="metadata")
@click.option("--requires-user/--no-requires-user", default=True, show_default=True)
@click.option("--requires-purpose/--no-requires-purpose", default=True, show_default=True)
@click.option("--rate", "rate_per_second", type=float, default=50.0, show_default=True)
@click.option("--burst", type=int, default=100, show_default=True)
def publish_command(api_url: str, token: str, openapi: Path | None, **fields: Any) -> None:
    """Publish (or update) a service of your organisation."""
    fields["openapi"] = strict_json.loads(openapi.read_text()) if openapi else {}
    result = _json(api_url, token, "POST", "/api/v1/services/published", fields)
    click.echo(f"published {fields['name']}; directory version {result['directory']}")


@service.command("grant")
@api_option
@token_option
@click.argument("name")
@click.option("--to", required=True, help="An organisation code, or group:NAME.")
@click.option("--method", "methods", multiple=True, help="Allowed method (repeat); default all.")
@click.option("--path", "paths", multiple=True, help="Allowed path prefix (repeat); default all.")
@click.option("--rate", "rate_per_second", type=float)
@click.option("--burst", type=int)
def grant_command(
    api_url: str,
    token: str,
    name: str,
    to: str,
    methods: tuple[str, ...],
    paths: tuple[str, ...],
    rate_per_second: float | None,
    burst: int | None,
) -> None:
    """Grant an organisation or group an access right to one of your services."""
    body = {
        "to": to,
        "methods": list(methods),
        "paths": list(paths),
        "rate_per_second": rate_per_second,
        "burst": burst,
    }
    result = _json(api_url, token, "POST", f"/api/v1/services/published/{name}/grants", body)
    click.echo(f"right {result['right']['id']} granted; directory version {result['directory']}")


@service.command("revoke")
@api_option
@token_option
@click.argument("right_id")
def revoke_command(api_url: str, token: str, right_id: str) -> None:
    """Revoke an access right; calls are refused from the next directory on."""
    result = _json(api_url, token, "POST", f"/api/v1/services/grants/{right_id}/revoke")
    click.echo(f"right {right_id} revoked; directory version {result['directory']}")


@service.command("list")
@api_option
@token_option
@click.option("--json", "as_json", is_flag=True)
def list_command(api_url: str, token: str, as_json: bool) -> None:
    """The services your organisation may call."""
    result = _json(api_url, token, "GET", "/api/v1/services")
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for entry in result["services"]:
        rights = "; ".join(
            f"{','.join(r['methods'])} {','.join(r['paths'])}" for r in entry["rights"]
        )
        click.echo(f"{entry['provider']}/{entry['name']} v{entry['version']}  {rights}")


@service.command("call")
@api_option
@token_option
@click.argument("target")
@click.option("--method", default="GET", show_default=True)
@click.option("--user", help="The end user (X-Gcx-User).")
@click.option("--purpose", help="The purpose of the lookup (X-Gcx-Purpose).")
@click.option("--data", help="A request body (text); '@FILE' reads a file.")
def call_command(
    api_url: str,
    token: str,
    target: str,
    method: str,
    user: str | None,
    purpose: str | None,
    data: str | None,
) -> None:
    """Call PROVIDER/SERVICE/PATH and print the answer (exit 2 on a gateway refusal)."""
    body = None
    if data is not None:
        body = Path(data[1:]).read_bytes() if data.startswith("@") else data.encode()
    headers = {"Content-Type": "application/json"}
    if user:
        headers["X-Gcx-User"] = user
    if purpose:
        headers["X-Gcx-Purpose"] = purpose
    status, answer_headers, raw = _request(
        api_url,
        token,
        method.upper(),
        "/services/" + target.lstrip("/"),
        data=body,
        headers=headers,
    )
    code = answer_headers.get("X-Gcx-Error")
    if code:
        message = strict_json.loads(raw).get("message", "") if raw else ""
        fail(RemoteRefusal(status, code, str(message)))
    click.echo(f"status {status}; call {answer_headers.get('X-Gcx-Call-Id')}", err=True)
    sys.stdout.buffer.write(raw + b"\n")


@service.command("reference")
@click.argument("name", type=click.Choice(["dwp-cis", "fsm", "dvla"]))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, required=True)
def reference_command(name: str, host: str, port: int) -> None:
    """Serve a reference backend with deterministic SYNTHETIC data."""
    from gcx.reference.app import serve

    serve(name, host, port)


@service.command("verify-evidence")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--anchor", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify_evidence_command(file: Path, anchor: Path | None) -> None:
    """Check a service call's evidence file offline (exit 1 if a check fails)."""
    from gcx import crypto
    from gcx.evidence import EvidenceInvalid, verify_call_evidence

    trusted = crypto.Certificate.from_pem(anchor.read_bytes()) if anchor else None
    try:
        result = verify_call_evidence(file.read_bytes(), anchor=trusted)
    except EvidenceInvalid as error:
        click.echo(f"NOT VERIFIED: {error.check} ({error.subject}): {error.message}")
        sys.exit(1)
    click.echo(json.dumps(result.to_dict(), indent=2, sort_keys=True))
