"""Where the demo finds real footage: ../shared/data, or Debian's opencv-doc package."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEBIAN_VTEST = "usr/share/doc/opencv-doc/examples/data/vtest.avi"


def shared_data_dir() -> Path | None:
    """``$SIGHTLINE_SHARED_DATA`` or ``../shared/data`` beside the repository."""
    candidates = [os.environ.get("SIGHTLINE_SHARED_DATA"), REPO_ROOT.parent / "shared" / "data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c)
    return None


def vtest_clip(cache_dir: Path) -> Path:
    """vtest.avi from ../shared/data, else extracted from Debian's opencv-doc package."""
    shared = shared_data_dir()
    if shared and (shared / "vtest.avi").is_file():
        return shared / "vtest.avi"
    cached = cache_dir / "vtest.avi"
    if cached.is_file():
        return cached
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise FileNotFoundError(
            "vtest.avi not found: set SIGHTLINE_SHARED_DATA or install Debian's opencv-doc package"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["apt-get", "download", "opencv-doc"], cwd=tmp, check=True, capture_output=True
        )
        deb = next(Path(tmp).glob("opencv-doc_*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        shutil.copyfile(Path(tmp) / "x" / DEBIAN_VTEST, cached)
    return cached
