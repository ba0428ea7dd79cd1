"""Bulk file transfer between real gateway processes over real mutual TLS, on both databases.

DWP (gateway ``dwp``) sends batches to Tower Hamlets (``tower-hamlets``):
tus upload to its own gateway, encryption into chunks, offer, chunks,
completion, signed receipts; then the council downloads and checks. The
refusals and faults of issue 4 are each pinned here at tens of MiB; the
1 GiB runs are ``bench/faults.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from gcx import crypto
from gcx.gateway.transfers.upload_checkpoints import CHECKPOINT_BYTES
from gcx.localnet import GatewayProcess, LocalNetwork
from gcx.store import Database
from gcx.store.db import _MIGRATIONS

from .conftest import NetworkFactory
from .fault_gateway import fault_program, waiting_marker
from .netutil import HTTP_TIMEOUT, audit_log, eventually, http, log_tails, tus_upload

pytestmark = pytest.mark.asyncio(loop_scope="module")

COUNCIL = "E09000030"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def network(network_factory: NetworkFactory) -> LocalNetwork:
    return network_factory(name="transfers")


def _cli(network: LocalNetwork, gateway: str, *args: str, timeout: float = 120) -> Any:
    process = network.gateways[gateway]
    return subprocess.run(
        [sys.executable, "-m", "gcx.cli.main", "file", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={
            **os.environ,
            "GCX_API_URL": process.config.api_url,
            "GCX_TOKEN": process.token,
            "XDG_STATE_HOME": str(network.root / "cli-state"),
        },
    )


def _file(directory: Path, name: str, size: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with path.open("wb") as handle:
        left = size
        while left:
            block = os.urandom(min(left, 4 * MIB))
            handle.write(block)
            left -= len(block)
    return path


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(MIB):
            digest.update(block)
    return digest.hexdigest()


async def _status(network: LocalNetwork, gateway: str, transfer_id: str) -> dict[str, Any]:
    process = network.gateways[gateway]
    status, body, _ = await http(
        "GET", f"{process.config.api_url}/api/v1/transfers/{transfer_id}", token=process.token
    )
    assert status == 200, f"status answered {status}: {body}"
    return dict(body)


async def _wait_complete(
    network: LocalNetwork, transfer_id: str, timeout: float = 90
) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        body = await _status(network, "dwp", transfer_id)
        assert body["state"] == "complete", f"state {body['state']}: {body['deliveries']}"
        return body

    try:
        return await eventually(probe, timeout=timeout, what=f"transfer {transfer_id} receipted")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_tails(network)}") from None


def _send(network: LocalNetwork, *paths: Path, to: str = COUNCIL, wait: bool = False) -> Any:
    args = ["send", "--to", to, "--marking", "OFFICIAL-SENSITIVE", "--json"]
    if wait:
        args += ["--wait", "--timeout", "120"]
    result = _cli(network, "dwp", *args, *(str(p) for p in paths))
    return result


def _get_and_check(network: LocalNetwork, transfer_id: str, out: Path, sources: list[Path]) -> None:
    result = _cli(network, "tower-hamlets", "get", transfer_id, "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    got = {Path(f["path"]).name: f["sha256"] for f in json.loads(result.stdout)["files"]}
    assert got == {p.name: _sha(p) for p in sources}
    for source in sources:
        assert _sha(out / source.name) == _sha(source)


async def test_batch_is_delivered_receipted_and_downloaded(
    network: LocalNetwork, tmp_path: Path
) -> None:
    """A folder of files (one empty, one spanning chunks) arrives whole with a receipt per file."""
    folder = tmp_path / "batch"
    sources = [
        _file(folder, "index.xml", 10_000),
        _file(folder, "claims.pdf", 3 * MIB + 5),
        _file(folder, "empty.txt", 0),
    ]
    result = _send(network, folder, wait=True)
    assert result.returncode == 0, result.stderr + log_tails(network)
    status = json.loads(result.stdout)
    assert status["state"] == "complete"
    (receipt,) = status["receipts"]
    payload = json.loads(base64.b64decode(json.loads(receipt["document"])["payload"]))
    assert payload["recipient"] == COUNCIL
    assert {f["name"]: f["sha256"] for f in payload["files"]} == {p.name: _sha(p) for p in sources}
    _get_and_check(network, status["id"], tmp_path / "out", sources)


async def test_recipient_outside_directory_is_refused_before_any_upload(
    network: LocalNetwork, tmp_path: Path
) -> None:
    """An unknown organisation is refused by the preflight; no upload is created."""
    source = _file(tmp_path, "a.csv", 1000)
    with audit_log(network.gateways["dwp"].config.db_url) as log:
        before = len(log.entries("upload.created"))
        result = _send(network, source, to="E09999999")
        assert result.returncode == 2
        assert "transfer-refused" in result.stderr
        assert len(log.entries("upload.created")) == before


@pytest.mark.parametrize("name", ["../../etc/passwd", "bad\x07name.txt", "CON", "nul.txt"])
async def test_unsafe_file_names_are_refused(network: LocalNetwork, name: str) -> None:
    """Paths, control characters and reserved device names are refused at upload creation."""
    status, body = await _post_upload(network.gateways["dwp"], f"filename {_b64(name)}")
    assert status == 400, body
    assert body["code"] == "attachment-refused"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("files", ["0", "abc", "\u00b2", "-1", "10001"])
async def test_a_batch_size_that_is_not_a_number_of_files_is_refused(
    network: LocalNetwork, files: str
) -> None:
    metadata = f"filename {_b64('a.bin')},gcx-files {_b64(files)}"
    status, body = await _post_upload(network.gateways["dwp"], metadata)
    assert (status, body["code"]) == (400, "input-invalid"), body
    assert "gcx-files" in body["message"]


BATCH = "0123456789abcdef" * 2


@pytest.mark.parametrize(
    "place",
    [
        {"gcx-files": "2", "gcx-batch": BATCH},  # without its index
        {"gcx-files": "2", "gcx-index": "0"},  # an index without its batch
        {"gcx-files": "2", "gcx-batch": BATCH, "gcx-index": "2"},  # past the batch's end
        {"gcx-files": "2", "gcx-batch": BATCH, "gcx-index": "-1"},
        {"gcx-files": "2", "gcx-batch": BATCH.upper(), "gcx-index": "0"},
        {"gcx-files": "2", "gcx-batch": "../" + BATCH[3:], "gcx-index": "0"},
        {"gcx-batch": BATCH, "gcx-index": "1"},  # a batch of one has only place 0
    ],
)
async def test_a_batch_place_that_does_not_fit_its_batch_is_refused(
    network: LocalNetwork, place: dict[str, str]
) -> None:
    metadata = ",".join(
        [f"filename {_b64('a.bin')}", *(f"{k} {_b64(v)}" for k, v in place.items())]
    )
    status, body = await _post_upload(network.gateways["dwp"], metadata)
    assert (status, body["code"]) == (400, "input-invalid"), body
    assert "gcx-batch" in body["message"]


async def _post_upload(process: GatewayProcess, metadata: str) -> tuple[int, Any]:
    """POST /api/v1/uploads for a 10-byte upload with ``metadata``: the status and body."""
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
        session.post(
            f"{process.config.api_url}/api/v1/uploads",
            headers={
                "Authorization": f"Bearer {process.token}",
                "Tus-Resumable": "1.0.0",
                "Upload-Length": "10",
                "Upload-Metadata": metadata,
            },
        ) as response,
    ):
        return response.status, await response.json() if response.status != 201 else {}


async def test_uploads_sealed_as_they_arrive_are_kept_and_others_sealed_into_chunks(
    network: LocalNetwork, tmp_path: Path
) -> None:
    """A lone upload, and the files of a batch that names itself (gcx-batch, gcx-index),
    are sealed as they arrive and kept as the transfer's files with its content key sealed
    to the sender (no ciphertext written: chunks are made again when sent); a batch that
    only says its size (gcx-files) is sealed into a chunk file when the transfer is made.
    All arrive whole once their first chunk, held at the sender, is let go."""
    dwp = network.gateways["dwp"]
    gate = tmp_path / "release-first-chunks"
    network.stop_process(dwp.process)
    network.start_gateway(
        "dwp", program=fault_program(hold={"/peer/v1/transfers/*/chunks/0": gate})
    )
    await network.wait_for_gateway("dwp")
    try:
        data = {
            name: os.urandom(size) for name, size in [("a", 3 * MIB + 7), ("b", 2 * MIB), ("c", 5)]
        }
        alone = [await tus_upload(dwp, data["a"], f"filename {_b64('a')}")]
        place = f"gcx-files {_b64('2')},gcx-batch {_b64(BATCH)}"
        named = [
            await tus_upload(dwp, data[n], f"filename {_b64(n)},{place},gcx-index {_b64(str(i))}")
            for i, n in enumerate(["b", "c"])
        ]
        sized = [
            await tus_upload(dwp, data[n], f"filename {_b64(n)},gcx-files {_b64('2')}")
            for n in ["b", "c"]
        ]
        made = []
        for uploads in (alone, named, sized):
            status, body, _ = await http(
                "POST",
                f"{dwp.config.api_url}/api/v1/transfers",
                token=dwp.token,
                body={"to": [COUNCIL], "marking": "OFFICIAL", "uploads": uploads},
            )
            assert status == 201, body
            made.append(body["id"])
        out = dwp.home / "blobs" / "transfers" / "out"
        assert sorted(p.name for p in (out / made[0]).iterdir()) == ["file-0", "key"]
        assert (out / made[0] / "file-0").read_bytes() == data["a"]
        assert sorted(p.name for p in (out / made[1]).iterdir()) == ["file-0", "file-1", "key"]
        assert (out / made[1] / "file-1").read_bytes() == data["c"]
        assert sorted(p.name for p in (out / made[2]).iterdir()) == ["chunks"]
        assert not list((dwp.home / "blobs" / "transfers" / "uploads").iterdir())
        gate.touch()
        for name, content in data.items():
            (tmp_path / name).write_bytes(content)
        for transfer_id, names in zip(made, (["a"], ["b", "c"], ["b", "c"]), strict=True):
            await _wait_complete(network, transfer_id)
            _get_and_check(
                network, transfer_id, tmp_path / transfer_id, [tmp_path / n for n in names]
            )

        async def kept_files_gone() -> None:
            assert not (out / made[0]).exists() and not (out / made[1]).exists()

        await eventually(kept_files_gone, timeout=30, what="kept files deleted once delivered")
    finally:
        gate.touch()
        network.stop_process(dwp.process)
        network.start_gateway("dwp")
        await network.wait_for_gateway("dwp")


async def test_empty_batch_is_refused(network: LocalNetwork) -> None:
    """A transfer with no uploads is refused with transfer-empty."""
    process = network.gateways["dwp"]
    status, body, _ = await http(
        "POST",
        f"{process.config.api_url}/api/v1/transfers",
        token=process.token,
        body={"to": [COUNCIL], "marking": "OFFICIAL", "uploads": []},
    )
    assert (status, body["code"]) == (422, "transfer-empty")


async def test_file_and_batch_over_quota_are_refused(network: LocalNetwork, tmp_path: Path) -> None:
    """An admin-set per-file and per-batch limit refuses larger sends with quota-exceeded."""
    process = network.gateways["dwp"]
    url = f"{process.config.api_url}/api/v1/transfers/policy"
    status, body, _ = await http(
        "PUT",
        url,
        token=process.admin_token,
        body={"max_file_bytes": MIB, "max_batch_bytes": 2 * MIB},
    )
    assert status == 200, body
    try:
        big = _file(tmp_path, "big.bin", MIB + 1)
        result = _send(network, big)
        assert result.returncode == 2 and "quota-exceeded" in result.stderr, result.stderr
        parts = [_file(tmp_path / "b", f"p{i}.bin", MIB) for i in range(3)]
        result = _send(network, *parts)
        assert result.returncode == 2 and "quota-exceeded" in result.stderr, result.stderr
    finally:
        await http(
            "PUT",
            url,
            token=process.admin_token,
            body={"max_file_bytes": None, "max_batch_bytes": None},
        )


async def test_tus_upload_resumes_from_the_recorded_offset(
    network: LocalNetwork, tmp_path: Path
) -> None:
    """A PATCH that stops half-way keeps its bytes; HEAD reports them; the rest appends.

    The first PATCH ends off any 4 KiB boundary and past the 4 MiB the gateway hands
    to its disk thread at a time (aligned writes around the page cache), so the
    second starts mid-block: the file sent from the upload is exactly the bytes given.
    """
    process = network.gateways["dwp"]
    api = process.config.api_url
    auth = {"Authorization": f"Bearer {process.token}", "Tus-Resumable": "1.0.0"}
    data = os.urandom(9 * MIB + 12_345)
    first = 5 * MIB + 100_003
    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        async with session.post(
            f"{api}/api/v1/uploads",
            headers={
                **auth,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": "filename YS5iaW4=",
            },
        ) as response:
            assert response.status == 201
            location = response.headers["Location"]
        patch = {**auth, "Content-Type": "application/offset+octet-stream"}
        async with session.patch(
            api + location, data=io.BytesIO(data[:first]), headers={**patch, "Upload-Offset": "0"}
        ) as response:
            assert response.status == 204
        async with session.patch(
            api + location, data=data[:10], headers={**patch, "Upload-Offset": "5"}
        ) as response:
            assert (response.status, (await response.json())["code"]) == (
                409,
                "upload-offset-mismatch",
            )
        async with session.head(api + location, headers=auth) as response:
            assert response.headers["Upload-Offset"] == str(first)
        async with session.patch(
            api + location,
            data=io.BytesIO(data[first:]),
            headers={**patch, "Upload-Offset": str(first)},
        ) as response:
            assert response.headers["Upload-Offset"] == str(len(data))
        # An upload ended with DELETE is gone: its offset is no longer given.
        ended = "/api/v1/uploads/" + await tus_upload(process, b"abc")
        async with session.delete(api + ended, headers=auth) as response:
            assert response.status == 204
        async with session.head(api + ended, headers=auth) as response:
            assert response.status == 404
    # A second upload makes a batch, which is sealed from the upload files
    # themselves (a lone upload's chunks were sealed as its bytes arrived).
    other = await tus_upload(process, b"end", "filename Yi5iaW4=")
    uploads = [location.rsplit("/", 1)[1], other]
    status, made, _ = await http(
        "POST",
        f"{api}/api/v1/transfers",
        token=process.token,
        body={"to": [COUNCIL], "marking": "OFFICIAL", "uploads": uploads},
    )
    assert status == 201, made
    await _wait_complete(network, made["id"])
    (tmp_path / "a.bin").write_bytes(data)
    (tmp_path / "b.bin").write_bytes(b"end")
    sources = [tmp_path / "a.bin", tmp_path / "b.bin"]
    _get_and_check(network, made["id"], tmp_path / "out", sources)


async def test_a_long_patch_is_durable_as_it_arrives_and_resumes_after_a_kill(
    network: LocalNetwork, tmp_path: Path
) -> None:
    """A PATCH longer than a checkpoint records its offset while it is still arriving;
    SIGKILLed with the PATCH open, the restarted gateway reports the last checkpoint,
    and the upload finished from there is exactly the bytes given."""
    process = network.gateways["dwp"]
    api = process.config.api_url
    auth = {"Authorization": f"Bearer {process.token}", "Tus-Resumable": "1.0.0"}
    # The gateway writes in batches of 4 to 5 MiB (whole pieces of up to 1 MiB), so
    # half a checkpoint more than one is sure to see the first written.
    sent = CHECKPOINT_BYTES + CHECKPOINT_BYTES // 2
    data = os.urandom(sent + MIB + 4321)
    release = asyncio.Event()

    async def first_part() -> Any:
        # Everything but the last 1 MiB and 4321 bytes, then the PATCH stays open.
        for start in range(0, sent, MIB):
            yield data[start : start + MIB]
        await release.wait()

    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        async with session.post(
            f"{api}/api/v1/uploads",
            headers={
                **auth,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": "filename Yy5iaW4=",
            },
        ) as response:
            assert response.status == 201
            location = response.headers["Location"]
        patch = {**auth, "Content-Type": "application/offset+octet-stream"}
        patching = asyncio.ensure_future(
            session.patch(
                api + location,
                data=first_part(),
                headers={**patch, "Upload-Offset": "0", "Content-Length": str(len(data))},
            )
        )

        async def checkpointed() -> int:
            async with session.head(api + location, headers=auth) as response:
                offset = int(response.headers["Upload-Offset"])
            assert offset >= CHECKPOINT_BYTES, f"offset {offset}"
            return offset

        try:
            await eventually(checkpointed, timeout=60, what="a checkpoint inside the PATCH")
            assert process.process is not None
            os.killpg(process.process.pid, signal.SIGKILL)
            process.process.wait(timeout=10)
        finally:
            release.set()
            with contextlib.suppress(aiohttp.ClientError):
                (await patching).release()
        network.start_gateway("dwp")
        await network.wait_for_gateway("dwp")
        async with session.head(api + location, headers=auth) as response:
            held = int(response.headers["Upload-Offset"])
        # Not the PATCH's start, not past what was sent: a checkpoint it made.
        assert CHECKPOINT_BYTES <= held <= sent
        async with session.patch(
            api + location,
            data=io.BytesIO(data[held:]),
            headers={**patch, "Upload-Offset": str(held)},
        ) as response:
            assert response.status == 204
            assert response.headers["Upload-Offset"] == str(len(data))
    status, made, _ = await http(
        "POST",
        f"{api}/api/v1/transfers",
        token=process.token,
        body={"to": [COUNCIL], "marking": "OFFICIAL", "uploads": [location.rsplit("/", 1)[1]]},
    )
    assert status == 201, made
    await _wait_complete(network, made["id"])
    (tmp_path / "c.bin").write_bytes(data)
    _get_and_check(network, made["id"], tmp_path / "out", [tmp_path / "c.bin"])


async def test_changed_chunk_is_detected_and_sent_again(
    network: LocalNetwork, tmp_path: Path
) -> None:
    """A chunk with a flipped byte is refused by the receiver, re-sent, and the file is intact."""
    dwp = network.gateways["dwp"]
    network.stop_process(dwp.process)
    network.start_gateway("dwp", program=fault_program(corrupt_chunk=2))
    await network.wait_for_gateway("dwp")
    source = _file(tmp_path, "corrupt-me.bin", 5 * MIB)
    result = _send(network, source, wait=True)
    assert result.returncode == 0, result.stderr + log_tails(network)
    transfer_id = json.loads(result.stdout)["id"]
    with audit_log(network.gateways["tower-hamlets"].config.db_url) as log:
        refused = [e for e in log.entries("transfer.chunk-refused") if e.subject == transfer_id]
        assert [e.details_dict["chunk"] for e in refused] == [2]
    _get_and_check(network, transfer_id, tmp_path / "out", [source])
    # Back to a gateway without fault injection for the tests that follow.
    network.stop_process(dwp.process)
    network.start_gateway("dwp")
    await network.wait_for_gateway("dwp")


async def _kill_mid_transfer(
    network: LocalNetwork, tmp_path: Path, victim: str, size: int
) -> tuple[str, Path]:
    """Send with one chunk held back at the sender, SIGKILL ``victim`` once the receiver holds
    some chunks (it cannot complete while that chunk is held), restart it."""
    dwp = network.gateways["dwp"]
    gate = tmp_path / f"release-{victim}"
    network.stop_process(dwp.process)
    # A chunk half-way through the file (20 of 40 with 1 MiB segments).
    middle = crypto.segment_count(size, dwp.config.transfer_segment_bytes) // 2
    program = fault_program(hold={f"/peer/v1/transfers/*/chunks/{middle}": gate})
    network.start_gateway("dwp", program=program)
    await network.wait_for_gateway("dwp")
    source = _file(tmp_path, f"kill-{victim}.bin", size)
    result = await asyncio.to_thread(_send, network, source)
    assert result.returncode == 0, result.stderr
    transfer_id = json.loads(result.stdout)["id"]
    incoming = network.gateways["tower-hamlets"].home / "blobs" / "transfers" / "incoming"

    async def some_held() -> None:
        # The chunks are slots of one sparse file: the disk it takes counts those written.
        chunks = incoming / transfer_id / "chunks"
        held = chunks.stat().st_blocks * 512 // MIB if chunks.exists() else 0
        assert waiting_marker(gate).exists(), f"chunk {middle} not yet held at the sender"
        assert held >= 5, f"{held} chunks held"

    await eventually(some_held, timeout=60, what="receiver holding some chunks")
    process = network.gateways[victim].process
    assert process is not None
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    network.start_gateway(victim)
    await network.wait_for_gateway(victim)
    return transfer_id, source


@pytest.mark.parametrize("victim", ["tower-hamlets", "dwp"])
async def test_gateway_killed_mid_transfer_completes_once_with_the_right_hash(
    network: LocalNetwork, tmp_path: Path, victim: str
) -> None:
    """SIGKILL of the receiver or the sender mid-transfer: it resumes, completes once, intact."""
    size = 40 * MIB
    transfer_id, source = await _kill_mid_transfer(network, tmp_path, victim, size)
    if victim == "tower-hamlets":
        # The sender still holds the middle chunk back; restart it without faults to finish.
        network.stop_process(network.gateways["dwp"].process)
        network.start_gateway("dwp")
        await network.wait_for_gateway("dwp")
    await _wait_complete(network, transfer_id)
    with audit_log(network.gateways["tower-hamlets"].config.db_url) as log:
        received = [e for e in log.entries("transfer.received") if e.subject == transfer_id]
        assert len(received) == 1
    with audit_log(network.gateways["dwp"].config.db_url) as log:
        answers = [
            e.details_dict["missing"]
            for e in log.entries("transfer.offer-answered")
            if e.subject == transfer_id
        ]
    # Resumed from what the receiver held, not from zero.
    chunks = crypto.segment_count(size, network.gateways["dwp"].config.transfer_segment_bytes)
    assert answers[0] == chunks and min(answers[1:]) < chunks, answers
    _get_and_check(network, transfer_id, tmp_path / "out", [source])


async def test_full_disk_stops_with_a_clear_status_and_resumes_when_freed(
    network: LocalNetwork, tmp_path: Path
) -> None:
    """The receiver's transfer area on a 24 MiB tmpfs (a real full disk, not a quota): a 16 MiB
    transfer waits while a filler occupies the space, nothing is published, and it completes
    once the filler is removed."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    council = network.gateways["tower-hamlets"]
    area = council.home / "blobs" / "transfers"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(area)], check=True)
    try:
        filler = area / ".filler"
        with filler.open("wb") as handle:
            handle.write(b"\0" * (20 * MIB))
        source = _file(tmp_path, "full.bin", 16 * MIB)
        result = await asyncio.to_thread(_send, network, source)
        assert result.returncode == 0, result.stderr
        transfer_id = json.loads(result.stdout)["id"]

        async def waiting_for_space() -> str:
            body = await _status(network, "dwp", transfer_id)
            (delivery,) = body["deliveries"]
            assert (delivery["last_error"] or {}).get("code") == "storage-full", delivery
            return str(delivery["last_error"]["message"])

        await eventually(waiting_for_space, timeout=90, what="sender reporting storage-full")
        assert not (area / "received" / transfer_id).exists()
        filler.unlink()
        await _wait_complete(network, transfer_id)
        _get_and_check(network, transfer_id, tmp_path / "out", [source])
    finally:
        subprocess.run(["umount", "-l", str(area)], check=False)


