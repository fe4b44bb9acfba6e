"""Blob store on the local file system: ``<home>/blobs/<key>``, written atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from sightline.errors import NotFound


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        # Keys come from our own code, but refuse traversal anyway: a key is never a way out.
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()) or not key or key.startswith("/"):
            raise ValueError(f"invalid blob key {key!r}")
        return path

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename so a reader never sees half a blob, even after a crash.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.uri(key)

    def get_bytes(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"blob {key} not found")
        with path.open("rb") as fh:
            if byte_range is None:
                return fh.read()
            start, end = byte_range  # inclusive end, as in an HTTP Range header
            fh.seek(start)
            return fh.read(end - start + 1)

    def upload_file(
        self, path: Path, key: str, content_type: str = "application/octet-stream"
    ) -> str:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.uri(key)

    def download_file(self, key: str, path: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise NotFound(f"blob {key} not found")
        shutil.copyfile(src, path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"blob {key} not found")
        return path.stat().st_size

    def list_keys(self, prefix: str) -> list[str]:
        base = self.root
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list_keys(prefix)
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        return len(keys)

    def uri(self, key: str) -> str:
        return f"file://{self._path(key)}"
