"""Signing in through the organisation's own identity provider (OpenID Connect).

A gateway turns this on with ``oidc_issuer`` and a client registered at the
provider. The sign-in page then offers "Sign in with <provider>" beside the
password form. The flow is the authorization code flow with PKCE: the
browser goes to the provider with a one-time ``state`` and ``nonce``; what
the callback needs (nonce, PKCE verifier, where to go next) travels sealed
in a cookie bound to that state, so a callback started elsewhere is refused
and one started before a restart, or on another replica, completes; the
gateway swaps the code for an ID token over a direct connection,
authenticating with its client secret, and checks the token (gcx.crypto).

The provider says who the person is; gcx still says what they may do. Only
people an administrator has added are let in, with their roles here, and
sign-in is refused for anyone disabled or locked. The provider is trusted
for the second factor, as it is for everything else the organisation's staff
sign in to.
"""

from __future__ import annotations

import dataclasses
import html
import json
import secrets
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from gcx import crypto
from gcx.clock import Clock
from gcx.config import GatewayConfig
from gcx.errors import ConfigError, CryptoError, GcxError, PeerUnreachable, SignInRefused
from gcx.httpapi import run_sync
from gcx.protocol import strict_json

STATE_COOKIE = "__Host-gcx-oidc"
_PENDING_SECONDS = 600
_LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str
    username_claim: str
    provider_name: str

    @classmethod
    def from_config(cls, config: GatewayConfig) -> OidcSettings | None:
        if not config.oidc_issuer:
            return None
        parsed = urllib.parse.urlsplit(config.oidc_issuer)
        if parsed.scheme != "https" and parsed.hostname not in _LOOPBACK_HOSTS:
            raise ConfigError("oidc_issuer must be an https:// address.")
        if not config.oidc_client_id:
            raise ConfigError("oidc_issuer is set but oidc_client_id is not.")
        return cls(
            config.oidc_issuer.rstrip("/"),
            config.oidc_client_id,
            config.oidc_client_secret(),
            config.oidc_username_claim,
            config.oidc_provider_name,
        )


@dataclass(frozen=True)
class Pending:
    """A sign-in sent to the provider and not yet back: held sealed in the browser's cookie."""

    nonce: str
    verifier: str
    next_page: str
    redirect_uri: str
    expires: float  # seconds since the epoch


def seal_pending(key: bytes, state: str, pending: Pending) -> str:
    """The state cookie's value: ``pending`` encrypted, usable only with ``state``.

    Kept in the browser rather than in this process, so a sign-in started before a
    restart, or on another replica behind the same address, still completes.
    """
    return crypto.seal_secret(key, json.dumps(dataclasses.asdict(pending)).encode(), _bound(state))


def open_pending(key: bytes, state: str, sealed: str, now: float) -> Pending:
    """The sign-in ``state`` names, from its cookie; refused if not this browser's or too old."""
    try:
        raw = strict_json.loads(crypto.open_secret(key, sealed, _bound(state)))
        pending = Pending(**raw)
    except (CryptoError, ValueError, TypeError) as exc:
        raise SignInRefused("That sign-in was not started from this browser; start again.") from exc
    if pending.expires < now:
        raise SignInRefused("That sign-in has expired; start again.")
    return pending


def _bound(state: str) -> str:
    return f"oidc sign-in {state}"


