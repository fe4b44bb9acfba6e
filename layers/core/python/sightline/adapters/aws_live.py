"""The live path on AWS: Kinesis Video Streams clips and EventBridge Scheduler schedules."""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from sightline.errors import InvalidVideo, TransientError
from sightline.ports import Fragment

logger = logging.getLogger(__name__)

THROTTLED = {"ClientLimitExceededException", "ThrottlingException", "LimitExceededException"}
# GetClip refuses a range whose fragments change codec private data (a camera switched
# resolution or codec mid-window): the range is split where that happens.
CODEC_CHANGE = {"InvalidCodecPrivateDataException", "MissingCodecPrivateDataException"}
NO_MEDIA = {"ResourceNotFoundException", "NoDataRetentionException"}
MAX_SPLIT_DEPTH = 5


def _selector(start: datetime, end: datetime) -> dict[str, Any]:
    return {
        "FragmentSelectorType": "PRODUCER_TIMESTAMP",
        "TimestampRange": {"StartTimestamp": start, "EndTimestamp": end},
    }


class KvsClipSource:
    """GetClip / ListFragments on one stream, through the stream's data endpoints."""

    def __init__(
        self,
        stream_arn: str,
        *,
        kinesisvideo: Any = None,
        archived_media: Any = None,
        ffmpeg: str = "ffmpeg",
        ffprobe: str = "ffprobe",
    ) -> None:
        self.stream_arn = stream_arn
        self.ffprobe = ffprobe
        self._kv = kinesisvideo
        self._media = archived_media
        self.ffmpeg = ffmpeg

    def _client(self) -> Any:
        if self._media is None:
            self._kv = self._kv or boto3.client("kinesisvideo")
            try:
                endpoint = self._kv.get_data_endpoint(
                    StreamARN=self.stream_arn, APIName="GET_CLIP"
                )["DataEndpoint"]
            except ClientError as err:
                _raise(err)
            self._media = boto3.client("kinesis-video-archived-media", endpoint_url=endpoint)
        return self._media

    def fragments(self, start: datetime, end: datetime) -> list[Fragment]:
        out: list[Fragment] = []
        kwargs: dict[str, Any] = {
            "StreamARN": self.stream_arn,
            "MaxResults": 1000,
            "FragmentSelector": _selector(start, end),
        }
        while True:
            try:
                page = self._client().list_fragments(**kwargs)
            except ClientError as err:
                if err.response["Error"]["Code"] in NO_MEDIA:
                    return []
                _raise(err)
            for f in page.get("Fragments", []):
                t0 = f["ProducerTimestamp"]
                out.append(
                    Fragment(
                        number=f["FragmentNumber"],
                        start=t0,
                        end=t0 + _ms(f.get("FragmentLengthInMilliseconds", 0)),
                        size_bytes=int(f.get("FragmentSizeInBytes", 0)),
                    )
                )
            if not page.get("NextToken"):
                # ListFragments does not promise order.
                return sorted(out, key=lambda f: f.start)
            kwargs = {"StreamARN": self.stream_arn, "NextToken": page["NextToken"]}

    def clip(self, start: datetime, end: datetime, dest: Path) -> bool:
        with tempfile.TemporaryDirectory(prefix="sl-kvs-") as tmp:
            parts = self._pieces(start, end, Path(tmp), depth=0)
            if not parts:
                return False
            if len(parts) == 1:
                parts[0].replace(dest)
            else:
                concat(parts, dest, ffmpeg=self.ffmpeg, ffprobe=self.ffprobe)
        return True

    def _pieces(self, start: datetime, end: datetime, tmp: Path, depth: int) -> list[Path]:
        try:
            resp = self._client().get_clip(
                StreamARN=self.stream_arn, ClipFragmentSelector=_selector(start, end)
            )
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code in NO_MEDIA:
                return []
            if code in CODEC_CHANGE and depth < MAX_SPLIT_DEPTH and end - start > _ms(200):
                mid = start + (end - start) / 2
                return self._pieces(start, mid, tmp, depth + 1) + self._pieces(
                    mid, end, tmp, depth + 1
                )
            _raise(err)
        path = tmp / f"part{len(list(tmp.iterdir())):03d}.mp4"
        with path.open("wb") as fh:
            for block in resp["Payload"].iter_chunks(1 << 20):
                fh.write(block)
        return [path] if path.stat().st_size else []


