"""Issue 17 in the browser: the address book, check before sending, drafts, reply and forward.

The council's benefits officer (tower-hamlets) finds a DWP colleague by name
in the address book (DWP's gateway answers its signed listing over the peer
hop), writes to them, checks the message on "Check your message" and sends;
the DWP claims processor replies. Each page is checked with axe and saved as
a screenshot; the core journeys also run with JavaScript off.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from gcx.localnet import LocalNetwork

from .webutil import People, error_summary, marking_banner

pytestmark = [pytest.mark.integration, pytest.mark.browser]

COUNCIL = "tower-hamlets"
DWP = "dwp"
DELIVERY_SECONDS = 60.0
DWP_NAME = "Department for Work and Pensions"


@pytest.fixture
def no_script(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(90_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def other_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(90_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def staff(web_network: LocalNetwork) -> Callable[[str, str], str]:
    """More staff, so each test signs in someone whose code was not just used."""
    made: set[tuple[str, str]] = set()
    codes = {COUNCIL: "E09000030", DWP: "DWP", "met-police": "MPS"}

    def person(where: str, username: str) -> str:
        if (where, username) not in made:
            web_network.add_web_user(where, username, username.title(), ("staff",), codes[where])
            made.add((where, username))
        return username

    return person


def reload_until(page: Page, ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DELIVERY_SECONDS
    while not ready():
        assert time.monotonic() < deadline, f"{what} did not show within {DELIVERY_SECONDS}s"
        page.wait_for_timeout(250)
        page.reload()


def fill_message(page: Page, *, subject: str, marking: str, body: str) -> None:
    page.fill("#subject", subject)
    page.check(f"input[name=marking][value='{marking}']")
    page.fill("#body", body)


def send_checked(page: Page) -> str:
    """Continue to "Check your message", send, and return the id on the confirmation page."""
    page.click("#continue")
    page.wait_for_url("**/drafts/*/check")
    page.click("#send")
    page.wait_for_url("**/messages/*/sent")
    return page.url.rstrip("/").rsplit("/", 2)[1]


def test_a_benefits_officer_finds_a_dwp_colleague_by_name(page: Page, people: People) -> None:
    """Organisations by name (code secondary), mailboxes and listed people; live filter."""
    people.sign_in(page, COUNCIL, "benefits.officer", "/address-book")
    dwp = page.locator("section[data-organisation='DWP']")
    assert DWP_NAME in dwp.locator("h2").inner_text()
    assert "Claims Processor" in dwp.inner_text(), "DWP's listing came over the peer hop"
    council = page.locator("section[data-organisation='E09000030']")
    assert "Benefits" in council.inner_text(), "the council's shared mailbox is listed"
    people.check(page, "address-book")

    page.fill("#q", "claims proc")  # filtered as it is typed, without a reload
    assert page.locator("section[data-organisation='MPS']").is_hidden()
    assert dwp.is_visible()
    assert "1 organisation matches" in page.inner_text("#address-book-count")
    people.check(page, "address-book-filtered")

    dwp.locator("a:has-text('Claims Processor')").click()
    page.wait_for_url("**/compose?to=*")
    assert page.input_value("#to_org") == "DWP"
    assert page.input_value("#to_person") == "claims.processor"
    assert f"Claims Processor, {DWP_NAME}" in page.inner_text("#to-names")


def test_the_address_book_search_works_without_javascript(no_script: Page, people: People) -> None:
    """The no-JS fallback: a GET search form whose answer lists only what matches."""
    page = no_script
    people.sign_in(page, COUNCIL, "benefits.officer", "/address-book")
    page.fill("#q", "Processor")
    page.click("#search")
    page.wait_for_url("**/address-book?q=Processor")
    assert page.locator("section[data-organisation]").count() == 1
    assert "Claims Processor" in page.inner_text("section[data-organisation='DWP']")
    # axe runs as a script, so it checks these pages in the tests with JavaScript on.
    page.goto(people.url(COUNCIL, "/address-book?q=nobody+by+this+name"))
    assert "Nothing matches" in page.inner_text("#no-match")


def test_people_are_listed_only_once_they_choose_to_be(
    page: Page, other_page: Page, people: People, staff: Callable[[str, str], str]
) -> None:
    """Not listed by default; listed after choosing on "Your account"; shown to colleagues."""
    shy = staff(COUNCIL, "shy.officer")
    people.sign_in(page, COUNCIL, shy, "/account")
    page.click("a:has-text('Your listing in the address book')")
    assert page.is_checked("#listed-2"), "nobody is listed until they choose to be"
    people.check(page, "address-book-own")
    colleague = staff(COUNCIL, "curious.officer")
    people.sign_in(other_page, COUNCIL, colleague, "/address-book?q=shy")
    assert other_page.locator("[data-address='shy.officer@E09000030']").count() == 0

    page.check("#listed")
    page.click("#save-listing")
    assert "You are now listed" in page.inner_text(".govuk-notification-banner")
    other_page.reload()
    assert other_page.locator("[data-address='shy.officer@E09000030']").count() == 1


def test_an_organisation_can_list_its_shared_mailboxes_only(page: Page, people: People) -> None:
    """The administrator's choice hides every person, whatever each chose."""
    people.sign_in(page, "met-police", "met-police.admin", "/admin")
    page.click("a[href='/admin/address-book']")
    people.check(page, "address-book-admin")
    page.check("#people-2")
    page.click("#save-policy")
    assert "Only your shared mailboxes" in page.inner_text(".govuk-notification-banner")
    page.goto(people.url("met-police", "/address-book"))
    police = page.locator("section[data-organisation='MPS']")
    assert "lists its shared mailboxes only" in police.inner_text()
    assert page.locator("[data-address='safeguarding.officer@MPS']").count() == 0


