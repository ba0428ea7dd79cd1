"""Staff lists in the browser: search, filters, sort and pages; the unread count; received
batches of files with their note, "download all" and their place in the inbox; proof to
download; and lists that fit a phone.

Messages are sent through the local API (quicker than the compose page, which
test_web_mail covers) and read on the receiving gateway's pages. Delivery is
asynchronous, so tests reload until what they wait for shows, within a bound.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page

from gcx.localnet import LocalNetwork

from .webutil import People, error_summary, marking_banner

pytestmark = [pytest.mark.integration, pytest.mark.browser]

COUNCIL, POLICE, DWP = "tower-hamlets", "met-police", "dwp"
DELIVERY_SECONDS = 60.0
TRANSFER_PATH = re.compile(r"/files/([0-9a-f]{32})$")
_made = itertools.count(1)


def reload_until(page: Page, ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DELIVERY_SECONDS
    while not ready():
        assert time.monotonic() < deadline, f"{what} did not show within {DELIVERY_SECONDS}s"
        page.wait_for_timeout(250)
        page.reload()


@pytest.fixture
def pair(web_network: LocalNetwork) -> tuple[str, str, str]:
    """A council sender with an API token and a police reader of their own."""
    n = next(_made)
    sender, reader = f"lists.sender.{n}", f"lists.reader.{n}"
    web_network.add_web_user(COUNCIL, sender, "Lists Sender", ("staff",), "E09000030")
    web_network.add_web_user(POLICE, reader, "Lists Reader", ("staff",), "MPS")
    return sender, reader, web_network.add_token(COUNCIL, sender)


@pytest.fixture
def plain_context(browser: Browser) -> Iterator[BrowserContext]:
    """A browser with JavaScript off: the filters and the recall are plain forms."""
    context = browser.new_context(java_script_enabled=False, accept_downloads=True)
    try:
        yield context
    finally:
        context.close()


def send(network: LocalNetwork, token: str, to: str, subject: str, marking: str) -> str:
    api = network.gateways[COUNCIL].config.api_url + "/api/v1/messages"
    body = {"to": [to], "subject": subject, "body": "[synthetic] lists", "marking": marking}
    request = urllib.request.Request(
        api,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 202
        return str(json.loads(answer.read())["id"])


def rows(page: Page) -> list[str]:
    return [t.strip() for t in page.locator("#inbox tbody tr").all_inner_texts()]


def three_messages(network: LocalNetwork, token: str, reader: str) -> list[str]:
    to = f"{reader}@MPS"
    return [
        send(network, token, to, "Alpha housing report", "OFFICIAL"),
        send(network, token, to, "Bravo safeguarding notice", "OFFICIAL-SENSITIVE"),
        send(network, token, to, "Charlie case update", "OFFICIAL"),
    ]


def test_search_filters_sort_and_the_unread_count(
    page: Page, people: People, web_network: LocalNetwork, pair: tuple[str, str, str]
) -> None:
    """Search, marking, organisation, unread and date filters, both sorts, and the count."""
    sender, reader, token = pair
    alpha, bravo, charlie = three_messages(web_network, token, reader)
    people.sign_in(page, POLICE, reader, "/inbox")
    reload_until(page, lambda: len(rows(page)) == 3, "three messages in the inbox")
    count = page.locator(".govuk-service-navigation a[href='/inbox'] .gcx-nav-count")
    assert count.text_content() == "3 unread", "three unread, said in words to a screen reader"
    people.check(page, "lists-inbox")

    page.fill("#q", "bravo")
    page.click("#apply-filter")
    assert "q=bravo" in page.url, "the search is in the address"
    assert page.locator(f"tr[data-message='{bravo}']").count() == 1
    assert len(rows(page)) == 1
    assert marking_banner(page) == "OFFICIAL-SENSITIVE"
    people.check(page, "lists-inbox-searched")

    page.goto(people.url(POLICE, "/inbox?marking=OFFICIAL"))
    assert {r.split()[0] for r in rows(page)} == {"OFFICIAL"}
    assert len(rows(page)) == 2

    page.goto(people.url(POLICE, "/inbox?organisation=DWP"))
    assert page.locator("#no-matches").count() == 1, "nothing from DWP"
    page.goto(people.url(POLICE, "/inbox?organisation=E09000030&sort=oldest"))
    oldest_first = [
        page.locator("#inbox tbody tr").nth(i).get_attribute("data-message") for i in range(3)
    ]
    page.goto(people.url(POLICE, "/inbox"))
    newest_first = [
        page.locator("#inbox tbody tr").nth(i).get_attribute("data-message") for i in range(3)
    ]
    # Deliveries may overtake each other, so the order is that of arrival, not of sending.
    assert set(newest_first) == {alpha, bravo, charlie}
    assert oldest_first == newest_first[::-1], "oldest first is newest first reversed"

    page.click(f"tr[data-message='{alpha}'] a")
    page.goto(people.url(POLICE, "/inbox?unread=yes"))
    assert page.locator(f"tr[data-message='{alpha}']").count() == 0
    assert len(rows(page)) == 2
    assert count.text_content() == "2 unread", "reading one lowers the count"

    today = time.gmtime()
    page.goto(
        people.url(
            POLICE,
            f"/inbox?since-day={today.tm_mday}&since-month={today.tm_mon}"
            f"&since-year={today.tm_year}",
        )
    )
    assert len(rows(page)) == 3, "sent today"
    answer = page.goto(people.url(POLICE, "/inbox?since-day=31&since-month=2&since-year=2026"))
    assert answer is not None and answer.status == 400
    assert "real date" in error_summary(page)
    assert page.locator("#since-error").count() == 1, "the error is beside the date"
    people.check(page, "lists-inbox-date-refused")

    council = page.context.new_page()
    council.context.clear_cookies()
    people.sign_in(council, COUNCIL, sender, "/sent?q=charlie")
    assert council.locator(f"tr[data-message='{charlie}']").count() == 1
    assert council.locator("#sent tbody tr").count() == 1
    people.check(council, "lists-sent-searched")

    # Sent has the inbox's filters and sort: marking, organisation, date, oldest first.
    ours = {alpha, bravo, charlie}
    sensitive = sent_ids_of(council, people, "/sent?marking=OFFICIAL-SENSITIVE")
    assert [m for m in sensitive if m in ours] == [bravo], "only the sensitive one"
    assert ours <= set(sent_ids_of(council, people, "/sent?organisation=MPS")), "to the police"
    assert sent_ids_of(council, people, "/sent?organisation=DWP&q=charlie") == []
    assert council.locator("#no-matches").count() == 1, "none of them went to DWP"
    since = f"since-day={today.tm_mday}&since-month={today.tm_mon}&since-year={today.tm_year}"
    assert sent_ids_of(council, people, f"/sent?q=case+update&{since}") == [charlie]
    newest = [m for m in sent_ids_of(council, people, "/sent") if m in ours]
    oldest = [m for m in sent_ids_of(council, people, "/sent?sort=oldest") if m in ours]
    assert oldest == newest[::-1], "oldest first is newest first reversed"


def sent_ids_of(page: Page, people: People, path: str) -> list[str]:
    page.goto(people.url(COUNCIL, path))
    found = page.locator("#sent tbody tr[data-message]")
    return [str(found.nth(i).get_attribute("data-message")) for i in range(found.count())]


def test_search_and_filters_work_without_javascript(
    plain_context: BrowserContext,
    people: People,
    web_network: LocalNetwork,
    pair: tuple[str, str, str],
) -> None:
    _, reader, token = pair
    _, bravo, _ = three_messages(web_network, token, reader)
    page = plain_context.new_page()
    people.sign_in(page, POLICE, reader, "/inbox")
    reload_until(page, lambda: len(rows(page)) == 3, "three messages in the inbox")
    page.click("#filter-details summary")
    page.select_option("#marking", "OFFICIAL-SENSITIVE")
    page.click("#apply-filter")
    assert [page.locator("#inbox tbody tr").first.get_attribute("data-message")] == [bravo]
    assert len(rows(page)) == 1
    page.click("#clear-filter")
    assert len(rows(page)) == 3


def test_lists_fit_a_phone(
    browser: Browser, people: People, web_network: LocalNetwork, pair: tuple[str, str, str]
) -> None:
    """At 375 pixels wide nothing scrolls sideways; the header and banner span the page."""
    _, reader, token = pair
    three_messages(web_network, token, reader)
    context = browser.new_context(viewport={"width": 375, "height": 800})
    try:
        page = context.new_page()
        people.sign_in(page, POLICE, reader, "/inbox")
        reload_until(page, lambda: len(rows(page)) == 3, "three messages in the inbox")
        for path in ("/inbox", "/sent", "/files"):
            page.goto(people.url(POLICE, path))
            width = page.evaluate("document.scrollingElement.scrollWidth")
            assert width <= 375, f"{path} scrolls sideways ({width}px)"
            for selector in (".govuk-template__header", ".gcx-marking--top"):
                box = page.locator(selector).bounding_box()
                assert box is not None and box["x"] == 0 and box["width"] == 375, selector
            people.check(page, f"lists-phone{path.replace('/', '-')}")
    finally:
        context.close()


def test_recall_asks_first_without_javascript(
    plain_context: BrowserContext,
    people: People,
    web_network: LocalNetwork,
    pair: tuple[str, str, str],
) -> None:
    sender, reader, token = pair
    envelope_id = send(web_network, token, f"{reader}@MPS", "Wrong person", "OFFICIAL")
    page = plain_context.new_page()
    people.sign_in(page, COUNCIL, sender, f"/messages/{envelope_id}")
    page.click("#recall-button")
    assert "Are you sure you want to recall this message?" in page.inner_text("h1")
    assert page.locator("#confirm-recall").count() == 1, "nothing recalled by one click"
    people.check_without_javascript(page, "lists-recall-confirm")
    page.click("#confirm-recall")
    assert "The message was recalled" in page.inner_text(".govuk-notification-banner")


def test_a_message_page_offers_its_evidence_file(
    page: Page, people: People, web_network: LocalNetwork, pair: tuple[str, str, str]
) -> None:
    sender, reader, token = pair
    envelope_id = send(web_network, token, f"{reader}@MPS", "Proof wanted", "OFFICIAL")
    people.sign_in(page, COUNCIL, sender, f"/messages/{envelope_id}")
    reload_until(
        page,
        lambda: page.get_attribute("[data-delivery-state]", "data-delivery-state") == "delivered",
        "delivery",
    )
    assert "Anyone can check it" in page.inner_text("main")
    people.check(page, "lists-message-evidence")
    with page.expect_download() as download:
        page.click("#evidence-download")
    downloaded = Path(download.value.path()).read_bytes()
    evidence = json.loads(downloaded)
    assert evidence["envelope"]["id"] == envelope_id, "the evidence is this message's"
    assert {r["organisation"] for r in evidence["receipts"]} == {"MPS"}, "with the receipt"
    assert download.value.suggested_filename == f"gcx-evidence-{envelope_id}.json"
    # Byte for byte the file the local API gives (its canonical form), as the CLI exports.
    api = web_network.gateways[COUNCIL].config.api_url + f"/api/v1/messages/{envelope_id}/evidence"
    request = urllib.request.Request(api, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request) as answer:
        assert answer.read() == downloaded


FILES = [
    ("claims-2026-11.csv", "text/csv", b"nino,amount\n" * 400),
    ("letter.txt", "text/plain", "Dear claimant, café\r\n".encode() + bytes(range(256))),
]


def test_received_files_show_their_note_download_as_one_zip_and_sit_in_the_inbox(
    page: Page, browser: Browser, people: People, web_network: LocalNetwork
) -> None:
    n = next(_made)
    sender, reader = f"files.sender.{n}", f"files.reader.{n}"
    web_network.add_web_user(COUNCIL, sender, "Files Sender", ("staff",), "E09000030")
    web_network.add_web_user(DWP, reader, "Files Reader", ("staff",), "DWP")
    note = "Claims for November.\nPlease check the totals by Friday."
    people.sign_in(page, COUNCIL, sender, "/files/send")
    page.check("input[name=to][value=DWP]")
    page.check("input[name=marking][value=OFFICIAL-SENSITIVE]")
    page.fill("#note", note)
    page.set_input_files(
        "#files", [FilePayload(name=name, mimeType=kind, buffer=data) for name, kind, data in FILES]
    )
    page.click("button:has-text('Send files')")
    page.wait_for_url(TRANSFER_PATH)
    match = TRANSFER_PATH.search(page.url)
    assert match, page.url
    transfer_id = match.group(1)
    reload_until(page, lambda: "Signed receipt" in page.inner_text("#recipients"), "the receipt")
    assert "Keep it as proof of delivery." in page.inner_text("main"), "what a receipt proves"
    with page.expect_download() as receipt:
        page.click("#receipt-downloads a")
    signed = json.loads(Path(receipt.value.path()).read_bytes())
    assert signed, "a signed receipt document"
    people.check(page, "lists-files-sent-receipt")

    context = browser.new_context(accept_downloads=True)
    try:
        dwp = context.new_page()
        people.sign_in(dwp, DWP, reader, "/inbox")
        row = f"tr[data-transfer='{transfer_id}']"
        reload_until(dwp, lambda: dwp.locator(row).count() == 1, "the batch in the inbox")
        assert "New files" in dwp.inner_text(row)
        assert "2 files" in dwp.inner_text(row)
        assert f"{sender} at London Borough of Tower Hamlets" in dwp.inner_text(row)
        people.check(dwp, "lists-inbox-with-files")
        dwp.goto(people.url(DWP, "/files?unread=yes"))
        assert dwp.locator(f"#received a[href='/files/{transfer_id}']").count() == 1
        dwp.click(f"#received a[href='/files/{transfer_id}']")
        assert dwp.inner_text("#note") == note
        files = dwp.inner_text("main")
        assert "claims-2026-11.csv" in files and "letter.txt" in files, "the files by name"
        assert " KB" in files, "sizes in words a person reads"
        assert f"{sender} at London Borough of Tower Hamlets" in dwp.inner_text("main")
        assert marking_banner(dwp) == "OFFICIAL-SENSITIVE"
        people.check(dwp, "lists-files-received")
        zipped = dwp.request.get(people.url(DWP, f"/files/{transfer_id}/all.zip"))
        assert zipped.status == 200
        assert zipped.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(zipped.body())) as archive:
            assert archive.testzip() is None
            assert {i.filename: archive.read(i) for i in archive.infolist()} == {
                name: data for name, _, data in FILES
            }, "every file, byte for byte"
        dwp.goto(people.url(DWP, "/inbox"))
        assert "Downloaded" in dwp.inner_text(row)
        dwp.goto(people.url(DWP, "/files?unread=yes"))
        assert dwp.locator(f"#received a[href='/files/{transfer_id}']").count() == 0

        # The local API gives the note back too, here to the reader's own token.
        token = web_network.add_token(DWP, reader)
        api = web_network.gateways[DWP].config.api_url + f"/api/v1/transfers/{transfer_id}"
        request = urllib.request.Request(api, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request) as answer:
            assert json.loads(answer.read())["note"] == note
    finally:
        context.close()
