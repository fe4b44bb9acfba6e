"""Train the VQ-VAE 3D codec on random spatio-temporal crops of the clips in a folder.

Locally (CPU)::

    python -m sagemaker_models.codec.train --data /work/shared/data --seed 0 --steps 3000 \\
        --out sagemaker_models/codec/weights/codec_v1.pt

As a SageMaker training job (script mode, e.g. the PyTorch estimator with
``entry_point="train.py"``): the data folder defaults to ``$SM_CHANNEL_TRAINING``, the
output to ``$SM_MODEL_DIR/<--name>.pt`` and hyper-parameters come from the command line
(how SageMaker passes them) or, for any not given there, from the JSON in ``$SM_HPS``.
Everything written to ``$SM_MODEL_DIR`` (state dict + JSON config) is what SageMaker
packs into ``model.tar.gz``, the layout ``inference.model_fn`` and the codebook registry
read. ``--device auto`` (the default) trains on a GPU when there is one.

Writes the state dict (fp16, tensors only — never a pickled module) to ``--out`` and a JSON
config beside it (same stem, ``.json``): architecture, model_id, codebook_id, strides,
the exact command, seed, steps, data sha256s, wall time and a held-out evaluation.

Decoder fine-tuning (``--init-from W.pt --train decoder``) keeps the encoder and codebook of
``W`` frozen, so the tokens are those of ``W`` and only the decoder learns (for example a
decoder with fewer temporal blocks, ``--dec-temporal-blocks``, i.e. less ROI context). The
new weights get their own codebook id (``--codebook-version``) and ``--model-id``.

Held-out data: the first ``--holdout-frames`` frames of ``vtest.avi`` (the range MODELS.md
uses for the x264 baselines) are never sampled for training; the evaluation runs on them.

Determinism: torch, numpy and the quantizer's restart generator are seeded from ``--seed``
and crops are drawn from a seeded numpy generator, so a rerun draws the same batches. The
weights are bit-identical only with the same torch build, device, thread count
(``--threads``) and CPU instruction set, because oneDNN picks kernels (and float summation
order) by ISA and thread count.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sagemaker_models.codec.metrics import ms_ssim_y, psnr_y
from sagemaker_models.codec.model import (
    VQVAE3D,
    Codec,
    CodecConfig,
    count_parameters,
    make_codebook_id,
    normalize,
    ycbcr_error,
)
from sagemaker_models.codec.video_io import read_frames

VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v"}


@dataclass
class Clip:
    """Frames of one training clip held in memory."""

    name: str
    frames: np.ndarray  # uint8 [T,H,W,3]
    fps: float
    sha256: str
    first_frame: int


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_clips(
    data: Path, holdout_clip: str, holdout_frames: int, max_frames: int, min_size: int
) -> list[Clip]:
    """Read every video in ``data`` (sorted by name), minus the held-out frames."""
    clips = []
    for path in sorted(p for p in data.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES):
        start = holdout_frames if path.name == holdout_clip else 0
        frames, info = read_frames(path, start=start, max_frames=max_frames, limit_frames=None)
        if min(frames.shape[1:3]) < min_size:
            print(f"skip {path.name}: smaller than the crop", flush=True)
            continue
        clips.append(Clip(path.name, frames, info.fps, sha256_file(path), start))
        print(f"loaded {path.name}: {frames.shape} from frame {start}", flush=True)
    if not clips:
        raise SystemExit(f"no usable videos in {data}")
    return clips


class CropSampler:
    """Seeded random crops ``[B, T, S, S, 3]`` uint8, clips weighted by sqrt(voxels)."""

    def __init__(self, clips: list[Clip], frames: int, size: int, seed: int) -> None:
        self.clips, self.frames, self.size = clips, frames, size
        voxels = np.array([math.sqrt(c.frames.size) for c in clips])
        self.p = voxels / voxels.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> torch.Tensor:
        """One batch of crops (random clip, time, position, horizontal flip)."""
        out = np.empty((n, self.frames, self.size, self.size, 3), np.uint8)
        for i in range(n):
            c = self.clips[int(self.rng.choice(len(self.clips), p=self.p))].frames
            t0 = int(self.rng.integers(0, len(c) - self.frames + 1))
            y0 = int(self.rng.integers(0, c.shape[1] - self.size + 1))
            x0 = int(self.rng.integers(0, c.shape[2] - self.size + 1))
            crop = c[t0 : t0 + self.frames, y0 : y0 + self.size, x0 : x0 + self.size]
            out[i] = crop[:, :, ::-1] if self.rng.random() < 0.5 else crop
        return torch.from_numpy(out)


def lr_at(step: int, steps: int, base: float, warmup: int) -> float:
    """Linear warm-up then cosine decay to 5 % of the base rate."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def evaluate(codec: Codec, frames: np.ndarray, fps: float) -> dict[str, Any]:
    """Encode -> blob -> decode one clip; rate, quality and speed figures."""
    from sightline.tokenblob import unpack_tokens

    t = time.perf_counter()
    enc = codec.encode(frames, fps=fps)
    blob = enc.to_blob()
    encode_s = time.perf_counter() - t
    header, tokens = unpack_tokens(blob)
    t = time.perf_counter()
    recon = codec.decode(tokens, header.frame_size, header.n_frames)
    decode_s = time.perf_counter() - t
    n, h, w, _ = frames.shape
    raw = n * h * w * 3 // 2
    return {
        "frames": n,
        "width": w,
        "height": h,
        "tokens_shape": list(tokens.shape),
        "byte_size": len(blob),
        "raw_bytes_yuv420p": raw,
        "ratio": raw / len(blob),
        "bpp": 8 * len(blob) / (n * h * w),
        "psnr_y": psnr_y(frames, recon),
        "psnr_y_full_range": psnr_y(frames, recon, "full"),
        "ms_ssim_y": ms_ssim_y(frames, recon),
        "encode_fps": n / encode_s,
        "decode_fps": n / decode_s,
        "distinct_tokens": len(np.unique(tokens)),
    }


