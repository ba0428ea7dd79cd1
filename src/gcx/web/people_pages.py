"""Pages for managing the people who sign in: a gateway's administrators, central's operator.

Both sites use the same pages over :class:`~gcx.web.accounts.WebAccounts`,
which writes each change with its audit entry naming the manager. What
differs is held in a :class:`PeopleScope`: who manages, where the pages live,
the roles on offer, and whose people they see. A gateway's administrator acts
for one organisation, so every person a page touches is first looked up
within it, and a name from another organisation is "not found", exactly as
if it did not exist. Central's operator sees everyone, and says which
organisation an officer acts for when adding them.

A new or reset person's password and second-factor secret are shown once,
in the answer to the form that made them (not after a redirect): only their
hash and sealed form are stored, so there is nothing to show later.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from markupsafe import Markup
from multidict import MultiDictProxy

from gcx.errors import (
    DuplicateEnrolment,
    Forbidden,
    GcxError,
    InputError,
    NotFound,
    RoleHeldElsewhere,
)
from gcx.httpapi import run_sync
from gcx.protocol.identifiers import check_account_name
from gcx.web.accounts import WebUser
from gcx.web.qr import qr_svg
from gcx.web.site import FormErrors, field_text, form_of, needs, redirect, render, site_of, user_of
from gcx.web.words import moment

Handler = Callable[[web.Request], Any]


@dataclass(frozen=True)
class PeopleScope:
    manager: str  # the role that manages people on this site
    base: str  # where the pages live, e.g. "/admin/people"
    roles: tuple[str, ...]
    role_hints: dict[str, str]
    service_words: str  # what people sign in to, e.g. "this gateway's pages"
    manager_words: str  # what the manager is called, e.g. "administrator"
    # A gateway's administrator manages only their own organisation's people;
    # central's operator manages everyone and picks each officer's organisation.
    per_organisation: bool = True
    # Central: the organisations an officer may act for (code, name), read per request.
    organisations: Callable[[web.Request], list[tuple[str, str]]] | None = None
    # Roles that act for an organisation, so need one chosen (central).
    roles_needing_organisation: frozenset[str] = field(default_factory=frozenset)
    # Ticked on an empty add form: the everyday role, never a powerful one.
    default_roles: tuple[str, ...] = ()
    # Roles another site gives (a gateway's administrator may not give central's),
    # with the sentence that says where: never offered here, and refused if posted.
    held_elsewhere: dict[str, str] = field(default_factory=dict)


# What a gateway's administrator is told about roles only central gives. The Code
# of Connection is drafted, signed off and assessed at central, by people the
# network operator adds there, so a gateway account with these roles would do
# nothing and could mislead.
CENTRAL_ONLY_ROLES = {
    "sign-off": (
        "The sign-off role is given at central, where Code of Connection statements are "
        "signed off; ask the network operator to add the person there."
    ),
    "operator": "The operator role is held only at central, by the network operator.",
    "assessor": "The assessor role is held only at central, by the network's assessors.",
}


def checked(form: MultiDictProxy[Any], name: str) -> list[str]:
    # Unknown values are passed on, so the use case refuses them in its own words.
    return sorted({v for v in form.getall(name, []) if isinstance(v, str)})


def role_items(
    roles: Iterable[str], chosen: Iterable[str], hints: dict[str, str]
) -> list[dict[str, Any]]:
    """Checkbox items for ``roles``, with ``chosen`` ticked and each role's hint."""
    picked = set(chosen)
    return [
        {
            "value": role,
            "text": role,
            "checked": role in picked,
            "hint": {"text": hints.get(role, "")},
        }
        for role in roles
    ]


def add_people_routes(app: web.Application, scope: PeopleScope) -> None:
    pages = _PeoplePages(scope)
    base = scope.base
    app.router.add_get(base, pages.people)
    app.router.add_get(f"{base}/add", pages.add_person_form)
    app.router.add_post(f"{base}/add", pages.add_person)
    app.router.add_get(base + "/{username}", pages.person)
    app.router.add_post(base + "/{username}/roles", pages.change_roles)
    app.router.add_post(base + "/{username}/unlock", pages.unlock)
    app.router.add_post(base + "/{username}/reset", pages.reset)
    app.router.add_post(base + "/{username}/disable", pages.disable)


