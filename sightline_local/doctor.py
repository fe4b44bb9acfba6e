"""``sightline doctor [--repair] [--json]``: check the whole local store, and rebuild what
can be rebuilt from its source of truth.

What is checked, and what the source of truth of each part is:

- every SQLite database under SIGHTLINE_HOME: ``PRAGMA integrity_check``, and every row
  of the tables (``sightline.db``) parses and, for videos, manifests and events, validates;
- every blob against its BLAKE3 digest (``LocalBlobStore.verify``); token blobs and side
  info also against their own trailers and the manifest's hash; analysis and latent JSON
  must parse; temporary files left by a killed writer are counted;
- the index: every chunk of a completed video has exactly one live document, whose times
  and description agree with the manifest and the stored analysis and whose vectors are
  finite unit vectors; no document outlives its chunk; every faiss graph file loads.

``--repair`` rebuilds, in dependency order: a chunk from the source video (re-cut), its
tokens and side info from the chunk (re-encoded), its analysis from the chunk
(re-described), its latent features from the tokens, and the index documents of a video
from the stored descriptions, events and latent features (re-embedded, as
``sightline reindex`` does). A damaged faiss graph is deleted (it is a cache of SQLite and
is rebuilt); a malformed ``documents.db`` is moved aside and the index rebuilt. The
source videos and ``sightline.db`` are the source of truth: damage there is reported as
unrepairable (restore a backup: ``sightline restore``).

The JSON report: ``{"checked", "corrupt": [paths under SIGHTLINE_HOME, or ids],
"repaired": [the same, once re-checked], "unrepaired", "unverified", "stale_temp",
"orphaned"}``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sightline import factory, keys, tokenblob
from sightline.config import get_settings
from sightline.errors import SightlineError
from sightline.models import (
    ChunkRef,
    ChunkWork,
    DescribeOutput,
    Event,
    ManifestRow,
    Video,
    VideoStatus,
)
from sightline.services import media
from sightline.services.reindex import reindex
from sightline.services.repository import Repository

logger = logging.getLogger(__name__)

TABLES_DB = "sightline.db"
INDEX_DB = "index/documents.db"
# Databases that only cache answers: a damaged one is moved aside and starts empty (a
# replayed request then runs again, and content hashes still keep it from duplicating).
CACHE_DBS = ("idempotency.db",)
STALE_TEMP_S = 600.0  # a temporary file this old belongs to no live writer
_DERIVED = re.compile(
    r"^(?P<tenant>[^/]+/[^/]+)/videos/(?P<video>[^/]+)/derived/"
    r"(?P<kind>chunks|tokens|analysis|latent)/(?P<n>\d{5})\.(?P<ext>mp4|sltb|side|json)$"
)
_SOURCE = re.compile(r"^(?P<tenant>[^/]+/[^/]+)/videos/(?P<video>[^/]+)/source/")
_ROW_MODELS = {"t_videos": Video, "t_manifests": ManifestRow, "t_events": Event}


@dataclass
class Report:
    checked: int = 0
    corrupt: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    unrepaired: list[str] = field(default_factory=list)
    unverified: int = 0
    stale_temp: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)

    def bad(self, item: str, why: str) -> None:
        if item not in self.details:
            self.corrupt.append(item)
            self.details[item] = why
            logger.error("doctor: %s: %s", item, why)

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "corrupt": self.corrupt,
            "repaired": self.repaired,
            "unrepaired": self.unrepaired,
            "unverified": self.unverified,
            "stale_temp": self.stale_temp,
            "orphaned": self.orphaned,
            "details": self.details,
        }


@dataclass
class _Plan:
    """What --repair must rebuild, collected while checking."""

    recut: set[tuple[str, str, int]] = field(default_factory=set)
    reencode: set[tuple[str, str, int]] = field(default_factory=set)
    redescribe: set[tuple[str, str, int]] = field(default_factory=set)
    relatent: set[tuple[str, str, int]] = field(default_factory=set)
    reindex: set[tuple[str, str]] = field(default_factory=set)  # (tenant, video)
    cleanup: set[tuple[str, str]] = field(default_factory=set)  # failed videos' leftovers
    drop_blobs: set[str] = field(default_factory=set)  # transfer objects, stale temp files
    drop_graphs: set[Path] = field(default_factory=set)
    rebuild_index_db: bool = False
    items: dict[str, Any] = field(default_factory=dict)  # item -> what repairs it


def run(*, repair: bool = False) -> Report:
    """Check the store under the configured SIGHTLINE_HOME (and repair it if asked)."""
    s = get_settings()
    home = Path(s.home)
    report, plan = Report(), _Plan()
    broken_dbs = _check_databases(home, report, plan)
    repo = Repository(factory.tables()) if home / TABLES_DB not in broken_dbs else None
    if repo is not None:
        _check_rows(home / TABLES_DB, report)
    _check_blobs(home, report, plan, repo)
    if repo is not None and not plan.rebuild_index_db:
        _check_index(home, report, plan, repo)
    _check_graphs(home / "index", report, plan)
    if repo is not None:
        from sightline_local.recovery import is_orphaned, tenants

        for tenant in tenants(s.db_path):
            for video in repo.list_videos(tenant):
                if is_orphaned(video, home.resolve()):
                    report.orphaned.append(f"{tenant}/{video.video_id}")
    if repair:
        _repair(home, report, plan, repo)
    report.unrepaired = [c for c in report.corrupt if c not in report.repaired]
    return report


# ----- databases ----------------------------------------------------------------------


def _check_databases(home: Path, report: Report, plan: _Plan) -> list[Path]:
    broken = []
    blobs = Path(get_settings().blob_root).resolve()
    for db in sorted(home.rglob("*.db")):
        if db.resolve().is_relative_to(blobs) or not db.is_file():
            continue  # an uploaded file named *.db is a blob, not one of ours
        report.checked += 1
        rel = db.relative_to(home).as_posix()
        problem = _integrity(db)
        if problem is None:
            continue
        broken.append(db)
        report.bad(rel, problem)
        if rel == INDEX_DB:
            plan.rebuild_index_db = True
            plan.items[rel] = "rebuild"
        elif rel in CACHE_DBS:
            plan.items[rel] = "move_aside"
    return broken


def _integrity(db: Path) -> str | None:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"SQLite cannot read it: {exc}"
    result = [str(r[0]) for r in rows]
    return None if result == ["ok"] else "integrity_check: " + "; ".join(result[:5])


def _check_rows(db: Path, report: Report) -> None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if str(r[0]).startswith("t_")
        ]
        for table in tables:
            model = _ROW_MODELS.get(table)
            for pk, sk, item in conn.execute(f"SELECT pk, sk, item FROM {table}"):
                report.checked += 1
                try:
                    parsed = json.loads(item)
                    if model is not None:
                        model.model_validate(parsed)
                except (ValueError, TypeError) as exc:
                    report.bad(f"{TABLES_DB}:{table}/{pk}/{sk}", f"unreadable row: {exc}")
    finally:
        conn.close()


# ----- blobs --------------------------------------------------------------------------


def _check_blobs(home: Path, report: Report, plan: _Plan, repo: Repository | None) -> None:
    store = factory.blobs()
    verify = getattr(store, "verify", None)
    if verify is None:  # not the local store
        return
    root = Path(store.root)
    now = time.time()
    for path in root.rglob(".tmp-*"):
        if path.is_file() and now - path.stat().st_mtime > STALE_TEMP_S:
            rel = path.relative_to(home).as_posix()
            report.stale_temp.append(rel)
            plan.drop_blobs.add(rel)
    manifests: dict[tuple[str, str], dict[int, ManifestRow]] = {}
    for key in store.list_keys(""):
        report.checked += 1
        item = f"blobs/{key}"
        try:
            ok = verify(key)
        except OSError as exc:
            report.bad(item, f"unreadable: {exc}")
            ok = False
        if ok is None:
            report.unverified += 1
        problem = None if ok is not False else "does not match its BLAKE3 digest"
        m = _DERIVED.match(key)
        if problem is None and m is not None:
            problem = _check_content(store, key, m, repo, manifests)
        if problem is None:
            continue
        report.bad(item, problem)
        if m is not None:
            ref = (m["tenant"], m["video"], int(m["n"]))
            kind = m["kind"]
            target = {
                "chunks": plan.recut,
                "tokens": plan.reencode,
                "analysis": plan.redescribe,
                "latent": plan.relatent,
            }[kind]
            target.add(ref)
            plan.items[item] = (kind, ref)
        elif key.startswith("codec/"):
            plan.drop_blobs.add(item)  # an async transfer object: never a record
            plan.items[item] = "drop"


def _check_content(
    store: Any,
    key: str,
    m: re.Match[str],
    repo: Repository | None,
    manifests: dict[tuple[str, str], dict[int, ManifestRow]],
) -> str | None:
    """Format checks beyond the digest (they also cover blobs stored before digests)."""
    kind, ext = m["kind"], m["ext"]
    if kind == "chunks":
        return None  # the digest is the check; decoding every chunk is the pipeline's job
    try:
        data = store.get_bytes(key)
    except SightlineError as exc:
        return str(exc)
    try:
        if ext == "sltb":
            expected = None
            if repo is not None:
                rows = manifests.setdefault(
                    (m["tenant"], m["video"]),
                    {r.chunk_index: r for r in repo.list_manifests(m["tenant"], m["video"])},
                )
                row = rows.get(int(m["n"]))
                expected = row.hash if row is not None else None
            tokenblob.verify_blob(data, expected_hash=expected)
        elif ext == "side":
            tokenblob.unpack_sideinfo(data)
        else:
            json.loads(data)
    except (ValueError, SightlineError) as exc:
        return f"{kind} blob fails its own check: {exc}"
    return None


# ----- index --------------------------------------------------------------------------


def _check_index(home: Path, report: Report, plan: _Plan, repo: Repository) -> None:
    from sightline_local.recovery import tenants

    index = factory.index()
    store = factory.blobs()
    expected_docs: dict[tuple[str, str], int] = {}
    for tenant in tenants(home / TABLES_DB):
        for video in repo.list_videos(tenant):
            if video.status == VideoStatus.FAILED:
                _check_leftovers(store, repo, tenant, video.video_id, report, plan)
            if video.status != VideoStatus.COMPLETED:
                continue
            rows = repo.list_manifests(tenant, video.video_id)
            expected_docs[(tenant, video.video_id)] = len(rows)
            for row in rows:
                report.checked += 1
                item = f"index:{tenant}|{row.manifest_id}"
                problem = _check_doc(index, store, tenant, row)
                if problem is not None:
                    report.bad(item, problem)
                    plan.reindex.add((tenant, video.video_id))
                    plan.items[item] = ("reindex", (tenant, video.video_id))
    # Documents that outlive their chunk (a failed or deleted video's leftovers).
    db = home / INDEX_DB
    if not db.is_file():
        return
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        # A camera's documents belong to no video record: only videos are counted.
        live = conn.execute(
            "SELECT tenant_id, video_id, count(*) FROM docs "
            "WHERE deleted = 0 AND camera_id IS NULL GROUP BY 1, 2"
        ).fetchall()
    finally:
        conn.close()
    for tenant, video_id, n in live:
        report.checked += 1
        want = expected_docs.get((tenant, video_id), 0)
        if n <= want:
            continue  # fewer is reported per chunk above
        video = repo.find_video(tenant, video_id)
        if video is not None and video.status in (VideoStatus.QUEUED, VideoStatus.PROCESSING):
            continue  # an ingest in progress indexes as it goes
        item = f"index:{tenant}|{video_id}"
        report.bad(item, f"{n} live documents for {want} stored chunks")
        plan.reindex.add((tenant, video_id))
        plan.items[item] = ("reindex", (tenant, video_id))


def _leftovers(store: Any, repo: Repository, tenant: str, video_id: str) -> int:
    return (
        len(repo.list_manifests(tenant, video_id))
        + len(repo.list_events(tenant, video_id))
        + len(store.list_keys(keys.derived_prefix(tenant, video_id)))
    )


def _check_leftovers(
    store: Any, repo: Repository, tenant: str, video_id: str, report: Report, plan: _Plan
) -> None:
    """A failed video keeps no results; a step still running when it failed may have
    written some after the failure path removed them."""
    report.checked += 1
    n = _leftovers(store, repo, tenant, video_id)
    if n:
        item = f"video:{tenant}/{video_id}"
        report.bad(item, f"failed, yet {n} results of its chunks remain")
        plan.cleanup.add((tenant, video_id))
        plan.items[item] = ("cleanup", (tenant, video_id))


def _check_doc(index: Any, store: Any, tenant: str, row: ManifestRow) -> str | None:
    try:
        doc = index.get(tenant, row.manifest_id)
    except (ValueError, sqlite3.DatabaseError) as exc:
        return f"unreadable document: {exc}"
    if doc is None:
        return "missing from the index"
    if (doc.t0, doc.t1, doc.video_id) != (row.t0, row.t1, row.video_id):
        return "times or video differ from the manifest"
    analysis_key = keys.analysis(tenant, row.video_id, row.chunk_index)
    try:
        analysis = json.loads(store.get_bytes(analysis_key)) if store.exists(analysis_key) else {}
    except (ValueError, SightlineError):
        analysis = {}  # reported with the blob; the document cannot be checked against it
    if analysis and doc.description != str(analysis.get("description", "")):
        return "description differs from the stored analysis"
    for name in ("text_embedding", "latent_embedding"):
        vec = getattr(doc, name)
        if vec is None:
            continue
        arr = np.asarray(vec, dtype=np.float64)
        norm = float(np.linalg.norm(arr)) if arr.size else 0.0
        if not np.all(np.isfinite(arr)) or not math.isclose(norm, 1.0, abs_tol=1e-3):
            return f"{name} is not a finite unit vector (norm {norm:.4g})"
    return None


def _check_graphs(index_dir: Path, report: Report, plan: _Plan) -> None:
    if not index_dir.is_dir():
        return
    import faiss

    home = index_dir.parent
    for path in sorted(index_dir.glob("*.faiss")):
        report.checked += 1
        item = path.relative_to(home).as_posix()
        sidecar = path.with_name(path.name + ".b3")
        if sidecar.is_file() and _file_blake3(path) != sidecar.read_text().strip():
            report.bad(item, "does not match its BLAKE3 digest")
            plan.drop_graphs.add(path)
            plan.items[item] = "drop_graph"
            continue
        try:
            graph = faiss.read_index(str(path))
            ids = faiss.vector_to_array(graph.id_map) if hasattr(graph, "id_map") else None
            if ids is not None and ids.size != graph.ntotal:
                raise ValueError("id map and vectors disagree")
        except (RuntimeError, ValueError) as exc:
            report.bad(item, f"faiss cannot load it: {exc}")
            plan.drop_graphs.add(path)
            plan.items[item] = "drop_graph"


# ----- repair -------------------------------------------------------------------------


def _repair(home: Path, report: Report, plan: _Plan, repo: Repository | None) -> None:
    from sightline import handlers

    store = factory.blobs()
    for rel in sorted(plan.drop_blobs):
        (home / rel).unlink(missing_ok=True)
        if rel.startswith("blobs/") and rel in report.details:
            key = rel.removeprefix("blobs/")
            store.delete_prefix(key)
            report.repaired.append(rel)
    for path in plan.drop_graphs:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".b3").unlink(missing_ok=True)
        report.repaired.append(path.relative_to(home).as_posix())
    for rel, action in plan.items.items():
        if action == "move_aside":
            _move_aside(home / rel)
            report.repaired.append(rel)
    if plan.rebuild_index_db:
        _move_aside(home / INDEX_DB)
        for graph in (home / "index").glob("*.faiss"):
            graph.unlink(missing_ok=True)
        factory.index.cache_clear()
        handlers.pipeline.cache_clear()
    if repo is None:
        return  # sightline.db is damaged: nothing below can be trusted
    pipeline = handlers.pipeline()
    chunks = plan.recut | plan.reencode | plan.redescribe | plan.relatent
    failed: set[tuple[str, str, int]] = set()
    for ref in sorted(chunks):
        tenant, video_id, n = ref
        try:
            chunk = _chunk_ref(repo, tenant, video_id, n)
            if ref in plan.recut:
                _recut(store, repo, chunk)
            if ref in plan.reencode:
                store.delete_prefix(keys.tokens(tenant, video_id, n))
                store.delete_prefix(keys.sideinfo(tenant, video_id, n))
            if ref in plan.redescribe:
                store.delete_prefix(keys.analysis(tenant, video_id, n))
            _reprocess(pipeline, chunk, events=ref in plan.redescribe)
        except (SightlineError, OSError, ValueError) as exc:
            logger.error("doctor: cannot rebuild chunk %s of %s: %s", n, video_id, exc)
            failed.add(ref)
            continue
        plan.reindex.add((tenant, video_id))
    if plan.rebuild_index_db:
        from sightline_local.recovery import tenants

        for tenant in tenants(home / TABLES_DB):
            for video in repo.list_videos(tenant):
                if video.status == VideoStatus.COMPLETED:
                    plan.reindex.add((tenant, video.video_id))
    for tenant, video_id in sorted(plan.cleanup):
        factory.index().delete_video(tenant, video_id)
        repo.delete_events(tenant, video_id)
        repo.delete_manifests(tenant, video_id)
        store.delete_prefix(keys.derived_prefix(tenant, video_id))
    by_tenant: dict[str, list[str]] = defaultdict(list)
    for tenant, video_id in sorted(plan.reindex):
        by_tenant[tenant].append(video_id)
    index = factory.index()
    for tenant, videos in by_tenant.items():
        for video_id in videos:
            index.delete_video(tenant, video_id)
        video_ids = [v for v in videos if repo.find_video(tenant, v) is not None]
        if video_ids:
            reindex(
                tenant,
                repo=repo,
                blobs=store,
                index=index,
                embedder=factory.embedder(),
                video_ids=video_ids,
            )
    for graph in plan.drop_graphs:
        field_name, dim = graph.stem.split("-")[0:2]
        prepare = getattr(index, "prepare", None)
        if prepare is not None and dim.isdigit():
            prepare(int(dim), field_name)
    # Re-check what was rebuilt before calling it repaired.
    for item, action in plan.items.items():
        if item in report.repaired:
            continue
        if action == "rebuild":
            ok = _integrity(home / INDEX_DB) is None
        elif not isinstance(action, tuple):
            continue
        elif action[0] == "reindex":
            ok = _video_docs_ok(index, store, repo, *action[1])
        elif action[0] == "cleanup":
            ok = _leftovers(store, repo, *action[1]) == 0
        else:
            key = item.removeprefix("blobs/")
            ok = action[1] not in failed and store.exists(key) and store.verify(key) is not False
            ok = ok and _check_blob_again(store, key, repo)
        if ok:
            report.repaired.append(item)


def _check_blob_again(store: Any, key: str, repo: Repository) -> bool:
    m = _DERIVED.match(key)
    return m is None or _check_content(store, key, m, repo, {}) is None


def _file_blake3(path: Path) -> str:
    import blake3

    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    h.update_mmap(str(path))
    return f"blake3:{h.hexdigest()}"


def _move_aside(path: Path) -> None:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        p = Path(f"{path}{suffix}")
        if p.exists():
            p.rename(p.with_name(f"{p.name}.corrupt-{stamp}"))


def _chunk_ref(repo: Repository, tenant: str, video_id: str, n: int) -> ChunkRef:
    """The chunk as the pipeline planned it: the manifest's times, else the plan's."""
    row = repo.find_manifest(tenant, f"{video_id}-c{n:05d}")
    if row is not None:
        t0, t1 = row.t0, row.t1
    else:
        video = repo.get_video(tenant, video_id)
        s = get_settings()
        windows = media.plan_windows(
            float(video.duration_s or 0), s.chunk_seconds, s.chunk_overlap_seconds
        )
        if n >= len(windows):
            raise ValueError(f"chunk {n} is not in the plan of {video_id}")
        t0, t1 = windows[n]
    return ChunkRef(
        tenant_id=tenant,
        video_id=video_id,
        index=n,
        t0=t0,
        t1=t1,
        key=keys.chunk(tenant, video_id, n),
    )


def _recut(store: Any, repo: Repository, chunk: ChunkRef) -> None:
    import tempfile

    s = get_settings()
    video = repo.get_video(chunk.tenant_id, chunk.video_id)
    with tempfile.TemporaryDirectory(prefix="sl-doctor-") as tmp:
        src = Path(tmp) / "source"
        store.download_file(video.source_key, src)  # verified: a damaged source is refused
        out = Path(tmp) / "chunk.mp4"
        media.cut_chunk(src, out, chunk.t0, chunk.t1, ffmpeg=s.ffmpeg, threads=s.threads)
        store.upload_file(out, chunk.key, "video/mp4")


def _reprocess(pipeline: Any, chunk: ChunkRef, *, events: bool) -> None:
    """process_chunk for one chunk, in process, up to the index (the caller re-indexes the
    video): encode keeps tokens that still verify, describe runs only without an analysis."""
    encoded = pipeline.encode(chunk)
    analysis_key = keys.analysis(chunk.tenant_id, chunk.video_id, chunk.index)
    work = ChunkWork(chunk=chunk, encode=encoded)
    if pipeline.blobs.exists(analysis_key):
        a = json.loads(pipeline.blobs.get_bytes(analysis_key))
        described = DescribeOutput(
            description=str(a.get("description", "")),
            tags=list(a.get("tags", [])),
            analysis_key=analysis_key,
            model=str(a.get("model", "")),
        )
    else:
        described = pipeline.describe(work)
        events = True
    latent = pipeline.latent(work)
    if events:  # events derive from the analysis: only a new analysis changes them
        pipeline.events(ChunkWork(chunk=chunk, encode=encoded, describe=described, latent=latent))


def _video_docs_ok(index: Any, store: Any, repo: Repository, tenant: str, video_id: str) -> bool:
    video = repo.find_video(tenant, video_id)
    if video is None or video.status != VideoStatus.COMPLETED:
        return True
    return all(
        _check_doc(index, store, tenant, row) is None
        for row in repo.list_manifests(tenant, video_id)
    )


def format_report(report: Report) -> str:
    lines = [
        f"checked {report.checked} items: {len(report.corrupt)} corrupt, "
        f"{len(report.repaired)} repaired, {report.unverified} without a digest, "
        f"{len(report.stale_temp)} stale temporary files, {len(report.orphaned)} orphaned ingests"
    ]
    for item in report.corrupt:
        mark = "repaired" if item in report.repaired else "NOT REPAIRED"
        lines.append(f"  {mark:<12} {item}: {report.details.get(item, '')}")
    if report.orphaned:
        lines.append("  orphaned ingests resume when `sightline up` or `sightline ingest` starts:")
        lines.extend(f"    {o}" for o in report.orphaned)
    return "\n".join(lines)
