"""Taking an organisation through the Code of Connection over central's API, for the demo.

The demo (``gcx demo``) and integration tests use these helpers to admit
organisations the way a real network would: an operator creates the people
(a security officer and a sign-off officer for the organisation, an
assessor), the officer answers every control with the model answer, the
senior officer signs off, the assessor records results and the operator
approves. Nothing is skipped: the same refusals apply as for people.

The answers are synthetic and say so; they are there to exercise the path,
not to claim that a demo organisation meets the code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from gcx.errors import PeerRefused, PeerUnreachable, RemoteRefusal
from gcx.private_files import write_private

DEMO_ASSESSOR = "demo.assessor"


class ComplianceClient(Protocol):
    """What the helpers need: :class:`gcx.central.client.OperatorClient` has it."""

    async def compliance(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> Any: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, *_: object) -> None: ...


ClientFactory = Callable[[str], ComplianceClient]  # token -> client


async def _accounts(operator: ComplianceClient, organisation: str) -> dict[str, str]:
    """Create (once) the organisation's officers and the network's demo assessor.

    Tokens are keyed ``security-officer:CODE``, ``sign-off:CODE`` and ``assessor``.
    """
    tokens = {}
    for name, roles, org in (
        (f"iso.{organisation.lower()}", ["security-officer"], organisation),
        (f"siro.{organisation.lower()}", ["sign-off"], organisation),
        (DEMO_ASSESSOR, ["assessor"], None),
    ):
        try:
            result = await operator.compliance(
                "POST", "/accounts", {"name": name, "roles": roles, "organisation": org}
            )
            key = roles[0] if org is None else f"{roles[0]}:{org}"
            tokens[key] = str(result["token"])
        except RemoteRefusal as refusal:
            if refusal.remote_code != "enrolment-duplicate":
                raise
    return tokens


async def admit_through_coco(
    operator: ComplianceClient,
    client_for: ClientFactory,
    organisation: str,
    *,
    tokens: dict[str, str] | None = None,
    valid_for_days: float | None = None,
) -> dict[str, Any]:
    """Draft, sign off, assess and approve a statement for ``organisation``.

    ``operator`` is an operator's client (already entered); ``client_for``
    makes a client for another token. Returns the certificate of compliance
    and the tokens used, so a later renewal can reuse the same people.
    """
    tokens = {**(tokens or {}), **(await _accounts(operator, organisation))}
    catalogue = await operator.compliance("GET", "/catalogues")
    version = next(c["version"] for c in catalogue if c["current"])
    controls = (await operator.compliance("GET", f"/catalogues/{version}"))["controls"]

    async with client_for(tokens[f"security-officer:{organisation}"]) as officer:
        statement = await officer.compliance("POST", "/statements", {"organisation": organisation})
        sid = statement["id"]
        for control in controls:
            answer = {"answer": f"[demo, synthetic] {control['model_answer']}"}
            if control.get("choices"):
                # A structured question counts as answered only with a choice.
                answer["choice"] = control["choices"]["options"][0]["value"]
            await officer.compliance("PUT", f"/statements/{sid}/answers/{control['id']}", answer)
        await officer.compliance("POST", f"/statements/{sid}/request-sign-off", {})
    async with client_for(tokens[f"sign-off:{organisation}"]) as signer:
        await signer.compliance("POST", f"/statements/{sid}/sign-off", {})
    async with client_for(tokens["assessor"]) as assessor:
        assessment = await assessor.compliance("POST", f"/statements/{sid}/assessments", {})
        for control in controls:
            await assessor.compliance(
                "PUT",
                f"/assessments/{assessment['id']}/results/{control['id']}",
                {"result": "compliant", "reason": "Demo: matches the model answer."},
            )
        await assessor.compliance("POST", f"/assessments/{assessment['id']}/complete", {})
    body: dict[str, Any] = {"reason": "demo network: Code of Connection met"}
    if valid_for_days is not None:
        body["valid_for_days"] = valid_for_days
    approved = await operator.compliance("POST", f"/statements/{sid}/approve", body)
    return {"statement": sid, "certificate": approved, "tokens": tokens}


async def admit_all(
    operator: ComplianceClient,
    client_for: ClientFactory,
    organisations: list[str],
    *,
    tokens: dict[str, str] | None = None,
) -> dict[str, str]:
    """Admit several organisations; returns the tokens to pass to later calls.

    Pass the tokens an earlier call returned when admitting more organisations
    on the same network: the demo assessor exists by then, and its token is
    shown only once, when it is made.
    """
    tokens = dict(tokens or {})
    for organisation in organisations:
        tokens = (await admit_through_coco(operator, client_for, organisation, tokens=tokens))[
            "tokens"
        ]
    return tokens


async def lapse_by_expiry(
    operator: ComplianceClient,
    client_for: ClientFactory,
    organisation: str,
    *,
    tokens: dict[str, str],
    seconds: float = 5.0,
    wait: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> dict[str, Any]:
    """Let ``organisation``'s approval truly lapse, in seconds rather than a year.

    The organisation is taken through the Code of Connection again and
    approved for ``seconds`` only (an operator may approve for a shorter term
    than the network's default); once that passes, a sweep records the lapse
    and publishes a directory without it. Needs a zero grace period on the
    demo network (:func:`write_demo_settings`), or the organisation would
    stay connected through its grace period.
    """
    result = await admit_through_coco(
        operator, client_for, organisation, tokens=tokens, valid_for_days=seconds / 86400
    )
    await wait(seconds + 0.5)
    swept = await operator.compliance("POST", "/sweep", {})
    if organisation not in swept["lapsed"]:
        raise AssertionError(f"{organisation} did not lapse: {swept}")
    return result


async def withdraw_approval(operator: ComplianceClient, organisation: str) -> dict[str, Any]:
    """Withdraw ``organisation``'s approval at once (the operator's immediate form of lapse)."""
    result = await operator.compliance(
        "POST",
        f"/organisations/{organisation}/withdraw",
        {"reason": "demo: approval withdrawn to show its gateway being refused"},
    )
    return dict(result)


async def expect_refused(ping: Callable[[], Awaitable[Any]], *, attempts: int = 40) -> str:
    """Retry ``ping`` until it is refused (gateways pick up the new directory on their poll)."""
    for _ in range(attempts):
        try:
            await ping()
        except (RemoteRefusal, PeerRefused, PeerUnreachable) as refusal:
            code = getattr(refusal, "remote_code", None) or refusal.code
            return f"refused [{code}]"
        await asyncio.sleep(0.5)
    raise AssertionError("the lapsed organisation was still reachable")


def write_demo_settings(central_home: Path, *, grace_period_days: float = 0.0) -> None:
    """A ``compliance.toml`` for the demo network: no grace period, so a lapse is immediate."""
    write_private(
        central_home / "compliance.toml", f"grace_period_days = {grace_period_days}\n".encode()
    )