def save(model: VQVAE3D, out: Path, meta: dict[str, Any]) -> None:
    """fp16 state dict + JSON config beside it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().to(torch.float16) if v.is_floating_point() else v.detach()).contiguous()
        for k, v in model.state_dict().items()
    }
    torch.save(state, out)
    meta["weights_file"] = out.name
    meta["weights_sha256"] = sha256_file(out)
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")


def _keep_freed_memory() -> None:
    """Stop glibc from returning freed blocks to the OS after every step.

    Each step allocates and frees the same large activation buffers; with glibc's default
    thresholds they are mmap'ed and unmapped every time, and the page faults cost ~10 %.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_mmap_threshold, 1 << 30)


def _sagemaker_defaults(ap: argparse.ArgumentParser) -> None:
    """Defaults from the SageMaker training environment, where it is one.

    ``$SM_CHANNEL_TRAINING`` is the data folder, ``$SM_MODEL_DIR`` the output folder and
    ``$SM_HPS`` (JSON) holds the hyper-parameters; the command line still wins.
    """
    if os.environ.get("SM_CHANNEL_TRAINING"):
        ap.set_defaults(data=os.environ["SM_CHANNEL_TRAINING"])
    try:
        hps = json.loads(os.environ.get("SM_HPS") or "{}")
    except json.JSONDecodeError as exc:
        raise SystemExit(f"SM_HPS is not JSON: {exc}") from exc
    known = {a.dest for a in ap._actions}
    unknown = sorted(k for k in hps if k.replace("-", "_") not in known)
    if unknown:
        raise SystemExit(f"unknown hyper-parameters in SM_HPS: {unknown}")
    # SageMaker sends every value as a string on the command line; JSON may hold numbers.
    ap.set_defaults(**{k.replace("-", "_"): v for k, v in hps.items()})


