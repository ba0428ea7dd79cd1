"""Help pages every site serves to anyone: protective markings and the data-handling rules.

Public, like the sign-in pages: a person who has not signed in yet (or whose
session ended) may need them as much as one who has, and they say nothing
about the network that is not in the published guidance.
"""

from __future__ import annotations

from aiohttp import web

from gcx.web.markings import MARKINGS
from gcx.web.site import public, render


@public
async def markings_help(request: web.Request) -> web.StreamResponse:
    return render(
        request,
        "help_markings.html",
        title="Protective markings and handling rules",
        markings=list(MARKINGS.values()),
        marking=None,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/help/markings", markings_help)
