"""VQ-VAE 3D video codec (``vqvae3d-v1``): model, EMA vector quantizer and a ``Codec`` wrapper.

Shape of the network (defaults: ``time_stride=4``, ``spatial_stride=8``, K=1024)::

    RGB uint8 [T,H,W,3] -> pad (replicate) to multiples of the strides
    encoder: space-to-depth (2 frames x 4x4 px) -> 1x1 conv -> space-to-depth (2 x 2x2)
             -> 1x1 conv -> residual (1,3,3) blocks at token resolution -> 1x1 to D
    quantizer: nearest of K codebook vectors (EMA updates, dead-code restart)
    decoder: 1x1 -> residual (2+1)D blocks at token resolution (spatial 3x3, temporal 3)
             -> 1x1 + depth-to-space -> residual 3x3 blocks at 1/4 resolution
             -> 1x1 + depth-to-space -> RGB (uint8 at inference)

Design choices that matter for the rest of the system:

* No normalization layer anywhere (GroupNorm/BatchNorm statistics span the whole frame),
  so every output pixel depends only on a bounded token neighbourhood. That makes the
  decoder's receptive field finite and known (``Codec.halo``): decoding a token window
  with that halo reproduces the full decode (to float rounding: oneDNN blocks convolutions
  by tensor size, so a rare pixel may land one level off), which is what ROI decode and
  chunked decode rely on.
* The encoder never mixes token steps (its convolutions are per step), so long clips are
  encoded in temporal chunks with no seams; the decoder mixes neighbouring steps (temporal
  kernel 3) to smooth transitions, and chunked decode adds a temporal halo.
* Light stem at full resolution (space-to-depth + 1x1 convs) because memory traffic at
  full resolution dominates CPU time; capacity sits at token resolution.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sagemaker_models.codec.background import CODING as BACKGROUND_CODING
from sagemaker_models.codec.background import (
    RGB2YCC,
    BackgroundCoding,
    BackgroundParams,
    coded_background,
    encode_residual,
    median_background,
    pack_scales,
    residual_rgb,
    skip_mask,
)
from sagemaker_models.codec.background import encode_tiles as encode_background_tiles

log = logging.getLogger(__name__)

MODEL_ID = "vqvae3d-v1"
DEFAULT_STICKINESS = 0.5

# BT.601 full-range (JPEG) RGB -> YCbCr. The network works in RGB (so input and output need no
# colour conversion pass); the loss converts the error to YCbCr to weight luma above chroma
# (PSNR-Y and MS-SSIM are measured on luma).
_RGB2YCC = torch.from_numpy(RGB2YCC)


@dataclass(frozen=True)
class CodecConfig:
    """Architecture hyper-parameters (saved as JSON beside the weights)."""

    model_id: str = MODEL_ID
    time_stride: int = 4
    spatial_stride: int = 8
    codebook_size: int = 1024
    embed_dim: int = 32
    stem_channels: int = 48  # after the first space-to-depth
    width: int = 96  # channels at token resolution
    fine_width: int = 32  # decoder channels at 1/(spatial_stride/2) resolution
    enc_blocks: int = 2
    dec_blocks: int = 2  # residual blocks at token resolution
    # How many of those (the first ones) also mix neighbouring token steps (temporal kernel 3).
    # None = all of them (vqvae3d-v1). Each costs one token step of decoder context (halo),
    # which ROI decode must read on both sides of the requested time range.
    dec_temporal_blocks: int | None = None
    dec_fine_blocks: int = 2  # 3x3 blocks at the intermediate resolution
    ema_decay: float = 0.99
    dead_threshold: float = 0.1  # EMA usage below which a code is restarted (training only)
    commitment: float = 0.25
    luma_weight: float = 1.0
    chroma_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.spatial_stride % 2 or self.spatial_stride < 4:
            raise ValueError("spatial_stride must be an even number >= 4")
        if self.time_stride not in (1, 2, 4, 8):
            raise ValueError("time_stride must be 1, 2, 4 or 8")
        if not 2 <= self.codebook_size <= 65536:
            raise ValueError("codebook_size must fit uint16 indices")
        if self.dec_temporal_blocks is not None and not (
            0 <= self.dec_temporal_blocks <= self.dec_blocks
        ):
            raise ValueError("dec_temporal_blocks must be between 0 and dec_blocks")

    @property
    def temporal_blocks(self) -> int:
        """Decoder blocks with a temporal convolution."""
        return self.dec_blocks if self.dec_temporal_blocks is None else self.dec_temporal_blocks

    @property
    def stage1(self) -> tuple[int, int]:
        """(time, space) factors of the first space-to-depth."""
        t1 = min(2, self.time_stride)
        return t1, self.spatial_stride // 2

    @property
    def stage2(self) -> tuple[int, int]:
        """(time, space) factors of the second space-to-depth."""
        return self.time_stride // self.stage1[0], 2

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CodecConfig:
        """Build from a JSON dict, ignoring keys that are not architecture fields."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the hyper-parameters."""
        return asdict(self)


