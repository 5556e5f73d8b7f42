"""Small labelled EM patch sets for the online probes of pretraining (`cemjax.train.probe`).

A patch's label is what its centre shows: the class covering at least half of a central window of
`max(3, size // 8)` pixels (a patch whose centre is mixed is not used). Patches that train the probes and
patches that score them never share pixels: they come from different images (synthetic) or from the top and
the bottom half of each image (mask folders).

- `synthetic_probe_set`: the synthetic EM world (`cemjax.synthetic.make_em_image`, 12 nm pixels, the three
  tissue styles in turn) with its own labels: resin (outside cells), cytoplasm, mitochondria and nucleus
  (nucleolus included); lysosomes and vesicle clusters are too rare in a few images to be classes.
- `mask_folder_probe_set`: real images with masks, `DIR/images/NAME.png` beside `DIR/masks/NAME.png` (or
  `labels/`), e.g. the correlation crops or the ISBI 2012 slices. A mask value v > 0 of image NAME is the class
  "NAME without trailing digits" (mitochondria1 … mitochondria5 are one class) or "value v" when nothing is left;
  0 is "background".
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import uniform_filter

from cemjax.synthetic import classes as C
from cemjax.synthetic import make_em_image

SYNTHETIC_CLASSES = ("resin", "cytoplasm", "mitochondria", "nucleus")
SYNTHETIC_PIXEL_NM = 12.0
MIN_PER_CLASS = 2  # a class with fewer patches on either side of the split is left out
IMAGE_SUFFIXES = (".png", ".tif", ".tiff")


@dataclass(frozen=True)
class ProbeSet:
    """images: uint8 [N, S, S, 1]; labels: int32 [N] indices into `class_names`; train: bool [N] (True: trains
    the probes — the kNN memory and the linear classifier —, False: scores them)."""

    images: np.ndarray
    labels: np.ndarray
    train: np.ndarray
    class_names: tuple[str, ...]
    description: str

    def __len__(self) -> int:
        return len(self.labels)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {int(np.sum(self.labels == i))}" for i, n in enumerate(self.class_names))
        return f"{len(self)} patches ({int(self.train.sum())} train / {int((~self.train).sum())} test) of " \
               f"{self.description}: {counts}"  # fmt: skip


def centre_window(size: int) -> int:
    return max(3, size // 8)


def _coverage(class_map: np.ndarray, n_classes: int, window: int) -> np.ndarray:
    """Fraction of each class in the window around every pixel: float32 [n_classes, H, W]."""
    return np.stack([uniform_filter((class_map == c).astype(np.float32), window, mode="constant")
                     for c in range(n_classes)])  # fmt: skip


def _centres(class_map: np.ndarray, n_classes: int, size: int, rows: slice, rng, limit: int) -> dict[int, list]:
    """Per class up to `limit` random patch centres (y, x) whose window is ≥ 50 % that class, with the whole
    patch inside the image and its rows inside `rows`."""
    cover = _coverage(class_map, n_classes, centre_window(size))
    h, w = class_map.shape
    half = size // 2
    y_lo, y_hi = max(half, (rows.start or 0) + half), min(h - size + half, (rows.stop or h) - size + half)
    inside = np.zeros((h, w), bool)
    inside[y_lo : y_hi + 1, half : w - size + half + 1] = True
    out = {}
    for c in range(n_classes):
        ys, xs = np.nonzero((cover[c] >= 0.5) & inside & (class_map == c))
        pick = rng.permutation(len(ys))[:limit]
        out[c] = [(int(ys[i]), int(xs[i])) for i in pick]
    return out


def _cut(image: np.ndarray, centres, size: int) -> list[np.ndarray]:
    half = size // 2
    return [image[y - half : y - half + size, x - half : x - half + size] for y, x in centres]


def _assemble(parts: dict[tuple[bool, int], list[np.ndarray]], names: tuple[str, ...], per_side: int,
              description: str) -> ProbeSet:  # fmt: skip
    """Keep up to `per_side` patches per (side, class); drop classes too rare on either side."""
    kept = [c for c in range(len(names))
            if all(len(parts.get((side, c), [])) >= MIN_PER_CLASS for side in (True, False))]  # fmt: skip
    if len(kept) < 2:
        raise ValueError(f"probe set of {description}: fewer than two classes have {MIN_PER_CLASS} patches on "
                         f"each side of the split")  # fmt: skip
    images, labels, train = [], [], []
    for side in (True, False):
        for new, c in enumerate(kept):
            patches = parts[(side, c)][:per_side]
            images += patches
            labels += [new] * len(patches)
            train += [side] * len(patches)
    return ProbeSet(np.stack(images)[..., None].astype(np.uint8), np.asarray(labels, np.int32),
                    np.asarray(train, bool), tuple(names[c] for c in kept), description)  # fmt: skip


def synthetic_class_map(labels: np.ndarray, cell_ids: np.ndarray) -> np.ndarray:
    """The synthetic world's labels → indices of SYNTHETIC_CLASSES (−1: none of them, e.g. membranes)."""
    out = np.full(labels.shape, -1, np.int16)
    out[(labels == C.BACKGROUND) & (cell_ids == 0)] = 0
    out[(labels == C.BACKGROUND) & (cell_ids > 0)] = 1
    out[labels == C.MITOCHONDRIA] = 2
    out[(labels == C.NUCLEUS) | (labels == C.NUCLEOLUS)] = 3
    return out


