"""SageMaker handler contract on a tiny synthetic mp4 with a tiny random-init codec:
encode and decode modes, quality sampling, the decode registry, PNG output."""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sagemaker_models.codec.inference import (
    DECODE_CONTENT_TYPE,
    decode_blob,
    encode_png,
    input_fn,
    model_fn,
    output_fn,
    plan_roi,
    predict_fn,
    quality_spans,
)
from sagemaker_models.codec.model import VQVAE3D, Codec, CodecConfig, make_codebook_id
from sagemaker_models.codec.registry import CodebookRegistry, UnknownCodebookError
from sagemaker_models.codec.video_io import VideoDecodeError, VideoLimitError
from sightline.tokenblob import blob_hash, read_header, unpack_sideinfo, unpack_tokens

TINY = CodecConfig(
    codebook_size=64,
    embed_dim=8,
    stem_channels=8,
    width=16,
    fine_width=8,
    enc_blocks=1,
    dec_blocks=1,
    dec_fine_blocks=1,
)


def write_tiny_weights(folder: Path, seed: int = 0, stem: str = "tiny") -> str:
    """A random tiny model saved the way train.py saves (fp16 state dict + JSON)."""
    torch.manual_seed(seed)
    model = VQVAE3D(TINY)
    with torch.no_grad():
        model.quantizer.embedding.normal_(0, 1)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / f"{stem}.pt")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    cid = make_codebook_id(TINY, model.quantizer.embedding, "test")
    (folder / f"{stem}.json").write_text(
        json.dumps(
            {
                "model_id": TINY.model_id,
                "codebook_id": cid,
                "architecture": TINY.to_dict(),
                "weights_file": f"{stem}.pt",
                "created": f"200{seed}-01-01T00:00:00+00:00",
            }
        )
    )
    return cid


