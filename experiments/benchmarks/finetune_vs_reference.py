"""Fine-tuning side by side with the reference's own `evaluation/finetune.py`, on real EM, same data and budget.

    python experiments/benchmarks/finetune_vs_reference.py --reference CEM_DATASET_CHECKOUT \
        --isbi ../shared/real_em/isbi2012 --out out/finetune_vs_reference [--iterations 300 --crop 256 --batch 8]

The data: ISBI 2012 ssTEM slices, membranes as the class (labels == 0), slices 00–23 to train, 24–29 to test, in
the reference's 2D layout. Both sides: UNet-ResNet18 from random init (norms of the training split), the paper's
AdamW 0.003 / wd 0.1 under one-cycle, BCE, the reference's augmentation list (pad, RandomResizedCrop 0.08–1 of
the whole image, rotate ±180°, brightness/contrast ±0.3, flips), one core each (taskset), run at the same time.

The reference runs unchanged from a checkout of volume-em/cem-dataset with albumentations 1.3.1 (the API its
configs use; `--deps DIR` where it is installed) and two shims that change nothing it computes: `import mlflow`
resolves to an empty module (logging is off in the config) and `.cuda()` returns the object itself (no GPU here).
Both trained models are scored by cemjax's 2D evaluation (tested equal to the reference's `inference2d.py`).
Prints a table (IoU, images/s, peak RSS) and writes it with `loss_curves.png` (both losses, the reference's
bias-corrected EMA meter applied to both) into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from cemjax.benchmarks import BenchmarkSpec, Layout, Recipe, register

BENCHMARK = register(BenchmarkSpec("isbi_membranes", "ISBI 2012 ssTEM membranes (real EM).", ("background", "membrane"),
                                   Layout("isbi_membranes", "2d"), Recipe(300, 256, 8)))  # fmt: skip
TRAIN, TEST = range(0, 24), range(24, 30)
ONE_CORE_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
REFERENCE_SHIM = """
import os, runpy, sys, types, resource
import torch
sys.modules["mlflow"] = types.ModuleType("mlflow")  # logging is off: the module is imported, never called
torch.Tensor.cuda = lambda self, *a, **k: self  # no GPU: .cuda() keeps the tensor where it is
torch.nn.Module.cuda = lambda self, *a, **k: self
torch.set_num_threads(1)
evaluation = sys.argv[1]
sys.path.insert(0, evaluation)
os.chdir(evaluation)
sys.argv = [os.path.join(evaluation, "finetune.py"), *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def prepare(isbi: Path, root: Path) -> tuple[float, float]:
    """The reference's 2D layout under root/isbi_membranes; returns the training split's (mean, std) on [0, 1]."""
    from PIL import Image

    pixels = []
    for split, ids in (("train", TRAIN), ("test", TEST)):
        for sub in ("images", "masks"):
            (root / "isbi_membranes" / split / sub).mkdir(parents=True, exist_ok=True)
        for i in ids:
            image = np.asarray(Image.open(isbi / "images" / f"{i:02d}.png").convert("L"))
            labels = np.asarray(Image.open(isbi / "labels" / f"{i:02d}.png").convert("L"))
            folder = root / "isbi_membranes" / split
            Image.fromarray(image).save(folder / "images" / f"{i:02d}.png")
            Image.fromarray((labels < 128).astype(np.uint8)).save(folder / "masks" / f"{i:02d}.png")  # membrane = 1
            if split == "train":
                pixels.append(image.astype(np.float64) / 255)
    allpx = np.concatenate([p.ravel() for p in pixels])
    return float(allpx.mean()), float(allpx.std())


def reference_config(args, data_dir: Path, model_dir: Path, norms: tuple[float, float]) -> dict:
    augs = [{"aug": "PadIfNeeded", "min_height": args.crop, "min_width": args.crop},
            {"aug": "RandomResizedCrop", "height": args.crop, "width": args.crop, "scale": [0.08, 1.0],
             "ratio": [0.5, 1.5]},
            {"aug": "Rotate", "limit": 180},
            {"aug": "RandomBrightnessContrast", "brightness_limit": 0.3, "contrast_limit": 0.3},
            {"aug": "HorizontalFlip"}, {"aug": "VerticalFlip"}]  # fmt: skip
    return {
        "experiment_name": "isbi_membranes", "num_classes": 1, "class_names": ["membrane"],
        "data_dir": str(data_dir), "model_dir": str(model_dir) + "/", "logging": False, "num_save_checkpoints": 1,
        "resume": "", "bsz": args.batch, "jobs": 0, "finetune_layer": "all", "unfreeze_encoder_bn": False,
        "encoder": "resnet18", "pretraining": "random_init", "lr": 0.003, "wd": 0.1, "optim": "AdamW",
        "lr_policy": "OneCycle", "momentum": 0.9, "iters": args.iterations, "power": 0.9, "epochs": 10,
        "lr_decay_epochs": [6, 8], "norms": {"mean": norms[0], "std": norms[1]}, "metrics": ["IoU"],
        "num_prints": args.iterations // 10, "augmentations": augs,
    }  # fmt: skip


def _run_timed(cmd, env, log: Path, marker: str) -> tuple[list[float], dict]:
    """Run `cmd`, stream its stdout to `log`, timestamp every line holding `marker`; → (timestamps, rusage)."""
    stamps = []
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            out.write(line)
            if marker in line:
                stamps.append(time.perf_counter())
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[:3]} failed; see {log}")
    return stamps, {"max_rss_gb": usage.ru_maxrss / 2**20}


