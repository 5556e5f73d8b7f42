"""The pipeline's steps as plain functions (Beam wires them up in `pipeline.py`; tests call them directly).

file_stats (per file) → patch_unit (per unit) → dedup_source (per source) → score_unit (per unit) →
finalize_source (per source). Workers communicate through files under the output folder:

  <out>/.work/<source>/units/<k>.npy   uint8 [m, 224, 224] canvases of unit k's patches (true size, top-left; temp)
  <out>/.work/<source>/staging/        kept TIFFs, manifest part, sheets (temp, renamed on success)
  <out>/patches/<source>/*.tiff        final kept patches;  <out>/.parts/<source>.csv  final manifest part

A source counts as finished once its manifest part exists; that rename happens last.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

import numpy as np
import tifffile

from cemjax.common.files import atomic_write
from cemjax.curate.cross_sections import Unit
from cemjax.curate.dedup import dedup
from cemjax.curate.dhash import dhash64
from cemjax.curate.patches import cut_patches, hash_copies, patch_name, true_patch
from cemjax.curate.quality import blank_reason, load_scorer, patch_features
from cemjax.curate.sources import NO_DEDUP, FileInfo, Rejected
from cemjax.io import EMReadError, Stats, choose_scaling, open_em, read_plane_block, volume_stats


@dataclass
class UnitResult:
    """Patch records of one unit: k (unit index in its source), file, axis, slice int32 [m],
    boxes int32 [m, 4] (y0, y1, x0, x1), hashes uint64 [m], features float32 [m, 2], the file's dedup group
    and the intensity rule its planes were converted with (one line)."""

    source: str
    k: int
    file: str
    axis: str
    slices: np.ndarray
    boxes: np.ndarray
    hashes: np.ndarray
    features: np.ndarray
    group: str = ""
    intensity: str = ""


def work_dir(out: str, source: str) -> str:
    return os.path.join(out, ".work", source)


def file_stats(info: FileInfo) -> tuple[str, Stats | Rejected]:
    """(path, Stats) or (path, Rejected) after one streamed pass over the file's values."""
    try:
        with open_em(info.path, spacing=info.spacing) as em:
            stats = volume_stats(em)
    except EMReadError as e:
        return info.path, Rejected(info.path, e.reason, info.source)
    except Exception as e:  # truncated data often fails only when read
        return info.path, Rejected(info.path, f"unreadable data ({type(e).__name__}: {e})"[:200], info.source)
    if not stats.finite:
        return info.path, Rejected(info.path, "contains NaN/Inf values", info.source)
    if stats.constant:
        return info.path, Rejected(info.path, f"constant image (every value {stats.lo:g})", info.source)
    return info.path, stats


def patch_unit(
    item: tuple[FileInfo, Unit, int], stats: dict, out: str, intensity: str = "auto"
) -> tuple[str, UnitResult | Rejected]:
    """Cut, convert (by the `intensity` rule, whole-file statistics) and hash one unit; the true-size patches go
    to <work>/units/<k>.npy on 224² canvases. Keyed by source for the group-by."""
    info, unit, k = item
    st = stats.get(info.path)
    if not isinstance(st, Stats):
        return info.source, st if st is not None else Rejected(info.path, "no statistics", info.source)
    try:
        with open_em(info.path, spacing=info.spacing) as em:
            raw = read_plane_block(em, unit.axis, unit.start, unit.stop)
        scaling = choose_scaling(raw.dtype, st, intensity)
        planes = scaling.apply(raw)
    except Exception as e:
        return info.source, Rejected(info.path, f"unreadable data ({type(e).__name__}: {e})"[:200], info.source)
    patches, boxes = cut_patches(planes)
    path = os.path.join(work_dir(out, info.source), "units", f"{k:06d}.npy")
    atomic_write(path, lambda tmp: np.save(tmp, patches))
    plane = boxes[:, 0] + unit.start if len(info.shape) == 3 else np.full(len(boxes), info.index)
    sizes = np.stack([boxes[:, 2] - boxes[:, 1], boxes[:, 4] - boxes[:, 3]], axis=1)
    result = UnitResult(
        info.source, k, info.path, unit.axis if len(info.shape) == 3 else "2d", plane.astype(np.int32),
        boxes[:, 1:].astype(np.int32), dhash64(hash_copies(patches, boxes)), patch_features(patches, sizes),
        info.dedup_group, f"{os.path.basename(info.path)}: {scaling.description}",
    )  # fmt: skip
    return info.source, result


