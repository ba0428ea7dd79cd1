"""A gateway's parts wired together in one place: configuration, storage, keys, directory.

Adapters are chosen here from configuration and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gcx import audit
from gcx.clock import Clock, SystemClock
from gcx.config import GatewayConfig
from gcx.gateway.directory import DirectoryKeeper
from gcx.gateway.home import GatewayKeys, load_keys
from gcx.gateway.services.backend import BackendClient, HttpBackendClient
from gcx.gateway.tokens import TokenService
from gcx.store import Database, open_database
from gcx.store.blobs import BlobStore, FileBlobStore
from gcx.store.transfer_files import ChunkStore, TransferFiles


@dataclass
class Gateway:
    config: GatewayConfig
    db: Database
    keys: GatewayKeys
    directory: DirectoryKeeper
    tokens: TokenService
    clock: Clock
    blobs: BlobStore
    # How the provider side of a service call reaches an organisation's backend.
    service_backend: BackendClient
    # Where bulk transfers' uploads and chunks live, beside the message blob store.
    chunks: ChunkStore
    # Called after a transaction that queued exchange work commits, by parts that
    # hold only the gateway (the receiver queueing alerts); the exchange worker
    # sets it to its wake-up when it starts.
    work_queued: Callable[[], None] = lambda: None

    @classmethod
    def open(cls, config: GatewayConfig, clock: Clock | None = None) -> Gateway:
        clock = clock or SystemClock()
        db = open_database(config.db_url)
        keys = load_keys(config)
        keeper = DirectoryKeeper(db, keys.anchor, config.network, clock)
        tokens = TokenService(db, list(config.organisations), clock)
        blobs = FileBlobStore(config.home / "blobs")
        chunks = TransferFiles(config.home / "blobs" / "transfers")
        return cls(config, db, keys, keeper, tokens, clock, blobs, HttpBackendClient(), chunks)

    def record(
        self, *, actor: str, action: str, subject: str, details: dict[str, Any] | None = None
    ) -> None:
        """Append one audit entry in its own transaction."""
        with self.db.transaction() as conn:
            audit.append(
                conn,
                actor=actor,
                action=action,
                subject=subject,
                now=self.clock.now(),
                details=details,
            )

    def close(self) -> None:
        self.db.dispose()
