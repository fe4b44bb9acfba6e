"""The RD benchmark runs end to end on a few synthetic frames (a smoke test: the figures
themselves are printed by `sightline bench codec`, never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from sightline_local.bench_codec import run
from tests.support.media import synth_video


def test_rd_benchmark_writes_table_json_and_plot(tmp_path: Path) -> None:
    clip = synth_video(tmp_path / "pattern.mp4", seconds=1.2, size="128x96", fps=10)
    rows = run([clip], frames=8, out_dir=tmp_path / "out")
    codecs = {r["codec"] for r in rows}
    assert {"gzip", "zstd", "x264-medium-crf28", "x264-veryfast-zerolatency-crf35"} <= codecs
    assert any(c.startswith("sightline@") for c in codecs)
    for r in rows:
        assert r["bpp"] > 0 and r["enc_fps"] > 0
        lossless = r["codec"] in ("gzip", "zstd")
        assert (r["psnr_y"] is None) == lossless
    assert json.loads((tmp_path / "out" / "rd.json").read_text()) == rows
    assert (tmp_path / "out" / "rd.md").read_text().startswith("| clip | codec | bpp")
    assert (tmp_path / "out" / "rd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
