"""Score a folder of patches with a trained quality classifier → CSV (docs/method.md §1).

    cemjax-apply-quality --model-dir quality_model/ --input patches/ --output scores.csv
        [--threshold 0.5]

Every 2D image under --input (recursively) gets a row: path, score (P(informative)), informative (0/1 at the
threshold; default the model's own). Unreadable files get an empty score and their reason.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

import numpy as np

from cemjax.common.errors import EXIT_INPUT, ArgumentParser, guarded
from cemjax.common.files import atomic_write
from cemjax.curate.classifier import load_classifier, read_patch

CHUNK = 512  # patches read and scored at a time


def _paths(root: str) -> list[str]:
    if os.path.isfile(root):
        return [root]
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if not f.startswith("."))


@guarded
def main(argv: list[str] | None = None) -> int:
    ap = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--input", required=True, help="a folder of patches (searched recursively) or one image")
    ap.add_argument("--output", required=True, help="CSV to write")
    ap.add_argument("--threshold", type=float, default=None, help="default: the model's (quality.json)")
    a = ap.parse_args(argv)
    scorer = load_classifier(a.model_dir)
    threshold = scorer.threshold if a.threshold is None else a.threshold
    rows, paths = [], _paths(a.input)
    for s in range(0, len(paths), CHUNK):
        good, images = [], []
        for p in paths[s : s + CHUNK]:
            try:
                images.append(read_patch(p))
                good.append(p)
            except Exception as e:
                rows.append({"path": p, "score": "", "informative": "", "reason": f"{type(e).__name__}: {e}"[:200]})
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            by_shape.setdefault(im.shape, []).append(i)
        for idx in by_shape.values():
            scores = scorer(np.stack([images[i] for i in idx]))
            for i, sc in zip(idx, scores, strict=True):
                rows.append({"path": good[i], "score": f"{sc:.6f}", "informative": int(sc > threshold), "reason": ""})
    rows.sort(key=lambda r: r["path"])

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["path", "score", "informative", "reason"], lineterminator="\n")
            w.writeheader()
            w.writerows(rows)

    atomic_write(a.output, write)
    n_inf = sum(1 for r in rows if r["informative"] == 1)
    n_bad = sum(1 for r in rows if r["score"] == "")
    print(f"{len(rows)} patches: {n_inf} informative, {len(rows) - n_inf - n_bad} not, {n_bad} unreadable → {a.output}")
    return EXIT_INPUT if n_bad else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
