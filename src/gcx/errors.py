"""The one exception tree of gcx.

Every error a person or a peer may see is a :class:`GcxError`. Each subclass
fixes three things that never change once published:

* ``code``: a stable, lower-case, hyphenated identifier a program can match
  (``directory-rollback``); it is part of the protocol and of the API.
* ``status``: the HTTP status the error maps to at an API boundary.
* a message: one sentence a person understands, saying what was wrong and,
  where it helps, what to do. Messages never contain secrets.

The tree::

    GcxError
    ├── ConfigError                 configuration missing or unsafe (fails closed)
    │   └── HomeNotPrivate          other local users can read or change files in a home
    ├── InputError                  a request from a person or system is malformed (400)
    │   ├── CatalogueInvalid (422), ControlNotInCatalogue (422)      Code of Connection
    │   ├── EvidenceTooLarge (413), EvidenceTypeRefused (415)        Code of Connection
    │   ├── JustificationRequired (422), ExtensionTooLong (422)      Code of Connection
    │   ├── CsrInvalid
    │   ├── OrganisationCodeInvalid
    │   ├── UnknownOrganisation (422)
    │   ├── BodyTooLarge (413)
    │   ├── AddressInvalid, AttachmentRefused, AttachmentTooLarge (413), BodyNotUtf8
    │   ├── AlertAddressInvalid     an email address for alerts is not one a relay can take
    │   ├── JsonInvalid                 malformed, duplicate keys, NaN, too deep (strict_json)
    │   ├── MultipartInvalid            a multipart/form-data body that does not parse
    │   ├── MarkingMissing, MarkingUnknown, MarkingNotAllowed (422)
    │   ├── MarkingLowered (422)    a reply or forward may not carry a lower marking
    │   ├── EnvelopeMalformed, EnvelopeExpired, EnvelopeFromFuture
    │   ├── KindNotSupported, AddressUnknown, EnvelopeInconsistent        secure messages
    │   ├── EnvelopeReplayed (409), RecipientUnknown (422)               secure messages
    │   ├── NotFound (404)
    │   │   └── ServiceUnknown                                              service calls
    │   ├── UserRequired, PurposeRequired, CallDigestMismatch               service calls
    │   ├── CallReplayed (409), NinoInvalid                                service calls
    │   ├── HeaderInvalid           a request header is not valid UTF-8 text
    │   ├── TransferRefused (422), TransferEmpty (422), QuotaExceeded (413)   bulk transfer
    │   ├── TusVersionUnsupported (412), UploadMediaTypeRefused (415)      bulk transfer
    │   └── UploadOffsetMismatch (409), ChunkDigestMismatch (422)             bulk transfer
    ├── AuthError                   who are you? (401)
    │   ├── TokenInvalid
    │   ├── SignInRefused           a person's password or second-factor code was wrong (browser)
    │   ├── AccountLocked (429)     too many failed sign-ins; wait, or ask an administrator
    │   ├── SignInThrottled (429)   too many failed sign-ins from one address, across accounts
    │   └── SessionExpired          a browser session ended or timed out; sign in again
    ├── Forbidden                   you may not (403)
    │   ├── CsrfRefused             a browser form did not come from our own page
    │   ├── RoleRequired            the caller lacks the role the step needs
    │   ├── RoleHeldElsewhere       a role given at central (or a gateway), not where it was asked
    │   ├── PersonTokenRefused      a person's token is issued only to that person
    │   ├── UserMismatch            a person's token names another end user for a call
    │   ├── MessageNotYours         neither the sender nor a recipient of the message
    │   ├── ForwardForbidden        the message's handling instructions forbid passing it on
    │   ├── SeparationOfDuties      nobody signs off, assesses or approves their own work
    │   └── ServiceForbidden        no access right admits this service call
    ├── Conflict                    state forbids it (409)
    │   ├── EarlyChunksRefused      no more chunks ahead of their manifest; send after the offer
    │   ├── ComplianceRequired      no current certificate of compliance or extension
    │   ├── VerdictNotMet           the verdict does not allow approval, and no justified override
    │   ├── AssessmentIncomplete    a control has no recorded result yet
    │   ├── DuplicateEnrolment
    │   │   └── ChangeReplayed      a signed service change already applied
    │   ├── AccountNameTaken        a system, person or mailbox already has that name
    │   ├── EvidenceUnavailable     the evidence for an envelope cannot be assembled here
    │   └── StateTransitionRefused
    │       ├── RecallRefused       a recipient's gateway refused the recall (already read)
    │       └── RecallTooLate       (in signed recall results) read before the recall arrived
    ├── DirectoryError              the directory cannot be trusted or is missing
    │   ├── DirectorySignatureInvalid
    │   ├── DirectoryRollback
    │   ├── DirectoryExpired
    │   ├── DirectoryMalformed
    │   └── DirectoryUnavailable (503)
    ├── PeerRefused                 a peer gateway failed our checks (403); no use retrying
    │   ├── NotSenderGateway        the peer does not host the sending organisation
    │   ├── PeerRevoked
    │   ├── PeerUnknown
    │   └── PeerAnswerTooLarge (502)  a peer answered more than the caller's limit
    ├── PeerUnreachable             a peer or central could not be reached (502); retry later
    │   ├── PeerTimeout (504)       a peer did not answer in time
    │   └── MailRelayUnreachable    the organisation's mail relay could not take an alert now
    ├── MailRelayRefused (502)      the mail relay refused an alert for good (a 5xx answer)
    ├── RateLimited                 a consumer is over its rate for a service (429, Retry-After)
    ├── BackendError                a service's backend failed the provider gateway
    │   ├── BackendUnreachable (502), BackendTimeout (504)
    │   └── BackendAnswerTooLarge (502)
    ├── MessageRecalled (410)       the sender recalled the message before it was read
    ├── RemoteRefusal               another gcx service refused, with its own code
    │   └── ProviderGatewayRefusal  a service call's provider gateway refused (passed on)
    ├── CryptoError                 verification failed (opaque on purpose)
    │   ├── SignatureInvalid
    │   │   └── SelfCheckSignatureInvalid
    │   ├── ConsistencyProofInvalid (409)
    │   ├── EnvelopeDigestMismatch, EnvelopeUnreadable
    │   ├── ReceiptInvalid (502)
    │   ├── AddressListingInvalid (502)  a peer's address listing does not check out
    │   ├── CallResponseInvalid (502)  a service call's signed answer does not check out
    │   ├── EvidenceInvalid (422)   an evidence file fails a check; the check is named
    │   ├── TransferUnreadable      a transfer's key, metadata or a segment does not open
    │   └── KeyDecryptionFailed
    ├── AuditChainBroken            an audit log does not verify
    ├── EarlyChunksUnsettled (503)  chunks sent ahead are still being written; offer again
    └── StorageFull (507)           not enough free disk space to accept the data now

Errors raised by libraries (SQLAlchemy, aiohttp, cryptography) are translated
at the boundary of the module that calls them and re-raised ``from`` the
original, so callers only ever handle this tree.

This module is over 400 lines on purpose: it is the whole error tree in one
place, so every code, status and sentence a person or peer can see is in one
file a reviewer reads top to bottom.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class GcxError(Exception):
    """Base of every gcx error; carries a stable code and an HTTP status."""

    code: ClassVar[str] = "internal-error"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "Something went wrong inside gcx."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.default_message
        self.details = details
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """The error as the JSON body every gcx API returns on refusal."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class ConfigError(GcxError):
    code = "config-invalid"
    default_message = "The configuration is missing a required setting or holds an unsafe one."


