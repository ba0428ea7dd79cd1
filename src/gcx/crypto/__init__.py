"""The only place in gcx that touches cryptographic libraries.

It offers recipes, not primitives: key pairs that sign and verify, keys saved
encrypted at rest, DSSE-signed documents, streaming file encryption (STREAM
over AES-256-GCM), certificates issued by the network root, TLS 1.3 contexts
and token hashing. Verification raises; it never returns False.
"""

from gcx.crypto._dsse import pae, sign_document, signature_key_ids, verify_document
from gcx.crypto._envelope import (
    SealedEnvelope,
    envelope_digest,
    open_envelope,
    seal_envelope,
    unverified_header,
    verify_envelope,
)
from gcx.crypto._keys import (
    EncryptionKey,
    EncryptionPublicKey,
    SigningKey,
    VerifyKey,
    load_encryption_key,
    load_signing_key,
    private_key_is_encrypted,
    save_encryption_key,
    save_signing_key,
)
from gcx.crypto._merkle import consistency_proof, tree_head, verify_consistency
from gcx.crypto._receipt import sign_receipt, verify_receipt
from gcx.crypto._stream import (
    SEGMENT_SIZE,
    SealedFile,
    StreamCipher,
    encrypt_file,
    new_content_key,
    open_content_key,
    open_metadata,
    seal_content_key,
    seal_metadata,
    segment_count,
)
from gcx.crypto._tls import (
    client_context,
    peer_certificate_der,
    peer_certificate_fingerprint,
    pinned_client_context,
    server_context,
)
from gcx.crypto._tokens import hash_token, new_token, random_id, sha256_hex, token_matches
from gcx.crypto._x509 import (
    Certificate,
    EnrolmentRequestInfo,
    build_enrolment_request,
    create_network_root,
    fingerprint,
    issue_gateway_certificate,
    issue_organisation_certificate,
    issue_server_certificate,
    key_id,
    parse_enrolment_request,
)

__all__ = [
    "SEGMENT_SIZE",
    "Certificate",
    "EncryptionKey",
    "EncryptionPublicKey",
    "EnrolmentRequestInfo",
    "SealedEnvelope",
    "SealedFile",
    "SigningKey",
    "StreamCipher",
    "VerifyKey",
    "build_enrolment_request",
    "client_context",
    "consistency_proof",
    "create_network_root",
    "encrypt_file",
    "envelope_digest",
    "fingerprint",
    "hash_token",
    "issue_gateway_certificate",
    "issue_organisation_certificate",
    "issue_server_certificate",
    "key_id",
    "load_encryption_key",
    "load_signing_key",
    "new_content_key",
    "new_token",
    "open_content_key",
    "open_envelope",
    "open_metadata",
    "pae",
    "parse_enrolment_request",
    "peer_certificate_der",
    "peer_certificate_fingerprint",
    "pinned_client_context",
    "private_key_is_encrypted",
    "random_id",
    "save_encryption_key",
    "save_signing_key",
    "seal_content_key",
    "seal_envelope",
    "seal_metadata",
    "segment_count",
    "server_context",
    "sha256_hex",
    "sign_document",
    "sign_receipt",
    "signature_key_ids",
    "token_matches",
    "tree_head",
    "unverified_header",
    "verify_consistency",
    "verify_document",
    "verify_envelope",
    "verify_receipt",
]
