from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sightline.adapters.local_blobs import LocalBlobStore
from sightline.adapters.local_bus import LocalEventBus
from sightline.adapters.local_tables import SqliteTableStore
from sightline.errors import NotFound


def test_blobs_round_trip_range_and_persistence(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "b")
    store.put_bytes("org/p/videos/v1/a.bin", b"0123456789")
    assert store.get_bytes("org/p/videos/v1/a.bin", (2, 5)) == b"2345"
    # a new instance over the same folder sees the same data (restart)
    again = LocalBlobStore(tmp_path / "b")
    assert again.get_bytes("org/p/videos/v1/a.bin") == b"0123456789"
    assert again.size("org/p/videos/v1/a.bin") == 10
    assert again.list_keys("org/p/") == ["org/p/videos/v1/a.bin"]
    assert again.delete_prefix("org/p/videos/") == 1
    assert not again.exists("org/p/videos/v1/a.bin")
    with pytest.raises(NotFound):
        again.get_bytes("org/p/videos/v1/a.bin")


@pytest.mark.parametrize("key", ["../escape", "/abs/path", "a/../../x", ""])
def test_blobs_refuse_keys_outside_the_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        LocalBlobStore(tmp_path).put_bytes(key, b"x")


def test_tables_query_update_and_restart(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    t = SqliteTableStore(db).table("videos")
    t.put("org/a", "v1", {"video_id": "v1", "n": 1})
    t.put("org/a", "v2", {"video_id": "v2", "n": 2})
    t.put("org/b", "v1", {"video_id": "v1", "n": 9})
    assert [i["video_id"] for i in t.query("org/a")] == ["v1", "v2"]
    assert t.update("org/a", "v1", {"n": 5}) == {"video_id": "v1", "n": 5}
    assert t.update("org/a", "missing", {"n": 5}) is None
    t2 = SqliteTableStore(db).table("videos")
    assert t2.get("org/a", "v1") == {"video_id": "v1", "n": 5}
    assert t2.get("org/b", "v1")["n"] == 9
    t2.delete("org/a", "v1")
    assert t2.get("org/a", "v1") is None
    with pytest.raises(ValueError):
        SqliteTableStore(db).table("bad name; drop")


def test_table_updates_from_threads_are_atomic(tmp_path: Path) -> None:
    t = SqliteTableStore(tmp_path / "s.db").table("counters")
    t.put("p", "s", {"fields": []})

    def add(i: int) -> None:
        for j in range(20):
            item = t.get("p", "s")
            assert item is not None
            t.update("p", "s", {f"k{i}-{j}": 1})

    threads = [threading.Thread(target=add, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    item = t.get("p", "s")
    assert item is not None and len(item) == 1 + 80


def test_bus_logs_and_notifies(tmp_path: Path) -> None:
    bus = LocalEventBus(SqliteTableStore(tmp_path / "s.db"))
    seen: list[tuple[str, dict]] = []
    bus.subscribe(lambda t, d: seen.append((t, d)))
    bus.subscribe(lambda t, d: 1 / 0)  # a broken subscriber must not break publishing
    bus.publish("VideoProcessed", {"video_id": "v1"})
    assert seen == [("VideoProcessed", {"video_id": "v1"})]
    assert bus.history("VideoProcessed")[0]["detail"] == {"video_id": "v1"}
