"""vaezoo.data.download.fetch against a real local HTTP server (tests/data_server.py)."""

from __future__ import annotations

import hashlib
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_server import DataServer  # noqa: E402

from vaezoo.data import DataError, fetch  # noqa: E402

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # ~1 MiB, not a multiple of the read chunk
SHA = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()


@pytest.fixture
def server(tmp_path):
    with DataServer(tmp_path / "served") as srv:
        (srv.root / "blob.bin").write_bytes(PAYLOAD)
        yield srv


def test_fetch_verifies_sha256_and_renames(server, tmp_path, capsys):
    dest = tmp_path / "out" / "blob.bin"
    assert fetch(server.url("files", "blob.bin"), dest, sha256=SHA) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_suffix(".bin.part").exists()
    out = capsys.readouterr()
    assert out.out == ""  # progress goes to stderr only
    assert "blob.bin" in out.err


def test_fetch_verifies_md5(server, tmp_path):
    dest = tmp_path / "blob.bin"
    fetch(server.url("files", "blob.bin"), dest, md5=MD5, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_existing_verified_file_is_not_downloaded_again(server, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(PAYLOAD)
    fetch(server.url("files", "blob.bin"), dest, sha256=SHA, progress=False)
    assert server.log == []


def test_wrong_checksum_deletes_part_and_names_both_digests(server, tmp_path):
    dest = tmp_path / "blob.bin"
    wrong = "0" * 64
    with pytest.raises(DataError) as err:
        fetch(server.url("files", "blob.bin"), dest, sha256=wrong, progress=False)
    msg = str(err.value)
    assert "blob.bin" in msg and wrong in msg and SHA in msg
    assert "\n" not in msg
    assert not dest.exists()
    assert not dest.with_suffix(".bin.part").exists()


def test_truncated_transfer_raises_and_keeps_part_then_resumes(server, tmp_path):
    dest = tmp_path / "blob.bin"
    part = dest.with_suffix(".bin.part")
    with pytest.raises(DataError, match="truncated"):
        fetch(server.url("cut1000", "blob.bin"), dest, sha256=SHA, progress=False)
    assert not dest.exists()
    assert part.read_bytes() == PAYLOAD[:1000]

    # A second, truncated resume: the part grows by what arrived.
    with pytest.raises(DataError, match="truncated"):
        fetch(server.url("cut5000", "blob.bin"), dest, sha256=SHA, progress=False)
    assert part.read_bytes() == PAYLOAD[:6000]

    fetch(server.url("files", "blob.bin"), dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert not part.exists()
    # The last request asked for the rest only and got 206.
    path, rng, status = server.log[-1]
    assert rng == "bytes=6000-" and status == 206


def test_server_that_ignores_range_restarts_from_zero(server, tmp_path):
    dest = tmp_path / "blob.bin"
    part = dest.with_suffix(".bin.part")
    part.write_bytes(b"x" * 777)  # garbage: appending the full file to it would fail the checksum
    fetch(server.url("norange", "blob.bin"), dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.log[-1][1:] == ("bytes=777-", 200)


def test_corrupt_partial_data_fails_checksum_and_is_removed(server, tmp_path):
    dest = tmp_path / "blob.bin"
    part = dest.with_suffix(".bin.part")
    part.write_bytes(b"x" * 777)  # the server honours Range, so these bytes stay in the file
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch(server.url("files", "blob.bin"), dest, sha256=SHA, progress=False)
    assert not part.exists() and not dest.exists()
    # ... and the next attempt starts clean and succeeds.
    fetch(server.url("files", "blob.bin"), dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_complete_part_file_gets_416_and_is_accepted(server, tmp_path):
    dest = tmp_path / "blob.bin"
    dest.with_suffix(".bin.part").write_bytes(PAYLOAD)
    fetch(server.url("files", "blob.bin"), dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.log[-1][2] == 416


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_urls_are_tried_in_order(server, tmp_path):
    dest = tmp_path / "blob.bin"
    urls = [
        f"http://127.0.0.1:{_closed_port()}/files/blob.bin",  # connection refused
        server.url("missing", "blob.bin"),  # 404
        server.url("files", "blob.bin"),
    ]
    fetch(urls, dest, sha256=SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_all_urls_failing_is_one_dataerror(server, tmp_path):
    dest = tmp_path / "blob.bin"
    with pytest.raises(DataError) as err:
        fetch([server.url("missing", "blob.bin"), server.url("missing", "blob.bin")], dest, progress=False)
    assert "404" in str(err.value) and "\n" not in str(err.value)
    assert not dest.exists()


def test_concurrent_fetches_of_one_file_download_it_once(server, tmp_path):
    import threading

    dest = tmp_path / "blob.bin"
    results, errors = [], []

    def worker():
        try:
            results.append(fetch(server.url("files", "blob.bin"), dest, sha256=SHA, progress=False))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors and len(results) == 4
    assert dest.read_bytes() == PAYLOAD
    assert len(server.log) == 1  # the others waited on the lock and found the verified file
