"""Properties of the multipart readers of the message API and the web forms.

Each reader is given a request whose body and Content-Type are a valid form
with bytes changed, or arbitrary: it must read the form or refuse it with a
gcx error (a 400 with a stable code), never fail with aiohttp's own
``ValueError``, ``AssertionError`` or ``RuntimeError`` (which became 500s).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from typing import Any
from unittest import mock

import pytest
from aiohttp import streams, web
from aiohttp.multipart import BadContentDispositionHeader, BadContentDispositionParam
from aiohttp.test_utils import make_mocked_request
from hypothesis import given
from hypothesis import strategies as st
from tests.unit.fuzz._strategies import byte_mutants

from gcx.errors import GcxError
from gcx.gateway.messages.api import _compose_from_multipart
from gcx.web.central.statements_drafting import _read_upload
from gcx.web.gateway.mail_form import read_compose

BOUNDARY = "gcxBoundary7MA4YWxk"
_FORM = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="to"\r\n\r\n'
    "safeguarding@MPS\r\n"
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="subject"\r\n\r\n'
    "Referral\r\n"
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="body"\r\n\r\n'
    "Please see the attached.\r\n"
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="{file}"; filename="referral.txt"\r\n'
    "Content-Type: text/plain\r\n\r\n"
    "Details of the referral.\r\n"
    f"--{BOUNDARY}--\r\n"
)
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"

_content_types = st.one_of(
    st.just(CONTENT_TYPE),
    st.sampled_from(
        [
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=other",
            f"multipart/mixed; boundary={BOUNDARY}",
            f'multipart/form-data; boundary="{BOUNDARY}"; charset=utf-8',
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=" + "x" * 200,
        ]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
)


def _request(body: bytes, content_type: str) -> web.Request:
    protocol = mock.Mock(_reading_paused=False)
    payload = streams.StreamReader(protocol, limit=2**16, loop=asyncio.get_running_loop())
    payload.feed_data(body)
    payload.feed_eof()
    return make_mocked_request(
        "POST", "/form", headers={"Content-Type": content_type}, payload=payload
    )


async def _compose_form(request: web.Request) -> Any:
    return await read_compose(request)


async def _upload(request: web.Request) -> Any:
    return await _read_upload(request, 1024, {})


# Each reader, and the name its form gives the file field.
READERS: dict[str, tuple[Callable[[web.Request], Awaitable[Any]], str]] = {
    "api messages": (_compose_from_multipart, "attachment"),
    "web compose": (_compose_form, "attachment"),
    "web evidence upload": (_upload, "evidence"),
}


def _form(name: str) -> bytes:
    return _FORM.replace("{file}", READERS[name][1]).encode()


def _read(name: str, body: bytes, content_type: str) -> Any:
    async def run() -> Any:
        try:
            return await READERS[name][0](_request(body, content_type))
        except GcxError:
            return None

    with warnings.catch_warnings():
        # aiohttp warns, and carries on, on a Content-Disposition it cannot
        # parse; the inputs here are hostile on purpose, so that warning is
        # expected, and what the reader then does is what is under test.
        warnings.simplefilter("ignore", BadContentDispositionHeader)
        warnings.simplefilter("ignore", BadContentDispositionParam)
        return asyncio.run(run())


@pytest.mark.parametrize("name", sorted(READERS))
def test_valid_form_is_read(name: str) -> None:
    """The form as a browser sends it is read."""
    assert _read(name, _form(name), CONTENT_TYPE) is not None


@pytest.mark.parametrize("name", sorted(READERS))
@given(data=st.data(), content_type=_content_types)
def test_damaged_form_is_read_or_refused(name: str, data: st.DataObject, content_type: str) -> None:
    """A damaged or foreign body is read or refused with a gcx error, never another exception."""
    _read(name, data.draw(byte_mutants(_form(name)) | st.binary(max_size=200)), content_type)
