"""The reference backends answer malformed input with their documented 400, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gcx.reference import build_app, sample_ninos


@pytest.mark.parametrize("count", ["abc", "-1", "1.5", "٣", "9" * 40])
async def test_samples_refuses_a_count_that_is_not_a_whole_number(count: str) -> None:
    """GET /samples?count= with anything but digits is a 400 with an error, not a 500."""
    async with TestClient(TestServer(build_app("dwp-cis"))) as client:
        response = await client.get("/samples", params={"count": count})
        body: dict[str, Any] = await response.json()
    assert response.status == 400
    assert body["data_label"] == "SYNTHETIC" and "error" in body


async def test_samples_gives_the_count_asked_for() -> None:
    """GET /samples?count=3 answers three synthetic numbers."""
    async with TestClient(TestServer(build_app("dwp-cis"))) as client:
        response = await client.get("/samples", params={"count": "3"})
        body: dict[str, Any] = await response.json()
    assert response.status == 200
    assert body["ninos"] == sample_ninos(3)
