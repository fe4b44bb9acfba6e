"""``sightline backup`` / ``sightline restore``: the whole local store as one tar, verified
by hash.

SQLite databases are copied with SQLite's online backup API (a consistent snapshot even
while the server writes); every other file is copied as is. ``MANIFEST.json`` lists each
member's size and BLAKE3. A restore checks every member against the manifest before it
writes anything, then moves the restored tree into place.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import blake3

MANIFEST = "MANIFEST.json"
SKIP_SUFFIXES = ("-wal", "-shm", "-journal")
SKIP_DIRS = ("staging",)


class BackupError(Exception):
    """A backup that is unreadable, incomplete or does not match its manifest."""


def _digest(path: Path) -> str:
    h = blake3.blake3()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return f"blake3:{h.hexdigest()}"


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"


def backup(home: Path, out: Path) -> dict[str, Any]:
    """Write ``out`` (a tar) holding every file of ``home`` and its manifest."""
    home = home.resolve()
    if not home.is_dir():
        raise BackupError(f"{home} is not a Sightline data directory")
    files: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sl-backup-") as tmp:
        snap = Path(tmp)
        for path in sorted(p for p in home.rglob("*") if p.is_file()):
            rel = path.relative_to(home)
            if path.name.endswith(SKIP_SUFFIXES) or rel.parts[0] in SKIP_DIRS:
                continue
            target = snap / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if _is_sqlite(path):
                src, dst = sqlite3.connect(path), sqlite3.connect(target)
                with dst:
                    src.backup(dst)
                src.close()
                dst.close()
            else:
                shutil.copyfile(path, target)
            files.append(
                {"path": rel.as_posix(), "bytes": target.stat().st_size, "hash": _digest(target)}
            )
        manifest = json.dumps({"version": 1, "files": files}, indent=1).encode()
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w") as tar:
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(manifest)
            tar.addfile(info, io.BytesIO(manifest))
            for f in files:
                tar.add(snap / f["path"], arcname=f["path"], recursive=False)
        partial.replace(out)
    return {
        "backup": str(out),
        "files": len(files),
        "bytes": sum(f["bytes"] for f in files),
        "hash": _digest(out),
    }


def restore(archive: Path, home: Path, *, force: bool = False) -> dict[str, Any]:
    """Verify every member of ``archive``, then make ``home`` exactly the backed-up store."""
    home = home.resolve()
    if home.exists() and any(home.iterdir()) and not force:
        raise BackupError(f"{home} is not empty; pass --force to replace it")
    home.parent.mkdir(parents=True, exist_ok=True)
    try:
        tar = tarfile.open(archive, "r")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"cannot read {archive}: {exc}") from exc
    with tar, tempfile.TemporaryDirectory(prefix="sl-restore-", dir=home.parent) as tmp:
        try:
            member = tar.extractfile(MANIFEST)
            manifest = json.loads(member.read()) if member else None
        except (KeyError, ValueError) as exc:
            raise BackupError(f"{archive} has no readable {MANIFEST}") from exc
        if not manifest or manifest.get("version") != 1:
            raise BackupError(f"{archive} has an unknown manifest")
        stage = Path(tmp) / "home"
        expected = {f["path"]: f for f in manifest["files"]}
        names = {m.name for m in tar.getmembers() if m.isfile()} - {MANIFEST}
        if names != set(expected):
            raise BackupError("the archive's files do not match its manifest")
        tar.extractall(
            stage, members=[m for m in tar.getmembers() if m.name in expected], filter="data"
        )
        for rel, f in expected.items():
            got = _digest(stage / rel)
            if got != f["hash"]:
                raise BackupError(
                    f"{rel} does not match its hash in the manifest; nothing was restored"
                )
        if home.exists():
            old = Path(tmp) / "previous"
            home.rename(old)
        stage.rename(home)
    return {
        "restored": str(home),
        "files": len(expected),
        "bytes": sum(f["bytes"] for f in expected.values()),
        "verified": True,
    }
