"""Secure mail in the browser: compose, send, read, download, receipts, recall, refusals.

The council officer (tower-hamlets) writes to the police (met-police) through
the pages alone; the police officer reads it on the other gateway's pages.
Delivery between gateways is asynchronous, so tests reload a page until what
they wait for shows, within a bound, rather than sleeping.
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
from gcx.protocol.message import MAX_ATTACHMENT_BYTES
from gcx.web.gateway.mail import LIST_LIMIT

from .webutil import People, error_summary, marking_banner

pytestmark = [pytest.mark.integration, pytest.mark.browser]

COUNCIL = "tower-hamlets"
POLICE = "met-police"
DELIVERY_SECONDS = 60.0
# Bytes that a text-mode or charset-guessing download would change.
ATTACHMENT = "Case notes for the referral.\r\nNamé: A. Person\n".encode() + bytes(range(256))


@pytest.fixture
def other_page(browser: Browser) -> Iterator[Page]:
    """A second person's browser, with cookies of its own."""
    context = browser.new_context(accept_downloads=True)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="module")
def council_staff(web_network: LocalNetwork) -> Callable[[str], str]:
    """More council staff, so each test signs in someone whose code was not just used."""
    made: set[str] = set()

    def person(username: str) -> str:
        if username not in made:
            web_network.add_web_user(COUNCIL, username, username.title(), ("staff",), "E09000030")
            made.add(username)
        return username

    return person


def reload_until(page: Page, ready: Callable[[], bool], what: str) -> None:
    """Reload ``page`` until ``ready()`` holds; fail naming ``what`` after a bound."""
    deadline = time.monotonic() + DELIVERY_SECONDS
    while not ready():
        assert time.monotonic() < deadline, f"{what} did not show within {DELIVERY_SECONDS}s"
        page.wait_for_timeout(250)
        page.reload()


def submit_compose(page: Page) -> None:
    """Send the compose form through "Check your message" and the confirmation page.

    The next page is the message sent, or the form with its refusal.
    """
    page.click("#continue")
    page.wait_for_load_state()
    if page.url.endswith("/check"):
        page.click("#send")
        page.wait_for_url("**/messages/*/sent")
        assert "Message sent" in page.inner_text(".govuk-panel")
        page.click("#view-message")
        page.wait_for_url("**/messages/*")


def compose(
    page: Page,
    *,
    org: str = "",
    person: str = "",
    cc: str = "",
    subject: str = "",
    marking: str | None = None,
    handling: str = "",
    body: str = "",
    files: list[tuple[str, str, bytes]] | None = None,
    read_receipt: bool = False,
) -> None:
    page.select_option("#to_org", org)
    page.fill("#to_person", person)
    page.fill("#cc", cc)
    page.fill("#subject", subject)
    if marking is not None:
        page.check(f"input[name=marking][value='{marking}']")
    page.fill("#handling", handling)
    page.fill("#body", body)
    if files:
        page.set_input_files(
            "#attachments",
            [{"name": n, "mimeType": t, "buffer": data} for n, t, data in files],
        )
    if read_receipt:
        page.check("input[name=read_receipt]")
    submit_compose(page)


def message_id(page: Page) -> str:
    assert "/messages/" in page.url, f"not on a message page: {page.url}"
    return page.url.rstrip("/").rsplit("/", 1)[1]


def delivery_state(page: Page) -> str:
    return str(page.get_attribute("[data-delivery-state]", "data-delivery-state"))


