"""The live path's AWS adapters on the real request shapes (moto for EventBridge Scheduler
and DynamoDB; botocore's Stubber for KVS ListFragments/GetClip, which moto lacks), the
compare-and-set the watermark relies on, and window splitting at the GetClip limits."""

from __future__ import annotations

import io
import json
import subprocess
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from sightline.adapters.aws import DynamoTableStore
from sightline.adapters.aws_live import EventBridgeScheduler, KvsClipSource
from sightline.adapters.local_tables import SqliteTableStore
from sightline.errors import Conflict, TransientError
from sightline.ports import Fragment
from sightline.services.cameras import split_by_fragments
from tests.support.aws import create_tables
from tests.support.media import synth_video

ARN = "arn:aws:kinesisvideo:us-east-1:123456789012:stream/dock/1700000000000"
T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


def _frag(i: int, size: int = 1000) -> Fragment:
    return Fragment(str(i), T0 + timedelta(seconds=i), T0 + timedelta(seconds=i + 1), size)


def test_split_at_fragment_count_and_size_limits() -> None:
    frags = [_frag(i) for i in range(10)]
    end = T0 + timedelta(seconds=10)
    assert split_by_fragments(T0, end, frags, max_bytes=10**9, max_count=200) == [(T0, end)]
    pieces = split_by_fragments(T0, end, frags, max_bytes=10**9, max_count=4)
    assert [round((b - a).total_seconds()) for a, b in pieces] == [4, 4, 2]
    assert pieces[0][0] == T0 and pieces[-1][1] == end
    assert all(a[1] == b[0] for a, b in pairwise(pieces))
    big = [_frag(i, size=40) for i in range(10)]
    pieces = split_by_fragments(T0, end, big, max_bytes=100, max_count=200)
    assert [round((b - a).total_seconds()) for a, b in pieces] == [2, 2, 2, 2, 2]
    assert split_by_fragments(T0, end, [], max_bytes=1, max_count=1) == [(T0, end)]


@pytest.mark.parametrize("store", ["sqlite", "dynamodb"])
def test_update_with_expect_is_a_compare_and_set(store: str, tmp_path: Path) -> None:
    with mock_aws():
        if store == "dynamodb":
            ddb = boto3.resource("dynamodb", region_name="us-east-1")
            create_tables(ddb, "t-cameras")
            table = DynamoTableStore("t-", resource=ddb).table("cameras")
        else:
            table = SqliteTableStore(tmp_path / "db.sqlite").table("cameras")
        table.put("acme/x", "cam_1", {"watermark": "a", "lease_owner": None, "n": 1})
        got = table.update("acme/x", "cam_1", {"watermark": "b"}, expect={"watermark": "a"})
        assert got and got["watermark"] == "b"
        with pytest.raises(Conflict):
            table.update("acme/x", "cam_1", {"watermark": "c"}, expect={"watermark": "a"})
        assert table.get("acme/x", "cam_1")["watermark"] == "b"
        # None means "absent or null": a free lease.
        got = table.update("acme/x", "cam_1", {"lease_owner": "e1"}, expect={"lease_owner": None})
        assert got and got["lease_owner"] == "e1"
        with pytest.raises(Conflict):
            table.update("acme/x", "cam_1", {"lease_owner": "e2"}, expect={"lease_owner": None})
        assert table.update("acme/x", "nope", {"n": 2}, expect={"n": 1}) is None


def test_scheduler_creates_updates_and_deletes_the_camera_schedule() -> None:
    with mock_aws():
        client = boto3.client("scheduler", region_name="us-east-1")
        client.create_schedule_group(Name="sightline-dev")
        target = "arn:aws:states:us-east-1:123456789012:stateMachine:sightline-dev-live_clip"
        role = "arn:aws:iam::123456789012:role/sightline-dev-scheduler"
        sched = EventBridgeScheduler("sightline-dev", target, role, client=client)
        sched.put("acme/dock", "cam_abc", 10.0, enabled=True)
        got = client.get_schedule(Name="sightline-cam_abc", GroupName="sightline-dev")
        assert got["ScheduleExpression"] == "rate(1 minute)"
        assert got["State"] == "ENABLED"
        assert got["Target"]["Arn"] == target and got["Target"]["RoleArn"] == role
        assert json.loads(got["Target"]["Input"]) == {
            "tenant_id": "acme/dock",
            "camera_id": "cam_abc",
        }
        sched.put("acme/dock", "cam_abc", 300.0, enabled=False)  # pause, 5-min clips
        got = client.get_schedule(Name="sightline-cam_abc", GroupName="sightline-dev")
        assert got["State"] == "DISABLED" and got["ScheduleExpression"] == "rate(5 minutes)"
        sched.delete("acme/dock", "cam_abc")
        sched.delete("acme/dock", "cam_abc")  # twice is fine
        names = [s["Name"] for s in client.list_schedules(GroupName="sightline-dev")["Schedules"]]
        assert "sightline-cam_abc" not in names


