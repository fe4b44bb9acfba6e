"""Live sources and schedules on one machine, behind the ports KVS and EventBridge Scheduler
fill on AWS.

* ``LoopingFileSource``: a file played in a loop as a camera that started at the camera's
  origin. What the camera showed in [t0, t1) is the file at ``(t0 - origin) mod duration``;
  like a KVS archive it can be read back for any past window (within retention), and
  nothing exists past now. A missing or unreadable file is an outage: no media.
* ``StreamRecorder`` + ``RecordedSource``: an RTSP/HTTP/UDP URL pulled by ffmpeg into
  one-second MPEG-TS fragments under ``SIGHTLINE_HOME`` with wall-clock times (the local
  stand-in for a KVS producer); clips are cut from the fragments. While the recorder is
  down nothing is recorded, and those windows become gaps.
* ``LocalScheduler``: schedules kept in the local tables; ``sightline up`` fires them.
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sightline.errors import TransientError
from sightline.models import utcnow
from sightline.ports import Fragment, TableStore

logger = logging.getLogger(__name__)

SCHEDULES_TABLE = "schedules"
FRAGMENT_SECONDS = 1.0
# A segment reported this far from where the chain puts it means the input stalled.
RESYNC_S = 1.0


def is_stream_url(url: str | None) -> bool:
    """A camera source pulled over the network (rtsp://, udp://, ...), not a local file."""
    return bool(url) and "://" in url and not url.startswith("file://")  # type: ignore[operator]


def file_source_path(url: str) -> Path:
    """The file a file camera plays (a path, or a file:// URL)."""
    return Path(url.removeprefix("file://")).expanduser()


def _encode_args(threads: int) -> list[str]:
    from sightline.services.media import h264_mp4_args

    return h264_mp4_args(threads=threads, crf=18)


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TransientError(f"ffmpeg timed out after {timeout:.0f}s") from exc


def _ok(res: subprocess.CompletedProcess[bytes], dest: Path) -> bool:
    return res.returncode == 0 and dest.is_file() and dest.stat().st_size > 0


@functools.lru_cache(maxsize=64)
def _file_duration(path: str, size: int, mtime_ns: int, ffprobe: str, ffmpeg: str) -> float | None:
    """A camera file's duration, probed once per version of the file (plan and fetch build
    a source per call; size and mtime in the key notice a replaced file)."""
    from sightline.services import media

    try:
        info = media.probe(
            Path(path),
            ffprobe=ffprobe,
            ffmpeg=ffmpeg,
            max_bytes=1 << 40,
            max_seconds=1e9,
            max_pixels=1 << 30,
        )
    except Exception as exc:  # unreadable now: the camera is down, not broken
        logger.warning("camera file %s unreadable: %s", path, exc)
        return None
    return info.duration_s


class LoopingFileSource:
    def __init__(
        self,
        path: Path,
        origin: datetime,
        *,
        ffmpeg: str = "ffmpeg",
        ffprobe: str = "ffprobe",
        threads: int = 2,
        clock: Any = utcnow,
    ) -> None:
        self.path = path
        self.origin = origin
        self.ffmpeg = ffmpeg
        self.ffprobe = ffprobe
        self.threads = threads
        self.clock = clock

    def _length(self) -> float | None:
        """The file's duration in seconds, or None while it cannot be read (an outage)."""
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return _file_duration(
            str(self.path), stat.st_size, stat.st_mtime_ns, self.ffprobe, self.ffmpeg
        )

    def fragments(self, start: datetime, end: datetime) -> list[Fragment]:
        length = self._length()
        if length is None:
            return []
        lo, hi = max(start, self.origin), min(end, self.clock())
        rate = self.path.stat().st_size / max(length, 1e-3)
        out: list[Fragment] = []
        n = int((lo - self.origin).total_seconds() // FRAGMENT_SECONDS)
        while True:
            f0 = self.origin + timedelta(seconds=n * FRAGMENT_SECONDS)
            f1 = f0 + timedelta(seconds=FRAGMENT_SECONDS)
            if f0 >= hi:
                return out
            if f1 > lo:
                out.append(Fragment(str(n), f0, f1, int(rate * FRAGMENT_SECONDS)))
            n += 1

    def clip(self, start: datetime, end: datetime, dest: Path) -> bool:
        length = self._length()
        if length is None or end <= self.origin or start >= self.clock():
            return False
        start = max(start, self.origin)
        offset = (start - self.origin).total_seconds() % length
        seconds = (end - start).total_seconds()
        cmd = [
            self.ffmpeg,
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-stream_loop",
            "-1",
            "-ss",
            f"{offset:.3f}",
            "-i",
            str(self.path),
            "-t",
            f"{seconds:.3f}",
            *_encode_args(self.threads),
            str(dest),
        ]
        res = _run(cmd, timeout=max(60.0, 6 * seconds))
        if not _ok(res, dest):
            if not self.path.is_file():
                return False
            err = res.stderr.decode(errors="replace").strip().splitlines()
            raise TransientError(f"reading the camera file failed: {err[-1] if err else '?'}")
        return True


# ----- recorded streams --------------------------------------------------------------


class RecordedSource:
    """Clips cut from the fragments a ``StreamRecorder`` wrote (``index.jsonl`` + ``*.ts``)."""

    def __init__(self, folder: Path, *, ffmpeg: str = "ffmpeg", threads: int = 2) -> None:
        self.folder = folder
        self.ffmpeg = ffmpeg
        self.threads = threads

    def _all(self) -> list[tuple[Fragment, Path]]:
        index = self.folder / "index.jsonl"
        if not index.is_file():
            return []
        out = []
        for line in index.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            path = self.folder / row["file"]
            if path.is_file():
                frag = Fragment(
                    row["file"],
                    datetime.fromisoformat(row["start"]),
                    datetime.fromisoformat(row["end"]),
                    path.stat().st_size,
                )
                out.append((frag, path))
        return out

    def fragments(self, start: datetime, end: datetime) -> list[Fragment]:
        return [f for f, _ in self._all() if f.end > start and f.start < end]

    def clip(self, start: datetime, end: datetime, dest: Path) -> bool:
        parts = [(f, p) for f, p in self._all() if f.end > start and f.start < end]
        if not parts:
            return False
        first = parts[0][0]
        offset = max(0.0, (start - first.start).total_seconds())
        seconds = (min(end, parts[-1][0].end) - max(start, first.start)).total_seconds()
        if seconds <= 0.05:
            return False
        listing = dest.with_suffix(".txt")
        listing.write_text("".join(f"file '{p.resolve()}'\n" for _, p in parts))
        cmd = [
            self.ffmpeg,
            "-v",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            str(listing),
            "-ss",
            f"{offset:.3f}",
            "-t",
            f"{seconds:.3f}",
            *_encode_args(self.threads),
            str(dest),
        ]
        res = _run(cmd, timeout=max(60.0, 6 * seconds))
        if not _ok(res, dest):
            err = res.stderr.decode(errors="replace").strip().splitlines()
            raise TransientError(f"cutting recorded fragments failed: {err[-1] if err else '?'}")
        return True


class StreamRecorder:
    """Pull ``url`` with ffmpeg into one-second fragments with wall-clock times.

    ffmpeg's segment muxer appends each finished segment to a CSV list; this thread turns
    those rows into ``index.jsonl`` entries. Wall times chain from the first segment seen,
    so fragments of one ffmpeg run are exactly contiguous; after a restart a new chain
    starts at the time the first new segment ends, and the time in between is a gap.
    Fragments older than ``keep_s`` are deleted.
    """

    def __init__(
        self,
        url: str,
        folder: Path,
        *,
        ffmpeg: str = "ffmpeg",
        keep_s: float = 3600.0,
        realtime_input: bool = False,
    ) -> None:
        self.url = url
        self.folder = folder
        self.ffmpeg = ffmpeg
        self.keep_s = keep_s
        self.realtime_input = realtime_input
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def start(self) -> StreamRecorder:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._loop, name=f"rec-{self.folder.name}")
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        proc = self._proc
        if proc and proc.poll() is None:
            proc.terminate()
        if self._thread:
            self._thread.join(timeout=10)

    def kill_ffmpeg(self) -> None:
        """Kill the current ffmpeg (an outage, for tests); the loop restarts it."""
        proc = self._proc
        if proc and proc.poll() is None:
            proc.kill()

    def _command(self, run: int) -> list[str]:
        pre = ["-re", "-stream_loop", "-1"] if self.realtime_input else []
        if self.url.startswith("rtsp://"):
            pre += ["-rtsp_transport", "tcp"]
        # Start recording within a second of connecting (the default probing waits ~5 s).
        pre += ["-analyzeduration", "1000000", "-probesize", "2000000"]
        return [
            self.ffmpeg,
            "-v",
            "error",
            "-nostdin",
            "-y",
            *pre,
            "-i",
            self.url,
            "-map",
            "0:v:0",
            "-an",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
            "-crf",
            "20",
            "-pix_fmt",
            "yuv420p",
            "-force_key_frames",
            f"expr:gte(t,n_forced*{FRAGMENT_SECONDS})",
            "-f",
            "segment",
            "-segment_time",
            str(FRAGMENT_SECONDS),
            "-segment_format",
            "mpegts",
            "-segment_list",
            str(self.folder / f"run{run:04d}.csv"),
            "-segment_list_type",
            "csv",
            str(self.folder / f"run{run:04d}-%06d.ts"),
        ]

    def _loop(self) -> None:
        run = int(time.time())
        backoff = 1.0
        while not self._stop.is_set():
            run += 1
            listing = self.folder / f"run{run:04d}.csv"
            log = (self.folder / "recorder.log").open("ab")
            try:
                # stderr to a file: a pipe nobody drains fills up and stalls ffmpeg.
                self._proc = subprocess.Popen(
                    self._command(run), stdout=subprocess.DEVNULL, stderr=log
                )
            except OSError as exc:
                log.close()
                logger.error("recorder for %s cannot start ffmpeg: %s", self.url, exc)
                return
            seen = 0
            chain_end: datetime | None = None
            started = time.monotonic()
            while not self._stop.is_set():
                alive = self._proc.poll() is None
                rows = listing.read_text().splitlines() if listing.is_file() else []
                for row in rows[seen:]:
                    name, t0, t1 = row.rsplit(",", 2)
                    length = float(t1) - float(t0)
                    now = utcnow()
                    end = chain_end + timedelta(seconds=length) if chain_end else now
                    if abs((now - end).total_seconds()) > RESYNC_S:
                        end = now  # the input stalled (a source outage): a new chain
                    # Never overlap the previous fragment.
                    end = max(end, (chain_end or end) + timedelta(seconds=length))
                    self._append(name, end - timedelta(seconds=length), end)
                    chain_end = end
                seen = len(rows)
                if not alive:
                    break
                self._prune()
                time.sleep(0.1)
            log.close()
            if self._stop.is_set():
                break
            self.restarts += 1
            logger.warning("recorder for %s stopped (exit %s)", self.url, self._proc.returncode)
            backoff = 1.0 if time.monotonic() - started > 30 else min(backoff * 2, 30.0)
            self._stop.wait(backoff)

    def _append(self, name: str, start: datetime, end: datetime) -> None:
        row = {"file": name, "start": start.isoformat(), "end": end.isoformat()}
        with (self.folder / "index.jsonl").open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    def _prune(self) -> None:
        cutoff = time.time() - self.keep_s
        for path in self.folder.glob("*.ts"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except FileNotFoundError:
                pass


# ----- schedules ---------------------------------------------------------------------


class LocalScheduler:
    """Schedules in the local tables; ``sightline_local.live.ScheduleRunner`` fires them."""

    def __init__(self, tables: TableStore) -> None:
        self.table = tables.table(SCHEDULES_TABLE)

    @staticmethod
    def _sk(tenant_id: str, camera_id: str) -> str:
        return f"{tenant_id}|{camera_id}"

    def put(self, tenant_id: str, camera_id: str, every_s: float, *, enabled: bool) -> None:
        self.table.put(
            "local",
            self._sk(tenant_id, camera_id),
            {
                "tenant_id": tenant_id,
                "camera_id": camera_id,
                "every_s": every_s,
                "enabled": enabled,
                "updated_at": datetime.now(UTC).isoformat(),
            },
        )

    def delete(self, tenant_id: str, camera_id: str) -> None:
        self.table.delete("local", self._sk(tenant_id, camera_id))

    def all(self) -> list[dict[str, Any]]:
        return self.table.query("local")
