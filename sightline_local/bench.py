"""``sightline bench``: the batch pipeline's end-to-end real-time factor on a real clip,
and where the time goes. Figures are printed, never asserted."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from sightline.config import reset_settings


def pipeline_benchmark(clip: Path | None = None) -> dict[str, Any]:
    """Ingest ``clip`` (default vtest.avi) into a fresh data directory and time it."""
    from sightline_local.app import LocalApp
    from sightline_local.runtime import STEP_TIMES
    from sightline_local.samples import vtest_clip

    # The report is kept under the caller's data folder: `sightline cost` reads its
    # per-chunk figures from there (sightline.services.cost.load_figures).
    keep_home = os.environ.get("SIGHTLINE_HOME")
    with tempfile.TemporaryDirectory(prefix="sightline-bench-") as tmp:
        os.environ["SIGHTLINE_HOME"] = tmp
        reset_settings()
        app = LocalApp.create()
        clip = clip or vtest_clip(Path(tmp) / "samples")
        # Warm the models first so the figure is the steady state, as on a warm Lambda.
        from sightline import factory

        factory.embedder().embed(["warm up"])
        STEP_TIMES.reset()
        started = time.perf_counter()
        result = app.ingest_and_wait(clip, timeout_s=3600)
        wall = time.perf_counter() - started
        steps = STEP_TIMES.snapshot()
        stored = _stored_bytes(factory.blobs(), app.settings.default_tenant, result["video_id"])
        probe = app.repo.get_video(app.settings.default_tenant, result["video_id"])
        clip_info = {"fps": probe.fps, "width": probe.width, "height": probe.height}
    duration = float(result.get("duration_s") or 0.0)
    report = {
        "clip": clip.name,
        "status": result["status"],
        "video_seconds": duration,
        "chunks": result["chunks"],
        "wall_seconds": round(wall, 2),
        "realtime_factor": round(duration / wall, 3) if wall else None,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "steps": {
            name: {
                "calls": len(v),
                "total_s": round(sum(v), 2),
                "mean_s": round(sum(v) / len(v), 3),
            }
            for name, v in steps.items()
        },
    }
    report["clip_info"] = clip_info
    report["stored_bytes"] = stored
    report["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _print(report)
    _keep(report, keep_home)
    return report


def _stored_bytes(blobs: Any, tenant: str, video_id: str) -> dict[str, int]:
    """Bytes kept per kind of object for the benchmark video (the cost model's S3 figures)."""
    out = dict.fromkeys(("source", "chunks", "tokens", "sideinfo", "records"), 0)
    for key in blobs.list_keys(f"{tenant}/videos/{video_id}/"):
        if "/source/" in key:
            kind = "source"
        elif "/derived/chunks/" in key:
            kind = "chunks"
        elif key.endswith(".sltb"):
            kind = "tokens"
        elif key.endswith(".side"):
            kind = "sideinfo"
        else:
            kind = "records"
        out[kind] += blobs.size(key)
    return out


def _keep(report: dict[str, Any], home: str | None) -> None:
    if home is None:
        os.environ.pop("SIGHTLINE_HOME", None)
    else:
        os.environ["SIGHTLINE_HOME"] = home
    reset_settings()
    from sightline.config import get_settings
    from sightline.services.cost import BENCH_FILE

    path = get_settings().home / BENCH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")


def _print(r: dict[str, Any]) -> None:
    print(
        f"clip {r['clip']}: {r['video_seconds']:.1f} s of video, {r['chunks']} chunks, "
        f"status {r['status']}"
    )
    print(
        f"wall {r['wall_seconds']:.1f} s  →  real-time factor {r['realtime_factor']} "
        f"(video seconds per wall second) on {r['machine']}"
    )
    print(f"{'step':<10} {'calls':>5} {'total s':>8} {'mean s':>8}")
    order = [
        "probe",
        "chunk",
        "encode",
        "describe",
        "latent",
        "events",
        "index",
        "finalize",
        "fail",
    ]
    for name in sorted(r["steps"], key=lambda n: order.index(n) if n in order else 99):
        s = r["steps"][name]
        print(f"{name:<10} {s['calls']:>5} {s['total_s']:>8.2f} {s['mean_s']:>8.3f}")
    print(
        "(describe and latent run in parallel per chunk, and chunks run 4 at a time, so "
        "step totals add up to more than the wall time)"
    )