# Activations are kept channels-last (memory order [B, T, H, W, C]; as NCDHW tensors they have
# channels_last_3d strides): oneDNN convolutions run about 1.5x faster on CPU that way, and
# space-to-depth on a channels-last array is a single permute of the raw frames.


def space_to_depth(x: torch.Tensor, ft: int, fs: int) -> torch.Tensor:
    """Channels-last [B,T,H,W,C] -> [B, T/ft, H/fs, W/fs, ft*fs*fs*C] (channel order t,y,x,c)."""
    b, t, h, w, c = x.shape
    x = x.reshape(b, t // ft, ft, h // fs, fs, w // fs, fs, c)
    x = x.permute(0, 1, 3, 5, 2, 4, 6, 7)
    return x.reshape(b, t // ft, h // fs, w // fs, ft * fs * fs * c)


def depth_to_space(x: torch.Tensor, ft: int, fs: int) -> torch.Tensor:
    """Inverse of ``space_to_depth``: [B,T,H,W,ft*fs*fs*C] -> [B, T*ft, H*fs, W*fs, C]."""
    b, t, h, w, cc = x.shape
    c = cc // (ft * fs * fs)
    x = x.reshape(b, t, h, w, ft, fs, fs, c)
    x = x.permute(0, 1, 4, 2, 5, 3, 6, 7)
    return x.reshape(b, t * ft, h * fs, w * fs, c)


def _ncdhw(x: torch.Tensor) -> torch.Tensor:
    """[B,T,H,W,C] (contiguous) -> NCDHW view with channels_last_3d strides (no copy)."""
    return x.permute(0, 4, 1, 2, 3)


def _ndhwc(x: torch.Tensor) -> torch.Tensor:
    """NCDHW -> [B,T,H,W,C], contiguous in memory (free when x is channels_last_3d)."""
    return x.permute(0, 2, 3, 4, 1).contiguous()


class ResBlock(nn.Module):
    """x + 1x1(act(3x3(act(x)))), spatial 3x3; optionally a temporal kernel-3 conv too."""

    def __init__(self, channels: int, temporal: bool = False) -> None:
        super().__init__()
        self.spatial = nn.Conv3d(channels, channels, (1, 3, 3), padding=(0, 1, 1))
        self.temporal = (
            nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0)) if temporal else None
        )
        self.out = nn.Conv3d(channels, channels, 1)
        # Start as identity: without normalization layers this keeps early training stable.
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.spatial(F.gelu(x))
        if self.temporal is not None:
            h = self.temporal(F.gelu(h))
        return x + self.out(F.gelu(h))


