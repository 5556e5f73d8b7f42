"""Throughput on any backend, against PyTorch in the same run: one table.

Rows (each in its own try, so a failing row prints `failed: <one line>` and the others still run):
  1. cemjax MoCoV2 step: ResNet-50, 224², queue 65,536, shuffle-BN in groups of 32, on-device augmentation (both
     views), bf16 compute with fp32 parameters, at the largest batch that fits (256 per device, halved on
     out-of-memory): img/s, ms/step, device memory, MFU;
  2. the same step in PyTorch (torchvision ResNet-50, AMP bf16, channels_last, `torch.compile` where it works),
     same batch, timed in interleaved rounds with row 1: row 1's ratio is img/s over row 2's;
  3. UNet-ResNet50 fine-tuning step, 512², batch 16: cemjax (3a) against smp.Unet + AMP bf16 (3b), interleaved;
  4. orthoplane inference of a 512³ uint8 volume with UNet-ResNet50 (bf16, 32 slices per call): voxels/s (of the
     volume; every voxel is predicted three times) and peak device and host memory.
Both sides augment on the device (accelerator_torch.py says how PyTorch does it); data loading is excluded: one
batch of random uint8 patches lives on the device and every step draws new views of it.

FLOPs. MFU = model FLOPs per step / step time / the chip's dense bf16 peak (datasheet: 989 TFLOP/s on H100 SXM and
H200, 756 on H100 PCIe, 312 on A100; `--peak-tflops` for another; n/a on CPU). Model FLOPs come from XLA's
cost analysis (2 per multiply-add) of the lowered eval-mode forward pass of one image, F: MoCoV2 counts
B·(3F + F) (query forward + backward at 2× forward, key forward) + 4·B·K·D for the logits against the queue and
their gradient; fine-tuning B·3F; inference 3·S slices × F. PyTorch rows use the same count (same layers). The
JSON also holds XLA's count of the whole lowered step (augmentation, BatchNorm, optimizer included), and the
bf16 matrix-product rate measured at the start (the header's "matmul").

Memory. cemjax steps: the compiled step's device bytes (`memory_analysis`: arguments + outputs + temporaries −
donated aliases); PyTorch: `torch.cuda.max_memory_allocated` over the row; row 4: the process's peak device
bytes (`memory_stats`, row 4 runs first) and the host: volume bytes + the peak rise of the resident set during
inference, as a multiple of the volume's bytes (goal ≤ 3). The JSON adds the process's peaks (device
`memory_stats`, host `ru_maxrss`) after every row. JAX allocates on demand here (XLA_PYTHON_CLIENT_PREALLOCATE
=false) so that PyTorch can use the rest of the device.

Time. `--max-seconds` (default 420) bounds the run: rows run in the order 4, 1+2, 3; a group starts only if the
time left covers its estimate (NEED_S: compile included); row 2 uses `torch.compile` only if its estimate (100 s)
still leaves the timing and row 3 their time; each group's timed rounds stop after TIMED_S (30) seconds. All
these estimates are guesses until a GPU run replaces them. At --max-seconds + GRACE_S (30 s) a watchdog thread
stops the run wherever it is (an XLA compile or a CUDA step does not return to Python for a signal): the rows not
done say so, the table is written and the exit status is 1. The table is also rewritten before and after every
group, so a run killed from outside still leaves the rows done. On an H200 the whole run is estimated at ~6
minutes (an estimate: not yet run on a GPU). `--tiny` runs every row with small models and shapes on CPU (in
`make test`; about 1-3 minutes on 2 shared cores, nearly all of it XLA compiling the three steps).

  python experiments/benchmarks/accelerator.py [--tiny] [--out FILE.md] [--max-seconds 420] [--rows ortho,moco,finetune]

On the device machine (wheels fetched here first by accelerator_wheels.sh; this is the `run` command, with
carry=[".whl"] and timeout_s=540):

  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit; python3 -m pip list 2>/dev/null \
    | grep -iE '^(jax|jaxlib|flax|optax|orbax-checkpoint|torch|torchvision|timm|segmentation)'; \
    nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv; PYTHONUNBUFFERED=1 \
    timeout -k 20 -s INT 470 python3 experiments/benchmarks/accelerator.py --out $OUT/accelerator.md 2>&1 \
    | tee $OUT/accelerator.log
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import statistics
import sys
import threading
import time
from dataclasses import dataclass, replace

from accelerator_table import Row, goals, one_line, render, titles, write_outputs

NEED_S = {"ortho": 60, "moco": 120, "finetune": 90}  # estimated seconds per group on an H200, compile included
TORCH_COMPILE_NEED_S = 100  # extra seconds row 2 needs to compile with torch.compile (an estimate)
TIMED_S = 30  # each group's timed rounds stop after this many seconds
GRACE_S = 30  # the watchdog stops the run this long after --max-seconds
GROUPS = ("ortho", "moco", "finetune")  # run order


@dataclass(frozen=True)
class Sizes:
    encoder: str = "resnet50"
    dtype: str = "bfloat16"  # compute dtype of cemjax's models (parameters stay float32)
    image: int = 224
    queue: int = 65_536
    per_device: int = 256  # largest MoCoV2 batch per device tried; halved on out-of-memory
    min_per_device: int = 8
    crop: int = 512
    seg_batch: int = 16
    volume: int = 512
    infer_batch: int = 32
    matmul: int = 8192
    warmup: int = 3
    rounds: int = 5
    steps: int = 10  # steps per implementation per round


TINY = Sizes(encoder="resnet18", dtype="float32", image=32, queue=256, per_device=8, min_per_device=2, crop=32,
             seg_batch=2, volume=32, infer_batch=32, matmul=256, warmup=0, rounds=1, steps=1)  # fmt: skip


class Run:
    """One benchmark run: sizes, time left, the rows so far, and where they are written."""

    def __init__(self, args, sizes: Sizes):
        self.args, self.s, self.start = args, sizes, time.perf_counter()
        self.rows: dict[str, Row] = {}
        self.header: list[str] = []
        self.info: dict = {}
        self.lock = threading.Lock()
        self.current: tuple[str, ...] = ()  # the rows of the group running now

    def left(self) -> float:
        return self.args.max_seconds - (time.perf_counter() - self.start)

    def log(self, message: str) -> None:
        print(f"[{time.perf_counter() - self.start:6.1f} s] {message}", flush=True)

    def publish(self) -> str:
        with self.lock:  # the main thread and the watchdog both publish
            table = render(self.header, [self.rows[k] for k in sorted(self.rows)], goals(self.rows, self.args.tiny))
            if self.args.out:
                write_outputs(self.args.out, table, self.info, self.rows)
            return table

    def watchdog(self) -> threading.Timer:
        """At --max-seconds + GRACE_S, stop where the run is (compiling or stepping: the main thread is then in
        XLA or CUDA, where no signal reaches Python): rows not done say so, the table is written, exit 1."""

        def stop():
            limit = f"the time limit ({self.args.max_seconds:g} + {GRACE_S} s)"
            for key, row in self.rows.items():
                if row.status == "pending":
                    row.skip(f"still running at {limit}" if key in self.current else f"not reached by {limit}")
            print("\n" + self.publish(), flush=True)
            os._exit(1)

        timer = threading.Timer(self.args.max_seconds + GRACE_S, stop)
        timer.daemon = True
        timer.start()
        return timer

    def snapshot(self, row: Row) -> None:
        """The process's memory peaks after `row` (JSON only)."""
        import accelerator_jax as J

        stats = J.memory_stats() or {}
        row.extra["process_device_peak_bytes"] = stats.get("peak_bytes_in_use")
        row.extra["host_maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def interleaved(runs: dict, rounds: int, steps: int, budget_s: float) -> tuple[dict[str, float], int]:
    """Median seconds per step of each `run(n)` over rounds that time every run in turn; stops after `budget_s`."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    start = time.perf_counter()
    for _ in range(rounds):
        for name, run in runs.items():
            t = time.perf_counter()
            run(steps)
            times[name].append((time.perf_counter() - t) / steps)
        if time.perf_counter() - start > budget_s:
            break
    return {name: statistics.median(t) for name, t in times.items()}, len(next(iter(times.values())))


def mfu(flops_per_s: float, run: Run) -> float | None:
    peak = run.info.get("peak_tflops")
    return flops_per_s / (peak * 1e12) if peak else None


def ortho_rows(run: Run) -> None:
    import accelerator_jax as J
    from orthoplane_inference import PeakRss, synthetic_volume

    s = run.s
    row = run.rows["4"]
    volume = synthetic_volume(s.volume)
    run.log(f"row 4: {s.volume}³ volume made; compiling and predicting")
    out = J.orthoplane(s.encoder, volume, s.infer_batch, PeakRss, s.dtype)
    stats = J.memory_stats() or {}
    host = (volume.nbytes + out["host_delta"]) / volume.nbytes
    flops = 3 * s.volume * J.unet_flops(s.encoder, s.volume)
    limit = f"; device limit {stats['bytes_limit'] / 2**30:.1f} GiB" if stats.get("bytes_limit") else ""
    row.fill(throughput=f"{volume.size / out['seconds'] / 1e6:,.1f} Mvoxel/s", batch=s.infer_batch,
             device_bytes=stats.get("peak_bytes_in_use"), mfu=mfu(flops / out["seconds"], run),
             note=f"{out['seconds']:.1f} s/volume; host peak {host:.2f}× the volume (goal ≤ 3×){limit}")  # fmt: skip
    row.extra |= {"seconds": out["seconds"], "host_factor": host, "voxels_per_s": volume.size / out["seconds"],
                  "volume_bytes": volume.nbytes, "model_flops": flops, "foreground": out["foreground"]}  # fmt: skip


def cpu_note(T) -> str:
    return ", float32 on CPU" if T.device().type == "cpu" else ""


def _torch_moco(run: Run, images, compile_model: bool):
    import accelerator_torch as T

    from cemjax.common.norms import CEM500K_NORMS

    s = run.s
    depth = int(s.encoder.removeprefix("resnet"))
    step, _ = T.moco_step(depth, s.image, s.queue, images, CEM500K_NORMS, compile_model=compile_model)
    step(max(1, s.warmup))  # torch.compile compiles here
    return step


def moco_rows(run: Run) -> None:
    import accelerator_jax as J

    s = run.s
    ours_row, torch_row = run.rows["1"], run.rows["2"]
    ours = J.largest_moco_step(s.encoder, s.image, s.queue, s.per_device, s.min_per_device, run.log, s.dtype)
    b = ours.batch
    run.log(f"row 1: compiled at batch {b}; warming up")
    ours.run(s.warmup)
    model_flops = b * 4 * J.encoder_flops(s.encoder, s.image) + 4 * b * s.queue * 128
    runs, torch_note = {"ours": ours.run}, ""
    images = J.patches(b, s.image)
    compile_need = TORCH_COMPILE_NEED_S + TIMED_S + NEED_S["finetune"]  # what must still fit after it
    want_compile = run.args.torch_compile == "on" or (
        run.args.torch_compile == "auto" and not run.args.tiny and run.left() > compile_need
    )
    try:
        import accelerator_torch as T

        try:
            step = _torch_moco(run, images, want_compile)
            torch_note = ("torch.compile" if want_compile else "eager") + cpu_note(T)
        except Exception as err:  # noqa: BLE001 — torch.compile may not work on this machine: fall back to eager
            if not want_compile:
                raise
            torch_note = f"eager (torch.compile failed: {one_line(err)})" + cpu_note(T)
            step = _torch_moco(run, images, False)
        runs["torch"] = step
    except Exception as err:  # noqa: BLE001
        torch_row.fail(err)
    run.log(f"rows 1-2: timing {', '.join(runs)}")
    medians, rounds = interleaved(runs, s.rounds, s.steps, TIMED_S)
    timing = f"median of {rounds} interleaved rounds × {s.steps} steps"
    ours_row.fill(batch=b, step_s=medians["ours"], device_bytes=ours.footprint, throughput_img=b / medians["ours"],
                  mfu=mfu(model_flops / medians["ours"], run), note=timing)  # fmt: skip
    ours_row.extra |= {"model_flops": model_flops, "xla_step_flops": ours.flops}
    if "torch" in medians:
        torch_row.fill(batch=b, step_s=medians["torch"], device_bytes=T.peak_bytes(T.device()),
                       throughput_img=b / medians["torch"], mfu=mfu(model_flops / medians["torch"], run),
                       ratio="1.00 (baseline)", note=f"{torch_note}; {timing}")  # fmt: skip
        ours_row.ratio = f"{medians['torch'] / medians['ours']:.2f}× row 2"


def finetune_rows(run: Run) -> None:
    import accelerator_jax as J

    s = run.s
    ours_row, smp_row = run.rows["3a"], run.rows["3b"]
    host_batch = J.seg_batch(s.seg_batch, s.crop)
    ours = J.unet_step(s.encoder, s.crop, host_batch, s.dtype)
    run.log("row 3a: compiled; warming up")
    ours.run(s.warmup)
    runs = {"ours": ours.run}
    try:
        import accelerator_torch as T

        smp = T.load_smp()
        if smp is None:
            smp_row.skip("segmentation_models_pytorch is not installed (carry it: accelerator_wheels.sh)")
        else:
            step, _ = T.smp_step(smp, s.encoder, s.crop, host_batch["image"], host_batch["mask"],
                                 (J.SEG_NORMS[0][0], J.SEG_NORMS[1][0]))  # fmt: skip
            step(max(1, s.warmup))
            runs["smp"] = step
    except Exception as err:  # noqa: BLE001
        smp_row.fail(err)
    run.log(f"row 3: timing {', '.join(runs)}")
    medians, rounds = interleaved(runs, s.rounds, s.steps, TIMED_S)
    flops = s.seg_batch * 3 * J.unet_flops(s.encoder, s.crop)
    timing = f"median of {rounds} interleaved rounds × {s.steps} steps"
    ours_row.fill(batch=s.seg_batch, step_s=medians["ours"], device_bytes=ours.footprint,
                  throughput_img=s.seg_batch / medians["ours"], mfu=mfu(flops / medians["ours"], run), note=timing,
                  ratio="n/a (no baseline)")  # fmt: skip
    ours_row.extra |= {"model_flops": flops, "xla_step_flops": ours.flops}
    if "smp" in medians:
        smp_row.fill(batch=s.seg_batch, step_s=medians["smp"], device_bytes=T.peak_bytes(T.device()),
                     throughput_img=s.seg_batch / medians["smp"], mfu=mfu(flops / medians["smp"], run),
                     ratio="1.00 (baseline)", note=f"eager{cpu_note(T)}; {timing}")  # fmt: skip
        ours_row.ratio = f"{medians['smp'] / medians['ours']:.2f}× smp"


GROUP_ROWS = {"ortho": (ortho_rows, ("4",)), "moco": (moco_rows, ("1", "2")), "finetune": (finetune_rows, ("3a", "3b"))}


def describe(run: Run) -> None:
    import accelerator_jax as J
    import jax

    dev = jax.devices()[0]
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "not installed"
    peak = run.args.peak_tflops or J.datasheet_peak_tflops(dev.device_kind)
    run.log(f"{dev.platform} {dev.device_kind} × {len(jax.devices())}; measuring the bf16 matmul rate")
    n = run.s.matmul if dev.platform != "cpu" else min(run.s.matmul, 1024)  # 8192³ in bf16 takes minutes on a CPU
    measured = J.matmul_tflops(n)
    run.info |= {"platform": dev.platform, "device_kind": dev.device_kind, "devices": len(jax.devices()),
                 "jax": jax.__version__, "torch": torch_version, "peak_tflops": peak, "matmul_tflops": measured,
                 "matmul_n": n, "sizes": run.s.__dict__, "tiny": run.args.tiny}  # fmt: skip
    mode = "tiny (CPU smoke run: small models and shapes)" if run.args.tiny else "full"
    run.header = [
        f"Accelerator benchmark ({mode}): {dev.platform} {dev.device_kind} × {len(jax.devices())}, "
        f"jax {jax.__version__}, torch {torch_version}",
        f"MFU against {f'{peak:g} TFLOP/s (dense bf16)' if peak else 'n/a (no peak known)'}; "
        f"measured bf16 matmul {n}³: {measured:,.2f} TFLOP/s",
    ]


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="small models and shapes: every row in seconds on CPU")
    ap.add_argument("--out", default="", help="write the table (Markdown) here and its numbers next to it (.json)")
    ap.add_argument("--max-seconds", type=float, default=420.0, help="time budget of the whole run (s)")
    ap.add_argument("--rows", default=",".join(GROUPS), help=f"comma-separated groups among {', '.join(GROUPS)}")
    ap.add_argument("--torch-compile", choices=("auto", "on", "off"), default="auto",
                    help="row 2: auto = torch.compile unless --tiny or short of time")  # fmt: skip
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="dense bf16 peak for MFU (default: by device)")
    ap.add_argument("--per-device", type=int, default=0,
                    help="row 1: MoCoV2 batch per device tried first (default 256, tiny 8; halved on OOM)")  # fmt: skip
    args = ap.parse_args(argv)
    groups = [g for g in args.rows.split(",") if g]
    if not groups or any(g not in GROUPS for g in groups):
        ap.error(f"--rows {args.rows!r}: use a comma-separated list of {', '.join(GROUPS)}")
    if args.max_seconds <= 0 or args.peak_tflops < 0 or args.per_device < 0:
        ap.error("--max-seconds must be > 0, --peak-tflops and --per-device ≥ 0")
    args.groups = [g for g in GROUPS if g in groups]
    return args


def configure_environment() -> None:
    """Before JAX starts: allocate device memory on demand, since PyTorch shares the device in this process."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


def release_device_memory() -> None:
    """Free what a finished group left (its steps are unreachable now) and hand PyTorch's cache back."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_groups(run: Run) -> None:
    """Each asked-for group in GROUPS order if the time left covers it; the table is rewritten after each."""
    args = run.args
    for group in GROUPS:
        fn, keys = GROUP_ROWS[group]
        if group not in args.groups:
            for k in keys:
                run.rows[k].skip("not asked for (--rows)")
            continue
        need = 0 if args.tiny else NEED_S[group]
        if run.left() < need:
            for k in keys:
                run.rows[k].skip(f"{run.left():.0f} s left of --max-seconds {args.max_seconds:g}, needs ~{need} s")
            continue
        run.log(f"group {group}: rows {', '.join(keys)}")
        run.current = keys
        run.publish()
        try:
            fn(run)
        except Exception as err:  # noqa: BLE001 — one failing group must not stop the others
            for k in keys:
                if run.rows[k].status == "pending":
                    run.rows[k].fail(err)
        for k in keys:
            run.snapshot(run.rows[k])
        release_device_memory()
        run.publish()


def main(argv=None) -> int:
    args = parse(argv)
    configure_environment()
    sizes = TINY if args.tiny else Sizes()
    run = Run(args, replace(sizes, per_device=args.per_device) if args.per_device else sizes)
    for key, title in titles(run.s).items():
        run.rows[key] = Row(key, title)
    run.publish()
    run.watchdog()
    try:
        from cemjax.models.cpu_grads import gradient_mode

        # tiny runs trace XLA's own convolution gradients: the graph a GPU compiles, which XLA:CPU compiles faster
        # than its CPU-only replacements (cemjax.models.cpu_grads)
        with gradient_mode("native" if args.tiny else "auto"):
            describe(run)
            run_groups(run)
    except KeyboardInterrupt:  # stopped from outside (timeout -s INT): keep what is done
        pending(run, lambda row: row.skip("interrupted"))
    except Exception as err:  # noqa: BLE001 — the run cannot start (no JAX, no device): every row says why
        for row in run.rows.values():
            if row.status == "pending":
                row.fail(err)
    table = run.publish()
    print("\n" + table, flush=True)
    return 0 if all(row.status != "failed" for row in run.rows.values()) else 1


def pending(run: Run, mark) -> None:
    for row in run.rows.values():
        if row.status == "pending":
            mark(row)


if __name__ == "__main__":
    sys.exit(main())
