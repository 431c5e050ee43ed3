"""Steady HTTP load from inside a network namespace: `ip netns exec NS python3 netns_load.py URL...`.

Standalone (stdlib only, no imports from the test tree) so it runs under `ip netns exec`. Sends GET requests
round-robin over the URLs from `--threads` threads until SIGTERM/SIGINT or `--max-s`, then prints one JSON
object: {"ok", "failed", "failures" (the first 20), "failed_sent_at" (when each failed request was sent, Unix
time), "bodies" (answer -> count)}. Every request counts once, no retries; half the threads open a connection
per request, half keep one alive (reconnecting after a failure). `--pause-s` spaces one thread's requests:
each request costs the proxy and the app a process or a connection, and unpaced load takes a core of the
machine the other tests share.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import threading
import time
import urllib.parse
from collections import Counter

MAX_REQUESTS_PER_THREAD = 200_000


class Load:
    def __init__(
        self, urls: list[str], threads: int, max_s: float, timeout_s: float, pause_s: float = 0.0
    ) -> None:
        self.targets = [urllib.parse.urlsplit(url) for url in urls]
        self.threads, self.max_s, self.timeout_s, self.pause_s = threads, max_s, timeout_s, pause_s
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures: list[str] = []
        self.failed_sent_at: list[float] = []
        self.bodies: Counter[str] = Counter()

    def run(self) -> dict[str, object]:
        workers = [threading.Thread(target=self.work, args=(i,), daemon=True) for i in range(self.threads)]
        for worker in workers:
            worker.start()
        self.stop.wait(self.max_s)
        self.stop.set()
        for worker in workers:
            worker.join(timeout=self.timeout_s + 5)
        return {
            "ok": self.ok,
            "failed": len(self.failures),
            "failures": self.failures[:20],
            "failed_sent_at": self.failed_sent_at,
            "bodies": dict(self.bodies),
        }

    def work(self, index: int) -> None:
        keep_alive = index % 2 == 1
        conns: dict[int, http.client.HTTPConnection] = {}
        deadline = time.monotonic() + self.max_s
        for count in range(MAX_REQUESTS_PER_THREAD):
            if self.stop.is_set() or time.monotonic() > deadline:
                break
            slot = (count + index) % len(self.targets)
            target = self.targets[slot]
            sent_at = time.time()
            try:
                conn = conns.get(slot) or http.client.HTTPConnection(
                    target.hostname or "", target.port or 80, timeout=self.timeout_s
                )
                conns[slot] = conn
                conn.request("GET", target.path or "/", headers={} if keep_alive else {"Connection": "close"})
                response = conn.getresponse()
                body = response.read().decode("utf-8", "replace").strip()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
            except (OSError, http.client.HTTPException, RuntimeError) as exc:
                with self.lock:
                    self.failures.append(f"{target.netloc} {'keep-alive' if keep_alive else 'new'}: {exc!r}")
                    self.failed_sent_at.append(sent_at)
                conns.pop(slot).close() if slot in conns else None
                self.stop.wait(0.01)
                continue
            with self.lock:
                self.ok += 1
                self.bodies[body] += 1
            if not keep_alive:
                conns.pop(slot).close()
            if self.pause_s:
                self.stop.wait(self.pause_s)
        for conn in conns.values():
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--max-s", type=float, default=120.0)
    parser.add_argument("--timeout-s", type=float, default=5.0)
    parser.add_argument("--pause-s", type=float, default=0.0, help="between one thread's requests")
    args = parser.parse_args()
    load = Load(args.urls, args.threads, args.max_s, args.timeout_s, args.pause_s)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: load.stop.set())
    print(json.dumps(load.run()), flush=True)


if __name__ == "__main__":
    main()
