"""The gateway self-check report: its format and the rules for judging each check.

A gateway measures (``gcx.gateway.selfcheck``), this module judges the
measurements and defines the signed document. Judging is pure, so the
thresholds are tested without sockets:

* only TLS 1.3 may be accepted by the peer endpoint;
* every negotiated or configured cipher suite must be an AEAD suite;
* the certificate must have more than 30 days left;
* the clock must be within 30 seconds of central's;
* every private key file must be encrypted;
* administrators' second factor is reported as ``unknown`` until the web
  interface, which will hold administrator sign-in, exists: a check that
  cannot see the answer says so rather than guessing.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from gcx.errors import InputError
from gcx.protocol import strict_json

SELFCHECK_TYPE = "application/vnd.gcx.selfcheck+json"
FORMAT = "gcx.selfcheck/1"

CERTIFICATE_MIN_DAYS = 30
MAX_CLOCK_SKEW_SECONDS = 30.0
AEAD_MARKERS = ("GCM", "CHACHA20", "CCM")

PASS, FAIL, WARN, UNKNOWN = "pass", "fail", "warn", "unknown"


@dataclass(frozen=True)
class Check:
    id: str
    status: str
    detail: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "detail": self.detail, "data": self.data}


def judge_tls_versions(accepted: dict[str, str]) -> Check:
    """``accepted`` maps a TLS version name to "accepted", "refused" or "untested"."""
    offered = sorted(v for v, outcome in accepted.items() if outcome == "accepted")
    if offered == ["TLSv1.3"]:
        return Check("tls-versions", PASS, "The peer endpoint accepts TLS 1.3 only.", accepted)
    if "TLSv1.3" not in offered:
        return Check(
            "tls-versions",
            FAIL,
            "The peer endpoint did not complete a TLS 1.3 handshake.",
            accepted,
        )
    return Check(
        "tls-versions",
        FAIL,
        f"The peer endpoint also accepts {', '.join(v for v in offered if v != 'TLSv1.3')}.",
        accepted,
    )


def judge_cipher_suites(negotiated: str | None, configured: list[str]) -> Check:
    suites = sorted({*configured, *([negotiated] if negotiated else [])})
    weak = [s for s in suites if not any(m in s for m in AEAD_MARKERS)]
    data = {"negotiated": negotiated, "configured": suites}
    if negotiated is None:
        return Check("tls-cipher-suites", UNKNOWN, "No handshake completed to observe.", data)
    if weak:
        return Check(
            "tls-cipher-suites", FAIL, f"Suites without AEAD are enabled: {', '.join(weak)}.", data
        )
    return Check("tls-cipher-suites", PASS, f"Negotiated {negotiated}; all suites are AEAD.", data)


def judge_certificate(not_after: dt.datetime, now: dt.datetime) -> Check:
    days = (not_after - now).total_seconds() / 86400
    data = {"not_after": not_after.isoformat(), "days_left": round(days, 1)}
    if days <= 0:
        return Check("certificate-expiry", FAIL, "The gateway's certificate has expired.", data)
    if days <= CERTIFICATE_MIN_DAYS:
        return Check(
            "certificate-expiry",
            WARN,
            f"The gateway's certificate expires in {days:.0f} days; renew it now.",
            data,
        )
    return Check("certificate-expiry", PASS, f"{days:.0f} days left on the certificate.", data)


def judge_clock_skew(skew_seconds: float | None) -> Check:
    if skew_seconds is None:
        return Check("clock-skew", UNKNOWN, "Central's time could not be read.", {})
    data = {"skew_seconds": round(skew_seconds, 1)}
    if abs(skew_seconds) > MAX_CLOCK_SKEW_SECONDS:
        return Check(
            "clock-skew", FAIL, f"The clock is {skew_seconds:+.0f} s from central's.", data
        )
    return Check("clock-skew", PASS, f"The clock is within {abs(skew_seconds):.0f} s.", data)


def judge_keys(encrypted: dict[str, bool]) -> Check:
    clear = sorted(name for name, ok in encrypted.items() if not ok)
    if not encrypted:
        return Check("keys-encrypted", UNKNOWN, "No private key files were found.", {})
    if clear:
        return Check(
            "keys-encrypted", FAIL, f"Not encrypted at rest: {', '.join(clear)}.", encrypted
        )
    return Check(
        "keys-encrypted", PASS, f"All {len(encrypted)} key files are encrypted.", encrypted
    )


def software_version_check(version: str) -> Check:
    return Check("software-version", PASS, f"gcx {version}.", {"version": version})


def admin_second_factor_check(administrators: int, without_second_factor: int) -> Check:
    """Whether everyone who administers the gateway in a browser signs in with a second factor.

    gcx's web sign-in always asks for a TOTP code, so the count without one is
    zero unless a record was damaged; it is counted rather than assumed, so that
    a future sign-in method without a second factor would fail this check.
    """
    details = {"administrators": administrators, "without_second_factor": without_second_factor}
    if without_second_factor:
        return Check(
            "admin-second-factor",
            FAIL,
            f"{without_second_factor} of {administrators} web administrators can sign in "
            "without a second factor.",
            details,
        )
    return Check(
        "admin-second-factor",
        PASS,
        f"All {administrators} web administrators sign in with a password and a TOTP code; "
        "the web interface has no sign-in without the second factor.",
        details,
    )


@dataclass(frozen=True)
class SelfCheckReport:
    organisation: str
    gateway: str
    generated_at: dt.datetime
    software_version: str
    checks: tuple[Check, ...]

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": FORMAT,
                "organisation": self.organisation,
                "gateway": self.gateway,
                "generated_at": self.generated_at.isoformat(),
                "software_version": self.software_version,
                "checks": [c.to_dict() for c in self.checks],
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()

    def check_ids(self) -> list[str]:
        return [c.id for c in self.checks]

    def summary(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            "software_version": self.software_version,
            "failed": [c.id for c in self.checks if c.status == FAIL],
            "checks": [{"id": c.id, "status": c.status, "detail": c.detail} for c in self.checks],
        }


def parse_report(payload: bytes) -> SelfCheckReport:
    try:
        body = strict_json.loads(payload)
        if body["format"] != FORMAT:
            raise ValueError("wrong format")
        checks = tuple(
            Check(str(c["id"]), str(c["status"]), str(c["detail"])[:500], dict(c.get("data", {})))
            for c in body["checks"]
        )
        generated = dt.datetime.fromisoformat(body["generated_at"])
        if generated.tzinfo is None:
            raise ValueError("naive time")
        return SelfCheckReport(
            str(body["organisation"])[:16],
            str(body["gateway"])[:63],
            generated,
            str(body["software_version"])[:40],
            checks,
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError("The self-check report is not in the gcx.selfcheck/1 format.") from exc
