"""Shared fixtures: an isolated SIGHTLINE_HOME per test and the real clips in ../shared/data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = REPO_ROOT / "events"

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "sightline")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def shared_data_dir() -> Path | None:
    for c in (os.environ.get("SIGHTLINE_SHARED_DATA"), REPO_ROOT.parent / "shared" / "data"):
        if c and Path(c).is_dir():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("../shared/data is absent (set SIGHTLINE_SHARED_DATA to the clips folder)")
    return d


@pytest.fixture(scope="session")
def vtest(shared_data: Path) -> Path:
    path = shared_data / "vtest.avi"
    if not path.is_file():
        pytest.skip("vtest.avi is not in ../shared/data")
    return path


def use_home(path: Path) -> None:
    """Point every adapter at ``path`` (settings and cached adapters are rebuilt)."""
    from sightline.config import reset_settings

    os.environ["SIGHTLINE_HOME"] = str(path)
    reset_settings()


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    old = os.environ.get("SIGHTLINE_HOME")
    use_home(tmp_path / "home")
    yield tmp_path / "home"
    if old is None:
        os.environ.pop("SIGHTLINE_HOME", None)
    else:
        os.environ["SIGHTLINE_HOME"] = old
    from sightline.config import reset_settings

    reset_settings()