@dataclass
class OidcClient:
    settings: OidcSettings
    clock: Clock
    # Seals the pending sign-in into the state cookie (derived from the gateway's passphrase).
    sealing_key: bytes
    _metadata: dict[str, Any] | None = None
    _jwks: dict[str, Any] | None = None

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
                session.get(url) as answer,
            ):
                answer.raise_for_status()
                body = strict_json.loads(await answer.read())
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PeerUnreachable(
                "Your organisation's sign-in service could not be reached; try again or "
                "sign in with your password."
            ) from exc
        if not isinstance(body, dict):
            raise PeerUnreachable("Your organisation's sign-in service answered in a wrong form.")
        return body

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            found = await self._get_json(self.settings.issuer + "/.well-known/openid-configuration")
            if found.get("issuer", "").rstrip("/") != self.settings.issuer:
                raise ConfigError("The identity provider names a different issuer than configured.")
            self._metadata = found
        return self._metadata

    async def jwks(self, *, refresh: bool = False) -> dict[str, Any]:
        if self._jwks is None or refresh:
            self._jwks = await self._get_json(str((await self.metadata())["jwks_uri"]))
        return self._jwks

    async def start(self, next_page: str, redirect_uri: str) -> tuple[str, str]:
        """The provider's address to send the browser to, and the value of the state cookie."""
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, challenge = crypto.pkce_pair()
        expires = self.clock.now().timestamp() + _PENDING_SECONDS
        cookie = seal_pending(
            self.sealing_key, state, Pending(nonce, verifier, next_page, redirect_uri, expires)
        )
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid profile email",
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{(await self.metadata())['authorization_endpoint']}?{query}", cookie

    async def finish(self, state: str, code: str, cookie: str) -> tuple[str, str]:
        """The user name the provider vouches for, and the page to go on to."""
        pending = open_pending(self.sealing_key, state, cookie, self.clock.now().timestamp())
        token = await self._exchange(code, pending)
        claims = await self._verified(token, pending.nonce)
        username = claims.get(self.settings.username_claim)
        if not isinstance(username, str) or not username:
            raise SignInRefused(
                "Your organisation's sign-in did not say your user name; ask your administrator."
            )
        return username.lower(), pending.next_page

    async def _exchange(self, code: str, pending: Pending) -> str:
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.verifier,
        }
        auth = aiohttp.BasicAuth(self.settings.client_id, self.settings.client_secret)
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
                session.post(str(metadata["token_endpoint"]), data=form, auth=auth) as answer,
            ):
                body = strict_json.loads(await answer.read())
                status = answer.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PeerUnreachable(
                "Your organisation's sign-in service could not be reached; try again."
            ) from exc
        if status != 200 or not isinstance(body, dict) or not body.get("id_token"):
            raise SignInRefused("Your organisation's sign-in service refused the sign-in.")
        return str(body["id_token"])

    async def _verified(self, token: str, nonce: str) -> dict[str, Any]:
        def check(jwks: dict[str, Any]) -> dict[str, Any]:
            return crypto.verify_id_token(
                token,
                jwks,
                issuer=self.settings.issuer,
                audience=self.settings.client_id,
                nonce=nonce,
                now=self.clock.now(),
            )

        try:
            return check(await self.jwks())
        except CryptoError:
            # The provider may have rotated its keys since they were fetched.
            return check(await self.jwks(refresh=True))


OIDC_KEY = web.AppKey("gcx_web_oidc", OidcClient)


def add_routes(app: web.Application, client: OidcClient) -> None:
    from gcx.web.sign_in import safe_next, sign_in_refused_page
    from gcx.web.site import origin_of, public, set_session_cookie, site_of

    app[OIDC_KEY] = client

    def redirect_uri(request: web.Request) -> str:
        return f"{origin_of(request)}/sign-in/oidc/callback"

    @public
    async def start(request: web.Request) -> web.StreamResponse:
        target, sealed = await client.start(
            safe_next(request.query.get("next", "")), redirect_uri(request)
        )
        response = web.HTTPFound(target)
        # Lax, not Strict: the provider sends the browser back with a cross-site navigation.
        response.set_cookie(
            STATE_COOKIE,
            sealed,
            secure=True,
            httponly=True,
            samesite="Lax",
            path="/",
            max_age=_PENDING_SECONDS,
        )
        raise response

    @public
    async def callback(request: web.Request) -> web.StreamResponse:
        state = request.query.get("state", "")
        try:
            if request.query.get("error"):
                raise SignInRefused(
                    "Your organisation's sign-in service did not sign you in "
                    f"({request.query['error'][:60]})."
                )
            # The cookie opens only with the state it was sealed for: a callback this
            # browser did not start is refused.
            sealed = request.cookies.get(STATE_COOKIE, "")
            if not state or not sealed:
                raise SignInRefused("That sign-in was not started from this browser; start again.")
            username, next_page = await client.finish(state, request.query.get("code", ""), sealed)
            cookie = await run_sync(
                site_of(request).accounts.sign_in_federated, username, client.settings.issuer
            )
            session = await run_sync(site_of(request).accounts.session, cookie)
        except GcxError as exc:
            return sign_in_refused_page(request, exc)
        destination = html.escape(next_page or site_of(request).home_for(session.user))
        # A page, not a redirect: the browser came here from another site, and a
        # redirect would carry that on, so the Strict session cookie would not be
        # sent to the next page. Moving on from our own page is a same-site navigation.
        page = web.Response(
            text=(
                '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                f'<meta http-equiv="refresh" content="0;url={destination}">'
                "<title>Signed in</title></head><body><main><p>"
                f'You are signed in. <a href="{destination}">Continue</a></p></main></body></html>'
            ),
            content_type="text/html",
        )
        set_session_cookie(page, cookie)
        page.del_cookie(STATE_COOKIE, path="/", secure=True, httponly=True, samesite="Lax")
        return page

    app.router.add_get("/sign-in/oidc", start)
    app.router.add_get("/sign-in/oidc/callback", callback)