def test_compose_check_and_send_by_name_then_the_colleague_replies(
    page: Page, other_page: Page, people: People
) -> None:
    """Compose, check (names, marking and its meaning, Change links), confirmation, reply."""
    people.sign_in(page, COUNCIL, "benefits.officer", "/compose?to=claims.processor%40DWP")
    subject = f"Housing benefit query {time.time_ns()}"
    fill_message(page, subject=subject, marking="OFFICIAL-SENSITIVE", body="Please confirm.")
    assert marking_banner(page) == "OFFICIAL-SENSITIVE", "the banner follows the marking chosen"
    page.fill("#cc", "benefits@E09000030")
    page.click("#continue")
    page.wait_for_url("**/drafts/*/check")
    summary = page.inner_text("#check-summary")
    assert f"Claims Processor, {DWP_NAME}" in summary
    assert "Benefits, London Borough of Tower Hamlets" in summary
    assert "claims.processor@DWP" not in summary, "recipients by name, not by address"
    assert "only people who need to know" in summary, "the marking with what it means"
    assert marking_banner(page) == "OFFICIAL-SENSITIVE"
    people.check(page, "mail-check")

    page.click("a[href$='#subject']")
    assert page.input_value("#subject") == subject, "Change goes back to the draft as typed"
    page.fill("#subject", subject + " (changed)")
    envelope_id = send_checked(page)
    assert "Message sent" in page.inner_text(".govuk-panel")
    people.check(page, "mail-sent-confirmation")
    page.click("#view-message")
    assert page.inner_text("h1") == subject + " (changed)"

    dwp = other_page
    people.sign_in(dwp, DWP, "claims.processor", "/inbox")
    row = f"tr[data-message='{envelope_id}']"
    reload_until(dwp, lambda: dwp.locator(row).count() == 1, "the message in DWP's inbox")
    dwp.click(f"{row} a")
    dwp.click("#reply")
    assert dwp.input_value("#to_org") == "E09000030"
    assert dwp.input_value("#to_person") == "benefits.officer"
    assert dwp.input_value("#subject").startswith("Re: ")
    assert dwp.is_checked("input[name=marking][value='OFFICIAL-SENSITIVE']")
    people.check(dwp, "mail-reply")
    dwp.check("input[name=marking][value='OFFICIAL']")
    dwp.click("#continue")
    assert "Protective marking: " in error_summary(dwp), "the summary uses the field's label"
    assert "cannot be lowered" in error_summary(dwp)
    dwp.check("input[name=marking][value='OFFICIAL-SENSITIVE']")
    dwp.fill("#body", "Confirmed." + dwp.input_value("#body"))
    reply_id = send_checked(dwp)
    assert reply_id != envelope_id


