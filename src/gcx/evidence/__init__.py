"""Evidence files (``gcx.evidence/1``): what was sent and who signed for it, checkable offline.

An evidence file gathers, for one envelope, what a third party needs to check
with no access to the network and no trust in the gateway that wrote it:

* the sending organisation signed this envelope header, and these exact
  ciphertext parts are the ones it lists, so the envelope digest is theirs;
* each receipting organisation signed a receipt naming exactly this envelope
  id and digest (a read receipt names the envelope id);
* each of those organisations' keys was certified by the network root (the
  anchor), and was the key the signed directory in force listed for it.

Theory of operation: every value in the file is either signed (the envelope
header, the receipts, the directory, the certificates) or is checked against
something signed (the envelope id and digest, the directory version, each
receipt's organisation and kind). The file is written in one canonical form,
and :func:`verify_evidence` refuses any other serialisation, so a changed byte
anywhere is noticed, even one that would change nothing signed. Nothing in
the file is unsigned commentary: who exported it and when is in the
exporting gateway's audit log, not here, because nothing could vouch for it.

The layout is specified in ``docs/evidence.md``. The package keeps one idea
per module: ``_file`` (the layout, its canonical form, pure building),
``_verify`` (offline checking from the bytes and, optionally, a trusted
anchor) and ``_calls`` (the same for service calls). It reads nothing but the
bytes it is given; gathering a gateway's stored rows, then building, checking
and auditing, is the gateway's (:mod:`gcx.gateway.messages.evidence_export`).
"""

from __future__ import annotations

from gcx.errors import EvidenceInvalid, EvidenceUnavailable
from gcx.evidence._calls import (
    VerifiedCall,
    build_call_evidence,
    is_call_evidence,
    verify_call_evidence,
)
from gcx.evidence._file import (
    FORMAT,
    MEDIA_TYPE,
    Check,
    HeldReceipt,
    ReceiptKind,
    build_evidence,
)
from gcx.evidence._verify import VerifiedEvidence, VerifiedReceipt, verify_evidence

__all__ = [
    "FORMAT",
    "MEDIA_TYPE",
    "Check",
    "EvidenceInvalid",
    "EvidenceUnavailable",
    "HeldReceipt",
    "ReceiptKind",
    "VerifiedCall",
    "VerifiedEvidence",
    "VerifiedReceipt",
    "build_call_evidence",
    "build_evidence",
    "is_call_evidence",
    "verify_call_evidence",
    "verify_evidence",
]
