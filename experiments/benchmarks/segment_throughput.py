"""Throughput and peak memory of `cemjax.segment` on synthetic uint8 volumes, against two baselines measured in
the same run: the in-memory path (the whole volume loaded, `cemjax.seg.inference.predict_volume`) and the exported
weights in PyTorch (`segmentation_models_pytorch.Unet`) tiled as torch-em's `predict_with_halo` is used for 2D
models on volumes (blocks of 1 × T × T with a 32 px halo, reflection padding at the borders, one block per call).

Every measurement runs in its own process (peak RSS = that process's `ru_maxrss`), on a UNet-ResNet18 with
random weights (throughput does not depend on the weights).

  OPENBLAS_NUM_THREADS=2 python experiments/benchmarks/segment_throughput.py --sizes 512x512x512,256x1024x1024
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SPACING = (8.0, 8.0, 8.0)


def make_inputs(work: str, shape) -> tuple[str, str]:
    """A UNet-ResNet18 model dir and a synthetic OME-Zarr volume of `shape`, written slab by slab."""
    import zarr

    from cemjax.convert import export_unet
    from cemjax.convert.flax_checkpoint import save_model
    from cemjax.models.spec import ModelSpec, build_model
    from cemjax.seg.model_info import ModelInfo, write_model_info
    from cemjax.synthetic import make_em_volume

    model_dir = os.path.join(work, "model")
    if not os.path.exists(os.path.join(model_dir, "model.json")):
        spec = ModelSpec(kind="unet", encoder="resnet18", in_channels=1, classes=1)
        model = build_model(spec, seed=0)
        save_model(model_dir, model, spec)
        write_model_info(model_dir, ModelInfo(spec, ("background", "foreground"), ((0.5,), (0.2,)), "stack"))
        export_unet(model, os.path.join(work, "unet_smp.pth"))
    z, y, x = shape
    path = os.path.join(work, f"vol_{z}x{y}x{x}.zarr")
    if not os.path.exists(os.path.join(path, "done")):
        tile = make_em_volume((32, 256, 256), spacing_nm=SPACING, seed=1).image
        root = zarr.open_group(path, mode="w", zarr_format=2)
        arr = root.create_array("0", shape=shape, chunks=(32, 256, 256), dtype="uint8")
        for z0 in range(0, z, 32):
            slab = np.tile(tile, (1, -(-y // 256), -(-x // 256)))[: min(32, z - z0), :y, :x]
            arr[z0 : z0 + slab.shape[0]] = np.roll(slab, z0, axis=2)
        axes = [{"name": n, "type": "space", "unit": "nanometer"} for n in "zyx"]
        root.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [
            {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": list(SPACING)}]}]}]  # fmt: skip
        open(os.path.join(path, "done"), "w").close()
    return model_dir, path


def run_ours(model_dir, path, out, mode):
    from cemjax.segment.run import segment

    t = time.perf_counter()
    segment(model_dir, path, out, mode=mode, overwrite=True, progress=False)
    return time.perf_counter() - t


def run_in_memory(model_dir, path, mode):
    import zarr

    from cemjax.convert.flax_checkpoint import load_model
    from cemjax.seg.forward import eval_split, make_forward
    from cemjax.seg.inference import predict_volume

    t = time.perf_counter()  # like cemjax.segment's time: model load, compile, read, predict
    model, _ = load_model(model_dir)
    graph, variables = eval_split(model)
    forward = make_forward(graph, ((0.5,), (0.2,)))
    volume = zarr.open_group(path, mode="r")["0"][...]
    predict_volume(
        lambda x: forward(variables, x), volume, 1, mode=mode, batch_size=max(1, (1 << 22) // volume[0].size)
    )
    return time.perf_counter() - t


def run_torch(work, path, tile=512, halo=32):
    import segmentation_models_pytorch as smp
    import torch
    import zarr

    torch.set_num_threads(int(os.environ.get("OPENBLAS_NUM_THREADS", "2")))
    t = time.perf_counter()
    net = smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=1).eval()
    net.load_state_dict(torch.load(os.path.join(work, "unet_smp.pth"), weights_only=True), strict=True)
    data = zarr.open_group(path, mode="r")["0"]
    z, y, x = data.shape
    out = np.zeros((1, y, x), np.uint8)
    with torch.inference_mode():
        for k in range(z):
            plane = np.pad(data[k], halo + 32, mode="reflect")  # reflection outside the volume
            for y0 in range(0, y, tile):
                for x0 in range(0, x, tile):  # one block + halo per call, as predict_with_halo runs a 2D model
                    y1, x1 = min(y0 + tile, y), min(x0 + tile, x)
                    h, w = y1 - y0 + 2 * halo, x1 - x0 + 2 * halo
                    h, w = h + (-h % 32), w + (-w % 32)  # the UNet's stride
                    top, left = y0 + 32, x0 + 32  # padded coordinates of y0 - halo, x0 - halo
                    block = plane[top : top + h, left : left + w].astype(np.float32) / 255.0
                    xin = torch.from_numpy((block - 0.5) / 0.2)[None, None]
                    prob = torch.sigmoid(net(xin))[0, 0].numpy()
                    out[0, y0:y1, x0:x1] = prob[halo : halo + y1 - y0, halo : halo + x1 - x0] > 0.5
    return time.perf_counter() - t


def child(args) -> None:
    work, path, what, mode = args.work, args.path, args.what, args.mode
    if what == "ours":
        seconds = run_ours(os.path.join(work, "model"), path, os.path.join(work, f"out_{mode}.zarr"), mode)
    elif what == "in_memory":
        seconds = run_in_memory(os.path.join(work, "model"), path, mode)
    else:
        seconds = run_torch(work, path)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB → MB
    print(json.dumps({"seconds": seconds, "rss_mb": rss}))


def measure(work, path, what, mode) -> dict:
    """Seconds and peak RSS of one run in a fresh process."""
    cmd = [sys.executable, __file__, "--child", what, "--work", work, "--path", path, "--mode", mode]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="512x512x512,256x1024x1024", help="ZxYxX,… volumes")
    parser.add_argument("--modes", default="stack,orthoplane")
    parser.add_argument("--baselines", default="in_memory,torch", help="which baselines to run ('' for none)")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "cemjax_segment_bench"))
    parser.add_argument("--rounds", type=int, default=1, help="runs per cell, interleaved; the median is shown")
    parser.add_argument("--child", default="")
    parser.add_argument("--path", default="")
    parser.add_argument("--mode", default="stack")
    args = parser.parse_args()
    if args.child:
        args.what = args.child
        child(args)
        return
    os.makedirs(args.work, exist_ok=True)
    rows = []
    for size in args.sizes.split(","):
        shape = tuple(int(v) for v in size.split("x"))
        _, path = make_inputs(args.work, shape)
        voxels = int(np.prod(shape))
        for mode in args.modes.split(","):
            whats = ["ours"] + [w for w in ("in_memory", "torch") if w in args.baselines]
            whats = [w for w in whats if w != "torch" or mode == "stack"]
            runs = {w: [] for w in whats}
            for _ in range(args.rounds):  # interleaved, so a busy machine slows every path alike
                for w in whats:
                    runs[w].append(measure(args.work, path, w, mode))
            got = {w: {"seconds": float(np.median([r["seconds"] for r in rs])), "rss_mb": max(r["rss_mb"] for r in rs)}
                   for w, rs in runs.items()}  # fmt: skip
            row = {"size": size, "mode": mode, "ours_vps": voxels / got["ours"]["seconds"],
                   "ours_rss": got["ours"]["rss_mb"]}  # fmt: skip
            if "in_memory" in got:
                row |= {"mem_vps": voxels / got["in_memory"]["seconds"], "mem_rss": got["in_memory"]["rss_mb"]}
            if "torch" in got:
                row |= {"torch_vps": voxels / got["torch"]["seconds"], "torch_rss": got["torch"]["rss_mb"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        "\n| volume | mode | ours voxels/s | peak RSS | in-memory voxels/s | ours ÷ in-memory | in-memory RSS "
        "| torch smp + halo tiles voxels/s | ours ÷ torch |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mem = (
            f"{r['mem_vps']:,.0f} | {r['ours_vps'] / r['mem_vps']:.2f} | {r['mem_rss']:,.0f} MB"
            if "mem_vps" in r
            else "— | — | —"
        )
        tor = f"{r['torch_vps']:,.0f} | {r['ours_vps'] / r['torch_vps']:.2f}" if "torch_vps" in r else "— | —"
        print(f"| {r['size']} | {r['mode']} | {r['ours_vps']:,.0f} | {r['ours_rss']:,.0f} MB | {mem} | {tor} |")


if __name__ == "__main__":
    main()
