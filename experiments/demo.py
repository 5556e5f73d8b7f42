"""The offline demo: `make demo` (or `python experiments/demo.py --out out/demo`).

Stages (each prints what it did and where the results are):
1. a synthetic EM world: raw 2D/3D collection in real formats, benchmark layouts, contact sheets;
2. a 1-channel ResNet-50 and a UNet-ResNet50 in Flax, saved as cemjax model directories;
3. export to PyTorch (.pth and .safetensors), strict load into torchvision / segmentation_models_pytorch,
   and the output difference between the frameworks on the same input.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "out/demo", "Output folder (created).")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic world and the model init.")
flags.DEFINE_enum("size", "demo", ["small", "demo"], "Synthetic world preset ('small' for a quick look).")


class Stage:
    """Prints a banner, times the block."""

    def __init__(self, title: str):
        self.title = title

    def __enter__(self):
        print(f"\n== {self.title}", flush=True)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        print(f"   ({time.perf_counter() - self.start:.1f} s)", flush=True)


def make_world(out: Path, seed: int, size: str) -> dict:
    from cemjax.synthetic import write_world

    with Stage(f"1. synthetic EM world ({size}) → {out}"):
        summary = write_world(out, seed=seed, size=size)
        raw = json.loads((out / summary["raw"]).read_text())
        for source in raw["sources"]:
            print(f"   raw source {source['name']:<28} {len(source['files'])} file(s)")
        for name, n in sorted(summary["benchmarks"].items()):
            print(f"   benchmark {name:<30} {n} file(s)")
        for sheet in summary["sheets"]:
            print(f"   sheet {out / sheet}")
    return summary


def export_models(out: Path, seed: int) -> list[dict]:
    from cemjax.convert import export_resnet, export_unet
    from cemjax.convert.flax_checkpoint import save_model
    from cemjax.convert.verify import verify_in_torch
    from cemjax.models.spec import ModelSpec, build_model

    rows = []
    specs = [
        ("resnet50", ModelSpec(kind="resnet", depth=50, in_channels=1, num_classes=1000), export_resnet),
        ("unet_resnet50", ModelSpec(kind="unet", depth=50, in_channels=1, classes=2), export_unet),
    ]
    for name, spec, export in specs:
        with Stage(f"2. Flax {name} → PyTorch"):
            model = build_model(spec, seed=seed)
            model_dir = save_model(out / name, model, spec)
            for suffix in (".pth", ".safetensors"):
                path = export(model, out / f"{name}{suffix}")
                diff = verify_in_torch(model, spec, path)
                library = "segmentation_models_pytorch.Unet" if spec.kind == "unet" else "torchvision resnet50"
                print(f"   {path.name:<26} strict load into {library}: OK, max |flax − torch| = {diff:.2e}")
                rows.append({"model": name, "file": str(path), "max_abs_diff": diff})
            print(f"   cemjax model dir: {model_dir}")
    return rows


def main(argv):
    del argv
    out = Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    world = make_world(out / "world", FLAGS.seed, FLAGS.size)
    exports = export_models(out / "models", FLAGS.seed)
    summary = {"world": world, "exports": exports, "seconds": round(time.perf_counter() - start, 1)}
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\nDone in {summary['seconds']} s. Everything is under {out.resolve()} (summary: demo_summary.json).")


if __name__ == "__main__":
    app.run(main)
