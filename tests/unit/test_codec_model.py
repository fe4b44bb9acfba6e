"""VQ-VAE 3D codec: shapes, exact chunked/ROI decode, quantizer behaviour (tiny random model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sagemaker_models.codec.model import (
    VQVAE3D,
    Codec,
    CodecConfig,
    EMAVectorQuantizer,
    depth_to_space,
    make_codebook_id,
    space_to_depth,
)
from sightline.tokenblob import unpack_tokens

TINY = CodecConfig(
    codebook_size=64,
    embed_dim=8,
    stem_channels=8,
    width=16,
    fine_width=8,
    enc_blocks=1,
    dec_blocks=2,
    dec_fine_blocks=2,
)


@pytest.fixture(scope="module")
def codec() -> Codec:
    torch.manual_seed(0)
    model = VQVAE3D(TINY)
    # Random (not identity-initialised) residual blocks, so halo exactness is really tested.
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
        model.quantizer.embedding.normal_(0, 1)
    return Codec(model)


def video(t=13, h=30, w=45, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def assert_same_pixels(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to float summation order: conv kernels are blocked by tensor size, so a
    rare pixel may round to the neighbouring level, never further."""
    assert a.shape == b.shape
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999


def test_space_to_depth_inverse():
    x = torch.randn(2, 8, 16, 24, 5)
    y = space_to_depth(x, 2, 4)
    assert y.shape == (2, 4, 4, 6, 5 * 2 * 16)
    torch.testing.assert_close(depth_to_space(y, 2, 4), x)


def test_forward_shapes():
    model = VQVAE3D(TINY).train()
    x = torch.randint(0, 256, (2, 8, 32, 48, 3), dtype=torch.uint8)
    out = model(x)
    assert out["recon"].shape == (2, 8, 32, 48, 3)
    assert out["indices"].shape == (2, 2, 4, 6)
    assert out["commit"].ndim == 0 and out["perplexity"] >= 1
    out["recon"].sum().backward()
    assert model.encoder.stem.weight.grad is not None  # straight-through reaches the encoder


def test_encode_decode_round_trip_odd_sizes(codec):
    frames = video()
    enc = codec.encode(frames, fps=7.5)
    assert enc.tokens.dtype == np.uint16
    assert enc.tokens.shape == (4, 4, 6)  # ceil(13/4), ceil(30/8), ceil(45/8)
    assert int(enc.tokens.max()) < TINY.codebook_size
    assert enc.frame_size == (30, 45) and enc.n_frames == 13 and enc.fps == 7.5
    out = codec.decode(enc.tokens, enc.frame_size, enc.n_frames)
    assert out.shape == frames.shape and out.dtype == np.uint8


def test_blob_round_trip(codec):
    enc = codec.encode(video(), fps=10)
    header, tokens = unpack_tokens(enc.to_blob(temporal_window=2))
    np.testing.assert_array_equal(tokens, enc.tokens)
    assert header.codebook_id == codec.codebook_id and header.model_id == "vqvae3d-v1"
    assert header.n_frames == 13 and header.frame_size == (30, 45)


def test_chunked_encode_and_decode_are_exact(codec):
    frames = video(t=24, h=40, w=56, seed=1)
    one = codec.encode(frames, chunk_steps=100)
    chunked = codec.encode(frames, chunk_steps=1)
    # Per-step encoder: chunking changes nothing but float summation order (near-ties only).
    assert (one.tokens == chunked.tokens).mean() > 0.99
    full = codec.decode(one.tokens, (40, 56), 24, chunk_steps=100)
    for steps in (1, 2, 4):
        assert_same_pixels(codec.decode(one.tokens, (40, 56), 24, chunk_steps=steps), full)


