"""The whole chain on real EM: curation → TFDS `cem500k` → both readers → a short MoCoV2 run; one Markdown table.

    PYTHONPATH=$PWD python experiments/benchmarks/real_em.py [--real-em ../shared/real_em] [--out out/real_em]
        [--steps 30] [--images docs/images]

Inputs (from `--real-em`, see its README.md; nothing is downloaded):
- `isbi2012/images/*.png`: 30 ssTEM slices, stacked into one ImageJ TIFF with its voxel spacing (50, 4, 4) nm,
  so the curation sees one anisotropic volume (anisotropy 11.5 > 0.2: xy planes only; the run says so);
- `cem500k_examples/`: 10 released CEM500K patches (2D, two of them not square).

1. curation on Beam without a quality classifier (only the blank/saturated pre-filter), per source: files,
   patches cut, duplicates removed, blank-filtered, kept;
2. TFDS `cem500k` built from the curated patches and, separately, from the released folder as it is; each read
   back through `tfds.load` (tfrecord) and `tfds.data_source` (array_record): counts and per-patch shapes agree;
3. MoCoV2 (`mocov2:test`: ResNet-18, 32 px views, batch 8) for `--steps` steps on the curated build: loss at the
   first and last step, images/s after the first two steps (compilation);
4. contact sheets (JPEG) of kept patches and of every removed one (duplicates and pre-filtered);
5. the table, printed and written to `<out>/real_em.md`.
Exit: 0 (done, or skipped when the default folder is absent), 2 when `--real-em` is given and absent.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: Beam workers share two cores here

import argparse  # noqa: E402
import csv  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REAL_EM = ROOT.parent / "shared" / "real_em"
ISBI_SPACING = (50.0, 4.0, 4.0)  # nm (z, y, x): the ISBI 2012 stack's sections and pixels
SHEET_KEPT, SHEET_REMOVED = 32, 48  # tiles at most per sheet


def stack_isbi(folder: Path, out: Path) -> tuple[Path, np.ndarray]:
    """The slices of `folder/images` as one (z, y, x) uint8 TIFF with ISBI_SPACING; returns (path, volume)."""
    from PIL import Image

    from cemjax.synthetic.writers import write_tif

    files = sorted((folder / "images").glob("*.png"))
    volume = np.stack([np.asarray(Image.open(f).convert("L")) for f in files])
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(write_tif(out, volume, ISBI_SPACING)), volume


def curate(inputs: list[str], out: Path) -> tuple[list[dict], list[dict], float]:
    """(summary rows, manifest rows, seconds) of one curation run without a classifier."""
    from cemjax.curate.manifest import format_summary
    from cemjax.curate.pipeline import CurateConfig, run

    shutil.rmtree(out, ignore_errors=True)  # a fresh run every time (curation skips finished sources)
    result = run(CurateConfig(inputs, str(out), progress=False))
    print(format_summary(result.summary))
    with open(out / "manifest.csv", newline="") as f:
        return result.summary, list(csv.DictReader(f)), result.seconds


def source_rows(summary: list[dict], manifest: list[dict]) -> list[dict]:
    """Per source: files, cut, duplicates, blank-filtered (with the reason split), kept, notes."""
    rows = []
    for s in summary:
        mine = [r for r in manifest if r["source"] == s["source"]]
        reasons = {k: sum(r["reason"] == k for r in mine) for k in ("blank", "saturated")}
        rows.append({"source": s["source"], "files": int(s["files"]), "cut": int(s["raw"]),
                     "duplicates": int(s["raw"]) - int(s["dedup"]), "filtered": int(s["dedup"]) - int(s["filtered"]),
                     "reasons": reasons, "kept": int(s["filtered"]), "notes": s["notes"]})  # fmt: skip
    return rows


def read_back(data_dir: Path) -> dict:
    """Count and {name: shape} of `cem500k` train through tfds.load and tfds.data_source; they must agree."""
    import tensorflow_datasets as tfds

    import tfds_cem500k  # noqa: F401  (registers the builders)

    def text(v) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    loaded = tfds.load("cem500k", split="train", data_dir=str(data_dir), download=False)
    by_load = {text(ex["name"]): tuple(ex["image"].shape) for ex in tfds.as_numpy(loaded)}
    source = tfds.data_source("cem500k", split="train", data_dir=str(data_dir))
    by_source = {text(source[i]["name"]): tuple(source[i]["image"].shape) for i in range(len(source))}
    if by_load != by_source:
        diff = sorted(set(by_load.items()) ^ set(by_source.items()))[:3]
        raise SystemExit(f"real_em: tfds.load and tfds.data_source disagree on {data_dir} (first: {diff})")
    shapes: dict[tuple, int] = {}
    for shape in by_load.values():
        shapes[shape] = shapes.get(shape, 0) + 1
    return {"count": len(by_load), "data_source": len(source), "shapes": shapes, "by_name": by_load}


def build(manual_dir: Path, data_dir: Path) -> tuple[dict, float]:
    from cemjax.data.build import build_cem500k

    shutil.rmtree(data_dir, ignore_errors=True)
    t = time.perf_counter()
    version = build_cem500k(manual_dir, data_dir)
    seconds = time.perf_counter() - t
    back = read_back(data_dir)
    print(f"built {version} in {seconds:.1f} s; tfds.load {back['count']} = tfds.data_source {back['data_source']}; "
          f"shapes {fmt_shapes(back['shapes'])}")  # fmt: skip
    return back, seconds


def fmt_shapes(shapes: dict[tuple, int]) -> str:
    return ", ".join(f"{n}× {'×'.join(map(str, s[:2]))}" for s, n in sorted(shapes.items(), key=lambda x: -x[1]))


def pretrain(data_dir: Path, workdir: Path, steps: int) -> dict:
    """`mocov2:test` on the build through the CLI (its own process); loss at first/last step and images/s."""
    shutil.rmtree(workdir, ignore_errors=True)
    cmd = [sys.executable, "-m", "cemjax.cli.pretrain", "--config=mocov2:test", f"--workdir={workdir}",
           "--config.data.source=tfds", f"--config.data.data_dir={data_dir}", f"--config.max_steps={steps}",
           "--config.log_every=1", f"--config.checkpoint_every={steps}", "--config.export_at_end=False"]  # fmt: skip
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True, capture_output=True)
    seconds = time.perf_counter() - t
    if proc.returncode:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"real_em: pretraining failed (exit {proc.returncode}): {' '.join(cmd)}")
    lines = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines() if x.strip()]
    lines = [x for x in lines if "loss" in x]
    rates = [x["images_per_s"] for x in lines if x["step"] > 2 and "images_per_s" in x]
    return {"first": lines[0], "last": lines[-1], "images_per_s": float(np.median(rates)) if rates else float("nan"),
            "seconds": seconds, "command": " ".join(cmd[1:])}  # fmt: skip


def patch_pixels(row: dict, volumes: dict[str, np.ndarray]) -> np.ndarray:
    """The patch a manifest row names, cut again from its input (uint8 inputs are stored unchanged)."""
    import tifffile

    path = row["file"]
    if path not in volumes:
        volumes[path] = tifffile.imread(path)
    image = volumes[path]
    if image.ndim == 3:
        image = image[int(row["slice"])]
    return image[int(row["y0"]) : int(row["y1"]), int(row["x0"]) : int(row["x1"])]


def sheets(manifest: list[dict], out: Path, images: Path | None) -> dict[str, Path]:
    """real_em_kept.{png,jpg}: an even sample of the kept patches; real_em_removed.{png,jpg}: every removed patch
    (up to SHEET_REMOVED tiles), a duplicate followed by the exemplar it was merged into, with their Hamming
    distance. Titles: source letter (i: ISBI, c: examples), slice or image number, then the top-left corner (kept)
    or what happened (removed)."""
    from PIL import Image

    from cemjax.common.pictures import write_contact_sheet

    volumes: dict[str, np.ndarray] = {}
    by_name = {r["name"]: r for r in manifest}
    kept = [r for r in manifest if r["kept"] == "1"]
    tiles: dict[str, list[tuple[dict, str]]] = {
        "kept": [(r, "") for r in kept[:: max(1, len(kept) // SHEET_KEPT)][:SHEET_KEPT]],
        "removed": [],
    }
    for r in (r for r in manifest if r["kept"] != "1"):
        if r["reason"] == "duplicate":
            ex = by_name[r["exemplar"]]
            d = bin(int(r["hash"], 16) ^ int(ex["hash"], 16)).count("1")
            tiles["removed"] += [(r, f"dup d{d}"), (ex, "exemplar")]
        else:
            tiles["removed"].append((r, r["reason"]))
    paths = {}
    for what, picks in tiles.items():
        picks = picks[:SHEET_REMOVED]
        if not picks:
            continue
        titles = [f"{r['source'][0]}{r['slice']} {why or r['y0'] + ',' + r['x0']}" for r, why in picks]
        png = write_contact_sheet(out / f"real_em_{what}.png", [patch_pixels(r, volumes) for r, _ in picks],
                                  titles=titles, ncols=8, tile_size=112)  # fmt: skip
        jpg = out / f"real_em_{what}.jpg"
        Image.open(png).convert("RGB").save(jpg, quality=85, optimize=True)
        paths[what] = jpg
        if images is not None:
            images.mkdir(parents=True, exist_ok=True)
            shutil.copy(jpg, images / jpg.name)
    return paths


def table(sources: list[dict], inputs: dict, builds: dict, train: dict, curate_s: float, sheet_paths: dict) -> str:
    rows = [("step", "input", "result")]
    for s in sources:
        why = ", ".join(f"{k} {v}" for k, v in s["reasons"].items() if v)
        why = f" ({why})" if why else ""
        note = f"; {s['notes']}" if s["notes"] else ""
        given = inputs.get(s["source"], f"{s['files']} files")
        rows.append(("curate (pre-filter only)", f"`{s['source']}`: {given}",
                     f"{s['cut']} patches cut, {s['duplicates']} duplicates removed, {s['filtered']} blank-filtered"
                     f"{why}, **{s['kept']} kept**{note}"))  # fmt: skip
    rows.append(("curate", "both sources", f"{curate_s:.1f} s (Beam, 2 worker processes)"))
    for name, (back, seconds) in builds.items():
        shapes = fmt_shapes(back["shapes"])
        rows.append(("TFDS `cem500k` build + read", name,
                     f"built in {seconds:.1f} s; `tfds.load` {back['count']} = `tfds.data_source` "
                     f"{back['data_source']} examples, same per-patch shapes: {shapes}"))  # fmt: skip
    f, last, rate = train["first"], train["last"], train["images_per_s"]
    rows.append(("MoCoV2 `mocov2:test` (ResNet-18, 32 px views, batch 8, queue 64)", "the curated build",
                 f"loss {f['loss']:.3f} at step {f['step']} → {last['loss']:.3f} at step {last['step']} (chance "
                 f"ln(1 + 64) = {np.log(65):.2f}); {rate:.1f} images/s (median after step 2); "
                 f"{train['seconds']:.0f} s with start-up and compilation"))  # fmt: skip
    for what, path in sheet_paths.items():
        rows.append(("contact sheet", what, f"`{path.name}` ({path.stat().st_size // 1024} KB)"))
    lines = [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join([lines[0], "|---|---|---|", *lines[1:]])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real-em", type=Path, default=None, help=f"default {DEFAULT_REAL_EM}")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "real_em")
    ap.add_argument("--steps", type=int, default=30, help="MoCoV2 steps")
    ap.add_argument("--images", type=Path, default=None, help="also copy the JPEG sheets here (e.g. docs/images)")
    a = ap.parse_args()
    real = (a.real_em or DEFAULT_REAL_EM).resolve()
    isbi, examples = real / "isbi2012", real / "cem500k_examples"
    if not (isbi / "images").is_dir() or not examples.is_dir():
        print(f"real_em: skipped: no real EM samples at {real} (needs isbi2012/images/ and cem500k_examples/)")
        return 2 if a.real_em else 0
    from cemjax.cli.flags import quiet_library_logs

    quiet_library_logs(verbose=False)
    out = a.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tif, volume = stack_isbi(isbi, out / "inputs" / "isbi2012.tif")
    z, y, x = volume.shape
    print(f"ISBI 2012: {z} slices {y}×{x} stacked into {tif} (spacing z, y, x {ISBI_SPACING} nm)")
    summary, manifest, curate_s = curate([f"isbi2012={tif}", f"cem500k_examples={examples}"], out / "curated")
    sources = source_rows(summary, manifest)
    for s in sources:  # the curation's notes say which cross-sections were left out and why
        for note in filter(None, s["notes"].split("; ")):
            if "xy only" in note:
                print(f"{s['source']}: xz and yz planes not cut ({note})")
    builds = {"curated patches": build(out / "curated", out / "tfds_curated"),
              "released `cem500k_examples/` as is": build(examples, out / "tfds_examples")}  # fmt: skip
    for name, shape in sorted(builds["released `cem500k_examples/` as is"][0]["by_name"].items()):
        print(f"  {name}: {shape[0]}×{shape[1]}")
    train = pretrain(out / "tfds_curated", out / "pretrain", a.steps)
    sheet_paths = sheets(manifest, out, a.images)
    inputs = {"isbi2012": f"1 file: the {z}-slice stack"}
    md = table(sources, inputs, builds, train, curate_s, sheet_paths)
    print("\n" + md)
    (out / "real_em.md").write_text(md + "\n")
    print(f"\n{out / 'real_em.md'}; total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