def _output_path(args: argparse.Namespace) -> Path:
    if args.out is not None:
        return Path(args.out)
    if os.environ.get("SM_MODEL_DIR"):
        return Path(os.environ["SM_MODEL_DIR"]) / f"{args.name}.pt"
    return Path("sagemaker_models/codec/weights") / f"{args.name}.pt"


def _init_model(args: argparse.Namespace) -> tuple[VQVAE3D, CodecConfig]:
    """A fresh model, or one initialised from ``--init-from`` (decoder fine-tuning)."""
    if args.init_from is None:
        cfg = CodecConfig()
        if args.dec_temporal_blocks is not None or args.model_id:
            raise SystemExit("--dec-temporal-blocks / --model-id need --init-from")
        return VQVAE3D(cfg), cfg
    src = Path(args.init_from)
    meta = json.loads(src.with_suffix(".json").read_text())
    arch = dict(meta.get("architecture", meta))
    if args.dec_temporal_blocks is not None:
        arch["dec_temporal_blocks"] = args.dec_temporal_blocks
    if args.model_id:
        arch["model_id"] = args.model_id
    cfg = CodecConfig.from_dict(arch)
    model = VQVAE3D(cfg)
    state = torch.load(src, map_location="cpu", weights_only=True)
    own = model.state_dict()
    # Layers the new architecture dropped (e.g. a temporal conv) are left out on purpose.
    keep = {k: v.float() if v.is_floating_point() else v for k, v in state.items() if k in own}
    missing = sorted(set(own) - set(keep))
    model.load_state_dict(keep, strict=False)
    if missing:
        print(f"not initialised from {src.name}: {missing}", flush=True)
    return model, cfg


