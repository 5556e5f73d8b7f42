"""Faults: SIGKILL at arbitrary steps then resume ends bit-identical (subprocesses, as a real preemption)."""

import pytest
import torch
from pretrain_helpers import moco_export, run_pretrain, run_until_line_then_kill


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax_cache")


def test_sigkill_at_arbitrary_steps_then_resume_is_bit_identical(tmp_path, cache):
    reference = tmp_path / "uninterrupted"
    run_pretrain(reference, cache_dir=cache)

    workdir = tmp_path / "killed"
    run_until_line_then_kill(workdir, "step       6/", cache_dir=cache)  # checkpoints every 4 steps: last is 4
    out = run_until_line_then_kill(workdir, "step      10/", cache_dir=cache)  # resumes at 4, killed after 10
    assert "resumed from step 4" in out
    out = run_pretrain(workdir, cache_dir=cache)  # resumes at 8, runs to 16
    assert "resumed from step 8" in out

    a, b = moco_export(workdir), moco_export(reference)
    assert a["epoch"] == b["epoch"] and a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key


def test_sigterm_saves_and_exits_cleanly_then_exports_from_the_checkpoint(tmp_path, cache):
    """Preemption: SIGTERM mid-run → checkpoint at the current step, exit 0; export_torch --checkpoint on it
    writes the reference `.pth.tar` that loads into the reference layout."""
    import signal
    import subprocess
    import sys

    from pretrain_helpers import ROOT, run_until_line_then_signal, subprocess_env

    workdir = tmp_path / "preempted"
    code, printed = run_until_line_then_signal(workdir, "step       6/", cache_dir=cache, sig=signal.SIGTERM)
    assert code == 0, printed[-2000:]
    lines = printed.splitlines()
    stopped = next(line for line in lines if line.startswith("SIGTERM: saved step"))
    step = int(stopped.split("saved step ")[1].split(";")[0])
    assert 6 <= step < 16 and (workdir / "checkpoints" / str(step)).is_dir()

    script = ROOT / "experiments" / "export_torch.py"
    out = subprocess.run(
        [sys.executable, str(script), f"--checkpoint={workdir}", f"--out={tmp_path / 'x'}"],
        env=subprocess_env(1, cache), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    exported = torch.load(tmp_path / "x" / "mocov2.pth.tar", weights_only=True)
    assert exported["arch"] == "resnet18" and "module.queue" in exported["state_dict"]
    assert int(exported["state_dict"]["module.queue_ptr"][0]) == (step * 8) % 64