@functools.lru_cache(maxsize=4)
def synthetic_probe_set(n: int, size: int, seed: int = 0, max_images: int = 12) -> ProbeSet:
    """About `n` labelled patches of `size` px from synthetic images of max(384, 3·size) px a side (even images
    train, odd ones score; a few seconds), balanced over SYNTHETIC_CLASSES as far as the images allow.
    Deterministic in `seed` (and cached: treat the arrays as read-only)."""
    styles = ("culture", "neuropil", "tissue")
    per_side = max(MIN_PER_CLASS, n // (2 * len(SYNTHETIC_CLASSES)))
    shape = (max(384, 3 * size),) * 2
    parts: dict[tuple[bool, int], list[np.ndarray]] = {}
    rng = np.random.default_rng([seed, 17])
    for i in range(max_images):
        sample = make_em_image(shape, SYNTHETIC_PIXEL_NM, styles[i % 3], seed=seed * 1000 + 500 + i)
        side = i % 2 == 0
        class_map = synthetic_class_map(sample.labels, sample.cell_ids)
        limit = max(1, -(-per_side // 2))  # spread every class over at least two images per side
        for c, centres in _centres(class_map, len(SYNTHETIC_CLASSES), size, slice(None), rng, limit).items():
            parts.setdefault((side, c), []).extend(_cut(sample.image, centres, size))
        if i >= 3 and all(len(parts.get((s, c), [])) >= per_side for s in (True, False)
                          for c in range(len(SYNTHETIC_CLASSES))):  # fmt: skip
            break
    return _assemble(parts, SYNTHETIC_CLASSES, per_side, f"the synthetic EM world ({SYNTHETIC_PIXEL_NM:g} nm)")


def _mask_class(stem: str, value: int) -> str:
    if value == 0:
        return "background"
    return re.sub(r"[\d_\-\s]+$", "", stem) or f"value {value}"


def _read_gray(path: Path) -> np.ndarray:
    image = np.asarray(Image.open(path))
    return image if image.ndim == 2 else image[..., 0]


def mask_folder_probe_set(root: str | Path, n: int, size: int, seed: int = 0) -> ProbeSet:
    """About `n` labelled patches of `size` px from a folder of uint8 images and masks (see the module
    docstring): patches in the top half of every image train, those in the bottom half score."""
    root = Path(root)
    mask_dir = next((root / d for d in ("masks", "labels") if (root / d).is_dir()), None)
    images = sorted(p for p in (root / "images").glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if mask_dir is None or not images:
        raise FileNotFoundError(f"probe set {root}: expected images/ and masks/ (or labels/) of the same names")
    loaded = []
    for path in images:
        mask_path = next((mask_dir / (path.stem + s) for s in IMAGE_SUFFIXES if (mask_dir / (path.stem + s)).exists()),
                         None)  # fmt: skip
        if mask_path is None:
            raise FileNotFoundError(f"probe set {root}: no mask for {path.name} in {mask_dir}")
        image, mask = _read_gray(path), _read_gray(mask_path)
        if image.dtype != np.uint8 or image.shape != mask.shape or min(image.shape) < 2 * size:
            raise ValueError(f"probe set: {path.name} must be uint8, the shape of its mask and ≥ {2 * size} px a side")
        loaded.append((path.stem, image, mask))
    names = sorted({_mask_class(stem, int(v)) for stem, _, mask in loaded for v in np.unique(mask)})
    per_side = max(MIN_PER_CLASS, n // (2 * len(names)))
    rng = np.random.default_rng([seed, 29])
    parts: dict[tuple[bool, int], list[np.ndarray]] = {}
    limit = max(1, -(-per_side // len(loaded)))
    for stem, image, mask in loaded:
        class_map = np.full(mask.shape, -1, np.int16)
        for v in np.unique(mask):
            class_map[mask == v] = names.index(_mask_class(stem, int(v)))
        h = image.shape[0]
        for side, rows in ((True, slice(0, h // 2)), (False, slice(h // 2, h))):
            for c, centres in _centres(class_map, len(names), size, rows, rng, limit).items():
                parts.setdefault((side, c), []).extend(_cut(image, centres, size))
    return _assemble(parts, tuple(names), per_side, f"{root}")


def make_probe_set(spec: str, n: int, size: int, seed: int = 0) -> ProbeSet:
    """`probe.set` → a ProbeSet: "synthetic" or "masks:DIR"."""
    if spec == "synthetic":
        return synthetic_probe_set(n, size, seed)
    kind, _, path = spec.partition(":")
    if kind == "masks" and path:
        return mask_folder_probe_set(Path(path).expanduser(), n, size, seed)
    raise ValueError(f"probe.set={spec!r}: use 'synthetic' or 'masks:DIR' (DIR holding images/ and masks/)")
