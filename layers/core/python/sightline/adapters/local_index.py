"""The k-NN index on one machine: faiss HNSW (the engine OpenSearch k-NN uses) over
documents kept in SQLite, with OpenSearch's filter semantics.

- SQLite is the source of truth: ``docs`` holds each document's fields as columns (what a
  filter or a hit needs, no JSON to parse on the hot path), ``vecs`` its vectors. The faiss
  graphs are a cache of it, persisted beside it and rebuilt when missing, stale or
  unreadable.
- A ``_Catalog`` keeps the filterable columns of every live document in memory, one numpy
  column store per tenant, and catches up incrementally after writes (its own or another
  process's): new rows are the labels above the newest it has seen, and a tombstone records
  the generation that wrote it, so removed rows are those tombstoned after the catalog's
  generation. A search never re-reads a tenant's label set from SQLite.
- Every search is filtered by tenant, then by the optional filters, evaluated on those
  columns. Like OpenSearch's faiss engine, a filtered query runs exactly over the filtered
  set when that set is small (≤ k, or count × dim ≤ 2,048,000), and falls back to exact
  when the filtered graph walk returns fewer than k hits: a small tenant never gets a worse
  answer than a large one. Exact search reads the vectors from the graph's own storage.
  A graph walk under a selective filter widens ``efSearch`` so that recall holds.
- An upsert of an existing document tombstones its old row (and vector); vectors of
  different embedding models (text) or codebooks (latent) are never compared.
- Descriptions are also indexed for BM25 (an SQLite FTS5 table keyed by label, holding
  only live documents, unicode61 tokens like OpenSearch's standard analyzer) for
  ``search_hybrid``: k-NN and BM25 candidates, each filtered exactly as a vector search
  is, min-max normalised and combined as OpenSearch's normalization processor does.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sightline import search_mapping as sm
from sightline.models import IndexDocument, SearchHit
from sightline.ports import SearchFilters

logger = logging.getLogger(__name__)

HNSW_M = sm.HNSW_M
EF_CONSTRUCTION = sm.EF_CONSTRUCTION
EF_SEARCH = sm.EF_SEARCH
EF_MAX = 1024  # efSearch ceiling for selective filters
EXACT_BUDGET = 2_048_000  # OpenSearch's default: filtered count × dimension
# Filtered HNSW (faiss, M=32, efSearch 128, clustered 384-d data) keeps recall@10 ≈ 1.0
# down to a filter keeping ~5 % of the graph; below that recall falls fast (100k vectors:
# 0.89 at 2 %, 0.62 at 1 %, 0.38 at 0.5 %) unless efSearch widens (1024: 0.99 at 2 %,
# 0.93 at 1 %). Exact search over the filtered set costs ~0.3 µs a vector (gathered from
# the graph's storage): under ``EXACT_SELECTIVITY`` it is exact, between that and
# ``WIDE_SELECTIVITY`` the walk widens.
EXACT_SELECTIVITY = 0.015
WIDE_SELECTIVITY = 0.05
FIELDS = sm.VECTOR_FIELDS
REBUILD_DEAD_FRACTION = 0.2  # rebuild a graph once this share of it is tombstoned
PERSIST_GROWTH = 0.1  # re-save a graph to disk after it grew by this share
COMPACT_MIN_DEAD = 1024  # a tenant's dead catalog rows are dropped past this and half
ALLOWED_MEMO = 64  # filtered label sets kept per tenant between writes
BUILD_BATCH = 50_000  # vectors read from SQLite and added to a graph at a time
SCHEMA_VERSION = 2
_PARAMS = 900  # SQLite host parameters per statement, with margin under the 999 default

# Columns of ``docs`` that hold document fields; the rest of a document (fields added to
# IndexDocument later) is kept as JSON in ``extra`` so that ``get`` round-trips it.
_COLUMN_FIELDS = frozenset(
    {
        "manifest_id",
        "tenant_id",
        "stream_id",
        "video_id",
        "camera_id",
        "t0",
        "t1",
        "t_mid",
        "description",
        "events",
        "tags",
        "embedding_model",
        "latent_model",
        "roi_suggestion",
        "wall_t0",
        "wall_t1",
        "text_embedding",
        "latent_embedding",
    }
)
_EXTRA_FIELDS = frozenset(IndexDocument.model_fields) - _COLUMN_FIELDS

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
  label INTEGER PRIMARY KEY AUTOINCREMENT,
  doc_id TEXT NOT NULL, tenant_id TEXT NOT NULL, manifest_id TEXT NOT NULL,
  stream_id TEXT NOT NULL, video_id TEXT NOT NULL, camera_id TEXT,
  t0 REAL NOT NULL, t1 REAL NOT NULL, t_mid REAL NOT NULL, wall_t0 REAL, wall_t1 REAL,
  description TEXT NOT NULL, events TEXT NOT NULL, tags TEXT NOT NULL,
  embedding_model TEXT NOT NULL, latent_model TEXT,
  text_dim INTEGER NOT NULL, latent_dim INTEGER, roi TEXT, extra TEXT NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0, digest TEXT);
CREATE TABLE IF NOT EXISTS vecs (label INTEGER PRIMARY KEY, text_vec BLOB NOT NULL,
  latent_vec BLOB);
CREATE INDEX IF NOT EXISTS docs_live ON docs (tenant_id, deleted);
CREATE UNIQUE INDEX IF NOT EXISTS docs_current ON docs (doc_id) WHERE deleted = 0;
CREATE INDEX IF NOT EXISTS docs_dead ON docs (deleted) WHERE deleted > 0;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('generation', 0);
INSERT OR IGNORE INTO meta VALUES ('tombstones', 0);
"""

