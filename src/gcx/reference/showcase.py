"""The demo's running account of its steps: each one's title, outcome, detail and time.

``gcx demo`` (:mod:`gcx.demo`) and its service steps
(:mod:`gcx.reference.demo_steps`) both report through it, so it lives apart
from either.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import click


@dataclass
class Showcase:
    """The steps run so far; a failed step is recorded and shown, never raised, so the
    demo goes on to show every step."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    quiet: bool = False

    async def step(self, title: str, action: Callable[[], Awaitable[str]]) -> bool:
        started = time.perf_counter()
        try:
            detail, ok = await action(), True
        except Exception as exc:  # a showcase reports every failure as a failed step
            detail, ok = f"{type(exc).__name__}: {exc}", False
        seconds = round(time.perf_counter() - started, 3)
        self.steps.append({"step": title, "ok": ok, "detail": detail, "seconds": seconds})
        if not self.quiet:
            click.echo(f"{'PASS' if ok else 'FAIL'}  {title}\n      {detail}")
        return ok

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s["ok"] for s in self.steps)
