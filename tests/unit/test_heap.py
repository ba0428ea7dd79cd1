"""Start-up objects exempted from the collector's later passes (gcx.heap)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from gcx.heap import freeze_startup_objects


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def thawed() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_garbage_is_collected_first_and_what_is_alive_is_frozen(thawed: None) -> None:
    kept = _Node()
    dropped = _Node()
    gone = weakref.ref(dropped)
    del dropped

    frozen = freeze_startup_objects()

    assert gone() is None  # the cycle dropped before was freed, not frozen
    # Frozen objects are still freed when unreferenced (another thread of the test
    # runner may free some meanwhile), so the count is only ever positive here.
    assert frozen > 0 and gc.get_freeze_count() > 0
    assert not any(o is kept for o in gc.get_objects())  # no later pass walks it
    # A cycle made afterwards is still collected as usual.
    later = weakref.ref(_Node())
    gc.collect()
    assert later() is None
