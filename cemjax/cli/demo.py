"""The offline demo: `make demo` (or `cemjax-demo --out out/demo`, `python experiments/demo.py`).

Stages (each prints what it did and where the results are):
1. a synthetic EM world: raw 2D/3D collection in real formats, benchmark layouts, contact sheets;
2. curation of the raw collection on Apache Beam (cross-sections → 224 patches → dHash dedup → pre-filter);
3. the TFDS `cem500k` build of the curated patches and the `cem_benchmarks` build of the demo benchmark;
4. MoCoV2 pretraining of a small encoder on that build (the config's `demo` variant, shortened), with a sheet
   of its augmented views;
5. fine-tuning a UNet on the synthetic benchmark from the pretrained encoder and from random init under the
   same protocol, scored as the paper scores it: the IoU table (Markdown, CSV, PNG) and overlay PNGs;
6. PyTorch: the pretrained encoder into torchvision and the fine-tuned UNet into segmentation_models_pytorch
   (strict loads, output differences), and a 1-channel ResNet-50 and UNet-ResNet50 exported the same way;
7. every picture copied into `<out>/pictures/`.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
from absl import flags
from flax import nnx

from cemjax import methods
from cemjax.benchmarks import get
from cemjax.cli.flags import quiet_library_logs, run_guarded
from cemjax.configs.mocov2 import get_config as mocov2_config
from cemjax.convert import export_resnet, export_unet, import_resnet, torch_available
from cemjax.convert.files import TORCH_EXTRA
from cemjax.convert.flax_checkpoint import load_model, save_model
from cemjax.convert.verify import verify_in_torch
from cemjax.curate.manifest import format_summary
from cemjax.curate.pipeline import CurateConfig
from cemjax.curate.pipeline import run as run_curation
from cemjax.data.build import build_benchmarks, build_cem500k
from cemjax.data.built import data_source
from cemjax.methods.mocov2.data import write_mocov2_sheet
from cemjax.models import ModelSpec, build_encoder, build_model
from cemjax.seg.grid import run_grid, write_table
from cemjax.synthetic import write_world

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "out/demo", "Output folder (created).")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic world and the model init.")
flags.DEFINE_enum("size", "demo", ["tiny", "small", "demo"], "Synthetic world preset ('tiny': the test chain).")
flags.DEFINE_integer("pretrain_steps", 120, "MoCoV2 steps in the demo (the demo config's full run is longer).")
flags.DEFINE_string("benchmark", "lucchi_pp", "Synthetic benchmark to fine-tune on (cemjax.benchmarks).")
flags.DEFINE_integer("finetune_steps", 0, "Fine-tuning iterations per init (0: the benchmark config's demo variant).")
flags.DEFINE_string(
    "finetune_layer",
    "none",
    "Freeze policy for BOTH inits: 'none' = encoder frozen (the paper's protocol for pretrained encoders, here "
    "applied to random init too); 'all' = full fine-tuning; 'auto' = the paper's pairing.",
)
flags.DEFINE_bool(
    "tiny", False, "Use the configs' `test` variants (tiny models, a few steps): the chain in `make test`."
)
flags.DEFINE_bool("full_size_exports", False, "Also export and check a 1-channel ResNet-50 and UNet-ResNet50.")


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


def make_world(out: Path, seed: int, size: str, benchmarks: tuple[str, ...]) -> dict:
    with Stage(f"1. synthetic EM world ({size}) → {out}"):
        summary = write_world(out, seed=seed, size=size, benchmarks=benchmarks)
        raw = json.loads((out / summary["raw"]).read_text())
        for source in raw["sources"]:
            print(f"   raw source {source['name']:<28} {len(source['files'])} file(s)")
        for name, n in sorted(summary["benchmarks"].items()):
            print(f"   benchmark {name:<30} {n} file(s)")
        for sheet in summary["sheets"]:
            print(f"   sheet {out / sheet}")
    return summary


def curate(raw: Path, out: Path) -> dict:
    with Stage(f"2. curation on Beam: {raw} → {out}"):
        sources = sorted(str(p) for p in raw.iterdir() if p.is_dir())  # not the world's collection.json
        result = run_curation(CurateConfig(sources, str(out), progress=False))
        print("   " + format_summary(result.summary).replace("\n", "\n   "))
        print(f"   {len(result.rejected)} input(s) rejected (see rejected.csv); contact sheets in {out / 'sheets'}")
    return {"summary": result.summary, "rejected": len(result.rejected)}


def build_tfds(curated: Path, benchmarks_root: Path, benchmark: str, data_dir: Path) -> str:
    with Stage(f"3. TFDS builds: cem500k and cem_benchmarks/{benchmark} → {data_dir}"):
        version_dir = build_cem500k(curated, data_dir)
        print(f"   {version_dir} (tfrecord for tfds.load, array_record for tfds.data_source / grain)")
        print(f"   {build_benchmarks([benchmark], benchmarks_root, data_dir)[benchmark]}")
    return str(version_dir)


def augmentation_sheet(data_dir: Path, path: Path) -> str:
    source = data_source("cem500k", "train", str(data_dir))
    return write_mocov2_sheet(path, [source[int(i)]["image"] for i in np.linspace(0, len(source) - 1, 4)])


def pretrain(data_dir: Path, workdir: Path, steps: int, seed: int) -> dict:
    config = mocov2_config("test" if FLAGS.tiny else "demo")
    config.data.source, config.data.data_dir, config.max_steps, config.seed = "tfds", str(data_dir), steps, seed
    with Stage(f"4. MoCoV2 pretraining ({config.model.encoder}, {steps} steps) → {workdir}"):
        outputs = methods.get(config.method).train(config, str(workdir))
        print(f"   loss curve: {outputs.get('loss_curve')}; TensorBoard: {workdir / 'tensorboard'}")
        for name, path in outputs.get("exports", {}).items():
            print(f"   export {name}: {path}")
    return {"metrics": outputs["metrics"], "exports": outputs.get("exports", {}), "encoder": config.model.encoder}


def check_pretrained_export(pretrained: dict) -> float:
    """The exported torchvision encoder loads strictly (fc = Identity) and matches the Flax encoder."""
    import torch  # the optional torch extra; `main` checked that it is installed
    import torchvision

    path = pretrained["exports"]["torchvision"]
    net = getattr(torchvision.models, pretrained["encoder"])()
    net.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
    net.fc = torch.nn.Identity()
    net.load_state_dict(torch.load(path, weights_only=True), strict=True)
    flax_encoder = build_encoder(pretrained["encoder"], rngs=nnx.Rngs(0))
    import_resnet(flax_encoder, path)
    flax_encoder.eval()
    x = np.random.default_rng(0).random((1, 1, 128, 128), dtype=np.float32)
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(x)).numpy()
    actual = np.asarray(flax_encoder(x.transpose(0, 2, 3, 1)))
    return float(np.abs(actual - expected).max())


def export_models(out: Path, seed: int) -> list[dict]:
    rows = []
    specs = [
        ("resnet50", ModelSpec(kind="encoder", encoder="resnet50", in_channels=1, num_classes=1000), export_resnet),
        ("unet_resnet50", ModelSpec(kind="unet", encoder="resnet50", in_channels=1, classes=2), export_unet),
    ]
    for name, spec, export in specs:
        with Stage(f"6. Flax {name} (full size) → PyTorch"):
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


def finetune_both(out: Path, data_dir: Path, pretrain_workdir: Path, seed: int) -> dict:
    """The demo benchmark fine-tuned from the pretrained encoder and from random init, same protocol."""

    def overrides(config):
        config.data.data_dir, config.seed = str(data_dir), seed
        if FLAGS.finetune_steps:
            config.iterations = FLAGS.finetune_steps
        if FLAGS.finetune_layer:
            config.finetune_layer = FLAGS.finetune_layer

    inits = ["random", f"cem500k_demo={pretrain_workdir}"]
    with Stage(f"5. fine-tuning on synthetic {FLAGS.benchmark}: {', '.join(i.split('=')[0] for i in inits)}"):
        rows = run_grid(out, [FLAGS.benchmark], inits, variant="test" if FLAGS.tiny else "demo", overrides=overrides,
                        log=lambda line: print(f"   {line}", flush=True))  # fmt: skip
        paths = write_table(rows, out, title=f"synthetic {FLAGS.benchmark}: IoU on its test split")
        print("   " + open(paths["markdown"]).read().replace("\n", "\n   "))
        for name, path in paths.items():
            print(f"   table {name}: {path}")
    return {"rows": rows, "table": paths}


def check_finetuned_export(cell: Path) -> float:
    """The fine-tuned UNet's smp export loads strictly into smp.Unet and matches the Flax model."""
    model, spec = load_model(cell / "model")
    return verify_in_torch(model, spec, cell / "export" / "unet_smp.pth", size=(128, 128))


