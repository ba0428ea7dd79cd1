"""Words and structure: plain words on staff pages, an Inbox for administrators,
"Your account" on every page, and roles given only where they mean something.

Each demo person signs in and walks every page their navigation and their
pages' links lead to (GET only, so the walk changes nothing), after a little
traffic has been made so the lists are not empty: a message each way, one to
the whole council, and a Code of Connection statement with an answer in it.
The visible text of every page is searched for what only a program should
read: a 32-hex identifier, a SHA-256 digest, an HTTP method, or a state's
code (``awaiting-sign-off``) where its words belong. Every page is also
checked with axe.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from gcx.compliance.catalogue import Result
from gcx.compliance.rules import Outcome
from gcx.compliance.statement import StatementState
from gcx.localnet import GatewayProcess, LocalNetwork
from gcx.protocol.enrolment import EnrolmentState

from .conftest import run_async
from .netutil import http
from .webutil import People

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# Codes of states and results that have words of their own on the pages. Only the
# hyphenated ones are searched for: "approved" or "queued" read as English either way.
_CODES = sorted(
    {
        state.value
        for enum in (StatementState, Outcome, Result, EnrolmentState)
        for state in enum
        if "-" in state.value
    }
)
FORBIDDEN = [
    # Message ids are 32 hex digits, statements' 24; either is for programs.
    (
        re.compile(r"(?<![0-9A-Za-z])(?=[0-9]*[a-fA-F])[0-9a-fA-F]{16,63}(?![0-9A-Za-z])"),
        "a hex identifier",
    ),
    (re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{64}(?![0-9A-Za-z])|sha-?256", re.I), "a digest"),
    (re.compile(r"\b(GET|POST|PUT|PATCH|DELETE)\b"), "an HTTP method"),
    (re.compile(r"\b(" + "|".join(map(re.escape, _CODES)) + r")\b"), "a state's code"),
    # GOV.UK's date style ("6 December 2026"), not ISO 8601's.
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), "a date not in words"),
]
# Links the walk does not follow: downloads, and pages that are not pages.
_NOT_PAGES = re.compile(r"/(evidence|download|receipts?|export)\b|/files/[^/]+/files/|\.zip$")
PAGES_PER_PERSON = 30
DELIVERY_SECONDS = 60.0


def words_a_program_reads(text: str) -> list[str]:
    found = []
    for pattern, what in FORBIDDEN:
        for match in pattern.finditer(text):
            start = max(0, match.start() - 40)
            found.append(f"{what}: …{text[start : match.end() + 20]!r}…")
    return found


def test_the_search_finds_what_it_looks_for() -> None:
    """The patterns catch each kind of code, and leave plain words alone."""
    assert words_a_program_reads("Statement 3f2a9c1be07d4b6a8e5f1c2d3b4a5968 for DWP")
    assert words_a_program_reads("Digest: " + "ab" * 32)
    assert words_a_program_reads("Called with POST /lookups")
    assert words_a_program_reads("State: awaiting-sign-off")
    assert words_a_program_reads("Started 2026-12-06 08:53")
    assert not words_a_program_reads(
        "Awaiting sign-off since 6 December 2026 at 2:05pm UTC; a 12 KB file from DWP."
    )


@pytest.fixture(scope="module")
def traffic(web_network: LocalNetwork) -> None:
    """A message each way between council and DWP, and one to the whole council."""
    council, dwp = web_network.gateways["tower-hamlets"], web_network.gateways["dwp"]

    async def send(sender: GatewayProcess, to: str, subject: str) -> None:
        status, body, _ = await http(
            "POST",
            f"{sender.config.api_url}/api/v1/messages",
            token=sender.token,
            body={"to": [to], "subject": subject, "body": "Synthetic.", "marking": "OFFICIAL"},
        )
        assert status == 202, body

    run_async(send(council, "claims.processor@DWP", "Change of address for a claimant"))
    run_async(send(dwp, "benefits.officer@E09000030", "Claim decision made"))
    run_async(send(dwp, "E09000030", "New guidance for council benefit teams"))


@pytest.fixture(scope="module")
def started_statement(people: People, browser: Browser) -> None:
    """The council's security officer starts a statement and answers its first control."""
    context = browser.new_context()
    page = context.new_page()
    try:
        people.sign_in(page, "central", "iso.e09000030", "/statements")
        if page.locator("button:has-text('Start a new statement')").count():
            page.click("button:has-text('Start a new statement')")
        first = page.locator("a.govuk-task-list__link").first
        first.click()
        page.fill("#answer", "Our SIRO is the Director of Resources.")
        page.click("button:has-text('Save and continue')")
    finally:
        context.close()


