"""The local blob store keeps a BLAKE3 digest per blob and refuses a full read of damaged
bytes; ranged reads are left to the token blob's own tile digests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sightline.adapters.local_blobs import DIGESTS, LocalBlobStore
from sightline.errors import CorruptData

KEY = "org/p/videos/v1/derived/chunks/00000.mp4"


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_byte_is_refused_by_full_reads_and_reported_by_verify(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put_bytes(KEY, b"0123456789" * 100)
    assert store.verify(KEY) is True
    _flip(tmp_path / "blobs" / KEY)
    with pytest.raises(CorruptData, match="integrity"):
        store.get_bytes(KEY)
    with pytest.raises(CorruptData):
        store.download_file(KEY, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert store.verify(KEY) is False
    # A ranged read is not checked here (the token blob's tile digests are)
    assert store.get_bytes(KEY, (0, 3)) == b"0123"


def test_upload_records_the_digest_of_what_was_copied(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    src = tmp_path / "src"
    src.write_bytes(os.urandom(3 << 20))  # more than one copy block
    store.upload_file(src, KEY)
    assert store.verify(KEY) is True
    store.download_file(KEY, tmp_path / "back")
    assert (tmp_path / "back").read_bytes() == src.read_bytes()


def test_an_overwrite_interrupted_between_file_and_digest_never_looks_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put_bytes(KEY, b"old contents")
    # Given a crash right after the new file replaced the old one (before the old digest
    # was dropped): both digests are recorded, and the file verifies
    original = store._write_digest
    calls = []

    def crash_on_second(key: str, digests: list[str]) -> None:
        calls.append(digests)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process died here
        original(key, digests)

    monkeypatch.setattr(store, "_write_digest", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        store.put_bytes(KEY, b"new contents")
    monkeypatch.undo()
    assert store.get_bytes(KEY) == b"new contents" and store.verify(KEY) is True
    # And a crash before the file replaced the old one leaves the old file verifying
    monkeypatch.setattr(os, "replace", _fail_for(str(tmp_path / "blobs" / KEY)))
    with pytest.raises(OSError):
        store.put_bytes(KEY, b"newer contents")
    monkeypatch.undo()
    assert store.get_bytes(KEY) == b"new contents" and store.verify(KEY) is True


def _fail_for(target: str):  # type: ignore[no-untyped-def]
    real = os.replace

    def replace(src: str, dst: str) -> None:
        if str(dst) == target:
            raise OSError("disk full")
        real(src, dst)

    return replace


def test_blobs_written_before_digests_are_served_unverified(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put_bytes(KEY, b"data")
    (tmp_path / "blobs" / DIGESTS / f"{KEY}.b3").unlink()
    assert store.verify(KEY) is None
    assert store.get_bytes(KEY) == b"data"


def test_digests_are_not_keys_and_go_with_their_blobs(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    store.put_bytes(KEY, b"a")
    store.put_bytes("org/p/videos/v1/source/x.mp4", b"b")
    assert store.list_keys("") == [KEY, "org/p/videos/v1/source/x.mp4"]
    assert store.list_keys("org/p/videos/v1/derived/chunks/000") == [KEY]
    with pytest.raises(ValueError):
        store.put_bytes(f"{DIGESTS}/x", b"forged")
    assert store.delete_prefix("org/p/videos/v1/derived/") == 1
    assert not (tmp_path / "blobs" / DIGESTS / f"{KEY}.b3").exists()
