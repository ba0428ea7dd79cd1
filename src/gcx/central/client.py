"""An operator's client for central's API, used by the CLI and the demo."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp

from gcx import crypto
from gcx.errors import PeerUnreachable, RemoteRefusal
from gcx.protocol import strict_json


class OperatorClient:
    def __init__(self, url: str, anchor: Path, token: str) -> None:
        self.url = url.rstrip("/")
        self._ssl: ssl.SSLContext = crypto.client_context(anchor)
        self._token = token
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> OperatorClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self._ssl),
            timeout=aiohttp.ClientTimeout(total=30),
            headers={"Authorization": f"Bearer {self._token}"},
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        assert self._session is not None, "use OperatorClient as an async context manager"
        try:
            async with self._session.request(method, self.url + path, json=body) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PeerUnreachable(f"Central at {self.url} could not be reached: {exc}.") from exc
        try:
            data = strict_json.loads(raw)
        except ValueError as exc:
            raise PeerUnreachable(f"Central answered {status} with a non-JSON body.") from exc
        if status >= 400:
            raise RemoteRefusal(status, str(data.get("code")), str(data.get("message")))
        return data

    async def add_organisation(
        self, code: str, name: str, type_: str, contacts: list[dict[str, str]] | None = None
    ) -> Any:
        return await self.call(
            "POST",
            "/api/v1/organisations",
            {"code": code, "name": name, "type": type_, "contacts": contacts or []},
        )

    async def list_organisations(self) -> Any:
        return await self.call("GET", "/api/v1/organisations")

    async def list_enrolments(self, state: str | None = None) -> Any:
        suffix = f"?state={state}" if state else ""
        return await self.call("GET", f"/api/v1/enrolments{suffix}")

    async def approve(
        self,
        enrolment_id: str,
        reason: str,
        *,
        override: bool = False,
        override_reason: str | None = None,
    ) -> Any:
        body: dict[str, Any] = {"reason": reason}
        if override:
            body.update(override=True, override_reason=override_reason)
        return await self.call("POST", f"/api/v1/enrolments/{enrolment_id}/approve", body)

    # -- Code of Connection (works with operator and compliance account tokens) --

    async def compliance(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call ``/api/v1/compliance{path}`` with a JSON body and answer."""
        return await self.call(method, "/api/v1/compliance" + path, body)

    async def compliance_raw(
        self, method: str, path: str, data: bytes | None = None, content_type: str | None = None
    ) -> bytes:
        """Send or fetch a non-JSON body (evidence, catalogues, exports)."""
        assert self._session is not None, "use OperatorClient as an async context manager"
        headers = {"Content-Type": content_type} if content_type else {}
        try:
            async with self._session.request(
                method, self.url + "/api/v1/compliance" + path, data=data, headers=headers
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise PeerUnreachable(f"Central at {self.url} could not be reached: {exc}.") from exc
        if status >= 400:
            try:
                refusal = strict_json.loads(raw)
            except ValueError:
                refusal = {}
            raise RemoteRefusal(status, str(refusal.get("code")), str(refusal.get("message")))
        return raw

    async def add_compliance_account(
        self, name: str, roles: list[str], organisation: str | None = None
    ) -> str:
        result = await self.compliance(
            "POST", "/accounts", {"name": name, "roles": roles, "organisation": organisation}
        )
        return str(result["token"])

    async def compliance_dashboard(self) -> Any:
        return await self.compliance("GET", "/dashboard")

    async def withdraw_approval(self, organisation: str, reason: str) -> Any:
        return await self.compliance(
            "POST", f"/organisations/{organisation}/withdraw", {"reason": reason}
        )

    async def compliance_sweep(self) -> Any:
        return await self.compliance("POST", "/sweep")

    async def reject(self, enrolment_id: str, reason: str) -> Any:
        return await self.call(
            "POST", f"/api/v1/enrolments/{enrolment_id}/reject", {"reason": reason}
        )

    async def revoke_gateway(self, name: str, reason: str) -> Any:
        return await self.call("POST", f"/api/v1/gateways/{name}/revoke", {"reason": reason})

    async def verify_audit(self) -> Any:
        return await self.call("GET", "/api/v1/audit/verify")