def _walk(page: Page, people: People, where: str, username: str) -> Iterator[str]:
    """Sign in and visit every page reachable by links, yielding each one's problems."""
    people.sign_in(page, where, username)
    origin = people.url(where, "")
    queue, seen = [page.url], set()
    shapes: dict[str, int] = {}
    while queue and len(seen) < PAGES_PER_PERSON:
        url = queue.pop(0).split("#")[0]
        # Pages of one kind (every message, every control) are alike: two of each will do.
        shape = re.sub(r"/[^/?]*\d[^/?]*", "/*", url.split("?")[0])
        if url in seen or shapes.get(shape, 0) >= 2:
            continue
        shapes[shape] = shapes.get(shape, 0) + 1
        seen.add(url)
        response = page.goto(url)
        assert response is not None and response.ok, (
            f"{url} answered {response and response.status}"
        )
        for problem in words_a_program_reads(page.inner_text("body")):
            yield f"{username} at {url}: {problem}"
        # Every page: the service desk to contact, and "Your account" one click away.
        if page.locator("#service-desk").count() != 1:
            yield f"{username} at {url}: no service desk contact"
        if page.locator(".gcx-account-bar a:has-text('Your account')").count() != 1:
            yield f"{username} at {url}: no link to Your account"
        path = urllib.parse.urlsplit(url).path.strip("/").replace("/", "-") or "home"
        if len(seen) <= 8:
            people.check(page, f"words-{where}-{username}-{path}"[:120])
        for link in page.locator("a[href]:not([download])").all():
            href = link.get_attribute("href") or ""
            target = urllib.parse.urljoin(url, href)
            if (
                target.startswith(origin + "/")
                and not _NOT_PAGES.search(urllib.parse.urlsplit(target).path)
                and "/assets/" not in target
                and "sign-" not in target
            ):
                queue.append(target)


@pytest.mark.parametrize(
    ("where", "username"),
    [
        ("tower-hamlets", "benefits.officer"),
        ("tower-hamlets", "tower-hamlets.admin"),
        ("dwp", "claims.processor"),
        ("central", "iso.e09000030"),
        ("central", "siro.e09000030"),
        ("central", "lead.assessor"),
        ("central", "network.operator"),
    ],
)
def test_staff_pages_show_no_codes(
    page: Page,
    people: People,
    traffic: None,
    started_statement: None,
    where: str,
    username: str,
) -> None:
    problems = list(_walk(page, people, where, username))
    assert problems == [], "\n".join(problems)


# -- structure: an Inbox for administrators, "Your account" everywhere, roles in their place


def test_administrators_read_what_is_sent_to_the_whole_organisation(
    page: Page, people: People, traffic: None
) -> None:
    people.sign_in(page, "tower-hamlets", "tower-hamlets.admin", "/admin")
    page.click(".govuk-service-navigation a:has-text('Inbox')")
    assert page.url.endswith("/inbox")
    deadline = time.monotonic() + DELIVERY_SECONDS
    while "New guidance for council benefit teams" not in page.inner_text("main"):
        assert time.monotonic() < deadline, "the message to the whole council did not arrive"
        page.wait_for_timeout(250)
        page.reload()
    row = page.locator("tr", has_text="New guidance for council benefit teams")
    assert "The whole organisation" in row.inner_text()
    people.check(page, "words-admin-inbox")


def test_a_statement_names_its_organisation_with_the_code_as_secondary_text(
    page: Page, people: People, started_statement: None
) -> None:
    """The list, the statement's caption and its summary say the organisation's name; its
    code appears only beside the name, in the secondary (hint) style."""
    council = "London Borough of Tower Hamlets"
    people.sign_in(page, "central", "iso.e09000030", "/statements")
    assert f"{council}'s statements of compliance" in page.inner_text("main")
    row = page.locator("tbody tr").first
    assert council in row.inner_text()
    assert row.locator(".govuk-hint").inner_text() == "(E09000030)"
    people.check(page, "words-statements-named")
    row.locator("a").click()
    assert page.inner_text(".govuk-caption-l") == f"{council} \u2013 Code of Connection"
    assert page.inner_text("#organisation-code") == "(E09000030)"
    main = page.inner_text("main")
    assert main.count("E09000030") == 1, "the code only once, beside the name"
    people.check(page, "words-statement-named")


