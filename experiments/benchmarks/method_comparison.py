"""MoCoV2 vs SwAV at demo scale on the synthetic world: online probe curves while pretraining, then fine-tuning.

1. A synthetic benchmark (`--benchmark`, demo preset) written and built into TFDS under `<work>/`;
2. `mocov2:demo` and `swav:demo` pretrained for `--pretrain-steps` steps each on synthetic patches with the
   online probes on (`probe.every` = `--probe-every`: kNN k = 20, T = 0.07 and a linear probe on the synthetic
   probe set, `cemjax.train.probe`); the probe accuracies are read back from each run's metrics.jsonl. The step-0
   probe of a run is its random-init encoder, drawn as the reference line;
3. a UNet fine-tuned on the benchmark from each pretrained encoder and from random init, the same protocol for
   all three (the fine-tuning config's demo variant, `--finetune-steps` iterations, `--finetune-layer`), scored
   as the paper scores the benchmark.

Writes one Markdown table (method, final kNN, final linear, fine-tune IoU, pretraining wall time) and one PNG of
the probe curves. Every stage is resumable: finished pretraining runs and fine-tuning cells are reused (their
wall time is then the one recorded when they ran).

  python experiments/benchmarks/method_comparison.py --work out/method_comparison \\
      --table docs/benchmarks/method_comparison.md --png docs/images/method_comparison.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the display-free backend)

METHODS = ("mocov2", "swav")
TIMING = "wall_time.json"


def build_benchmark(work: Path, benchmark: str, seed: int) -> Path:
    """The synthetic benchmark's files and its TFDS build (once) → the TFDS data_dir."""
    from cemjax.data.build import build_benchmarks
    from cemjax.synthetic import write_benchmarks

    root, data_dir = work / "benchmarks", work / "tensorflow_datasets"
    if not (work / "built").exists():
        write_benchmarks(root, size="demo", seed=seed, names=(benchmark,))
        build_benchmarks([benchmark], root, data_dir)
        (work / "built").touch()
    return data_dir


