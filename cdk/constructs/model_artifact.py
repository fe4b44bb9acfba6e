"""The codec's ``model.tar.gz``, built in Python at synth time (no Docker) and shipped as an
S3 asset for a SageMaker PyTorch serving container.

Layout (what the PyTorch inference toolkit expects once it unpacks into ``/opt/ml/model``)::

    <stem>.pt, <stem>.json        the committed weights (sagemaker_models/codec/weights)
    code/inference.py             entry point: re-exports model_fn/input_fn/predict_fn/output_fn
    code/requirements.txt         what the image lacks (installed by the toolkit at start)
    code/sagemaker_models/...     the codec package
    code/sightline/...            the few core modules the handler imports

The archive is byte-for-byte reproducible (sorted members, zeroed times and owners, gzip
without a timestamp), so the asset hash — and the SageMaker Model — only change when the
code or the weights do.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from cdk import constants as c

ENTRY_POINT = '''"""SageMaker entry point: the handler lives in sagemaker_models.codec.inference."""

from sagemaker_models.codec.inference import input_fn, model_fn, output_fn, predict_fn

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]
'''
# What the image lacks beyond torch and numpy: the codec's own list (one source of truth).
REQUIREMENTS_FILE = Path("codec") / "requirements.txt"
# The core modules sagemaker_models.codec imports (tokenblob -> errors).
CORE_MODULES = ("__init__.py", "errors.py", "tokenblob.py")
WEIGHT_SUFFIXES = (".pt", ".json")


def _members(package_dir: Path, weights_dir: Path, core_dir: Path) -> Iterator[tuple[str, bytes]]:
    if weights_dir.is_dir():
        for f in sorted(weights_dir.iterdir()):
            if f.is_file() and f.suffix in WEIGHT_SUFFIXES:
                yield f.name, f.read_bytes()
    yield "code/inference.py", ENTRY_POINT.encode()
    yield "code/requirements.txt", (package_dir / REQUIREMENTS_FILE).read_bytes()
    for f in sorted(package_dir.rglob("*.py")):
        rel = f.relative_to(package_dir.parent)
        if "__pycache__" in rel.parts:
            continue
        yield f"code/{rel.as_posix()}", f.read_bytes()
    for name in CORE_MODULES:
        yield f"code/sightline/{name}", (core_dir / name).read_bytes()


def build_model_archive(
    out_file: Path,
    *,
    package_dir: Path = c.CODEC_PACKAGE_DIR,
    weights_dir: Path = c.CODEC_WEIGHTS_DIR,
    core_dir: Path = c.CORE_LIBRARY_DIR,
) -> Path:
    """Write the reproducible ``model.tar.gz`` to ``out_file`` (rewritten only on change)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in _members(package_dir, weights_dir, core_dir):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    packed = gzip.compress(raw.getvalue(), compresslevel=6, mtime=0)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    if not out_file.is_file() or hashlib.sha256(out_file.read_bytes()).digest() != (
        hashlib.sha256(packed).digest()
    ):
        out_file.write_bytes(packed)
    return out_file


def weights_present(weights_dir: Path = c.CODEC_WEIGHTS_DIR) -> bool:
    return weights_dir.is_dir() and any(weights_dir.glob("*.pt"))


class CodecModelArtifact(Construct):
    """The archive as a file asset; ``model_data_url`` is its ``s3://`` URL."""

    def __init__(self, scope: Construct, construct_id: str, *, build_dir: Path) -> None:
        super().__init__(scope, construct_id)
        archive = build_model_archive(build_dir / "codec-model.tar.gz")
        self.has_weights = weights_present()
        self.asset = s3_assets.Asset(self, "Archive", path=str(archive))

    @property
    def model_data_url(self) -> str:
        return self.asset.s3_object_url

    @property
    def object_arn(self) -> str:
        return self.asset.bucket.arn_for_objects(self.asset.s3_object_key)