def write_mp4(path: Path, frames: int = 12, w: int = 64, h: int = 48, fps: float = 10.0) -> None:
    """A moving bright square on a gradient, written with OpenCV's mp4v encoder."""
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert vw.isOpened()
    base = np.tile(np.linspace(30, 200, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    for i in range(frames):
        f = base.copy()
        f[10:26, 4 + 3 * i : 20 + 3 * i] = (250, 220, 40)
        vw.write(f)
    vw.release()


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> tuple[Path, str]:
    d = tmp_path_factory.mktemp("weights")
    return d, write_tiny_weights(d)


@pytest.fixture(scope="module")
def mp4_bytes(tmp_path_factory) -> bytes:
    p = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_mp4(p)
    return p.read_bytes()


@pytest.fixture(scope="module")
def codec(weights_dir) -> Codec:
    return model_fn(str(weights_dir[0]))


def test_model_fn_loads_requested_weights(weights_dir, codec, monkeypatch):
    folder, cid = weights_dir
    assert codec.codebook_id == cid
    assert not codec.model.training
    monkeypatch.setenv("SIGHTLINE_CODEC_WEIGHTS", str(folder / "tiny.pt"))
    assert model_fn(None).codebook_id == cid


def test_input_fn_decodes_mp4(mp4_bytes):
    data = input_fn(mp4_bytes, "video/mp4")
    assert data.frames.shape == (12, 48, 64, 3) and data.frames.dtype == np.uint8
    assert data.fps == pytest.approx(10.0)
    assert data.source_bytes == len(mp4_bytes)
    # The square was written as BGR (250, 220, 40): it must come back as RGB (40, 220, 250).
    square = data.frames[0, 12:24, 6:18].reshape(-1, 3).mean(0)
    assert square[2] > 200 and square[1] > 170 and square[0] < 100


def test_input_fn_rejects_bad_input(mp4_bytes, monkeypatch):
    with pytest.raises(ValueError, match="content type"):
        input_fn(mp4_bytes, "application/json")
    with pytest.raises(VideoDecodeError):
        input_fn(b"definitely not a video" * 50, "video/mp4")
    with pytest.raises(ValueError):
        input_fn(b"", "video/mp4")
    monkeypatch.setenv("SIGHTLINE_CODEC_MAX_FRAMES", "5")
    with pytest.raises(VideoLimitError, match="frames"):
        input_fn(mp4_bytes, "video/mp4")
    monkeypatch.setenv("SIGHTLINE_CODEC_MAX_FRAMES", "100")
    monkeypatch.setenv("SIGHTLINE_CODEC_MAX_PIXELS", str(32 * 32))
    with pytest.raises(VideoLimitError, match="frame size"):
        input_fn(mp4_bytes, "video/mp4")


def test_input_fn_leaves_no_temp_files(mp4_bytes, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    input_fn(mp4_bytes, "video/mp4")
    with pytest.raises(ValueError):
        input_fn(b"junk" * 100, "video/mp4")
    assert list(scratch.iterdir()) == []


def test_predict_and_output_fn(mp4_bytes, codec):
    data = input_fn(mp4_bytes, "video/mp4; codecs=mp4v")
    body = output_fn(predict_fn(data, codec), "application/json")
    doc = json.loads(body)
    expected_keys = {
        "token_blob_b64",
        "sideinfo_b64",
        "codebook_id",
        "model_id",
        "token_hash",
        "byte_size",
        "raw_bytes",
        "ratio",
        "bpp",
        "quality_stats",
        "frames",
        "fps",
        "width",
        "height",
        "encode_ms",
        "tokens_shape",
    }
    assert expected_keys <= set(doc)
    blob = base64.b64decode(doc["token_blob_b64"])
    assert doc["token_hash"] == blob_hash(blob)
    assert doc["byte_size"] == len(blob)
    assert doc["raw_bytes"] == 64 * 48 * 12 * 3 // 2
    assert doc["ratio"] == pytest.approx(doc["raw_bytes"] / doc["byte_size"])
    assert doc["bpp"] == pytest.approx(8 * len(blob) / (64 * 48 * 12))
    assert doc["codebook_id"] == codec.codebook_id and doc["model_id"] == "vqvae3d-v1"
    assert (doc["frames"], doc["width"], doc["height"]) == (12, 64, 48)
    assert doc["tokens_shape"] == [3, 6, 8]
    q = doc["quality_stats"]
    assert 0 < q["psnr"] <= 100 and -1 <= q["ms_ssim"] <= 1
    # Three token steps: a sample would save nothing, so every frame is measured.
    assert q["sampled"] is False and q["frames_measured"] == q["frames"] == 12
    header, tokens = unpack_tokens(blob, expected_hash=doc["token_hash"])
    assert list(tokens.shape) == doc["tokens_shape"]
    assert header.codebook_id == codec.codebook_id
    si_header, fields = unpack_sideinfo(base64.b64decode(doc["sideinfo_b64"]))
    assert si_header.token_hash == doc["token_hash"]
    assert set(fields) == {"changed_frac", "latent_delta", "pixel_motion", "residual_energy"}
    for v in fields.values():
        assert v.shape == (3, 1, 1) and np.isfinite(v).all()
    assert fields["changed_frac"][0, 0, 0] == 0
    assert fields["pixel_motion"][1:].min() > 0  # the square moves every frame
    with pytest.raises(ValueError):
        output_fn(predict_fn(data, codec), "text/csv")


def test_decode_blob_roi_matches_full(codec, mp4_bytes):
    frames = input_fn(mp4_bytes, "video/mp4").frames
    blob = codec.encode(frames, fps=10).to_blob(temporal_window=1)
    full = decode_blob(blob, codec=codec)
    assert full.shape == frames.shape
    roi = decode_blob(
        blob, roi=(10, 5, 40, 30), t0=0.35, t1=0.8, codec=codec, expected_hash=blob_hash(blob)
    )
    np.testing.assert_array_equal(roi, full[3:8, 5:30, 10:40])
    plan = plan_roi(read_header(blob), (10, 5, 40, 30), 0.35, 0.8, codec.halo)
    assert plan.frames == (3, 8) and plan.box == (10, 5, 40, 30)
    with pytest.raises(ValueError):
        decode_blob(blob, roi=(100, 100, 120, 120), codec=codec)


def test_decode_blob_picks_codec_by_codebook_id(weights_dir, codec):
    folder, cid = weights_dir
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    blob = codec.encode(frames).to_blob()
    registry = CodebookRegistry([folder])
    out = decode_blob(blob, registry=registry)
    assert out.shape == (4, 16, 16, 3)
    assert registry.load(cid, "cpu") is registry.load(cid, "cpu")  # cached


def test_decode_blob_refuses_other_codebook(codec, tmp_path):
    frames = np.zeros((4, 16, 16, 3), np.uint8)
    enc = codec.encode(frames)
    enc.codebook_id = "cb-v1-k64-someoneelse"
    with pytest.raises(ValueError, match="codebook"):
        decode_blob(enc.to_blob(), codec=codec)
    with pytest.raises(UnknownCodebookError):
        decode_blob(enc.to_blob(), registry=CodebookRegistry([tmp_path]))


def long_clip(n=64, h=48, w=64) -> np.ndarray:
    """A square moving over a gradient, as uint8 RGB frames."""
    base = np.tile(np.linspace(30, 200, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    frames = np.repeat(base[None], n, axis=0)
    for i in range(n):
        x = (2 * i) % (w - 16)
        frames[i, 10:26, x : x + 16] = (250, 220, 40)
    return frames


def test_quality_spans():
    # About a quarter of the steps, in two spread spans, when that saves decode work.
    assert quality_spans(25, 0.25, 1) == [(5, 8), (17, 20)]
    assert quality_spans(100, 0.1, 2) == [(22, 27), (72, 77)]
    assert quality_spans(7, 0.25, 0) == [(2, 4)]
    # Too short: the halo around a sample costs as much as decoding everything.
    assert quality_spans(3, 0.25, 2) == [(0, 3)]
    assert quality_spans(25, 1.0, 1) == [(0, 25)]


def test_quality_is_measured_on_a_sample_and_says_so(codec, monkeypatch):
    from sagemaker_models.codec.inference import VideoInput
    from sagemaker_models.codec.metrics import psnr_y

    frames = long_clip()
    data = VideoInput(frames=frames, fps=10.0, source_bytes=1)
    # Given the default policy: a sample of the token steps is decoded
    out = predict_fn(data, codec)
    q = out["quality_stats"]
    assert q["sampled"] is True and 0 < q["frames_measured"] < q["frames"] == 64
    # Then the figures are those of a full decode on exactly the sampled frames
    spans = quality_spans(16, 0.25, codec.halo[0])
    full = codec.decode(unpack_tokens(out["token_blob"])[1], (48, 64), 64)
    idx = np.concatenate([np.arange(a * 4, b * 4) for a, b in spans])
    assert q["frames_measured"] == len(idx)
    assert q["psnr"] == pytest.approx(psnr_y(frames[idx], full[idx]), abs=0.05)
    # And the side info's residual energy is NaN exactly where nothing was decoded
    _, fields = unpack_sideinfo(out["sideinfo"])
    measured = np.zeros(16, bool)
    for a, b in spans:
        measured[a:b] = True
    energy = fields["residual_energy"][:, 0, 0]
    assert np.isfinite(energy[measured]).all() and np.isnan(energy[~measured]).all()
    for name in ("changed_frac", "latent_delta", "pixel_motion"):
        assert np.isfinite(fields[name]).all()
    # When asked for, the whole chunk is measured, or nothing
    monkeypatch.setenv("SIGHTLINE_CODEC_QUALITY", "full")
    q = predict_fn(data, codec)["quality_stats"]
    assert q["sampled"] is False and q["frames_measured"] == 64
    assert q["psnr"] == pytest.approx(psnr_y(frames, full), abs=0.05)
    monkeypatch.setenv("SIGHTLINE_CODEC_QUALITY", "off")
    q = predict_fn(data, codec)["quality_stats"]
    assert q["psnr"] is None and q["ms_ssim"] is None and q["frames_measured"] == 0
    monkeypatch.setenv("SIGHTLINE_CODEC_QUALITY", "sometimes")
    with pytest.raises(ValueError):
        predict_fn(data, codec)


def _decode_request(blob: bytes, roi=None, fmt="png") -> bytes:
    return json.dumps(
        {
            "token_blob_b64": base64.b64encode(blob).decode(),
            "expected_hash": blob_hash(blob),
            "roi": roi,
            "t0": 0.0,
            "t1": 0.5,
            "format": fmt,
        }
    ).encode()


def test_encode_and_decode_modes(mp4_bytes, codec, monkeypatch):
    # An encode endpoint encodes a clip ...
    monkeypatch.setenv("SIGHTLINE_CODEC_MODE", "encode")
    doc = json.loads(output_fn(predict_fn(input_fn(mp4_bytes, "video/mp4"), codec)))
    blob = base64.b64decode(doc["token_blob_b64"])
    request = _decode_request(blob, roi=[8, 4, 40, 36])
    # ... and refuses to decode
    with pytest.raises(ValueError, match="only encodes"):
        input_fn(request, DECODE_CONTENT_TYPE)
    # A decode endpoint decodes the region that blob holds, and refuses video
    monkeypatch.setenv("SIGHTLINE_CODEC_MODE", "decode")
    with pytest.raises(ValueError, match="only decodes"):
        input_fn(mp4_bytes, "video/mp4")
    out = json.loads(output_fn(predict_fn(input_fn(request, DECODE_CONTENT_TYPE), codec)))
    png = base64.b64decode(out["media_b64"])
    assert out["content_type"] == "image/png" and (out["width"], out["height"]) == (32, 32)
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), 4)
    expected = decode_blob(blob, roi=(8, 4, 40, 36), t0=0.0, t1=0.5, codec=codec)[0]
    np.testing.assert_array_equal(image, expected)
    monkeypatch.setenv("SIGHTLINE_CODEC_MODE", "both")
    assert input_fn(request, DECODE_CONTENT_TYPE).roi == (8.0, 4.0, 40.0, 36.0)
    monkeypatch.setenv("SIGHTLINE_CODEC_MODE", "sideways")
    with pytest.raises(ValueError, match="SIGHTLINE_CODEC_MODE"):
        input_fn(mp4_bytes, "video/mp4")


def test_decode_endpoint_serves_blobs_of_older_weights(tmp_path, monkeypatch):
    # Given two weights in the model folder, the newer being the endpoint's default
    old = write_tiny_weights(tmp_path, seed=1, stem="old")
    new = write_tiny_weights(tmp_path, seed=2, stem="new")
    endpoint = model_fn(str(tmp_path))
    assert endpoint.codebook_id == new
    older = endpoint.registry.load(old, "cpu")
    blob = older.encode(long_clip(8)).to_blob()
    # When a blob of the older weights is to be decoded, those weights decode it
    monkeypatch.setenv("SIGHTLINE_CODEC_MODE", "decode")
    out = predict_fn(input_fn(_decode_request(blob), DECODE_CONTENT_TYPE), endpoint)
    image = cv2.imdecode(np.frombuffer(out["media"], np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(image[..., ::-1], decode_blob(blob, codec=older)[0])


def test_model_fn_threads(weights_dir, monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("SIGHTLINE_CODEC_THREADS", "1")
        model_fn(str(weights_dir[0]))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_encode_png_round_trip():
    rgb = np.random.default_rng(0).integers(0, 256, (7, 13, 3), dtype=np.uint8)
    png = encode_png(rgb)
    back = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(back[..., ::-1], rgb)


def test_latent_features_average_only_measured_side_info(codec):
    from sagemaker_models.codec.inference import VideoInput
    from sightline.services.latent import from_blob

    out = predict_fn(VideoInput(frames=long_clip(), fps=10.0, source_bytes=1), codec)
    _, fields = unpack_sideinfo(out["sideinfo"])
    assert np.isnan(fields["residual_energy"]).any()
    feats = from_blob(out["token_blob"], expected_hash=out["token_hash"], sideinfo=out["sideinfo"])
    assert feats.sideinfo_means["residual_energy"] == pytest.approx(
        float(np.nanmean(fields["residual_energy"])), abs=1e-5
    )
    assert all(np.isfinite(v) for v in feats.sideinfo_means.values())
    assert len(feats.activity) == 16 and np.isfinite(feats.anomaly_score)
