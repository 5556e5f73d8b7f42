"""cem_benchmarks TFDS builder (all ten configs from synthetic data in the reference's layouts) and the
fine-tuning grain loader that reads it."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

from cemjax.benchmarks import BENCHMARKS
from cemjax.data import benchmark_files as B
from cemjax.data.build import build_benchmark
from cemjax.data.built import data_source
from cemjax.data.finetune import CropBatches, Planes
from cemjax.data.pretrain import iterate_batches
from cemjax.synthetic import write_benchmarks

CONFIGS = tuple(BENCHMARKS)


def _source(name, split, data_dir):
    return data_source(f"cem_benchmarks/{name}", split, data_dir)


def _loader(name, data_dir, *, global_batch_size, seed, crop_size, process_index=0, process_count=1):
    """The fine-tuning trainer's input: crops of the training planes, batched by grain."""
    planes = Planes(name, "train", data_dir)
    crops = CropBatches(planes, crop_size, global_batch_size, seed, process_index, process_count)
    return iterate_batches(crops)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_reads_back_without_tensorflow(built, name):
    root, data_dir = built
    spec = BENCHMARKS[name]
    kind = spec.layout.kind
    for split, folder in spec.layout.splits:
        ds = _source(name, split, data_dir)
        if name == "all_mito":
            assert len(ds) > 0
            continue
        pairs = B.pairs(root, name, folder)
        assert len(ds) == len(pairs)
        examples = sorted((ds[i] for i in range(len(ds))), key=lambda ex: ex["name"])
        for ex, (image_path, mask_path) in zip(examples, pairs, strict=True):
            assert ex["name"].decode() == image_path.name
            image, mask, spacing = B.read_pair(image_path, mask_path, name, 3 if kind == "3d" else 2)
            got_mask = ex["labels"] if kind == "3d" else ex["mask"][..., 0]
            assert ex["image"].dtype == got_mask.dtype == np.uint8
            np.testing.assert_array_equal(ex["image"] if kind == "3d" else ex["image"][..., 0], image)
            np.testing.assert_array_equal(got_mask, mask)
            assert set(np.unique(got_mask)) <= set(range(len(spec.classes)))
            if kind == "3d":
                np.testing.assert_allclose(ex["spacing"], spacing, rtol=1e-5)


def test_urocell_nifti_orientation_and_spacing(built):
    root, _ = built
    image, spacing = B.read_array(root / "urocell/3d/test/images/fib1-0-0-0.nii.gz", 3)
    assert image.shape == (12, 64, 64)  # (z, y, x) as SimpleITK reads it; synthetic volumes are 12 × 64 × 64
    np.testing.assert_allclose(spacing, (48.0, 48.0, 48.0))  # 0.048 µm → nm


def test_all_mito_follows_the_tiling_rule(built):
    root, data_dir = built
    ds = _source("all_mito", "train", data_dir)
    names = {ds[i]["name"].decode(): i for i in range(len(ds))}
    expected = [name for name, _, _ in B.all_mito_tiles(root)]
    assert sorted(names) == sorted(expected)
    assert {n.split("/")[0] for n in names} == {s for s, _ in BENCHMARKS["all_mito"].evaluation.sources}
    # A UroCell yz plane (12 × 64 px < 5% of 256²) is dropped; an xy plane (64 × 64, ~no zeros) is kept.
    assert not any(n.startswith("urocell/fib1-1-0-3_0_") for n in names)
    key = "urocell/fib1-1-0-3_2_5_0_0"
    ex = ds[names[key]]
    labels, _ = B.read_array(root / "urocell/3d/train/masks/fib1-1-0-3.nii.gz", 3)
    np.testing.assert_array_equal(ex["mask"][..., 0], (labels[5] == 2).astype(np.uint8))  # mito (2) only → 1


def test_tile_starts_match_the_reference_and_empty_tiles_drop():
    np.testing.assert_array_equal(B.tile_starts(1000), [0, 248, 496, 744])
    np.testing.assert_array_equal(B.tile_starts(512), [0, 256])
    np.testing.assert_array_equal(B.tile_starts(100), [0])
    image = np.full((512, 512), 90, np.uint8)
    image[:, 256:] = 0
    image[300:, 300:310] = 1  # 212 × 10 px: under 5% of 256²
    mask = (np.arange(512)[None, :] % 7 == 0).repeat(512, 0).astype(np.uint8) * 2
    got = [(y, x) for y, x, _, _ in B.tiles(image, mask, label=2)]
    assert got == [(0, 0), (256, 0)]
    assert all(set(np.unique(m)) <= {0, 1} for _, _, _, m in B.tiles(image, mask, label=2))