def main(argv: list[str] | None = None) -> None:
    """CLI entry point (also the SageMaker training entry point)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("SIGHTLINE_SHARED_DATA", "/work/shared/data")),
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--out", type=Path, default=None, help="default: <model dir>/<name>.pt")
    ap.add_argument("--name", default="codec_v1", help="weights file stem when --out is unset")
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--crop-frames", type=int, default=16)
    ap.add_argument("--crop-size", type=int, default=96)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when present)")
    ap.add_argument("--holdout-clip", default="vtest.avi")
    ap.add_argument("--holdout-frames", type=int, default=300)
    ap.add_argument("--max-frames", type=int, default=800, help="per clip, bounds memory")
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--codebook-version", default="v1")
    ap.add_argument("--init-from", type=Path, default=None, help="weights to start from")
    ap.add_argument("--train", choices=["all", "decoder"], default="all")
    ap.add_argument("--dec-temporal-blocks", type=int, default=None)
    ap.add_argument("--model-id", default=None)
    ap.add_argument("--no-eval", action="store_true")
    _sagemaker_defaults(ap)
    args = ap.parse_args(argv)
    if args.train == "decoder" and args.init_from is None:
        raise SystemExit("--train decoder needs --init-from")
    out_path = _output_path(args)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )

    _keep_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    t_start = time.perf_counter()

    model, cfg = _init_model(args)
    if args.crop_frames % cfg.time_stride or args.crop_size % cfg.spatial_stride:
        raise SystemExit("crop must be a multiple of the strides")
    clips = load_clips(
        args.data, args.holdout_clip, args.holdout_frames, args.max_frames, args.crop_size
    )
    sampler = CropSampler(clips, args.crop_frames, args.crop_size, args.seed)
    model = model.to(device).train()
    params = list(model.parameters())
    if args.train == "decoder":
        # Frozen encoder and codebook: the tokens stay those of --init-from.
        model.encoder.requires_grad_(False).eval()
        model.quantizer.eval()
        params = list(model.decoder.parameters())
    print(f"parameters: {count_parameters(model)} (training {sum(p.numel() for p in params)})")
    opt = torch.optim.Adam(params, lr=args.lr, betas=(0.9, 0.99))
    chan_w = torch.tensor([cfg.luma_weight, cfg.chroma_weight, cfg.chroma_weight])
    chan_w = (chan_w / chan_w.mean()).to(device)
    t_train = time.perf_counter()
    acc = {"loss": 0.0, "mse_y": 0.0, "ppl": 0.0, "n": 0}
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        x = sampler.batch(args.batch).to(device)
        out = model(x, generator=gen)
        err = ycbcr_error(out["recon"], normalize(x))
        rec = (err.pow(2) * chan_w).mean()
        loss = rec + cfg.commitment * out["commit"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        acc["loss"] += loss.item()
        acc["mse_y"] += err[..., 0].detach().pow(2).mean().item() * 127.5**2
        acc["ppl"] += float(out["perplexity"])
        acc["n"] += 1
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            n = acc["n"]
            el = time.perf_counter() - t_train
            print(
                f"step {step + 1:5d}/{args.steps} loss {acc['loss'] / n:.5f} "
                f"psnr_y(full) {10 * math.log10(255**2 / (acc['mse_y'] / n)):.2f} dB "
                f"perplexity {acc['ppl'] / n:.0f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{el / (step + 1):.3f} s/step elapsed {el:.0f}s",
                flush=True,
            )
            acc = {"loss": 0.0, "mse_y": 0.0, "ppl": 0.0, "n": 0}
    train_s = time.perf_counter() - t_train

    # Round-trip through fp16 first so the codebook id names the weights as stored.
    model.load_state_dict(
        {k: v.half().float() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    )
    model.eval()
    codebook_id = make_codebook_id(cfg, model.quantizer.embedding, args.codebook_version)
    if args.init_from is not None and args.train == "decoder":
        src_id = json.loads(Path(args.init_from).with_suffix(".json").read_text())["codebook_id"]
        if codebook_id == src_id:
            raise SystemExit("a fine-tuned decoder needs its own --codebook-version")
    meta: dict[str, Any] = {
        "model_id": cfg.model_id,
        "codebook_id": codebook_id,
        "codebook_size": cfg.codebook_size,
        "time_stride": cfg.time_stride,
        "spatial_stride": cfg.spatial_stride,
        "architecture": cfg.to_dict(),
        "parameters": count_parameters(model),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "training": {
            "command": "python -m sagemaker_models.codec.train "
            + shlex.join(sys.argv[1:] if argv is None else argv),
            "seed": args.seed,
            "steps": args.steps,
            "batch": args.batch,
            "crop": [args.crop_frames, args.crop_size, args.crop_size],
            "lr": args.lr,
            "warmup": args.warmup,
            "threads": args.threads,
            "device": device.type,
            "train": args.train,
            "init_from": None if args.init_from is None else Path(args.init_from).name,
            "torch": torch.__version__,
            "train_seconds": round(train_s, 1),
            "data": [
                {
                    "file": c.name,
                    "sha256": c.sha256,
                    "first_frame": c.first_frame,
                    "frames": len(c.frames),
                    "fps": round(c.fps, 3),
                }
                for c in clips
            ],
            "holdout": {"file": args.holdout_clip, "frames": [0, args.holdout_frames]},
        },
    }
    if not args.no_eval and (args.data / args.holdout_clip).exists():
        frames, info = read_frames(
            args.data / args.holdout_clip, max_frames=args.holdout_frames, limit_frames=None
        )
        codec = Codec(model, codebook_id)
        ev = evaluate(codec, frames, info.fps)
        meta["evaluation"] = {
            "clip": args.holdout_clip,
            "frames": [0, len(frames)],
            "held_out": True,
            **{k: round(v, 4) if isinstance(v, float) else v for k, v in ev.items()},
        }
        print("evaluation:", json.dumps(meta["evaluation"]), flush=True)
    meta["training"]["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    save(model, out_path, meta)
    print(
        f"saved {out_path} ({out_path.stat().st_size} bytes) codebook_id={codebook_id} "
        f"wall {meta['training']['wall_seconds']}s",
        flush=True,
    )


if __name__ == "__main__":
    main()
