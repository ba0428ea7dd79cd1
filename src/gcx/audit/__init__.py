"""The append-only, hash-chained audit log kept by central and by every gateway.

Each entry's hash covers the previous entry's hash and the entry's own
canonical content, so editing, deleting or reordering any entry breaks every
hash after it. Appends happen inside the caller's transaction, so an action
and its audit entry are committed together or not at all.
"""

from gcx.audit.log import (
    AuditedRefusal,
    AuditEntry,
    Record,
    VerifyReport,
    append,
    append_many,
    entries,
    lock_head,
    refusals_recorded,
    verify,
)

__all__ = [
    "AuditEntry",
    "AuditedRefusal",
    "Record",
    "VerifyReport",
    "append",
    "append_many",
    "entries",
    "lock_head",
    "refusals_recorded",
    "verify",
]
