"""Run experiments/pretrain.py in subprocesses (for kill/resume and multi-process tests)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "pretrain.py"
CONFIG = ROOT / "experiments" / "configs" / "mocov2_cem500k.py"


def pretrain_cmd(workdir, *overrides, variant="test"):
    return [sys.executable, str(SCRIPT), f"--config={CONFIG}:{variant}", f"--workdir={workdir}", *overrides]


def subprocess_env(devices: int, cache_dir) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_COMPILATION_CACHE_DIR"] = str(cache_dir)
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    return env


def run_pretrain(workdir, *overrides, devices=1, cache_dir, timeout=600):
    result = subprocess.run(
        pretrain_cmd(workdir, *overrides),
        env=subprocess_env(devices, cache_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def run_until_line_then_signal(workdir, marker: str, *, cache_dir, sig=signal.SIGKILL, timeout=600):
    """Start a run and send `sig` once `marker` appears on stdout; read on to the end.
    Returns (exit code, everything it printed)."""
    proc = subprocess.Popen(
        pretrain_cmd(workdir),
        env=subprocess_env(1, cache_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    seen, sent = [], False
    try:
        for line in proc.stdout:
            seen.append(line)
            if marker in line and not sent:
                proc.send_signal(sig)
                sent = True
    finally:
        code = proc.wait(timeout=timeout)
    assert sent, "".join(seen)[-2000:]
    return code, "".join(seen)


def run_until_line_then_kill(workdir, marker: str, *, cache_dir, timeout=600) -> str:
    """SIGKILL a run as soon as `marker` appears on stdout; returns what it printed."""
    return run_until_line_then_signal(workdir, marker, cache_dir=cache_dir, timeout=timeout)[1]


def moco_export(workdir) -> dict:
    return torch.load(Path(workdir) / "export" / "mocov2.pth.tar", weights_only=True)