class _PeoplePages:
    def __init__(self, scope: PeopleScope) -> None:
        self.scope = scope
        for name in (
            "people",
            "add_person_form",
            "add_person",
            "person",
            "change_roles",
            "unlock",
            "reset",
            "disable",
        ):
            setattr(self, name, self._guarded(getattr(self, "_" + name)))

    # Set in __init__: each page, behind the manager's role.
    people: Handler
    add_person_form: Handler
    add_person: Handler
    person: Handler
    change_roles: Handler
    unlock: Handler
    reset: Handler
    disable: Handler

    def _guarded(self, method: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Handler:
        # The frame reads the roles from an attribute, which a bound method cannot carry.
        async def page(request: web.Request) -> web.StreamResponse:
            return await method(request)

        return needs(self.scope.manager)(page)

    def _scope_of(self, user: WebUser) -> str | None:
        """The organisation whose people the manager sees, or None for everyone."""
        if not self.scope.per_organisation:
            return None
        # One without an organisation would see every organisation's people, so
        # the pages refuse rather than guess.
        if not user.organisation:
            raise Forbidden(
                "Your account is not an organisation's; the administration pages need one."
            )
        return user.organisation

    def _render(self, request: web.Request, template: str, **context: Any) -> web.Response:
        return render(
            request,
            f"people/{template}",
            base=self.scope.base,
            service_words=self.scope.service_words,
            per_organisation=self.scope.per_organisation,
            manager_words=self.scope.manager_words,
            **context,
        )

    def _role_items(self, chosen: Iterable[str]) -> list[dict[str, Any]]:
        offered = [r for r in self.scope.roles if r not in self.scope.held_elsewhere]
        return role_items(offered, chosen, self.scope.role_hints)

    def _refuse_roles_held_elsewhere(self, roles: Iterable[str]) -> None:
        for role in roles:
            if role in self.scope.held_elsewhere:
                raise RoleHeldElsewhere(self.scope.held_elsewhere[role])

    async def _person_of(self, request: web.Request, username: str) -> dict[str, Any]:
        """One of the people this manager sees, or NotFound."""
        organisation = self._scope_of(user_of(request))
        everyone = await run_sync(site_of(request).accounts.users, organisation)
        for found in everyone:
            if found["username"] == username:
                return found
        where = f" in {organisation}" if organisation else ""
        raise NotFound(f"There is no person called {username[:64]!r}{where}.")

    async def _people(self, request: web.Request) -> web.StreamResponse:
        organisation = self._scope_of(user_of(request))
        everyone = await run_sync(site_of(request).accounts.users, organisation)
        for one in everyone:
            one["created_at_text"] = moment(one["created_at"])
        return self._render(request, "list.html", title="People", people=everyone)

    async def _choices(self, request: web.Request) -> list[tuple[str, str]] | None:
        """The organisations a new person may act for, where the manager picks one."""
        if self.scope.organisations is None:
            return None
        return await run_sync(self.scope.organisations, request)

    def _add_person_page(
        self,
        request: web.Request,
        choices: list[tuple[str, str]] | None,
        *,
        values: dict[str, Any],
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> web.Response:
        return self._render(
            request,
            "add.html",
            title="Add a person",
            values=values,
            role_items=self._role_items(values.get("roles", [])),
            organisation_items=_organisation_items(choices, values.get("organisation")),
            errors=errors,
            status=status,
        )

    async def _add_person_form(self, request: web.Request) -> web.StreamResponse:
        choices = await self._choices(request)
        return self._add_person_page(
            request, choices, values={"roles": list(self.scope.default_roles)}
        )

    def _new_organisation(
        self, user: WebUser, choices: list[tuple[str, str]] | None, values: dict[str, Any]
    ) -> str | None:
        """The organisation the new person acts for: the manager's, or the one chosen."""
        if self.scope.per_organisation:
            return self._scope_of(user)
        chosen = values.get("organisation") or None
        if chosen is not None and chosen not in {code for code, _ in choices or []}:
            raise InputError("Choose an organisation from the list.")
        if chosen is None and self.scope.roles_needing_organisation & set(values["roles"]):
            raise InputError(
                "Information security and sign-off officers act for an organisation; choose it."
            )
        return chosen

    async def _add_person(self, request: web.Request) -> web.StreamResponse:
        user = user_of(request)
        form = await form_of(request)
        values: dict[str, Any] = {
            "username": field_text(form, "username", 100),
            "display_name": field_text(form, "display_name", 300),
            "roles": checked(form, "roles"),
            "organisation": field_text(form, "organisation", 20),
        }
        choices = await self._choices(request)
        try:
            self._refuse_roles_held_elsewhere(values["roles"])
        except GcxError as exc:
            return self._add_person_page(
                request,
                choices,
                values=values,
                errors=FormErrors.of(exc, "roles"),
                status=exc.status,
            )
        try:
            organisation = self._new_organisation(user, choices, values)
        except GcxError as exc:
            return self._add_person_page(
                request,
                choices,
                values=values,
                errors=FormErrors.of(exc, "organisation"),
                status=exc.status,
            )
        try:
            made = await run_sync(
                site_of(request).accounts.add_user,
                values["username"],
                values["display_name"],
                values["roles"],
                organisation,
                by=user.actor,
            )
        except GcxError as exc:
            field_id = _person_field(exc, values)
            return self._add_person_page(
                request,
                choices,
                values=values,
                errors=FormErrors.of(exc, field_id),
                status=exc.status,
            )
        return self._render(
            request,
            "added.html",
            title="Person added",
            made=made,
            qr=_authenticator_qr(made.totp_uri, values["display_name"]),
            display_name=values["display_name"],
            roles=values["roles"],
        )

    def _person_page(
        self,
        request: web.Request,
        found: dict[str, Any],
        *,
        roles: list[str] | None = None,
        errors: FormErrors | None = None,
        status: int = 200,
    ) -> web.Response:
        found["created_at_text"] = moment(found["created_at"])
        return self._render(
            request,
            "person.html",
            title=found["display_name"],
            person=found,
            is_self=found["username"] == user_of(request).username,
            role_items=self._role_items(found["roles"] if roles is None else roles),
            errors=errors,
            status=status,
        )

    async def _person(self, request: web.Request) -> web.StreamResponse:
        found = await self._person_of(request, request.match_info["username"])
        return self._person_page(request, found)

    async def _change_roles(self, request: web.Request) -> web.StreamResponse:
        user = user_of(request)
        found = await self._person_of(request, request.match_info["username"])
        form = await form_of(request)
        roles = checked(form, "roles")
        try:
            self._refuse_roles_held_elsewhere(set(roles) - set(found["roles"]))
            if found["username"] == user.username and self.scope.manager not in roles:
                # Otherwise the site could be left with nobody to manage it.
                raise Forbidden(
                    f"You cannot take the {self.scope.manager} role from yourself; ask another "
                    f"{self.scope.manager_words}."
                )
            await run_sync(
                site_of(request).accounts.set_roles, found["username"], roles, by=user.actor
            )
        except GcxError as exc:
            return self._person_page(
                request, found, roles=roles, errors=FormErrors.of(exc, "roles"), status=exc.status
            )
        raise redirect(
            request,
            f"{self.scope.base}/{found['username']}",
            flash=f"{found['display_name']} now has the roles: {', '.join(roles)}.",
        )

    async def _unlock(self, request: web.Request) -> web.StreamResponse:
        user = user_of(request)
        found = await self._person_of(request, request.match_info["username"])
        await run_sync(site_of(request).accounts.unlock, found["username"], by=user.actor)
        raise redirect(
            request,
            f"{self.scope.base}/{found['username']}",
            flash=f"{found['display_name']} can sign in again.",
        )

    async def _reset(self, request: web.Request) -> web.StreamResponse:
        user = user_of(request)
        found = await self._person_of(request, request.match_info["username"])
        if found["username"] == user.username:
            exc = Forbidden(
                "You cannot reset your own sign-in details; change your password under Your "
                f"account, or ask another {self.scope.manager_words}."
            )
            return self._person_page(
                request, found, errors=FormErrors.of(exc, "reset"), status=exc.status
            )
        made = await run_sync(
            site_of(request).accounts.reset_sign_in, found["username"], by=user.actor
        )
        return self._render(
            request,
            "added.html",
            title="Sign-in details reset",
            made=made,
            qr=_authenticator_qr(made.totp_uri, found["display_name"]),
            display_name=found["display_name"],
            roles=found["roles"],
            reset=True,
        )

    async def _disable(self, request: web.Request) -> web.StreamResponse:
        user = user_of(request)
        found = await self._person_of(request, request.match_info["username"])
        if found["username"] == user.username:
            exc = Forbidden(
                f"You cannot disable your own account; ask another {self.scope.manager_words}."
            )
            return self._person_page(
                request, found, errors=FormErrors.of(exc, "disable"), status=exc.status
            )
        await run_sync(site_of(request).accounts.disable, found["username"], by=user.actor)
        raise redirect(
            request,
            self.scope.base,
            flash=f"{found['display_name']} ({found['username']}) is disabled and signed out.",
        )


def _authenticator_qr(uri: str, display_name: str) -> Markup:
    return qr_svg(uri, f"QR code for {display_name}'s authenticator app")


def _organisation_items(
    choices: list[tuple[str, str]] | None, chosen: str | None
) -> list[dict[str, Any]] | None:
    if choices is None:
        return None
    options = [("", "None (operator or assessor)")]
    options += [(code, f"{name} ({code})") for code, name in choices]
    return [
        {"value": value, "text": text, "selected": value == (chosen or "")}
        for value, text in options
    ]


def _person_field(exc: GcxError, values: dict[str, Any]) -> str:
    """The field a refusal of adding someone is about, in the order the checks run."""
    if isinstance(exc, DuplicateEnrolment):
        return "username"
    try:
        check_account_name(values["username"])
    except GcxError:
        return "username"
    name = values["display_name"]
    if not name or len(name) > 200:
        return "display_name"
    return "roles"
