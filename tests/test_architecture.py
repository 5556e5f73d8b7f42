"""The layout's promises, exercised end to end: a new encoder is one registered file (`toy_encoder.py`), a
pretraining workdir reaches fine-tuning only through `cemjax.methods`, a new benchmark is one registry entry,
and an install without PyTorch trains, evaluates and exports (safetensors) from the first step to the last."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import toy_encoder  # noqa: F401  (registers "tiny_cnn")
from flax import nnx

from cemjax import methods
from cemjax.configs import get_config
from cemjax.convert import encoder_state, to_torch_state_dict
from cemjax.convert.state import load_torch_state_dict
from cemjax.models import build_encoder
from cemjax.seg.trainer import finetune


def test_a_registered_encoder_pretrains_finetunes_and_converts(built, tmp_path):
    _, data_dir = built
    config = get_config("mocov2:test")
    config.model.encoder, config.max_steps, config.export_at_end = "tiny_cnn", 2, False
    config.mesh.num_devices = 4
    methods.get(config.method).train(config, str(tmp_path / "pretrain"))
    encoder, norms, source = methods.restore_encoder(str(tmp_path / "pretrain"))
    assert type(encoder).__name__ == "TinyCNN" and encoder.fc is None and "step 2" in source
    assert norms == tuple(config.data.norms)

    ft = get_config(f"finetune:benchmark=lucchi_pp,init={tmp_path / 'pretrain'},variant=test")
    ft.model.encoder, ft.data.data_dir, ft.iterations, ft.finetune_layer = "tiny_cnn", data_dir, 2, "stage3"
    ft.mesh.num_devices = 4
    out = finetune(ft, str(tmp_path / "finetune"))
    assert out["results"]["encoder"] == "tiny_cnn" and 0 <= out["results"]["iou"] <= 1
    # torch names by the generic rules, and back: the round trip is exact
    names = to_torch_state_dict(encoder)
    assert names["stem.0.weight"].shape == (8, 1, 3, 3) and "stage4.1.running_var" in names
    fresh = build_encoder("tiny_cnn", rngs=nnx.Rngs(5))
    load_torch_state_dict(fresh, encoder_state(encoder))
    assert all(np.array_equal(v, to_torch_state_dict(fresh)[k]) for k, v in names.items())


NO_TORCH = """
import sys
class NoTorch:  # as if the torch extra were not installed: finding or importing these fails
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "segmentation_models_pytorch"):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, NoTorch())
"""


def test_toy_benchmark_and_no_torch_install_end_to_end(built, tmp_path):
    """One `register(BenchmarkSpec(...))` gives a TFDS config, a fine-tuning recipe and an evaluation; the run
    has no PyTorch, so it says so before step 1 and writes .safetensors exports only."""
    root, _ = built
    script = NO_TORCH + textwrap.dedent(f"""
        import json
        from cemjax.benchmarks import BenchmarkSpec, Layout, Recipe, register
        register(BenchmarkSpec("toy_mito", "A toy: Lucchi++'s files, 3 steps.", ("background", "mito"),
                               Layout("lucchi_pp", "2d"), Recipe(iterations=3, crop=64, batch_size=4)))
        from cemjax import api  # after the registration: the TFDS builder lists the benchmarks on import
        from cemjax.data.build import build
        build("cem_benchmarks/toy_mito", {str(root)!r}, {str(tmp_path / "tfds")!r}, isolated=False)
        pretrain = api.get_config("mocov2:test")
        pretrain.max_steps, pretrain.mesh.num_devices = 2, 1
        run = api.pretrain(pretrain, {str(tmp_path / "pretrain")!r})
        ft = api.get_config("finetune:benchmark=toy_mito,init={tmp_path / "pretrain"},variant=test")
        ft.iterations, ft.data.data_dir, ft.mesh.num_devices = 3, {str(tmp_path / "tfds")!r}, 1
        out = api.finetune(ft, {str(tmp_path / "finetune")!r})
        print("RESULT", json.dumps({{"exports": run["exports"], "results": out["results"],
                                    "finetune": sorted(k for k in out if "smp" in k)}}))
        """)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "note: PyTorch is not installed" in done.stdout.split("step ")[0]  # said before the first step
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert list(result["exports"]) == ["safetensors"] and result["finetune"] == ["smp_safetensors"]
    assert result["results"]["benchmark"] == "toy_mito" and result["results"]["sets"]["toy_mito"]["mode"] == "2d"
    assert (tmp_path / "finetune" / "export" / "unet_smp.safetensors").is_file()
    assert not list((tmp_path / "finetune" / "export").glob("*.pth"))
