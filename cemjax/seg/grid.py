"""A grid of fine-tuning runs (benchmark × encoder init) and its results table, like the paper's Table 2.

Cells live in `root/<benchmark>/<init name>/`; a cell whose `results.json` exists is finished and skipped,
an unfinished one resumes from its last checkpoint. The table is written as Markdown and CSV, with a bar
chart PNG, from whatever cells are finished.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import matplotlib
import numpy as np

from cemjax.common.files import atomic_write, write_text
from cemjax.configs.finetune import get_config
from cemjax.seg.trainer import finetune

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the display-free backend)


def parse_init(text: str) -> tuple[str, str]:
    """ "random" → ("random", "init=random"); "cem500k=/w.pth.tar" → ("cem500k", "init=cem500k,weights=/w.pth.tar");
    "mine=/runs/pretrain" → ("mine", "init=/runs/pretrain")."""
    name, sep, path = text.partition("=")
    if not sep:
        return name, f"init={name}"
    if name in ("cem500k", "imagenet"):
        return name, f"init={name},weights={path}"
    return name, f"init={path}"


def load_config(benchmark: str, arg: str = ""):
    """The fine-tuning config of one grid cell: `cemjax.configs.finetune` with `benchmark=…` and `arg`."""
    return get_config(f"benchmark={benchmark},{arg}" if arg else f"benchmark={benchmark}")


def run_grid(
    root: str | os.PathLike,
    benchmarks: Sequence[str],
    inits: Sequence[str],
    *,
    variant: str = "paper",
    overrides: Callable | None = None,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Fine-tune and evaluate every unfinished cell; `overrides(config)` may edit each config (data_dir, …).
    Returns the results of all finished cells."""
    for benchmark in benchmarks:
        for init in inits:
            name, arg = parse_init(init)
            cell = Path(root) / benchmark / name
            if (cell / "results.json").exists():
                log(f"[skip] {benchmark} / {name}: finished ({cell / 'results.json'})")
                continue
            config = load_config(benchmark, f"{arg},variant={variant}")
            if overrides is not None:
                overrides(config)
            log(f"[run ] {benchmark} / {name} → {cell}")
            out = finetune(config, str(cell))
            if "results" in out:
                log(f"[done] {benchmark} / {name}: IoU {out['results']['iou']:.4f}")
    return collect(root)


def collect(root: str | os.PathLike) -> list[dict]:
    rows = []
    for path in sorted(Path(root).glob("*/*/results.json")):
        record = json.loads(path.read_text())
        record["init_name"] = path.parent.name
        rows.append(record)
    return rows


def write_table(rows: list[dict], out_dir: str | os.PathLike, title: str = "IoU on the test sets") -> dict[str, str]:
    """results.md, results.csv and results.png (benchmark × init) in out_dir; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    benchmarks = list(dict.fromkeys(r["benchmark"] for r in rows))
    inits = list(dict.fromkeys(r["init_name"] for r in rows))
    cell = {(r["benchmark"], r["init_name"]): r for r in rows}

    lines = [f"### {title}", "", "| benchmark | " + " | ".join(inits) + " | eval |", "|---" * (len(inits) + 2) + "|"]
    for b in benchmarks:
        values = [f"{cell[b, i]['iou']:.3f}" if (b, i) in cell else "–" for i in inits]
        some = next(r for (bb, _), r in cell.items() if bb == b)
        modes = ", ".join(f"{k}: {v['mode']}" if len(some["sets"]) > 1 else v["mode"] for k, v in some["sets"].items())
        lines.append(f"| {b} | " + " | ".join(values) + f" | {modes} |")
    lines += ["", "Iterations, encoder and freeze policy per cell:", ""]
    for r in rows:
        lines.append(f"- {r['benchmark']} / {r['init_name']}: {r['iterations']} iterations, {r['encoder']}, "
                     f"finetune_layer={r['finetune_layer']}, encoder from {r['init_source']}")  # fmt: skip
    md = "\n".join(lines) + "\n"

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["benchmark", "init", "iou", "test_set", "set_iou", "iterations", "encoder", "finetune_layer"])
    for r in rows:
        for name, s in r["sets"].items():
            writer.writerow([r["benchmark"], r["init_name"], f"{r['iou']:.6f}", name, f"{s['iou']:.6f}",
                             r["iterations"], r["encoder"], r["finetune_layer"]])  # fmt: skip
    paths = {
        "markdown": write_text(out_dir / "results.md", md),
        "csv": write_text(out_dir / "results.csv", buffer.getvalue()),
        "png": _bar_chart(benchmarks, inits, cell, out_dir / "results.png", title),
    }
    return {k: str(v) for k, v in paths.items()}


def _bar_chart(benchmarks, inits, cell, path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(benchmarks) * max(1, len(inits)) / 2, 3.2))
    width = 0.8 / max(1, len(inits))
    for k, init in enumerate(inits):
        values = [cell[b, init]["iou"] if (b, init) in cell else np.nan for b in benchmarks]
        ax.bar(np.arange(len(benchmarks)) + k * width, values, width, label=init)
    ax.set_xticks(np.arange(len(benchmarks)) + width * (len(inits) - 1) / 2, benchmarks)
    ax.set_ylabel("IoU")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    try:
        return atomic_write(path, lambda t: fig.savefig(t, format="png", dpi=100))
    finally:
        plt.close(fig)