def concat(
    parts: list[Path], dest: Path, *, ffmpeg: str = "ffmpeg", ffprobe: str = "ffprobe"
) -> None:
    """Join clips whose codec parameters differ (re-encoded at the first clip's size)."""
    inputs: list[str] = []
    for p in parts:
        inputs += ["-i", str(p)]
    n = len(parts)
    first = _size(parts[0], ffmpeg, ffprobe)
    chains = "".join(
        f"[{i}:v:0]scale={first[0]}:{first[1]},setsar=1,format=yuv420p[v{i}];" for i in range(n)
    )
    chains += "".join(f"[v{i}]" for i in range(n)) + f"concat=n={n}:v=1:a=0[out]"
    cmd = [
        ffmpeg,
        "-v",
        "error",
        "-nostdin",
        "-y",
        *inputs,
        "-filter_complex",
        chains,
        "-map",
        "[out]",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "18",
        "-movflags",
        "+faststart",
        str(dest),
    ]
    res = subprocess.run(cmd, capture_output=True, timeout=600, check=False)
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip().splitlines()
        raise InvalidVideo(f"joining clip pieces failed: {err[-1] if err else '?'}")


def _size(path: Path, ffmpeg: str, ffprobe: str) -> tuple[int, int]:
    from sightline.services import media

    info = media.probe(
        path,
        ffmpeg=ffmpeg,
        ffprobe=ffprobe,
        max_bytes=1 << 40,
        max_seconds=1e9,
        max_pixels=1 << 30,
    )
    return info.width, info.height


def _ms(ms: float) -> timedelta:
    return timedelta(milliseconds=ms)


def _raise(err: ClientError) -> None:
    code = err.response["Error"]["Code"]
    message = err.response["Error"].get("Message", "")
    if code in THROTTLED or err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (
        500,
        503,
    ):
        raise TransientError(f"Kinesis Video Streams: {code}: {message}") from err
    raise InvalidVideo(f"Kinesis Video Streams: {code}: {message}") from err


class EventBridgeScheduler:
    """One schedule per camera in the stage's group, targeting ``live_clip``.

    Scheduler's finest rate is one minute; each run takes every window that is due, so a
    camera with 10-second clips gets six windows a minute.
    """

    def __init__(self, group: str, target_arn: str, role_arn: str, *, client: Any = None) -> None:
        self.group = group
        self.target_arn = target_arn
        self.role_arn = role_arn
        self._c = client or boto3.client("scheduler")

    @staticmethod
    def name(camera_id: str) -> str:
        return f"sightline-{camera_id}"[:64]

    def put(self, tenant_id: str, camera_id: str, every_s: float, *, enabled: bool) -> None:
        minutes = max(1, int(-(-every_s // 60)))
        request = {
            "Name": self.name(camera_id),
            "GroupName": self.group,
            "ScheduleExpression": f"rate({minutes} {'minute' if minutes == 1 else 'minutes'})",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED" if enabled else "DISABLED",
            "Target": {
                "Arn": self.target_arn,
                "RoleArn": self.role_arn,
                "Input": json.dumps({"tenant_id": tenant_id, "camera_id": camera_id}),
                "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 300},
            },
            "Description": f"live_clip for camera {camera_id} of {tenant_id}",
        }
        try:
            self._c.update_schedule(**request)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceNotFoundException":
                _raise(err)
            try:
                self._c.create_schedule(**request)
            except ClientError as err2:
                _raise(err2)

    def delete(self, tenant_id: str, camera_id: str) -> None:
        try:
            self._c.delete_schedule(Name=self.name(camera_id), GroupName=self.group)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceNotFoundException":
                _raise(err)