def test_drafts_keep_their_attachments_and_can_be_deleted(
    page: Page, people: People, staff: Callable[[str, str], str]
) -> None:
    """Save as draft with a file, reopen it with the file kept, delete only after asking."""
    people.sign_in(page, COUNCIL, staff(COUNCIL, "draft.writer"), "/compose")
    page.select_option("#to_org", "DWP")
    page.fill("#to_person", "claims.processor")
    page.fill("#subject", "Draft with a file")
    page.set_input_files(
        "#attachments", [{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"kept"}]
    )
    page.click("#save-draft")
    page.wait_for_url("**/drafts")
    row = page.locator("#drafts tbody tr").first
    assert "Draft with a file" in row.inner_text() and "1 file" in row.inner_text()
    people.check(page, "mail-drafts")

    row.locator("td").first.locator("a").click()
    assert "Remove notes.txt" in page.inner_text("main"), "the file is kept with the draft"
    page.check("input[name=marking][value='OFFICIAL']")
    page.fill("#body", "Written later.")
    page.click("#continue")
    page.wait_for_url("**/drafts/*/check")
    assert "notes.txt" in page.inner_text("#check-summary"), "the attachment was kept"
    page.goto(people.url(COUNCIL, "/drafts"))
    page.click("#drafts a:has-text('Delete')")
    assert page.inner_text("h1") == "Are you sure you want to delete this draft?"
    people.check(page, "mail-draft-delete")
    page.click("#delete-draft")
    assert page.locator("#no-drafts").count() == 1


def test_forward_keeps_the_marking_and_obeys_handling_instructions(
    page: Page, people: People, staff: Callable[[str, str], str]
) -> None:
    """A restricted message cannot be forwarded (with the reason); another keeps its marking."""
    people.sign_in(page, COUNCIL, staff(COUNCIL, "forward.officer"), "/compose")
    page.select_option("#to_org", "DWP")
    page.fill("#to_person", "claims.processor")
    fill_message(page, subject="Restricted", marking="OFFICIAL-SENSITIVE", body="Case.")
    page.fill("#handling", "Do not forward outside the claims team.")
    page.click("#continue")
    page.wait_for_url("**/drafts/*/check")
    checked = page.inner_text("#check-summary")
    assert "Do not forward outside the claims team." in checked, "the handling instructions"
    assert "will not be able to forward it" in page.inner_text("main"), "and what they mean"
    page.click("#send")
    page.wait_for_url("**/messages/*/sent")
    page.click("#view-message")
    page.click("#forward")
    assert page.inner_text("h1") == "You cannot forward this message"
    reason = page.inner_text("#forward-refused")
    assert "Do not forward outside the claims team." in reason
    assert page.get_attribute("#forward-refused", "data-code") == "forward-forbidden"
    people.check(page, "mail-forward-refused")

    page.goto(people.url(COUNCIL, "/compose"))
    page.select_option("#to_org", "DWP")
    page.fill("#to_person", "claims.processor")
    fill_message(page, subject="Open case", marking="OFFICIAL-SENSITIVE", body="Notes.")
    page.set_input_files(
        "#attachments", [{"name": "case.txt", "mimeType": "text/plain", "buffer": b"case"}]
    )
    send_checked(page)
    page.click("#view-message")
    page.click("#forward")
    assert page.input_value("#subject") == "Fwd: Open case"
    assert page.is_checked("input[name=marking][value='OFFICIAL-SENSITIVE']")
    assert marking_banner(page) == "OFFICIAL-SENSITIVE"
    page.fill("#to_person", "benefits")
    page.select_option("#to_org", "E09000030")
    page.click("#continue")
    page.wait_for_url("**/drafts/*/check")
    summary = page.inner_text("#check-summary")
    assert "case.txt" in summary, "a forward carries the original's attachments"
    assert "OFFICIAL-SENSITIVE" in summary
    people.check(page, "mail-forward-check")


def test_compose_check_send_and_reply_without_javascript(
    no_script: Page, people: People, staff: Callable[[str, str], str]
) -> None:
    """The core journey with plain forms and links only."""
    page = no_script
    sender = staff(COUNCIL, "plain.writer")
    people.sign_in(page, COUNCIL, sender, "/address-book?q=claims+processor")
    page.click("section[data-organisation='DWP'] a:has-text('Claims Processor')")
    fill_message(page, subject="Plain journey", marking="OFFICIAL", body="No script.")
    envelope_id = send_checked(page)
    assert "Message sent" in page.inner_text(".govuk-panel")
    page.click("#view-message")
    page.click("#reply")
    assert page.input_value("#to_person") == "claims.processor"
    reply_id = send_checked(page)
    assert reply_id != envelope_id


