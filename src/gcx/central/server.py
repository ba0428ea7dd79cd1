"""Running central: open storage and keys, serve the HTTPS API, refresh the directory."""

from __future__ import annotations

from pathlib import Path

from gcx import crypto
from gcx.central.app import run
from gcx.central.home import load_keys
from gcx.central.service import CentralService
from gcx.clock import SystemClock
from gcx.config import CentralConfig
from gcx.private_files import check_private
from gcx.store import open_database
from gcx.store.db import sqlite_files


def open_service(home: Path) -> CentralService:
    config = CentralConfig.load(home)
    database = open_database(config.db_url)
    return CentralService(config, database, load_keys(config), SystemClock())


def serve(home: Path) -> None:
    # Before anything else: a home other users can read exposes its keys and
    # data, and the operator must hear of it now rather than keep serving.
    check_private(home, also=sqlite_files(CentralConfig.load(home).db_url))
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
