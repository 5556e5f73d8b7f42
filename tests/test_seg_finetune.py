"""Fine-tuning: benchmark configs against docs/method.md §4, encoder inits, freeze policy, exact resume, the smp
export, evaluation outputs, the grid runner and its table, and clear errors for bad input."""

import json
import shutil

import jax
import numpy as np
import pytest
from flax import nnx

from cemjax.common.norms import IMAGENET_NORMS
from cemjax.convert import export_moco, export_resnet
from cemjax.convert.flax_checkpoint import load_model
from cemjax.convert.state import WeightMismatchError, to_torch_state_dict
from cemjax.models import ResNet
from cemjax.seg.encoder_init import initialise
from cemjax.seg.grid import collect, load_config, run_grid, write_table
from cemjax.seg.trainer import finetune, resolve_finetune_layer, validate

# docs/method.md §4, Table 2 and the text: (iterations, crop, batch, output classes, eval mode)
PAPER = {
    "all_mito": (10_000, 256, 32, 1, "mixed"),
    "cremi": (5_000, 512, 16, 1, "stack"),
    "guay": (1_000, 512, 16, 7, "stack"),
    "kasthuri_pp": (10_000, 512, 16, 1, "2d"),
    "lucchi_pp": (10_000, 512, 16, 1, "2d"),
    "perez_mito": (2_500, 480, 16, 1, "2d"),
    "perez_lyso": (2_500, 480, 16, 1, "2d"),
    "perez_nuclei": (2_500, 480, 16, 1, "2d"),
    "perez_nucleoli": (2_500, 480, 16, 1, "2d"),
    "urocell": (2_500, 224, 16, 3, "orthoplane"),
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_paper_configs(name):
    c = load_config(name, "init=random")
    assert (c.iterations, c.crop, c.batch_size, c.model.num_classes, c.eval.mode) == PAPER[name]
    assert (c.optim.max_lr, c.optim.weight_decay, c.optim.pct_start) == (0.003, 0.1, 0.3)
    assert (c.optim.div_factor, c.optim.final_div_factor, c.model.encoder) == (25.0, 1e4, "resnet50")
    assert c.eval.instance_match == name.startswith("perez")


def test_class_weights_and_eval_classes():
    guay, uro = load_config("guay", ""), load_config("urocell", "")
    assert guay.loss.class_weights == (0.1, 0.1, 1.0, 1.0, 0.1, 3.0, 3.0)
    assert guay.eval.classes == (2, 3, 4, 5, 6) and guay.eval.mask_to_truth
    assert uro.loss.class_weights == (0.1, 1.0, 1.0) and uro.eval.classes == (1, 2)


def test_config_errors_are_one_clear_line():
    with pytest.raises(ValueError, match="unknown config argument 'lr'"):
        load_config("lucchi_pp", "lr=3")
    with pytest.raises(ValueError, match="unknown benchmark 'lucchi'; known: lucchi_pp"):
        load_config("lucchi", "")
    c = load_config("lucchi_pp", "init=cem500k")
    c.batch_size, c.crop = 6, 100
    with pytest.raises(ValueError) as error:
        validate(c, 4)
    message = str(error.value)
    assert "\n" not in message
    for part in ("batch_size=6", "crop=100", "init=cem500k needs weights=PATH"):
        assert part in message
    assert resolve_finetune_layer(load_config("lucchi_pp", "init=random")) == "all"
    assert resolve_finetune_layer(load_config("lucchi_pp", "init=x.pth")) == "none"


def _test_config(data_dir, arg="init=random", **changes):
    c = load_config("lucchi_pp", arg + ",variant=test")
    c.data.data_dir, c.mesh.num_devices, c.async_checkpointing = data_dir, 4, False
    c.update_from_flattened_dict(changes)
    return c


@pytest.fixture(scope="module")
def moco_file(tmp_path_factory):
    """A reference-layout MoCo checkpoint of a ResNet-18 with known weights (and norms)."""
    path = tmp_path_factory.mktemp("moco") / "mocov2.pth.tar"
    q = ResNet(18, in_channels=1, num_classes=16, head="mlp", rngs=nnx.Rngs(7))
    k = ResNet(18, in_channels=1, num_classes=16, head="mlp", rngs=nnx.Rngs(8))
    export_moco(path, q, k, np.zeros((32, 16), np.float32), 0, epoch=1, norms=(0.5, 0.125))
    return path, {key: v for key, v in to_torch_state_dict(q).items() if not key.startswith("fc.")}


@pytest.fixture(scope="module")
def frozen_run(built, moco_file, tmp_path_factory):
    """A MoCo-initialised run with layer3–4 trainable: 6 steps, checkpoints at 3 and 6, evaluated."""
    _, data_dir = built
    path, _ = moco_file
    workdir = tmp_path_factory.mktemp("ft") / "lucchi_pp" / "moco"
    c = _test_config(data_dir, f"init=cem500k,weights={path}", finetune_layer="layer3")
    return c, workdir, finetune(c, str(workdir))


def test_moco_init_freeze_and_outputs(frozen_run, moco_file):
    config, workdir, out = frozen_run
    _, encoder = moco_file
    model, spec = load_model(workdir / "model")
    assert (spec.kind, spec.encoder, spec.in_channels, spec.classes) == ("unet", "resnet18", 1, 1)
    after = to_torch_state_dict(model.encoder)
    for key, value in encoder.items():
        frozen = key.startswith(("conv1.", "bn1.", "layer1.", "layer2."))
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue  # frozen BN statistics move in train mode, as in the reference
        assert np.array_equal(after[key], value) == frozen, key
    results = json.loads((workdir / "results.json").read_text())
    assert results["finetune_layer"] == "layer3" and "mocov2.pth.tar" in results["init_source"]
    assert 0.0 <= results["iou"] <= 1.0 and results["sets"]["lucchi_pp"]["n"] == 1
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["resolved"]["norms"] == [[0.5], [0.125]]  # the checkpoint's norms
    assert all((workdir / p).exists() for p in ("loss_curve.png", "overlays/lucchi_pp_0.png", "metrics.jsonl"))
    assert list((workdir / "tensorboard").glob("events.*"))
    assert out["metrics"]["lr"] == pytest.approx(0.003 / 25 / 1e4, rel=1e-4)  # one-cycle's final lr


def test_smp_export_loads_strictly_and_matches(frozen_run):
    import segmentation_models_pytorch as smp
    import torch
    from safetensors.numpy import load_file

    _, workdir, out = frozen_run
    net = smp.Unet("resnet18", encoder_weights=None, in_channels=1, classes=1)
    net.load_state_dict(torch.load(out["smp_export"], weights_only=True), strict=True)
    safetensors = {k: torch.from_numpy(v) for k, v in load_file(out["smp_safetensors"]).items()}
    assert set(safetensors) == set(net.state_dict())
    model, _ = load_model(workdir / "model")
    model.eval()
    x = np.random.default_rng(0).random((1, 64, 64, 1), dtype=np.float32)
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    assert np.abs(np.asarray(model(x)) - expected).max() < 1e-3


def test_resume_is_exact_and_grid_skips_finished(frozen_run, tmp_path):
    """Delete the last checkpoint and the results: the grid resumes the cell from step 3 and ends at the same
    parameters, bit for bit; run again, it skips the finished cell. Then the table."""
    import orbax.checkpoint as ocp

    config, workdir, _ = frozen_run
    root = tmp_path / "grid"
    cell = root / "lucchi_pp" / "moco"
    shutil.copytree(workdir, cell)
    reference = ocp.StandardCheckpointer().restore((workdir / "checkpoints" / "6" / "state").absolute())
    shutil.rmtree(cell / "checkpoints" / "6")
    (cell / "results.json").unlink()

    def overrides(c):
        c.data.data_dir, c.mesh.num_devices, c.async_checkpointing = config.data.data_dir, 4, False
        c.finetune_layer = "layer3"

    logs = []
    run_grid(root, ["lucchi_pp"], [f"moco={config.init_weights}"], variant="test", overrides=overrides, log=logs.append)
    assert any("resumed" in line or "[run ]" in line for line in logs)
    resumed = ocp.StandardCheckpointer().restore((cell / "checkpoints" / "6" / "state").absolute())
    same = jax.tree.map(lambda a, b: np.array_equal(np.asarray(a), np.asarray(b)), reference, resumed)
    assert all(jax.tree.leaves(same))

    logs.clear()
    rows = run_grid(root, ["lucchi_pp"], [f"moco={config.init_weights}"], variant="test", log=logs.append)
    assert logs and logs[0].startswith("[skip]")
    paths = write_table(rows, root)
    table = open(paths["markdown"]).read()
    assert "| lucchi_pp |" in table and "moco" in table
    assert open(paths["csv"]).read().splitlines()[0].startswith("benchmark,init,iou")
    assert collect(root)[0]["init_name"] == "moco"


def test_wrong_architecture_and_missing_inputs(built, tmp_path):
    _, data_dir = built
    r34 = tmp_path / "resnet34.pth"
    export_resnet(ResNet(34, in_channels=1, num_classes=10, rngs=nnx.Rngs(0)), r34)
    with pytest.raises(WeightMismatchError, match="layer1.2"):
        initialise(_test_config(data_dir, f"init={r34}"))
    with pytest.raises(FileNotFoundError, match="no downloads"):
        initialise(_test_config(data_dir, "init=cem500k,weights=/nope/w.pth.tar"))
    with pytest.raises(FileNotFoundError, match="python -m cemjax.data.build cem_benchmarks/lucchi_pp"):
        finetune(_test_config(str(tmp_path / "empty_tfds")), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # the data is opened before anything is written


def test_imagenet_init_is_three_channel(built, tmp_path):
    _, data_dir = built
    weights = tmp_path / "resnet18_imagenet.pth"
    export_resnet(ResNet(18, in_channels=3, num_classes=1000, rngs=nnx.Rngs(3)), weights)
    init = initialise(_test_config(data_dir, f"init=imagenet,weights={weights}"))
    assert init.norms == IMAGENET_NORMS and init.model.encoder.conv1.kernel.shape[-2] == 3
