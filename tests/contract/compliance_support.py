"""A central with the Code of Connection, its people, and a quick path to approval, for tests."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gcx import crypto
from gcx.central.compliance import ComplianceService, Principal
from gcx.central.home import init_central, load_keys
from gcx.central.service import CentralService
from gcx.clock import FixedClock
from gcx.compliance.catalogue import Level
from gcx.gateway.home import create_gateway_home
from gcx.protocol.directory import PAYLOAD_TYPE, Directory
from gcx.store import Database
from gcx.store.blobs import FileBlobStore

PASSPHRASE = "correct horse battery staple 42"
ORG = "E09000030"
OTHER = "DWP"


@dataclass
class Network:
    central: CentralService
    coco: ComplianceService
    clock: FixedClock
    home: Path
    tmp: Path
    operator: Principal
    officer: Principal
    signer: Principal
    assessor: Principal
    assessor2: Principal

    def account(self, name: str, roles: list[str], organisation: str | None) -> Principal:
        token = self.coco.add_account(self.operator, name, roles, organisation)
        return self.coco.authenticate(token, request="test")

    def directory(self) -> Directory:
        root = load_keys(self.central.config).root_key.public
        payload = crypto.verify_document(
            self.central.latest_directory(), PAYLOAD_TYPE, {crypto.key_id(root): root}
        )
        return Directory.from_bytes(payload)

    def draft(self, organisation: str = ORG, officer: Principal | None = None) -> dict[str, Any]:
        officer = officer or self.officer
        statement = self.coco.create_statement(officer, organisation)
        for control in self.coco.current_catalogue().controls:
            # A structured question is answered by its choice (the first is "met").
            choice = control.choices.options[0].value if control.choices else None
            self.coco.answer(
                officer, statement["id"], control.id, answer=f"We meet {control.id}.", choice=choice
            )
        return statement

    def submitted(self, organisation: str = ORG) -> str:
        statement = self.draft(organisation)
        self.coco.request_sign_off(self.officer, statement["id"])
        self.coco.sign_off(self.signer, statement["id"])
        return str(statement["id"])

    def assessed(
        self,
        organisation: str = ORG,
        results: dict[str, str] | None = None,
        **complete: Any,
    ) -> str:
        statement_id = self.submitted(organisation)
        assessment = self.coco.start_assessment(self.assessor, statement_id)
        for control in self.coco.current_catalogue().controls:
            result = (results or {}).get(control.id, "compliant")
            self.coco.record_result(
                self.assessor, assessment["id"], control.id, result, f"Checked {control.id}."
            )
        self.coco.complete_assessment(self.assessor, assessment["id"], **complete)
        return statement_id

    def approved(self, organisation: str = ORG, **approve: Any) -> dict[str, Any]:
        statement_id = self.assessed(organisation)
        return self.coco.approve(self.operator, statement_id, "meets the code", **approve)

    def enrol(self, name: str, codes: list[str]) -> dict[str, Any]:
        _, request = create_gateway_home(
            self.tmp / name,
            name=name,
            organisations=codes,
            central_url="https://127.0.0.1:8443",
            anchor=self.home / "anchor.pem",
        )
        return self.central.submit_enrolment(
            request["csr"].encode(), request["peer_address"], request["organisation_keys"]
        )


@pytest.fixture
def network(
    database: Database, clock: FixedClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Network:
    monkeypatch.setenv("GCX_KEY_PASSPHRASE", PASSPHRASE)
    config = init_central(
        tmp_path / "central", "test-net", now=clock.now(), database_url=database.url
    )
    config = dataclasses.replace(config, require_compliance=True)
    central = CentralService(config, database, load_keys(config), clock)
    coco = ComplianceService(central, FileBlobStore(tmp_path / "blobs"))
    central.add_operator("olivia")
    operator = Principal("olivia", "operator", frozenset({"operator"}))
    central.add_organisation("olivia", ORG, "Tower Hamlets", "local-authority", [])
    central.add_organisation("olivia", OTHER, "DWP", "central-government", [])
    net = Network(central, coco, clock, config.home, tmp_path, operator, *(4 * [operator]))
    net.officer = net.account("isabel", ["security-officer"], ORG)
    net.signer = net.account("sam", ["sign-off"], ORG)
    net.assessor = net.account("alex", ["assessor"], None)
    net.assessor2 = net.account("blair", ["assessor"], None)
    return net


def days(n: float) -> dt.timedelta:
    return dt.timedelta(days=n)


__all__ = ["ORG", "OTHER", "Level", "Network", "days", "network"]