class HomeNotPrivate(ConfigError):
    code = "home-not-private"
    default_message = (
        "Other users of this machine can read or change files in this home; make it private "
        "to this account (chmod -R go-rwx HOME) and start again."
    )


class InputError(GcxError):
    code = "input-invalid"
    status = 400
    default_message = "The request was not in the expected form."


class CsrInvalid(InputError):
    code = "csr-invalid"
    default_message = "The enrolment request is not a valid, self-signed PKCS#10 request."


class OrganisationCodeInvalid(InputError):
    code = "organisation-code-invalid"
    default_message = (
        "The organisation code is not a GSS code or a short upper-case code of 2-16 characters."
    )


class BodyTooLarge(InputError):
    code = "body-too-large"
    status = 413
    default_message = "The request body is larger than this endpoint accepts."


class AddressInvalid(InputError):
    code = "address-invalid"
    default_message = "An address is not of the form person@ORG, mailbox@ORG or ORG."


class AlertAddressInvalid(InputError):
    code = "alert-address-invalid"
    default_message = "Enter an email address in the correct format, like name@example.gov.uk."


class AttachmentRefused(InputError):
    code = "attachment-refused"
    default_message = "An attachment was refused."


class AttachmentTooLarge(InputError):
    code = "attachment-too-large"
    status = 413
    default_message = "An attachment is larger than a message may carry."


