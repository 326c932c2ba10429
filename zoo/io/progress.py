"""One dependency-free progress line on stderr, for training steps and classified items alike:
redrawn in place on a terminal, a plain line every few seconds in logs. No torch import."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, start: int = 0, desc: str = "", enabled: bool = True, unit: str = "it",
                 log_seconds: float = 5.0):
        self.total, self.n, self.desc, self.enabled, self.unit = total, start, desc, enabled, unit
        self.t0, self.n0 = time.perf_counter(), start
        self.tty = sys.stderr.isatty()
        self.min_gap = 0.2 if self.tty else log_seconds
        self._last = float("-inf")

    def advance(self, k: int = 1, **stats) -> None:
        self.n += k
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < self.min_gap and self.n < self.total:
            return
        self._last = now
        rate = (self.n - self.n0) / max(now - self.t0, 1e-9)
        eta = (self.total - self.n) / rate if rate > 0 else float("inf")
        fill = int(24 * self.n / max(self.total, 1))
        stat = "".join(f" {k}={v:.4g}" for k, v in stats.items())
        line = (f"{self.desc} [{'#' * fill}{'.' * (24 - fill)}] {self.n}/{self.total} "
                f"{rate:.1f} {self.unit}/s eta {eta:.0f}s{stat}")
        sys.stderr.write(("\r" + line + "\033[K") if self.tty else line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self.tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
