"""Blob store on the local file system: ``<home>/blobs/<key>``, written atomically.

Every blob's BLAKE3 digest is kept beside it, in a parallel tree ``<root>/.digests/<key>.b3``
(S3 keeps a checksum per object; local files need their own). A full read
(``get_bytes`` without a range, ``download_file``) verifies it and raises ``CorruptData``
instead of returning damaged bytes. Ranged reads are not verified here: the only ranged
reader, ROI decode, checks each token-blob tile against the blob's own tile digests.
A blob written before digests existed has no digest file and is served unverified
(``verify`` says so; ``sightline doctor`` counts them).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import blake3

from sightline.errors import CorruptData, NotFound

logger = logging.getLogger(__name__)

DIGESTS = ".digests"
_BLOCK = 1 << 20


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        # Keys come from our own code, but refuse traversal anyway: a key is never a way out.
        path = (self.root / key).resolve()
        if (
            not path.is_relative_to(self.root.resolve())
            or not key
            or key.startswith("/")
            or key.split("/", 1)[0] == DIGESTS
        ):
            raise ValueError(f"invalid blob key {key!r}")
        return path

    def _digest_path(self, key: str) -> Path:
        return self.root / DIGESTS / f"{key}.b3"

    def _expected(self, key: str) -> set[str] | None:
        """The digests ``key`` may have: None when it has no digest file (unverified).

        An overwrite records the new digest beside the old one before it replaces the
        file, and drops the old one after, so a crash between the two never makes an
        intact file look corrupt.
        """
        try:
            return set(self._digest_path(key).read_text().split())
        except FileNotFoundError:
            return None

    def _write_digest(self, key: str, digests: list[str]) -> None:
        path = self._digest_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write("\n".join(digests) + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _commit(self, key: str, tmp: str, digest: str) -> None:
        """Move a fully written temporary file into place with its digest recorded."""
        old = self._expected(key) or set()
        self._write_digest(key, [digest, *sorted(old - {digest})])
        os.replace(tmp, self._path(key))
        if old - {digest}:
            self._write_digest(key, [digest])

    def _corrupt(self, key: str, got: str) -> CorruptData:
        logger.error("blob %s failed its BLAKE3 check (got %s); not served", key, got)
        return CorruptData(f"blob {key} failed its integrity check (BLAKE3); it was not served")

    def verify(self, key: str) -> bool | None:
        """True if ``key`` matches its recorded digest, False if not, None if it has none."""
        path = self._path(key)
        expected = self._expected(key)
        if expected is None:
            return None
        return _file_digest(path) in expected

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
            self._commit(key, tmp, _digest(data))
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
                data = fh.read()
                expected = self._expected(key)
                if expected is not None and (got := _digest(data)) not in expected:
                    raise self._corrupt(key, got)
                return data
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
            digest = _copy_hashing(Path(path), Path(tmp))
            self._commit(key, tmp, digest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.uri(key)

    def download_file(self, key: str, path: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise NotFound(f"blob {key} not found")
        got = _copy_hashing(src, Path(path))
        expected = self._expected(key)
        if expected is not None and got not in expected:
            Path(path).unlink(missing_ok=True)
            raise self._corrupt(key, got)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"blob {key} not found")
        return path.stat().st_size

    def list_keys(self, prefix: str) -> list[str]:
        base = self.root
        # Walk only the folder the prefix names (not the whole store, nor the digests).
        folder = base / prefix.rsplit("/", 1)[0] if "/" in prefix else base
        keys = []
        for dirpath, dirnames, filenames in os.walk(folder):
            if Path(dirpath) == base and DIGESTS in dirnames:
                dirnames.remove(DIGESTS)
            for name in filenames:
                if name.startswith(".tmp-"):
                    continue
                key = (Path(dirpath) / name).relative_to(base).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list_keys(prefix)
        for key in keys:
            self._path(key).unlink(missing_ok=True)
            self._digest_path(key).unlink(missing_ok=True)
        return len(keys)

    def uri(self, key: str) -> str:
        return f"file://{self._path(key)}"


def _digest(data: bytes) -> str:
    return f"blake3:{blake3.blake3(data).hexdigest()}"


def _file_digest(path: Path) -> str:
    h = blake3.blake3()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return f"blake3:{h.hexdigest()}"


def _copy_hashing(src: Path, dest: Path) -> str:
    """Copy ``src`` to ``dest`` and return the BLAKE3 of the bytes copied (one read)."""
    h = blake3.blake3()
    with src.open("rb") as fin, dest.open("wb") as fout:
        for block in iter(lambda: fin.read(_BLOCK), b""):
            h.update(block)
            fout.write(block)
    return f"blake3:{h.hexdigest()}"
