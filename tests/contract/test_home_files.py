"""Everything central and a gateway write in their homes is 0600 (folders 0700), whatever the umask.

Each kind of file is written by the code that writes it in service:
settings, keys and the passphrase, anchor and certificates, enrolment state,
the database (with its WAL on SQLite), envelope blobs, tus uploads, transfer
chunks, Code of Connection evidence and settings. The umask is set to the
usual 022 and to the 000 some containers run with; neither may leak.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gcx.central.home import init_central, load_keys
from gcx.central.service import CentralService
from gcx.clock import FixedClock
from gcx.config import CentralConfig, GatewayConfig
from gcx.gateway.home import create_gateway_home, store_certificates
from gcx.gateway.runtime import Gateway
from gcx.gateway.transfers.policy import transfer_files
from gcx.private_files import check_private
from gcx.reference.demo_path import write_demo_settings
from gcx.store import open_database
from gcx.store.blobs import FileBlobStore
from gcx.store.db import sqlite_files

ORG = "E09000030"


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """Sets the process umask for the test and restores it afterwards."""
    previous = os.umask(request.param)
    try:
        yield int(request.param)
    finally:
        os.umask(previous)


def _modes(home: Path) -> dict[str, int]:
    """Every folder and file under the home, by relative path, with its permission bits."""
    found = {".": stat.S_IMODE(home.stat().st_mode)}
    for folder, folders, files in os.walk(home):
        for name in [*folders, *files]:
            path = Path(folder) / name
            found[str(path.relative_to(home))] = stat.S_IMODE(path.stat().st_mode)
    return found


def _assert_private(home: Path, expected: set[str]) -> None:
    modes = _modes(home)
    assert expected <= set(modes), f"not written: {sorted(expected - set(modes))}"
    shared = {
        name: f"{mode:04o}"
        for name, mode in modes.items()
        if mode != (0o700 if (home / name).is_dir() else 0o600)
    }
    assert not shared, f"not owner-only in {home.name}: {shared}"


def test_every_file_in_both_homes_is_owner_only(
    umask: int,
    database_backend: str,
    database_url_factory: Callable[[str], str],
    tmp_path: Path,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Central's and a gateway's homes hold only 0600 files in 0700 folders after real writes."""
    monkeypatch.delenv("GCX_KEY_PASSPHRASE", raising=False)
    on_sqlite = database_backend == "sqlite"

    def url(name: str) -> str:
        return "" if on_sqlite else database_url_factory(name)

    central_home = tmp_path / "net" / "central"
    config: CentralConfig = init_central(
        central_home, "test-net", now=clock.now(), database_url=url("central")
    )
    dataclasses.replace(config, web_port=8444, require_compliance=False).save()
    config = CentralConfig.load(central_home)
    write_demo_settings(central_home)
    FileBlobStore(central_home / "evidence").put("statements/1/evidence-1", b"a policy")
    central_db = open_database(config.db_url)
    service = CentralService(config, central_db, load_keys(config), clock)
    gateway: Gateway | None = None
    try:
        service.add_organisation("alice", ORG, "Tower Hamlets", "local-authority", [])
        gateway_home = tmp_path / "net" / "tower-hamlets"
        gateway_config, request = create_gateway_home(
            gateway_home,
            name="tower-hamlets",
            organisations=[ORG],
            central_url=config.url,
            anchor=central_home / "anchor.pem",
            database_url=url("gateway"),
        )
        open_database(gateway_config.db_url).dispose()  # as `gcx gateway init` does
        enrolment = service.submit_enrolment(
            request["csr"].encode(), request["peer_address"], request["organisation_keys"]
        )
        store_certificates(
            gateway_config, service.approve_enrolment("alice", enrolment["id"], "admitted")
        )
        dataclasses.replace(gateway_config, web_port=8081).save()
        gateway = Gateway.open(GatewayConfig.load(gateway_home), clock)
        gateway.record(actor="test", action="test.written", subject="call-log")
        gateway.blobs.put("envelopes/0a1b/part-0", b"ciphertext")
        files = transfer_files(gateway)
        upload, outgoing, incoming, kept = (secrets.token_hex(16) for _ in range(4))
        files.create_upload(upload)
        files.keep_uploads(kept, [upload], "sealed content key")
        files.write_chunk("out", outgoing, 0, b"sealed chunk", 1 << 20)
        files.write_chunk("incoming", incoming, 0, b"received chunk", 1 << 20)
        files.publish(incoming)

        database = {"central.db", "central.db-wal", "central.db-shm"} if on_sqlite else set()
        _assert_private(
            central_home,
            {
                "central.toml",
                "compliance.toml",
                "secrets/key-passphrase",
                "root.key",
                "anchor.pem",
                "tls.key",
                "tls.pem",
                "evidence/statements/1/evidence-1",
                *database,
            },
        )
        database = {"gateway.db", "gateway.db-wal", "gateway.db-shm"} if on_sqlite else set()
        _assert_private(
            gateway_home,
            {
                "gateway.toml",
                "secrets/key-passphrase",
                "anchor.pem",
                "tls.key",
                "tls.pem",
                f"orgs/{ORG}/signing.key",
                f"orgs/{ORG}/encryption.key",
                f"orgs/{ORG}/signing.pem",
                "enrolment.json",
                "blobs/envelopes/0a1b/part-0",
                f"blobs/transfers/uploads/{upload}",
                f"blobs/transfers/out/{outgoing}/chunks",
                f"blobs/transfers/out/{kept}/file-0",
                f"blobs/transfers/out/{kept}/key",
                f"blobs/transfers/received/{incoming}/chunks",
                *database,
            },
        )
        assert stat.S_IMODE((tmp_path / "net").stat().st_mode) == 0o700, "a parent made for it"
        check_private(central_home, also=sqlite_files(config.db_url))
        check_private(gateway_home, also=sqlite_files(gateway_config.db_url))
    finally:
        if gateway is not None:
            gateway.close()
        central_db.dispose()