def test_council_sends_sensitive_mail_the_police_read_it_and_the_receipt_comes_back(
    page: Page, other_page: Page, people: People
) -> None:
    """The issue's journey: send with attachment and read receipt, read, download, receipt."""
    people.sign_in(page, COUNCIL, "benefits.officer", "/compose")
    assert page.url.endswith("/compose")
    people.check(page, "mail-compose")
    subject = f"Safeguarding referral {time.time_ns()}"
    compose(
        page,
        org="MPS",
        person="safeguarding.officer",
        subject=subject,
        marking="OFFICIAL-SENSITIVE",
        handling="Do not forward outside the safeguarding team.",
        body="Please see the attached case notes.\nCall me on receipt.",
        files=[("case notes.txt", "text/plain", ATTACHMENT)],
        read_receipt=True,
    )
    envelope_id = message_id(page)
    assert marking_banner(page) == "OFFICIAL-SENSITIVE"

    police = other_page
    people.sign_in(police, POLICE, "safeguarding.officer", "/inbox")
    row = f"tr[data-message='{envelope_id}']"
    reload_until(police, lambda: police.locator(row).count() == 1, "the message in the inbox")
    assert subject in police.inner_text(row)
    assert "benefits.officer@E09000030" in police.inner_text(row)
    assert "Unread" in police.inner_text(row)
    assert marking_banner(police) == "OFFICIAL-SENSITIVE", "the inbox shows its highest marking"
    people.check(police, "mail-inbox")

    police.click(f"{row} a")
    assert marking_banner(police) == "OFFICIAL-SENSITIVE"
    assert police.inner_text("h1") == subject
    assert "Do not forward outside the safeguarding team." in police.inner_text("#handling")
    assert "Call me on receipt." in police.inner_text("#message-body")
    people.check(police, "mail-message")
    with police.expect_download() as download:
        police.click("#attachments a")
    assert download.value.suggested_filename == "case notes.txt"
    assert Path(download.value.path()).read_bytes() == ATTACHMENT
    href = police.get_attribute("#attachments a", "href")
    fetched = police.request.get(people.url(POLICE, str(href)))
    assert fetched.headers["content-disposition"].startswith("attachment;")
    assert fetched.headers["cache-control"] == "no-store", "decrypted files are never cached"
    assert fetched.headers["x-content-type-options"] == "nosniff"

    police.goto(people.url(POLICE, "/inbox"))
    assert "Read" in police.inner_text(row)

    page.goto(people.url(COUNCIL, f"/messages/{envelope_id}"))
    reload_until(
        page,
        lambda: "Read by safeguarding.officer@MPS" in page.inner_text("#delivery-status"),
        "the read receipt on the sent message",
    )
    assert delivery_state(page) == "delivered"
    receipts = page.inner_text("#receipts")
    assert "Delivered" in receipts and "Metropolitan Police Service (MPS)" in receipts
    assert page.locator("#recall-button").count() == 0, "a read message offers no recall"
    live = page.get_attribute("#delivery-status", "data-gcx-live")
    assert live == f"/messages/{envelope_id}/status"
    fragment = page.request.get(people.url(COUNCIL, live))
    assert fragment.status == 200 and "<html" not in fragment.text()
    assert "Read by safeguarding.officer@MPS" in fragment.text()
    refused = police.request.get(people.url(POLICE, live))
    assert refused.status == 403, "only the sender sees a message's delivery"
    people.check(page, "mail-sent-receipt")

    page.goto(people.url(COUNCIL, "/sent"))
    sent_row = page.inner_text(f"tr[data-message='{envelope_id}']")
    assert "Delivered" in sent_row and "safeguarding.officer@MPS" in sent_row
    people.check(page, "mail-sent")


def test_a_message_recalled_before_it_is_read_cannot_be_opened(
    page: Page, other_page: Page, people: People
) -> None:
    people.sign_in(page, COUNCIL, "benefits.officer", "/compose")
    compose(
        page,
        org="MPS",
        person="safeguarding.officer",
        subject="Sent to the wrong team",
        marking="OFFICIAL",
        body="This was meant for someone else.",
    )
    envelope_id = message_id(page)
    reload_until(page, lambda: delivery_state(page) == "delivered", "delivery")
    page.click("#recall-button")
    assert page.url.endswith(f"/messages/{envelope_id}/recall"), "a recall asks first"
    assert "Are you sure you want to recall this message?" in page.inner_text("h1")
    assert "safeguarding.officer@MPS" in page.inner_text("#recall-recipients")
    people.check(page, "mail-recall-confirm")
    page.click("#cancel-recall")
    assert delivery_state(page) == "delivered", "cancelling recalls nothing"
    page.click("#recall-button")
    page.click("#confirm-recall")
    assert "The message was recalled" in page.inner_text(".govuk-notification-banner")
    assert delivery_state(page) == "recalled"
    assert page.locator("#recall-button").count() == 0

    police = other_page
    people.sign_in(police, POLICE, "safeguarding.officer", "/inbox")
    row = police.locator(f"tr[data-message='{envelope_id}']")
    assert "Recalled" in row.inner_text()
    assert "Sent to the wrong team" not in row.inner_text(), "a recalled subject is not shown"
    assert row.locator("a").count() == 0
    answer = police.goto(people.url(POLICE, f"/messages/{envelope_id}"))
    assert answer is not None and answer.status == 410
    assert answer.headers["x-gcx-error"] == "message-recalled"
    assert "recalled this message before it was read" in police.inner_text("main")