def _downgrade_to_0013(db_url: str) -> None:
    """Bring a stopped gateway's database back to the schema before the one exchange."""
    database = Database(db_url)
    try:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        with database.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0013_control_outbox")
    finally:
        database.dispose()


def _old_tables(db_url: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    database = Database(db_url)
    try:
        with database.engine.connect() as connection:
            waiting = connection.execute(
                sa.text("SELECT transfer_id, state FROM transfer_deliveries ORDER BY id")
            ).all()
            held = connection.execute(
                sa.text("SELECT transfer_id, direction FROM transfer_receipts ORDER BY id")
            ).all()
    finally:
        database.dispose()
    return [tuple(r) for r in waiting], [tuple(r) for r in held]


async def test_a_gateway_upgraded_in_place_finishes_the_work_its_old_schema_held(
    network: LocalNetwork, tmp_path: Path
) -> None:
    """The sender's database is taken back to migration 0013 (its own transfer delivery and
    receipt tables) while it holds a finished transfer and one still waiting for a receiver
    that is down; started again, the gateway upgrades it in place, keeps the finished one's
    receipts and delivers the waiting one, once and intact."""
    finished_source = _file(tmp_path, "finished.bin", 2 * MIB)
    result = await asyncio.to_thread(_send, network, finished_source, wait=True)
    assert result.returncode == 0, result.stderr
    finished = json.loads(result.stdout)["id"]

    council, dwp = network.gateways["tower-hamlets"], network.gateways["dwp"]
    network.stop_process(council.process)
    waiting_source = _file(tmp_path, "waiting.bin", 3 * MIB)
    result = await asyncio.to_thread(_send, network, waiting_source)
    assert result.returncode == 0, result.stderr
    waiting = json.loads(result.stdout)["id"]

    async def tried() -> None:
        (delivery,) = (await _status(network, "dwp", waiting))["deliveries"]
        assert delivery["state"] == "retrying", delivery

    await eventually(tried, timeout=60, what="the sender retrying while the receiver is down")
    network.stop_process(dwp.process)
    await asyncio.to_thread(_downgrade_to_0013, dwp.config.db_url)
    old_waiting, old_receipts = _old_tables(dwp.config.db_url)
    assert (waiting, "retrying") in old_waiting and (finished, "receipted") in old_waiting
    assert (finished, "out") in old_receipts

    network.start_gateway("tower-hamlets")
    network.start_gateway("dwp")
    await network.wait_for_gateway("tower-hamlets")
    await network.wait_for_gateway("dwp")
    done = await _wait_complete(network, waiting)
    assert [r["organisation"] for r in done["receipts"]] == [COUNCIL]
    kept = await _status(network, "dwp", finished)
    assert kept["state"] == "complete"
    assert [r["organisation"] for r in kept["receipts"]] == [COUNCIL]
    assert [d["state"] for d in kept["deliveries"]] == ["delivered"]
    with audit_log(council.config.db_url) as log:
        received = [e for e in log.entries("transfer.received") if e.subject == waiting]
    assert len(received) == 1
    _get_and_check(network, waiting, tmp_path / "out", [waiting_source])
