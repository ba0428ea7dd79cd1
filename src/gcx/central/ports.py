"""What central's parts need of each other, as types, so none imports another's module.

The Code of Connection use cases and service access publish a new directory in
the transaction of the change that causes it, and compliance accepts operators'
tokens; :class:`gcx.central.service.CentralService` provides both. They name it
through :class:`CentralParts` rather than importing the service, which imports
them: the directory is built from their tables, so the dependency runs both
ways and only the types are shared.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from sqlalchemy.engine import Connection

from gcx.clock import Clock
from gcx.config import CentralConfig
from gcx.store import Database

ACTOR_SYSTEM = "central"


class DirectoryPublisher(Protocol):
    def publish_in(self, conn: Connection, now: dt.datetime, *, reason: str) -> int:
        """Publish the next directory version inside ``conn``'s transaction; its number."""
        ...


class OperatorAuthenticator(Protocol):
    def authenticate_operator(self, token: str | None, *, request: str) -> str:
        """The operator's name for a valid token; raise ``TokenInvalid`` otherwise."""
        ...


class CentralParts(DirectoryPublisher, OperatorAuthenticator, Protocol):
    """Central's settings, database and clock, its directory publisher and its operators."""

    @property
    def config(self) -> CentralConfig: ...

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...
