"""Blockwise segmentation: parity with the in-memory inference, OME-Zarr that ome-zarr-py reads with the input's
spacing, instances across block borders against a whole-volume scipy labelling, a SIGKILLed run that resumes (and
never reads as complete), refusing outputs, disk full, and one-line errors for bad models and inputs."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tifffile
import toy_encoder  # noqa: F401  (registers "tiny_cnn")
import zarr
from scipy import ndimage

from cemjax.common.errors import InputError
from cemjax.convert.flax_checkpoint import load_model, save_model
from cemjax.models.spec import ModelSpec, build_model
from cemjax.seg.forward import eval_split, make_forward
from cemjax.seg.inference import predict_volume
from cemjax.seg.model_info import ModelInfo, write_model_info
from cemjax.segment.objects import label_instances
from cemjax.segment.predictor import load_predictor
from cemjax.segment.run import segment
from cemjax.synthetic import make_em_volume, write_tif, write_zarr

TESTS = os.path.dirname(__file__)
SPACING = (40.0, 8.0, 8.0)


def _model_dir(path, outputs: int):
    spec = ModelSpec(kind="unet", encoder="tiny_cnn", in_channels=1, classes=outputs)
    directory = save_model(path, build_model(spec, seed=1), spec)
    names = ("background", "membrane", "mito")[: max(2, outputs)]
    write_model_info(directory, ModelInfo(spec, names, ((0.5,), (0.2,)), "stack"))
    return str(directory)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {n: _model_dir(root / f"m{n}", n) for n in (1, 3)}


@pytest.fixture(scope="module")
def volume():
    return make_em_volume((20, 70, 90), spacing_nm=SPACING, seed=3).image


@pytest.mark.parametrize("outputs,mode", [(1, "stack"), (3, "orthoplane")])
def test_blockwise_equals_in_memory_inference(models, volume, outputs, mode):
    """One block across y and x: labels and probabilities equal `predict_volume` exactly; small blocks with a
    32 px halo agree with it nearly everywhere."""
    model, _ = load_model(models[outputs])
    graph, variables = eval_split(model)
    forward = make_forward(graph, ((0.5,), (0.2,)))
    expected = predict_volume(lambda x: forward(variables, x), volume, outputs, mode=mode, batch_size=4)
    predictor = load_predictor(models[outputs])
    labels, probs = predictor(volume, mode=mode, probabilities=True, block=(8 if mode == "stack" else None, None, None))
    assert np.array_equal(labels, expected) and probs.shape == (outputs, *volume.shape)
    small = predictor(volume, mode=mode, block=(8, 32, 32) if mode == "stack" else (32, 32, 32))
    assert (small == expected).mean() > 0.999
    assert np.array_equal(predictor(volume[5], mode="2d"), expected[5]) if mode == "stack" else True


def test_zarr_output_reads_with_ome_zarr_and_instances_match_scipy(models, volume, tmp_path):
    from ome_zarr.format import FormatV04
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    source = write_zarr(tmp_path / "in.zarr", volume, SPACING, ome_version="0.5")
    out = segment(models[3], source, tmp_path / "seg.zarr", probabilities=True, instances=True, block=(8, 32, 32),
                  progress=False)  # fmt: skip
    assert out["blocks"] == 27 and out["computed"] == 27 and out["spacing"] == SPACING
    nodes = list(Reader(parse_url(str(tmp_path / "seg.zarr" / "labels" / "segmentation"), fmt=FormatV04()))())
    label = next(n for n in nodes if n.data)
    assert label.metadata["coordinateTransformations"][0] == [{"type": "scale", "scale": list(SPACING)}]
    labels = np.asarray(label.data[0])
    assert np.array_equal(labels, load_predictor(models[3])(volume, block=(8, 32, 32)))
    root = zarr.open_group(tmp_path / "seg.zarr", mode="r")
    props = root["labels/segmentation"].attrs["image-label"]["properties"]
    assert [p["class"] for p in props] == ["background", "membrane", "mito"]
    assert root["probabilities/0"].shape == (3, *volume.shape)
    assert root["labels"].attrs["labels"] == ["segmentation", "instances"]
    ids = root["labels/instances/0"][...]
    expected = sum(ndimage.label(labels == c)[1] for c in (1, 2))
    assert ids.max() == expected and out["objects"] == expected
    rows = (tmp_path / "seg.zarr.objects.csv").read_text().splitlines()
    assert len(rows) == expected + 1 and rows[0].startswith("id,class,class_name,voxels,volume_nm3")


def test_instances_join_across_slabs_like_scipy():
    """A winding object crossing every slab and block face, plus small ones: the same partition as one
    whole-volume scipy labelling per class, numbered in raster order, with exact morphometrics."""
    labels = np.zeros((12, 20, 20), np.uint8)
    labels[:, 2, 2] = 1  # a column through every slab
    labels[11, 2:18, 2] = 1  # joined at the bottom to a wall that climbs back up
    labels[:, 17, 2] = 1
    labels[3:5, 10:12, 10:12] = 2
    labels[7, 15, 15] = 2
    ids = np.zeros(labels.shape, np.uint32)
    text = label_instances(labels, ids, (1, 2), slab=2, class_names=("bg", "a", "b"), spacing=(40, 8, 8), ndim=3)
    expected, n = ndimage.label(labels > 0)
    assert ids.max() == n == 3
    pairs = set(zip(ids[labels > 0].tolist(), expected[labels > 0].tolist(), strict=True))
    assert len(pairs) == n  # one to one
    rows = [r.split(",") for r in text.splitlines()[1:]]
    assert rows[0][:5] == ["1", "1", "a", str((labels == 1).sum()), str((labels == 1).sum() * 40 * 8 * 8)]
    assert rows[1][8:14] == ["3", "10", "10", "5", "12", "12"]
    flat = np.zeros((6, 6), np.uint8)
    flat[1:3, 1:4] = 1
    text2d = label_instances(flat, np.zeros(flat.shape, np.uint32), (1,), slab=1, class_names=("bg", "a"),
                             spacing=(1, 4, 4), ndim=2)  # fmt: skip
    assert text2d.splitlines()[1].split(",")[-2:] == [str(6 * 16), str(10 * 4.0)]


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import toy_encoder
from cemjax.cli.segment import run
sys.argv = ["cemjax-segment", "--model={model}", "--input={input}", "--output={output}", "--block=2,0,0"]
run()
"""


