"""``sightline decode`` with the real codec: it decodes a stored chunk, and exits non-zero
with an integrity error, writing nothing, when the token blob it needs is corrupt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sightline import factory, keys, tokenblob
from sightline.config import get_settings
from sightline.models import ManifestRow
from sightline.services.repository import Repository
from sightline_local.cli import main

TENANT = "acme/plaza"
VIDEO = "vdecodeintegrity01"


@pytest.fixture
def stored_blob(home: Path) -> Path:
    """A real codec's token blob of a small moving gradient, stored as chunk 0."""
    from sagemaker_models.codec.registry import load_codec

    codec = load_codec(device="cpu")
    t, y, x = np.meshgrid(np.arange(8), np.arange(48), np.arange(64), indexing="ij")
    frames = np.stack([(x * 4 + t * 8) % 256, (y * 5) % 256, (x + y + t) % 256], -1)
    blob = codec.encode(frames.astype(np.uint8), fps=10.0).to_blob()
    blobs = factory.blobs()
    key = keys.tokens(TENANT, VIDEO, 0)
    blobs.put_bytes(key, blob)
    Repository(factory.tables()).put_manifest(
        ManifestRow(
            manifest_id=f"{VIDEO}-c00000",
            tenant_id=TENANT,
            stream_id=VIDEO,
            video_id=VIDEO,
            t0=0.0,
            t1=0.8,
            codebook_id=codec.codebook_id,
            model_id=codec.model_id,
            token_uri=blobs.uri(key),
            sideinfo_uri="",
            byte_size=len(blob),
            ratio=1.0,
            hash=tokenblob.blob_hash(blob),
        )
    )
    return Path(get_settings().blob_root) / key


def _decode(out: Path) -> int:
    return main(["--tenant", TENANT, "decode", VIDEO, "--at", "0.1", "--out", str(out)])


def test_decode_refuses_a_corrupt_tile(
    stored_blob: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _decode(tmp_path / "ok.png") == 0 and (tmp_path / "ok.png").stat().st_size > 0
    capsys.readouterr()
    # Given one flipped byte in the middle of every tile payload
    data = bytearray(stored_blob.read_bytes())
    for entry in tokenblob.read_index(bytes(data)).entries:
        data[int(entry["offset"]) + int(entry["length"]) // 2] ^= 0xFF
    stored_blob.write_bytes(bytes(data))
    # Then decode fails with an integrity error and writes no image
    assert _decode(tmp_path / "bad.png") == 1
    err = capsys.readouterr().err
    assert err.startswith("sightline: integrity error: "), err
    assert not (tmp_path / "bad.png").exists()


def test_decode_refuses_a_corrupt_header(
    stored_blob: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(stored_blob.read_bytes())
    data[12] ^= 0xFF  # inside the header JSON, covered by the prefix digest
    stored_blob.write_bytes(bytes(data))
    assert _decode(tmp_path / "bad.png") == 1
    err = capsys.readouterr().err
    assert err.startswith("sightline: integrity error: "), err
    assert not (tmp_path / "bad.png").exists()