def send_by_api(network: LocalNetwork, where: str, token: str, fields: dict[str, object]) -> str:
    """A message sent through the local API with a person's token (setting the scene)."""
    api = network.gateways[where].config.api_url + "/api/v1/messages"
    request = urllib.request.Request(
        api,
        data=json.dumps(fields).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 202
        return str(json.loads(answer.read())["id"])


def test_the_demo_as_a_benefits_officer_without_reading_anything_first(
    page: Page, other_page: Page, people: People, web_network: LocalNetwork
) -> None:
    """The issue's "done when": from the home page, by what the pages say only, the
    benefits officer finds a DWP colleague by name and writes to them, replies to the
    colleague's message, and downloads the reply's proof with DWP's signed receipt."""
    dwp_token = web_network.add_token(DWP, "claims.processor")
    question = f"Overpayment on a joint claim {time.time_ns()}"
    asked = send_by_api(
        web_network,
        DWP,
        dwp_token,
        {
            "to": ["benefits.officer@E09000030"],
            "subject": question,
            "body": "[synthetic] Can you check the rent figure?",
            "marking": "OFFICIAL-SENSITIVE",
        },
    )
    people.sign_in(page, COUNCIL, "benefits.officer", "/")

    # Find the colleague by name, and write to them.
    page.get_by_role("link", name="Address book").first.click()
    page.get_by_role("searchbox").fill("Claims")
    page.get_by_role("button", name="Search").click()
    colleague = page.get_by_role("link", name="Claims Processor")
    assert colleague.count() == 1
    assert DWP_NAME in page.inner_text("section[data-organisation='DWP'] h2")
    colleague.click()
    assert f"Claims Processor, {DWP_NAME}" in page.inner_text("#to-names")
    offered = page.locator("#gcx-addresses option[value='claims.processor@DWP']")
    assert offered.get_attribute("label") == f"Claims Processor, {DWP_NAME}", (
        "To and Copy to offer the address book's names as one types"
    )
    fill_message(page, subject="Rent figures", marking="OFFICIAL", body="Sending them today.")
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Send message").click()
    assert "Message sent" in page.inner_text(".govuk-panel")

    # Reply to the colleague's message, found in the inbox by their name and organisation.
    page.locator(".govuk-service-navigation").get_by_role("link", name="Inbox").click()
    row = page.locator(f"tr[data-message='{asked}']")
    reload_until(page, lambda: row.count() == 1, "DWP's message in the council's inbox")
    assert f"Claims Processor, {DWP_NAME}" in row.inner_text(), "the sender by listed name"
    row.get_by_role("link", name=question).click()
    sender = page.locator(".govuk-summary-list__row", has_text="From").inner_text()
    assert f"Claims Processor, {DWP_NAME}" in sender, "the message names its sender"
    page.get_by_role("link", name="Reply", exact=True).click()
    assert page.input_value("#to_person") == "claims.processor"
    assert page.is_checked("input[name=marking][value='OFFICIAL-SENSITIVE']")
    page.fill("#body", "The rent is 650 a month." + page.input_value("#body"))
    page.get_by_role("button", name="Continue").click()
    assert f"Claims Processor, {DWP_NAME}" in page.inner_text("#check-summary")
    page.get_by_role("button", name="Send message").click()
    page.get_by_role("link", name="View the message and its delivery").click()
    reply_id = page.url.rstrip("/").rsplit("/", 1)[1]
    assert page.inner_text("h1") == f"Re: {question}"

    # The reply's proof: the evidence file, with DWP's signed receipt in it.
    reload_until(page, lambda: "Department for Work and Pensions" in _receipts(page), "receipt")
    assert "proves who sent this message" in page.inner_text("#evidence + p")
    people.check(page, "demo-benefits-officer-receipt")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the evidence file").click()
    evidence = json.loads(Path(download.value.path()).read_bytes())
    assert evidence["envelope"]["id"] == reply_id
    assert "DWP" in {r["organisation"] for r in evidence["receipts"]}, "DWP's signed receipt"

    # And the colleague has the reply.
    people.sign_in(other_page, DWP, "claims.processor", f"/messages/{reply_id}")
    assert "The rent is 650 a month." in other_page.inner_text("#message-body")


def _receipts(page: Page) -> str:
    table = page.locator("#receipts")
    return table.inner_text() if table.count() else ""


def test_reply_to_everyone_writes_to_the_sender_and_copies_the_others(
    page: Page, people: People, web_network: LocalNetwork, staff: Callable[[str, str], str]
) -> None:
    """Reply all: the sender in To; the other recipients and the copies in Copy to, not me."""
    sender, reader, colleague = (
        staff(COUNCIL, "all.sender"),
        staff(DWP, "all.reader"),
        staff(DWP, "all.colleague"),
    )
    token = web_network.add_token(COUNCIL, sender)
    subject = f"Joint case review {time.time_ns()}"
    envelope_id = send_by_api(
        web_network,
        COUNCIL,
        token,
        {
            "to": [f"{reader}@DWP", f"{colleague}@DWP"],
            "cc": ["benefits@E09000030"],
            "subject": subject,
            "body": "[synthetic] Shall we meet?",
            "marking": "OFFICIAL",
        },
    )
    people.sign_in(page, DWP, reader, "/inbox")
    row = page.locator(f"tr[data-message='{envelope_id}']")
    reload_until(page, lambda: row.count() == 1, "the message in DWP's inbox")
    row.locator("a").click()
    page.click("#reply-all")
    assert page.inner_text("h1") == "Reply to everyone"
    assert (page.input_value("#to_org"), page.input_value("#to_person")) == ("E09000030", sender)
    copied = [a.strip() for a in page.input_value("#cc").split(",")]
    assert sorted(copied) == sorted([f"{colleague}@DWP", "benefits@E09000030"])
    assert page.input_value("#subject") == f"Re: {subject}"
    people.check(page, "mail-reply-all")
    page.fill("#body", "Tuesday suits me." + page.input_value("#body"))
    page.click("#continue")
    page.wait_for_url("**/drafts/*/check")
    summary = page.inner_text("#check-summary")
    # Neither chose to be listed, so each is shown by address with the organisation's name.
    assert f"{sender}@E09000030 (London Borough of Tower Hamlets)" in summary
    assert f"{colleague}@DWP ({DWP_NAME})" in summary
    assert "Benefits, London Borough of Tower Hamlets" in summary
    assert f"{reader}@DWP" not in summary, "not to oneself"
    people.check(page, "mail-reply-all-check")
    page.click("#send")
    page.wait_for_url("**/messages/*/sent")


def test_a_message_is_read_and_answered_with_the_keyboard_alone(
    page: Page, people: People, web_network: LocalNetwork, staff: Callable[[str, str], str]
) -> None:
    """From the inbox, Tab and Enter open the message; Tab and Enter reach Reply."""
    sender, reader = staff(DWP, "keys.sender"), staff(COUNCIL, "keys.reader")
    token = web_network.add_token(DWP, sender)
    subject = f"Read by keyboard {time.time_ns()}"
    envelope_id = send_by_api(
        web_network,
        DWP,
        token,
        {
            "to": [f"{reader}@E09000030"],
            "subject": subject,
            "body": "[synthetic] Read without a mouse.",
            "marking": "OFFICIAL",
        },
    )
    people.sign_in(page, COUNCIL, reader, "/inbox")
    reload_until(
        page,
        lambda: page.locator(f"tr[data-message='{envelope_id}']").count() == 1,
        "the message in the inbox",
    )
    keyboard = page.keyboard

    def tab_to(selector: str) -> None:
        for _ in range(80):
            keyboard.press("Tab")
            if page.evaluate("(s) => document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to(f"tr[data-message='{envelope_id}'] a")
    keyboard.press("Enter")
    page.wait_for_url(f"**/messages/{envelope_id}")
    assert page.inner_text("h1") == subject
    assert "Read without a mouse." in page.inner_text("#message-body")
    people.check(page, "mail-read-by-keyboard")
    tab_to("#reply")
    keyboard.press("Enter")
    page.wait_for_url(f"**/messages/{envelope_id}/reply")
    assert page.input_value("#to_person") == sender
    tab_to("#body")
    keyboard.press("Control+Home")
    keyboard.type("Thank you, read. ")
    tab_to("#continue")
    keyboard.press("Enter")
    page.wait_for_url("**/drafts/*/check")
    tab_to("#send")
    keyboard.press("Enter")
    page.wait_for_url("**/messages/*/sent")
    assert "Message sent" in page.inner_text(".govuk-panel")
