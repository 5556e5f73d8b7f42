"""Pieces every training loop here shares: SIGTERM as a flag, host state → global arrays, the device batch."""

from __future__ import annotations

import signal

import jax
import numpy as np


class Preemption:
    """Turns SIGTERM into a flag the loop checks once per step (then saves and exits cleanly)."""

    def __init__(self):
        self.requested = False
        try:
            signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not in the main thread
            pass

    def _handle(self, signum, frame):
        del signum, frame
        self.requested = True


def place(state, shardings):
    """Host arrays (identical on every process) → global arrays with `shardings` (works multi-host)."""

    def put(x, s):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, s, lambda idx: x[idx])

    return jax.tree.map(put, state, shardings)
