"""Staff tools in the browser: bulk files, reference service lookups and "What I did"."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from gcx.localnet import LocalNetwork
from gcx.reference._data import fsm_eligible, sample_ninos

from .webutil import People, error_summary, marking_banner

pytestmark = [pytest.mark.integration, pytest.mark.browser]

COUNCIL, DWP, POLICE = "tower-hamlets", "dwp", "met-police"
TRANSFER_PATH = re.compile(r"/files/([0-9a-f]{32})$")
PURPOSE = "housing benefit review, case HB-2291"


_made = itertools.count(1)


@pytest.fixture
def officer(web_network: LocalNetwork) -> str:
    """A council staff member of their own, so sign-ins never wait for a fresh code."""
    username = f"officer.{next(_made)}"
    web_network.add_web_user(COUNCIL, username, "Council Officer", ("staff",), "E09000030")
    return username


@pytest.fixture
def plain_page(browser: Browser) -> Iterator[Page]:
    """A browser with JavaScript off: every form must still work as a plain post."""
    context = browser.new_context(java_script_enabled=False)
    try:
        yield context.new_page()
    finally:
        context.close()


FILES = [
    {"name": "claims-2026-11.csv", "mimeType": "text/csv", "buffer": b"nino,amount\n" * 500},
    {
        "name": "evidence bundle.bin",
        "mimeType": "application/octet-stream",
        "buffer": os.urandom(300_000),
    },
]


def _files() -> list[dict[str, object]]:
    return [dict(f) for f in FILES]


def _send(page: Page, people: People) -> str:
    """Choose DWP, OFFICIAL-SENSITIVE and two files, send them; the transfer's id."""
    page.check("input[name=to][value=DWP]")
    page.check("input[name=marking][value=OFFICIAL-SENSITIVE]")
    page.set_input_files("#files", _files())  # type: ignore[arg-type]
    page.click("button:has-text('Send files')")
    page.wait_for_url(TRANSFER_PATH)
    match = TRANSFER_PATH.search(page.url)
    assert match, page.url
    return match.group(1)


def test_files_sent_without_javascript_arrive_and_download_whole(
    plain_page: Page, page: Page, browser: Browser, people: People
) -> None:
    people.sign_in(plain_page, COUNCIL, "benefits.officer", "/files/send")
    transfer_id = _send(plain_page, people)
    assert "files are encrypted and on the way" in plain_page.inner_text("main")
    assert marking_banner(plain_page) == "OFFICIAL-SENSITIVE", "the banner is the transfer's"

    # The sender follows delivery on the status page (refreshed in place with JavaScript).
    people.sign_in(page, COUNCIL, "benefits.officer", f"/files/{transfer_id}")
    people.check(page, "files-status-sent")
    page.wait_for_selector("[data-organisation=DWP][data-state=delivered]", timeout=60_000)
    assert "Signed receipt" in page.inner_text("#recipients")
    page.goto(people.url(COUNCIL, "/files"))
    assert transfer_id in (page.inner_html("#sent") or "")
    assert page.locator(".govuk-pagination").count() == 0, "one page holds them all"
    people.check(page, "files-list")
    refused = page.goto(people.url(COUNCIL, "/files?before=not-a-page"))
    assert refused is not None and refused.status == 400
    assert refused.headers["x-gcx-error"] == "input-invalid"
    page.goto(people.url(COUNCIL, "/activity"))
    assert page.locator("tr[data-action='transfer.created']").count() == 1, "What I did"
    assert "Sent files" in page.inner_text("main")

    # DWP's claims processor finds it among the files received and downloads each file.
    receiver = browser.new_context(accept_downloads=True).new_page()
    try:
        people.sign_in(receiver, DWP, "claims.processor", "/files")
        receiver.click(f"#received a[href='/files/{transfer_id}']")
        assert marking_banner(receiver) == "OFFICIAL-SENSITIVE"
        people.check(receiver, "files-status-received")
        for index, expected in enumerate(_files()):
            with receiver.expect_download() as info:
                receiver.click(f"a[href='/files/{transfer_id}/files/{index}']")
            download = info.value
            assert download.suggested_filename == expected["name"]
            assert Path(download.path()).read_bytes() == expected["buffer"], "the bytes sent"
    finally:
        receiver.context.close()


def test_files_sent_with_javascript_show_the_status_page(
    page: Page, people: People, officer: str
) -> None:
    people.sign_in(page, COUNCIL, officer, "/files/send")
    people.check(page, "files-send")
    assert page.get_attribute("form[data-gcx-progress]", "data-gcx-progress") == "upload-progress"
    transfer_id = _send(page, people)  # sent by gcx.js, which shows the page it ends on
    assert "files are encrypted and on the way" in page.inner_text("main")
    # A real page load, not a page written by the script: its own scripts ran.
    assert page.evaluate("document.body.classList.contains('js-enabled')")
    assert "claims-2026-11.csv" in page.inner_text("#files")
    fragment = page.request.get(people.url(COUNCIL, f"/files/{transfer_id}/live"))
    assert fragment.ok and 'data-organisation="DWP"' in fragment.text()
    # On a status page loaded while the transfer is on its way, gcx.js refreshes the
    # delivery state in place until the receipt comes.
    page.goto(people.url(COUNCIL, f"/files/{transfer_id}"))
    if "Complete" not in page.inner_text("#transfer-state"):
        live = page.get_attribute("#delivery", "data-gcx-live")
        assert live == f"/files/{transfer_id}/live"
    page.wait_for_selector("[data-organisation=DWP][data-state=delivered]", timeout=60_000)