def test_tfds_load_in_a_fresh_process(built):
    _, data_dir = built
    code = (
        "import tensorflow_datasets as tfds, tfds_cem500k\n"
        f"ds = tfds.load('cem_benchmarks/lucchi_pp', split='train', data_dir={data_dir!r})\n"
        "ex = next(iter(ds)); print(ex['image'].shape, ex['mask'].dtype.name)\n"
        f"ds = tfds.load('cem_benchmarks/guay', split='validation', data_dir={data_dir!r})\n"
        "ex = next(iter(ds)); print(tuple(ex['labels'].shape), ex['spacing'].numpy().tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[-2] == "(96, 128, 1) uint8"
    assert lines[-1] == "(12, 64, 64) [150.0, 30.0, 30.0]"  # guay spacing (50, 10, 10) nm × pixel_scale 3


def test_bad_inputs_name_the_file(tmp_path):
    write_benchmarks(tmp_path, size="small", names=("lucchi_pp", "guay"))
    from PIL import Image

    mask = tmp_path / "lucchi_pp/train/masks/mask0001.png"
    Image.fromarray(np.zeros((90, 128), np.uint8)).save(mask)
    with pytest.raises(B.BenchmarkError, match=r"mask0001\.png: mask shape \(90, 128\) differs from image"):
        B.read_pair(tmp_path / "lucchi_pp/train/images/mask0001.png", mask, "lucchi_pp", 2)
    Image.fromarray(np.full((96, 128), 255, np.uint8)).save(mask)
    with pytest.raises(B.BenchmarkError, match=r"mask0001\.png: labels \{255\} outside the class list of lucchi_pp"):
        B.read_pair(tmp_path / "lucchi_pp/train/images/mask0001.png", mask, "lucchi_pp", 2)
    (tmp_path / "lucchi_pp/train/masks/mask0000.png").unlink()
    with pytest.raises(B.BenchmarkError, match=r"images/mask0000\.png: no mask .*masks/mask0000\.png"):
        B.pairs(tmp_path, "lucchi_pp", "train")
    # Through the isolated build: the child's one-line error reaches the caller as the same exception type.
    for path in (tmp_path / "guay/3d/valid").rglob("*"):
        path.unlink() if path.is_file() else None
    for sub in ("images", "masks"):
        (tmp_path / "guay/3d/valid" / sub).rmdir()
    with pytest.raises(B.BenchmarkError, match=r"guay/3d/valid/images: missing folder of guay split 'valid'"):
        build_benchmark("guay", tmp_path, tmp_path / "tfds")


# ----------------------------------------------------------------------------------------------- loader


def test_loader_crops_match_the_source_planes(built):
    _, data_dir = built
    planes = Planes("urocell", "train", data_dir)
    assert len(planes) == 4 * (12 + 64 + 64)  # every plane along SimpleITK axes 0, 1, 2 of 4 volumes
    loader = _loader("urocell", data_dir, global_batch_size=8, seed=3, crop_size=32)
    it = iter(loader)
    batch = next(it)
    assert batch["image"].shape == batch["mask"].shape == (8, 32, 32, 1) and batch["image"].dtype == np.uint8
    assert set(np.unique(batch["mask"])) <= {0, 1, 2}
    crops = CropBatches(planes, 32, 8, seed=3)
    for j in range(8):  # every row is a crop of its plane, zero-filled beyond `valid`
        image, mask, (h, w) = crops.crop(j)
        assert tuple(batch["valid"][j]) == (h, w) == (min(image.shape[0], 32), min(image.shape[1], 32))
        np.testing.assert_array_equal(batch["image"][j, :h, :w, 0], image)
        np.testing.assert_array_equal(batch["mask"][j, :h, :w, 0], mask)
        assert not batch["image"][j, h:].any() and not batch["image"][j, :, w:].any()
    # Checkpointable: restoring the state after batch 1 replays batch 2 exactly.
    state = it.get_state()
    second = next(it)
    again = iter(loader)
    again.set_state(state)
    np.testing.assert_array_equal(next(again)["image"], second["image"])


def test_loader_is_independent_of_process_count_and_picklable(built):
    _, data_dir = built
    one = next(iter(_loader("lucchi_pp", data_dir, global_batch_size=4, seed=1, crop_size=48)))
    halves = [
        next(iter(_loader("lucchi_pp", data_dir, global_batch_size=4, seed=1, crop_size=48, process_index=i,
                          process_count=2)))
        for i in range(2)
    ]  # fmt: skip
    for key in ("image", "mask", "valid"):
        np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), one[key])
    other = next(iter(_loader("lucchi_pp", data_dir, global_batch_size=4, seed=2, crop_size=48)))
    assert not np.array_equal(other["image"], one["image"])
    planes = pickle.loads(pickle.dumps(Planes("cremi", "train", data_dir)))
    image, mask = planes[len(planes) - 1]
    assert image.shape == mask.shape == (64, 64) and len(planes) == 2 * 12  # xy planes of A and B
