"""SQLiteSessionStore: survives reopening, expires idle sessions, caps their number (oldest idle first)."""

from __future__ import annotations

import time

import pytest

from kmed.serve.store import MemorySessionStore, SessionStore, SQLiteSessionStore


def _record(turns: int) -> dict:
    return {"v": 1, "state": {"history": [{"role": "user", "content": f"{i}"} for i in range(turns)]}}


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_store_contract(kind, tmp_path):
    store = SQLiteSessionStore(tmp_path / "s.db") if kind == "sqlite" else MemorySessionStore()
    assert isinstance(store, SessionStore)
    store.create("a", _record(0))
    assert store.load("a") == _record(0)
    store.save("a", _record(2))
    assert store.load("a") == _record(2)
    assert store.count() == 1 and store.ping()
    assert store.delete("a") and not store.delete("a")
    assert store.load("a") is None
    store.close()


def test_sqlite_survives_reopen(tmp_path):
    path = tmp_path / "s.db"
    store = SQLiteSessionStore(path)
    store.create("a", _record(3))
    del store  # no close: like a killed process
    assert SQLiteSessionStore(path).load("a") == _record(3)


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_ttl_expires_idle_sessions(kind, tmp_path, monkeypatch):
    store = SQLiteSessionStore(tmp_path / "s.db", ttl_seconds=60) if kind == "sqlite" else MemorySessionStore(ttl_seconds=60)
    store.create("a", _record(1))
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 61)
    assert store.load("a") is None and store.count() == 0
    assert store.purge_expired() == 1


def test_cap_drops_the_least_recently_used(tmp_path, monkeypatch):
    store = SQLiteSessionStore(tmp_path / "s.db", max_sessions=2)
    clock = [1000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    for name in ("a", "b"):
        clock[0] += 1
        store.create(name, _record(0))
    clock[0] += 1
    store.save("a", _record(1))  # a is now more recent than b
    clock[0] += 1
    store.create("c", _record(0))
    assert store.load("b") is None and store.load("a") is not None and store.load("c") is not None