def test_a_send_without_files_or_marking_is_refused_with_the_error_summary(
    plain_page: Page, page: Page, people: People, officer: str
) -> None:
    people.sign_in(plain_page, COUNCIL, officer, "/files/send")
    plain_page.check("input[name=to][value=DWP]")
    with plain_page.expect_response(lambda r: r.request.method == "POST") as posted:
        plain_page.click("button:has-text('Send files')")
    assert posted.value.status == 400
    codes = posted.value.headers.get("x-gcx-error", "")
    assert "marking-missing" in codes and "transfer-empty" in codes, codes
    summary = error_summary(plain_page)
    assert "Choose the protective marking of the files." in summary
    assert "Choose one or more files to send." in summary
    assert plain_page.is_checked("input[name=to][value=DWP]"), "the choice made is kept"

    # The same refusal in a browser with JavaScript (sent by gcx.js), checked for access.
    people.sign_in(page, COUNCIL, officer, "/files/send")
    page.set_input_files("#files", _files()[:1])  # type: ignore[arg-type]
    page.click("button:has-text('Send files')")
    page.wait_for_selector(".govuk-error-summary")  # gcx.js shows the answer when it comes
    summary = error_summary(page)
    assert "Choose at least one organisation" in summary
    assert "Choose the protective marking" in summary
    people.check(page, "files-send-refused")


def test_a_council_officer_looks_up_a_customer_with_a_purpose(
    page: Page, people: People, officer: str
) -> None:
    nino = sample_ninos(1)[0]
    people.sign_in(page, COUNCIL, officer, "/lookups")
    assert page.locator("[data-service='DWP/dwp-cis']").count() == 1, "the grant is listed"
    people.check(page, "lookups-form")
    page.fill("#nino", f"{nino[:2]} {nino[2:4]} {nino[4:6]} {nino[6:8]} {nino[8]}".lower())
    page.fill("#purpose", PURPOSE)
    page.click("button:has-text('Look up')")
    assert page.inner_text("#data-label") == "SYNTHETIC data"
    record = page.inner_text("#customer")
    assert nino in record and "SYNTHETIC" in record
    assert PURPOSE in page.inner_text("main")
    people.check(page, "lookups-result")


def test_a_lookup_without_a_purpose_or_with_a_bad_number_is_refused(
    page: Page, people: People, officer: str
) -> None:
    nino = sample_ninos(2)[1]
    people.sign_in(page, COUNCIL, officer, "/lookups")
    page.fill("#nino", nino)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("button:has-text('Look up')")
    assert posted.value.headers.get("x-gcx-error") == "purpose-required"
    assert "Enter why you need this record" in error_summary(page)
    assert page.input_value("#nino") == nino, "what was typed is kept"
    people.check(page, "lookups-refused")

    page.fill("#nino", "AB12")
    page.fill("#purpose", PURPOSE)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("button:has-text('Look up')")
    assert posted.value.headers.get("x-gcx-error") == "nino-invalid"
    assert "National Insurance number in the right format" in error_summary(page)
    assert page.input_value("#purpose") == PURPOSE


def test_a_council_officer_checks_free_school_meals_eligibility(
    page: Page, people: People, officer: str
) -> None:
    """DWP answers yes or no for each parent; the benefit record behind it is not shown."""
    candidates = sample_ninos(60)
    eligible = next(n for n in candidates if fsm_eligible(n) is True)
    not_eligible = next(n for n in candidates if fsm_eligible(n) is False)
    people.sign_in(page, COUNCIL, officer, "/lookups")
    assert page.locator("[data-service='DWP/fsm']").count() == 1, "the grant is listed"
    for nino, words in ((eligible, "Eligible"), (not_eligible, "Not eligible")):
        page.goto(people.url(COUNCIL, "/lookups"))
        page.fill("#fsm-nino", nino)
        page.fill("#fsm-purpose", "free school meals application FSM-1187")
        page.click("button:has-text('Check eligibility')")
        answer = page.inner_text("#eligibility")
        assert nino in answer and words in answer, answer
        assert "Universal Credit" not in page.inner_text("main"), "only the answer is shown"
        assert page.inner_text("#data-label") == "SYNTHETIC data"
        assert marking_banner(page) == "OFFICIAL-SENSITIVE"
    people.check(page, "lookups-fsm-result")

    page.goto(people.url(COUNCIL, "/lookups"))
    page.fill("#fsm-nino", eligible)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("button:has-text('Check eligibility')")
    assert posted.value.headers.get("x-gcx-error") == "purpose-required"
    assert "Enter why you need this record" in error_summary(page)
    assert page.input_value("#fsm-nino") == eligible, "kept in the form that was refused"
    assert page.input_value("#nino") == "", "and not copied into the other form"
    page.click(".govuk-error-summary a")
    assert page.evaluate("document.activeElement.id") == "fsm-purpose"
    people.check(page, "lookups-fsm-refused")


