"""The whole demo chain, shrunken (`experiments/demo.py --tiny`): synthetic raw EM → curation on Beam → TFDS
builds → MoCoV2 → fine-tuning from the pretrained encoder and from random init → IoU table → PyTorch strict
loads → pictures. Run as a child process, as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_chain_tiny(tmp_path):
    out = tmp_path / "demo"
    env = {**os.environ, "XLA_FLAGS": ""}  # one device, as on a laptop
    cmd = [sys.executable, "experiments/demo.py", f"--out={out}", "--size=tiny", "--tiny", "--pretrain_steps=4",
           "--finetune_steps=4"]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "demo_summary.json").read_text())
    assert summary["curation"]["summary"], "curation produced no summary"
    assert set(summary["finetuning"]) == {"random", "cem500k_demo"}
    for init, row in summary["finetuning"].items():
        assert 0.0 <= row["iou"] <= 1.0, init
    assert summary["pretraining"]["encoder_diff"] < 1e-3
    assert all(d < 1e-3 for d in summary["finetuned_export_diffs"].values())
    table = (out / "finetune" / "results.md").read_text()
    assert "| lucchi_pp |" in table and "cem500k_demo" in table
    names = {Path(p).name for p in summary["pictures"]}
    for expected in ("augment_mocov2.png", "pretrain_loss_curve.png", "finetune_results.png"):
        assert expected in names, (expected, sorted(names))
    assert any("overlays" in n for n in names) and any(n.startswith("curated_sheets") for n in names)
    assert "Everything is under" in result.stdout