class BodyNotUtf8(InputError, ValueError):
    # Also a ValueError, as UnicodeDecodeError is, so code that reads JSON with
    # gcx.protocol.strict_json catches it where it caught json's own errors.
    code = "body-not-utf8"
    default_message = "The text is not valid UTF-8."


class JsonInvalid(InputError, ValueError):
    # A ValueError too, as json.JSONDecodeError is: strict_json.loads is a
    # drop-in for json.loads and callers keep catching ValueError.
    code = "json-invalid"
    default_message = (
        "The JSON is not valid: it is malformed, repeats a key, holds NaN or Infinity,"
        " or is nested too deeply."
    )


class MultipartInvalid(InputError):
    code = "multipart-invalid"
    default_message = (
        "The form is not a well-formed multipart/form-data body; send it as the page or the "
        "API documentation shows."
    )


class MarkingMissing(InputError):
    code = "marking-missing"
    default_message = "A protective marking is required: choose OFFICIAL or OFFICIAL-SENSITIVE."


class MarkingUnknown(InputError):
    code = "marking-unknown"
    default_message = (
        "The protective marking is not one gcx knows: use OFFICIAL or OFFICIAL-SENSITIVE "
        "(PROTECT and RESTRICTED are also accepted and mapped)."
    )


class MarkingNotAllowed(InputError):
    code = "marking-not-allowed"
    status = 422
    default_message = (
        "SECRET and TOP SECRET material must not be sent through gcx; it belongs on a "
        "network accredited for that classification."
    )


class NotFound(InputError):
    code = "not-found"
    status = 404
    default_message = "Nothing with that identifier exists."


class UnknownOrganisation(InputError):
    code = "organisation-unknown"
    status = 422
    default_message = "The organisation is not in the network's member registry."


class AuthError(GcxError):
    code = "unauthenticated"
    status = 401
    default_message = "This request needs a valid token."


class TokenInvalid(AuthError):
    code = "token-invalid"
    default_message = "The token is unknown, revoked or malformed; ask your administrator for one."


class SignInRefused(AuthError):
    code = "sign-in-refused"
    # One sentence for every wrong detail, so the form never tells which part was wrong.
    default_message = "The user name, password or security code is not right."


class AccountLocked(AuthError):
    code = "account-locked"
    status = 429
    default_message = (
        "This account is locked after too many failed sign-ins; try again later or ask "
        "your administrator to unlock it."
    )


class SessionExpired(AuthError):
    code = "session-expired"
    default_message = "You were signed out because your session ended; sign in again."


class Forbidden(GcxError):
    code = "forbidden"
    status = 403
    default_message = "You are not allowed to do this."


class SignInThrottled(AuthError):
    code = "sign-in-throttled"
    status = 429
    default_message = (
        "There have been too many failed sign-ins from your network address; wait a few "
        "minutes and try again."
    )


