"""Progress lines with elapsed time and an ETA, for every long job (curation, builds, training, inference).

    progress = Progress(total=400, label="segment", unit="blocks")
    for k in range(400):
        ...
        progress.update(k + 1)        # prints at most every `interval` seconds, and always at the end

prints `[segment] 120/400 blocks (30%)  elapsed 1m02s  ETA 2m25s`. The rate counts only the work done by this
process (a resumed job's finished part is not taken for speed).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_seconds(seconds: float) -> str:
    """12.3 → "12s", 185 → "3m05s", 7384 → "2h03m"."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Elapsed time and ETA of a job of `total` units that starts at `done` (non-zero when resumed)."""

    def __init__(self, total: int, *, done: int = 0, label: str = "", unit: str = "", interval: float = 2.0,
                 stream: TextIO | None = None, enabled: bool = True):  # fmt: skip
        self.total, self.start_done, self.done = int(total), int(done), int(done)
        self.label, self.unit, self.interval, self.enabled = label, unit, interval, enabled
        self.stream = stream
        self.t0 = time.perf_counter()
        self._last_print = -float("inf")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def eta(self) -> float | None:
        """Seconds left at the rate seen so far (None before any unit was done here)."""
        worked = self.done - self.start_done
        if worked <= 0:
            return None
        return self.elapsed / worked * max(0, self.total - self.done)

    def status(self) -> str:
        """ "elapsed 1m02s  ETA 2m25s" (the ETA is left out until it can be estimated)."""
        eta = self.eta()
        text = f"elapsed {format_seconds(self.elapsed)}"
        return text + (f"  ETA {format_seconds(eta)}" if eta is not None and self.done < self.total else "")

    def line(self) -> str:
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        unit = f" {self.unit}" if self.unit else ""
        head = f"[{self.label}] " if self.label else ""
        return f"{head}{self.done}/{self.total}{unit}{share}  {self.status()}"

    def update(self, done: int, *, force: bool = False) -> None:
        """Record `done` units; print the line if `interval` seconds passed since the last one, or at the end."""
        self.done = int(done)
        now = time.perf_counter()
        if not self.enabled or not (force or self.done >= self.total or now - self._last_print >= self.interval):
            return
        self._last_print = now
        print(self.line(), file=self.stream or sys.stderr, flush=True)

    def report(self, done: int, total: int) -> None:
        """`update` as a `progress(done, total)` callback, for functions that learn their total as they run."""
        self.total = int(total)
        self.update(done)