def test_a_recall_after_reading_is_refused_with_the_reason(
    page: Page,
    other_page: Page,
    people: People,
    council_staff: Callable[[str], str],
) -> None:
    sender = council_staff("recall.officer")
    people.sign_in(page, COUNCIL, sender, "/compose")
    compose(
        page,
        org="DWP",
        person="claims.processor",
        subject="Claim evidence",
        marking="OFFICIAL",
        body="Evidence for the claim.",
    )
    envelope_id = message_id(page)

    dwp = other_page
    people.sign_in(dwp, "dwp", "claims.processor", "/inbox")
    row = f"tr[data-message='{envelope_id}']"
    reload_until(dwp, lambda: dwp.locator(row).count() == 1, "the message at DWP")
    dwp.click(f"{row} a")
    assert marking_banner(dwp) == "OFFICIAL"

    # No read receipt was asked for, so the sender's page still offers a recall.
    page.reload()
    page.click("#recall-button")
    page.click("#confirm-recall")
    summary = error_summary(page)
    assert "could not be recalled everywhere" in summary
    assert "Already read by claims.processor@DWP" in summary
    people.check(page, "mail-recall-refused")


def test_refused_inputs_show_the_reason_and_keep_what_was_typed(
    page: Page, people: People, council_staff: Callable[[str], str]
) -> None:
    people.sign_in(page, COUNCIL, council_staff("casework.officer"), "/compose")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        compose(page, org="MPS", person="safeguarding.officer", subject="Unmarked", body="Text")
    assert answer.value.status == 400
    assert answer.value.headers["x-gcx-error"] == "marking-missing", "the API's own code"
    assert "A protective marking is required" in error_summary(page)
    assert page.title().startswith("Error:")
    assert page.input_value("#subject") == "Unmarked", "what was typed is kept"
    assert page.input_value("#to_org") == "MPS"
    assert page.input_value("#body") == "Text"
    assert page.locator("#marking-error").count() == 1
    people.check(page, "mail-compose-errors")
    page.click(".govuk-error-summary a")
    assert page.evaluate("document.activeElement.name") == "marking"

    compose(
        page,
        org="MPS",
        person="safeguarding.officer",
        cc="someone@NOWHERE",
        subject="Unknown copy",
        marking="OFFICIAL",
        body="Text",
    )
    assert "NOWHERE is not an organisation the network directory" in error_summary(page)
    assert page.locator("#cc-error").count() == 1
    assert page.is_checked("input[name=marking][value='OFFICIAL']"), "the marking is kept"

    compose(page, subject="Nobody", marking="OFFICIAL", body="Text")
    assert "A message needs at least one address in To." in error_summary(page)
    assert page.locator("#to_org-error").count() == 1

    compose(page, org="MPS", person="Not A Name!", subject="Bad", marking="OFFICIAL", body="x")
    assert "is not an address" in error_summary(page)
    assert page.locator("#to_person-error").count() == 1

    too_large = bytes(MAX_ATTACHMENT_BYTES + 1)
    compose(
        page,
        org="MPS",
        person="safeguarding.officer",
        subject="Big scan",
        marking="OFFICIAL",
        body="Attached.",
        files=[("scan.pdf", "application/pdf", too_large)],
    )
    assert "scan.pdf is larger than 25 MiB" in error_summary(page)
    assert page.locator("#attachments-error").count() == 1
    assert page.input_value("#subject") == "Big scan", "the rest of the form is kept"


