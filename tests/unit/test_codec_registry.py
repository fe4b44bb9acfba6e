"""Codebook registry: ids from configs, latest, overrides and the committed weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sagemaker_models.codec.model import VQVAE3D, CodecConfig, make_codebook_id
from sagemaker_models.codec.registry import (
    PACKAGE_WEIGHTS,
    CodebookRegistry,
    UnknownCodebookError,
    load_codec,
)

TINY = CodecConfig(
    codebook_size=32,
    embed_dim=4,
    stem_channels=4,
    width=8,
    fine_width=4,
    enc_blocks=1,
    dec_blocks=1,
    dec_fine_blocks=1,
)


def save_tiny(folder: Path, stem: str, seed: int, created: str) -> str:
    torch.manual_seed(seed)
    model = VQVAE3D(TINY)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / f"{stem}.pt")
    cid = make_codebook_id(TINY, model.quantizer.embedding)
    (folder / f"{stem}.json").write_text(
        json.dumps(
            {
                "model_id": TINY.model_id,
                "codebook_id": cid,
                "architecture": TINY.to_dict(),
                "weights_file": f"{stem}.pt",
                "created": created,
            }
        )
    )
    return cid


def test_registry_lists_and_picks_latest(tmp_path):
    old = save_tiny(tmp_path, "a", 0, "2024-01-01T00:00:00+00:00")
    new = save_tiny(tmp_path, "b", 1, "2025-01-01T00:00:00+00:00")
    (tmp_path / "unrelated.json").write_text('{"hello": 1}')
    reg = CodebookRegistry([tmp_path])
    assert set(reg.ids()) == {old, new}
    assert reg.latest().codebook_id == new
    assert reg.get(old).weights == tmp_path / "a.pt"
    codec = reg.load(old, "cpu")
    assert codec.codebook_id == old and reg.load(old, "cpu") is codec
    with pytest.raises(UnknownCodebookError):
        reg.get("cb-nope")


def test_tampered_weights_are_refused(tmp_path):
    cid = save_tiny(tmp_path, "a", 0, "2024")
    cfg = json.loads((tmp_path / "a.json").read_text())
    cfg["codebook_id"] = cid[:-1] + ("0" if cid[-1] != "0" else "1")
    (tmp_path / "a.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="does not match"):
        CodebookRegistry([tmp_path]).load(None, "cpu")


def test_empty_registry(tmp_path):
    with pytest.raises(UnknownCodebookError):
        CodebookRegistry([tmp_path / "missing"]).latest()


def test_committed_weights_are_registered():
    configs = sorted(PACKAGE_WEIGHTS.glob("*.json"))
    if not configs:
        pytest.skip("no committed codec weights yet")
    cfg = json.loads(configs[-1].read_text())
    codec = load_codec(cfg["codebook_id"], "cpu")
    assert codec.codebook_id == cfg["codebook_id"]
    assert codec.model_id == cfg["model_id"]
    assert (PACKAGE_WEIGHTS / cfg["weights_file"]).stat().st_size < 3_000_000
