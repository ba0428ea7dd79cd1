"""``gcx central web-user``: people added, listed, unlocked and reset from the command line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from gcx import crypto
from gcx.cli.web import open_accounts
from gcx.config import CentralConfig
from gcx.errors import SignInRefused
from gcx.store import open_database
from gcx.store.schema import gateway_flags

from .netutil import gcx

pytestmark = pytest.mark.integration


def test_people_are_added_listed_and_reset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GCX_KEY_PASSPHRASE", "a-passphrase-for-this-test-only")
    home = tmp_path / "central"
    assert gcx("central", "init", "--home", str(home), "--network", "t").returncode == 0

    added = gcx(
        "central", "web-user", "add", "--home", str(home),
        "--username", "lead.assessor", "--name", "Lead Assessor", "--role", "assessor",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    first = json.loads(added.stdout)
    assert first["totp_uri"].startswith("otpauth://totp/")

    listed = gcx("central", "web-user", "list", "--home", str(home))
    assert [(p["username"], p["roles"]) for p in json.loads(listed.stdout)] == [
        ("lead.assessor", ["assessor"])
    ]

    reset = gcx("central", "web-user", "reset", "--home", str(home), "--username", "lead.assessor")
    assert reset.returncode == 0, reset.stderr
    second = json.loads(reset.stdout)
    assert second["username"] == "lead.assessor"
    assert second["password"] != first["password"]
    assert second["totp_secret"] != first["totp_secret"]

    accounts = open_accounts("central", home)[0]
    try:
        with pytest.raises(SignInRefused):
            accounts.check_password("lead.assessor", first["password"])
        pending = accounts.check_password("lead.assessor", second["password"])
        secret = crypto.totp_secret_from_text(second["totp_secret"])
        cookie = accounts.check_code(pending, crypto.totp_code(secret, dt.datetime.now(dt.UTC)))
        assert accounts.session(cookie).user.roles == frozenset({"assessor"})
    finally:
        accounts.db.dispose()

    unknown = gcx("central", "web-user", "reset", "--home", str(home), "--username", "nobody")
    assert unknown.returncode == 2
    assert "[not-found]" in unknown.stderr and "no person called 'nobody'" in unknown.stderr
    assert unknown.stdout == "", "nothing that looks like new details is printed"


def test_the_operator_reads_each_gateways_audit_standing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCX_KEY_PASSPHRASE", "a-passphrase-for-this-test-only")
    home = tmp_path / "central"
    assert gcx("central", "init", "--home", str(home), "--network", "t").returncode == 0
    quiet = gcx("central", "gateway", "audit", "--home", str(home))
    assert quiet.returncode == 0, quiet.stderr
    assert "no gateway has lodged an audit checkpoint yet" in quiet.stdout

    central_db = open_database(CentralConfig.load(home).db_url)
    try:
        with central_db.transaction() as conn:
            conn.execute(
                gateway_flags.insert().values(
                    gateway="dwp",
                    code="consistency-proof-invalid",
                    reason="a tree of 5 entries does not extend 9",
                    flagged_at="2026-11-22T09:00:00.000000Z",
                )
            )
    finally:
        central_db.dispose()
    flagged = gcx("central", "gateway", "audit", "--home", str(home))
    assert flagged.returncode == 1, "a standing flag is a failure for scripts"
    assert "dwp  FLAGGED 2026-11-22T09:00:00.000000Z: a tree of 5 entries" in flagged.stdout
    as_json = json.loads(gcx("central", "gateway", "audit", "--home", str(home), "--json").stdout)
    assert as_json["dwp"]["flag"]["reason"] == "a tree of 5 entries does not extend 9"
