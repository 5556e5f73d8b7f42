"""Fine-tuning on your own folder: 2D pairs with a classes.json and unlabelled pixels, 3D volumes with inferred
classes, splits by fraction and by name, validation IoU during training, the self-describing model directory,
and one-line errors for bad masks and model directories."""

import json
import shutil

import numpy as np
import pytest
import toy_encoder  # noqa: F401  (registers "tiny_cnn")

import cemjax
from cemjax.common.errors import InputError
from cemjax.configs import get_config
from cemjax.data.folder import FolderPlanes, load_folder, split_pairs
from cemjax.data.folder_classes import IGNORE
from cemjax.seg.losses import bce_with_logits, weighted_cross_entropy
from cemjax.seg.trainer import finetune
from cemjax.synthetic import make_em_image, make_em_volume, write_mrc, write_png, write_tif


def _folder_2d(root, n=4, size=64):
    """n synthetic 2D pairs; masks: 1 background, 2 membrane, 0 unlabelled (top rows), PNG masks, TIF images."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(n):
        s = make_em_image((size, size), pixel_nm=8, seed=i)
        mask = np.where(s.labels == 1, 2, 1).astype(np.uint8)
        mask[:6] = 0
        write_tif(root / "images" / f"im{i}.tif", s.image, (8, 8))
        write_png(root / "masks" / f"im{i}.png", mask)
    (root / "classes.json").write_text(json.dumps({"classes": {"1": "background", "2": "membrane"}, "ignore": 0}))
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny UNet fine-tuned 4 steps on a 2D folder, validated at steps 2 and 4 on one held-out image."""
    folder = _folder_2d(tmp_path_factory.mktemp("own") / "data")
    c = get_config(f"finetune:folder={folder},init=random,variant=test")
    c.model.encoder, c.iterations, c.eval.every, c.data.validation = "tiny_cnn", 4, 2, "0.25"
    c.mesh.num_devices, c.async_checkpointing, c.checkpoint_every = 2, False, 2
    workdir = tmp_path_factory.mktemp("own_run")
    return folder, workdir, finetune(c, str(workdir))


def test_folder_run_validates_and_writes_a_self_describing_model(trained):
    folder, workdir, out = trained
    history = [json.loads(line) for line in (workdir / "validation.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [2, 4] and set(history[0]["per_class"]) == {"membrane"}
    assert all(0.0 <= h["iou"] <= 1.0 for h in history)
    info = json.loads((workdir / "model" / "model.json").read_text())
    assert info["classes"] == ["background", "membrane"] and info["outputs"] == 1 and info["eval_mode"] == "2d"
    prov = info["provenance"]
    assert prov["dataset"]["folder"] == str(folder) and len(prov["dataset"]["validation"]) == 1
    assert prov["dataset"]["ignore_value"] == 0 and prov["init"] == "random" and prov["steps"] == 4
    best = max(history, key=lambda h: (h["iou"], -h["step"]))
    assert out["results"]["model_from_step"] == best["step"] and (workdir / "overlays" / "validation_0.png").exists()
    assert list((workdir / "tensorboard").glob("events.*")) and (workdir / "best_model" / "spec.json").exists()

    predictor = cemjax.load_predictor(workdir / "model")
    image = make_em_image((64, 64), pixel_nm=8, seed=9).image
    labels = predictor(image)
    assert labels.shape == (64, 64) and labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1}
    assert predictor.classes == ("background", "membrane") and predictor.mode == "2d"


def test_early_stopping_and_resume_read_the_validation_history(trained, tmp_path):
    """patience=1 with the history saying the best was at step 2: a rerun stops at once and finishes."""
    folder, workdir, _ = trained
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy)
    shutil.rmtree(copy / "checkpoints" / "4")
    lines = [json.loads(line) for line in (copy / "validation.jsonl").read_text().splitlines()]
    lines[0]["iou"], lines[1]["iou"] = 0.9, 0.1  # step 4 worse than step 2: one validation without improvement
    (copy / "validation.jsonl").write_text("".join(json.dumps(h) + "\n" for h in lines))
    c = get_config(f"finetune:folder={folder},init=random,variant=test")
    c.model.encoder, c.iterations, c.eval.every, c.data.validation = "tiny_cnn", 4, 2, "0.25"
    c.mesh.num_devices, c.async_checkpointing, c.checkpoint_every, c.eval.patience = 2, False, 2, 1
    out = finetune(c, str(copy))
    assert out["step"] == 2 and out["results"]["model_from_step"] == 2


