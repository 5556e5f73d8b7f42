"""Instances and morphometrics of a segmentation store, in bounded memory: connected components per class that
stay one object across block borders, and a CSV row per object.

Two passes over z-slabs of the label array (each slab read once per pass, plus one plane of the slab before):

1. label each slab's components per class (scipy, faces-only connectivity: 6 in 3D, 4 in 2D) with ids unique
   over the volume; where a slab's first plane touches the last plane of the slab before, voxels of the same
   class join their two components in a union-find;
2. relabel each slab with its components' roots renumbered 1 .. N in order of first appearance (z, y, x
   raster order, the same numbering a whole-volume `scipy.ndimage.label` of each class gives, merged over
   classes), write the uint32 instance array and accumulate per object: voxel count, coordinate sums,
   bounding box, and in 2D the perimeter (4-neighbour boundary pixel edges).

A 2D image is one slab: y-strips are not needed because a 2D label plane fits where the image did.
"""

from __future__ import annotations

import csv
import io

import numpy as np
from scipy import ndimage

from cemjax.common.files import write_text

FIELDS = ("id", "class", "class_name", "voxels", "volume_nm3", "centroid_z_nm", "centroid_y_nm", "centroid_x_nm",
          "bbox_z0", "bbox_y0", "bbox_x0", "bbox_z1", "bbox_y1", "bbox_x1", "area_nm2", "perimeter_nm")  # fmt: skip


class UnionFind:
    """Disjoint sets over integer ids 0 .. n−1 that grow on demand (numpy parent array, path halving)."""

    def __init__(self):
        self.parent = np.zeros(1, np.int64)

    def grow(self, n: int) -> None:
        if n > len(self.parent):
            self.parent = np.concatenate([self.parent, np.arange(len(self.parent), n, dtype=np.int64)])

    def find(self, a: int) -> int:
        p = self.parent
        while p[a] != a:
            p[a] = p[p[a]]
            a = p[a]
        return int(a)

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the smaller id (first seen) is the root

    def roots(self) -> np.ndarray:
        return np.array([self.find(i) for i in range(len(self.parent))], np.int64)


def _label_slab(labels: np.ndarray, classes, offset: int, structure) -> tuple[np.ndarray, int]:
    """Components of each class in a [z, y, x] slab with ids offset+1 …; → (int64 ids, next offset)."""
    ids = np.zeros(labels.shape, np.int64)
    for c in classes:
        comp, n = ndimage.label(labels == c, structure=structure)
        ids[comp > 0] = comp[comp > 0] + offset
        offset += n
    return ids, offset


def label_instances(seg, out, classes, *, slab: int, class_names, spacing, ndim: int) -> str:
    """Instance ids of `seg` (a zarr/numpy label array [Z, Y, X] or [H, W]) into `out` (uint32, same shape);
    returns the morphometrics CSV text. classes: the label values to split into objects (not the background)."""
    vol3 = (lambda a: a[None]) if ndim == 2 else (lambda a: a)
    depth = 1 if ndim == 2 else seg.shape[0]
    slab = depth if ndim == 2 else slab
    structure = ndimage.generate_binary_structure(3, 1)
    sets, offset, last_ids, last_labels = UnionFind(), 0, None, None
    slab_offsets = []
    for z0 in range(0, depth, slab):  # pass 1: slab components and their joins across slab faces
        labels = vol3(np.asarray(seg[z0 : z0 + slab] if ndim == 3 else seg[...]))
        slab_offsets.append(offset)
        ids, offset = _label_slab(labels, classes, offset, structure)
        sets.grow(offset + 1)
        if last_ids is not None:
            touching = (labels[0] == last_labels) & (ids[0] > 0)
            for a, b in set(zip(ids[0][touching].tolist(), last_ids[touching].tolist(), strict=True)):
                sets.union(a, b)
        last_ids, last_labels = ids[-1], labels[-1]
    roots = sets.roots()
    number = np.zeros(len(roots) + 1, np.int64)  # root id → final id in order of first appearance; [-1]: count
    stats: dict[int, dict] = {}
    for k, z0 in enumerate(range(0, depth, slab)):  # pass 2: final ids, the instance array and the statistics
        labels = vol3(np.asarray(seg[z0 : z0 + slab] if ndim == 3 else seg[...]))
        ids, _ = _label_slab(labels, classes, slab_offsets[k], structure)
        final = _renumber(ids, roots, number)
        if ndim == 3:
            out[z0 : z0 + slab] = final.astype(np.uint32)
        else:
            out[...] = final[0].astype(np.uint32)
        _accumulate(stats, final, labels, z0, ndim)
    return _csv(stats, class_names, spacing, ndim)


def _renumber(ids: np.ndarray, roots: np.ndarray, number: np.ndarray) -> np.ndarray:
    flat = ids.ravel()
    present = flat > 0
    r = roots[flat[present]]
    _, first = np.unique(r, return_index=True)
    for root in r[np.sort(first)]:  # raster order of first appearance in this slab
        if number[root] == 0:
            number[-1] += 1
            number[root] = number[-1]
    out = np.zeros(flat.shape, np.int64)
    out[present] = number[r]
    return out.reshape(ids.shape)


def _accumulate(stats: dict, final: np.ndarray, labels: np.ndarray, z0: int, ndim: int) -> None:
    objects = ndimage.find_objects(final.astype(np.int64))
    for i, box in enumerate(objects, start=1):
        if box is None:
            continue
        inside = final[box] == i
        coords = np.nonzero(inside)
        zz, yy, xx = (coords[a] + box[a].start for a in range(3))
        s = stats.setdefault(i, {"class": int(labels[box][inside][0]), "n": 0, "sum": np.zeros(3), "perimeter": 0,
                                 "lo": np.full(3, np.iinfo(np.int64).max), "hi": np.zeros(3, np.int64)})  # fmt: skip
        s["n"] += int(inside.sum())
        s["sum"] += (zz.sum() + z0 * len(zz), yy.sum(), xx.sum())
        s["lo"] = np.minimum(s["lo"], (zz.min() + z0, yy.min(), xx.min()))
        s["hi"] = np.maximum(s["hi"], (zz.max() + z0 + 1, yy.max() + 1, xx.max() + 1))
        if ndim == 2:
            s["perimeter"] += _perimeter_edges(np.pad(inside[0], 1))


def _perimeter_edges(mask: np.ndarray) -> int:
    """Pixel edges between the object and the outside (4-neighbour crossings) in a zero-padded 2D mask."""
    m = mask.astype(np.int8)
    return int(np.abs(np.diff(m, axis=0)).sum() + np.abs(np.diff(m, axis=1)).sum())


def _csv(stats: dict, class_names, spacing, ndim: int) -> str:
    sz, sy, sx = spacing
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(FIELDS)
    for i in sorted(stats):
        s = stats[i]
        centroid = s["sum"] / s["n"] * np.array([sz, sy, sx])
        area = s["n"] * sy * sx if ndim == 2 else ""
        perimeter = s["perimeter"] * (sy + sx) / 2 if ndim == 2 else ""
        name = class_names[s["class"]] if s["class"] < len(class_names) else f"class_{s['class']}"
        volume = s["n"] * sz * sy * sx if ndim == 3 else ""
        writer.writerow([i, s["class"], name, s["n"], volume, *(f"{c:.2f}" for c in centroid),
                         *s["lo"].tolist(), *s["hi"].tolist(), area, perimeter])  # fmt: skip
    return buf.getvalue()


def write_objects_csv(path: str, text: str) -> str:
    write_text(path, text)
    return path