# A row's content columns (what ``_row`` returns, in this order). ``digest`` is the BLAKE3
# of their JSON: SQLite keeps no checksums, so a byte changed on disk inside a record would
# otherwise be served as is. Reads verify it (rows written before it existed have NULL).
_DOC_COLUMNS = (
    "doc_id, tenant_id, manifest_id, stream_id, video_id, camera_id, t0, t1, t_mid, wall_t0, "
    "wall_t1, description, events, tags, embedding_model, latent_model, text_dim, latent_dim, "
    "roi, extra"
)
_INSERT_DOC = (
    f"INSERT INTO docs (label, {_DOC_COLUMNS}, digest) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
# What the catalog keeps of a row (the filterable columns), in this order.
_CATALOG_COLUMNS = (
    "label, tenant_id, video_id, stream_id, camera_id, embedding_model, latent_model, "
    "text_dim, latent_dim, t0, t1, wall_t0, wall_t1, events, tags, deleted"
)


# ----- the in-memory catalog of filterable columns ---------------------------------


class _Vocab:
    """Strings (video ids, models, event types, ...) as small integer codes."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def code(self, value: str | None) -> int:
        if value is None:
            return -1
        found = self._codes.get(value)
        if found is None:
            found = self._codes[value] = len(self._codes)
        return found

    def known(self, values: Iterable[str]) -> list[int]:
        """The codes of the values seen so far (an unseen value matches no row)."""
        return [self._codes[v] for v in values if v in self._codes]


class _Postings:
    """Positions of the rows holding each value of a multi-valued field (events, tags)."""

    def __init__(self) -> None:
        self._lists: dict[int, list[int]] = {}
        self._arrays: dict[int, np.ndarray] = {}

    def add(self, code: int, position: int) -> None:
        self._lists.setdefault(code, []).append(position)

    def mask(self, codes: Sequence[int], n: int) -> np.ndarray:
        out = np.zeros(n, dtype=bool)
        for code in codes:
            positions = self._lists.get(code)
            if positions is None:
                continue
            # Lists only grow: convert just the positions added since the last query.
            arr = self._arrays.get(code, np.zeros(0, dtype=np.int64))
            if arr.size < len(positions):
                tail = np.asarray(positions[arr.size :], dtype=np.int64)
                arr = self._arrays[code] = np.concatenate([arr, tail])
            out[arr] = True
        return out


_NUMERIC = {
    "labels": np.int64,
    "alive": bool,
    "video": np.int32,
    "stream": np.int32,
    "camera": np.int32,
    "model": np.int32,
    "latent_model": np.int32,
    "text_dim": np.int32,
    "latent_dim": np.int32,
    "t0": np.float64,
    "t1": np.float64,
    "wall0": np.float64,
    "wall1": np.float64,
}


class _TenantRows:
    """One tenant's rows in label order: numpy columns grown by doubling, and a live mask.

    Rows are appended in increasing label order (so a label's position is a binary search)
    and never removed: a tombstone clears ``alive``; ``compact`` drops dead rows once they
    are the majority.
    """

    def __init__(self) -> None:
        self.n = 0
        self.dead = 0
        self.version = 0
        self.cols = {name: np.zeros(16, dtype=dtype) for name, dtype in _NUMERIC.items()}
        self.row_events: list[tuple[int, ...]] = []
        self.row_tags: list[tuple[int, ...]] = []
        self.events = _Postings()
        self.tags = _Postings()
        self.memo: OrderedDict[tuple[Any, ...], _Allowed] = OrderedDict()

    def col(self, name: str) -> np.ndarray:
        return self.cols[name][: self.n]

    def append(
        self, values: dict[str, Any], events: list[tuple[int, ...]], tags: list[tuple[int, ...]]
    ) -> None:
        m = len(events)
        if not m:
            return
        need = self.n + m
        if need > self.cols["labels"].shape[0]:
            size = max(need, 2 * self.cols["labels"].shape[0])
            for name, arr in self.cols.items():
                grown = np.zeros(size, dtype=arr.dtype)
                grown[: self.n] = arr[: self.n]
                self.cols[name] = grown
        for name, column in values.items():
            self.cols[name][self.n : need] = column
        self.cols["alive"][self.n : need] = True
        for i, (ev, tg) in enumerate(zip(events, tags, strict=True)):
            for code in ev:
                self.events.add(code, self.n + i)
            for code in tg:
                self.tags.add(code, self.n + i)
        self.row_events.extend(events)
        self.row_tags.extend(tags)
        self.n = need
        self.changed()

    def kill(self, labels: np.ndarray) -> None:
        """Tombstone the rows of ``labels`` (sorted; labels not held are ignored)."""
        held = self.col("labels")
        pos = np.searchsorted(held, labels)
        inside = pos < self.n
        pos, labels = pos[inside], labels[inside]
        pos = pos[held[pos] == labels]
        hit = pos[self.cols["alive"][pos]]
        if hit.size:
            self.cols["alive"][hit] = False
            self.dead += int(hit.size)
            self.changed()
            if self.dead > max(COMPACT_MIN_DEAD, self.n // 2):
                self.compact()

    def compact(self) -> None:
        """Drop dead rows (positions change: postings are rebuilt, memos dropped)."""
        keep = np.flatnonzero(self.col("alive"))
        cols = {name: arr[: self.n][keep].copy() for name, arr in self.cols.items()}
        events = [self.row_events[i] for i in keep.tolist()]
        tags = [self.row_tags[i] for i in keep.tolist()]
        self.n = self.dead = 0
        self.row_events, self.row_tags = [], []
        self.events, self.tags = _Postings(), _Postings()
        del cols["alive"]
        self.append(cols, events, tags)
        self.changed()

    def changed(self) -> None:
        self.version += 1
        self.memo.clear()

    def select(self, vocab: _Vocab, f: SearchFilters, fld: str, model: str | None, dim: int):
        """The sorted labels of live rows passing ``f`` with a ``dim``-vector in ``fld``."""
        mask = self.col("alive").copy()
        if fld == "text_embedding":
            mask &= self.col("text_dim") == dim
            model_col = "model"
        else:
            mask &= self.col("latent_dim") == dim
            model_col = "latent_model"
        if model:
            codes = vocab.known([model])
            if not codes:
                return np.zeros(0, dtype=np.int64)
            mask &= self.col(model_col) == codes[0]
        for col, values in (("video", f.video_ids), ("camera", f.camera_ids)):
            if values:
                mask &= np.isin(self.col(col), vocab.known(values))
        if f.stream_ids:
            mask &= np.isin(self.col("stream"), vocab.known(f.stream_ids))
        if f.event_types:
            mask &= self.events.mask(vocab.known(f.event_types), self.n)
        if f.tags:
            mask &= self.tags.mask(vocab.known(f.tags), self.n)
        if f.t_from is not None:
            mask &= self.col("t1") >= f.t_from
        if f.t_to is not None:
            mask &= self.col("t0") <= f.t_to
        # NaN (no wall-clock time) compares False: such chunks never match a wall filter.
        if f.wall_from is not None:
            mask &= self.col("wall1") >= sm.epoch_seconds(f.wall_from)
        if f.wall_to is not None:
            mask &= self.col("wall0") <= sm.epoch_seconds(f.wall_to)
        return self.col("labels")[mask]


class _Allowed:
    """The labels a query may return, and (on demand) their bitmap for faiss's selector."""

    __slots__ = ("_bits", "labels")

    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels
        self._bits: np.ndarray | None = None

    def bitmap(self) -> np.ndarray:
        # Bit ``label`` is set for every allowed label (faiss.IDSelectorBitmap's layout).
        if self._bits is None:
            mask = np.zeros(int(self.labels.max()) + 1 if self.labels.size else 1, dtype=bool)
            mask[self.labels] = True
            self._bits = np.packbits(mask, bitorder="little")
        return self._bits


@dataclass
class _Catalog:
    """Every tenant's live rows, as of SQLite generation ``generation``."""

    generation: int = -1
    max_label: int = 0
    vocab: _Vocab = field(default_factory=_Vocab)
    tenants: dict[str, _TenantRows] = field(default_factory=dict)


@dataclass
class _Graph:
    """A cached HNSW graph and the state of SQLite it reflects."""

    graph: Any
    max_label: int  # every live vector with a label up to this one is in the graph
    tombstones: int  # the tombstone counter when the graph was built
    saved_size: int  # ntotal when last written to disk
    labels: np.ndarray  # the label of each stored vector, in storage order (increasing)
    dim: int
    checked: int = -1  # the catalog generation it was last caught up with

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        if labels.size:
            # Many vectors: build with every core; one or a few (a catch-up after a write):
            # one thread, no OpenMP team to wake.
            _omp_threads(_build_threads() if labels.size >= 1000 else 1)
            self.graph.add_with_ids(vectors, labels)
            self.labels = np.concatenate([self.labels, labels])

    def inner_products(self, positions: np.ndarray, query: np.ndarray) -> np.ndarray:
        """``query`` · the stored vectors at ``positions`` (storage order), read in place.

        faiss's by-index kernel: no gathered copy, one thread (numpy's BLAS would wake a
        thread team per call, milliseconds on a busy machine).
        """
        import faiss

        lib: Any = faiss  # the SWIG module: its kernels and downcasts are untyped
        hnsw: Any = lib.downcast_index(self.graph.index)
        flat: Any = lib.downcast_index(hnsw.storage)
        ids = np.ascontiguousarray(positions, dtype=np.int64)
        q = np.ascontiguousarray(query, dtype=np.float32)
        out = np.empty(ids.size, dtype=np.float32)
        _omp_threads(1)
        lib.fvec_inner_products_by_idx(
            faiss.swig_ptr(out),
            faiss.swig_ptr(q),
            flat.get_xb(),
            faiss.swig_ptr(ids),
            self.dim,
            1,
            ids.size,
        )
        return out


class LocalVectorIndex:
    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._db_path = self.dir / "documents.db"
        self._lock = threading.RLock()
        self._local = threading.local()
        self._graphs: dict[str, _Graph] = {}
        self._catalog = _Catalog()
        db = self._db()
        with self._lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                _migrate_v1(db)
                for statement in _SCHEMA.strip().split(";"):
                    if statement.strip():
                        db.execute(statement)
                if "digest" not in {r[1] for r in db.execute("PRAGMA table_info(docs)")}:
                    db.execute("ALTER TABLE docs ADD COLUMN digest TEXT")
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        self._ensure_fts(db)

    def _ensure_fts(self, db: sqlite3.Connection) -> None:
        """The BM25 index of live descriptions; filled from ``docs`` when first created."""
        with self._lock:
            exists = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'docs_fts'"
            ).fetchone()
            if exists:
                return
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts "
                    "USING fts5(description, tokenize = 'unicode61')"
                )
                db.execute(
                    "INSERT INTO docs_fts (rowid, description) "
                    "SELECT label, description FROM docs "
                    "WHERE deleted = 0 AND rowid NOT IN (SELECT rowid FROM docs_fts)"
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # ----- storage ---------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._db_path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit survives a crash of the process; only a power loss can
            # take the last commits, which the pipeline (idempotent per chunk) re-indexes.
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            # Hits are random row reads: map the file and keep a larger page cache (64 MiB)
            # rather than a syscall per page.
            conn.execute(f"PRAGMA mmap_size={1 << 30}")
            conn.execute("PRAGMA cache_size=-65536")
            self._local.conn = conn
        return conn

    def _generation(self) -> int:
        return int(self._db().execute("SELECT v FROM meta WHERE k='generation'").fetchone()[0])

    def _counters(self) -> tuple[int, int]:
        """(generation, tombstones) in one read."""
        rows = dict(
            self._db().execute("SELECT k, v FROM meta WHERE k IN ('generation', 'tombstones')")
        )
        return int(rows["generation"]), int(rows.get("tombstones", 0))

    @staticmethod
    def _doc_id(tenant_id: str, manifest_id: str) -> str:
        return sm.doc_key(tenant_id, manifest_id)

    # ----- writes ----------------------------------------------------------------

    def upsert(self, doc: IndexDocument) -> None:
        self.upsert_many([doc])

    def upsert_many(self, docs: Iterable[IndexDocument]) -> int:
        """Insert or replace documents in one transaction (one generation step)."""
        by_id: dict[str, tuple[tuple[Any, ...], bytes, bytes | None]] = {}
        for doc in docs:  # a chunk given twice: the last one wins
            row, text, latent = _row(doc)
            by_id[row[0]] = (row, text, latent)
        if not by_id:
            return 0
        ids = list(by_id)
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                generation = self._generation() + 1
                # Replacing a document tombstones its earlier row (and vector).
                old: list[int] = []
                for start in range(0, len(ids), _PARAMS):
                    part = ids[start : start + _PARAMS]
                    old.extend(
                        r[0]
                        for r in db.execute(
                            f"SELECT label FROM docs WHERE deleted = 0 AND doc_id IN "
                            f"({','.join('?' * len(part))})",
                            part,
                        )
                    )
                for start in range(0, len(old), _PARAMS):
                    labels_part = old[start : start + _PARAMS]
                    marks = ",".join("?" * len(labels_part))
                    db.execute(
                        f"UPDATE docs SET deleted = ? WHERE label IN ({marks})",
                        [generation, *labels_part],
                    )
                    db.execute(f"DELETE FROM docs_fts WHERE rowid IN ({marks})", labels_part)
                # Labels are assigned here (AUTOINCREMENT never reuses one; this transaction
                # is the only writer) so that the three tables are filled in bulk.
                base = db.execute(
                    "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'docs'), 0),"
                    " coalesce((SELECT max(label) FROM docs), 0))"
                ).fetchone()[0]
                values = list(by_id.values())
                labels = range(base + 1, base + 1 + len(values))
                db.executemany(
                    _INSERT_DOC,
                    (
                        (label, *v[0], _row_digest(v[0]))
                        for label, v in zip(labels, values, strict=True)
                    ),
                )
                db.executemany(
                    "INSERT INTO vecs (label, text_vec, latent_vec) VALUES (?, ?, ?)",
                    ((label, v[1], v[2]) for label, v in zip(labels, values, strict=True)),
                )
                db.executemany(
                    "INSERT INTO docs_fts (rowid, description) VALUES (?, ?)",
                    ((label, v[0][11]) for label, v in zip(labels, values, strict=True)),
                )
                db.execute("UPDATE meta SET v = ? WHERE k = 'generation'", (generation,))
                if old:
                    db.execute("UPDATE meta SET v = v + ? WHERE k = 'tombstones'", (len(old),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        # The catalog and graphs catch up on the next search (the writer may be another
        # process).
        return len(values)

    def delete_video(self, tenant_id: str, video_id: str) -> int:
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                generation = self._generation() + 1
                db.execute(
                    "DELETE FROM docs_fts WHERE rowid IN (SELECT label FROM docs "
                    "WHERE tenant_id = ? AND video_id = ? AND deleted = 0)",
                    (tenant_id, video_id),
                )
                cur = db.execute(
                    "UPDATE docs SET deleted = ? "
                    "WHERE tenant_id = ? AND video_id = ? AND deleted = 0",
                    (generation, tenant_id, video_id),
                )
                db.execute("UPDATE meta SET v = ? WHERE k = 'generation'", (generation,))
                db.execute("UPDATE meta SET v = v + ? WHERE k = 'tombstones'", (cur.rowcount,))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return cur.rowcount

    # ----- reads -----------------------------------------------------------------

    def get(self, tenant_id: str, manifest_id: str) -> IndexDocument | None:
        found = (
            self._db()
            .execute(
                f"SELECT d.digest, {', '.join('d.' + c for c in _DOC_COLUMNS.split(', '))}, "
                "v.text_vec, v.latent_vec "
                "FROM docs d JOIN vecs v ON v.label = d.label "
                "WHERE d.doc_id = ? AND d.deleted = 0",
                (self._doc_id(tenant_id, manifest_id),),
            )
            .fetchone()
        )
        if found is None or not _intact(found[1:21], found[0]):
            return None
        (
            _,
            _,
            tenant,
            manifest,
            stream_id,
            video_id,
            camera_id,
            t0,
            t1,
            t_mid,
            wall_t0,
            wall_t1,
            description,
            events,
            tags,
            embedding_model,
            latent_model,
            _,
            _,
            roi,
            extra,
            text_vec,
            latent_vec,
        ) = found
        body: dict[str, Any] = json.loads(extra)
        body.update(
            manifest_id=manifest,
            tenant_id=tenant,
            stream_id=stream_id,
            video_id=video_id,
            camera_id=camera_id,
            t0=t0,
            t1=t1,
            t_mid=t_mid,
            wall_t0=_from_epoch(wall_t0),
            wall_t1=_from_epoch(wall_t1),
            description=description,
            events=json.loads(events),
            tags=json.loads(tags),
            embedding_model=embedding_model,
            latent_model=latent_model,
            roi_suggestion=json.loads(roi) if roi else None,
            text_embedding=np.frombuffer(text_vec, dtype=np.float32).tolist(),
            latent_embedding=(
                np.frombuffer(latent_vec, dtype=np.float32).tolist()
                if latent_vec is not None
                else None
            ),
        )
        return IndexDocument.model_validate(body)

    def count(self, tenant_id: str | None = None) -> int:
        if tenant_id is None:
            return int(
                self._db().execute("SELECT count(*) FROM docs WHERE deleted = 0").fetchone()[0]
            )
        return int(
            self._db()
            .execute("SELECT count(*) FROM docs WHERE deleted = 0 AND tenant_id = ?", (tenant_id,))
            .fetchone()[0]
        )

    def search(
        self,
        tenant_id: str,
        vector: Sequence[float],
        *,
        k: int = 10,
        filters: SearchFilters | None = None,
        field: str = "text_embedding",
        embedding_model: str | None = None,
    ) -> list[SearchHit]:
        """The ``k`` nearest of the tenant's documents passing ``filters`` (cosine scores).

        ``embedding_model`` names the model of the searched vectors: the text embedding
        model for ``text_embedding``, the codebook (``latent_model``) for
        ``latent_embedding``; documents of any other model never match.
        """
        if field not in FIELDS:
            raise ValueError(f"unknown vector field {field}")
        query = _unit(np.asarray(vector, dtype=np.float32))
        k = max(1, min(k, 1000))
        with self._lock:
            allowed = self._allowed(tenant_id, filters, field, embedding_model, query.shape[0])
            if allowed.labels.size == 0:
                return []
            scored = self._search_allowed(allowed, query, field, k)
        return self._hits(scored)

    def _search_allowed(
        self, allowed: _Allowed, query: np.ndarray, field: str, k: int
    ) -> list[tuple[int, float]]:
        """Exact or filtered-HNSW search over ``allowed``; the caller holds the lock."""
        cached = self._graph(field, query.shape[0])
        count = allowed.labels.size
        total = max(int(cached.graph.ntotal), 1)
        if (
            count <= k
            or count * query.shape[0] <= EXACT_BUDGET
            or count < EXACT_SELECTIVITY * total
        ):
            return self._exact(cached, allowed.labels, query, k)
        scored = self._approximate(cached, allowed, query, k, ef_search(k, count / total))
        if len(scored) < k:
            scored = self._exact(cached, allowed.labels, query, k)
        return scored

    def search_hybrid(
        self,
        tenant_id: str,
        vector: Sequence[float],
        text: str,
        *,
        k: int = 10,
        offset: int = 0,
        filters: SearchFilters | None = None,
        embedding_model: str | None = None,
        weights: tuple[float, float] = sm.DEFAULT_HYBRID_WEIGHTS,
    ) -> list[SearchHit]:
        """BM25 over descriptions and k-NN over text embeddings, combined; one page of it.

        Both candidate lists (``sm.HYBRID_DEPTH`` deep, or ``offset + k`` if deeper) hold
        only the tenant's documents passing ``filters`` (and of ``embedding_model``). Each
        list's scores are min-max normalised within the query and combined as a weighted
        arithmetic mean, ``weights`` = (vector, lexical); hits are ranked by that score
        (in [0, 1]) and ``offset``/``k`` select the page.
        """
        w = sm.hybrid_weights(weights)
        k = max(1, min(k, 1000))
        offset = max(0, offset)
        depth = min(max(sm.HYBRID_DEPTH, offset + k), 10_000)
        query = _unit(np.asarray(vector, dtype=np.float32))
        with self._lock:
            allowed = self._allowed(
                tenant_id, filters, "text_embedding", embedding_model, query.shape[0]
            )
            if allowed.labels.size == 0:
                return []
            semantic_scored = self._search_allowed(allowed, query, "text_embedding", depth)
        semantic = self._hits(semantic_scored)
        lexical = self._hits(self._bm25(allowed.labels, text, depth))
        by_id = {h.manifest_id: h for h in lexical}
        by_id.update({h.manifest_id: h for h in semantic})
        ranked = sm.combine_min_max(
            [
                [(h.manifest_id, h.score) for h in semantic],
                [(h.manifest_id, h.score) for h in lexical],
            ],
            w,
        )
        return [
            by_id[key].model_copy(update={"score": score})
            for key, score in ranked[offset : offset + k]
        ]

    def _bm25(self, labels: np.ndarray, text: str, depth: int) -> list[tuple[int, float]]:
        """The ``depth`` best BM25 matches of ``text`` (any of its words) among ``labels``
        (sorted)."""
        terms = _terms(text)
        if not terms or labels.size == 0:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        cur = self._db().execute(
            "SELECT rowid, -bm25(docs_fts) FROM docs_fts WHERE docs_fts MATCH ? "
            "ORDER BY bm25(docs_fts)",
            (match,),
        )
        out: list[tuple[int, float]] = []
        while len(out) < depth:
            rows = cur.fetchmany(1000)
            if not rows:
                break
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            pos = np.minimum(np.searchsorted(labels, ids), labels.size - 1)
            keep = labels[pos] == ids
            out.extend(
                (int(r[0]), float(r[1])) for r, ok in zip(rows, keep.tolist(), strict=True) if ok
            )
        cur.close()
        return out[:depth]

    # ----- the catalog -----------------------------------------------------------

    def _sync(self) -> _Catalog:
        """Bring the catalog up to SQLite's generation: read rows added and tombstoned
        since. The caller holds the lock."""
        cat = self._catalog
        db = self._db()
        if self._generation() == cat.generation:
            return cat
        db.execute("BEGIN")  # one snapshot: generation, new rows and tombstones agree
        try:
            generation = self._generation()
            newest = db.execute("SELECT coalesce(max(label), 0) FROM docs").fetchone()[0]
            if generation < cat.generation or newest < cat.max_label:
                # The store was replaced underneath (a restore): start over.
                cat = self._catalog = _Catalog()
                self._graphs.clear()
            fresh = cat.generation < 0
            rows = db.execute(
                f"SELECT {_CATALOG_COLUMNS} FROM docs WHERE label > ? AND label <= ? "
                + ("AND deleted = 0 " if fresh else "")
                + "ORDER BY label",
                (cat.max_label, newest),
            )
            while batch := rows.fetchmany(BUILD_BATCH):  # bounded memory on a first load
                self._append(cat, batch)
            dead = (
                []
                if fresh
                else db.execute(
                    "SELECT label, tenant_id FROM docs WHERE deleted > 0 AND deleted > ? "
                    "AND label <= ?",
                    (cat.generation, cat.max_label),
                ).fetchall()
            )
        except BaseException:
            self._catalog = _Catalog()  # half caught up: start over on the next search
            raise
        finally:
            db.execute("COMMIT")
        by_tenant: dict[str, list[int]] = {}
        for label, tenant in dead:
            by_tenant.setdefault(tenant, []).append(label)
        for tenant, labels in by_tenant.items():
            rows_of = cat.tenants.get(tenant)
            if rows_of is not None:
                rows_of.kill(np.sort(np.asarray(labels, dtype=np.int64)))
        cat.generation = generation
        cat.max_label = max(cat.max_label, int(newest))
        return cat

    @staticmethod
    def _append(cat: _Catalog, rows: list[tuple[Any, ...]]) -> None:
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for r in rows:
            if r[15] == 0:  # added and already tombstoned since the last sync: skip
                grouped.setdefault(r[1], []).append(r)
        code = cat.vocab.code
        nan = math.nan
        for tenant, part in grouped.items():
            values = {
                "labels": [r[0] for r in part],
                "video": [code(r[2]) for r in part],
                "stream": [code(r[3]) for r in part],
                "camera": [code(r[4]) for r in part],
                "model": [code(r[5]) for r in part],
                "latent_model": [code(r[6]) for r in part],
                "text_dim": [r[7] for r in part],
                "latent_dim": [r[8] or 0 for r in part],
                "t0": [r[9] for r in part],
                "t1": [r[10] for r in part],
                "wall0": [nan if r[11] is None else r[11] for r in part],
                "wall1": [nan if r[12] is None else r[12] for r in part],
            }
            events = [_codes(cat.vocab, r[13]) for r in part]
            tags = [_codes(cat.vocab, r[14]) for r in part]
            cat.tenants.setdefault(tenant, _TenantRows()).append(values, events, tags)

    def _allowed(
        self,
        tenant_id: str,
        filters: SearchFilters | None,
        field: str,
        embedding_model: str | None,
        dim: int,
    ) -> _Allowed:
        """The filtered label set, from the catalog; kept until the tenant's next change.

        The caller holds the lock.
        """
        cat = self._sync()
        rows = cat.tenants.get(tenant_id)
        if rows is None:
            return _Allowed(np.zeros(0, dtype=np.int64))
        f = filters or SearchFilters()
        key = (
            tuple(f.video_ids),
            tuple(f.camera_ids),
            tuple(f.stream_ids),
            tuple(f.event_types),
            tuple(f.tags),
            f.t_from,
            f.t_to,
            f.wall_from,
            f.wall_to,
            field,
            embedding_model,
            dim,
        )
        hit = rows.memo.get(key)
        if hit is not None:
            rows.memo.move_to_end(key)
            return hit
        allowed = _Allowed(rows.select(cat.vocab, f, field, embedding_model, dim))
        rows.memo[key] = allowed
        while len(rows.memo) > ALLOWED_MEMO:
            rows.memo.popitem(last=False)
        return allowed

    # ----- search paths ----------------------------------------------------------

    def _exact(
        self, cached: _Graph, labels: np.ndarray, query: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        """Exact inner product over ``labels``' vectors, read from the graph's storage."""
        if not cached.labels.size:
            return []
        pos = np.minimum(np.searchsorted(cached.labels, labels), cached.labels.size - 1)
        present = cached.labels[pos] == labels  # a label missing: tombstoned meanwhile
        pos, labels = pos[present], labels[present]
        if not pos.size:
            return []
        scores = cached.inner_products(pos, query)
        top = np.argpartition(-scores, k - 1)[:k] if scores.size > k else np.arange(scores.size)
        order = top[np.lexsort((labels[top], -scores[top]))]
        return [(int(labels[i]), float(scores[i])) for i in order]

    def prepare(self, dim: int, field: str = "text_embedding") -> int:
        """Build (or catch up) the catalog and the graph of ``field`` now rather than on the
        next search. Returns the number of vectors in the graph."""
        if field not in FIELDS:
            raise ValueError(f"unknown vector field {field}")
        with self._lock:
            self._sync()
            return int(self._graph(field, dim).graph.ntotal)

    def _approximate(
        self, cached: _Graph, allowed: _Allowed, query: np.ndarray, k: int, ef: int
    ) -> list[tuple[int, float]]:
        import faiss

        params = faiss.SearchParametersHNSW()  # type: ignore[attr-defined]
        params.efSearch = max(ef, k)
        bits = allowed.bitmap()
        params.sel = faiss.IDSelectorBitmap(bits.size, faiss.swig_ptr(bits))
        # One query: no OpenMP team (on a busy machine waking one costs milliseconds).
        _omp_threads(1)
        scores, ids = cached.graph.search(query[None, :], k, params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    # ----- graphs ----------------------------------------------------------------

    def _graph(self, field: str, dim: int) -> _Graph:
        """The HNSW graph of ``field``: from memory or disk, caught up with the catalog.

        Documents added since the cached graph was built are added to it in place
        (``add_with_ids``); tombstoned labels stay in the graph and are excluded by the
        search's ID selector. The graph is rebuilt from SQLite when missing, unreadable,
        or when tombstones exceed ``REBUILD_DEAD_FRACTION`` of it. The caller holds the
        lock and has synced the catalog.
        """
        key = f"{field}:{dim}"
        cached = self._graphs.get(key)
        if cached is not None and cached.checked == self._catalog.generation:
            return cached  # nothing written since it was last caught up
        _, tombstones = self._counters()
        cached = cached or self._load(field, dim)
        if cached is not None and tombstones - cached.tombstones > REBUILD_DEAD_FRACTION * max(
            cached.graph.ntotal, 1
        ):
            cached = None
        if cached is None:
            cached = self._build(field, dim, tombstones)
            self._save(field, dim, cached)
        newest = self._catalog.max_label
        if cached.max_label < newest:
            for labels, vecs in self._read_vectors(field, dim, cached.max_label, newest):
                cached.add(labels, vecs)
            cached.max_label = newest
            if cached.graph.ntotal > (1 + PERSIST_GROWTH) * max(cached.saved_size, 1):
                self._save(field, dim, cached)
        cached.checked = self._catalog.generation
        self._graphs[key] = cached
        return cached

    def _read_vectors(self, field: str, dim: int, after: int, upto: int):
        """Live vectors of ``field`` with ``after`` < label ≤ ``upto``, in label order, in
        batches of ``BUILD_BATCH``."""
        col, dim_col = (
            ("text_vec", "text_dim") if field == "text_embedding" else ("latent_vec", "latent_dim")
        )
        db = self._db()
        while after < upto:
            rows = db.execute(
                f"SELECT v.label, v.{col} FROM vecs v JOIN docs d ON d.label = v.label "
                f"WHERE v.label > ? AND v.label <= ? AND d.deleted = 0 AND d.{dim_col} = ? "
                f"ORDER BY v.label LIMIT ?",
                (after, upto, dim, BUILD_BATCH),
            ).fetchall()
            if not rows:
                return
            labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            yield labels, vecs.reshape(len(rows), dim)
            after = int(labels[-1])

    def _load(self, field: str, dim: int) -> _Graph | None:
        import faiss

        for path in sorted(self.dir.glob(f"{field}-{dim}-L*-T*.faiss")):
            if _graph_digest_mismatch(path):
                logger.error(
                    "index file %s fails its BLAKE3 check; rebuilding from documents", path
                )
                continue
            try:
                _, _, label_part, tomb_part = path.stem.rsplit("-", 3)
                graph: Any = faiss.read_index(str(path))
                labels = faiss.vector_to_array(graph.id_map).astype(np.int64)
            except (RuntimeError, ValueError, AttributeError):
                logger.warning("index file %s unreadable; rebuilding from documents", path)
                continue
            if labels.size > 1 and not bool(np.all(np.diff(labels) > 0)):
                logger.warning("index file %s is not in label order; rebuilding", path)
                continue
            max_label, tombstones = int(label_part[1:]), int(tomb_part[1:])
            return _Graph(graph, max_label, tombstones, graph.ntotal, labels, dim)
        return None

    def _save(self, field: str, dim: int, cached: _Graph) -> None:
        import faiss

        path = self.dir / f"{field}-{dim}-L{cached.max_label}-T{cached.tombstones}.faiss"
        tmp = path.with_suffix(".tmp")
        faiss.write_index(cached.graph, str(tmp))
        # The graph's vectors serve exact search: keep its digest to refuse a damaged file.
        digest = _graph_sidecar(path)
        digest_tmp = digest.with_suffix(".b3tmp")
        digest_tmp.write_text(_file_blake3(tmp))
        digest_tmp.replace(digest)
        tmp.replace(path)
        cached.saved_size = cached.graph.ntotal
        for old in self.dir.glob(f"{field}-{dim}-*.faiss"):
            if old != path:
                old.unlink(missing_ok=True)
                _graph_sidecar(old).unlink(missing_ok=True)

    def _build(self, field: str, dim: int, tombstones: int) -> _Graph:
        import faiss

        hnsw = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = EF_CONSTRUCTION
        cached = _Graph(faiss.IndexIDMap2(hnsw), 0, tombstones, 0, np.zeros(0, dtype=np.int64), dim)
        newest = self._catalog.max_label
        for labels, vecs in self._read_vectors(field, dim, 0, newest):
            cached.add(labels, vecs)
        cached.max_label = newest
        return cached

    def _hits(self, scored: list[tuple[int, float]]) -> list[SearchHit]:
        """The hits of ``(label, score)``: one query for all of them, columns only."""
        if not scored:
            return []
        labels = [label for label, _ in scored]
        rows = {
            r[0]: r
            for r in self._db().execute(
                f"SELECT label, digest, {_DOC_COLUMNS} FROM docs "
                f"WHERE label IN ({','.join('?' * len(labels))})",
                labels,
            )
            if _intact(r[2:], r[1])
        }
        # Offsets into a row: label, digest, then _DOC_COLUMNS.
        return [
            SearchHit(
                manifest_id=r[4],
                video_id=r[6],
                score=score,
                t0=r[8],
                t1=r[9],
                description=r[13],
                camera_id=r[7],
                roi_suggestion=tuple(json.loads(r[20])) if r[20] else None,
                wall_t0=_from_epoch(r[11]),
                wall_t1=_from_epoch(r[12]),
            )
            for label, score in scored
            if (r := rows.get(label)) is not None
        ]


def ef_search(k: int, selectivity: float) -> int:
    """efSearch for a filtered walk keeping ``selectivity`` of the graph.

    A filtered HNSW walk only counts allowed nodes towards its ``ef`` best, and its
    candidate queue fills with filtered-out nodes when few pass: under
    ``WIDE_SELECTIVITY`` it widens quadratically as the filter narrows, up to ``EF_MAX``
    (under ``EXACT_SELECTIVITY`` the search is exact instead).
    """
    base = max(EF_SEARCH, k)
    if selectivity >= WIDE_SELECTIVITY:
        return base
    return int(min(EF_MAX, base * (WIDE_SELECTIVITY / max(selectivity, 1e-6)) ** 2))


_BUILD_THREADS: list[int] = []


def _build_threads() -> int:
    """OpenMP threads for graph builds: faiss's default (OMP_NUM_THREADS or every core),
    read before this module first changes it."""
    if not _BUILD_THREADS:
        import faiss

        _BUILD_THREADS.append(max(1, int(faiss.omp_get_max_threads())))
    return _BUILD_THREADS[0]


def _omp_threads(n: int) -> None:
    import faiss

    _build_threads()
    faiss.omp_set_num_threads(n)


def _migrate_v1(db: sqlite3.Connection) -> None:
    """Schema 1 (vectors and a JSON document in ``docs``) to 2 (columns, ``vecs``).

    Labels are kept, so persisted graphs and the BM25 table stay valid. The caller holds a
    write transaction.
    """
    cols = {r[1] for r in db.execute("PRAGMA table_info(docs)")}
    if "text_vec" not in cols:
        return
    logger.info("migrating the local index to schema %d", SCHEMA_VERSION)
    db.execute("ALTER TABLE docs RENAME TO docs_v1")
    db.execute("DROP INDEX IF EXISTS docs_live")
    db.execute("DROP INDEX IF EXISTS docs_current")
    for statement in _SCHEMA.strip().split(";"):
        if statement.strip():
            db.execute(statement)
    known = ", ".join(f"'$.{name}'" for name in sorted(_COLUMN_FIELDS))
    db.execute(
        "INSERT INTO docs (label, doc_id, tenant_id, manifest_id, stream_id, video_id, "
        "camera_id, t0, t1, t_mid, wall_t0, wall_t1, description, events, tags, "
        "embedding_model, latent_model, text_dim, latent_dim, roi, extra, deleted) "
        "SELECT label, doc_id, tenant_id, json_extract(doc, '$.manifest_id'), "
        "coalesce(json_extract(doc, '$.stream_id'), video_id), video_id, camera_id, t0, t1, "
        "coalesce(json_extract(doc, '$.t_mid'), (t0 + t1) / 2), NULL, NULL, "
        "coalesce(json_extract(doc, '$.description'), ''), events, "
        "coalesce(json_extract(doc, '$.tags'), '[]'), embedding_model, NULL, "
        "length(text_vec) / 4, length(latent_vec) / 4, "
        "json_extract(doc, '$.roi_suggestion'), "
        f"json_remove(doc, {known}), deleted FROM docs_v1"
    )
    db.execute(
        "INSERT INTO vecs (label, text_vec, latent_vec) "
        "SELECT label, text_vec, latent_vec FROM docs_v1"
    )
    db.execute("DROP TABLE docs_v1")


def _row(doc: IndexDocument) -> tuple[tuple[Any, ...], bytes, bytes | None]:
    """The ``docs`` columns (after ``label``) and the vectors of ``doc``."""
    text = _unit(np.asarray(doc.text_embedding, dtype=np.float32))
    latent = (
        _unit(np.asarray(doc.latent_embedding, dtype=np.float32))
        if doc.latent_embedding is not None
        else None
    )
    extra = (
        json.dumps(doc.model_dump(mode="json", include=set(_EXTRA_FIELDS)))
        if _EXTRA_FIELDS
        else "{}"
    )
    roi = doc.roi_suggestion
    columns = (
        sm.doc_key(doc.tenant_id, doc.manifest_id),
        doc.tenant_id,
        doc.manifest_id,
        doc.stream_id,
        doc.video_id,
        doc.camera_id,
        float(doc.t0),
        float(doc.t1),
        float(doc.t_mid),
        None if doc.wall_t0 is None else sm.epoch_seconds(doc.wall_t0),
        None if doc.wall_t1 is None else sm.epoch_seconds(doc.wall_t1),
        doc.description,
        json.dumps(sorted(set(doc.events))) if doc.events else "[]",
        json.dumps(list(doc.tags)) if doc.tags else "[]",
        doc.embedding_model,
        doc.latent_model,
        int(text.shape[0]),
        None if latent is None else int(latent.shape[0]),
        None if roi is None else json.dumps([float(x) for x in roi]),
        extra,
    )
    return columns, text.tobytes(), None if latent is None else latent.tobytes()


def _row_digest(columns: Sequence[Any]) -> str:
    """BLAKE3 (128 bits, hex) of a row's content columns, as ``_row`` returns them (their
    ``repr``: SQLite gives back the same str / float / int / None values, and it costs
    half of a JSON encoding on the search path)."""
    import blake3

    return blake3.blake3(repr(tuple(columns)).encode()).hexdigest()[:32]


def _intact(columns: Sequence[Any], digest: str | None) -> bool:
    """Whether a stored row still has the content it was written with (rows written before
    digests were kept have none and are served as before). A changed row is skipped and
    logged: ``sightline doctor --repair`` rebuilds it from the pipeline's outputs."""
    if digest is None or _row_digest(columns) == digest:
        return True
    logger.error(
        "index row %s does not match its digest: not served (run `sightline doctor --repair`)",
        columns[0],
    )
    return False


def _codes(vocab: _Vocab, values_json: str) -> tuple[int, ...]:
    if values_json == "[]":
        return ()
    return tuple(vocab.code(v) for v in set(json.loads(values_json)))


def _from_epoch(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _graph_sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".b3")


def _file_blake3(path: Path) -> str:
    import blake3

    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    h.update_mmap(str(path))
    return f"blake3:{h.hexdigest()}"


def _graph_digest_mismatch(path: Path) -> bool:
    """True when a graph file has a recorded digest it no longer matches (a file saved
    before digests were kept has none and is loaded as before)."""
    sidecar = _graph_sidecar(path)
    try:
        expected = sidecar.read_text().strip()
    except FileNotFoundError:
        return False
    return _file_blake3(path) != expected


def _terms(text: str) -> list[str]:
    """Lower-cased word tokens (what unicode61 and OpenSearch's standard analyzer keep)."""
    return list(dict.fromkeys(re.findall(r"\w+", text.lower())))


def _unit(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float32, copy=False)
    norm = float(np.sqrt(np.dot(v, v)))
    return (v / np.float32(norm) if norm > 0 else v).astype(np.float32, copy=False)
