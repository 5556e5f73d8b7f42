"""experiments/export_torch.py end to end: model dir → .pth (verified in torchvision) → back into a model dir."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from cemjax.convert import to_torch_state_dict
from cemjax.convert.flax_checkpoint import load_model, save_model
from cemjax.models.spec import ModelSpec, build_model

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "export_torch.py"


def _run(*args):
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_export_then_import_round_trip(tmp_path):
    spec = ModelSpec(kind="encoder", encoder="resnet18", in_channels=1, num_classes=10)
    model = build_model(spec, seed=7)
    save_model(tmp_path / "model", model, spec)

    out = _run(f"--model={tmp_path / 'model'}", f"--out={tmp_path / 'r18.pth'}", "--verify")
    assert "strict load OK" in out
    assert float(out.split("max |flax - torch| = ")[1].split()[0]) < 1e-4

    _run(
        f"--import_weights={tmp_path / 'r18.pth'}",
        "--kind=encoder",
        "--encoder=resnet18",
        "--head=linear",
        "--num_classes=10",
        f"--out={tmp_path / 'back'}",
    )
    restored, restored_spec = load_model(tmp_path / "back")
    assert restored_spec == spec
    original, again = to_torch_state_dict(model), to_torch_state_dict(restored)
    assert all(np.array_equal(original[k], again[k]) for k in original)


def test_cli_refuses_ambiguous_arguments(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), f"--out={tmp_path / 'x.pth'}"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "error: give exactly one of --model / --checkpoint (export to PyTorch) or --import_weights"
    ]
