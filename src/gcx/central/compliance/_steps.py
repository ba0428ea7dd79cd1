"""The statement table at work: every workflow step a statement takes goes through here.

:meth:`StatementSteps.take` makes the role check, the state table's transition,
the step's own checks, the new state and its audit entry in one transaction,
and publishes a new directory in it when the step can change who is connected.
A refused step is audited and changes nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from gcx import audit
from gcx.central.compliance._catalogues import Catalogues
from gcx.central.compliance._principal import Principal, _require_member
from gcx.central.compliance._records import set_state, statement_row, statement_view
from gcx.central.ports import DirectoryPublisher
from gcx.clock import Clock
from gcx.compliance.catalogue import Catalogue
from gcx.compliance.statement import StatementEvent, StatementState, advance
from gcx.errors import GcxError
from gcx.store import Database

# A step's own checks: given the locked statement row and its catalogue, raise to
# refuse, or return the extra columns the step sets on the statement.
StepCheck = Callable[[Connection, Any, Catalogue], dict[str, Any]]


class StatementSteps:
    def __init__(
        self,
        database: Database,
        clock: Clock,
        catalogues: Catalogues,
        publisher: DirectoryPublisher,
    ) -> None:
        self.db = database
        self.clock = clock
        self.catalogues = catalogues
        self.publisher = publisher

    def take(
        self,
        by: Principal,
        statement_id: str,
        event: StatementEvent,
        check: StepCheck,
        *,
        details: dict[str, Any] | None = None,
        publish: bool = False,
    ) -> dict[str, Any]:
        """Take one step of the table: role, state, the step's own checks, audit, in one go."""
        now = self.clock.now()
        with audit.refusals_recorded(self.db, self.clock), self.db.transaction() as conn:
            row = statement_row(conn, statement_id, lock=True)
            try:
                if by.organisation is not None:
                    _require_member(by, row.organisation)
                new_state = advance(StatementState(row.state), event, by.roles)
                catalogue = self.catalogues.load(conn, row.catalogue_version)
                extra = check(conn, row, catalogue)
            except GcxError as error:
                # Refused steps (wrong role, wrong state, one's own work, a verdict
                # that does not allow approval) are audited; nothing else is kept.
                raise audit.AuditedRefusal(
                    error,
                    actor=by.actor,
                    action="compliance.step.refused",
                    subject=statement_id,
                    details={"step": event.value},
                ) from None
            set_state(conn, row, new_state, by, now, event.value, extra)
            audit.append(
                conn,
                actor=by.actor,
                action=f"compliance.statement.{event.value}",
                subject=statement_id,
                now=now,
                details={
                    "organisation": row.organisation,
                    "from": row.state,
                    "to": new_state.value,
                    **(details or {}),
                },
            )
            if publish:
                self.publisher.publish_in(
                    conn, now, reason=f"Code of Connection {event.value} for {row.organisation}"
                )
            return self.view(conn, statement_id)

    def view(self, conn: Connection, statement_id: str) -> dict[str, Any]:
        """The statement as it stands in ``conn``'s transaction."""
        row = statement_row(conn, statement_id)
        return statement_view(conn, row, self.catalogues.load(conn, row.catalogue_version))