class Encoder(nn.Module):
    """Pixels [B,T,H,W,3] (uint8 RGB, or float RGB in [-1,1]) -> latents NCDHW [B,D,T',H',W']."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        (t1, s1), (t2, s2) = cfg.stage1, cfg.stage2
        self.stem = nn.Conv3d(3 * t1 * s1 * s1, cfg.stem_channels, 1)
        self.down = nn.Conv3d(cfg.stem_channels * t2 * s2 * s2, cfg.width, 1)
        self.blocks = nn.Sequential(*[ResBlock(cfg.width) for _ in range(cfg.enc_blocks)])
        self.proj = nn.Conv3d(cfg.width, cfg.embed_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (t1, s1), (t2, s2) = self.cfg.stage1, self.cfg.stage2
        h = space_to_depth(x, t1, s1)  # on uint8 input this permute moves 1 byte per value
        if h.dtype == torch.uint8:
            h = h.float().sub_(127.5).div_(127.5)
        h = F.gelu(self.stem(_ncdhw(h)))
        h = self.down(_ncdhw(space_to_depth(_ndhwc(h), t2, s2)))
        h = self.blocks(h)
        return self.proj(F.gelu(h))


class Decoder(nn.Module):
    """Quantized latents NCDHW -> pixels [B,T,H,W,3], float RGB in about [-1,1]."""

    def __init__(self, cfg: CodecConfig) -> None:
        super().__init__()
        self.cfg = cfg
        (t1, s1), (t2, s2) = cfg.stage1, cfg.stage2
        self.inp = nn.Conv3d(cfg.embed_dim, cfg.width, 1)
        self.blocks = nn.Sequential(
            *[ResBlock(cfg.width, temporal=i < cfg.temporal_blocks) for i in range(cfg.dec_blocks)]
        )
        self.up = nn.Conv3d(cfg.width, cfg.fine_width * t2 * s2 * s2, 1)
        self.fine = nn.Sequential(*[ResBlock(cfg.fine_width) for _ in range(cfg.dec_fine_blocks)])
        self.out = nn.Conv3d(cfg.fine_width, 3 * t1 * s1 * s1, 1)

    def forward(self, z: torch.Tensor, to_uint8: bool = False) -> torch.Tensor:
        """With ``to_uint8`` the output is rounded to uint8 RGB before the last rearrangement."""
        (t1, s1), (t2, s2) = self.cfg.stage1, self.cfg.stage2
        h = self.blocks(self.inp(z))
        h = _ncdhw(depth_to_space(_ndhwc(self.up(F.gelu(h))), t2, s2))
        h = self.fine(h)
        y = _ndhwc(self.out(F.gelu(h)))
        if to_uint8:
            y = y.mul_(127.5).add_(127.5).round_().clamp_(0, 255).to(torch.uint8)
        return depth_to_space(y, t1, s1)

    def halo(self) -> tuple[int, int]:
        """(token steps, tokens) each side that any output pixel depends on."""
        fine = math.ceil(self.cfg.dec_fine_blocks / self.cfg.stage2[1])
        return self.cfg.temporal_blocks, self.cfg.dec_blocks + fine


class EMAVectorQuantizer(nn.Module):
    """Vector quantizer with an EMA-updated codebook and dead-code restart.

    The codebook is a buffer (not a parameter): it moves by exponential moving averages of
    the encoder outputs assigned to each code, which is more stable than a gradient-trained
    codebook; the encoder is pulled towards its codes by the commitment loss.
    """

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        decay: float = 0.99,
        eps: float = 1e-5,
        dead_threshold: float = 0.03,
    ) -> None:
        super().__init__()
        self.k, self.dim, self.decay, self.eps = codebook_size, dim, decay, eps
        self.dead_threshold = dead_threshold
        self.register_buffer("embedding", torch.randn(codebook_size, dim) * 0.1)
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("embed_sum", self.embedding.clone())
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.embedding: torch.Tensor
        self.cluster_size: torch.Tensor
        self.embed_sum: torch.Tensor
        self.initialized: torch.Tensor

    def distances(self, flat: torch.Tensor, exact: bool = True) -> torch.Tensor:
        """Squared L2 distances [N, K] between latents [N, D] and the codebook.

        With ``exact=False`` the per-row constant ``|x|^2`` is left out (same argmin).
        """
        e = self.embedding
        d = e.pow(2).sum(1)[None] - 2 * flat @ e.t()
        return d + flat.pow(2).sum(1, keepdim=True) if exact else d

    def nearest(self, flat: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
        """Index of the nearest code per row (chunks keep the [n, K] block cache-sized)."""
        if not len(flat):
            return torch.zeros(0, dtype=torch.long, device=flat.device)
        return torch.cat(
            [
                self.distances(flat[i : i + chunk], exact=False).argmin(1)
                for i in range(0, len(flat), chunk)
            ]
        )

    def lookup(self, idx: torch.Tensor) -> torch.Tensor:
        """Codebook vectors for indices [...] -> [..., D]."""
        return F.embedding(idx.long(), self.embedding)

    @torch.no_grad()
    def _sample(
        self, flat: torch.Tensor, n: int, generator: torch.Generator | None
    ) -> torch.Tensor:
        pick = torch.randint(0, len(flat), (n,), generator=generator, device=flat.device)
        return flat[pick]

    @torch.no_grad()
    def _ema_update(
        self, flat: torch.Tensor, idx: torch.Tensor, generator: torch.Generator | None
    ) -> None:
        if not bool(self.initialized):
            # Data-dependent init: codes start on encoder outputs, not random points.
            init = self._sample(flat, self.k, generator)
            self.embedding.copy_(init)
            self.embed_sum.copy_(init)
            self.cluster_size.fill_(1.0)
            self.initialized.fill_(True)
            idx = self.nearest(flat)
        counts = torch.bincount(idx, minlength=self.k).to(flat.dtype)
        sums = torch.zeros_like(self.embed_sum).index_add_(0, idx, flat)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        size = (self.cluster_size + self.eps) / (n + self.k * self.eps) * n  # Laplace smoothing
        self.embedding.copy_(self.embed_sum / size[:, None])
        # Dead-code restart: codes nobody uses any more jump onto random current latents.
        dead = self.cluster_size < self.dead_threshold
        n_dead = int(dead.sum())
        if n_dead:
            fresh = self._sample(flat, n_dead, generator)
            self.embedding[dead] = fresh
            self.embed_sum[dead] = fresh
            self.cluster_size[dead] = 1.0

    def forward(
        self, z: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """z [B,D,T,H,W] -> (quantized with straight-through grads, indices [B,T,H,W],
        commitment loss, codebook perplexity)."""
        b, d, t, h, w = z.shape
        flat = z.permute(0, 2, 3, 4, 1).reshape(-1, d)
        with torch.no_grad():
            idx = self.nearest(flat.detach())
            if self.training:
                self._ema_update(flat.detach(), idx, generator)
                idx = self.nearest(flat.detach())
        q = self.lookup(idx)
        commit = F.mse_loss(flat, q.detach())
        q = flat + (q - flat).detach()
        probs = torch.bincount(idx, minlength=self.k).float() / max(1, len(idx))
        perplexity = torch.exp(-(probs * torch.log(probs + 1e-10)).sum())
        return (
            q.view(b, t, h, w, d).permute(0, 4, 1, 2, 3),
            idx.view(b, t, h, w),
            commit,
            perplexity,
        )


class VQVAE3D(nn.Module):
    """Encoder + EMA quantizer + decoder."""

    def __init__(self, cfg: CodecConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or CodecConfig()
        self.encoder = Encoder(self.cfg)
        self.quantizer = EMAVectorQuantizer(
            self.cfg.codebook_size,
            self.cfg.embed_dim,
            decay=self.cfg.ema_decay,
            dead_threshold=self.cfg.dead_threshold,
        )
        self.decoder = Decoder(self.cfg)
        self.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """x: [B,T,H,W,3] uint8 RGB (or float in [-1,1]), T/H/W multiples of the strides.

        Returns ``recon`` (float RGB [-1,1], same layout), ``indices`` [B,T',H',W'],
        ``commit`` (commitment loss) and ``perplexity`` (codebook usage).
        """
        z = self.encoder(x)
        q, idx, commit, perplexity = self.quantizer(z, generator)
        return {
            "recon": self.decoder(q),
            "indices": idx,
            "commit": commit,
            "perplexity": perplexity,
        }

    def decode_indices(self, idx: torch.Tensor, to_uint8: bool = False) -> torch.Tensor:
        """Token indices [B,T',H',W'] -> RGB [B,T,H,W,3] (float [-1,1], or uint8)."""
        q = self.quantizer.lookup(idx)  # [B,T',H',W',D]: already channels-last
        return self.decoder(_ncdhw(q), to_uint8=to_uint8)


# --------------------------------------------------------------------------- pixel helpers


def normalize(frames: torch.Tensor) -> torch.Tensor:
    """uint8 RGB -> float RGB in [-1, 1] (the model's pixel space)."""
    return frames.float().sub_(127.5).div_(127.5)


def ycbcr_error(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(recon - target) in BT.601 full-range YCbCr, same [-1,1] scale: [..., 3] (Y, Cb, Cr).

    Used by the training loss to weight luma above chroma.
    """
    return (recon - target) @ _RGB2YCC.to(recon.device, recon.dtype).t()


def pad_frames(frames: torch.Tensor, ts: int, ss: int) -> torch.Tensor:
    """Replicate-pad uint8 [T,H,W,3] to multiples of the strides (edges repeat: no seams)."""
    t, h, w, _ = frames.shape
    pt, ph, pw = (-t) % ts, (-h) % ss, (-w) % ss
    if pw:
        frames = frames[:, :, torch.arange(w + pw).clamp_(max=w - 1)]
    if ph:
        frames = frames[:, torch.arange(h + ph).clamp_(max=h - 1)]
    if pt:
        frames = frames[torch.arange(t + pt).clamp_(max=t - 1)]
    return frames


def codebook_digest(embedding: torch.Tensor) -> str:
    """Short content hash of a codebook tensor (fp16 bytes, so fp16/fp32 copies agree)."""
    data = embedding.detach().cpu().to(torch.float16).contiguous().numpy().tobytes()
    return hashlib.sha256(data).hexdigest()[:10]


def make_codebook_id(cfg: CodecConfig, embedding: torch.Tensor, version: str = "v1") -> str:
    """``cb-<version>-k<K>-<digest>``: names exactly one set of codebook vectors."""
    return f"cb-{version}-k{cfg.codebook_size}-{codebook_digest(embedding)}"


# --------------------------------------------------------------------------- codec wrapper


@dataclass
class EncodedClip:
    """Tokens of one clip plus what is needed to decode them back to the original size."""

    tokens: np.ndarray  # uint16 [Tt, Ht, Wt]
    frame_size: tuple[int, int]  # original (H, W)
    n_frames: int
    fps: float
    time_stride: int
    spatial_stride: int
    codebook_id: str
    model_id: str
    codebook_size: int
    # Background layer (``background.py``): the reference token per position and the
    # quantized residual of the chunk's background; None without the layer.
    reference: np.ndarray | None = None  # uint16 [Ht, Wt]
    background: BackgroundCoding | None = None

    def to_blob(
        self,
        temporal_window: int | None = None,
        version: int | None = None,
        tile_size: Sequence[int] | None = None,
    ) -> bytes:
        """Serialize as a token blob (see ``sightline.tokenblob``; default: its current
        format version, or version 3 with the background layer, and that version's
        default temporal window and tile size)."""
        from sightline.tokenblob import DEFAULT_TILE_V2, FORMAT_VERSION, pack_tokens

        tile = tuple(tile_size or DEFAULT_TILE_V2)
        extra: dict[str, Any] = {}
        if self.background is not None:
            from sightline.tokenblob import BackgroundSection

            th, tw = tile
            grid = (-(-self.tokens.shape[1] // th), -(-self.tokens.shape[2] // tw))
            raw, words = encode_background_tiles(self.background, grid, (th, tw))
            extra = {
                "reference": self.reference,
                "background": BackgroundSection(
                    coding=BACKGROUND_CODING,
                    q=(self.background.q_luma, self.background.q_chroma),
                    scales=pack_scales(raw),
                    tiles=words,
                ),
            }
        return pack_tokens(
            self.tokens,
            tile_size=tile,
            **extra,
            codebook_id=self.codebook_id,
            model_id=self.model_id,
            time_stride=self.time_stride,
            spatial_stride=self.spatial_stride,
            frame_size=self.frame_size,
            fps=self.fps,
            n_frames=self.n_frames,
            temporal_window=temporal_window,
            codebook_size=self.codebook_size,
            version=version or (3 if self.background is not None else FORMAT_VERSION),
        )


def _as_uint8_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(frames)
    if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[-1] != 3 or 0 in t.shape:
        raise ValueError(f"frames must be uint8 [T,H,W,3], got {t.dtype} {tuple(t.shape)}")
    return t


class Codec:
    """Inference wrapper: RGB frames <-> uint16 token grids, with chunking and ROI decode."""

    def __init__(
        self, model: VQVAE3D, codebook_id: str | None = None, device: str | torch.device = "cpu"
    ) -> None:
        self.model = model.eval().to(device)
        self.cfg = model.cfg
        self.device = torch.device(device)
        self.codebook_id = codebook_id or make_codebook_id(self.cfg, model.quantizer.embedding)
        self.model_id = self.cfg.model_id
        # Set by the serving code: where to find the weights of other codebook ids.
        self.registry: Any = None

    @classmethod
    def from_files(
        cls,
        weights: str | Path,
        config: str | Path | None = None,
        device: str | torch.device = "cpu",
    ) -> Codec:
        """Load a state dict (``.pt``) and its JSON config (default: same stem, ``.json``)."""
        weights = Path(weights)
        config = Path(config) if config else weights.with_suffix(".json")
        meta = json.loads(config.read_text())
        cfg = CodecConfig.from_dict(meta.get("architecture", meta))
        model = VQVAE3D(cfg)
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        )
        # The id's version label is free; its K and content digest must match the tensor.
        suffix = f"-k{cfg.codebook_size}-{codebook_digest(model.quantizer.embedding)}"
        if meta.get("codebook_id") and not str(meta["codebook_id"]).endswith(suffix):
            raise ValueError(
                f"{weights}: codebook_id {meta['codebook_id']} does not match "
                f"the weights (…{suffix})"
            )
        return cls(model, meta.get("codebook_id"), device)

    @property
    def time_stride(self) -> int:
        """Frames per token step."""
        return self.cfg.time_stride

    @property
    def spatial_stride(self) -> int:
        """Pixels per token along each axis."""
        return self.cfg.spatial_stride

    @property
    def halo(self) -> tuple[int, int]:
        """(token steps, tokens) of context each side that make a windowed decode match."""
        return self.model.decoder.halo()

    def embeddings(self) -> np.ndarray:
        """The codebook as float32 [K, D] (for token-space analytics)."""
        return self.model.quantizer.embedding.detach().cpu().float().numpy()

    @torch.inference_mode()
    def encode(
        self,
        frames: np.ndarray | torch.Tensor,
        *,
        fps: float = 10.0,
        chunk_steps: int = 8,
        stickiness: float = DEFAULT_STICKINESS,
        background: BackgroundParams | None = None,
    ) -> EncodedClip:
        """Encode uint8 RGB frames [T,H,W,3] to a token grid [ceil(T/ts), ceil(H/ss), ceil(W/ss)].

        ``stickiness`` >= 0 is a rate-distortion knob: a token keeps the previous step's
        index when that code is within ``(1 + stickiness)`` times the best code's squared
        distance, so static areas repeat exactly (cheaper to compress, less flicker). On
        vtest.avi 0.5 saves ~20 % of the bytes for -0.03 dB PSNR-Y; 0 is plain nearest code.

        ``background`` turns on the background layer (``background.py``): the clip's
        median background is coded once at higher quality and every token block it
        reproduces within ``background.skip_mse`` takes the background's token.
        """
        frames_t = _as_uint8_tensor(frames)
        n, h, w, _ = frames_t.shape
        ts, ss = self.time_stride, self.spatial_stride
        q = self.model.quantizer
        chunk_frames = max(1, chunk_steps) * ts
        out: list[torch.Tensor] = []
        prev: torch.Tensor | None = None
        for f0 in range(0, n, chunk_frames):
            x = pad_frames(frames_t[f0 : f0 + chunk_frames], ts, ss).to(self.device)
            z = self.model.encoder(x[None])[0]  # [D,T',H',W'] (channels-last strides)
            d, tt, ht, wt = z.shape
            flat = z.permute(1, 2, 3, 0).reshape(tt, ht * wt, d)
            if stickiness <= 0:
                out.extend(q.nearest(flat.reshape(-1, d)).view(tt, ht, wt).unbind(0))
                continue
            for t in range(tt):
                dist = q.distances(flat[t])
                best = dist.argmin(1)
                if prev is not None:
                    d_best = dist.gather(1, best[:, None])[:, 0]
                    d_prev = dist.gather(1, prev[:, None])[:, 0]
                    best = torch.where(d_prev <= d_best * (1 + stickiness), prev, best)
                prev = best
                out.append(best.view(ht, wt))
        tokens = torch.stack(out).cpu().numpy().astype(np.uint16)
        reference = coding = None
        if background is not None:
            reference, coding = self._encode_background(frames_t, tokens, background)
        return EncodedClip(
            reference=reference,
            background=coding,
            tokens=tokens,
            frame_size=(h, w),
            n_frames=n,
            fps=float(fps),
            time_stride=ts,
            spatial_stride=ss,
            codebook_id=self.codebook_id,
            model_id=self.model_id,
            codebook_size=self.cfg.codebook_size,
        )

    def _encode_background(
        self, frames: torch.Tensor, tokens: np.ndarray, params: BackgroundParams
    ) -> tuple[np.ndarray, BackgroundCoding]:
        """Reference tokens and coded residual of the clip's background; marks (in place)
        the token blocks the coded background reproduces as reference tokens."""
        ts, ss = self.time_stride, self.spatial_stride
        h, w = frames.shape[1:3]
        bg = median_background(frames.numpy(), params.max_frames)
        reference = self.encode(np.repeat(bg[None], ts, 0), stickiness=0).tokens[0]
        base = self.background_base(reference)  # float32 [Ht*ss, Wt*ss, 3]
        coding = encode_residual(bg, base[:h, :w], params)
        gh, gw = base.shape[:2]  # the token grid's pixels, what the skip decision compares
        coded = coded_background(base, residual_rgb(coding, (0, 0, gw, gh)))
        step_chunk = 8
        for s0 in range(0, len(tokens), step_chunk):
            x = pad_frames(frames[s0 * ts : (s0 + step_chunk) * ts], ts, ss).numpy()
            skip = skip_mask(x, coded, (ts, ss), params)
            part = tokens[s0 : s0 + step_chunk]
            part[skip] = np.broadcast_to(reference, part.shape)[skip]
        return reference, coding

    @torch.inference_mode()
    def background_base(self, reference: np.ndarray) -> np.ndarray:
        """The decoder's picture of a reference-token plane ``[h, w]``: float32 RGB
        ``[h*ss, w*ss, 3]``, the frames of one token step of it averaged.

        One step without temporal context (a third of the work of holding the plane still
        over the decoder's halo); encoder and decoder compute it the same way, and the
        residual absorbs the difference."""
        grid = torch.from_numpy(np.asarray(reference, np.int64))[None]
        return self._decode_grid(grid).float().mean(0).numpy()

    @torch.inference_mode()
    def _decode_grid(self, tokens: torch.Tensor) -> torch.Tensor:
        """Decode a token grid [T',H',W'] (int) to uint8 RGB [T'*ts, H'*ss, W'*ss, 3]."""
        return self.model.decode_indices(tokens.long().to(self.device)[None], to_uint8=True)[0]

    def decode(
        self,
        tokens: np.ndarray,
        frame_size: Sequence[int] | None = None,
        n_frames: int | None = None,
        *,
        chunk_steps: int = 16,
        reference: np.ndarray | None = None,
        background: BackgroundCoding | None = None,
    ) -> np.ndarray:
        """Decode a whole token grid to uint8 RGB [n_frames, H, W, 3] (cropped to the original).

        Runs in temporal chunks with a halo of token steps, so the result equals one-shot
        decoding (to float rounding) while memory stays bounded. With the background layer
        (``reference`` plane and ``background`` residual) reference tokens show the
        coded background.
        """
        grid = np.asarray(tokens)
        tt, ht, wt = grid.shape
        h, w = frame_size or (ht * self.spatial_stride, wt * self.spatial_stride)
        n = n_frames or tt * self.time_stride
        return self.decode_region(
            grid,
            origin=(0, 0, 0),
            grid_dims=(tt, ht, wt),
            pixel_box=(0, 0, w, h),
            frames=(0, n),
            chunk_steps=chunk_steps,
            frame_size=(h, w),
            n_frames=n,
            reference=reference,
            residual=None if background is None else residual_rgb(background, (0, 0, w, h)),
        )

    def decode_region(
        self,
        sub: np.ndarray,
        *,
        origin: Sequence[int],
        grid_dims: Sequence[int],
        pixel_box: Sequence[int],
        frames: Sequence[int],
        frame_size: Sequence[int],
        n_frames: int,
        chunk_steps: int = 16,
        reference: np.ndarray | None = None,
        residual: np.ndarray | None = None,
    ) -> np.ndarray:
        """Decode a pixel box and frame range from a token sub-grid (ROI decode).

        ``sub`` holds the tokens ``grid[o_t:o_t+st, o_y:o_y+sy, o_x:o_x+sx]`` of the full grid
        (``grid_dims``) starting at ``origin``; it must contain the box's tokens plus
        ``halo`` tokens/steps each side (clipped at the grid border) for the result to equal
        a full decode cropped to the box. ``pixel_box`` is ``(x0, y0, x1, y1)`` and
        ``frames`` ``(f0, f1)``, half-open, in original pixels/frames.
        Returns uint8 RGB ``[f1-f0, y1-y0, x1-x0, 3]``.

        Background layer: ``reference`` is the reference-token plane over the same rows and
        columns as ``sub`` and ``residual`` the background residual (RGB float32) of the
        box; where a token equals its reference token the box shows base + residual.
        """
        if (reference is None) != (residual is None):
            raise ValueError("the background layer needs both reference and residual")
        ts, ss = self.time_stride, self.spatial_stride
        ht_, hs = self.halo
        x0, y0, x1, y1 = (int(v) for v in pixel_box)
        f0, f1 = (int(v) for v in frames)
        h, w = frame_size
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and 0 <= f0 < f1 <= n_frames):
            raise ValueError(f"box {pixel_box} / frames {frames} outside {w}x{h}x{n_frames}")
        ot, oy, ox = (int(v) for v in origin)
        st, sy, sx = sub.shape
        gt, gy, gx = (int(v) for v in grid_dims)
        # Token window needed: the box's tokens plus halo, clipped to the full grid.
        ty0, ty1 = max(0, y0 // ss - hs), min(gy, -(-y1 // ss) + hs)
        tx0, tx1 = max(0, x0 // ss - hs), min(gx, -(-x1 // ss) + hs)
        if ty0 < oy or tx0 < ox or ty1 > oy + sy or tx1 > ox + sx:
            raise ValueError("token sub-grid does not cover the region plus its halo")
        win = torch.from_numpy(
            np.ascontiguousarray(sub[:, ty0 - oy : ty1 - oy, tx0 - ox : tx1 - ox]).astype(np.int64)
        )
        s0, s1 = f0 // ts, -(-f1 // ts)  # token steps holding the frames
        py, px = y0 - ty0 * ss, x0 - tx0 * ss
        bg = ref = None
        if reference is not None and residual is not None:
            ref_win = np.asarray(reference[ty0 - oy : ty1 - oy, tx0 - ox : tx1 - ox], np.int64)
            base = self.background_base(ref_win)[py : py + (y1 - y0), px : px + (x1 - x0)]
            bg = torch.from_numpy(coded_background(base, residual))
            ref = torch.from_numpy(ref_win)
        out: list[torch.Tensor] = []
        step = max(1, chunk_steps)
        for c0 in range(s0, s1, step):
            c1 = min(s1, c0 + step)
            a, b = max(0, c0 - ht_), min(gt, c1 + ht_)
            if a < ot or b > ot + st:
                raise ValueError("token sub-grid does not cover the frames plus their halo")
            rgb = self._decode_grid(win[a - ot : b - ot])  # [frames, H, W, 3] of the window
            fa = (c0 - a) * ts
            part = rgb[fa : fa + (c1 - c0) * ts, py : py + (y1 - y0), px : px + (x1 - x0)].cpu()
            if bg is not None and ref is not None:
                same = win[c0 - ot : c1 - ot] == ref  # [steps, rows, cols]
                mask = same.repeat_interleave(ts, 0).repeat_interleave(ss, 1)
                mask = mask.repeat_interleave(ss, 2)[:, py : py + (y1 - y0), px : px + (x1 - x0)]
                part = torch.where(mask[..., None], bg, part)
            out.append(part)
        video = torch.cat(out)
        return video[f0 - s0 * ts : f1 - s0 * ts].numpy()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters())
