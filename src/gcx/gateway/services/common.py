"""What both sides of a service call share: headers, limits, directory caches, sealing, refusals."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from gcx import crypto
from gcx.clock import Clock
from gcx.errors import GcxError, SignatureInvalid
from gcx.gateway.directory_keys import verify_key_with_id
from gcx.httpapi import read_limited
from gcx.protocol import directory as dirproto
from gcx.protocol.services import RightsIndex

if TYPE_CHECKING:
    from gcx.gateway.home import GatewayKeys

log = logging.getLogger("gcx.gateway.services.calls")

REQUEST_HEADER = "X-Gcx-Call-Request"
RESPONSE_HEADER = "X-Gcx-Call-Response"
CALL_ID_HEADER = "X-Gcx-Call-Id"
USER_HEADER = "X-Gcx-User"
PURPOSE_HEADER = "X-Gcx-Purpose"
REPLAY_WINDOW = 100_000
# Documents under one batch signature at most: the path in each stays short (8 hashes).
BATCH_LIMIT = 256
# How long a busy gateway gathers documents to sign together, and what counts as busy.
BATCH_WINDOW_SECONDS = 0.001
BUSY_SECONDS = 0.01


@dataclass(frozen=True)
class Backend:
    provider: str
    name: str
    url: str


async def read_capped(response: aiohttp.ClientResponse, limit: int, error: type[GcxError]) -> bytes:
    """A backend's or peer's whole answer, refused with ``error`` past ``limit`` bytes."""
    return await read_limited(
        response.content,
        response.content_length,
        limit,
        lambda: error(f"The answer is over the limit of {limit} bytes."),
    )


class CallDirectory:
    """The directory's facts a call needs, built once per directory version.

    A call must not pay for indexing rights or parsing keys: the index is kept
    until the directory's version changes and shared by both sides, and keys
    come parsed from :mod:`gcx.gateway.directory_keys`, as for messages.
    """

    def __init__(self) -> None:
        self._index: RightsIndex | None = None
        # Batch roots whose signature was checked, shared by both sides: a
        # batch's signature is verified once, whichever of its calls comes first.
        self.roots = crypto.VerifiedRoots()

    def index(self, directory: dirproto.Directory) -> RightsIndex:
        index = self._index
        if index is None or index.version != directory.version:
            index = RightsIndex.build(
                directory.version,
                directory.services,
                directory.service_rights,
                directory.service_groups,
            )
            self._index = index
        return index

    @staticmethod
    def org_key(directory: dirproto.Directory, code: str) -> tuple[str, crypto.VerifyKey]:
        """An organisation's signing key (with its id), refused if the directory lists none."""
        org = directory.organisation(code)
        if org is None or not org.signing_key or not org.gateway:
            raise SignatureInvalid(
                f"The directory lists no signing key for {code[:16]}; the call was refused."
            )
        return verify_key_with_id(org.signing_key)


def signing_keys(keys: GatewayKeys) -> dict[str, tuple[crypto.SigningKey, str]]:
    """Each hosted organisation's signing key and its id, worked out once."""
    return {
        code: (org.signing, crypto.key_id(org.signing.public))
        for code, org in keys.organisations.items()
    }


class BatchSigner:
    """Call documents signed in batches (``gcx.batch-signed/1``), one signature per batch.

    Documents asked for together are signed with one signature per
    organisation over the Merkle root of its documents
    (:func:`gcx.crypto.sign_batch`), and the peer verifies that signature
    once (:class:`gcx.crypto.VerifiedRoots`). An idle gateway signs a lone
    document on the next turn of the event loop, in a batch of one: nothing
    waits for company. A busy one (its last batch, less than
    :data:`BUSY_SECONDS` ago, held more than one document) gathers for
    :data:`BATCH_WINDOW_SECONDS` first, since concurrent calls reach this
    point a loop turn or two apart and a window of one turn mostly holds one.
    At a modest rate batches stay single and nothing waits.
    """

    def __init__(self, keys: GatewayKeys) -> None:
        self._keys = signing_keys(keys)
        self._pending: dict[str, list[tuple[str, bytes, asyncio.Future[bytes]]]] = {}
        self._scheduled = False
        self._last_signed = -1.0
        self._last_size = 0
        self.documents = 0
        self.signatures = 0

    async def sign(self, organisation: str, payload_type: str, payload: bytes) -> bytes:
        """``payload`` signed as ``organisation`` (a hosted one), alone or with others."""
        if organisation not in self._keys:
            raise KeyError(organisation)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        self._pending.setdefault(organisation, []).append((payload_type, payload, future))
        if not self._scheduled:
            self._scheduled = True
            if self._last_size > 1 and loop.time() - self._last_signed < BUSY_SECONDS:
                loop.call_later(BATCH_WINDOW_SECONDS, self._sign_pending)
            else:
                loop.call_soon(self._sign_pending)
        return await future

    def _sign_pending(self) -> None:
        pending, self._pending = self._pending, {}
        self._scheduled = False
        self._last_signed = asyncio.get_running_loop().time()
        self._last_size = max((len(items) for items in pending.values()), default=0)
        for organisation, items in pending.items():
            key, key_id = self._keys[organisation]
            for start in range(0, len(items), BATCH_LIMIT):
                chunk = items[start : start + BATCH_LIMIT]
                try:
                    documents = crypto.sign_batch([(t, p) for t, p, _ in chunk], key, key_id)
                except Exception as exc:  # each waiting call learns of it
                    for _, _, future in chunk:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self.signatures += 1
                self.documents += len(chunk)
                for (_, _, future), document in zip(chunk, documents, strict=True):
                    if not future.done():
                        future.set_result(document)


def seal_bodies(
    keys: GatewayKeys,
    clock: Clock,
    organisation: str,
    call_id: str,
    request_headers: Mapping[str, str],
    request_body: bytes,
    response_headers: Mapping[str, str],
    response_body: bytes,
) -> bytes:
    """Both bodies sealed to this organisation's own key (a gcx.envelope/1 frame)."""
    own = keys.organisations[organisation]
    sealed = crypto.seal_envelope(
        kind="document",
        sender_org=organisation,
        sender_user="service-proxy",
        sender_key=own.signing,
        recipients={organisation: own.encryption.public},
        marking="OFFICIAL-SENSITIVE",
        parts=[
            (
                "request",
                request_headers.get("content-type", "application/octet-stream"),
                request_body,
            ),
            (
                "response",
                response_headers.get("content-type", "application/octet-stream"),
                response_body,
            ),
        ],
        now=clock.now(),
        envelope_id=call_id,
    )
    return sealed.framed()


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


class RowWriter(Protocol):
    """Where a call's row goes (:class:`gcx.gateway.services.call_log.CallLog`)."""

    async def write(self, row: dict[str, Any]) -> None: ...


async def log_refused(
    call_log: RowWriter, row: dict[str, Any], started: float, error: GcxError
) -> None:
    """Log a refused call's row; the refusal stands even if the log cannot take it."""
    # A call refused before its request document was made still gets an id.
    row["id"] = row["id"] or crypto.random_id(16)
    row.update(status=error.status, outcome=error.code)
    row["duration_ms"] = elapsed_ms(started)
    try:
        await call_log.write(row)
    except GcxError:
        log.warning("a refused call could not be logged")
