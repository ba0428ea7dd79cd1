"""Which answers to a recall are believed: signed results from the peer's own organisations."""

from __future__ import annotations

import datetime as dt
import json

from gcx import crypto
from gcx.gateway.messages.recall_results import judge_recall_answer, judge_recall_results
from gcx.protocol.batch import RECALL_RESULT_TYPE, RECALL_TYPE, Recall, RecallResult
from gcx.protocol.directory import Directory, GatewayEntry, OrganisationEntry

NOW = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)
ENVELOPE = "env-1"
KEYS = {code: crypto.SigningKey.generate() for code in ("COUNCIL", "POLICE", "NHS", "DWP")}
# POLICE and NHS are hosted by "beta", the gateway being asked; DWP by another.
HOSTS = {"COUNCIL": "alpha", "POLICE": "beta", "NHS": "beta", "DWP": "gamma"}


def _gateway(name: str) -> GatewayEntry:
    return GatewayEntry(
        name=name,
        peer_address=f"{name}.example:9443",
        certificate_fingerprint="ab" * 32,
        certificate_serial="1f",
        certificate_not_after=NOW + dt.timedelta(days=365),
        organisations=tuple(code for code, host in HOSTS.items() if host == name),
    )


DIRECTORY = Directory(
    network="test-net",
    version=1,
    issued_at=NOW,
    expires_at=NOW + dt.timedelta(minutes=10),
    organisations=tuple(
        OrganisationEntry(
            code=code,
            name=code,
            type="police" if code == "POLICE" else "local-authority",
            gateway=HOSTS[code],
            signing_key=KEYS[code].public.b64(),
        )
        for code in KEYS
    ),
    gateways=tuple(_gateway(name) for name in ("alpha", "beta", "gamma")),
)


def _signed(payload_type: str, payload: bytes, signer: str) -> str:
    key = KEYS[signer]
    return crypto.sign_document(payload_type, payload, key, crypto.key_id(key.public)).decode()


RECALL = _signed(
    RECALL_TYPE, Recall(ENVELOPE, "COUNCIL", "officer", NOW).to_bytes(), "COUNCIL"
).encode()


def _result(
    org: str,
    outcome: str = "recalled",
    *,
    signer: str | None = None,
    envelope: str = ENVELOPE,
    message: str | None = None,
) -> str:
    code = None if outcome == "recalled" else "recall-too-late"
    result = RecallResult(envelope, org, outcome, code, message, NOW)
    return _signed(RECALL_RESULT_TYPE, result.to_bytes(), signer or org)


def _judge(results: object) -> tuple[str, str | None]:
    return judge_recall_results(DIRECTORY, "beta", RECALL, results)


def test_every_hosted_organisation_withdrawing_it_is_a_recall() -> None:
    assert _judge([_result("POLICE"), _result("NHS")]) == ("recalled", None)


def test_one_refusal_is_passed_on_in_its_own_words() -> None:
    said = "Already read by pc.jones@POLICE; a message cannot be recalled once read."
    answer = [_result("NHS"), _result("POLICE", "refused", message=said)]
    assert _judge(answer) == ("refused", said)


def test_a_result_for_an_organisation_the_peer_does_not_host_is_refused() -> None:
    outcome, why = _judge([_result("DWP")])
    assert outcome == "refused"
    assert why == "gateway beta answered for another message or organisation"


def test_a_result_about_another_message_is_refused() -> None:
    outcome, why = _judge([_result("POLICE", envelope="env-2")])
    assert outcome == "refused"
    assert why == "gateway beta answered for another message or organisation"


def test_a_result_signed_by_a_neighbour_for_another_organisation_is_refused() -> None:
    # NHS's key is trusted for NHS only: it cannot speak for POLICE on the same gateway.
    outcome, why = _judge([_result("POLICE", signer="NHS")])
    assert outcome == "refused"
    assert why is not None and why.startswith("gateway beta sent an invalid recall result")


def test_garbage_and_a_non_list_answer_are_refused() -> None:
    outcome, why = _judge(["not a signed document"])
    assert outcome == "refused" and why is not None and "invalid recall result" in why
    assert _judge({"results": []}) == (
        "refused",
        "gateway beta answered without a list of results",
    )


def test_a_whole_answer_body_is_judged_by_its_signed_results() -> None:
    """A 200 body is believed only through its signed results, never for its status alone."""
    body = json.dumps({"results": [_result("POLICE"), _result("NHS")]}).encode()
    assert judge_recall_answer(DIRECTORY, "beta", RECALL, body) == ("recalled", None)
    forged = json.dumps({"results": [_result("POLICE", signer="NHS")]}).encode()
    assert judge_recall_answer(DIRECTORY, "beta", RECALL, forged)[0] == "refused"
    for garbage in (b"not json", b"[]", b'{"results": {}}'):
        assert judge_recall_answer(DIRECTORY, "beta", RECALL, garbage)[0] == "refused"
