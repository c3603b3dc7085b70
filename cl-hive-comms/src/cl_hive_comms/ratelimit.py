"""Per-key token buckets in memory.  Keys are advisor public keys (only after the request authenticated), so
the number of buckets is bounded by the number of authorized advisors; ``max_keys`` bounds it anyway."""
from __future__ import annotations

import threading
import time
from typing import Callable


class RateLimiter:
    def __init__(self, per_minute: Callable[[], int], burst: Callable[[], int] | None = None,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 10_000) -> None:
        self._per_minute = per_minute
        self._burst = burst or per_minute
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        rate = max(1, self._per_minute()) / 60.0
        burst = float(max(1, self._burst()))
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            allowed = tokens >= 1.0
            self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            if len(self._buckets) > self._max_keys:
                full = [k for k, (t, _) in self._buckets.items() if t >= burst - 1.0 and k != key]
                for k in full[: len(self._buckets) - self._max_keys]:
                    del self._buckets[k]
            return allowed