def test_every_problem_in_the_form_is_listed_at_once(
    page: Page, people: People, council_staff: Callable[[str], str]
) -> None:
    """The error summary lists each field to put right, in the form's order, each linked."""
    people.sign_in(page, COUNCIL, council_staff("hasty.officer"), "/compose")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        compose(page, cc="nobody", handling="h" * 2001, body="Text")
    assert answer.value.status == 400
    assert answer.value.headers["x-gcx-error"].split(",") == [
        "address-invalid",
        "address-invalid",
        "input-invalid",
        "marking-missing",
        "input-invalid",
    ]
    links = page.locator(".govuk-error-summary a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
        "#to_org",
        "#cc",
        "#subject",
        "#marking",
        "#handling",
    ]
    summary = error_summary(page)
    assert "A message needs at least one address in To." in summary
    assert "A message needs a subject." in summary
    assert "Handling instructions must be at most 2,000 characters." in summary
    for field_id in ("to_org", "cc", "subject", "marking", "handling"):
        assert page.locator(f"#{field_id}-error").count() == 1, field_id
    assert page.input_value("#body") == "Text", "what was typed is kept"
    people.check(page, "mail-compose-several-errors")


def test_compose_and_send_with_the_keyboard_alone(
    page: Page, people: People, council_staff: Callable[[str], str]
) -> None:
    people.sign_in(page, COUNCIL, council_staff("keyboard.officer"), "/compose")
    keyboard = page.keyboard

    def tab_to(selector: str) -> None:
        for _ in range(60):
            keyboard.press("Tab")
            if page.evaluate("(s) => document.activeElement.matches(s)", selector):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#to_org")
    keyboard.type("Metropolitan")
    assert page.input_value("#to_org") == "MPS", "typing chooses the organisation"
    tab_to("#to_person")
    keyboard.type("safeguarding.officer")
    tab_to("#subject")
    keyboard.type("Sent with the keyboard")
    tab_to("input[name=marking]")
    keyboard.press("Space")
    assert page.is_checked("input[name=marking][value='OFFICIAL']")
    tab_to("#body")
    keyboard.type("Typed without a mouse.")
    tab_to("input[name=read_receipt]")
    keyboard.press("Space")
    assert page.is_checked("input[name=read_receipt]")
    tab_to("#continue")
    keyboard.press("Enter")
    page.wait_for_url("**/drafts/*/check")
    tab_to("#send")
    keyboard.press("Enter")
    page.wait_for_url("**/messages/*/sent")
    tab_to("#view-message")
    keyboard.press("Enter")
    page.wait_for_url("**/messages/*")
    assert marking_banner(page) == "OFFICIAL"
    assert page.inner_text("h1") == "Sent with the keyboard"
    assert "Typed without a mouse." in page.inner_text("#message-body")


def test_a_person_who_only_uses_the_web_pages_receives_mail(
    page: Page, people: People, web_network: LocalNetwork
) -> None:
    """No API token, only a web account: still an address other organisations can write to."""
    web_network.add_web_user("met-police", "web.only", "Web Only", ("staff",), "MPS")
    people.sign_in(page, "tower-hamlets", "benefits.officer", "/compose")
    page.select_option("#to_org", "MPS")
    page.fill("#to_person", "web.only")
    page.fill("#subject", "For the web-only officer")
    page.check("input[name='marking'][value='OFFICIAL']")
    page.fill("#body", "Hello from the council.")
    submit_compose(page)
    page.context.clear_cookies()
    people.sign_in(page, "met-police", "web.only", "/inbox")
    for _ in range(40):
        if "For the web-only officer" in page.inner_text("main"):
            break
        page.wait_for_timeout(500)
        page.reload()
    assert "For the web-only officer" in page.inner_text("main")


