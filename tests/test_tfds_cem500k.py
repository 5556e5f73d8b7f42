"""cem500k TFDS builder: build from the released layout (true-size edge patches), read with tfds.load (TF) and
tfds.data_source (no TF), and the pretraining batches over it (patches on a canvas, their sizes beside)."""

import subprocess
import sys

import numpy as np
import pytest

from cemjax.data.build import build_cem500k
from cemjax.data.built import data_source
from cemjax.data.pretrain import batch_loader
from cemjax.data.sources import ImageSource
from cemjax.data.testing import fake_patch_shape, patch_id, write_fake_cem500k

N = 40


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("cem500k")
    write_fake_cem500k(root / "release", n=N)
    (root / "release" / "source1" / "source1-LOC-xy_999_0-224_0-224.tiff").write_bytes(b"II*\x00not a tiff")
    version_dir = build_cem500k(root / "release", root / "tfds")
    return root, version_dir


def test_build_writes_both_formats_and_skips_corrupt(built, caplog):
    root, version_dir = built
    names = sorted(p.name for p in version_dir.iterdir())
    assert any(".tfrecord-" in n for n in names) and any(".array_record-" in n for n in names)
    source = data_source("cem500k", "train", str(root / "tfds"))
    assert len(source) == N  # the corrupt TIFF is skipped, not fatal
    assert set(source[0]) == {"image", "name", "source", "axis", "slice", "y0", "y1", "x0", "x1"}
    for i in range(N):  # every patch at its true size, as released
        image = source[i]["image"]
        assert image.dtype == np.uint8 and image.shape == (*fake_patch_shape(int(patch_id(image))), 1)
    ids = sorted(int(patch_id(source[i]["image"])) for i in range(N))
    assert ids == list(range(N))
    fast = ImageSource("cem500k", "train", str(root / "tfds"))  # the trainers' reader: same arrays
    assert all(np.array_equal(fast[i]["image"], source[i]["image"]) for i in range(N))
    ex = next(source[i] for i in range(N) if patch_id(source[i]["image"]) == 9)
    assert ex["source"].decode() == "source0" and ex["axis"].decode() == "xy" and int(ex["slice"]) == 9
    assert (int(ex["y0"]), int(ex["y1"]), int(ex["x0"]), int(ex["x1"])) == (224, 424, 448, 672)  # a 200-px edge
    assert build_cem500k(root / "release", root / "tfds") == version_dir  # second call reuses the build


