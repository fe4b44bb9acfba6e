"""Powertools idempotency records in SQLite, with DynamoDB's conditional-put semantics:
a record may be written only if absent, expired, or an in-progress record whose
in-progress expiry has passed."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import (
    STATUS_CONSTANTS,
    BasePersistenceLayer,
    DataRecord,
)


class SqliteIdempotencyLayer(BasePersistenceLayer):
    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._local = threading.local()
        self._db().execute(
            "CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, status TEXT NOT NULL,"
            " expiry INTEGER, in_progress_expiry INTEGER, data TEXT, validation TEXT)"
        )

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    @staticmethod
    def _record(row: tuple) -> DataRecord:
        return DataRecord(
            idempotency_key=row[0],
            status=row[1],
            expiry_timestamp=row[2],
            in_progress_expiry_timestamp=row[3],
            response_data=row[4] or "",
            payload_hash=row[5] or "",
        )

    def _get_record(self, idempotency_key: str) -> DataRecord:
        row = (
            self._db()
            .execute(
                "SELECT key, status, expiry, in_progress_expiry, data, "
                "validation FROM idempotency WHERE key = ?",
                (idempotency_key,),
            )
            .fetchone()
        )
        if row is None:
            raise IdempotencyItemNotFoundError
        return self._record(row)

    def _put_record(self, data_record: DataRecord) -> None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute(
                "SELECT key, status, expiry, in_progress_expiry, data, validation "
                "FROM idempotency WHERE key = ?",
                (data_record.idempotency_key,),
            ).fetchone()
            now = time.time()
            if row is not None:
                old = self._record(row)
                expired = (old.expiry_timestamp or 0) < int(now)
                stale_progress = (
                    old.status == STATUS_CONSTANTS["INPROGRESS"]
                    and old.in_progress_expiry_timestamp is not None
                    and old.in_progress_expiry_timestamp < int(now * 1000)
                )
                if not (expired or stale_progress):
                    db.execute("ROLLBACK")
                    self._validate_payload(data_payload=data_record, stored_data_record=old)
                    raise IdempotencyItemAlreadyExistsError(old_data_record=old)
            db.execute(
                "INSERT OR REPLACE INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                (
                    data_record.idempotency_key,
                    data_record.status,
                    data_record.expiry_timestamp,
                    data_record.in_progress_expiry_timestamp,
                    data_record.response_data or None,
                    data_record.payload_hash or None,
                ),
            )
            db.execute("COMMIT")
        except IdempotencyItemAlreadyExistsError:
            raise
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _update_record(self, data_record: DataRecord) -> None:
        self._db().execute(
            "UPDATE idempotency SET data = ?, expiry = ?, status = ?, validation = ? WHERE key = ?",
            (
                data_record.response_data,
                data_record.expiry_timestamp,
                data_record.status,
                data_record.payload_hash or None,
                data_record.idempotency_key,
            ),
        )

    def _delete_record(self, data_record: DataRecord) -> None:
        self._db().execute("DELETE FROM idempotency WHERE key = ?", (data_record.idempotency_key,))