def collect_pictures(out: Path) -> list[str]:
    pictures = out / "pictures"
    pictures.mkdir(exist_ok=True)
    found = [
        *sorted((out / "world" / "sheets").glob("*.png")),
        *sorted((out / "curated" / "sheets").glob("*.png")),
        out / "augment_mocov2.png",
        out / "pretrain" / "loss_curve.png",
        out / "finetune" / "results.png",
        *sorted((out / "finetune").glob("*/*/loss_curve.png")),
        *sorted((out / "finetune").glob("*/*/overlays/*.png")),
    ]
    copied = []
    for path in found:
        if path.is_file():
            rel = path.relative_to(out)
            target = pictures / "_".join(rel.parts)
            shutil.copyfile(path, target)
            copied.append(str(target))
    return copied


def _world_benchmarks(benchmark: str) -> tuple[str, ...]:
    """The synthetic benchmarks the world must hold: the benchmark, or the sources a mixed one is cut from."""
    return tuple(name for name, _ in get(benchmark).evaluation.sources) or (benchmark,)


def main(argv) -> int:
    del argv
    if not torch_available():
        raise ImportError(f"the demo loads its exports into torchvision and smp: {TORCH_EXTRA}")
    quiet_library_logs(verbose=False)  # Orbax logs every save at INFO; the demo prints its own progress
    out = Path(FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    world = make_world(out / "world", FLAGS.seed, FLAGS.size, _world_benchmarks(FLAGS.benchmark))
    curated = curate(out / "world" / "raw", out / "curated")
    data_dir = out / "tensorflow_datasets"
    build_tfds(out / "curated", out / "world" / "benchmarks", FLAGS.benchmark, data_dir)
    pretrained = pretrain(data_dir, out / "pretrain", FLAGS.pretrain_steps, FLAGS.seed)
    sheet = augmentation_sheet(data_dir, out / "augment_mocov2.png")
    print(f"   augmented views of the curated patches: {sheet}")
    finetuned = finetune_both(out / "finetune", data_dir, out / "pretrain", FLAGS.seed)
    with Stage("6. PyTorch: the pretrained encoder → torchvision, the fine-tuned UNet → smp"):
        diff = check_pretrained_export(pretrained)
        print(f"   encoder_torchvision.pth strict load (fc = Identity): OK, max |flax − torch| = {diff:.2e}")
        unet_diffs = {}
        for row in finetuned["rows"]:
            cell = out / "finetune" / row["benchmark"] / row["init_name"]
            unet_diffs[row["init_name"]] = check_finetuned_export(cell)
            print(f"   {cell / 'export' / 'unet_smp.pth'} strict load into smp.Unet: OK, "
                  f"max |flax − torch| = {unet_diffs[row['init_name']]:.2e}")  # fmt: skip
    exports = export_models(out / "models", FLAGS.seed) if FLAGS.full_size_exports else []
    pictures = collect_pictures(out)
    summary = {
        "world": world,
        "curation": curated,
        "pretraining": {"metrics": pretrained["metrics"], "exports": pretrained["exports"], "encoder_diff": diff},
        "finetuning": {r["init_name"]: {"iou": r["iou"], "sets": r["sets"]} for r in finetuned["rows"]},
        "finetuned_export_diffs": unet_diffs,
        "exports": exports,
        "pictures": pictures,
        "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n== 7. pictures ({len(pictures)}) in {out.resolve() / 'pictures'}")
    scores = "  ".join(f"{k}: IoU {v['iou']:.3f}" for k, v in summary["finetuning"].items())
    print(f"\nDone in {summary['seconds']} s. {FLAGS.benchmark}: {scores}")
    print(f"Everything is under {out.resolve()} (summary: demo_summary.json, table: finetune/results.md).")
    return 0


def run() -> None:
    run_guarded(main)


if __name__ == "__main__":
    run()