def run_reference(args, root: Path, out: Path, norms) -> dict:
    import yaml  # albumentations' dependency, present with --deps

    config = reference_config(args, root / "isbi_membranes", out / "reference_models", norms)
    (out / "reference.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([args.deps, os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # fmt: skip
    cmd = ["taskset", "-c", args.cores[0], sys.executable, "-c", REFERENCE_SHIM,
           str(Path(args.reference) / "evaluation"), str(out / "reference.yaml")]  # fmt: skip
    stamps, usage = _run_timed(cmd, env, out / "reference.log", "train_loss:")
    losses = [float(m) for m in re.findall(r"train_loss: ([0-9.]+)", (out / "reference.log").read_text())]
    (weights,) = (out / "reference_models").glob("*.pth")
    return {"weights": str(weights), "stamps": stamps, "losses": losses, **usage}


def run_ours(args, root: Path, out: Path, norms) -> dict:
    data_dir = out / "tfds"
    build = [sys.executable, __file__, "--_build", str(root), str(data_dir)]
    subprocess.run(build, check=True, env={**os.environ, "XLA_FLAGS": ""})
    env = {**os.environ, "XLA_FLAGS": ONE_CORE_XLA, "OMP_NUM_THREADS": "1"}
    cmd = [
        "taskset",
        "-c",
        args.cores[1],
        sys.executable,
        __file__,
        "--_train",
        str(data_dir),
        str(out / "ours"),
        json.dumps({"iterations": args.iterations, "crop": args.crop, "batch": args.batch, "norms": norms}),
    ]
    stamps, usage = _run_timed(cmd, env, out / "ours.log", "step ")
    rows = [json.loads(line) for line in (out / "ours" / "metrics.jsonl").read_text().splitlines()]
    return {"workdir": str(out / "ours"), "stamps": stamps, "losses": [r["loss"] for r in rows], **usage}


def _train(data_dir: str, workdir: str, options: str) -> None:
    from cemjax.configs.finetune import get_config
    from cemjax.seg.trainer import finetune

    o = json.loads(options)
    c = get_config("benchmark=isbi_membranes,init=random")
    c.model.encoder, c.iterations, c.crop, c.batch_size = "resnet18", o["iterations"], o["crop"], o["batch"]
    c.data.data_dir, c.data.norms, c.log_every = data_dir, ((o["norms"][0],), (o["norms"][1],)), 1
    c.checkpoint_every, c.mesh.num_devices, c.finetune_layer = o["iterations"], 1, "all"
    finetune(c, workdir, evaluate_at_end=False)


def _evaluate(data_dir: str, workdir: str, reference_weights: str, norms: str) -> None:
    import optax
    from flax import nnx

    from cemjax.configs.finetune import get_config
    from cemjax.convert import import_unet
    from cemjax.convert.flax_checkpoint import load_model
    from cemjax.models import Unet
    from cemjax.seg.evaluate import evaluate
    from cemjax.seg.step import init_state, make_predict_fn

    config = get_config("benchmark=isbi_membranes")
    mean, std = json.loads(norms)
    scores = {}
    for name in ("ours", "reference"):
        if name == "ours":
            model, _ = load_model(Path(workdir) / "model")
        else:
            model = Unet("resnet18", classes=1, rngs=nnx.Rngs(0))
            import_unet(model, reference_weights)
        graphdef, state = init_state(model, optax.identity())
        predict = make_predict_fn(graphdef, state, ((mean,), (std,)))
        result = evaluate(predict, config, data_dir, str(Path(workdir).parent / name))
        scores[name] = result["iou"]
    print("SCORES", json.dumps(scores))


def ema(values: list[float], every: int = 10, momentum: float = 0.98) -> list[float]:
    """The reference's EMAMeter (bias-corrected, reset at every print) over consecutive windows of `every`."""
    out = []
    for start in range(0, len(values) - every + 1, every):
        window = values[start : start + every]
        total = 0.0
        for v in window:
            total = total * momentum + v * (1 - momentum)
        out.append(total / (1 - momentum ** len(window)))
    return out


def images_per_s(stamps: list[float], every: int, batch: int) -> float:
    """Throughput between the first and the last progress line (compilation and start-up left out)."""
    return (len(stamps) - 1) * every * batch / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", required=True, help="a checkout of volume-em/cem-dataset")
    ap.add_argument("--deps", default="", help="folder holding albumentations 1.3.1 (pip install --target)")
    ap.add_argument("--isbi", default="../shared/real_em/isbi2012")
    ap.add_argument("--out", default="out/finetune_vs_reference")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--cores", default="0,1", help="the cores of the reference and of cemjax (taskset)")
    args = ap.parse_args()
    args.cores = args.cores.split(",")
    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    norms = prepare(Path(args.isbi), out / "data")
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:  # side by side, one core each
        ref_job = pool.submit(run_reference, args, out / "data", out, norms)
        ours_job = pool.submit(run_ours, args, out / "data", out, norms)
        ref, ours = ref_job.result(), ours_job.result()
    done = subprocess.run([sys.executable, __file__, "--_evaluate", str(out / "tfds"), ours["workdir"], ref["weights"],
                           json.dumps(norms)], capture_output=True, text=True, check=True)  # fmt: skip
    scores = json.loads(done.stdout.split("SCORES ", 1)[1])
    rows = {
        "reference (PyTorch + albumentations)": (scores["reference"], images_per_s(ref["stamps"], 10, args.batch),
                                                 ref["max_rss_gb"]),
        "cemjax": (scores["ours"], images_per_s(ours["stamps"], 1, args.batch), ours["max_rss_gb"]),
    }  # fmt: skip
    table = ["| run | test IoU | images/s (1 core) | peak RSS GB |", "|---|---|---|---|"]
    table += [f"| {k} | {iou:.3f} | {ips:.2f} | {rss:.2f} |" for k, (iou, ips, rss) in rows.items()]
    (out / "results.md").write_text("\n".join(table) + "\n")
    plot(ema(ours["losses"]), ref["losses"], out / "loss_curves.png")
    print("\n".join(table))
    print(f"loss curves: {out / 'loss_curves.png'}")


def plot(ours: list[float], reference: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, values in (("reference", reference), ("cemjax", ours)):
        ax.plot(np.arange(1, len(values) + 1) * 10, values, label=label)
    ax.set_xlabel("iteration")
    ax.set_ylabel("train loss (EMA over 10 iterations)")
    ax.set_title("UNet-ResNet18 on ISBI 2012 membranes, random init")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_build":
        from cemjax.data.build import build

        build("cem_benchmarks/isbi_membranes", sys.argv[2], sys.argv[3], isolated=False)
    elif len(sys.argv) > 1 and sys.argv[1] == "--_train":
        _train(*sys.argv[2:5])
    elif len(sys.argv) > 1 and sys.argv[1] == "--_evaluate":
        _evaluate(*sys.argv[2:6])
    else:
        main()
