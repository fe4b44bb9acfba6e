"""The codec's background layer and token blob version 3, with a tiny random-init codec on
a synthetic fixed-camera clip (textured still background, one moving square)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from sagemaker_models.codec import background as bglayer
from sagemaker_models.codec.inference import (
    VideoInput,
    background_params,
    decode_blob,
    plan_roi,
    predict_fn,
)
from sagemaker_models.codec.metrics import psnr_y
from sagemaker_models.codec.model import Codec
from sightline import tokenblob
from tests.unit.test_codec_inference import model_fn, write_tiny_weights


@pytest.fixture(scope="module")
def codec(tmp_path_factory) -> Codec:
    d = tmp_path_factory.mktemp("weights")
    write_tiny_weights(d)
    return model_fn(str(d))


def scene(frames: int = 16, h: int = 80, w: int = 144, seed: int = 0) -> np.ndarray:
    """A still textured background (noise + gradient) with a bright square moving across."""
    rng = np.random.default_rng(seed)
    still = np.clip(
        rng.normal(128, 40, (h, w, 3)) + np.linspace(-40, 40, w)[None, :, None], 0, 255
    ).astype(np.uint8)
    out = np.repeat(still[None], frames, 0)
    for i in range(frames):
        out[i, 20:36, 4 + 5 * i : 20 + 5 * i] = (250, 220, 40)
    return out


@pytest.fixture(scope="module")
def encoded(codec):
    frames = scene()
    enc = codec.encode(frames, fps=10.0, background=bglayer.BackgroundParams(q_luma=4, q_chroma=8))
    return frames, enc, enc.to_blob()


def test_residual_coding_round_trip_through_tiles():
    rng = np.random.default_rng(1)
    bg = rng.integers(0, 256, (70, 100, 3), dtype=np.uint8)
    # The base misses the picture's luma detail (the same error on R, G and B).
    base = np.clip(bg.astype(np.float32) + rng.normal(0, 12, bg.shape[:2])[..., None], 0, 255)
    params = bglayer.BackgroundParams(q_luma=6, q_chroma=12)
    coding = bglayer.encode_residual(bg, base, params)
    assert coding.padded_size == (80, 112)
    # Tiles of 4x4 tokens (32 px): ceil(70/32) x ceil(100/32) tiles of the 9 x 13 token grid.
    grid, size = (3, 4), (4, 4)
    raw, words = bglayer.encode_tiles(coding, grid, size)
    tiles = {(i // grid[1], i % grid[1]): w for i, w in enumerate(words)}
    back = bglayer.decode_tiles(
        tiles, scales_b64=bglayer.pack_scales(raw), q=(6, 12), tile_size=size, frame_size=(70, 100)
    )
    for a, b in zip(back.planes(), coding.planes(), strict=True):
        np.testing.assert_array_equal(a, b)
    # The coded background is closer to the target than the base it corrects.
    fixed = base + bglayer.residual_rgb(coding)[:70, :100]
    err_before = np.abs(base - bg).mean()
    assert np.abs(fixed - bg).mean() < 0.5 * err_before
    # A box of the residual equals the same box of the whole residual.
    whole = bglayer.residual_rgb(coding)
    np.testing.assert_allclose(
        bglayer.residual_rgb(coding, (21, 9, 77, 50)), whole[9:50, 21:77], atol=1e-4
    )
    # Only the tiles given are filled in: the others stay zero.
    part = bglayer.decode_tiles(
        {(0, 0): tiles[(0, 0)]},
        scales_b64=bglayer.pack_scales(raw),
        q=(6, 12),
        tile_size=size,
        frame_size=(70, 100),
    )
    assert part.luma[:4, :4].any() and not part.luma[4:].any() and not part.luma[:, 4:].any()


def test_damaged_ans_stream_is_refused():
    rng = np.random.default_rng(2)
    bg = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    coding = bglayer.encode_residual(bg, np.zeros_like(bg, np.float32), bglayer.BackgroundParams())
    raw, words = bglayer.encode_tiles(coding, (1, 1), (4, 4))
    with pytest.raises(bglayer.BackgroundDecodeError):
        bglayer.decode_tiles(
            {(0, 0): words[0][:-1]},
            scales_b64=bglayer.pack_scales(raw),
            q=(24, 48),
            tile_size=(4, 4),
            frame_size=(32, 32),
        )


def test_blob_v3_keeps_tokens_and_reference(codec, encoded):
    _, enc, blob = encoded
    header = tokenblob.read_header(blob)
    assert header.version == 3 and header.background is not None
    assert header.n_sections == header.n_windows + 2
    assert header.n_tiles == (header.n_windows + 2) * header.tile_grid[0] * header.tile_grid[1]
    _, tokens = tokenblob.unpack_tokens(blob, expected_hash=tokenblob.blob_hash(blob))
    np.testing.assert_array_equal(tokens, enc.tokens)
    # Blocks the coded background reproduces were given the reference token.
    assert (enc.tokens == enc.reference[None]).mean() > 0.5
    # The same tokens without the layer still make a version-2 blob.
    v2 = replace(enc, reference=None, background=None).to_blob()
    assert tokenblob.read_header(v2).version == 2


def test_layer_lifts_the_background_quality(codec, encoded):
    frames, enc, blob = encoded
    plain = codec.encode(frames, fps=10.0)
    without = codec.decode(plain.tokens, plain.frame_size, plain.n_frames)
    with_layer = decode_blob(blob, codec=codec)
    direct = codec.decode(
        enc.tokens,
        enc.frame_size,
        enc.n_frames,
        reference=enc.reference,
        background=enc.background,
    )
    np.testing.assert_array_equal(with_layer, direct)
    # A random tiny decoder reproduces nothing (17.6 dB); the layer carries the still
    # background (26.1 dB: the moving square's blocks stay with the decoder).
    assert psnr_y(frames, with_layer) > psnr_y(frames, without) + 6


def test_roi_reads_only_its_background_tiles_and_matches_full(codec, encoded):
    _, _, blob = encoded
    header = tokenblob.read_header(blob)
    full = decode_blob(blob, codec=codec)
    box = (70, 30, 120, 75)
    plan = plan_roi(header, box, 0.4, 1.2, codec.halo)
    bg_tiles = sorted(k for k in plan.tiles if k[0] == -2)
    th = header.tile_size[0] * header.spatial_stride
    assert bg_tiles == [(-2, 0, 1), (-2, 1, 1)] and th == 64
    roi = decode_blob(blob, roi=box, t0=0.4, t1=1.2, codec=codec)
    diff = np.abs(roi.astype(int) - full[4:12, 30:75, 70:120].astype(int))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999


def test_corrupt_background_tile_is_detected(codec, encoded):
    _, _, blob = encoded
    index = tokenblob.read_index(blob)
    key = next(
        k
        for k in (index.header.key_of(i) for i in range(index.header.n_tiles))
        if k[0] == -2 and index.byte_range(k)[1]
    )
    off, length = index.byte_range(key)
    bad = bytearray(blob)
    bad[off + length // 2] ^= 0x10
    with pytest.raises(tokenblob.CorruptBlobError):
        decode_blob(bytes(bad), codec=codec)
    # A ranged reader that trusts only the prefix and the tile still catches it.
    payload = bytes(bad[off : off + length])
    with pytest.raises(tokenblob.CorruptBlobError):
        tokenblob.decode_tiles(index, {key: payload})


def test_handler_writes_v3_when_the_layer_is_on(codec, monkeypatch):
    frames = scene(frames=12)
    monkeypatch.setenv("SIGHTLINE_CODEC_BACKGROUND", "off")
    off = predict_fn(VideoInput(frames=frames, fps=10.0, source_bytes=1), codec)
    monkeypatch.setenv("SIGHTLINE_CODEC_BACKGROUND", "q=4")
    on = predict_fn(VideoInput(frames=frames, fps=10.0, source_bytes=1), codec)
    assert tokenblob.read_header(off["token_blob"]).version == 2
    assert tokenblob.read_header(on["token_blob"]).background.q == (4.0, 8.0)
    assert on["quality_stats"]["psnr"] > off["quality_stats"]["psnr"] + 6


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("off", None),
        ("on", bglayer.BackgroundParams()),
        ("q=32", bglayer.BackgroundParams(q_luma=32, q_chroma=64)),
    ],
)
def test_background_setting(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv("SIGHTLINE_CODEC_BACKGROUND", raising=False)
    else:
        monkeypatch.setenv("SIGHTLINE_CODEC_BACKGROUND", raw)
    assert background_params() == expected


def test_bad_background_setting(monkeypatch):
    for raw in ("maybe", "q=0", "q=x"):
        monkeypatch.setenv("SIGHTLINE_CODEC_BACKGROUND", raw)
        with pytest.raises(ValueError):
            background_params()


def test_header_and_frame_must_agree_on_the_layer(encoded):
    _, enc, blob = encoded
    header = tokenblob.read_header(blob)
    # A version-3 header without its layer, or a version-2 header with one, is refused.
    with pytest.raises(ValueError):
        tokenblob.TokenBlobHeaderV2.model_validate({**header.model_dump(), "background": None})
    with pytest.raises(ValueError):
        tokenblob.TokenBlobHeaderV2.model_validate({**header.model_dump(), "version": 2})
    # The frame's version must be the header's: a v3 blob relabelled as v2 is corrupt.
    relabelled = bytearray(blob)
    relabelled[4:6] = (2).to_bytes(2, "little")
    with pytest.raises(tokenblob.CorruptBlobError):
        tokenblob.read_index(bytes(relabelled))
    # The writer wants the layer and the reference plane together.
    with pytest.raises(ValueError):
        tokenblob.pack_tokens(
            enc.tokens,
            codebook_id=enc.codebook_id,
            model_id=enc.model_id,
            time_stride=enc.time_stride,
            spatial_stride=enc.spatial_stride,
            frame_size=enc.frame_size,
            fps=enc.fps,
            n_frames=enc.n_frames,
            codebook_size=enc.codebook_size,
            version=3,
            reference=enc.reference,
        )


@pytest.mark.parametrize(("n", "h", "w"), [(1, 70, 90), (5, 40, 200), (9, 136, 24)])
def test_odd_sizes_round_trip(codec, n, h, w):
    # Frame sizes off the 16-px grid, single frames, partial tiles: the full decode and a
    # region decode of a version-3 blob agree with decoding the encoder's own output.
    frames = scene(frames=n, h=h, w=w, seed=n)
    enc = codec.encode(frames, fps=10.0, background=bglayer.BackgroundParams(q_luma=8))
    blob = enc.to_blob()
    full = decode_blob(blob, codec=codec)
    direct = codec.decode(
        enc.tokens, enc.frame_size, enc.n_frames, reference=enc.reference, background=enc.background
    )
    assert full.shape == frames.shape
    np.testing.assert_array_equal(full, direct)
    box = (w // 3, h // 4, w - 1, h - 2)
    part = decode_blob(blob, roi=box, t0=0.0, t1=n / 10, codec=codec)
    diff = np.abs(part.astype(int) - full[:, box[1] : box[3], box[0] : box[2]].astype(int))
    assert diff.max() <= 1