def pretrain(method: str, workdir: Path, args) -> dict:
    """The method's demo config for `args.pretrain_steps` steps with probes (batch and view size from `args` when
    set) → {"seconds", "probes": [(step, knn, linear)]}."""
    import importlib

    from cemjax import methods
    from cemjax.train.metrics import read_metrics

    config = importlib.import_module(f"cemjax.configs.{method}").get_config("demo")
    steps = args.pretrain_steps
    config.max_steps, config.probe.every, config.seed = steps, args.probe_every, args.seed
    if args.batch:
        config.batch_size = args.batch
    if args.image_size:  # SwAV: the large crops at this size, the small ones at half of it
        config.image_size = args.image_size
        if method == "swav":
            config.swav.crop_sizes = (args.image_size, args.image_size // 2)
    if method == "swav":
        config.swav.queue_length -= config.swav.queue_length % config.batch_size
    config.export_at_end = False  # fine-tuning reads the workdir's checkpoint
    timing = workdir / TIMING
    rows = read_metrics(str(workdir))
    if not (timing.exists() and rows and rows[-1]["step"] == steps):
        start = time.perf_counter()
        methods.get(method).train(config, str(workdir))
        timing.write_text(json.dumps({"seconds": time.perf_counter() - start, "steps": steps}) + "\n")
        rows = read_metrics(str(workdir))
    probes = [(r["step"], r["probe/knn"], r["probe/linear"]) for r in rows if "probe/knn" in r]
    return {"seconds": json.loads(timing.read_text())["seconds"], "probes": probes,
            "encoder": config.model.encoder}  # fmt: skip


def finetune_all(work: Path, data_dir: Path, benchmark: str, pretrained: dict[str, Path], steps: int, layer: str,
                 seed: int) -> dict[str, dict]:  # fmt: skip
    """Fine-tune from random init and every pretrained workdir, one protocol → {init name: results.json}."""
    from cemjax.seg.grid import run_grid

    def overrides(config):
        config.data.data_dir, config.seed, config.finetune_layer = str(data_dir), seed, layer
        if steps:
            config.iterations = steps

    inits = ["random", *(f"{name}={path}" for name, path in pretrained.items())]
    rows = run_grid(work / "finetune", [benchmark], inits, variant="demo", overrides=overrides,
                    log=lambda line: print(line, flush=True))  # fmt: skip
    return {r["init_name"]: r for r in rows if r["benchmark"] == benchmark}


def table(runs: dict[str, dict], tuned: dict[str, dict], args) -> str:
    first = next(iter(tuned.values()), {})
    lines = [
        f"### MoCoV2 vs SwAV at demo scale (synthetic world, {args.pretrain_steps} pretraining steps each, "
        f"batch {args.batch or 'of the demo configs'}, views {args.image_size or 96} px)",
        "",
        "| method | final kNN | final linear | fine-tune IoU | pretraining wall time |",
        "|---|---|---|---|---|",
    ]
    random_probe = list(dict.fromkeys(r["probes"][0] for r in runs.values() if r["probes"] and r["probes"][0][0] == 0))
    for name in ("random", *runs):
        iou = f"{tuned[name]['iou']:.3f}" if name in tuned else "–"
        if name == "random":
            knn = " / ".join(f"{p[1]:.3f}" for p in random_probe) or "–"
            linear = " / ".join(f"{p[2]:.3f}" for p in random_probe) or "–"
            lines.append(f"| random init | {knn} | {linear} | {iou} | – |")
            continue
        _, knn, linear = runs[name]["probes"][-1]
        lines.append(f"| {name} | {knn:.3f} | {linear:.3f} | {iou} | {runs[name]['seconds'] / 60:.1f} min |")
    lines += [
        "",
        f"Probes: kNN (k = 20, T = 0.07) and linear probe top-1 on the synthetic probe set (4 classes), every "
        f"{args.probe_every} steps; the random-init row is step 0 of the runs ({' / '.join(runs)} where the two "
        f"initial encoders differ). Fine-tuning: synthetic {args.benchmark}, "
        f"{first.get('iterations', '?')} iterations, {first.get('encoder', '?')} UNet, "
        f"finetune_layer={first.get('finetune_layer', args.finetune_layer)} for every init; IoU on its test split. "
        f"Pretraining wall time includes compilation and the probes; measured on {args.machine}.",
    ]
    return "\n".join(lines) + "\n"


def plot(runs: dict[str, dict], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    colors = {"mocov2": "tab:blue", "swav": "tab:orange"}
    for col, (ax, title) in enumerate(zip(axes, ("kNN (k = 20)", "linear probe"), strict=True)):
        initial = {}
        for name, run in runs.items():
            steps = [p[0] for p in run["probes"]]
            ax.plot(steps, [p[1 + col] for p in run["probes"]], "o-", color=colors.get(name), label=name)
            if run["probes"] and run["probes"][0][0] == 0:
                initial.setdefault(run["probes"][0][1 + col], []).append(name)
        for value, names in initial.items():  # one line per distinct random-init encoder
            ax.axhline(value, color="gray", ls=":", lw=1.2, label=f"random init ({' = '.join(names)} step 0)")
        ax.set_title(title)
        ax.set_xlabel("pretraining step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("probe top-1 accuracy")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="out/method_comparison", help="runs and builds (reused when present)")
    ap.add_argument("--pretrain-steps", type=int, default=100)
    ap.add_argument("--probe-every", type=int, default=20)
    ap.add_argument("--batch", type=int, default=0, help="pretraining batch for both (0: the demo configs')")
    ap.add_argument("--image-size", type=int, default=0, help="pretraining view size for both (0: the demo's 96)")
    ap.add_argument("--benchmark", default="lucchi_pp")
    ap.add_argument("--finetune-steps", type=int, default=0, help="0: the demo variant's iterations")
    ap.add_argument("--finetune-layer", default="none", help="none (encoder frozen) | all | auto, for every init")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--machine", default="2 shared CPU cores", help="named in the table's note")
    ap.add_argument("--table", default="", help="Markdown table path (default: <work>/method_comparison.md)")
    ap.add_argument("--png", default="", help="probe curves PNG (default: <work>/method_comparison.png)")
    args = ap.parse_args()
    from cemjax.cli.flags import quiet_library_logs

    quiet_library_logs(verbose=False)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data_dir = build_benchmark(work, args.benchmark, args.seed)
    runs = {m: pretrain(m, work / m, args) for m in METHODS}
    tuned = finetune_all(work, data_dir, args.benchmark, {m: work / m for m in METHODS}, args.finetune_steps,
                         args.finetune_layer, args.seed)  # fmt: skip
    text = table(runs, tuned, args)
    table_path = Path(args.table or work / "method_comparison.md")
    table_path.parent.mkdir(parents=True, exist_ok=True)
    table_path.write_text(text)
    plot(runs, Path(args.png or work / "method_comparison.png"))
    print("\n" + text + f"\n{table_path}; {args.png or work / 'method_comparison.png'} "
          f"({(time.perf_counter() - start) / 60:.1f} min)")  # fmt: skip


if __name__ == "__main__":
    main()