class CsrfRefused(Forbidden):
    code = "csrf-refused"
    default_message = (
        "The form could not be accepted because it did not come from this service's own "
        "page; go back, reload the page and try again."
    )


class Conflict(GcxError):
    code = "conflict"
    status = 409
    default_message = "The request conflicts with the current state."


class AccountNameTaken(Conflict):
    code = "account-name-taken"
    default_message = (
        "That name belongs to a person, a shared mailbox or a system of this organisation "
        "already; choose another name."
    )


class DuplicateEnrolment(Conflict):
    code = "enrolment-duplicate"
    default_message = "An enrolment for this gateway or organisation is already pending or active."


class StateTransitionRefused(Conflict):
    code = "state-transition-refused"
    default_message = "That step is not allowed from the current state."


class DirectoryError(GcxError):
    code = "directory-invalid"
    status = 502
    default_message = "The network directory could not be trusted."


class DirectorySignatureInvalid(DirectoryError):
    code = "directory-signature-invalid"
    default_message = "The directory's signature does not verify against the pinned network anchor."


class DirectoryRollback(DirectoryError):
    code = "directory-rollback"
    default_message = "The directory offered is older than the one already held; it was refused."


class DirectoryExpired(DirectoryError):
    code = "directory-expired"
    default_message = (
        "The directory is past its expiry time; a fresh one is needed before exchanging."
    )


class DirectoryMalformed(DirectoryError):
    code = "directory-malformed"
    default_message = "The directory is not in the published format."


class DirectoryUnavailable(DirectoryError):
    code = "directory-unavailable"
    status = 503
    default_message = (
        "This gateway holds no valid directory, so it refuses to exchange until it gets one."
    )


class PeerRefused(GcxError):
    code = "peer-refused"
    status = 403
    default_message = "The peer gateway is not one the current directory lists as active."


class PeerRevoked(PeerRefused):
    code = "peer-revoked"
    default_message = "The peer gateway's certificate has been revoked by the network."


class PeerUnknown(PeerRefused):
    code = "peer-unknown"
    default_message = "The peer's certificate is not one the directory lists for an active gateway."


class PeerAnswerTooLarge(PeerRefused):
    code = "peer-answer-too-large"
    status = 502
    default_message = "The peer gateway answered more than this gateway accepts in one answer."


class PeerUnreachable(GcxError):
    code = "peer-unreachable"
    status = 502
    default_message = "The other side could not be reached."


class PeerTimeout(PeerUnreachable):
    code = "peer-timeout"
    status = 504
    default_message = "The peer gateway did not answer in time; it is tried again later."


class MailRelayUnreachable(PeerUnreachable):
    code = "mail-relay-unreachable"
    default_message = (
        "The organisation's mail relay could not take an email alert now; it is tried again later."
    )


class MailRelayRefused(GcxError):
    code = "mail-relay-refused"
    status = 502
    default_message = "The organisation's mail relay refused an email alert; it is not tried again."


class RemoteRefusal(GcxError):
    """A refusal another gcx service sent us, carrying its own code and message."""

    code = "remote-refusal"
    status = 502

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.remote_status = status
        self.remote_code = code

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.remote_code,
            "message": self.message,
            "details": {"remote_status": self.remote_status},
        }


class ProviderGatewayRefusal(RemoteRefusal):
    """The provider's gateway refused a service call; the consumer's gateway passes it on.

    The caller sees the provider gateway's own code and sentence, marked as coming
    from that gateway, with its status (502 if it refused with a success status)
    and its ``Retry-After``, if any, so a caller can tell it from its own
    gateway's refusals and from the backend's answers.
    """

    code = "provider-gateway-refusal"
    default_message = "The provider's gateway refused the call."

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: str | None = None
    ) -> None:
        super().__init__(status, code, message)
        self.retry_after = retry_after

    @property
    def answer_status(self) -> int:
        """The status the caller is answered with: the provider gateway's, if an error one."""
        return self.remote_status if self.remote_status >= 400 else 502

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.remote_code,
            "message": self.message,
            "details": {"from": "provider-gateway"},
        }


