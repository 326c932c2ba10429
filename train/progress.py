"""A dependency-free progress line on stderr (redrawn on a TTY, periodic lines otherwise)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, start: int = 0, desc: str = "", enabled: bool = True, every: int = 50):
        self.total, self.n, self.desc, self.enabled, self.every = total, start, desc, enabled, every
        self.t0, self.n0 = time.perf_counter(), start
        self.tty = sys.stderr.isatty()
        self._last_print = 0.0

    def update(self, n: int, **stats) -> None:
        self.n = n
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty and now - self._last_print < 0.1 and n < self.total:
            return
        if not self.tty and n % self.every and n < self.total:
            return
        self._last_print = now
        rate = (n - self.n0) / max(now - self.t0, 1e-9)
        eta = (self.total - n) / rate if rate > 0 else float("inf")
        width = 24
        fill = int(width * n / max(self.total, 1))
        stat = " ".join(f"{k}={v:.4g}" for k, v in stats.items())
        line = f"{self.desc} [{'#' * fill}{'.' * (width - fill)}] {n}/{self.total} {rate:.1f} it/s eta {eta:.0f}s {stat}"
        sys.stderr.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