def test_fresh_processes_read_with_and_without_tensorflow(built):
    root, _ = built
    code_tf = (
        "import tensorflow_datasets as tfds, tfds_cem500k; "
        f"ds = tfds.load('cem500k', split='train', data_dir={str(root / 'tfds')!r}); "
        "xs = [x['image'].numpy() for x in ds]; print(len(xs), xs[0].shape, xs[0].dtype)"
    )
    out = subprocess.run([sys.executable, "-c", code_tf], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith(f"{N} (224, 224, 1) uint8")  # the first patch is a full one
    code_np = f"""
import sys
class NoTensorFlow:  # wraps every finder so that `tensorflow` looks uninstalled
    def __init__(self, inner):
        self.inner = inner
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            return None
        return self.inner.find_spec(name, path, target)
    def invalidate_caches(self):
        getattr(self.inner, "invalidate_caches", lambda: None)()
sys.meta_path[:] = [NoTensorFlow(f) for f in sys.meta_path]
import tensorflow_datasets as tfds, tfds_cem500k
ds = tfds.data_source("cem500k", split="train", data_dir={str(root / "tfds")!r})
assert "tensorflow" not in sys.modules
print(len(ds), ds[3]["image"].shape)
"""
    out = subprocess.run([sys.executable, "-c", code_np], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith(f"{N} (224, 224, 1)")


def test_names_of_every_convention_give_provenance(tmp_path):
    from pathlib import Path

    from cemjax.data.patches import provenance

    def parse(name, shape=(224, 138)):
        got = provenance(Path(tmp_path / "src" / f"{name}.tiff"), tmp_path, shape)
        return got["source"], got["axis"], got["slice"], got["y0"], got["y1"], got["x0"], got["x1"]

    assert parse("mito_fib-LOC-xz_12_0-224_448-586") == ("mito_fib", "xz", 12, 0, 224, 448, 586)  # cemjax
    assert parse("mito_fib-LOC-1_0012_0-224_448-586") == ("mito_fib", "xz", 12, 0, 224, 448, 586)  # HEAD 3D
    assert parse("003-LOC-2d-224-448_0-138") == ("003", "2d", 0, 224, 448, 0, 138)  # HEAD 2D
    assert parse("vol-LOC-2_0099_224_448") == ("vol", "yz", 99, 224, 448, 448, 586)  # v0.1: corner + shape
    assert parse("img-LOC-2d_0_224") == ("img", "2d", 0, 0, 224, 224, 362)  # v0.1 2D
    assert parse("example5") == ("src", "", -1, -1, -1, -1, -1)  # no LOC: the folder is the source


def test_a_plain_tfds_build_is_refused_with_the_fix_then_converted(tmp_path):
    """`tfds build` (TFDS's own CLI) writes tfrecord only: reading it through grain stops at once with the command
    that adds array_record in place, and that command makes both readers work."""
    from cemjax.data.built import NotBuiltError

    write_fake_cem500k(tmp_path / "release", n=6)
    cli = "from tensorflow_datasets.scripts.cli.main import launch_cli; launch_cli()"
    done = subprocess.run(
        [sys.executable, "-c", cli, "build", "cem500k", "--imports", "tfds_cem500k",
         f"--manual_dir={tmp_path / 'release'}", f"--data_dir={tmp_path / 'tfds'}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    with pytest.raises(NotBuiltError, match=r"holds tfrecord files only .* python -m cemjax\.data\.build cem500k"):
        ImageSource("cem500k", "train", str(tmp_path / "tfds"))
    build_cem500k(tmp_path / "release", tmp_path / "tfds")
    assert len(ImageSource("cem500k", "train", str(tmp_path / "tfds"))) == 6


def test_missing_manual_dir_names_dir_and_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.*tfds build cem500k --imports tfds_cem500k"):
        build_cem500k(tmp_path / "nope", tmp_path / "tfds")


def test_pretraining_batches_put_true_sizes_on_a_canvas(built):
    root, _ = built
    loader = batch_loader(ImageSource("cem500k", "train", str(root / "tfds")), global_batch_size=10, seed=0,
                          num_epochs=1, canvas=(224, 224))  # fmt: skip
    seen = 0
    for batch in loader:
        assert batch["image"].shape == (10, 224, 224, 1) and batch["valid"].shape == (10, 2)
        for image, (h, w) in zip(batch["image"], batch["valid"], strict=True):
            assert (h, w) == fake_patch_shape(int(patch_id(image)))
            assert not image[h:].any() and not image[:, w:].any()  # zeros beyond the patch
            seen += 1
    assert seen == N
    with pytest.raises(ValueError, match="give the batches a canvas"):
        next(iter(batch_loader(ImageSource("cem500k", "train", str(root / "tfds")), global_batch_size=4, seed=0)))


def test_empty_and_mixed_size_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty does not exist or is empty"):
        build_cem500k(tmp_path / "empty", tmp_path / "tfds1")
    (tmp_path / "empty" / "notes.txt").write_text("no patches here")
    with pytest.raises(FileNotFoundError, match=r"no \.tif/\.tiff patches under .*empty"):
        build_cem500k(tmp_path / "empty", tmp_path / "tfds1")
    import tifffile

    write_fake_cem500k(tmp_path / "mixed", n=6)  # sizes mix, as released: valid
    tifffile.imwrite(tmp_path / "mixed" / "source0" / "wide.tiff", np.zeros((224, 300), np.uint16))
    build_cem500k(tmp_path / "mixed", tmp_path / "tfds2")  # the 16-bit file is skipped, counted and named
    assert len(data_source("cem500k", "train", str(tmp_path / "tfds2"))) == 6
    only_bad = tmp_path / "bad" / "source0"
    only_bad.mkdir(parents=True)
    tifffile.imwrite(only_bad / "odd.tiff", np.zeros((224, 224), np.uint16))
    with pytest.raises(ValueError, match=r"none of its 1 patch file\(s\) could be read \(first: .*odd\.tiff\)"):
        build_cem500k(tmp_path / "bad", tmp_path / "tfds3")


def test_build_with_relative_paths(tmp_path, monkeypatch):
    """Relative manual/data dirs (as `make demo` passes them) build and read back."""
    monkeypatch.chdir(tmp_path)
    write_fake_cem500k(tmp_path / "rel" / "release", n=8)
    version_dir = build_cem500k("rel/release", "rel/tfds")
    assert version_dir.is_absolute() and any(".array_record-" in p.name for p in version_dir.iterdir())
