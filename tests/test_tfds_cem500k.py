"""cem500k TFDS builder: build from the released layout, read with tfds.load (TF) and tfds.data_source (no TF)."""

import subprocess
import sys

import numpy as np
import pytest

from cemjax.data.build import build_cem500k
from cemjax.data.testing import patch_id, write_fake_cem500k

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
    import tensorflow_datasets as tfds

    import tfds_cem500k  # noqa: F401

    source = tfds.data_source("cem500k", split="train", data_dir=str(root / "tfds"))
    assert len(source) == N  # the corrupt TIFF is skipped, not fatal
    ex = source[0]
    assert ex["image"].shape == (224, 224, 1) and ex["image"].dtype == np.uint8
    assert set(ex) == {"image", "name", "source", "axis", "slice", "y0", "y1", "x0", "x1"}
    ids = sorted(int(patch_id(source[i]["image"])) for i in range(N))
    assert ids == list(range(N))
    ex = next(source[i] for i in range(N) if patch_id(source[i]["image"]) == 9)
    assert ex["source"].decode() == "source0" and ex["axis"].decode() == "xy" and int(ex["slice"]) == 9
    assert (int(ex["y0"]), int(ex["y1"]), int(ex["x0"]), int(ex["x1"])) == (224, 448, 448, 672)
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
    assert out.stdout.strip().endswith(f"{N} (224, 224, 1) uint8")
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


def test_missing_manual_dir_names_dir_and_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.*tfds build cem500k --imports tfds_cem500k"):
        build_cem500k(tmp_path / "nope", tmp_path / "tfds")


def test_empty_and_mixed_size_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty does not exist or is empty"):
        build_cem500k(tmp_path / "empty", tmp_path / "tfds1")
    (tmp_path / "empty" / "notes.txt").write_text("no patches here")
    with pytest.raises(FileNotFoundError, match=r"no \.tif/\.tiff patches under .*empty"):
        build_cem500k(tmp_path / "empty", tmp_path / "tfds1")
    import tifffile

    write_fake_cem500k(tmp_path / "mixed", n=4)
    bad = tmp_path / "mixed" / "source0" / "odd.tiff"
    tifffile.imwrite(bad, np.zeros((200, 224), np.uint8))
    with pytest.raises(ValueError, match=r"odd\.tiff: patch is uint8 \(200, 224\), expected uint8 \(224, 224\)"):
        build_cem500k(tmp_path / "mixed", tmp_path / "tfds2")


def test_build_with_relative_paths(tmp_path, monkeypatch):
    """Relative manual/data dirs (as `make demo` passes them) build and read back."""
    monkeypatch.chdir(tmp_path)
    write_fake_cem500k(tmp_path / "rel" / "release", n=8)
    version_dir = build_cem500k("rel/release", "rel/tfds")
    assert version_dir.is_absolute() and any(".array_record-" in p.name for p in version_dir.iterdir())
