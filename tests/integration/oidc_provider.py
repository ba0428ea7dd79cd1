"""A small OpenID Connect provider for tests: a real HTTP server on loopback.

It plays an organisation's identity provider: discovery, a sign-in page that
asks for a user name, the authorization code flow with PKCE (S256), client
authentication with a secret, RS256-signed ID tokens and a JWKS. ``tamper``
makes it issue a token a relying party must refuse.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from gcx import listeners


@dataclass
class StandInProvider:
    client_id: str = "gcx-gateway"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    tamper: str | None = None  # "audience", "nonce", "signature", "expired" or "hs256"
    issuer: str = ""
    _key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    _codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _loop: asyncio.AbstractEventLoop | None = None
    _stopping: asyncio.Event | None = None
    _thread: threading.Thread | None = None

    # -- the provider's endpoints ---------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/authorize", self.authorize_page)
        app.router.add_post("/authorize", self.authorize)
        app.router.add_post("/token", self.token)
        app.router.add_get("/jwks", self.jwks)
        return app

    async def discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def authorize_page(self, request: web.Request) -> web.Response:
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in request.query.items()
        )
        return web.Response(
            text=(
                '<!DOCTYPE html><html lang="en"><head><title>Council sign-in</title></head>'
                '<body><main><h1>Council sign-in</h1><form method="post" action="/authorize">'
                f'{fields}<label for="who">User name</label><input id="who" name="who">'
                '<button type="submit">Sign in</button></form></main></body></html>'
            ),
            content_type="text/html",
        )

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if form.get("client_id") != self.client_id or form.get("code_challenge_method") != "S256":
            raise web.HTTPBadRequest(text="bad client or no PKCE")
        code = secrets.token_urlsafe(24)
        self._codes[code] = {
            "who": str(form["who"]),
            "nonce": str(form["nonce"]),
            "challenge": str(form["code_challenge"]),
            "redirect_uri": str(form["redirect_uri"]),
        }
        query = urllib.parse.urlencode({"code": code, "state": str(form["state"])})
        raise web.HTTPFound(f"{form['redirect_uri']}?{query}")

    async def token(self, request: web.Request) -> web.Response:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        grant = self._codes.pop(str(form.get("code")), None)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        verifier = str(form.get("code_verifier", ""))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.decode().rstrip("=") != grant["challenge"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response({"id_token": self._id_token(grant), "token_type": "Bearer"})

    def _id_token(self, grant: dict[str, Any]) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": f"sub-{grant['who']}",
            "aud": "someone-else" if self.tamper == "audience" else self.client_id,
            "iat": now,
            "exp": now - 3600 if self.tamper == "expired" else now + 300,
            "nonce": "a-different-nonce" if self.tamper == "nonce" else grant["nonce"],
            "preferred_username": grant["who"],
        }
        if self.tamper == "hs256":
            # Signed with the client secret, which the relying party also knows.
            return jwt.encode(claims, self.client_secret, algorithm="HS256")
        key = self._key
        if self.tamper == "signature":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "test-key"})

    async def jwks(self, request: web.Request) -> web.Response:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return web.json_response({"keys": [{**public, "kid": "test-key", "use": "sig"}]})

    # -- running on a thread of its own ---------------------------------------------

    def start(self) -> None:
        """Serve on a port the kernel chooses; ``issuer`` names it."""
        sock = listeners.bind()
        self.issuer = f"http://127.0.0.1:{listeners.port_of(sock)}"
        ready = threading.Event()

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            runner = web.AppRunner(self.app(), access_log=None)
            await runner.setup()
            try:
                await web.SockSite(runner, sock).start()
                ready.set()
                await self._stopping.wait()
            finally:
                await runner.cleanup()

        # asyncio.run closes the loop only after the closed connections' callbacks have
        # run, so no socket is left for the garbage collector to find in a later test.
        self._thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
        self._thread.start()
        if not ready.wait(60):
            raise RuntimeError("the test identity provider did not start")

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
