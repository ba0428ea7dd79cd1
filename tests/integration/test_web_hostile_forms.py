"""Hostile posts to the web's streamed upload forms (/compose, /files/send), from a signed-in
browser's own cookies: malformed or urlencoded bodies are 400 on the GOV.UK pages with the
security headers, the CSRF token travels as the form's first field (never in the URL), and an
attachment named /abs is refused rather than renamed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import APIResponse, Browser, Page

from gcx.localnet import LocalNetwork

from .webutil import People

pytestmark = [pytest.mark.integration, pytest.mark.browser]

FORMS = ["/compose", "/files/send"]


@pytest.fixture(scope="module")
def signed_in(browser: Browser, web_network: LocalNetwork, people: People) -> Iterator[Page]:
    """One signed-in council officer, whose cookies the raw posts below carry."""
    context = browser.new_context()
    context.set_default_timeout(90_000)
    page = context.new_page()
    people.sign_in(page, "tower-hamlets", "benefits.officer", "/compose")
    try:
        yield page
    finally:
        context.close()


def _token(page: Page, people: People, form: str) -> str:
    page.goto(people.url("tower-hamlets", form))
    return str(
        page.locator(
            "form[enctype='multipart/form-data'] input[name=csrf_token]"
        ).first.input_value()
    )


def _post(
    page: Page, people: People, path: str, body: bytes, content_type: str, **headers: str
) -> APIResponse:
    return page.request.post(
        people.url("tower-hamlets", path),
        data=body,
        headers={"Content-Type": content_type, **headers},
        max_redirects=0,
        fail_on_status_code=False,
    )


def _fields(token: str, *rest: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, value in (("csrf_token", None, token.encode()), *rest):
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--x\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return out + b"--x--\r\n"


def assert_error_page(response: APIResponse, status: int, code: str) -> None:
    """A refusal in the Design System's page, with its code and the frame's security headers."""
    headers = response.headers
    assert (response.status, headers.get("x-gcx-error")) == (status, code), response.text()[:500]
    assert "govuk-" in response.text()
    assert "default-src 'self'" in headers.get("content-security-policy", "")
    assert headers.get("x-frame-options") == "DENY"
    assert headers.get("x-content-type-options") == "nosniff"


@pytest.mark.parametrize("form", FORMS)
def test_malformed_multipart_is_a_400_page(signed_in: Page, people: People, form: str) -> None:
    """No boundary, garbage after one, or a control character in a part header: 400 pages."""
    token = _token(signed_in, people, form)
    cases = [
        ("multipart/form-data", _fields(token)),
        ("multipart/form-data; boundary=x", _fields(token)[:-7] + b"--xjunk\r\n"),
        (
            "multipart/form-data; boundary=x",
            _fields(token).replace(b"--x--", b'--x\r\nContent-Disposition: name="a\x01"'),
        ),
    ]
    for content_type, body in cases:
        headers = {"X-CSRF-Token": token} if "boundary" not in content_type else {}
        response = _post(signed_in, people, form, body, content_type, **headers)
        assert_error_page(response, 400, "multipart-invalid")


@pytest.mark.parametrize("form", FORMS)
def test_urlencoded_post_is_a_400_page(signed_in: Page, people: People, form: str) -> None:
    """A urlencoded post with the token in its body is 400 multipart-invalid, not a 500."""
    token = _token(signed_in, people, form)
    response = _post(
        signed_in,
        people,
        form,
        f"csrf_token={token}&subject=hi".encode(),
        "application/x-www-form-urlencoded",
    )
    assert_error_page(response, 400, "multipart-invalid")


@pytest.mark.parametrize("form", FORMS)
def test_token_only_in_the_url_is_refused(signed_in: Page, people: People, form: str) -> None:
    """The token in the query string no longer counts: a body without it is 403 csrf-refused."""
    token = _token(signed_in, people, form)
    response = _post(
        signed_in,
        people,
        f"{form}?csrf_token={token}",
        b'--x\r\nContent-Disposition: form-data; name="to"\r\n\r\nDWP\r\n--x--\r\n',
        "multipart/form-data; boundary=x",
    )
    assert_error_page(response, 403, "csrf-refused")


def test_token_as_the_first_field_is_accepted(signed_in: Page, people: People) -> None:
    """The token as the first multipart field is enough: the message is sent (a redirect)."""
    token = _token(signed_in, people, "/compose")
    body = _fields(
        token,
        ("to_org", None, b"DWP"),
        ("subject", None, b"Token in the body"),
        ("marking", None, b"OFFICIAL"),
        ("body", None, b"hello"),
    )
    response = _post(signed_in, people, "/compose", body, "multipart/form-data; boundary=x")
    assert response.status in (302, 303), response.text()[:500]


def test_compose_page_puts_the_token_in_the_body(signed_in: Page, people: People) -> None:
    """The upload forms' action URLs carry no token; their first field is csrf_token."""
    for form in FORMS:
        signed_in.goto(people.url("tower-hamlets", form))
        upload = signed_in.locator("form[enctype='multipart/form-data']").first
        assert "csrf_token" not in str(upload.get_attribute("action"))
        assert upload.locator("input").first.get_attribute("name") == "csrf_token"


def test_attachment_named_with_a_path_is_refused(signed_in: Page, people: People) -> None:
    """An attachment named /abs is refused with attachment-refused, not sent as abs."""
    token = _token(signed_in, people, "/compose")
    body = _fields(
        token,
        ("to_org", None, b"DWP"),
        ("subject", None, b"Paths"),
        ("marking", None, b"OFFICIAL"),
        ("body", None, b"hello"),
        ("attachments", "/abs", b"data"),
    )
    response = _post(signed_in, people, "/compose", body, "multipart/form-data; boundary=x")
    assert response.status == 400, response.text()[:500]
    assert "attachment-refused" in response.headers.get("x-gcx-error", "")
