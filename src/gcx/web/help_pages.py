"""Help pages every site serves to anyone: protective markings and the data-handling rules.

Public, like the sign-in pages: a person who has not signed in yet (or whose
session ended) may need them as much as one who has, and they say nothing
about the network that is not in the published guidance. A person who is
signed in sees them as any other page, with their navigation and "Your
account".
"""

from __future__ import annotations

from aiohttp import web

from gcx.errors import SessionExpired
from gcx.httpapi import run_sync
from gcx.web.markings import MARKINGS
from gcx.web.site import COOKIE, SESSION_KEY, public, render, site_of


async def _signed_in_if_so(request: web.Request) -> None:
    """Use the person's session for the page if they have one (public pages get none)."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return
    try:
        # A notice waiting for the person's next page is left for it.
        session = await run_sync(site_of(request).accounts.session, cookie, take_flash=False)
    except SessionExpired:
        return  # signed out or never finished signing in: the page as anyone sees it
    request[SESSION_KEY] = session


@public
async def markings_help(request: web.Request) -> web.StreamResponse:
    await _signed_in_if_so(request)
    return render(
        request,
        "help_markings.html",
        title="Protective markings and handling rules",
        markings=list(MARKINGS.values()),
        marking=None,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/help/markings", markings_help)
