"""The service proxy's batch signer: calls that sign together share one signature."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from gcx import crypto
from gcx.gateway.services.common import BatchSigner

TYPE = "application/vnd.gcx.call-request+json"


def _keys() -> tuple[Any, crypto.SigningKey]:
    signing = crypto.SigningKey.generate()
    return SimpleNamespace(organisations={"DWP": SimpleNamespace(signing=signing)}), signing


async def test_documents_asked_for_together_share_one_signature() -> None:
    """Eight documents asked for in one turn are one batch, each verifying to its own payload."""
    keys, signing = _keys()
    signer = BatchSigner(keys)
    payloads = [b'{"n":%d}' % i for i in range(8)]
    documents = await asyncio.gather(*(signer.sign("DWP", TYPE, p) for p in payloads))
    assert (signer.signatures, signer.documents) == (1, 8)
    trusted = {crypto.key_id(signing.public): signing.public}
    roots = crypto.VerifiedRoots()
    for payload, document in zip(payloads, documents, strict=True):
        assert crypto.verify_signed(document, TYPE, trusted, roots=roots) == payload


async def test_a_lone_document_is_signed_without_company() -> None:
    """An idle gateway signs one document as a batch of one, at once."""
    keys, signing = _keys()
    signer = BatchSigner(keys)
    document = await signer.sign("DWP", TYPE, b"{}")
    assert (signer.signatures, signer.documents) == (1, 1)
    trusted = {crypto.key_id(signing.public): signing.public}
    assert crypto.verify_signed(document, TYPE, trusted) == b"{}"


async def test_an_organisation_not_hosted_is_refused() -> None:
    """Signing as an organisation this gateway does not host is a programming error."""
    keys, _ = _keys()
    with pytest.raises(KeyError):
        await BatchSigner(keys).sign("HMRC", TYPE, b"{}")