class CryptoError(GcxError):
    code = "crypto-failed"
    status = 400
    default_message = "A cryptographic check failed."


class SignatureInvalid(CryptoError):
    code = "signature-invalid"
    default_message = "The signature does not verify."


class EnvelopeMalformed(InputError):
    code = "envelope-malformed"
    default_message = "The envelope is not in the gcx.envelope/1 format."


class EnvelopeExpired(InputError):
    code = "envelope-expired"
    default_message = (
        "The envelope is past its expiry time and was refused; send it again if it is still needed."
    )


class EnvelopeFromFuture(InputError):
    code = "envelope-from-future"
    default_message = (
        "The envelope was created more than five minutes in the future; check the sending "
        "gateway's clock."
    )


class EnvelopeDigestMismatch(CryptoError):
    code = "envelope-digest-mismatch"
    default_message = "A part of the envelope does not match the digest its signed header gives."


class EnvelopeUnreadable(CryptoError):
    code = "envelope-unreadable"
    default_message = "The envelope could not be opened with this organisation's key."


class ReceiptInvalid(CryptoError):
    code = "receipt-invalid"
    status = 502
    default_message = "The receipt is malformed or does not acknowledge this envelope."


class AddressListingInvalid(CryptoError):
    # A peer's listing is refused whole: a page shows the organisation without
    # its people rather than anything the peer's signature does not vouch for.
    code = "address-listing-invalid"
    status = 502
    default_message = "The organisation's address listing is malformed or not signed by it."


class ConsistencyProofInvalid(CryptoError):
    code = "consistency-proof-invalid"
    status = 409
    default_message = "The new audit tree head does not extend the one lodged before."


class KeyDecryptionFailed(CryptoError):
    code = "key-decryption-failed"
    status = 500
    default_message = "A private key could not be decrypted with the configured key passphrase."


class AuditChainBroken(GcxError):
    code = "audit-chain-broken"
    default_message = "The audit log does not verify."


# -- secure messages (gcx.gateway.messages.receive, gcx.gateway.messages.messaging) --------------


class NotSenderGateway(PeerRefused):
    code = "peer-not-sender-gateway"


class KindNotSupported(InputError):
    code = "kind-not-supported"


class AddressUnknown(InputError):
    code = "address-unknown"


class EnvelopeInconsistent(InputError):
    code = "envelope-inconsistent"


class EnvelopeReplayed(InputError):
    code = "envelope-replayed"
    status = 409


class RecipientUnknown(InputError):
    code = "recipient-unknown"
    status = 422


class MessageNotYours(Forbidden):
    code = "message-not-yours"


class ForwardForbidden(Forbidden):
    code = "forward-forbidden"
    default_message = "The handling instructions of this message forbid passing it on."


class MarkingLowered(InputError):
    code = "marking-lowered"
    status = 422
    default_message = (
        "A reply or forward keeps the marking of the message it carries; it cannot be lowered."
    )


class MessageRecalled(GcxError):
    code = "message-recalled"
    status = 410


class RecallRefused(StateTransitionRefused):
    code = "recall-refused"


class RecallTooLate(StateTransitionRefused):
    # Appears only as the code in a signed recall result, never raised.
    code = "recall-too-late"
    default_message = "The message was read before the recall arrived."


# -- Code of Connection (gcx.compliance, gcx.central.compliance) ---------------


class CatalogueInvalid(InputError):
    code = "catalogue-invalid"
    status = 422
    default_message = "The Code of Connection catalogue does not pass validation."


class ControlNotInCatalogue(InputError):
    code = "control-not-in-catalogue"
    status = 422
    default_message = (
        "That control is not in the catalogue version this statement uses; check the control id."
    )


class EvidenceTooLarge(InputError):
    code = "evidence-too-large"
    status = 413
    default_message = "The evidence file is larger than the network allows; split or compress it."