def _cli(script: str, **kwargs):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)  # fmt: skip


def test_killed_run_resumes_refuses_and_reports_disk_full(models, tmp_path):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    volume = make_em_volume((64, 64, 64), spacing_nm=SPACING, seed=4).image
    source = write_tif(tmp_path / "in.tif", volume, SPACING)
    output = tmp_path / "seg.zarr"
    proc = _cli(KILL_SCRIPT.format(tests=TESTS, model=models[1], input=source, output=output))
    blocks = output / ".cemjax" / "blocks"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and len(os.listdir(blocks) if blocks.exists() else ()) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(os.listdir(blocks))
    assert 3 <= done < 32, proc.stderr.read()
    assert not (output / ".cemjax" / "complete.json").exists()  # never reads as complete ...
    assert not [n for n in Reader(parse_url(str(output / "labels" / "segmentation")))() if n.data]  # ... nor as NGFF

    with pytest.raises(InputError, match="unfinished segmentation of another grid/mode"):
        segment(models[1], source, output, mode="orthoplane", progress=False)

    # disk full while resuming: a file-size limit makes every chunk write fail; one line, exit 3, still incomplete
    limit = "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
    limit += "resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.RLIM_INFINITY))\n"
    full = _cli(limit + KILL_SCRIPT.format(tests=TESTS, model=models[1], input=source, output=output))
    _, err = full.communicate(timeout=240)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert full.returncode == 3 and len(errors) == 1 and "no space left" in errors[0], err
    assert "Traceback" not in err and not (output / ".cemjax" / "complete.json").exists()

    out = segment(models[1], source, output, block=(2, None, None), progress=False)
    assert out["resumed"] and out["computed"] <= 32 - done and (output / ".cemjax" / "complete.json").exists()
    labels = zarr.open_group(output, mode="r")["labels/segmentation/0"][...]
    assert np.array_equal(labels, load_predictor(models[1])(volume, block=(2, None, None)))
    with pytest.raises(InputError, match="exists \\(a finished segmentation\\); pass --overwrite"):
        segment(models[1], source, output, block=(2, None, None), progress=False)
    again = segment(models[1], source, output, block=(2, None, None), overwrite=True, progress=False)
    assert again["computed"] == 32 and not again["resumed"]


def test_bad_models_and_inputs_are_one_line(models, volume, tmp_path):
    def error(fn, *args, **kwargs):
        with pytest.raises(InputError) as e:
            fn(*args, **kwargs)
        assert "\n" not in str(e.value)
        return str(e.value)

    bare = tmp_path / "bare"
    save_model(bare, build_model(ModelSpec(kind="unet", encoder="tiny_cnn", classes=1)),
               ModelSpec(kind="unet", encoder="tiny_cnn", classes=1))  # fmt: skip
    assert "no model.json" in error(load_predictor, bare)
    encoder = tmp_path / "encoder"
    spec = ModelSpec(kind="encoder", encoder="tiny_cnn", head=None)
    save_model(encoder, build_model(spec), spec)
    info = json.loads(open(os.path.join(models[1], "model.json")).read())
    (encoder / "model.json").write_text(json.dumps(info | {"architecture": spec.to_dict()}))
    assert "describes a encoder (tiny_cnn), not a segmentation UNet" in error(load_predictor, encoder)
    other = json.loads(open(os.path.join(models[1], "spec.json")).read()) | {"encoder": "resnet101"}
    (bare / "spec.json").write_text(json.dumps(other))
    (bare / "model.json").write_text(open(os.path.join(models[1], "model.json")).read())
    assert "unknown encoder 'resnet101'" in error(load_predictor, bare)

    rgb = np.repeat(volume[0][..., None], 3, axis=-1)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    message = error(segment, models[1], tmp_path / "rgb.tif", tmp_path / "o.tif")
    assert "3 colour channels but the model takes 1" in message and "--channel=gray" in message
    two = zarr.open_array(tmp_path / "two.zarr", mode="w", shape=(2, 4, 32, 32), dtype="uint8", zarr_format=3)
    two[...] = 1
    assert "several channels" in error(segment, models[1], tmp_path / "two.zarr", tmp_path / "o.zarr")
    plain = zarr.open_array(tmp_path / "plain.zarr", mode="w", shape=volume.shape, dtype="uint8")
    plain[...] = volume
    message = error(segment, models[1], tmp_path / "plain.zarr", tmp_path / "o.zarr")
    assert "no voxel spacing in the file; pass --spacing=SZ,SY,SX" in message
    out = segment(models[1], tmp_path / "plain.zarr", tmp_path / "o.zarr", spacing=SPACING, progress=False)
    assert out["spacing"] == SPACING and not (tmp_path / "o.zarr.objects.csv").exists()
