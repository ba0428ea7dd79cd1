"""The Code of Connection in the browser: draft, sign off, assess, approve.

The demo organisations are admitted when the network starts, so the journey
uses a new member, added by the operator: its security officer drafts every
control and uploads evidence, a different person signs it off, the lead
assessor records a result for every control and completes the assessment,
and the operator approves it, which issues the certificate of compliance.
The refusals a person meets on the way (an empty answer, evidence of a
refused type, signing off one's own statement, submitting too early,
completing too early) are shown in the error summary.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from gcx.compliance.catalogue import builtin_catalogue
from gcx.localnet import LocalNetwork

from .conftest import run_async
from .webutil import SCREENSHOTS, People, error_summary, marking_banner

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ORG = "NWFIRE"
OFFICER = "iso.nwfire"  # security officer who also holds sign-off: separation must stop them
SIGNER = "siro.nwfire"


@pytest.fixture(scope="module")
def new_member(web_network: LocalNetwork) -> str:
    """A member organisation not yet through the Code of Connection, with its officers."""

    async def add() -> None:
        async with web_network.operator() as operator:
            await operator.add_organisation(ORG, "North West Fire and Rescue", "fire-and-rescue")

    run_async(add())
    web_network.add_web_user(
        "central", OFFICER, "Isla Officer", ("security-officer", "sign-off"), ORG
    )
    web_network.add_web_user("central", SIGNER, "Sam Senior", ("sign-off",), ORG)
    return ORG


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[], Page]]:
    """Pages in contexts of their own, one per person, so each keeps their session."""
    contexts: list[BrowserContext] = []

    def make() -> Page:
        contexts.append(browser.new_context())
        return contexts[-1].new_page()

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


def _statement_id(page: Page) -> str:
    match = re.search(r"/statements/([^/?#]+)$", page.url)
    assert match, f"not on a statement's page: {page.url}"
    return match.group(1)


def _resave(page: Page, sid: str, control_id: str, answer: str) -> None:
    """Open one control from the task list and save a new answer to it."""
    page.click(f"a.govuk-task-list__link[href$='/controls/{control_id}']")
    page.fill("#answer", answer)
    page.click("button:has-text('Save and continue')")
    assert page.url.endswith(f"/statements/{sid}"), "with nothing left to answer, back to the list"


def test_a_new_member_is_taken_through_the_code_of_connection(
    page: Page, new_page: Callable[[], Page], people: People, new_member: str
) -> None:
    catalogue = builtin_catalogue()
    signer, assessor, operator = new_page(), new_page(), new_page()

    # The security officer starts a statement.
    people.sign_in(page, "central", OFFICER, "/statements")
    assert "has no statements yet" in page.inner_text("main")
    assert marking_banner(page) == "OFFICIAL"
    people.check(page, "compliance-list-officer")
    page.click("button:has-text('Start a new statement')")
    sid = _statement_id(page)
    assert "Statement started." in page.inner_text("main")
    assert page.locator(".govuk-task-list__item").count() == len(catalogue.controls)
    people.check(page, "compliance-task-list")

    # Too early: nothing is answered yet.
    page.click("button:has-text('Submit for sign-off')")
    assert "not ready for sign-off: 70 control(s) unanswered" in error_summary(page)

    # The first control's page: guidance beside the form; an empty answer is refused.
    first = catalogue.controls[0]
    page.click(f"a:has-text('{first.id} {first.title}')")
    assert page.url.endswith(f"/statements/{sid}/controls/{first.id}")
    page.click("summary:has-text('See a model answer')")
    assert first.model_answer in page.inner_text("main")
    people.check(page, "compliance-control")
    page.click("button:has-text('Save and continue')")
    assert "An answer must be 1 to 20,000 characters." in error_summary(page)
    assert page.locator("#answer-error").count() == 1
    people.check(page, "compliance-control-refused")

    # Evidence: a program is refused by its type; a text file is accepted.
    page.set_input_files(
        "#evidence",
        {"name": "tool.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ\x90\x00"},
    )
    page.click("button:has-text('Upload evidence')")
    assert "is not accepted" in error_summary(page)
    assert page.locator("#evidence-error").count() == 1
    too_large = b"x" * (10 * 1024 * 1024 + 1)  # one byte past the network's default limit
    page.set_input_files(
        "#evidence", {"name": "big.txt", "mimeType": "text/plain", "buffer": too_large}
    )
    page.click("button:has-text('Upload evidence')")
    assert "the limit is 10,485,760 bytes" in error_summary(page)
    page.set_input_files(
        "#evidence",
        {
            "name": "siro-appointment.txt",
            "mimeType": "text/plain",
            "buffer": b"The Chief Fire Officer is appointed Senior Information Risk Owner.\n",
        },
    )
    page.click("button:has-text('Upload evidence')")
    assert "siro-appointment.txt uploaded as evidence for GOV-01" in page.inner_text("main")
    link = page.locator("a:has-text('siro-appointment.txt')")
    download = page.request.get(people.url("central", str(link.get_attribute("href"))))
    assert download.ok and download.body().startswith(b"The Chief Fire Officer")
    assert "attachment" in download.headers["content-disposition"]

    # Every control in turn: saving moves on to the next one still to answer.
    for control in catalogue.controls:
        assert page.url.endswith(f"/controls/{control.id}"), page.url
        if control.choices is not None:
            page.check("#choice")  # the first choice, which each catalogue entry makes "met"
        page.fill("#answer", f"North West Fire meets {control.id}: see our policy pack.")
        page.click("button:has-text('Save and continue')")
    assert page.url.endswith(f"/statements/{sid}")
    assert "Every control is answered" in page.inner_text("main")
    page.click("button:has-text('Submit for sign-off')")
    assert "Sent for sign-off" in page.inner_text("main")
    assert "Awaiting sign-off" in page.inner_text("main")

    # The officer also holds the sign-off role, but may not sign off their own work.
    page.goto(people.url("central", f"/statements/{sid}/answers"))
    page.click("button:has-text('Sign off and submit')")
    summary = error_summary(page)
    assert "iso.nwfire took part in an earlier step of this statement" in summary
    assert "may not sign off" in summary

    # The senior officer, a different person, reads it; declining needs a reason.
    people.sign_in(signer, "central", SIGNER, f"/statements/{sid}")
    signer.click("a:has-text('Review the answers and sign off')")
    assert "siro-appointment.txt" in signer.inner_text("main")
    people.check(signer, "compliance-sign-off")
    signer.click("button:has-text('Decline and send back')")
    assert "A written reason is required" in error_summary(signer)
    signer.fill("#decline-reason", "Name the Chief Fire Officer in GOV-01.")
    signer.click("button:has-text('Decline and send back')")
    assert "Sign-off declined" in signer.inner_text("main")

    # Back with the officer as a draft, with the reason; they send it again.
    page.goto(people.url("central", f"/statements/{sid}"))
    assert "Name the Chief Fire Officer in GOV-01." in page.inner_text("main")
    _resave(page, sid, first.id, "Our SIRO is the Chief Fire Officer, named in the letter.")
    page.click("button:has-text('Submit for sign-off')")
    assert "Sent for sign-off" in page.inner_text("main")

    # This time the senior officer signs it off.
    signer.goto(people.url("central", f"/statements/{sid}/answers"))
    signer.click("button:has-text('Sign off and submit')")
    assert "Signed off" in signer.inner_text("main")
    assert "Submitted for assessment" in signer.inner_text("main")

    # The lead assessor takes it and sends it back once with a change to make.
    people.sign_in(assessor, "central", "lead.assessor", f"/statements/{sid}")
    assessor.click("button:has-text('Start the assessment')")
    assessor.click("a:has-text('Back to the statement')")
    assessor.select_option("#change-control", "GOV-02")
    assessor.fill("#change-request", "Give the date the policy was last approved.")
    assessor.click("button:has-text('Send back for changes')")
    assert "Sent back to the organisation" in assessor.inner_text("main")
    page.goto(people.url("central", f"/statements/{sid}"))
    assert "Give the date the policy was last approved." in page.inner_text("main")
    assert (
        "Change requested" in page.locator(".govuk-task-list__item", has_text="GOV-02").inner_text()
    )
    _resave(page, sid, "GOV-02", "Policy v4.2, approved by the Fire Authority on 3 March.")
    page.click("button:has-text('Submit for sign-off')")
    signer.goto(people.url("central", f"/statements/{sid}/answers"))
    signer.click("button:has-text('Sign off and submit')")
    assert "Submitted for assessment" in signer.inner_text("main")

    # The lead assessor sees it waiting again, starts, and records a result per control.
    assessor.goto(people.url("central", "/statements"))
    waiting = assessor.locator("table", has_text="Submitted, under assessment or assessed")
    # Named by organisation and date, never by its identifier.
    assert waiting.locator(f"a[href='/statements/{sid}']").count() == 1
    link_text = waiting.locator(f"a[href='/statements/{sid}']").inner_text()
    assert "North West Fire and Rescue statement started" in link_text and sid not in link_text
    people.check(assessor, "compliance-list-assessor")
    assessor.click(f"a[href='/statements/{sid}']")
    assessor.click("button:has-text('Start the assessment')")
    assert assessor.url.endswith(f"/assessment/{catalogue.areas[0].id}")
    assert first.model_answer in assessor.inner_text("main")
    people.check(assessor, "compliance-assessment")
    for number, area in enumerate(catalogue.areas):
        assert assessor.url.endswith(f"/assessment/{area.id}"), assessor.url
        for control in (c for c in catalogue.controls if c.area == area.id):
            assessor.check(f"#result-{control.id}")  # the first result: compliant
            assessor.fill(f"#reason-{control.id}", "Matches the model answer.")
        if number == 0:
            # A result without a note is refused, beside the control it is about.
            assessor.fill(f"#reason-{first.id}", "")
            assessor.click("button:has-text('Save and go to the next area')")
            assert "A written reason is required" in error_summary(assessor)
            assert assessor.locator(f"#reason-{first.id}-error").count() == 1
            assessor.fill(f"#reason-{first.id}", "Appointment letter seen.")
        if number + 1 < len(catalogue.areas):
            assessor.click("button:has-text('Save and go to the next area')")
        else:
            assessor.click("button:has-text('Save and return to the statement')")
    assert assessor.url.endswith(f"/statements/{sid}")
    assert f"results for {len(catalogue.controls)} of {len(catalogue.controls)}" in (
        assessor.inner_text("main")
    )
    assessor.click("button:has-text('Complete the assessment')")
    assert "Assessment complete" in assessor.inner_text("main")
    assert "meets the Code of Connection" in assessor.inner_text("main")

    # The operator approves it, which issues the certificate of compliance.
    people.sign_in(operator, "central", "network.operator", f"/statements/{sid}")
    operator.click("button:has-text('Approve and issue the certificate')")
    assert "A written reason is required" in error_summary(operator)
    operator.fill("#approve-reason", "Assessed as meeting the Code of Connection.")
    operator.click("button:has-text('Approve and issue the certificate')")
    assert "Certificate of compliance issued" in operator.inner_text("main")
    people.check(operator, "compliance-approved")

    # The officer sees the statement approved.
    page.goto(people.url("central", "/statements"))
    row = page.locator("tr", has=page.locator(f"a[href='/statements/{sid}']"))
    assert "Approved" in row.inner_text()

    # Each sees their own part in "What I did", in words.
    page.goto(people.url("central", "/activity"))
    mine = page.inner_text("main")
    assert "Answered a control" in mine and "Asked for sign-off" in mine
    assert "Approved a statement" not in mine, "the operator's decision is not the officer's"
    people.check(page, "central-activity")
    operator.goto(people.url("central", "/activity"))
    assert "Approved a statement" in operator.inner_text("main")


# -- the second round (issue 17): structured questions, read-only look, sign-off home,
# the verdict before completing, counts as links, printing, renewals ------------------

FRESH = "LANFIRE"


@pytest.fixture(scope="module")
def drafted_by_api(web_network: LocalNetwork) -> dict[str, str]:
    """A fresh member's statement, every control answered through the API but one
    structured question, whose text was saved without its choice."""
    catalogue = builtin_catalogue()
    unchosen = next(c for c in catalogue.controls if c.choices)

    async def draft() -> str:
        async with web_network.operator() as operator:
            await operator.add_organisation(FRESH, "Lancashire Fire and Rescue", "fire-and-rescue")
            token = await operator.add_compliance_account(
                "iso.lanfire", ["security-officer"], FRESH
            )
        async with web_network.client_for(token) as officer:
            statement = await officer.compliance("POST", "/statements", {"organisation": FRESH})
            for control in catalogue.controls:
                body = {"answer": f"Lancashire Fire meets {control.id}."}
                if control.choices and control.id != unchosen.id:
                    body["choice"] = control.choices.options[0].value
                await officer.compliance(
                    "PUT", f"/statements/{statement['id']}/answers/{control.id}", body
                )
        return str(statement["id"])

    sid = run_async(draft())
    web_network.add_web_user("central", "iso.lanfire", "Lee Officer", ("security-officer",), FRESH)
    web_network.add_web_user("central", "siro.lanfire", "Lou Senior", ("sign-off",), FRESH)
    return {"sid": sid, "unchosen": unchosen.id, "title": unchosen.title}


def _unchosen_blocks_sign_off_then_pages_are_read_only(
    browser: Browser, people: People, drafted_by_api: dict[str, str]
) -> None:
    """With JavaScript off: the refusal lists the control; once sent, nothing looks editable."""
    sid, unchosen = drafted_by_api["sid"], drafted_by_api["unchosen"]
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        people.sign_in(page, "central", "iso.lanfire", f"/statements/{sid}")
        item = page.locator(".govuk-task-list__item", has_text=unchosen)
        assert "Choose an answer" in item.inner_text()
        assert "69 of 70 controls" in page.inner_text("main")
        page.click("button:has-text('Submit for sign-off')")
        summary = error_summary(page)
        assert f"{unchosen} {drafted_by_api['title']}: choose an answer" in summary
        people.check_without_javascript(
            page, "coco-unchosen-refused", people.url("central", f"/statements/{sid}")
        )
        page.click(f".govuk-error-summary a:has-text('{unchosen}')")
        assert page.url.endswith(f"/statements/{sid}/controls/{unchosen}")
        assert page.locator("#unchosen").count() == 1
        people.check_without_javascript(page, "coco-unchosen-control")
        page.check("#choice")
        page.click("button:has-text('Save and continue')")
        page.goto(people.url("central", f"/statements/{sid}"))
        page.click("button:has-text('Submit for sign-off')")
        assert "Sent for sign-off" in page.inner_text("main")

        # Sent for sign-off: a control's page shows the answer, with no form to change it.
        page.goto(people.url("central", f"/statements/{sid}/controls/{unchosen}"))
        assert page.locator("#read-only").count() == 1
        assert page.locator("#answer-read-only").count() == 1
        assert page.locator("textarea, input[type=file], button:has-text('Save')").count() == 0
        people.check_without_javascript(page, "coco-read-only-control")
    finally:
        context.close()


def _sign_off_officer_sees_what_waits_and_prints_it(
    browser: Browser, people: People, drafted_by_api: dict[str, str]
) -> None:
    sid = drafted_by_api["sid"]
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        people.sign_in(page, "central", "siro.lanfire")
        assert page.url.endswith("/statements"), "the sign-off officer's home"
        waiting = page.locator("#to-sign")
        assert "Lancashire Fire and Rescue statement started" in waiting.inner_text()
        people.check_without_javascript(page, "coco-sign-off-home")
        waiting.locator("a").first.click()
        assert page.url.endswith(f"/statements/{sid}/answers")
        page.emulate_media(media="print")
        assert not page.locator(".govuk-service-navigation").is_visible()
        assert not page.locator("button:has-text('Sign off and submit')").is_visible()
        assert page.locator(".gcx-marking--top").is_visible(), "the marking is printed"
        page.screenshot(path=str(SCREENSHOTS / f"{people.label}-coco-print.png"), full_page=True)
        page.pdf(path=str(SCREENSHOTS / f"{people.label}-coco-print.pdf"))
        page.emulate_media(media="screen")
        page.click("button:has-text('Sign off and submit')")
        assert "Submitted for assessment" in page.inner_text("main")
    finally:
        context.close()


def _assessor_sees_the_verdict_before_completing(
    page: Page, people: People, drafted_by_api: dict[str, str]
) -> None:
    sid = drafted_by_api["sid"]
    catalogue = builtin_catalogue()
    people.sign_in(page, "central", "lead.assessor", f"/statements/{sid}")
    page.click("button:has-text('Start the assessment')")
    first_area = catalogue.areas[0].id
    must = next(c for c in catalogue.controls if c.area == first_area and c.level.value == "MUST")
    for control in (c for c in catalogue.controls if c.area == first_area):
        page.check(f"#result-{control.id}")
        page.fill(f"#reason-{control.id}", "Seen.")
    page.check(f"#result-{must.id}-3")  # the third result: not met
    page.fill(f"#reason-{must.id}", "No SIRO is appointed.")
    page.click("button:has-text('Save and go to the next area')")
    page.goto(people.url("central", f"/statements/{sid}"))
    preview = page.locator("#verdict-preview")
    assert "no result yet" in preview.inner_text()
    assert page.inner_text("#verdict-preview-outcome") == "Does not meet the Code of Connection"
    deciding = page.inner_text("#verdict-preview-controls")
    assert must.id in deciding and "a MUST control is not met" in deciding
    people.check(page, "coco-verdict-preview")


def _operators_counts_link_to_what_they_count(
    page: Page, people: People, drafted_by_api: dict[str, str]
) -> None:
    people.sign_in(page, "central", "network.operator", "/network")
    row = page.locator(".govuk-summary-list__row", has_text="Statements awaiting assessment")
    row.locator("a").click()
    assert "/statements" in page.url
    assert page.locator(f"#waiting a[href='/statements/{drafted_by_api['sid']}']").count() == 1
    people.check(page, "coco-counts-link")


def test_a_statement_from_an_unchosen_question_to_the_operators_counts(
    browser: Browser, page: Page, people: People, drafted_by_api: dict[str, str]
) -> None:
    """One statement's steps in order, in one test (each needs the one before, and
    tests of a module may run in different processes, each with its own network)."""
    _unchosen_blocks_sign_off_then_pages_are_read_only(browser, people, drafted_by_api)
    _sign_off_officer_sees_what_waits_and_prints_it(browser, people, drafted_by_api)
    _assessor_sees_the_verdict_before_completing(page, people, drafted_by_api)
    operator = browser.new_context()
    try:
        _operators_counts_link_to_what_they_count(operator.new_page(), people, drafted_by_api)
    finally:
        operator.close()


def test_a_renewal_confirms_unchanged_answers_at_once_and_shows_changes(
    browser: Browser, people: People, web_network: LocalNetwork
) -> None:
    """With JavaScript off: an upload keeps the answer typed; the rest confirmed in one step."""
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        people.sign_in(page, "central", "iso.mps", "/statements")
        page.click("button:has-text('Start a new statement')")
        sid = _statement_id(page)
        total = len(builtin_catalogue().controls)
        assert page.locator("#reconfirm").inner_text() == f"Confirm all {total} unchanged answers"
        people.check_without_javascript(page, "coco-renewal")

        page.goto(people.url("central", f"/statements/{sid}/controls/GOV-01"))
        page.fill("#answer", "Our SIRO changed in May: the Deputy Commissioner.")
        page.set_input_files(
            "#evidence",
            {"name": "siro-letter.txt", "mimeType": "text/plain", "buffer": b"Appointment.\n"},
        )
        page.click("button:has-text('Upload evidence')")
        main = page.inner_text("main")
        assert "siro-letter.txt uploaded as evidence for GOV-01. Your answer was saved too." in main
        assert page.input_value("#answer") == "Our SIRO changed in May: the Deputy Commissioner."

        page.goto(people.url("central", f"/statements/{sid}"))
        page.click("#reconfirm")
        assert f"{total - 1} answers from last year re-confirmed" in page.inner_text("main")
        page.click("button:has-text('Submit for sign-off')")
        assert "Sent for sign-off" in page.inner_text("main")
    finally:
        context.close()
    signer = browser.new_context()
    try:
        page = signer.new_page()
        people.sign_in(page, "central", "siro.mps", f"/statements/{sid}/answers")
        changed = page.locator("[data-changed=true]")
        assert changed.count() == 1 and "GOV-01" in changed.inner_text()
        assert "Changed since last year" in changed.inner_text()
        assert "1 answer changed since then" in page.inner_text("#changed-count")
        people.check(page, "coco-renewal-changes")
    finally:
        signer.close()