class EvidenceTypeRefused(InputError):
    code = "evidence-type-refused"
    status = 415
    default_message = (
        "Evidence of that type is not accepted; use PDF, an image, plain text, CSV, JSON or an "
        "office document."
    )


class JustificationRequired(InputError):
    code = "justification-required"
    status = 422
    default_message = "This decision needs a written justification, which is kept in the audit log."


class ExtensionTooLong(InputError):
    code = "extension-too-long"
    status = 422
    default_message = "The extension asked for runs past the longest the network allows."


class RoleRequired(Forbidden):
    code = "role-required"
    default_message = "Your account does not hold the role this step needs."


class RoleHeldElsewhere(Forbidden):
    code = "role-held-elsewhere"
    default_message = "This role is not given here; the network operator gives it at central."


class PersonTokenRefused(Forbidden):
    code = "person-token-refused"
    default_message = (
        "A token for a person is issued only to that person, from their own account page "
        "after signing in; an administrator may add a system token instead."
    )


class UserMismatch(Forbidden):
    code = "user-mismatch"
    default_message = (
        "A person's token calls services as that person only; leave X-Gcx-User out or give "
        "your own account name."
    )


class SeparationOfDuties(Forbidden):
    code = "separation-of-duties"
    default_message = (
        "Nobody may sign off, assess or approve their own work; another person must do this step."
    )


class ComplianceRequired(Conflict):
    code = "compliance-required"
    default_message = (
        "The organisation has no current certificate of compliance or granted extension; approve "
        "its statement first or give an explicit override with a reason."
    )


class VerdictNotMet(Conflict):
    code = "verdict-not-met"
    default_message = (
        "The assessment's verdict does not meet the Code of Connection, and no assessor has "
        "justified an override."
    )


class AssessmentIncomplete(Conflict):
    code = "assessment-incomplete"
    default_message = "Every control needs a recorded result before the assessment is complete."


class SelfCheckSignatureInvalid(SignatureInvalid):
    code = "selfcheck-signature-invalid"
    default_message = (
        "The self-check report's signature does not verify against the key central holds for "
        "that organisation."
    )


# -- bulk file transfer (gcx.gateway.transfers.sending) --------------------------------


class TransferRefused(InputError):
    code = "transfer-refused"
    status = 422
    default_message = "The file transfer was refused."


class TransferEmpty(InputError):
    code = "transfer-empty"
    status = 422
    default_message = "A transfer needs at least one file; the batch given is empty."


class QuotaExceeded(InputError):
    code = "quota-exceeded"
    status = 413
    default_message = (
        "This would take your organisation over its file-transfer quota; send less or ask "
        "your gateway administrator to raise the quota."
    )


class UploadOffsetMismatch(InputError):
    code = "upload-offset-mismatch"
    status = 409
    default_message = (
        "The Upload-Offset does not match what the gateway holds; ask for the offset (HEAD) "
        "and continue from there."
    )


class ChunkDigestMismatch(InputError):
    code = "chunk-digest-mismatch"
    status = 422
    default_message = (
        "The chunk does not match the digest the signed manifest gives for it; send it again."
    )


class EarlyChunksRefused(Conflict):
    code = "early-chunks-refused"
    default_message = (
        "This gateway takes no more chunks ahead of their manifest now; send them after the offer."
    )


class TusVersionUnsupported(InputError):
    code = "tus-version-unsupported"
    status = 412
    default_message = "This gateway speaks tus 1.0.0; send Tus-Resumable: 1.0.0."


class UploadMediaTypeRefused(InputError):
    code = "upload-media-type-refused"
    status = 415
    default_message = "A PATCH must have Content-Type application/offset+octet-stream."


class TransferUnreadable(CryptoError):
    code = "transfer-unreadable"
    default_message = "The transfer could not be opened with this organisation's key."


class EarlyChunksUnsettled(GcxError):
    """An offer came while chunks sent ahead for its transfer were still being written.

    Counting the chunks then would let a late write land in a slot after it was
    counted (or after the same chunk came again the usual way), so the offer is
    answered "try again"; the sending gateway offers again after its back-off.
    """

    code = "early-chunks-unsettled"
    status = 503
    default_message = (
        "Chunks of this transfer sent ahead of the manifest are still being written here; "
        "offer it again shortly."
    )


