"""The embedded default end to end on real footage: real ASL, real codec, real detector,
real text embeddings. The one slow test module (about a minute on 2 cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import use_home

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "sightline_local.cli"]


def _cut(src: Path, dest: Path, seconds: float) -> Path:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-i",
            str(src),
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "18",
            str(dest),
        ],
        check=True,
    )
    return dest


def _empty_scene(dest: Path, seconds: float = 10.0) -> Path:
    """A static, empty scene with sensor noise: a wall and a floor, nobody, nothing moving."""
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"color=c=0x8a8f94:size=640x480:rate=10:d={seconds}",
            "-vf",
            "drawbox=x=0:y=300:w=640:h=180:color=0x5b4a3a:t=fill,noise=alls=6:allf=t",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(dest),
        ],
        check=True,
    )
    return dest


@pytest.fixture(scope="module")
def ingested(vtest: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("real")
    old = os.environ.get("SIGHTLINE_HOME")
    use_home(tmp / "home")
    from sightline_local.app import LocalApp

    app = LocalApp.create()
    plaza = _cut(vtest, tmp / "plaza.mp4", 30.0)
    empty = _empty_scene(tmp / "empty.mp4")
    results = {
        "plaza": app.ingest_and_wait(plaza, timeout_s=900),
        "empty": app.ingest_and_wait(empty, timeout_s=900),
    }
    yield {"app": app, "paths": {"plaza": plaza, "empty": empty}, **results}
    if old is None:
        os.environ.pop("SIGHTLINE_HOME", None)
    else:
        os.environ["SIGHTLINE_HOME"] = old
    from sightline.config import reset_settings

    reset_settings()


def test_people_and_the_parked_vehicles_are_found(ingested: dict[str, Any]) -> None:
    plaza = ingested["plaza"]
    assert plaza["status"] == "completed", plaza
    assert plaza["chunks"] == 3
    types = {e["type"] for e in plaza["events"]}
    assert "person" in types and "vehicle" in types
    people = [e for e in plaza["events"] if e["type"] == "person"]
    # People walk through the plaza the whole time: person presence covers most of 30 s
    covered = sum(e["end_s"] - e["start_s"] for e in people)
    assert covered >= 20.0, people
    for e in plaza["events"]:
        assert 0.0 <= e["start_s"] <= e["end_s"] <= 30.5
        assert 0.0 < e["confidence"] <= 1.0 and e["description"]


def test_an_empty_static_scene_has_no_events(ingested: dict[str, Any]) -> None:
    empty = ingested["empty"]
    assert empty["status"] == "completed", empty
    assert [e for e in empty["events"] if e["type"] in ("person", "vehicle", "crowd")] == []


def test_search_ranks_matching_chunks_first(ingested: dict[str, Any]) -> None:
    app = ingested["app"]
    plaza_id, empty_id = ingested["plaza"]["video_id"], ingested["empty"]["video_id"]
    for query in ("people walking", "a car"):
        hits = app.search(query, k=10)
        assert len(hits) == 4
        assert hits[0]["video_id"] == plaza_id, (query, hits)
        # every plaza chunk outranks the empty scene
        ranks = [h["video_id"] for h in hits]
        assert ranks.index(empty_id) == 3, (query, hits)


def test_manifest_rows_and_token_blobs(ingested: dict[str, Any]) -> None:
    from sightline import factory, tokenblob
    from sightline.services.repository import Repository

    app = ingested["app"]
    rows = Repository(factory.tables()).list_manifests(
        app.settings.default_tenant, ingested["plaza"]["video_id"]
    )
    assert len(rows) == 3
    for row in rows:
        assert row.hash.startswith("blake3:") and row.ratio > 20
        assert row.quality_stats.psnr and row.quality_stats.psnr > 20
        key = row.token_uri.split("/blobs/", 1)[1]
        header, tokens = tokenblob.unpack_tokens(
            factory.blobs().get_bytes(key), expected_hash=row.hash
        )
        assert tokens.shape == tuple(header.dims)


def test_roi_decode_of_a_stored_chunk(ingested: dict[str, Any]) -> None:
    import cv2
    import numpy as np

    from sightline import factory
    from sightline.services.decode import DecodeService
    from sightline.services.repository import Repository

    app = ingested["app"]
    repo = Repository(factory.tables())
    service = DecodeService(factory.blobs(), repo, factory.codec())
    manifest = f"{ingested['plaza']['video_id']}-c00001"
    # Given a region of a 768x576 chunk at 10-11 s
    still = service.decode(
        app.settings.default_tenant, manifest, roi=(384, 0, 384, 288), t0=10.0, t1=11.0, fmt="png"
    )
    # Then only that region comes back, as a real picture of the plaza
    image = cv2.imdecode(np.frombuffer(still.media, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (288, 384, 3) and (still.width, still.height) == (384, 288)
    assert 20 < float(image.mean()) < 235 and float(image.std()) > 10
    clip = service.decode(
        app.settings.default_tenant, manifest, roi=None, t0=10.0, t1=11.0, fmt="mp4"
    )
    assert clip.content_type == "video/mp4" and clip.frames == 10 and clip.media[4:8] == b"ftyp"


def test_quarter_frame_roi_reads_few_bytes_and_matches_a_full_decode(
    ingested: dict[str, Any],
) -> None:
    import numpy as np

    from sightline import factory, keys, tokenblob
    from sightline_local.roi import decode_region

    app = ingested["app"]
    key = keys.tokens(app.settings.default_tenant, ingested["plaza"]["video_id"], 1)
    # Given a quarter of the 768x576 frame over 1 s
    part = decode_region(factory.blobs(), key, roi=(384, 288, 384, 288), t0=2.0, t1=3.0)
    # Then only the covering tiles and the decoder's context were read: 64-px tiles in
    # 2-step windows (blob v2), at most 15 % of the blob
    assert part.tiles_read < part.tiles_total / 4
    assert part.bytes_read <= 0.15 * part.blob_bytes, (part.bytes_read, part.blob_bytes)
    assert part.frames.shape == (10, 288, 384, 3)
    # And the region equals the same region of a full decode
    from sagemaker_models.codec.registry import load_codec

    blob = factory.blobs().get_bytes(key)
    header, tokens = tokenblob.unpack_tokens(blob)
    full = load_codec(header.codebook_id).decode(tokens, header.frame_size, header.n_frames)
    crop = full[20:30, 288:576, 384:768]
    assert np.abs(crop.astype(int) - part.frames.astype(int)).max() <= 2


def test_token_activity_separates_a_busy_plaza_from_an_empty_scene(
    ingested: dict[str, Any],
) -> None:
    import json as _json

    from sightline import factory, keys
    from sightline.services.repository import Repository

    app = ingested["app"]
    tenant = app.settings.default_tenant
    repo = Repository(factory.tables())

    def activity(video_id: str) -> list[float]:
        out: list[float] = []
        for row in repo.list_manifests(tenant, video_id):
            key = keys.latent(tenant, video_id, row.chunk_index)
            latent = _json.loads(factory.blobs().get_bytes(key))
            out.extend(latent["activity"][1:])  # step 0 has no previous step
        return out

    busy, empty = activity(ingested["plaza"]["video_id"]), activity(ingested["empty"]["video_id"])
    # Scores come from token indices alone (no decode): people moving change tokens
    assert min(busy) > max(empty), (min(busy), max(empty))


def test_ingesting_the_same_file_again_adds_nothing(ingested: dict[str, Any]) -> None:
    app = ingested["app"]
    before = (len(app.events()), len(app.videos()), len(app.search("people", k=50)))
    again = app.ingest_and_wait(ingested["paths"]["plaza"], timeout_s=60)
    assert again["video_id"] == ingested["plaza"]["video_id"]
    assert (len(app.events()), len(app.videos()), len(app.search("people", k=50))) == before


def test_cli_json_contract(ingested: dict[str, Any]) -> None:
    env = {**os.environ}
    out = subprocess.run(
        [*CLI, "search", "people walking", "-k", "2", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    hits = json.loads(out)["hits"]
    assert len(hits) == 2
    assert set(hits[0]) >= {"video_id", "start_s", "end_s", "score", "description"}
    out = subprocess.run(
        [*CLI, "ingest", str(ingested["paths"]["plaza"]), "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    video = json.loads(out.strip().splitlines()[-1])
    assert video["status"] == "completed" and video["video_id"] == ingested["plaza"]["video_id"]
    assert {e["type"] for e in video["events"]} >= {"person", "vehicle"}
    bad = Path(env["SIGHTLINE_HOME"]).parent / "notes.mp4"
    bad.write_text("not a video")
    proc = subprocess.run(
        [*CLI, "ingest", str(bad), "--json"], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 1
    failed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert failed["status"] == "failed" and "not a readable video" in failed["reason"]