def test_the_mail_journey_works_without_javascript(
    browser: Browser, people: People, council_staff: Callable[[str], str], web_network: LocalNetwork
) -> None:
    """Send with an attachment, see it delivered, read it and download: plain forms and links."""
    sender = council_staff("no.script")
    web_network.add_web_user("dwp", "no.script.reader", "No Script Reader", ("staff",), "DWP")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        people.sign_in(page, COUNCIL, sender, "/compose")
        subject = f"Plain form {time.time_ns()}"
        compose(
            page,
            org="DWP",
            person="no.script.reader",
            subject=subject,
            marking="OFFICIAL",
            body="Sent without any script.",
            files=[("plain.txt", "text/plain", b"plain bytes")],
        )
        envelope_id = message_id(page)
        reload_until(page, lambda: delivery_state(page) == "delivered", "delivery")

        reader = context.new_page()
        reader.context.clear_cookies()
        people.sign_in(reader, "dwp", "no.script.reader", f"/messages/{envelope_id}")
        assert "Sent without any script." in reader.inner_text("main")
        with reader.expect_download() as download:
            reader.click("text=plain.txt")
        assert download.value.path().read_bytes() == b"plain bytes"
    finally:
        context.close()


def test_long_inbox_and_sent_lists_have_older_pages(
    page: Page, other_page: Page, people: People, web_network: LocalNetwork
) -> None:
    """Past the newest 50, messages are a page away: none becomes unreachable."""
    web_network.add_web_user(POLICE, "paging.officer", "Paging Officer", ("staff",), "MPS")
    web_network.add_web_user(COUNCIL, "pager.clerk", "Pager Clerk", ("staff",), "E09000030")
    token = web_network.add_token(COUNCIL, "pager.clerk")
    api = web_network.gateways[COUNCIL].config.api_url + "/api/v1/messages"
    for n in range(LIST_LIMIT + 1):
        request = urllib.request.Request(
            api,
            data=json.dumps(
                {
                    "to": ["paging.officer@MPS"],
                    "subject": f"Batch notice {n:02d}",
                    "body": "One of many.",
                    "marking": "OFFICIAL",
                }
            ).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as answer:
            assert answer.status == 202

    people.sign_in(page, POLICE, "paging.officer", "/inbox")
    reload_until(
        page,
        lambda: page.locator(".govuk-pagination__next").count() == 1,
        "all the messages, with a page of older ones",
    )
    subjects = page.locator("table tbody tr td:nth-child(2) a")
    newest = subjects.all_inner_texts()
    assert len(newest) == LIST_LIMIT
    assert page.locator(".govuk-pagination__prev").count() == 0, "this is the newest page"
    people.check(page, "mail-inbox-paged")
    page.click("text=Older messages")
    assert "before=" in page.url
    older = subjects.all_inner_texts()
    # Batches may arrive in any order, so which one is on the older page is not fixed.
    assert sorted(s.replace(" (unread)", "").strip() for s in newest + older) == [
        f"Batch notice {n:02d}" for n in range(LIST_LIMIT + 1)
    ]
    assert page.locator(".govuk-pagination__next").count() == 0, "this is the oldest page"
    page.click("text=Newest messages")
    assert page.url.endswith("/inbox")

    people.sign_in(other_page, COUNCIL, "pager.clerk", "/sent")
    assert other_page.locator("table tbody tr").count() == LIST_LIMIT
    other_page.click("text=Older messages")
    assert "Batch notice 00" in other_page.inner_text("main")
    response = other_page.goto(people.url(COUNCIL, "/sent?before=nonsense"))
    assert response is not None and response.status == 400
    assert response.headers["x-gcx-error"] == "input-invalid"


def test_typing_a_long_message_keeps_the_session_alive(
    page: Page, people: People, council_staff: Callable[[str], str]
) -> None:
    """While someone types, gcx.js tells the server at most every four minutes."""
    page.clock.install()
    people.sign_in(page, COUNCIL, council_staff("slow.writer"), "/compose")
    keep_alives: list[int] = []
    page.on(
        "response",
        lambda r: keep_alives.append(r.status) if r.url.endswith("/session/keep-alive") else None,
    )
    page.fill("#body", "The first paragraph")
    page.wait_for_timeout(300)
    assert keep_alives == [], "not within four minutes of the page loading"
    page.clock.fast_forward("05:00")
    with page.expect_response(lambda r: r.url.endswith("/session/keep-alive")) as kept:
        page.fill("#body", "The first paragraph, and the second")
    assert kept.value.status == 204
    page.fill("#body", "The first paragraph, the second and a third")
    page.wait_for_timeout(300)
    assert keep_alives == [204], "once, not at every keystroke"
