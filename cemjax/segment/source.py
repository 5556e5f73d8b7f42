"""The volume to segment: a file `cemjax.io.open_em` reads (tif, mrc, nrrd, h5, zarr / OME-Zarr, …) or an
in-memory array, read region by region as uint8 [z, y, x] (a 2D image is [1, H, W]).

Intensities become uint8 as they did for training (docs/method.md §1.1: integers by their type's range, floats
by the whole file's min–max, found in one streamed pass before the first block). The model takes one gray
channel: an RGB file needs `channel` ("gray" for luma, or 0/1/2), and an array with a channel axis is refused.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np

from cemjax.common.errors import InputError
from cemjax.io import EMReadError, open_em, rgb_to_gray, to_uint8, volume_stats
from cemjax.io.array import EMArray

Spacing = tuple[float, float, float]


@dataclass
class VolumeSource:
    """`read(z, y, x)` → uint8 [dz, dy, dx]. shape: (Z, Y, X); ndim: 2 for images; spacing: (sz, sy, sx) nm or
    None (a 2D image's sz is 1); identity: what a resumed output checks it was made from."""

    em: EMArray
    ndim: int
    spacing: Spacing | None
    identity: dict
    channel: str | int | None = None
    _stats: object = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return (1, *self.em.shape) if self.ndim == 2 else tuple(self.em.shape)

    def read(self, z: slice, y: slice, x: slice) -> np.ndarray:
        key = (y, x) if self.ndim == 2 else (z, y, x)
        raw = np.asarray(self.em.data[key])
        if self.em.rgb:
            raw = rgb_to_gray(raw) if self.channel == "gray" else raw[..., int(self.channel)]
        if raw.dtype.kind == "f" and self._stats is None:
            self._stats = volume_stats(self.em)  # the whole file's range, once
        out = np.asarray(to_uint8(raw, self._stats))
        return out[None] if self.ndim == 2 else out

    def close(self) -> None:
        self.em.close()


def open_source(input_, spacing: Spacing | None = None, channel: str | int | None = None) -> VolumeSource:
    """A VolumeSource for a path or an array ([H, W] or [Z, Y, X]); InputError (one line) for what cannot be
    segmented. `spacing` (nm; (sy, sx) for 2D) overrides the file's."""
    if isinstance(input_, np.ndarray):
        em = EMArray("<array>", input_, None, False)
        identity = {"array": hashlib.sha1(np.ascontiguousarray(input_)).hexdigest(), "shape": list(input_.shape)}
    else:
        path = os.fspath(input_)
        try:
            em = open_em(path)
        except EMReadError as e:
            raise _channel_error(path, e) or e from None
        identity = file_identity(path, em)
    if em.ndim not in (2, 3):
        raise InputError(f"{em.path}: {em.ndim}D array {tuple(em.shape)}; segment takes a 2D image or a 3D volume")
    if em.rgb and channel is None:
        em.close()
        raise InputError(f"{em.path}: {em.data.shape[-1]} colour channels but the model takes 1 (gray EM); pass "
                         f"--channel=gray (luma) or --channel=0/1/2")  # fmt: skip
    if channel is not None and channel != "gray":
        channel = int(channel)
    if spacing is not None:
        spacing = tuple(float(s) for s in spacing)
        if len(spacing) == 2 and em.ndim == 2:
            spacing = (1.0, *spacing)
        if len(spacing) != 3 or min(spacing) <= 0:
            raise InputError(f"spacing {spacing}: give SZ,SY,SX in nm (SY,SX for a 2D image), all > 0")
    else:
        spacing = em.spacing
    identity["spacing"] = list(spacing) if spacing else None
    return VolumeSource(em, em.ndim, spacing, identity, channel)


def file_identity(path: str, em: EMArray) -> dict:
    """Path, shape, dtype, and size + modification time of the file (or of a folder store's metadata files)."""
    path = os.path.abspath(path.partition("::")[0])
    stamps = []
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for name in files:
                if name in ("zarr.json", ".zarray", ".zattrs", ".zgroup"):
                    st = os.stat(os.path.join(root, name))
                    stamps.append((os.path.relpath(os.path.join(root, name), path), st.st_size, st.st_mtime_ns))
        stamps.sort()
    else:
        st = os.stat(path)
        stamps.append((os.path.basename(path), st.st_size, st.st_mtime_ns))
    return {"path": path, "shape": list(em.data.shape), "dtype": str(em.dtype), "files": stamps}


def _channel_error(path: str, err: EMReadError) -> InputError | None:
    """A clearer line for arrays with a channel axis (4D c, z, y, x), which open_em refuses as 4D."""
    if "4D array" not in err.reason and "5D array" not in err.reason:
        return None
    what = err.reason.rsplit(" (need", 1)[0]
    return InputError(f"{path}: a {what}, i.e. several channels or time points; the model takes one gray "
                      f"channel: save the channel to segment as its own 2D/3D array")  # fmt: skip
