"""``kmed bench serve``: a load test of ``kmed serve`` on 127.0.0.1, with a crash in the middle.

    kmed bench serve --json                     # 50 concurrent sessions × 10 turns, default composer
    kmed bench serve --sessions 5 --turns 4     # a quick run (the slow test uses this)
    kmed bench serve --think-ms 1000            # paced like people (0.5-1.4 s between turns), not back to back

The server runs as a child process (``kmed serve`` on a free loopback port, a fresh SQLite file).
Each session creates itself and sends its turns one after another, all sessions at once. When half
of the turns are done the server is killed with SIGKILL and started again on the same file;
sessions caught by the kill retry their turn with the same Idempotency-Key, so a turn that was
stored before the kill is replayed, not run twice. At the end every session is read straight from
SQLite: it must exist, decode, and hold exactly ``turns`` user turns. Latency is measured at the
client (queueing included); the server's own turn time comes from the X-Kmed-Turn-Ms header.
A turn's latency is that of its successful attempt; the kill's gap is reported as the restart time.
Traffic goes to 127.0.0.1 only; count and time are bounded (``timeout_s``).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import httpx

from kmed.eval.bench import machine, percentiles
from kmed.serve.runner import ServerProcess

# Mixed traffic: symptom reports with follow-ups, information and drug questions, an emergency, a refusal.
MESSAGES = [
    "어제부터 열이 나고 목이 아파요", "배가 아파요", "사흘째요", "기침이 계속 나요", "당뇨병 진단 기준이 뭐예요?",
    "타이레놀 하루 최대 몇 알까지 먹어도 돼요?", "역류성식도염이 있는데 가슴이 쓰리고 신물이 올라와요", "두통이 심해요",
    "고혈압 약을 먹고 있는데 감기약 같이 먹어도 되나요?", "아이가 열이 나요", "생후 8개월이에요", "허리가 아파요",
    "가슴이 쥐어짜듯 아프고 식은땀이 나요", "불면증에 도움이 되는 생활 습관이 있나요?", "비트코인 시세 알려줘",
    "안녕하세요", "피부에 두드러기가 났어요", "어지럽고 속이 메스꺼워요", "변비가 오래가요", "콧물이 나고 재채기가 나요",
]


class _Run:
    def __init__(self, sessions: int, turns: int, think_ms: float = 0.0):
        self.sessions, self.turns, self.think_s = sessions, turns, think_ms / 1000
        self.latencies: list[float] = []
        self.before_kill: list[float] = []  # steady state: turns answered before the kill
        self.server_ms: list[float] = []
        self.errors: dict[str, int] = {}
        self.done = 0
        self.interrupted = 0
        self.replayed = 0
        self.ids: list[str] = []
        self.restarted = asyncio.Event()
        self.half = asyncio.Event()
        self.killed = False

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


async def _request(run: _Run, client: httpx.AsyncClient, method: str, url: str, **kwargs) -> tuple[httpx.Response, float]:
    """One request and the time of its successful attempt; a connection broken by the kill waits for
    the restart and tries again (the restart gap is reported apart, not as turn latency)."""
    for _ in range(5):
        started = time.perf_counter()
        try:
            return await client.request(method, url, **kwargs), (time.perf_counter() - started) * 1000
        except httpx.TransportError:
            if not run.killed:
                run.error("transport")
                await asyncio.sleep(0.2)
                continue
            run.interrupted += 1
            await run.restarted.wait()
    raise RuntimeError("server unreachable")


async def _session(run: _Run, client: httpx.AsyncClient, index: int) -> None:
    r, _ = await _request(run, client, "POST", "/v1/sessions")
    if r.status_code != 201:
        run.error(f"create_{r.status_code}")
        return
    sid = r.json()["session_id"]
    run.ids.append(sid)
    for turn in range(run.turns):
        text = MESSAGES[(index + turn) % len(MESSAGES)]
        if run.think_s:  # a person reads the answer and types the next message
            await asyncio.sleep(run.think_s * (0.5 + ((index * 7 + turn * 13) % 10) / 10))
        r, ms = await _request(run, client, "POST", f"/v1/sessions/{sid}/messages", json={"text": text},
                               headers={"Idempotency-Key": f"{sid}-{turn}"})
        if r.status_code != 200:
            run.error(f"turn_{r.status_code}")
            continue
        run.latencies.append(ms)
        if not run.killed:
            run.before_kill.append(ms)
        run.server_ms.append(float(r.headers.get("x-kmed-turn-ms", "nan")))
        run.replayed += r.headers.get("x-kmed-replayed") == "true"
        run.done += 1
        if run.done >= run.sessions * run.turns // 2:
            run.half.set()


async def _killer(run: _Run, server: ServerProcess, report: dict) -> None:
    await run.half.wait()
    report["kill"] = {"after_turns": run.done}
    run.killed = True
    await asyncio.to_thread(server.kill)
    await asyncio.to_thread(server.start)
    report["kill"]["restart_ready_seconds"] = round(server.ready_seconds or 0, 2)
    run.restarted.set()


async def _drive(server: ServerProcess, run: _Run, kill: bool, report: dict) -> None:
    limits = httpx.Limits(max_connections=run.sessions + 8, max_keepalive_connections=run.sessions + 8)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as client:
        killer = asyncio.create_task(_killer(run, server, report)) if kill else None
        await asyncio.gather(*(_session(run, client, i) for i in range(run.sessions)))
        if killer is not None:
            if not killer.done():
                killer.cancel()
            else:
                killer.result()


def verify_store(db_path: Path, ids: list[str], turns: int) -> dict:
    """Every session present, readable by the codec, with exactly ``turns`` user turns."""
    from kmed.agent.red_flags import RedFlagEngine
    from kmed.data.kb import load_kb_or_fail
    from kmed.serve.state_codec import decode_session, user_turns

    stub = SimpleNamespace(red_flags=RedFlagEngine(load_kb_or_fail()))  # all decode_session needs
    db = sqlite3.connect(db_path)
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    rows = dict(db.execute("SELECT id, record FROM sessions").fetchall())
    db.close()
    lost = [i for i in ids if i not in rows]
    corrupted, wrong_count = [], []
    for sid in ids:
        if sid not in rows:
            continue
        try:
            record = json.loads(rows[sid])
            session = decode_session(record, stub)
            if len(session.state.flags) != len(record["state"].get("flags", [])):
                raise ValueError("red flags lost")
        except (ValueError, KeyError, TypeError):
            corrupted.append(sid)
            continue
        if user_turns(record) != turns:
            wrong_count.append(user_turns(record))
    return {"integrity_check": integrity, "sessions_expected": len(ids), "sessions_found": len(ids) - len(lost),
            "lost": len(lost), "corrupted": len(corrupted), "wrong_turn_count": len(wrong_count),
            "every_turn_stored": not lost and not corrupted and not wrong_count}


def bench_serve(sessions: int = 50, turns: int = 10, kill: bool = True, timeout_s: float = 600.0,
                workers: int = 2, think_ms: float = 0.0) -> dict:
    report: dict = {"machine": machine(),
                    "config": {"sessions": sessions, "turns": turns, "workers": workers, "composer": "extractive",
                               "kill_and_restart": kill, "think_ms": think_ms, "host": "127.0.0.1"}}
    with tempfile.TemporaryDirectory(prefix="kmed-bench-serve-") as tmp:
        db = Path(tmp) / "sessions.sqlite3"
        server = ServerProcess(db, log_path=Path(tmp) / "server.log",
                               extra_args=["--rate-limit", "0", "--workers", str(workers),
                                           "--queue-size", str(max(64, 2 * sessions))])
        server.start()
        report["server_ready_seconds"] = round(server.ready_seconds or 0, 2)
        run = _Run(sessions, turns, think_ms)
        started = time.perf_counter()
        timed_out = False
        try:
            asyncio.run(asyncio.wait_for(_drive(server, run, kill, report), timeout=timeout_s))
        except (asyncio.TimeoutError, TimeoutError):
            timed_out = True
        wall = time.perf_counter() - started
        server.stop()
        storage = verify_store(db, run.ids, turns)
    planned = sessions * turns
    errors = sum(run.errors.values())
    report.update({
        "wall_seconds": round(wall, 2), "timed_out": timed_out,
        "turns": {"planned": planned, "ok": run.done, "errors": errors, "error_kinds": run.errors,
                  "interrupted_by_kill": run.interrupted, "replayed_after_restart": run.replayed},
        "latency_client_ms": percentiles(run.latencies) if run.latencies else None,
        "latency_client_ms_before_kill": percentiles(run.before_kill) if run.before_kill else None,
        "latency_server_turn_ms": percentiles(run.server_ms) if run.server_ms else None,
        "throughput_turns_per_s": round(run.done / wall, 1) if wall else None,
        "storage": storage,
    })
    p95 = report["latency_client_ms"]["p95_ms"] if run.latencies else None
    report["goals"] = {"p95_under_100ms": p95 is not None and p95 < 100, "zero_errors": errors == 0,
                       "no_session_lost_or_corrupted": storage["lost"] == 0 and storage["corrupted"] == 0}
    report["ok"] = (not timed_out and errors == 0 and run.done == planned and storage["every_turn_stored"])
    return report
