"""Each person's choice of email alerts and the address they go to.

Alerts are off until the person turns them on, with an address they type
themselves; an administrator cannot turn them on for someone. The address
is checked strictly (plain ASCII, one ``@``, a domain with a dot): it goes
into a mail header, so nothing that could end a header line or smuggle a
second address is let through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from gcx import audit
from gcx.clock import Clock
from gcx.errors import AlertAddressInvalid
from gcx.store import Database, iso
from gcx.store.schema_alerts import email_alerts

MAX_ADDRESS_CHARS = 254
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@dataclass(frozen=True)
class AlertSetting:
    address: str
    enabled: bool


def check_alert_address(text: str) -> str:
    """The address as it will be used (domain in lower case), or a refusal saying why."""
    address = text.strip()
    if not address:
        raise AlertAddressInvalid("Enter the email address to send alerts to.")
    if len(address) > MAX_ADDRESS_CHARS:
        raise AlertAddressInvalid(
            f"The email address must be {MAX_ADDRESS_CHARS} characters or fewer."
        )
    local, at, domain = address.rpartition("@")
    labels = domain.split(".")
    if (
        not at
        or len(local) > 64
        or not _LOCAL.fullmatch(local)
        or len(labels) < 2
        or not all(_LABEL.fullmatch(label) for label in labels)
        or not labels[-1].isalpha()
    ):
        raise AlertAddressInvalid()
    return f"{local}@{domain.lower()}"


def alert_setting(db: Database, organisation: str, account: str) -> AlertSetting | None:
    with db.read() as conn:
        row = conn.execute(
            sa.select(email_alerts.c.address, email_alerts.c.enabled).where(
                email_alerts.c.organisation == organisation, email_alerts.c.account == account
            )
        ).first()
    return None if row is None else AlertSetting(row.address, bool(row.enabled))


def set_alert(
    db: Database,
    clock: Clock,
    *,
    organisation: str,
    account: str,
    enabled: bool,
    address: str,
    actor: str,
) -> AlertSetting | None:
    """Turn a person's alerts on (to ``address``, checked) or off; returns the setting kept.

    Turning them off keeps the address already held and ignores what was
    typed, as the form only asks for it with "yes".
    """
    checked = check_alert_address(address) if enabled else None
    now = clock.now()
    with db.transaction() as conn:
        row = conn.execute(
            sa.select(email_alerts.c.address).where(
                email_alerts.c.organisation == organisation, email_alerts.c.account == account
            )
        ).first()
        if checked is not None:
            kept = checked
        elif row is not None:
            kept = str(row.address)
        else:
            return None  # off already, with nothing to keep
        values = {"address": kept, "enabled": enabled, "updated_at": iso(now)}
        if row is None:
            conn.execute(
                email_alerts.insert().values(organisation=organisation, account=account, **values)
            )
        else:
            conn.execute(
                email_alerts.update()
                .where(
                    email_alerts.c.organisation == organisation, email_alerts.c.account == account
                )
                .values(**values)
            )
        # The address itself stays out of the audit log: it is personal, and the
        # table says where alerts go now.
        audit.append(
            conn,
            actor=actor,
            action="alerts.turned-on" if enabled else "alerts.turned-off",
            subject=f"{account}@{organisation}",
            now=now,
        )
    return AlertSetting(kept, enabled)
