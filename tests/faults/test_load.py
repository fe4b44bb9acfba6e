"""A small run of ``sightline bench load`` against the local server with the heavy
models faked: clients of two tenants mixing search, status and event reads while each
tenant's video ingests; no errors, no answer crosses tenants, and both ingests complete
with every chunk stored and indexed once."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sightline_local.loadtest import format_load_report, run_load
from tests.faults.stack import fake_stack
from tests.support.media import synth_video


@pytest.fixture
def server(tmp_path: Path, clip: Path) -> Iterator[dict[str, Any]]:
    from sightline.api import context as api_context_module
    from sightline.services import auth as auth_module
    from sightline_local.server import ApiServer

    (tmp_path / "clips").mkdir()
    other = synth_video(tmp_path / "clips" / "second.mp4", seconds=5.0, size="176x144")
    os.environ["SIGHTLINE_SOURCE_ROOTS"] = json.dumps([str(clip.parent), str(other.parent)])
    try:
        with fake_stack(tmp_path / "home"):
            api_context_module.api_context.cache_clear()
            auth_module.authenticator.cache_clear()
            srv = ApiServer(0, rate=1e9, burst=1_000_000)
            thread = threading.Thread(target=srv.serve_forever, daemon=True)
            thread.start()
            yield {"url": f"http://127.0.0.1:{srv.server_address[1]}", "clips": [clip, other]}
            srv.shutdown()
            srv.server_close()
    finally:
        os.environ.pop("SIGHTLINE_SOURCE_ROOTS", None)
        api_context_module.api_context.cache_clear()
        auth_module.authenticator.cache_clear()


def test_bench_load_reads_during_two_ingests_without_errors_or_mixing(
    server: dict[str, Any],
) -> None:
    report = run_load(
        clients=25, seconds=3.0, url=server["url"], clips=server["clips"], ingest_timeout_s=120
    )
    print(format_load_report(report))
    assert report["requests"] > 0 and report["rps"] > 0
    assert report["errors"] == 0, report["status_counts"]
    assert report["rate_limited"] == 0
    assert {k["n"] > 0 for k in report["by_kind"].values()} == {True}
    assert report["ingests_ok"], report["ingests"]
    for ingest in report["ingests"]:
        assert ingest["manifests"] == ingest["chunks_total"] == ingest["documents"] > 0
        assert ingest["tenant_documents"] == ingest["chunks_total"]  # nothing of the other
    assert report["tenancy_violations"] == 0
