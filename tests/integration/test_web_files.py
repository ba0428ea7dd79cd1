"""The Files page in the browser: search by file name, sender or covering note, the oldest
first sort, and "new" per person until they download a batch, with who has.

Batches are sent on the council's "Send files" page to DWP and read by two
DWP colleagues with JavaScript off: the search, filters and sort are a plain
GET form. Delivery is asynchronous, so the reader reloads until a batch shows,
within a bound.
"""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page

from gcx.localnet import DEMO_GATEWAYS, LocalNetwork

from .conftest import NetworkFactory
from .test_web_words import words_a_program_reads
from .webutil import People

pytestmark = [pytest.mark.integration, pytest.mark.browser]

COUNCIL, DWP = "tower-hamlets", "dwp"
DELIVERY_SECONDS = 60.0
TRANSFER_PATH = re.compile(r"/files/([0-9a-f]{32})$")


@pytest.fixture(scope="module")
def web_network(network_factory: NetworkFactory) -> LocalNetwork:
    """The council and DWP: all a batch of files between them needs."""
    return network_factory(DEMO_GATEWAYS[:2], name="web", web=True)


@pytest.fixture
def plain_context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(java_script_enabled=False, accept_downloads=True)
    context.set_default_timeout(90_000)
    try:
        yield context
    finally:
        context.close()


def reload_until(page: Page, ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DELIVERY_SECONDS
    while not ready():
        assert time.monotonic() < deadline, f"{what} did not show within {DELIVERY_SECONDS}s"
        page.wait_for_timeout(250)
        page.reload()


def send_batch(page: Page, name: str, data: bytes, note: str) -> str:
    page.goto(page.url.split("/files")[0] + "/files/send")
    page.check("input[name=to][value=DWP]")
    page.check("input[name=marking][value=OFFICIAL]")
    page.fill("#note", note)
    page.set_input_files("#files", [FilePayload(name=name, mimeType="text/csv", buffer=data)])
    page.click("button:has-text('Send files')")
    page.wait_for_url(TRANSFER_PATH)
    match = TRANSFER_PATH.search(page.url)
    assert match, page.url
    return match.group(1)


def received(page: Page) -> list[str]:
    links = page.locator("#received tbody tr a")
    return [str(links.nth(i).get_attribute("href")).rsplit("/", 1)[1] for i in range(links.count())]


def status_of(page: Page, transfer_id: str) -> str:
    row = page.locator("#received tbody tr", has=page.locator(f"a[href='/files/{transfer_id}']"))
    return row.locator("td[data-label='Status']").inner_text().strip()


def test_search_sort_and_new_until_each_person_downloads(
    page: Page,
    browser: Browser,
    plain_context: BrowserContext,
    people: People,
    web_network: LocalNetwork,
) -> None:
    """File names, covering notes and the sender's organisation are searched; oldest first
    reverses the list; one colleague's download leaves the batch new to the other, and the
    batch's page names who downloaded it."""
    web_network.add_web_user(COUNCIL, "files.sender", "Files Sender", ("staff",), "E09000030")
    web_network.add_web_user(DWP, "files.first", "Fiona First", ("staff",), "DWP")
    web_network.add_web_user(DWP, "files.second", "Sam Second", ("staff",), "DWP")
    people.sign_in(page, COUNCIL, "files.sender", "/files/send")
    november = send_batch(page, "claims-november.csv", b"nino,amount\n", "Claims for November.")
    referral = send_batch(page, "referral-smith.csv", b"name\n", "Urgent: please call back.")

    first = plain_context.new_page()
    people.sign_in(first, DWP, "files.first", "/files")
    reload_until(first, lambda: len(received(first)) == 2, "both batches")
    assert received(first) == [referral, november], "newest first"
    assert status_of(first, november) == "New" and status_of(first, referral) == "New"
    assert words_a_program_reads(first.inner_text("body")) == []
    people.check_without_javascript(first, "files-list")

    first.fill("#q", "november")
    first.click("#apply-filter")
    assert "q=november" in first.url, "the search is in the address"
    assert received(first) == [november], "found by its covering note"
    people.check_without_javascript(first, "files-searched")
    first.goto(people.url(DWP, "/files?q=referral-smith"))
    assert received(first) == [referral], "found by its file name"
    first.goto(people.url(DWP, "/files?q=tower+hamlets"))
    assert received(first) == [referral, november], "found by the sender's organisation"
    first.goto(people.url(DWP, "/files?q=nothing+like+this"))
    assert received(first) == []
    first.goto(people.url(DWP, "/files?sort=oldest"))
    assert received(first) == [november, referral], "oldest first"
    # The filters the inbox has: marking, organisation and date, in the address too.
    first.goto(people.url(DWP, "/files?marking=OFFICIAL-SENSITIVE"))
    assert received(first) == [], "both were sent OFFICIAL"
    first.goto(people.url(DWP, "/files?marking=OFFICIAL&organisation=E09000030"))
    assert received(first) == [referral, november]
    first.goto(people.url(DWP, "/files?organisation=MPS"))
    assert received(first) == [], "nothing from the police"
    today = time.gmtime()
    since = f"since-day={today.tm_mday}&since-month={today.tm_mon}&since-year={today.tm_year}"
    first.goto(people.url(DWP, f"/files?{since}"))
    assert received(first) == [referral, november], "both received today"
    first.goto(people.url(DWP, f"/files?since-day=1&since-month=1&since-year={today.tm_year + 1}"))
    assert received(first) == [], "nothing received from next year on"

    first.goto(people.url(DWP, f"/files/{november}"))
    assert "Nobody in your organisation has downloaded these files yet." in first.inner_text("main")
    with first.expect_download() as download:
        first.click("a[href$='/files/0']")
    assert download.value.path().read_bytes() == b"nino,amount\n", "the whole file"
    first.goto(people.url(DWP, "/files"))
    assert status_of(first, november) == "Downloaded"
    assert status_of(first, referral) == "New"
    first.goto(people.url(DWP, "/files?unread=yes"))
    assert received(first) == [referral], "only what this person has not downloaded"
    first.goto(people.url(DWP, f"/files/{november}"))
    assert "Fiona First" in first.inner_text("#downloaders")
    assert words_a_program_reads(first.inner_text("body")) == [], "no codes on the batch's page"
    people.check_without_javascript(first, "files-downloaded-by")

    other = browser.new_context(java_script_enabled=False)
    second = other.new_page()
    try:
        people.sign_in(second, DWP, "files.second", "/files")
        assert status_of(second, november) == "New", "a colleague's download is not this one's"
        second.goto(people.url(DWP, "/files?unread=yes"))
        assert received(second) == [referral, november]
        # A download with the person's own API token is theirs as much as one made here.
        token = web_network.add_token(DWP, "files.second")
        api = web_network.gateways[DWP].config.api_url
        asked = urllib.request.Request(
            f"{api}/api/v1/transfers/{referral}/files/0",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(asked, timeout=60) as answer:
            assert answer.read() == b"name\n", "the whole file"
        second.goto(people.url(DWP, "/files"))
        assert status_of(second, referral) == "Downloaded", "downloaded with their own token"
        assert status_of(second, november) == "New"
    finally:
        other.close()