def _media_client() -> tuple[object, Stubber]:
    client = boto3.client(
        "kinesis-video-archived-media",
        region_name="us-east-1",
        endpoint_url="https://b-1234.kinesisvideo.us-east-1.amazonaws.com",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    return client, Stubber(client)


def _body(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_kvs_list_fragments_pages_and_orders() -> None:
    client, stub = _media_client()
    end = T0 + timedelta(seconds=10)
    selector = {
        "FragmentSelectorType": "PRODUCER_TIMESTAMP",
        "TimestampRange": {"StartTimestamp": T0, "EndTimestamp": end},
    }

    def row(i: int) -> dict:
        return {
            "FragmentNumber": f"9100{i}",
            "FragmentSizeInBytes": 2000 + i,
            "ProducerTimestamp": T0 + timedelta(seconds=i),
            "ServerTimestamp": T0 + timedelta(seconds=i, milliseconds=300),
            "FragmentLengthInMilliseconds": 1000,
        }

    stub.add_response(
        "list_fragments",
        {"Fragments": [row(3), row(1)], "NextToken": "p2"},
        {"StreamARN": ARN, "MaxResults": 1000, "FragmentSelector": selector},
    )
    stub.add_response(
        "list_fragments", {"Fragments": [row(2)]}, {"StreamARN": ARN, "NextToken": "p2"}
    )
    with stub:
        frags = KvsClipSource(ARN, archived_media=client).fragments(T0, end)
    assert [f.number for f in frags] == ["91001", "91002", "91003"]
    assert frags[0].end - frags[0].start == timedelta(seconds=1)
    assert frags[0].size_bytes == 2001


def test_kvs_get_clip_gap_throttle_and_codec_change(tmp_path: Path) -> None:
    end = T0 + timedelta(seconds=4)
    a = synth_video(tmp_path / "a.mp4", seconds=2.0)
    b = tmp_path / "b.mp4"  # the camera switched resolution half-way
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(a), "-vf", "scale=320:240", str(b)], check=True
    )
    client, stub = _media_client()
    mid = T0 + timedelta(seconds=2)

    def expect(s: datetime, e: datetime) -> dict:
        return {
            "StreamARN": ARN,
            "ClipFragmentSelector": {
                "FragmentSelectorType": "PRODUCER_TIMESTAMP",
                "TimestampRange": {"StartTimestamp": s, "EndTimestamp": e},
            },
        }

    # No media in the range: a gap, not an error.
    stub.add_client_error("get_clip", "ResourceNotFoundException", expected_params=expect(T0, end))
    # Throttled: retried by the state machine.
    stub.add_client_error(
        "get_clip", "ClientLimitExceededException", http_status_code=400,
        expected_params=expect(T0, end),
    )  # fmt: skip
    # A codec change inside the range: split in half, each half fetched, then joined.
    stub.add_client_error(
        "get_clip", "InvalidCodecPrivateDataException", expected_params=expect(T0, end)
    )
    stub.add_response(
        "get_clip",
        {"ContentType": "video/mp4", "Payload": _body(a.read_bytes())},
        expect(T0, mid),
    )
    stub.add_response(
        "get_clip",
        {"ContentType": "video/mp4", "Payload": _body(b.read_bytes())},
        expect(mid, end),
    )
    src = KvsClipSource(ARN, archived_media=client)
    with stub:
        assert src.clip(T0, end, tmp_path / "gap.mp4") is False
        with pytest.raises(TransientError):
            src.clip(T0, end, tmp_path / "t.mp4")
        assert src.clip(T0, end, tmp_path / "joined.mp4") is True
        stub.assert_no_pending_responses()
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
         "-show_entries", "stream=width,height,nb_read_frames", "-of", "json",
         str(tmp_path / "joined.mp4")],
        capture_output=True, check=True,
    )  # fmt: skip
    stream = json.loads(probe.stdout)["streams"][0]
    assert (stream["width"], stream["height"]) == (160, 120)  # the first piece's size
    frames_a = json.loads(
        subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-count_frames",
                "-show_entries",
                "stream=nb_read_frames",
                "-of",
                "json",
                str(a),
            ],
            capture_output=True,
            check=True,
        ).stdout
    )["streams"][0]["nb_read_frames"]
    assert int(stream["nb_read_frames"]) == 2 * int(frames_a)