def test_roi_decode_matches_full_decode(codec):
    frames = video(t=20, h=96, w=120, seed=2)
    enc = codec.encode(frames)
    full = codec.decode(enc.tokens, enc.frame_size, enc.n_frames)
    ht_, hs = codec.halo
    for box, fr in [
        ((37, 41, 70, 77), (5, 14)),
        ((0, 0, 9, 9), (0, 3)),
        ((100, 80, 120, 96), (17, 20)),
        ((0, 0, 120, 96), (0, 20)),
    ]:
        x0, y0, x1, y1 = box
        f0, f1 = fr
        # Only the token window of the box plus halo is handed to the decoder.
        s0, s1 = max(0, f0 // 4 - ht_), min(enc.tokens.shape[0], -(-f1 // 4) + ht_)
        r0, r1 = max(0, y0 // 8 - hs), min(enc.tokens.shape[1], -(-y1 // 8) + hs)
        c0, c1 = max(0, x0 // 8 - hs), min(enc.tokens.shape[2], -(-x1 // 8) + hs)
        sub = enc.tokens[s0:s1, r0:r1, c0:c1]
        roi = codec.decode_region(
            sub,
            origin=(s0, r0, c0),
            grid_dims=enc.tokens.shape,
            pixel_box=box,
            frames=fr,
            frame_size=enc.frame_size,
            n_frames=enc.n_frames,
        )
        assert_same_pixels(roi, full[f0:f1, y0:y1, x0:x1])


def test_fewer_temporal_blocks_shrink_the_halo_and_stay_exact():
    # Given a decoder whose second block does not mix token steps
    cfg = CodecConfig(**{**TINY.to_dict(), "dec_temporal_blocks": 1})
    torch.manual_seed(1)
    model = VQVAE3D(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
        model.quantizer.embedding.normal_(0, 1)
    small = Codec(model)
    assert small.halo == (1, 3)
    assert model.decoder.blocks[1].temporal is None
    # Then a window of one step of context reproduces the full decode
    frames = video(t=24, h=48, w=48, seed=3)
    enc = small.encode(frames)
    full = small.decode(enc.tokens, enc.frame_size, enc.n_frames)
    sub = enc.tokens[1:4]  # steps 2..3 (frames 8..16) plus one step each side
    roi = small.decode_region(
        sub,
        origin=(1, 0, 0),
        grid_dims=enc.tokens.shape,
        pixel_box=(0, 0, 48, 48),
        frames=(8, 12),
        frame_size=enc.frame_size,
        n_frames=enc.n_frames,
    )
    assert_same_pixels(roi, full[8:12])
    with pytest.raises(ValueError):
        CodecConfig(dec_temporal_blocks=3)


def test_roi_decode_rejects_missing_halo(codec):
    enc = codec.encode(video(t=8, h=64, w=64))
    with pytest.raises(ValueError, match="halo"):
        codec.decode_region(
            enc.tokens[:, 3:5, 3:5],
            origin=(0, 3, 3),
            grid_dims=enc.tokens.shape,
            pixel_box=(24, 24, 40, 40),
            frames=(0, 8),
            frame_size=(64, 64),
            n_frames=8,
        )
    with pytest.raises(ValueError):
        codec.decode_region(
            enc.tokens,
            origin=(0, 0, 0),
            grid_dims=enc.tokens.shape,
            pixel_box=(0, 0, 65, 10),
            frames=(0, 8),
            frame_size=(64, 64),
            n_frames=8,
        )


def test_encode_rejects_bad_frames(codec):
    with pytest.raises(ValueError):
        codec.encode(np.zeros((4, 16, 16), np.uint8))
    with pytest.raises(ValueError):
        codec.encode(np.zeros((4, 16, 16, 3), np.float32))


def test_stickiness_repeats_tokens_on_static_video(codec):
    still = np.repeat(video(t=1, h=32, w=32, seed=3), 16, axis=0)
    noisy = np.clip(
        still.astype(int) + np.random.default_rng(0).integers(-6, 7, still.shape), 0, 255
    ).astype(np.uint8)
    plain = codec.encode(noisy).tokens
    sticky = codec.encode(noisy, stickiness=0.5).tokens
    changes = lambda t: int((t[1:] != t[:-1]).sum())  # noqa: E731
    assert changes(sticky) <= changes(plain)


def test_ema_quantizer_updates_and_restarts_dead_codes():
    torch.manual_seed(0)
    q = EMAVectorQuantizer(16, 4, decay=0.5, dead_threshold=0.5).train()
    z = torch.randn(2, 4, 1, 4, 4) + 3.0
    before = q.embedding.clone()
    qz, idx, _, _ = q(z, torch.Generator().manual_seed(0))
    assert bool(q.initialized)
    assert not torch.equal(before, q.embedding)
    assert qz.shape == z.shape and idx.shape == (2, 1, 4, 4)
    # Codes nobody picks decay below the threshold and get re-seeded onto data points.
    for _ in range(5):
        q(torch.full((1, 4, 1, 2, 2), 3.0))
    assert float(q.cluster_size.min()) > 0
    q.eval()
    frozen = q.embedding.clone()
    q(z)
    assert torch.equal(frozen, q.embedding)


def test_codebook_id_is_content_addressed():
    model = VQVAE3D(TINY)
    cid = make_codebook_id(TINY, model.quantizer.embedding)
    assert cid.startswith("cb-v1-k64-") and len(cid) == len("cb-v1-k64-") + 10
    model.quantizer.embedding[0, 0] += 1
    assert make_codebook_id(TINY, model.quantizer.embedding) != cid


def test_config_validation():
    with pytest.raises(ValueError):
        CodecConfig(spatial_stride=6 + 1)
    with pytest.raises(ValueError):
        CodecConfig(time_stride=3)
    with pytest.raises(ValueError):
        CodecConfig(codebook_size=70000)
    assert CodecConfig.from_dict({**TINY.to_dict(), "unknown": 1}) == TINY
