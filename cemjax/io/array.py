"""The lazily readable array every EM reader returns, its one-line error, and the length units readers know."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cemjax.common.errors import InputError

UNIT_NM = {"nm": 1.0, "nanometer": 1.0, "um": 1e3, "µm": 1e3, "micron": 1e3, "micrometer": 1e3, "mm": 1e6}
UNIT_NM.update({"\\u00b5m": 1e3, "angstrom": 0.1, "å": 0.1, "a": 0.1, "pm": 1e-3})


class EMReadError(InputError):
    """A file that cannot be curated; str() is one line naming the file and the reason."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass
class EMArray:
    """A lazily readable EM image (2D [H, W]) or volume (3D [Z, Y, X]), optionally with a trailing RGB axis.

    data: array-like with numpy slicing; shape (H, W[, C]) or (Z, Y, X[, C]).
    spacing: (sz, sy, sx) in nm, or None. rgb: whether the last axis holds colour channels.
    """

    path: str
    data: Any
    spacing: tuple[float, float, float] | None = None
    rgb: bool = False
    _closers: list = field(default_factory=list, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[:-1] if self.rgb else self.data.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.data.dtype)

    def close(self) -> None:
        for close in self._closers:
            close()
        self._closers.clear()

    def __enter__(self) -> EMArray:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def looks_rgb(shape: tuple[int, ...]) -> bool:
    return len(shape) == 3 and shape[-1] in (3, 4) and shape[0] > 4 and shape[1] > 4
