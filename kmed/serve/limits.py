"""Back-pressure: a per-client token bucket and a bounded pool of generation threads.

    limiter = RateLimiter(per_minute=60, burst=20); limiter.check("client")  # raises RateLimited
    queue = WorkQueue(workers=2, queue_size=64)
    reply = await queue.run(session.ask, "머리가 아파요")                      # raises Busy when full

A turn never runs on the event loop: ``WorkQueue`` hands it to a thread and frees its slot when the
thread finishes (not when the client leaves), so the count of admitted turns is always true.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"rate limited, retry after {retry_after} s")
        self.retry_after = retry_after


class Busy(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"queue full, retry after {retry_after} s")
        self.retry_after = retry_after


class RateLimiter:
    """Token bucket per client key; ``per_minute=0`` disables it. Remembers at most ``max_clients``."""

    def __init__(self, per_minute: float, burst: int, max_clients: int = 100_000):
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimited(max(1, math.ceil((1.0 - tokens) / self.rate)))
            self._buckets[key] = (tokens - 1.0, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)


class WorkQueue:
    """At most ``workers`` turns run at once and ``queue_size`` more wait; beyond that, ``Busy``."""

    def __init__(self, workers: int, queue_size: int, on_depth: Callable[[int], None] | None = None):
        self.workers = workers
        self.capacity = workers + queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kmed-turn")
        self._admitted = 0
        self._lock = threading.Lock()
        self._avg_s = 0.05  # running mean of turn time, for Retry-After
        self._on_depth = on_depth or (lambda depth: None)

    @property
    def admitted(self) -> int:
        return self._admitted

    @property
    def depth(self) -> int:
        """Turns waiting for a thread."""
        return max(0, self._admitted - self.workers)

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.capacity:
                wait = (self._admitted - self.workers + 1) * self._avg_s / self.workers
                raise Busy(max(1, math.ceil(wait)))
            self._admitted += 1
            depth = self.depth
        self._on_depth(depth)

    def _release(self, seconds: float) -> None:
        with self._lock:
            self._admitted -= 1
            self._avg_s = 0.9 * self._avg_s + 0.1 * seconds
            depth = self.depth
        self._on_depth(depth)

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Admit (or raise ``Busy``) and start ``fn(*args)`` in a worker thread, with this context."""
        self._admit()
        context = contextvars.copy_context()

        def job() -> T:
            started = time.perf_counter()
            try:
                return context.run(fn, *args)
            finally:
                self._release(time.perf_counter() - started)

        try:
            return asyncio.get_running_loop().run_in_executor(self._executor, job)
        except BaseException:
            self._release(0.0)
            raise

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self.submit(fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)
