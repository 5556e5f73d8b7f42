"""Your own labelled data as a folder: `images/` and `masks/` with one mask per image (same name, any format
`cemjax.io.open_em` reads: 2D images or 3D volumes), and optionally `classes.json` (`cemjax.data.folder_classes`).

    FOLDER/images/cell_01.tif   FOLDER/masks/cell_01.png     2D pairs, or
    FOLDER/images/stack.mrc     FOLDER/masks/stack.tif       3D volumes (sliced along `slice_axes` to train)

Images become uint8 as curation converts them (docs/method.md §1.1: integers by their type's range, floats by
the file's min–max; RGB to gray); masks are remapped to class indices (`ClassTable.remap`). Everything is held
in memory: training sets are small next to the volumes `cemjax.segment` is for.

Validation split (`validation`): "" none; a fraction "0.2" of the files (the last ones in a seeded shuffle;
with one volume, the last z-planes of it); or file names "a,b" (stems) held out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from cemjax.common.errors import InputError
from cemjax.data.folder_classes import ClassTable, as_labels, infer_classes, read_sidecar
from cemjax.io import SUFFIXES, open_em, rgb_to_gray, to_uint8, volume_stats

SLICE_AXES = {"xy": 0, "xz": 1, "yz": 2}  # plane name → the numpy axis of [z, y, x] it is cut across


@dataclass
class Pair:
    """One labelled image or volume: uint8 `image` [H, W] or [D, H, W], `mask` of class indices (255: unlabelled)."""

    name: str
    image: np.ndarray
    mask: np.ndarray
    spacing: tuple[float, float, float] | None = None


def stem(filename: str) -> str:
    """ "a.ome.zarr" → "a", "b.nii.gz" → "b", "c.tif" → "c"."""
    low = filename.lower().rstrip("/")
    for suffix in (".ome.zarr", ".nii.gz", *SUFFIXES):
        if low.endswith(suffix):
            return filename.rstrip("/")[: -len(suffix)]
    return os.path.splitext(filename)[0]


def _listing(folder: str, sub: str) -> dict[str, str]:
    path = os.path.join(folder, sub)
    if not os.path.isdir(path):
        raise InputError(f"{folder}: no {sub}/ folder (a training folder holds images/ and masks/, same names)")
    out: dict[str, str] = {}
    for name in sorted(os.listdir(path)):
        if name.startswith(".") or not name.lower().rstrip("/").endswith(SUFFIXES):
            continue
        key = stem(name)
        if key in out:
            raise InputError(f"{path}: two files named {key!r} ({os.path.basename(out[key])}, {name})")
        out[key] = os.path.join(path, name)
    if not out:
        raise InputError(f"{path}: no image files ({', '.join(SUFFIXES)})")
    return out


def read_image(path: str) -> tuple[np.ndarray, tuple[float, float, float] | None]:
    """A file as curation converts it: uint8 [H, W] or [D, H, W] (RGB → gray) and its spacing (nm) or None."""
    with open_em(path) as em:
        raw = np.asarray(em.data[...])
        raw = rgb_to_gray(raw) if em.rgb else raw
        stats = volume_stats(em) if raw.dtype.kind == "f" else None
        return np.array(to_uint8(raw, stats)), em.spacing


def read_mask(path: str) -> np.ndarray:
    """Integer label array of a mask file (shape as stored)."""
    with open_em(path) as em:
        if em.rgb:
            raise InputError(f"{path}: an RGB mask; masks hold one integer label per pixel")
        return as_labels(np.array(em.data[...]), path)


def load_folder(folder: str, ignore_label: int | None = None) -> tuple[list[Pair], ClassTable]:
    """Every image/mask pair of `folder` (sorted by name) and its classes. ignore_label: the unlabelled mask
    value when there is no sidecar (the sidecar's 'ignore' wins)."""
    folder = os.fspath(folder).rstrip("/")
    images, masks = _listing(folder, "images"), _listing(folder, "masks")
    missing = sorted(set(images) - set(masks))
    if missing:
        raise InputError(f"{folder}/masks: no mask for image(s) {', '.join(missing[:5])} (same name, any format)")
    raw_masks, pairs = {}, []
    for name in sorted(images):
        image, spacing = read_image(images[name])
        mask = read_mask(masks[name])
        if mask.shape != image.shape:
            raise InputError(f"{masks[name]}: mask shape {mask.shape} differs from image {images[name]} {image.shape}")
        raw_masks[name] = mask
        pairs.append(Pair(name, image, mask, spacing))
    table = read_sidecar(folder) or infer_classes(raw_masks.values(), folder, ignore_label)
    for pair in pairs:
        pair.mask = table.remap(raw_masks.pop(pair.name), masks[pair.name])
    return pairs, table


def split_pairs(pairs: list[Pair], validation: str, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """(train, validation) per the `validation` rule of the module docstring."""
    validation = (validation or "").strip()
    if not validation:
        return pairs, []
    try:
        fraction = float(validation)
    except ValueError:
        names = [v.strip() for v in validation.split(",") if v.strip()]
        unknown = sorted(set(names) - {p.name for p in pairs})
        if unknown:
            raise InputError(f"data.validation names {unknown} that are not in the folder; "
                             f"known: {', '.join(p.name for p in pairs)}") from None  # fmt: skip
        held = [p for p in pairs if p.name in names]
        return [p for p in pairs if p.name not in names], held
    if not 0 < fraction < 1:
        raise InputError(f"data.validation={validation!r}: a fraction in (0, 1), file names, or '' for none")
    if len(pairs) == 1:
        return _split_volume(pairs[0], fraction)
    order = np.random.default_rng([seed, 2]).permutation(len(pairs))
    n_val = min(len(pairs) - 1, max(1, round(fraction * len(pairs))))
    held = set(order[len(pairs) - n_val :].tolist())
    return [p for i, p in enumerate(pairs) if i not in held], [p for i, p in enumerate(pairs) if i in held]


def _split_volume(pair: Pair, fraction: float) -> tuple[list[Pair], list[Pair]]:
    if pair.image.ndim != 3 or pair.image.shape[0] < 2:
        raise InputError(f"{pair.name}: one 2D image cannot be split for validation; add images or set "
                         f"data.validation=''")  # fmt: skip
    depth = pair.image.shape[0]
    n_val = min(depth - 1, max(1, round(fraction * depth)))
    cut = depth - n_val
    train = Pair(f"{pair.name}[:{cut}]", pair.image[:cut], pair.mask[:cut], pair.spacing)
    held = Pair(f"{pair.name}[{cut}:]", pair.image[cut:], pair.mask[cut:], pair.spacing)
    return [train], [held]


class FolderPlanes:
    """Random-access 2D training planes of pairs: ``planes[i]`` → (image, mask) uint8 [h, w]. 2D pairs are one
    plane each; volumes give every plane across `slice_axes` ("xy", "xz", "yz"). Picklable: grain workers
    reload the folder (`args` = load_training_folder's arguments)."""

    def __init__(self, pairs: list[Pair], slice_axes: tuple[str, ...], args: tuple | None = None):
        unknown = [a for a in slice_axes if a not in SLICE_AXES]
        if unknown or not slice_axes:
            raise InputError(f"data.slice_axes={','.join(slice_axes)!r}: use a comma list of xy, xz, yz")
        self.pairs, self._args = pairs, args
        self._axes = tuple(SLICE_AXES[a] for a in slice_axes)
        index = []
        for v, pair in enumerate(pairs):
            if pair.image.ndim == 2:
                index.append((v, 0, -1))
                continue
            for name in slice_axes:
                axis = SLICE_AXES[name]
                index.extend((v, axis, k) for k in range(pair.image.shape[axis]))
        self._index = np.array(index, np.int64).reshape(-1, 3)

    def __reduce__(self):
        if self._args is None:
            return FolderPlanes, (self.pairs, ())
        return _reload_train_planes, self._args

    def __len__(self) -> int:
        return len(self._index)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        v, axis, k = (int(t) for t in self._index[i])
        pair = self.pairs[v]
        if k < 0:
            return pair.image, pair.mask
        return np.take(pair.image, k, axis=axis), np.take(pair.mask, k, axis=axis)

    def max_side(self) -> int:
        """The longest side of any training plane, px."""
        sides = [max(p.image.shape) if p.image.ndim == 2 else
                 max(d for i, d in enumerate(p.image.shape) if i != axis)
                 for p in self.pairs for axis in self._axes]  # fmt: skip
        return max(sides)

    def __repr__(self) -> str:
        return f"FolderPlanes({len(self.pairs)} pairs, n={len(self)})"


def _reload_train_planes(folder, validation, slice_axes, ignore_label, seed):
    pairs, _ = load_folder(folder, ignore_label)
    train, _ = split_pairs(pairs, validation, seed)
    return FolderPlanes(train, slice_axes, (folder, validation, slice_axes, ignore_label, seed))
