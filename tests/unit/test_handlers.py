"""Every step handler, driven by the sample events in events/steps exactly as Step
Functions would call it, over the local adapters with the heavy models faked."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from sightline import factory, handlers
from sightline.models import Video, VideoStatus
from sightline.services.repository import Repository
from sightline_local.runtime import deliver_codec_notice
from tests.conftest import EVENTS_DIR
from tests.support.fakes import FakeCodec, FakeDescriber, HashEmbedder, RecordingTaskTokens
from tests.support.media import synth_video

TENANT, VIDEO = "acme/plaza", "vsample0001"


class Context:
    function_name = "sightline-test"
    aws_request_id = "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sightline-test"
    memory_limit_in_mb = 1024
    function_version = "$LATEST"


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / "steps" / f"{name}.json").read_text())


def invoke(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    handler = importlib.import_module(f"functions.{name}.handler").lambda_handler
    return handler(payload, Context())


@pytest.fixture
def fakes(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    codec, describer, tokens = FakeCodec(factory.blobs()), FakeDescriber(), RecordingTaskTokens()
    monkeypatch.setattr(factory, "codec", lambda: codec)
    monkeypatch.setattr(factory, "describer", lambda: describer)
    monkeypatch.setattr(factory, "embedder", lambda: HashEmbedder())
    monkeypatch.setattr(factory, "task_tokens", lambda: tokens)
    # The codec's notices reach functions/codec_callback as the local runtime delivers them.
    factory.bus().subscribe(deliver_codec_notice)
    handlers.pipeline.cache_clear()
    probe = event("probe")
    src = synth_video(tmp_path / "plaza.mp4", seconds=3.0)
    factory.blobs().upload_file(src, probe["source_key"])
    Repository(factory.tables()).put_video(
        Video(
            tenant_id=TENANT,
            video_id=VIDEO,
            filename="plaza.mp4",
            source_key=probe["source_key"],
            status=VideoStatus.QUEUED,
        )
    )
    yield {
        "codec": codec,
        "describer": describer,
        "tokens": tokens,
        "repo": Repository(factory.tables()),
    }
    handlers.pipeline.cache_clear()


def test_every_step_from_its_sample_event(fakes: dict[str, Any]) -> None:
    repo: Repository = fakes["repo"]
    # probe: the video is read and moves to processing
    probed = invoke("probe", event("probe"))
    assert probed["width"] == 160 and probed["height"] == 120
    assert probed["content_hash"].startswith("blake3:")
    assert repo.get_video(TENANT, VIDEO).status == VideoStatus.PROCESSING
    # chunk: one 3-s chunk stored as MP4 where the sample encode event expects it
    plan = invoke("chunk", event("chunk"))
    assert [c["key"] for c in plan["chunks"]] == [event("encode")["chunk"]["key"]]
    # encode: queued on the codec; its notice (codec_callback) stores tokens, side info and
    # a manifest row with a BLAKE3 hash and completes the task with the EncodeOutput
    started = invoke("encode", event("encode"))
    assert started["status"] == "started"
    [(token, enc)] = fakes["tokens"].succeeded
    assert token == event("encode")["task_token"]
    assert enc == {
        **event("describe")["encode"],
        "ratio": enc["ratio"],
        "byte_size": enc["byte_size"],
        "psnr": 31.5,
    }
    row = repo.find_manifest(TENANT, enc["manifest_id"])
    assert row is not None and row.hash.startswith("blake3:") and row.byte_size == enc["byte_size"]
    # describe and latent, in parallel on AWS
    desc = invoke("describe", event("describe"))
    assert desc == event("events")["describe"]
    lat = invoke("latent", event("latent"))
    assert lat["latent_key"] == event("events")["latent"]["latent_key"] and lat["dim"] == 64
    # events: chunk-relative detections become video-time events
    evs = invoke("events", event("events"))
    assert evs == event("index")["events"]
    stored = repo.list_events(TENANT, VIDEO)
    assert [(e.type, e.t0, e.t1) for e in stored] == [("person", 0.5, 2.5)]
    # index: the chunk document is searchable
    res = invoke("index", event("index"))
    assert res == event("finalize")["results"][0]
    hits = factory.index().search(TENANT, HashEmbedder().embed(["people walking"])[0], k=3)
    assert [h.manifest_id for h in hits] == [enc["manifest_id"]]
    # finalize
    summary = invoke("finalize", event("finalize"))
    assert summary["status"] == "completed" and summary["chunks"] == 1 and summary["events"] == 1


def test_steps_are_idempotent(fakes: dict[str, Any]) -> None:
    repo: Repository = fakes["repo"]
    invoke("probe", event("probe"))
    for _ in range(2):
        invoke("chunk", event("chunk"))
        invoke("encode", event("encode"))
        invoke("describe", event("describe"))
        invoke("latent", event("latent"))
        invoke("events", event("events"))
        invoke("index", event("index"))
    # the second encode reused the stored, verified tokens and completed its task at once
    assert len(fakes["codec"].invocations) == 1
    assert len(fakes["tokens"].succeeded) == 2
    assert len(repo.list_events(TENANT, VIDEO)) == 1
    assert len(repo.list_manifests(TENANT, VIDEO)) == 1
    assert factory.index().count(TENANT) == 1


def test_fail_records_reason_and_removes_partial_results(fakes: dict[str, Any]) -> None:
    repo: Repository = fakes["repo"]
    invoke("probe", event("probe"))
    invoke("chunk", event("chunk"))
    invoke("encode", event("encode"))
    out = invoke("fail", event("fail"))
    assert out["status"] == "failed"
    video = repo.get_video(TENANT, VIDEO)
    assert video.status == VideoStatus.FAILED
    assert video.failure_reason == "InvalidVideo: the file is empty (0 bytes)"
    assert repo.list_manifests(TENANT, VIDEO) == []
    assert factory.blobs().list_keys(f"{TENANT}/videos/{VIDEO}/derived/") == []


def test_codec_failure_surfaces_the_endpoint_reason(
    fakes: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = FakeCodec(factory.blobs(), fail_with="CUDA error: out of memory")
    monkeypatch.setattr(factory, "codec", lambda: failing)
    handlers.pipeline.cache_clear()
    invoke("probe", event("probe"))
    invoke("chunk", event("chunk"))
    invoke("encode", event("encode"))
    [(token, error, cause)] = fakes["tokens"].failed
    assert token == event("encode")["task_token"] and error == "CodecError"
    assert "out of memory" in cause
    assert fakes["repo"].list_manifests(TENANT, VIDEO) == []


def test_bad_payload_is_rejected_before_any_work(fakes: dict[str, Any]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="tenant_id"):
        invoke("probe", {"tenant_id": "no-slash", "video_id": "x", "source_key": "k"})
