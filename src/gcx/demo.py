"""``gcx demo``: a local network on the embedded defaults, and a showcase run on it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import click

from gcx.errors import GcxError
from gcx.localnet import LocalNetwork


@dataclass
class Showcase:
    steps: list[dict[str, Any]] = field(default_factory=list)
    quiet: bool = False

    async def step(self, title: str, action: Callable[[], Awaitable[str]]) -> bool:
        started = time.perf_counter()
        try:
            detail, ok = await action(), True
        except (GcxError, AssertionError, aiohttp.ClientError, OSError) as exc:
            detail, ok = f"{type(exc).__name__}: {exc}", False
        seconds = round(time.perf_counter() - started, 3)
        self.steps.append({"step": title, "ok": ok, "detail": detail, "seconds": seconds})
        if not self.quiet:
            click.echo(f"{'PASS' if ok else 'FAIL'}  {title}\n      {detail}")
        return ok

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s["ok"] for s in self.steps)


async def _api(
    method: str, url: str, token: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            url,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response,
    ):
        return response.status, await response.json()


async def _showcase(network: LocalNetwork, show: Showcase) -> None:
    gateways = list(network.gateways.values())
    for source in gateways:
        for target in gateways:
            if source is target:
                continue

            async def ping(source: Any = source, target: Any = target) -> str:
                status, body = await _api(
                    "POST",
                    f"{source.config.api_url}/api/v1/ping",
                    source.token,
                    {"to": target.codes[0]},
                )
                assert status == 200, f"ping refused: {body}"
                return (
                    f"{body['organisation']} answered from {body['peer_address']} "
                    f"(directory v{body['directory_version']}) in {body['round_trip_ms']} ms"
                )

            await show.step(f"{source.codes[0]} pings {target.codes[0]} over mutual TLS", ping)

    async def bad_token() -> str:
        status, body = await _api(
            "GET", f"{gateways[0].config.api_url}/api/v1/status", "gcxt_not-a-real-token"
        )
        assert status == 401 and body["code"] == "token-invalid", body
        return f"refused with {status} [{body['code']}]"

    await show.step("an unknown API token is refused", bad_token)

    async def audits() -> str:
        from gcx.audit import verify
        from gcx.config import CentralConfig
        from gcx.store import open_database

        homes: list[tuple[str, str]] = [
            ("central", CentralConfig.load(network.central_home).db_url)
        ]
        homes += [(g.spec.name, g.config.db_url) for g in gateways]
        counts = []
        for name, url in homes:
            database = open_database(url)
            with database.transaction() as conn:
                report = verify(conn)
            database.dispose()
            assert report.ok, f"{name}: {report.problem}"
            counts.append(f"{name} {report.entries}")
        return "every audit chain verifies: " + ", ".join(counts)

    await show.step("every audit log verifies", audits)


def run_demo(directory: Path, *, serve: bool, as_json: bool) -> int:
    return asyncio.run(_run(directory.resolve(), serve=serve, as_json=as_json))


async def _run(directory: Path, *, serve: bool, as_json: bool) -> int:
    network = LocalNetwork(directory)
    started = time.perf_counter()
    show = Showcase(quiet=as_json)
    try:
        try:
            await network.start()
        except GcxError as error:
            click.echo(
                f"error [{error.code}]: {error.message} (logs in {directory / 'logs'})", err=True
            )
            return 2
        path = network.write_description()
        ready = round(time.perf_counter() - started, 1)
        if serve:
            _print_serving(network, path, ready)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            return 0
        if not as_json:
            click.echo(f"network up in {ready} s; {path}\n")
        await _showcase(network, show)
        if as_json:
            click.echo(
                json.dumps({"ok": show.ok, "network": str(path), "steps": show.steps}, indent=2)
            )
        else:
            click.echo(
                f"\n{'all steps passed' if show.ok else 'SOME STEPS FAILED'} "
                f"({round(time.perf_counter() - started, 1)} s)"
            )
        return 0 if show.ok else 1
    finally:
        with contextlib.suppress(Exception):
            network.stop()


def _print_serving(network: LocalNetwork, path: Path, ready: float) -> None:
    click.echo(f"gcx demo network up in {ready} s (Ctrl-C stops it)")
    click.echo(f"  central   {network.central_url}  anchor {network.anchor}")
    for gateway in network.gateways.values():
        click.echo(
            f"  {gateway.spec.name:<14} orgs {','.join(gateway.codes):<10} "
            f"peer {gateway.config.peer_address}  api {gateway.config.api_url}"
        )
    click.echo(f"  details, tokens and TLS file paths: {path}")
