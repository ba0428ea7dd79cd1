"""Running central: open storage and keys, serve the HTTPS API, refresh the directory."""

from __future__ import annotations

from pathlib import Path

from gcx import crypto
from gcx.central.app import run
from gcx.central.home import load_keys
from gcx.central.service import CentralService
from gcx.clock import SystemClock
from gcx.config import CentralConfig
from gcx.store import open_database


def open_service(home: Path) -> CentralService:
    config = CentralConfig.load(home)
    database = open_database(config.db_url)
    return CentralService(config, database, load_keys(config), SystemClock())


def serve(home: Path) -> None:
    service = open_service(home)
    config = service.config
    context = crypto.server_context(
        home / "anchor.pem",
        home / "tls.pem",
        home / "tls.key",
        config.passphrase(),
        require_client_cert=False,
    )
    service.publish_directory("central started")
    run(service, context)
