"""Chunked containers: HDF5 datasets (h5py) and zarr / OME-Zarr arrays, opened lazily with their spacing."""

from __future__ import annotations

import h5py
import numpy as np
import zarr

from cemjax.io.array import UNIT_NM, EMArray, EMReadError, looks_rgb


def open_h5(path: str, key: str | None) -> EMArray:
    f = h5py.File(path, "r")
    try:
        if key is None:
            key = _pick_h5_dataset(f)
        ds = f[key]
        if not isinstance(ds, h5py.Dataset):
            raise EMReadError(path, f"'{key}' is not a dataset")
        spacing = None
        for attr, scale in (("element_size_um", 1e3), ("resolution", 1.0), ("spacing", 1.0)):
            if attr in ds.attrs and np.size(ds.attrs[attr]) == 3:
                spacing = tuple(float(v) * scale for v in np.ravel(ds.attrs[attr]))
                break
    except Exception:
        f.close()
        raise
    return EMArray(path, ds, spacing, looks_rgb(ds.shape), [f.close])


def _pick_h5_dataset(f) -> str:
    found: list[tuple[str, int]] = []
    f.visititems(lambda name, obj: found.append((name, obj.size)) if hasattr(obj, "shape") and obj.ndim >= 2 else None)
    if not found:
        raise EMReadError(f.filename, "HDF5 file holds no image dataset")
    preferred = [n for n, _ in found if any(w in n.lower() for w in ("raw", "image", "em", "data"))]
    if preferred:
        return sorted(preferred, key=len)[0]
    return max(found, key=lambda t: t[1])[0]


def open_zarr(path: str) -> EMArray:
    node = zarr.open(path, mode="r")
    spacing = None
    if isinstance(node, zarr.Group):
        attrs = dict(node.attrs)
        ms = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
        if ms:
            level = ms[0]["datasets"][0]
            node_arr = node[level["path"]]
            spacing = _ome_spacing(ms[0], level)
        else:
            arrays = [a for _, a in node.arrays() if a.ndim >= 2]
            if not arrays:
                raise EMReadError(path, "zarr group holds no image array")
            node_arr = max(arrays, key=lambda a: a.size)
        node = node_arr
    # OME-Zarr may carry singleton t/c axes: hide leading length-1 axes beyond 3D.
    data = _Squeezed(node) if node.ndim > 3 and node.shape[0] == 1 else node
    if spacing is not None and len(spacing) != 3:
        spacing = None
    return EMArray(path, data, spacing, False)


class _Squeezed:
    """View of a zarr array without its leading singleton axes (slicing stays lazy)."""

    def __init__(self, arr):
        self._arr = arr
        self._lead = 0
        while arr.ndim - self._lead > 3 and arr.shape[self._lead] == 1:
            self._lead += 1
        self.shape = tuple(arr.shape[self._lead :])
        self.dtype = arr.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, idx):
        idx = idx if isinstance(idx, tuple) else (idx,)
        return self._arr[(0,) * self._lead + idx]


def _ome_spacing(ms: dict, level: dict) -> tuple[float, ...] | None:
    axes = ms.get("axes", [])
    for t in level.get("coordinateTransformations", []):
        if t.get("type") == "scale":
            scale = list(t["scale"])
            if axes and isinstance(axes[0], dict):
                out = []
                for ax, s in zip(axes, scale, strict=False):
                    if ax.get("type") == "space":
                        out.append(float(s) * UNIT_NM.get(str(ax.get("unit", "nm")).lower(), 1.0))
                return tuple(out[-3:]) if len(out) >= 3 else None
            return tuple(float(s) for s in scale[-3:])
    return None