def test_an_officer_whose_force_holds_no_grant_is_refused(page: Page, people: People) -> None:
    people.sign_in(page, POLICE, "safeguarding.officer", "/lookups")
    assert page.locator("#no-services").count() == 1
    page.fill("#nino", sample_ninos(1)[0])
    page.fill("#purpose", "safeguarding referral 77")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("button:has-text('Look up')")
    assert posted.value.status == 403
    assert posted.value.headers.get("x-gcx-error") == "service-forbidden"
    assert "MPS holds no access right to DWP/dwp-cis" in error_summary(page)
    people.check(page, "lookups-forbidden")


def test_what_i_did_shows_my_sign_in_and_lookup(page: Page, people: People, officer: str) -> None:
    people.sign_in(page, COUNCIL, officer, "/lookups")
    page.fill("#nino", sample_ninos(3)[2])
    page.fill("#purpose", PURPOSE)
    page.click("button:has-text('Look up')")
    page.click("a:has-text('What I did')")
    assert page.url.endswith("/activity")
    rows = page.locator("tbody tr")
    assert rows.first.get_attribute("data-action") == "web.service-called", "newest first"
    # Named by its service and purpose, never by the service's code or the call's id.
    lookup = rows.first.inner_text()
    assert "Looked up a record with DWP Customer Information" in lookup
    assert "Department for Work and Pensions" in lookup
    assert f"Purpose: {PURPOSE}" in lookup
    assert "dwp-cis" not in lookup
    text = page.inner_text("main")
    assert "Signed in" in text
    assert page.locator("tr[data-action='web.signed-in']").count() >= 1
    people.check(page, "activity")


def _tab_to(page: Page, selector: str) -> None:
    """Press Tab until ``selector`` has the focus, as a person without a mouse does."""
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_a_lookup_by_keyboard_alone(page: Page, people: People, officer: str) -> None:
    """Tab and typing fill the lookup; Enter on its button asks it."""
    nino = sample_ninos(3)[2]
    people.sign_in(page, COUNCIL, officer, "/lookups")
    _tab_to(page, "#nino")
    page.keyboard.type(nino)
    _tab_to(page, "#purpose")
    page.keyboard.type(PURPOSE)
    _tab_to(page, "form:has(#purpose) button")
    page.keyboard.press("Enter")
    page.wait_for_selector("#customer")
    assert nino in page.inner_text("#customer")
    people.check(page, "lookups-by-keyboard")


def test_files_sent_and_downloaded_by_keyboard_alone(
    page: Page, browser: Browser, people: People, officer: str
) -> None:
    """Space ticks the recipient and the marking and opens the file chooser, Enter sends;
    the receiver reaches the batch and downloads its file with Tab and Enter."""
    # Listening for file choosers now makes Playwright intercept them well before Space is
    # pressed: it asks the browser to without waiting for an answer, so asking only at the
    # press raced it (seen once in CI: the chooser opened, unintercepted, and no event came).
    page.on("filechooser", lambda _: None)
    people.sign_in(page, COUNCIL, officer, "/files/send")
    _tab_to(page, "input[name=to][value=DWP]")
    page.keyboard.press("Space")
    _tab_to(page, "input[name=marking]")
    page.keyboard.press("Space")
    assert page.is_checked("input[name=marking][value=OFFICIAL]")
    _tab_to(page, "#files")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press("Space")
    chooser.value.set_files(_files()[:1])  # type: ignore[arg-type]
    _tab_to(page, "button.govuk-button")
    page.keyboard.press("Enter")
    page.wait_for_url(TRANSFER_PATH)
    match = TRANSFER_PATH.search(page.url)
    assert match, page.url
    transfer_id = match.group(1)
    page.wait_for_selector("[data-organisation=DWP][data-state=delivered]", timeout=60_000)

    receiver = browser.new_context(accept_downloads=True).new_page()
    try:
        people.sign_in(receiver, DWP, "claims.processor", "/files")
        _tab_to(receiver, f"#received a[href='/files/{transfer_id}']")
        receiver.keyboard.press("Enter")
        receiver.wait_for_url(f"**/files/{transfer_id}")
        _tab_to(receiver, f"a[href='/files/{transfer_id}/files/0']")
        with receiver.expect_download() as info:
            receiver.keyboard.press("Enter")
        assert Path(info.value.path()).read_bytes() == FILES[0]["buffer"], "the bytes sent"
        people.check(receiver, "files-downloaded-by-keyboard")
    finally:
        receiver.context.close()