def test_volume_folder_infers_classes_slices_axes_and_splits(tmp_path, capsys):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    s = make_em_volume((10, 48, 40), spacing_nm=(8, 8, 8), seed=1)
    write_mrc(tmp_path / "images" / "vol.mrc", s.image, (8, 8, 8))
    write_tif(tmp_path / "masks" / "vol.tif", (s.labels == 1).astype(np.uint8) * 255, (8, 8, 8))
    pairs, table = load_folder(str(tmp_path))
    assert "no classes.json; classes inferred" in capsys.readouterr().err
    assert table.inferred and table.values == (0, 255) and table.names == ("background", "class_255")
    assert np.array_equal(pairs[0].mask, (s.labels == 1).astype(np.uint8)) and pairs[0].spacing == (8.0, 8.0, 8.0)
    train, held = split_pairs(pairs, "0.2", seed=0)
    assert train[0].image.shape[0] == 8 and held[0].image.shape[0] == 2  # one volume: the last z-planes held out
    planes = FolderPlanes(train, ("xy", "xz", "yz"))
    assert len(planes) == 8 + 48 + 40
    image, mask = planes[8 + 3]  # the 4th xz plane
    assert np.array_equal(image, train[0].image[:, 3]) and mask.shape == (8, 40)
    with pytest.raises(InputError, match="data.validation names \\['nope'\\]"):
        split_pairs(pairs, "nope")


def test_bad_masks_and_sidecars_are_one_line(tmp_path):
    folder = _folder_2d(tmp_path / "d", n=2)
    bad = np.full((64, 64), 1, np.uint8)
    bad[5, 5] = 7
    write_png(folder / "masks" / "im1.png", bad)
    with pytest.raises(InputError) as err:
        load_folder(str(folder))
    assert str(err.value).count("\n") == 0
    for part in ("im1.png", "label 7", "1 (background), 2 (membrane); unlabelled 0"):
        assert part in str(err.value)
    (folder / "classes.json").write_text('{"classes": ["only"]}')
    with pytest.raises(InputError, match="1 class\\(es\\); a segmentation needs at least two"):
        load_folder(str(folder))
    (folder / "masks" / "im1.png").unlink()
    with pytest.raises(InputError, match="no mask for image\\(s\\) im1"):
        load_folder(str(folder))


def test_losses_skip_unlabelled_pixels():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 8, 8, 1)).astype(np.float32)
    mask = rng.integers(0, 2, (2, 8, 8, 1)).astype(np.uint8)
    labelled = rng.random((2, 8, 8, 1)) < 0.6
    full = -(mask * np.log(1 / (1 + np.exp(-logits))) + (1 - mask) * np.log(1 - 1 / (1 + np.exp(-logits))))
    assert float(bce_with_logits(logits, mask, labelled)) == pytest.approx(full[labelled].mean(), rel=1e-5)
    logits3 = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    labels = rng.integers(0, 3, (2, 8, 8))
    labels_ignored = np.where(labelled[..., 0], labels, IGNORE)
    w = np.array([0.1, 1.0, 3.0], np.float32)
    logp = logits3 - np.log(np.exp(logits3).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
    keep = labelled[..., 0]
    expected = (w[labels] * nll)[keep].sum() / w[labels][keep].sum()
    got = weighted_cross_entropy(logits3, labels_ignored, w, keep)
    assert float(got) == pytest.approx(expected, rel=1e-5)