@pytest.mark.parametrize(
    ("where", "username", "path"),
    [
        ("tower-hamlets", "benefits.officer", "/inbox"),
        ("tower-hamlets", "tower-hamlets.admin", "/admin/people"),
        ("central", "lead.assessor", "/statements"),
    ],
)
def test_your_account_is_one_click_from_every_page(
    page: Page, people: People, where: str, username: str, path: str
) -> None:
    people.sign_in(page, where, username, path)
    link = page.locator(".gcx-account-bar a:has-text('Your account')")
    assert link.count() == 1, f"no link to Your account on {path}"
    link.click()
    assert page.url.endswith("/account")
    assert page.locator(".gcx-account-bar a[aria-current=page]").count() == 1
    people.check(page, f"words-your-account-{where}")


def test_a_gateway_administrator_cannot_give_a_role_only_central_gives(
    page: Page, people: People, web_network: LocalNetwork
) -> None:
    people.sign_in(page, "dwp", "dwp.admin", "/admin/people/add")
    offered = page.locator("input[name=roles]").evaluate_all("(boxes) => boxes.map(b => b.value)")
    assert "sign-off" not in offered and "staff" in offered, offered
    people.check(page, "words-add-person-roles")

    # A form made by hand (or an old page) asking for it anyway is refused, in words.
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    body = urllib.parse.urlencode(
        [
            ("csrf_token", csrf),
            ("username", "sneaky.siro"),
            ("display_name", "Sneaky Siro"),
            ("roles", "staff"),
            ("roles", "sign-off"),
        ]
    )
    refused = page.request.post(
        people.url("dwp", "/admin/people/add"),
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused.status == 403
    assert refused.headers["x-gcx-error"] == "role-held-elsewhere"
    assert "given at central" in refused.text()
    assert "sneaky.siro" not in {p["username"] for p in _people_at(web_network, "dwp")}

    # Nor can it be added to someone who exists.
    page.goto(people.url("dwp", "/admin/people/claims.processor"))
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    body = urllib.parse.urlencode([("csrf_token", csrf), ("roles", "staff"), ("roles", "sign-off")])
    refused = page.request.post(
        people.url("dwp", "/admin/people/claims.processor/roles"),
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused.status == 403 and refused.headers["x-gcx-error"] == "role-held-elsewhere"
    holder = next(p for p in _people_at(web_network, "dwp") if p["username"] == "claims.processor")
    assert holder["roles"] == ["staff"]


def _people_at(network: LocalNetwork, where: str) -> list[dict[str, object]]:
    from gcx.cli.web import open_accounts

    accounts, _ = open_accounts("gateway", network.gateways[where].home)
    try:
        return accounts.users()
    finally:
        accounts.db.dispose()


def test_a_new_person_gets_a_qr_code_for_their_authenticator(page: Page, people: People) -> None:
    """Drawn in the page itself (nothing fetched), on a page no cache keeps."""
    people.sign_in(page, "met-police", "met-police.admin", "/admin/people/add")
    page.fill("#username", "qr.person")
    page.fill("#display_name", "Quinn Person")
    with page.expect_response(lambda r: r.url.endswith("/admin/people/add")) as posted:
        page.click("button:has-text('Add person')")
    assert posted.value.headers["cache-control"] == "no-store"
    code = page.locator("#authenticator-qr svg[role=img]")
    assert code.count() == 1
    assert "Quinn Person" in (code.get_attribute("aria-label") or "")
    assert (
        page.locator(
            "#authenticator-qr img, #authenticator-qr [href], #authenticator-qr [src]"
        ).count()
        == 0
    )
    people.check(page, "words-person-added-qr")


def test_the_marking_banner_says_what_the_marking_means_and_links_to_the_rules(
    page: Page, people: People
) -> None:
    people.sign_in(page, "dwp", "claims.processor", "/inbox")
    banner = page.locator(".gcx-marking--top")
    marking = str(banner.get_attribute("data-marking"))
    described = banner.locator(".gcx-marking__words").inner_text()
    assert "share it only with" in described
    banner.locator("a").click()
    assert page.url.endswith("/help/markings#" + marking.lower())
    text = page.inner_text("main")
    for each in ("OFFICIAL", "OFFICIAL-SENSITIVE", "SECRET", "Handling instructions"):
        assert each in text
    # The same words for a marking here as in the banner: one description, from one table.
    assert described in page.inner_text(f"#{marking.lower()} + p")
    people.check(page, "words-markings-help")


@pytest.mark.parametrize(
    ("where", "path"), [("dwp", "/sign-in"), ("dwp", "/help/markings"), ("central", "/sign-in")]
)
def test_every_page_names_the_service_desk(
    page: Page, people: People, where: str, path: str
) -> None:
    page.goto(people.url(where, path))
    desk = page.inner_text("#service-desk")
    assert desk.startswith("Need help? Contact") and "service desk" in desk.lower()
