"""experiments/benchmarks/accelerator.py cannot rot: its tiny run measures every row on CPU with only what the GPU
machine has installed (the packages it lacks are blocked), and the smp baseline it carries runs a step."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "experiments" / "benchmarks"
ABSENT_ON_GPU = ("grain", "tensorflow_datasets", "tensorflow", "ml_collections", "segmentation_models_pytorch",
                 "mrcfile", "nrrd", "zarr", "apache_beam")  # fmt: skip

# As on the GPU machine: `import name` raises ModuleNotFoundError and `importlib.util.find_spec(name)` answers None
# (a None in sys.modules does both; torch probes optional packages with find_spec, so a finder that raised there
# would fail where the package is really absent).
BLOCKED_RUN = """
import runpy, sys
sys.modules.update(dict.fromkeys({absent!r}))
sys.path.insert(0, {bench!r})
sys.argv = [{script!r}, "--tiny", "--out", {out!r}]
runpy.run_path({script!r}, run_name="__main__")
"""


def test_tiny_run_measures_every_row_without_the_packages_the_gpu_lacks(tmp_path):
    out = tmp_path / "accelerator.md"
    script = textwrap.dedent(BLOCKED_RUN).format(absent=ABSENT_ON_GPU, bench=str(BENCH),
                                                script=str(BENCH / "accelerator.py"), out=str(out))  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XLA_FLAGS": "", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = out.read_text()
    assert table in done.stdout  # the same table is printed last
    rows = {r["key"]: r for r in json.loads(out.with_suffix(".json").read_text())["rows"]}
    assert sorted(rows) == ["1", "2", "3a", "3b", "4"]
    for key in ("1", "2", "3a"):
        assert rows[key]["status"] == "ok", rows[key]["note"]
        assert rows[key]["img_per_s"] > 0 and rows[key]["step_s"] > 0 and rows[key]["batch"] > 0
    assert rows["1"]["extra"]["model_flops"] > 0 and rows["1"]["extra"]["xla_step_flops"] > 0
    assert rows["1"]["device_bytes"] > 0 and "× row 2" in rows["1"]["ratio"]
    assert rows["3b"]["status"] == "skipped" and "segmentation_models_pytorch is not installed" in rows["3b"]["note"]
    assert rows["4"]["status"] == "ok", rows["4"]["note"]
    assert rows["4"]["extra"]["voxels_per_s"] > 0 and rows["4"]["extra"]["host_factor"] >= 1
    assert "| 3b |" in table and "skipped: segmentation_models_pytorch" in table and "goal " in table


def test_the_smp_baseline_steps_and_is_optional(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import accelerator_torch as T

    smp = T.load_smp()
    assert smp is not None  # installed here (the torch extra); carried as a wheel to the GPU machine
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 32, 32, 1), np.uint8)
    step, info = T.smp_step(smp, "resnet18", 32, images, (images > 128).astype(np.uint8), (0.58, 0.1))
    step(1)
    assert info["device"].type in ("cpu", "cuda")
    monkeypatch.setitem(sys.modules, "segmentation_models_pytorch", None)  # an import of it now fails
    assert T.load_smp() is None


def test_the_moco_batch_is_halved_until_it_fits(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import accelerator_jax as J

    tried = []

    def fake_step(encoder, size, queue, images, dtype):
        tried.append(images.shape[0])
        if images.shape[0] > 64:
            raise J.OutOfMemory("RESOURCE_EXHAUSTED: out of memory while trying to allocate")
        return images.shape[0]

    monkeypatch.setattr(J, "moco_step", fake_step)
    monkeypatch.setattr(J.jax, "devices", lambda: [object()] * 2)
    assert J.largest_moco_step("resnet50", 8, 1024, 256, 8, lambda _: None) == 64
    assert tried == [512, 256, 128, 64]
    monkeypatch.setattr(J, "moco_step", lambda *a: (_ for _ in ()).throw(J.OutOfMemory("too big")))
    try:
        J.largest_moco_step("resnet50", 8, 1024, 32, 8, lambda _: None)
    except J.OutOfMemory as err:
        assert "not halving below 8" in str(err)
    else:
        raise AssertionError("no OutOfMemory")
