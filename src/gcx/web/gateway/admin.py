"""Pages for an organisation's administrators: the gateway's health, people and API tokens.

An administrator acts for one organisation. The gateway may host others, so
every person or token a page touches is first looked up within the
administrator's own organisation; a name from another one is "not found",
exactly as if it did not exist. The health overview (read by
:mod:`gcx.web.gateway.admin_health`) is the gateway's own, except the list of
failed deliveries, which names only the administrator's organisation's sending.

The people pages are :mod:`gcx.web.people_pages`, shared with central's
operator. Tokens change through the same use case as the command line
(:class:`~gcx.gateway.tokens.TokenService`), which writes the audit entries,
naming the administrator as the actor. An administrator adds *system* tokens
only, never one in a person's or a shared mailbox's name: a person issues
their own token on their account page (:mod:`gcx.web.gateway.own_tokens`).
An administrator may revoke any token of their organisation. A new token is
shown once, in the answer to the form that made it: only its hash is stored.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gcx.errors import AccountNameTaken, Forbidden, GcxError, NotFound
from gcx.gateway.tokens import ROLES as TOKEN_ROLES
from gcx.httpapi import run_sync
from gcx.protocol.identifiers import check_account_name
from gcx.web.accounts import WebUser
from gcx.web.gateway import GATEWAY_WEB_ROLES, parts_of
from gcx.web.gateway.admin_health import gateway_health
from gcx.web.people_pages import (
    CENTRAL_ONLY_ROLES,
    PeopleScope,
    add_people_routes,
    checked,
    role_items,
)
from gcx.web.site import (
    FormErrors,
    Site,
    field_text,
    form_of,
    needs,
    redirect,
    render,
    user_of,
)
from gcx.web.words import moment

ROLE_HINTS = {
    "staff": "Sends and receives messages and files, and uses services.",
    "admin": "Manages people and API tokens, and sees the gateway's health.",
    "security-officer": "Answers for the organisation's Code of Connection.",
    "sign-off": "Signs off the organisation's Code of Connection.",
    "system": "A system that calls the local API (tokens only).",
}


PEOPLE = PeopleScope(
    manager="admin",
    base="/admin/people",
    roles=GATEWAY_WEB_ROLES,
    role_hints=ROLE_HINTS,
    service_words="this gateway's pages",
    manager_words="administrator",
    default_roles=("staff",),
    held_elsewhere=CENTRAL_ONLY_ROLES,
)


def navigation(site: Site) -> None:
    site.nav(text="Administration", href="/admin", roles={"admin"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin", overview)
    add_people_routes(app, PEOPLE)
    app.router.add_get("/admin/tokens", tokens)
    app.router.add_get("/admin/tokens/add", add_token_form)
    app.router.add_post("/admin/tokens/add", add_token)
    app.router.add_get("/admin/tokens/revoke", revoke_confirm)
    app.router.add_post("/admin/tokens/revoke", revoke_token)


def _organisation(user: WebUser) -> str:
    # A gateway's people all act for an organisation; one without would see
    # every organisation's people, so the pages refuse rather than guess.
    if not user.organisation:
        raise Forbidden("Your account is not an organisation's; the administration pages need one.")
    return user.organisation


@needs("admin")
async def overview(request: web.Request) -> web.StreamResponse:
    organisation = _organisation(user_of(request))
    health = await run_sync(gateway_health, parts_of(request).gateway, organisation)
    return render(request, "gateway/admin_overview.html", title="Administration", health=health)


# -- API tokens ---------------------------------------------------------------------


@needs("admin")
async def tokens(request: web.Request) -> web.StreamResponse:
    organisation = _organisation(user_of(request))
    listed = await run_sync(parts_of(request).gateway.tokens.list_for, organisation)
    for token in listed:
        for key in ("created_at", "last_used_at", "revoked_at"):
            token[key + "_text"] = moment(token[key])
    return render(request, "gateway/admin_tokens.html", title="API tokens", tokens=listed)


def _add_token_page(
    request: web.Request,
    *,
    values: dict[str, Any],
    errors: FormErrors | None = None,
    status: int = 200,
) -> web.Response:
    return render(
        request,
        "gateway/admin_token_add.html",
        title="Add an API token",
        values=values,
        role_items=role_items(TOKEN_ROLES, values.get("roles", []), ROLE_HINTS),
        errors=errors,
        status=status,
    )


@needs("admin")
async def add_token_form(request: web.Request) -> web.StreamResponse:
    return _add_token_page(request, values={"kind": "system", "roles": ["system"]})


@needs("admin")
async def add_token(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    organisation = _organisation(user)
    form = await form_of(request)
    values: dict[str, Any] = {
        "account": field_text(form, "account", 100),
        "kind": "system",
        "roles": checked(form, "roles"),
    }
    try:
        token = await run_sync(
            parts_of(request).gateway.tokens.add_system,
            organisation,
            values["account"],
            values["roles"],
            by=user.actor,
        )
    except GcxError as exc:
        field_id = "roles"
        try:
            check_account_name(values["account"])
        except GcxError:
            field_id = "account"
        if isinstance(exc, AccountNameTaken):
            field_id = "account"
        return _add_token_page(
            request, values=values, errors=FormErrors.of(exc, field_id), status=exc.status
        )
    return render(
        request,
        "gateway/admin_token_added.html",
        title="API token added",
        token=token,
        values=values,
        organisation=organisation,
    )


@needs("admin")
async def revoke_confirm(request: web.Request) -> web.StreamResponse:
    """Ask before revoking an account's tokens: the systems using them stop at once."""
    organisation = _organisation(user_of(request))
    account = request.query.get("account", "")[:100]
    listed = await run_sync(parts_of(request).gateway.tokens.list_for, organisation)
    active = [t for t in listed if t["account"] == account and not t["revoked_at"]]
    if not active:
        raise NotFound(f"{organisation} has no active token for that account.")
    for token in active:
        for key in ("created_at", "last_used_at"):
            token[key + "_text"] = moment(token[key])
    return render(
        request,
        "gateway/admin_token_revoke.html",
        title="Are you sure you want to revoke these tokens?",
        account=account,
        organisation=organisation,
        tokens=active,
    )


@needs("admin")
async def revoke_token(request: web.Request) -> web.StreamResponse:
    user = user_of(request)
    organisation = _organisation(user)
    form = await form_of(request)
    account = field_text(form, "account", 100)
    count = await run_sync(
        parts_of(request).gateway.tokens.revoke, organisation, account, by=user.actor
    )
    noun = "token" if count == 1 else "tokens"
    raise redirect(
        request, "/admin/tokens", flash=f"Revoked {count} {noun} of {account}@{organisation}."
    )
