"""Fixtures for the integration suite: whole networks of real processes on loopback.

A module shares one started network per database backend where its tests only
read or add refusals; tests that change the network's state (revocation,
tampering, stopping a process) start their own with ``fresh_network``.

Databases are handed to the processes empty, so a network's start also
exercises several processes migrating one fresh database at once
(``test_startup.py`` pins that, and that the starter closes its log files).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from playwright.sync_api import Browser, Page

from gcx.localnet import DEMO_GATEWAYS, GatewaySpec, LocalNetwork

from .netutil import POLL_SECONDS, POSTGRES_ADMIN_URL, DatabaseUrls, start_network
from .webutil import People, launch

T = TypeVar("T")
NetworkFactory = Callable[..., LocalNetwork]


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a loop of its own, in a worker thread.

    Synchronous fixtures use this so they never touch the event loop that
    pytest-asyncio keeps for the tests.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(autouse=True, scope="session")
def _no_env_passphrase() -> Iterator[None]:
    """Homes made here keep their passphrase in a file, as the demo's do."""
    saved = os.environ.pop("GCX_KEY_PASSPHRASE", None)
    yield
    if saved is not None:
        os.environ["GCX_KEY_PASSPHRASE"] = saved


_postgres: dict[str, str | None] = {}


def _require_postgres() -> None:
    if "reason" not in _postgres:
        try:
            with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _postgres["reason"] = None
        except psycopg.Error as exc:
            _postgres["reason"] = f"PostgreSQL at {POSTGRES_ADMIN_URL} unavailable: {exc}"
    reason = _postgres["reason"]
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true requires PostgreSQL)")
    pytest.skip(f"NOTICE: PostgreSQL variant skipped: {reason}")


# Browser modules drive pages through Chromium, which costs far more than the
# database under them, so each runs on one database: the ones whose pages read
# the most (lists, filters, files, administration) on PostgreSQL, the rest on
# SQLite. What the pages read is covered on both databases by the contract tests
# of the use cases behind them; every other integration module runs on both.
POSTGRES_BROWSER_MODULES = frozenset(
    {
        "test_web_admin",
        "test_web_alerts",
        "test_web_files",
        "test_web_lists",
        "test_web_staff_tools",
    }
)


def _browser_backend(item: pytest.Item) -> str | None:
    """The one database a browser test runs on, or None if it runs on both."""
    if item.get_closest_marker("browser") is None:
        return None
    return (
        "postgresql"
        if item.module.__name__.rsplit(".", 1)[-1] in POSTGRES_BROWSER_MODULES
        else "sqlite"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        backend = _browser_backend(item)
        params = getattr(item, "callspec", None)
        chosen = None if params is None else params.params.get("network_backend")
        if backend is not None and chosen is not None and chosen != backend:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def network_backend(request: pytest.FixtureRequest) -> str:
    """Parametrises a module's shared network over both databases."""
    if request.param == "postgresql":
        _require_postgres()
    return str(request.param)


@pytest.fixture(scope="module")
def module_database_urls(
    network_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseUrls]:
    urls = DatabaseUrls(network_backend, tmp_path_factory.mktemp("databases"))
    try:
        yield urls
    finally:
        urls.drop_all()


class _Networks:
    """Starts networks and stops every one of them at teardown, whatever happened."""

    def __init__(self, root: Callable[[str], Path], urls: Callable[[str], str]) -> None:
        self._root = root
        self._urls = urls
        self.started: list[LocalNetwork] = []

    def __call__(
        self,
        specs: tuple[GatewaySpec, ...] = DEMO_GATEWAYS[:2],
        name: str = "net",
        **options: Any,
    ) -> LocalNetwork:
        network = LocalNetwork(
            self._root(name), database_url=self._urls, poll_seconds=POLL_SECONDS, **options
        )
        self.started.append(network)
        run_async(start_network(network, specs))
        return network

    def stop_all(self) -> None:
        for network in self.started:
            network.stop()


@pytest.fixture(scope="module")
def network_factory(
    module_database_urls: DatabaseUrls, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NetworkFactory]:
    """Starts networks that live as long as the module (on the module's backend)."""
    networks = _Networks(tmp_path_factory.mktemp, module_database_urls)
    try:
        yield networks
    finally:
        networks.stop_all()


@pytest.fixture
def fresh_network(
    database_url_factory: Callable[[str], str], tmp_path: Path
) -> Iterator[NetworkFactory]:
    """Starts networks that live for one test, on ``database_url_factory``'s backend."""
    networks = _Networks(lambda name: tmp_path / name, database_url_factory)
    try:
        yield networks
    finally:
        networks.stop_all()


# -- the web pages in a real browser ------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, driven by Playwright, for one module.

    Playwright's synchronous API keeps an event loop of its own running on the
    thread while it is open, so it is closed with the module, and browser
    modules hold only synchronous tests.
    """
    yield from launch()


@pytest.fixture(scope="module")
def web_network(network_factory: NetworkFactory) -> LocalNetwork:
    """The demo network with its web pages and demo people: three gateways and central."""
    return network_factory(DEMO_GATEWAYS, name="web", web=True, reference_services=True)


@pytest.fixture(scope="module")
def people(web_network: LocalNetwork, network_backend: str) -> People:
    return People(web_network, network_backend)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page for one test."""
    context = browser.new_context()
    # A deadline for a page that never comes, not a speed check: CI runs the browser
    # beside three gateways and another worker's tests on two cores.
    context.set_default_timeout(90_000)
    try:
        yield context.new_page()
    finally:
        context.close()
