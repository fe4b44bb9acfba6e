"""Tables on SQLite: one file under SIGHTLINE_HOME, one SQL table per logical table.

Items are JSON documents keyed by (pk, sk), the same shape the DynamoDB adapter stores.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

from sightline.errors import Conflict

_NAME = re.compile(r"^[a-z_]{1,40}$")


class _Connections:
    """One connection per thread; SQLite connections must not cross threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def get(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn


class SqliteTable:
    def __init__(self, conns: _Connections, name: str) -> None:
        if not _NAME.match(name):
            raise ValueError(f"invalid table name {name!r}")
        self._conns = conns
        self.name = name
        conns.get().execute(
            f"CREATE TABLE IF NOT EXISTS t_{name} (pk TEXT NOT NULL, sk TEXT NOT NULL, "
            "item TEXT NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID"
        )

    def put(self, pk: str, sk: str, item: dict[str, Any]) -> None:
        self._conns.get().execute(
            f"INSERT OR REPLACE INTO t_{self.name} (pk, sk, item) VALUES (?, ?, ?)",
            (pk, sk, json.dumps(item, default=str)),
        )

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        row = (
            self._conns.get()
            .execute(f"SELECT item FROM t_{self.name} WHERE pk = ? AND sk = ?", (pk, sk))
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    def query(self, pk: str, sk_prefix: str = "") -> list[dict[str, Any]]:
        rows = (
            self._conns.get()
            .execute(
                f"SELECT item FROM t_{self.name} WHERE pk = ? AND substr(sk, 1, ?) = ? ORDER BY sk",
                (pk, len(sk_prefix), sk_prefix),
            )
            .fetchall()
        )
        return [json.loads(r[0]) for r in rows]

    def delete(self, pk: str, sk: str) -> None:
        self._conns.get().execute(f"DELETE FROM t_{self.name} WHERE pk = ? AND sk = ?", (pk, sk))

    def update(
        self, pk: str, sk: str, changes: dict[str, Any], *, expect: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        conn = self._conns.get()
        # BEGIN IMMEDIATE takes the write lock first, so read-modify-write is atomic
        # across threads and processes (the CLI and the server share the file).
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                f"SELECT item FROM t_{self.name} WHERE pk = ? AND sk = ?", (pk, sk)
            ).fetchone()
            if row is None:
                conn.execute("ROLLBACK")
                return None
            item = json.loads(row[0])
            if expect and any(item.get(k) != _json_value(v) for k, v in expect.items()):
                conn.execute("ROLLBACK")
                raise Conflict(f"{self.name} {pk}/{sk} changed: expected {expect}")
            item.update(changes)
            conn.execute(
                f"UPDATE t_{self.name} SET item = ? WHERE pk = ? AND sk = ?",
                (json.dumps(item, default=str), pk, sk),
            )
            conn.execute("COMMIT")
            return item
        except Conflict:
            raise
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _json_value(value: Any) -> Any:
    """``value`` as it reads back from the stored JSON (datetimes become strings)."""
    return json.loads(json.dumps(value, default=str))


class SqliteTableStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conns = _Connections(path)
        self._tables: dict[str, SqliteTable] = {}
        self._lock = threading.Lock()

    def table(self, name: str) -> SqliteTable:
        with self._lock:
            if name not in self._tables:
                self._tables[name] = SqliteTable(self._conns, name)
            return self._tables[name]