def _seed(seed: int, group: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(group.encode())) % 2**32


def dedup_source(keyed: tuple[str, list], seed: int, max_distance: int) -> list[tuple[str, dict]]:
    """Group-by-source step: drop units of rejected files, dedup all patches, emit one record set per unit."""
    source, items = keyed
    rejected = sorted({(r.path, r.reason) for r in items if isinstance(r, Rejected)})
    bad = {p for p, _ in rejected}
    units = sorted((u for u in items if isinstance(u, UnitResult) and u.file not in bad), key=lambda u: u.k)
    names = [
        patch_name(source, u.axis, int(s), *map(int, b)) for u in units for s, b in zip(u.slices, u.boxes, strict=True)
    ]
    hashes = np.concatenate([u.hashes for u in units]) if units else np.zeros(0, np.uint64)
    groups = np.array([u.group for u in units for _ in range(len(u.hashes))], dtype=object)
    exemplar = np.arange(len(names))  # patches outside any group (NO_DEDUP) are their own exemplars
    for group in sorted(set(groups) - {NO_DEDUP}):
        members = np.flatnonzero(groups == group)
        canon = members[np.argsort(np.array(names, dtype=object)[members], kind="stable")]  # arrival-independent
        ex = dedup(hashes[canon], seed=_seed(seed, group or source), max_distance=max_distance)
        exemplar[canon] = canon[ex]
    out, start = [], 0
    for u in units:
        m = len(u.hashes)
        ex = exemplar[start : start + m]
        out.append((source, {"unit": u, "names": names[start : start + m], "exemplar": [names[e] for e in ex],
                             "intensity": u.intensity}))  # fmt: skip
        start += m
    out.append((source, {"rejected": rejected}))
    return out


def score_unit(keyed: tuple[str, dict], out: str, model_dir: str | None, threshold: float | None) -> tuple[str, dict]:
    """Pre-filter and classify one unit's dedup survivors, write kept TIFFs to staging → manifest rows.

    A patch is kept when P(informative) > threshold (None: the classifier's own, from its quality.json)."""
    source, rec = keyed
    if "unit" not in rec:
        return keyed
    u, names, exemplar = rec["unit"], rec["names"], rec["exemplar"]
    reason = np.array(["" if e == n else "duplicate" for n, e in zip(names, exemplar, strict=True)], dtype=object)
    alive = reason == ""
    reason[alive] = blank_reason(u.features[alive])
    score = np.full(len(names), np.nan, np.float32)
    todo = np.flatnonzero(reason == "")
    patches = np.load(os.path.join(work_dir(out, source), "units", f"{u.k:06d}.npy"), mmap_mode="r")
    if model_dir and len(todo):
        scorer = load_scorer(model_dir)
        boxes = np.concatenate([np.zeros((len(u.boxes), 1), np.int32), u.boxes], axis=1)  # (·, y0, y1, x0, x1)
        score[todo] = scorer(hash_copies(np.asarray(patches[todo]), boxes[todo]))  # true size, resized to 224²
        reason[todo[score[todo] <= (scorer.threshold if threshold is None else threshold)]] = "low_quality"
    kept = np.flatnonzero(reason == "")
    folder = os.path.join(work_dir(out, source), "staging", "patches")
    os.makedirs(folder, exist_ok=True)
    for i in kept:
        tifffile.imwrite(os.path.join(folder, names[i] + ".tiff"), np.asarray(true_patch(patches[i], u.boxes[i])))
    rows = [
        {
            "name": names[i], "source": source, "file": u.file, "axis": u.axis, "slice": int(u.slices[i]),
            "y0": int(u.boxes[i, 0]), "y1": int(u.boxes[i, 1]), "x0": int(u.boxes[i, 2]), "x1": int(u.boxes[i, 3]),
            "hash": f"{int(u.hashes[i]):016x}", "exemplar": exemplar[i],
            "score": "" if np.isnan(score[i]) else f"{score[i]:.6f}",
            "kept": int(reason[i] == ""), "reason": reason[i] or "kept", "unit": u.k, "row": int(i),
        }
        for i in range(len(names))
    ]  # fmt: skip
    return source, {"rows": rows, "intensity": rec["intensity"]}
