"""The RD benchmark runs end to end on a few synthetic frames (a smoke test: the figures
themselves are printed by `sightline bench codec`, never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sightline_local.bench_codec import (
    equal_rate_table,
    interpolate_psnr,
    roi_benchmark,
    roi_table,
    run,
)
from tests.support.media import synth_video


def test_rd_benchmark_writes_table_json_and_plot(tmp_path: Path) -> None:
    clip = synth_video(tmp_path / "pattern.mp4", seconds=1.2, size="128x96", fps=10)
    rows = run([clip], frames=8, out_dir=tmp_path / "out")
    codecs = {r["codec"] for r in rows}
    assert {"gzip", "zstd", "x264-medium-crf28", "x264-veryfast-zerolatency-crf35"} <= codecs
    assert any(c.startswith("sightline@stick") for c in codecs)
    assert {"sightline@bg-q24", "sightline@bg-q24-t16w8"} <= codecs
    for r in rows:
        assert r["bpp"] > 0 and r["enc_fps"] > 0
        lossless = r["codec"] in ("gzip", "zstd")
        assert (r["psnr_y"] is None) == lossless
    assert json.loads((tmp_path / "out" / "rd.json").read_text()) == rows
    assert (tmp_path / "out" / "rd.md").read_text().startswith("| clip | codec | bpp")
    assert (tmp_path / "out" / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_roi_benchmark_reports_bytes_and_time(tmp_path: Path) -> None:
    clip = synth_video(tmp_path / "pattern.mp4", seconds=3.0, size="160x128", fps=10)
    rows = roi_benchmark([clip], seconds=3.0, repeats=1)
    assert {r["region"] for r in rows} == {"bottom-right", "top-left", "centre"}
    assert {r["layer"] for r in rows} == {"tokens", "background"}
    for r in rows:
        assert r["size"] == "160x128" and r["chunk_frames"] == 30
        assert 0 < r["bytes_read"] < r["blob_bytes"] and r["fraction"] < 1
        assert r["ms"] > 0 and r["full_frame_ms"] > 0 and r["requests"] >= 3
    assert roi_table(rows).startswith("| clip | layer | size | region")


def test_equal_rate_comparison_interpolates_in_log_bpp() -> None:
    rows = [
        {"clip": "c", "codec": "x264-medium-crf30", "bpp": 0.01, "psnr_y": 30.0},
        {"clip": "c", "codec": "x264-medium-crf40", "bpp": 0.001, "psnr_y": 20.0},
        {"clip": "c", "codec": "sightline@stick1", "bpp": 0.00316228, "psnr_y": 26.0},
        {"clip": "c", "codec": "gzip", "bpp": 6.0, "psnr_y": None},
    ]
    assert interpolate_psnr(rows, "x264-medium", 0.00316228) == pytest.approx(25.0, abs=1e-4)
    assert interpolate_psnr(rows, "x264-medium", 0.02) is None
    table = "\n".join(equal_rate_table(rows))
    assert "| c | sightline@stick1 | 0.00316228 | 26.0 | out of range | +1.00 dB |" in table
