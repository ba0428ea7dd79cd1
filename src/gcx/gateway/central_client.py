"""Talking to central over HTTPS, trusting only the pinned anchor."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp

from gcx.errors import GcxError, PeerUnreachable, RemoteRefusal
from gcx.protocol import strict_json

_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)


class CentralClient:
    def __init__(self, url: str, ssl_context: ssl.SSLContext) -> None:
        self.url = url.rstrip("/")
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CentralClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl), timeout=_TIMEOUT
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def _request(self, method: str, path: str, **kwargs: Any) -> tuple[int, bytes]:
        assert self._session is not None, "use CentralClient as an async context manager"
        try:
            async with self._session.request(method, self.url + path, **kwargs) as response:
                return response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PeerUnreachable(
                f"Central at {self.url} could not be reached: {type(exc).__name__}."
            ) from exc

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self._request(method, path, **kwargs)
        try:
            data = strict_json.loads(body)
        except ValueError as exc:
            raise PeerUnreachable(
                f"Central answered {status} with a body that is not JSON."
            ) from exc
        if status >= 400:
            raise _remote_error(status, data)
        return data

    async def directory(self) -> bytes:
        status, body = await self._request("GET", "/api/v1/directory")
        if status != 200:
            raise PeerUnreachable(f"Central answered {status} when asked for the directory.")
        return body

    async def submit_enrolment(self, request: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("POST", "/api/v1/enrolments", json=request)
        return result

    async def latest_checkpoint(self, gateway: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("GET", f"/api/v1/checkpoints/{gateway}")
        return result

    async def central_checkpoint(self, since: int) -> bytes:
        """Central's own signed audit head, proven to extend a head of ``since`` entries."""
        status, body = await self._request("GET", f"/api/v1/audit/checkpoint?since={since}")
        if status != 200:
            raise PeerUnreachable(f"Central answered {status} when asked for its audit head.")
        return body

    async def lodge_checkpoint(self, document: bytes) -> dict[str, Any]:
        result: dict[str, Any] = await self._json(
            "POST",
            "/api/v1/checkpoints",
            data=document,
            headers={"Content-Type": "application/json"},
        )
        return result

    async def enrolment(self, enrolment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._json("GET", f"/api/v1/enrolments/{enrolment_id}")
        return result


def _remote_error(status: int, data: Any) -> GcxError:
    if isinstance(data, dict) and "code" in data:
        return RemoteRefusal(status, str(data["code"]), str(data.get("message", "")))
    return PeerUnreachable(f"Central answered {status}.")
