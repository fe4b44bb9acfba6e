"""Backup and restore of the local store, verified by hash; a damaged backup restores
nothing."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from sightline.adapters.local_blobs import LocalBlobStore
from sightline.adapters.local_index import LocalVectorIndex
from sightline.adapters.local_tables import SqliteTableStore
from sightline.models import IndexDocument
from sightline_local.backup import BackupError, backup, restore


def _store(home: Path) -> None:
    SqliteTableStore(home / "sightline.db").table("videos").put(
        "acme/plaza", "v1", {"video_id": "v1"}
    )
    LocalBlobStore(home / "blobs").put_bytes("acme/plaza/videos/v1/source/a.mp4", b"video")
    vec = np.ones(8, np.float32)
    LocalVectorIndex(home / "index").upsert(
        IndexDocument(
            manifest_id="vid1-c00000",
            tenant_id="acme/plaza",
            stream_id="vid1",
            video_id="vid1",
            t0=0,
            t1=10,
            t_mid=5,
            description="a person",
            text_embedding=vec.tolist(),
            embedding_model="m",
        )
    )


def test_round_trip(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _store(home)
    out = backup(home, tmp_path / "b.tar")
    assert out["files"] >= 3 and out["hash"].startswith("blake3:")
    target = tmp_path / "restored"
    got = restore(tmp_path / "b.tar", target)
    assert got["verified"] and got["files"] == out["files"]
    assert SqliteTableStore(target / "sightline.db").table("videos").get("acme/plaza", "v1") == {
        "video_id": "v1"
    }
    assert (
        LocalBlobStore(target / "blobs").get_bytes("acme/plaza/videos/v1/source/a.mp4") == b"video"
    )
    hits = LocalVectorIndex(target / "index").search("acme/plaza", np.ones(8), k=1)
    assert [h.manifest_id for h in hits] == ["vid1-c00000"]


def test_a_damaged_backup_restores_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _store(home)
    backup(home, tmp_path / "b.tar")
    # Flip the stored blob's bytes inside the archive, keeping its size
    with tarfile.open(tmp_path / "b.tar") as tar:
        member = tar.getmember("blobs/acme/plaza/videos/v1/source/a.mp4")
        offset = member.offset_data
    data = bytearray((tmp_path / "b.tar").read_bytes())
    data[offset] ^= 0xFF
    (tmp_path / "bad.tar").write_bytes(bytes(data))
    target = tmp_path / "existing"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    with pytest.raises(BackupError, match="does not match its hash"):
        restore(tmp_path / "bad.tar", target, force=True)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    with pytest.raises(BackupError, match="not empty"):
        restore(tmp_path / "b.tar", target)
    (tmp_path / "junk.tar").write_bytes(b"not a tar")
    with pytest.raises(BackupError, match="cannot read"):
        restore(tmp_path / "junk.tar", tmp_path / "empty")
