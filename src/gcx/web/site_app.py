"""Building a site's aiohttp application: the frame, its own pages, then the service's.

The frame itself (middleware, sessions, CSRF, rendering) is :mod:`gcx.web.site`;
its own pages (sign-in, security keys) build on it, so the module that puts
them together is this one, above all three, and the frame never imports its
pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

import jinja2
from aiohttp import web

from gcx.errors import NotFound
from gcx.httpapi import run_sync
from gcx.web import help_pages, security_keys, sign_in, words
from gcx.web.assets import govuk_frontend_dir
from gcx.web.markings import marking_words
from gcx.web.site import (
    SITE_KEY,
    TEMPLATES_KEY,
    Site,
    public,
    security_headers,
    sessions_and_roles,
)

# The name the pruning loop has always logged under.
log = logging.getLogger("gcx.web.site")


def _templates() -> jinja2.Environment:
    loader = jinja2.ChoiceLoader(
        [
            jinja2.PackageLoader("gcx.web", "templates"),
            jinja2.PrefixLoader(
                {"govuk_frontend_jinja": jinja2.PackageLoader("govuk_frontend_jinja")}
            ),
        ]
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # One style for dates, times and sizes on every page (gcx.web.words).
    env.globals.update(
        day=words.day,
        moment=words.moment,
        size_text=words.size_text,
        access_words=words.access_words,
        marking_words=marking_words,
    )
    return env


def build_site_app(
    site: Site, pages: Iterable[Callable[[web.Application], None]]
) -> web.Application:
    """The aiohttp application serving ``site`` with the frame's pages and then ``pages``."""
    app = web.Application(
        middlewares=[security_headers, sessions_and_roles],
        client_max_size=site.max_form_bytes,
    )
    app[SITE_KEY] = site
    app[TEMPLATES_KEY] = _templates()
    app.cleanup_ctx.append(_prune_sessions_hourly)
    _add_assets(app)
    sign_in.add_routes(app)
    security_keys.add_routes(app)
    help_pages.add_routes(app)
    for add in pages:
        add(app)
    return app


async def _prune_sessions_hourly(app: web.Application) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            try:
                await run_sync(app[SITE_KEY].accounts.prune_sessions)
            except Exception:
                # Pruning is housekeeping: a failure is retried in an hour and
                # costs only space meanwhile.
                log.exception("pruning finished web sessions failed")
            await asyncio.sleep(3600)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _add_assets(app: web.Application) -> None:
    here = Path(__file__).parent / "static"
    frontend = govuk_frontend_dir()

    @public
    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name in {"govuk-frontend.min.css", "govuk-frontend.min.js"} and frontend is not None:
            return web.FileResponse(frontend / name, headers=_long_cache())
        if (here / name).is_file():
            return web.FileResponse(here / name, headers=_long_cache())
        raise NotFound("There is no such file.")

    app.router.add_get("/assets/{name:[a-z.-]+\\.(?:css|js)}", asset)
    if frontend is not None:
        app.router.add_static("/assets/fonts", frontend / "assets" / "fonts")
        app.router.add_static("/assets/images", frontend / "assets" / "images")


def _long_cache() -> dict[str, str]:
    return {"Cache-Control": "public, max-age=3600"}
