"""``gcx file``: send files or a folder as one encrypted batch, and fetch received ones.

``gcx file send`` first asks the gateway whether the transfer would be
accepted (recipients in the directory, marking, names, quotas, space), so a
refusal comes before any byte is uploaded. It then uploads each file with
tus 1.0, remembering each upload's URL in a state file, so running the same
command again after a dropped connection or a gateway restart continues from
the offset the gateway holds. A progress bar on stderr shows bytes, rate and
time left. ``--wait`` waits for every recipient's signed receipt.

``gcx file get`` downloads each file to ``NAME.partial`` in the target
folder, checks its SHA-256 against the one the transfer lists, and only then
renames it into place.

This module is over 400 lines because resumable upload (state file, tus
offsets, progress) and verified download are one command group's two halves.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import click

from gcx.cli.common import fail
from gcx.errors import GcxError, InputError, RemoteRefusal
from gcx.protocol import strict_json
from gcx.protocol.message import check_file_name

PATCH_BYTES = 1024 * 1024 * 1024
BLOCK = 1024 * 1024
RETRIES = 20


class Api:
    """A small keep-alive HTTP client for the gateway's local API."""

    def __init__(self, url: str, token: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise click.UsageError("The API URL must start with http:// or https://.")
        self.parsed = parsed
        self.token = token
        self.connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            cls = (
                http.client.HTTPSConnection
                if self.parsed.scheme == "https"
                else http.client.HTTPConnection
            )
            # http.client sends a body it reads from in blocks of ``blocksize``
            # (8 KiB by default): 1 MiB blocks make a PATCH a few large writes.
            self.connection = cls(
                self.parsed.hostname or "", self.parsed.port, timeout=600, blocksize=BLOCK
            )
        return self.connection

    def reset(self) -> None:
        if self.connection is not None:
            self.connection.close()
        self.connection = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> http.client.HTTPResponse:
        connection = self._connect()
        all_headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        try:
            connection.request(method, path, body=body, headers=all_headers)
            return connection.getresponse()
        except (OSError, http.client.HTTPException):
            self.reset()
            raise

    def json(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            response = self.request(method, path, data, headers)
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteRefusal(
                0, "gateway-unreachable", f"The gateway did not answer: {exc}."
            ) from exc
        raw = response.read()
        if response.status >= 400:
            raise _refusal(response.status, raw)
        return strict_json.loads(raw) if raw else None


def _refusal(status: int, raw: bytes) -> RemoteRefusal:
    try:
        data = strict_json.loads(raw)
        return RemoteRefusal(status, str(data["code"]), str(data["message"]))
    except (ValueError, KeyError, TypeError):
        return RemoteRefusal(status, "http-error", f"The gateway answered HTTP {status}.")


class Progress:
    """Bytes, rate and time left on one line of stderr."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.started = time.monotonic()
        self.shown = 0.0

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and (now - self.shown > 0.2 or self.done >= self.total):
            self.shown = now
            elapsed = max(now - self.started, 1e-6)
            rate = self.done / elapsed
            left = (self.total - self.done) / rate if rate > 0 else 0.0
            width = 30
            filled = int(width * self.done / self.total) if self.total else width
            click.echo(
                f"\r[{'#' * filled}{'.' * (width - filled)}] "
                f"{self.done / 2**20:,.1f}/{self.total / 2**20:,.1f} MiB "
                f"{rate / 2**20:,.1f} MiB/s {left:,.0f} s left ",
                err=True,
                nl=False,
            )

    def finish(self) -> None:
        if self.enabled:
            click.echo("", err=True)


def collect(paths: tuple[str, ...]) -> list[tuple[Path, str]]:
    """Files named, or found in folders named, with the names they will carry."""
    found: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                (p, p.name) for p in sorted(path.rglob("*")) if p.is_file() and not p.is_symlink()
            )
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise InputError(f"{raw} is not a file or folder.")
    names = [name for _, name in found]
    if len(set(names)) != len(names):
        raise InputError("Two files in the batch have the same name; rename one of them.")
    for name in names:
        check_file_name(name)
    return found


def _state_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "gcx" / "uploads.json"


def _load_state(path: Path) -> dict[str, str]:
    try:
        return dict(strict_json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def _save_state(path: Path, state: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, path)


def _upload_key(api: Api, path: Path) -> str:
    stat = path.stat()
    return f"{api.parsed.geturl()}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _offset(api: Api, location: str) -> int | None:
    response = api.request("HEAD", location, headers={"Tus-Resumable": "1.0.0"})
    response.read()
    if response.status != 200:
        return None
    return int(response.headers["Upload-Offset"])


def _create(api: Api, path: Path, name: str, going: dict[str, str]) -> str:
    pairs = {"filename": name, "filetype": "application/octet-stream", **going}
    metadata = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())
    response = api.request(
        "POST",
        "/api/v1/uploads",
        headers={
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(path.stat().st_size),
            "Upload-Metadata": metadata,
        },
    )
    raw = response.read()
    if response.status != 201:
        raise _refusal(response.status, raw)
    return str(response.headers["Location"])


class _Body:
    """A PATCH body read from the file in blocks, counting progress as it goes."""

    def __init__(self, handle: Any, length: int, progress: Progress) -> None:
        self.handle = handle
        self.left = length
        self.progress = progress

    def read(self, size: int = BLOCK) -> bytes:
        if self.left <= 0:
            return b""
        data: bytes = self.handle.read(min(size, self.left, BLOCK))
        self.left -= len(data)
        self.progress.add(len(data))
        return data


def upload(
    api: Api,
    path: Path,
    name: str,
    state: dict[str, str],
    state_file: Path,
    progress: Progress,
    going: dict[str, str] | None = None,
) -> str:
    """Upload one file with tus, resuming a previous attempt; returns the upload id.

    ``going`` (``gcx-to`` and ``gcx-marking``) tells the gateway where the upload will
    be sent, so that it can send the sealed chunks ahead while the upload goes on;
    ``gcx-files``, ``gcx-batch`` and ``gcx-index`` that it is one file of a larger
    batch, sealed with the others as they arrive.
    """
    size = path.stat().st_size
    key = _upload_key(api, path)
    location = state.get(key)
    offset = _offset(api, location) if location else None
    if location is None or offset is None:
        location = _create(api, path, name, going or {})
        state[key] = location
        _save_state(state_file, state)
        offset = 0
    progress.add(offset)
    failures = 0
    with path.open("rb") as handle:
        while offset < size:
            length = min(PATCH_BYTES, size - offset)
            handle.seek(offset)
            before = progress.done
            try:
                response = api.request(
                    "PATCH",
                    location,
                    body=_Body(handle, length, progress),
                    headers={
                        "Tus-Resumable": "1.0.0",
                        "Upload-Offset": str(offset),
                        "Content-Type": "application/offset+octet-stream",
                        "Content-Length": str(length),
                    },
                )
                raw = response.read()
                if response.status != 204:
                    raise _refusal(response.status, raw)
                offset = int(response.headers["Upload-Offset"])
                failures = 0
            except (OSError, http.client.HTTPException):
                # Dropped connection or a restarting gateway: ask where it got to.
                failures += 1
                if failures > RETRIES:
                    raise
                progress.done = before
                time.sleep(min(5.0, 0.5 * failures))
                try:
                    held = _offset(api, location)
                except (OSError, http.client.HTTPException):
                    continue
                if held is None:
                    raise InputError(
                        "The gateway no longer holds this upload; start again."
                    ) from None
                progress.add(held - offset)
                offset = held
    return location.rsplit("/", 1)[-1]


@click.group("file")
def file_group() -> None:
    """Send and receive bulk file transfers (end-to-end encrypted, resumable)."""


_api = click.option(
    "--api",
    "api_url",
    envvar="GCX_API_URL",
    required=True,
    help="The gateway's local API URL (or GCX_API_URL).",
)
_token = click.option(
    "--token", envvar="GCX_TOKEN", required=True, help="Your API token (or GCX_TOKEN)."
)


@file_group.command("send")
@_api
@_token
@click.option("--to", "to", required=True, help="Recipient organisation codes, comma-separated.")
@click.option("--marking", required=True, help="OFFICIAL or OFFICIAL-SENSITIVE.")
@click.option("--wait", is_flag=True, help="Wait for every recipient's signed receipt.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds --wait waits.")
@click.option("--state-file", default=None, help="Where upload URLs are kept for resuming.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.argument("paths", nargs=-1, required=True)
def send(
    api_url: str,
    token: str,
    to: str,
    marking: str,
    wait: bool,
    timeout: float,
    state_file: str | None,
    as_json: bool,
    paths: tuple[str, ...],
) -> None:
    """Send PATHS (files, or folders whose files are sent) as one batch."""
    try:
        api = Api(api_url, token)
        recipients = [t.strip() for t in to.split(",") if t.strip()]
        files = collect(paths)
        api.json(
            "POST",
            "/api/v1/transfers/preflight",
            {
                "to": recipients,
                "marking": marking,
                "files": [{"name": n, "size": p.stat().st_size} for p, n in files],
            },
        )
        state_path = _state_path(state_file)
        state = _load_state(state_path)
        progress = Progress(sum(p.stat().st_size for p, _ in files), sys.stderr.isatty())
        started = time.monotonic()
        # Each file says where it is going, so that the gateway sends its chunks ahead,
        # and, in a batch of several, which batch it belongs to and its place in it, so
        # that the gateway seals the batch as its files arrive, in this order.
        going = {"gcx-to": ",".join(recipients), "gcx-marking": marking}
        batch = {}
        if len(files) > 1:
            batch = {"gcx-files": str(len(files)), "gcx-batch": uuid.uuid4().hex}
        ids = []
        for index, (path, name) in enumerate(files):
            place = batch | {"gcx-index": str(index)} if batch else {}
            ids.append(upload(api, path, name, state, state_path, progress, going | place))
        progress.finish()
        result = api.json(
            "POST",
            "/api/v1/transfers",
            {"to": recipients, "marking": marking, "uploads": ids, "names": [n for _, n in files]},
        )
        for path, _ in files:
            state.pop(_upload_key(api, path), None)
        _save_state(state_path, state)
        if wait:
            result = _wait(api, result["id"], timeout)
        result["elapsed_seconds"] = round(time.monotonic() - started, 3)
    except GcxError as error:
        fail(error)
        return
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        click.echo(f"transfer {result['id']}: {result['state']}")
        for entry in result.get("files", []):
            click.echo(f"  {entry['name']}  {entry['size']} bytes  sha256 {entry['sha256']}")


def _wait(api: Api, transfer_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = api.json("GET", f"/api/v1/transfers/{transfer_id}")
        if status["state"] in ("complete", "failed"):
            return status
        if time.monotonic() > deadline:
            raise RemoteRefusal(
                0, "timeout", f"No receipt within {timeout:.0f} s; still {status['state']}."
            )
        time.sleep(0.1)


@file_group.command("get")
@_api
@_token
@click.argument("transfer_id")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write the files into.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def get(api_url: str, token: str, transfer_id: str, out_dir: str, as_json: bool) -> None:
    """Download every file of a received transfer, checking each SHA-256."""
    try:
        api = Api(api_url, token)
        status = api.json("GET", f"/api/v1/transfers/{transfer_id}")
        if status.get("state") != "complete":
            raise InputError(f"The transfer is {status.get('state')}, not complete yet.")
        target = Path(out_dir)
        target.mkdir(parents=True, exist_ok=True)
        written = []
        progress = Progress(sum(f["size"] for f in status["files"]), sys.stderr.isatty())
        for entry in status["files"]:
            name = check_file_name(entry["name"])
            written.append(_download(api, transfer_id, entry, target / name, progress))
        progress.finish()
    except GcxError as error:
        fail(error)
        return
    result = {"id": transfer_id, "files": written}
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    else:
        for item in written:
            click.echo(f"{item['path']}  sha256 {item['sha256']}")


def _download(
    api: Api, transfer_id: str, entry: dict[str, Any], path: Path, progress: Progress
) -> dict[str, Any]:
    response = api.request("GET", f"/api/v1/transfers/{transfer_id}/files/{entry['index']}")
    if response.status != 200:
        raise _refusal(response.status, response.read())
    partial = path.with_name(path.name + ".partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as handle:
            while block := response.read(BLOCK):
                digest.update(block)
                handle.write(block)
                progress.add(len(block))
            handle.flush()
            os.fsync(handle.fileno())
    except (OSError, http.client.HTTPException) as exc:
        api.reset()
        partial.unlink(missing_ok=True)
        raise RemoteRefusal(0, "download-interrupted", f"The download stopped: {exc}.") from exc
    if digest.hexdigest() != entry["sha256"]:
        partial.unlink(missing_ok=True)
        raise RemoteRefusal(
            0, "download-digest-mismatch", f"{entry['name']} did not match its SHA-256."
        )
    os.replace(partial, path)
    return {"path": str(path), "size": entry["size"], "sha256": entry["sha256"]}
