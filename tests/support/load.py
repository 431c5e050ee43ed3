"""Steady concurrent HTTP load on 127.0.0.1 while a deploy runs: bounded, timed, and strict.

Every request counts once: no retries, so a connection closed unanswered, a refused connection, a timeout or
a non-200 answer is a failure. Half the threads open a new connection per request, half reuse one (and
reconnect after a failure), since the two fail in different ways when a server goes away. Each thread pauses
10 ms between requests: one deploy under load here then sends about 950 requests and keeps 1.0 of the 2 cores
busy; unpaced it sent 4,100 and kept 1.4 busy, which every test running beside it paid for.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

MAX_REQUESTS_PER_THREAD = 200_000


@dataclass
class LoadResult:
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    bodies: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.ok + len(self.failures)

    def describe(self) -> str:
        return f"{self.ok} ok, {len(self.failures)} failed, answers {dict(self.bodies)}; first: {self.failures[:3]}"


class Load:
    """`with Load(port, path="/version") as load: ...` sends requests until the block ends (or `max_s`)."""

    def __init__(
        self,
        port: int,
        *,
        path: str = "/version",
        threads: int = 4,
        max_s: float = 120.0,
        pause_s: float = 0.01,
    ):
        self.port, self.path, self.threads, self.max_s, self.pause_s = port, path, threads, max_s, pause_s
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers = [
            threading.Thread(target=self._work, args=(index % 2 == 1,), daemon=True)
            for index in range(threads)
        ]

    def __enter__(self) -> Load:
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)
        print(f"load on port {self.port}: {self.result.describe()}", flush=True)  # shown by pytest -s
        return self.result

    def _request(self, conn: http.client.HTTPConnection, keep_alive: bool) -> str:
        conn.request("GET", self.path, headers={} if keep_alive else {"Connection": "close"})
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace").strip()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return body

    def _work(self, keep_alive: bool) -> None:
        deadline = time.monotonic() + self.max_s
        conn: http.client.HTTPConnection | None = None
        for _ in range(MAX_REQUESTS_PER_THREAD):
            if self._stop.is_set() or time.monotonic() > deadline:
                break
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                body = self._request(conn, keep_alive)
            except (OSError, http.client.HTTPException, RuntimeError) as exc:
                with self._lock:
                    self.result.failures.append(f"{'keep-alive' if keep_alive else 'new'}: {exc!r}")
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(0.01)
                continue
            with self._lock:
                self.result.ok += 1
                self.result.bodies[body] += 1
                self.result.latencies.append(time.perf_counter() - started)
            if not keep_alive:
                conn.close()
                conn = None
            self._stop.wait(self.pause_s)
        if conn is not None:
            conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