class StorageFull(GcxError):
    code = "storage-full"
    status = 507
    default_message = (
        "The gateway does not have enough free disk space to accept this now; it will be "
        "tried again when space is freed."
    )


# -- service calls (gcx.protocol.services, gcx.gateway.services.calls) -------------------
#
# Every refusal a gateway makes on a service call carries X-Gcx-Error (see
# gcx.httpapi.refusal), which is how a calling system tells them from the
# backend's own answers with the same status.


class ServiceUnknown(NotFound):
    code = "service-unknown"
    default_message = "The directory lists no such service."


class ServiceForbidden(Forbidden):
    code = "service-forbidden"
    default_message = "No access right admits this call; the provider must grant one."


class HeaderInvalid(InputError):
    code = "header-invalid"
    default_message = "A request header is not valid UTF-8 text; send it as UTF-8."


class UserRequired(InputError):
    code = "user-required"
    default_message = "This service requires the end user's identity in the X-Gcx-User header."


class PurposeRequired(InputError):
    code = "purpose-required"
    default_message = "This service requires the purpose of the lookup in the X-Gcx-Purpose header."


class CallDigestMismatch(InputError):
    code = "call-request-digest-mismatch"
    default_message = (
        "The request body does not match the digest its signed request document gives."
    )


class CallReplayed(InputError):
    code = "call-replayed"
    status = 409
    default_message = "A call with this id was already answered; the repeat was refused."


class ChangeReplayed(DuplicateEnrolment):
    code = "service-change-replayed"
    default_message = "This signed service change was already applied; sign a new one."


class NinoInvalid(InputError):
    code = "nino-invalid"
    default_message = (
        "Enter a National Insurance number in the right format, like QQ 12 34 56 C "
        "(two letters, six numbers, then A, B, C or D)."
    )


class CallResponseInvalid(CryptoError):
    code = "call-response-invalid"
    status = 502
    default_message = "The provider's signed answer does not verify or does not match the request."


class RateLimited(GcxError):
    code = "rate-limited"
    status = 429
    default_message = "Your organisation is over its rate for this service; try again shortly."

    def __init__(self, message: str | None = None, *, retry_after: float = 1.0) -> None:
        super().__init__(message, retry_after=max(1, int(retry_after + 0.999)))
        self.retry_after = max(1, int(retry_after + 0.999))


class BackendError(GcxError):
    code = "backend-error"
    status = 502
    default_message = "The service's backend failed."


class BackendUnreachable(BackendError):
    code = "backend-unreachable"
    default_message = "The provider's gateway could not reach the service's backend."


class BackendTimeout(BackendError):
    code = "backend-timeout"
    status = 504
    default_message = "The service's backend did not answer within the service's timeout."


class BackendAnswerTooLarge(BackendError):
    code = "backend-answer-too-large"
    default_message = "The service's backend answered with more than the service allows."


# -- evidence files (gcx.evidence, gcx.gateway.messages.evidence_export) -------------------


class EvidenceInvalid(CryptoError):
    """An evidence file failed one of the checks; ``check`` names which.

    ``passed`` holds the checks that passed before it (:class:`gcx.evidence.Check`),
    so a report can show how far the file got. It is typed loosely here because
    this module imports nothing of gcx.
    """

    code = "evidence-invalid"
    status = 422
    default_message = "The evidence file does not verify."

    def __init__(
        self, message: str, *, check: str, subject: str, passed: Sequence[Any] = ()
    ) -> None:
        super().__init__(message, check=check, subject=subject)
        self.check = check
        self.subject = subject
        self.passed = tuple(passed)


class EvidenceUnavailable(Conflict):
    code = "evidence-unavailable"
    default_message = "The evidence for that envelope cannot be assembled on this gateway."
