"""Synthetic world on disk: every writer round-trips through its real reading library (spacing included),
files are byte-reproducible, benchmark layouts use the reference's names, the raw collection's sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import mrcfile
import nrrd
import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from cemjax import synthetic as syn

SPACING = (40.0, 8.0, 5.0)  # (sz, sy, sx) nm, every axis different


@pytest.fixture(scope="module")
def volume() -> np.ndarray:
    return syn.make_em_volume((5, 24, 32), SPACING, "neuropil", seed=0, dtype="uint16").image


def _tree_bytes(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_tif_volume_imagej_spacing(tmp_path, volume):
    path = syn.write_tif(tmp_path / "v.tif", volume, SPACING)
    with tifffile.TiffFile(path) as tif:
        data = tif.asarray()
        meta = tif.imagej_metadata
        x_res = tif.pages[0].tags["XResolution"].value
        y_res = tif.pages[0].tags["YResolution"].value
        assert len(tif.pages) == volume.shape[0]
    np.testing.assert_array_equal(data, volume)
    assert meta["spacing"] == pytest.approx(SPACING[0]) and meta["unit"] == "nm"
    assert x_res[1] / x_res[0] == pytest.approx(SPACING[2]) and y_res[1] / y_res[0] == pytest.approx(SPACING[1])


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_tif_image_dtypes(tmp_path, dtype):
    image = syn.make_em_image((32, 40), 7.0, seed=1, dtype=dtype).image
    path = syn.write_tif(tmp_path / "i.tif", image, (7.0, 7.0))
    back = tifffile.imread(path)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, image)


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_png_roundtrip_with_dpi(tmp_path, dtype):
    image = syn.make_em_image((32, 40), 6.0, seed=2, dtype=dtype).image
    path = syn.write_png(tmp_path / "i.png", image, (6.0, 6.0))
    with Image.open(path) as png:
        back = np.asarray(png)
        dpi = png.info["dpi"][0]
    np.testing.assert_array_equal(back.astype(image.dtype), image)
    assert 25.4e6 / dpi == pytest.approx(6.0, rel=1e-4)


def test_mrc_voxel_size_in_angstrom(tmp_path, volume):
    path = syn.write_mrc(tmp_path / "v.mrc", volume, SPACING)
    with mrcfile.open(path, permissive=False) as mrc:
        np.testing.assert_array_equal(mrc.data, volume)
        assert mrc.header.mode == 6
        voxel = mrc.voxel_size
        assert (float(voxel.x), float(voxel.y), float(voxel.z)) == pytest.approx((50.0, 80.0, 400.0))


def test_mrc_uint8_is_signed_mode0(tmp_path):
    image = syn.make_em_volume((3, 16, 16), (8.0, 8.0, 8.0), seed=0).image
    path = syn.write_mrc(tmp_path / "b.mrc", image, (8.0, 8.0, 8.0))
    with mrcfile.open(path) as mrc:
        assert mrc.header.mode == 0 and mrc.data.dtype == np.int8
        np.testing.assert_array_equal(mrc.data.astype(np.int16) + 128, image)


def test_nrrd_space_directions(tmp_path, volume):
    path = syn.write_nrrd(tmp_path / "v.nrrd", volume, SPACING)
    data, header = nrrd.read(path, index_order="C")
    np.testing.assert_array_equal(data, volume)
    np.testing.assert_allclose(np.diag(header["space directions"]), SPACING[::-1])  # NRRD lists x first


def test_h5_attrs(tmp_path, volume):
    path = syn.write_h5(tmp_path / "v.h5", volume, SPACING, dataset="volumes/raw")
    syn.write_h5(path, (volume > 30000).astype(np.uint8), SPACING, dataset="volumes/labels/clefts", mode="a")
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["volumes/raw"][...], volume)
        np.testing.assert_allclose(f["volumes/raw"].attrs["element_size_um"], np.array(SPACING) / 1000)
        np.testing.assert_allclose(f["volumes/raw"].attrs["resolution"], SPACING)
        assert f["volumes/labels/clefts"].dtype == np.uint8


@pytest.mark.parametrize("ome_version", ["0.5", "0.4"])
def test_ome_zarr_multiscales(tmp_path, volume, ome_version):
    path = syn.write_zarr(tmp_path / "v.zarr", volume, SPACING, ome_version=ome_version)
    group = zarr.open_group(path, mode="r")
    attrs = dict(group.attrs)
    multiscales = attrs["ome"]["multiscales"] if ome_version == "0.5" else attrs["multiscales"]
    datasets = multiscales[0]["datasets"]
    assert [a["name"] for a in multiscales[0]["axes"]] == ["z", "y", "x"]
    assert datasets[0]["coordinateTransformations"][0] == {"type": "scale", "scale": list(SPACING)}
    assert datasets[1]["coordinateTransformations"][0]["scale"] == [SPACING[0], 2 * SPACING[1], 2 * SPACING[2]]
    np.testing.assert_array_equal(group["0"][...], volume)
    assert group["1"].shape == (5, 12, 16)
    assert group.metadata.zarr_format == (3 if ome_version == "0.5" else 2)


@pytest.mark.parametrize("name", ["v.tif", "v.mrc", "v.nrrd", "v.h5", "v.zarr"])
def test_files_are_byte_reproducible_and_atomic(tmp_path, volume, name):
    first = syn.write_array(tmp_path / "a" / name, volume, SPACING)
    second = syn.write_array(tmp_path / "b" / name, volume, SPACING)
    assert _tree_bytes(Path(first)) == _tree_bytes(Path(second))
    syn.write_array(tmp_path / "a" / name, volume, SPACING)  # overwrite in place
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [name]  # no temporary left behind


@pytest.fixture(scope="module")
def benchmarks(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("benchmarks")
    syn.write_benchmarks(root, "small", seed=0)
    return root


def test_benchmark_layout_names(benchmarks):
    root = benchmarks
    for split in ("train", "test"):
        for sub in ("images", "masks"):
            assert (root / f"lucchi_pp/{split}/{sub}/mask0000.png").is_file()
            assert (root / f"kasthuri_pp/{split}/{sub}/slice0000.png").is_file()
            for organelle in ("mito", "lyso", "nuclei", "nucleoli"):
                assert (root / f"perez/{organelle}/{split}/{sub}/000.png").is_file()
            assert (root / f"cremi/3d/{split}/{sub}").is_dir()
    for split, stem in (("train", "train-images"), ("valid", "eval-images"), ("test", "test-images")):
        for sub in ("images", "masks"):
            assert (root / f"guay/3d/{split}/{sub}/{stem}.nrrd").is_file()
            assert (root / f"guay/2d/{split}/{sub}/{stem}_2_0.tiff").is_file()
    for split, stem in (("train", "fib1-1-0-3"), ("train", "fib1-4-3-0"), ("test", "fib1-0-0-0")):
        for axis in (0, 1, 2):
            assert (root / f"urocell/2d/{split}/masks/{stem}_{axis}_0.tiff").is_file()
        assert (root / f"urocell/3d/{split}/masks/{stem}.nrrd").is_file()
    for split, stem in (("train", "sample_A_20160501"), ("train", "sample_B_20160501"), ("test", "sample_C_20160501")):
        assert (root / f"cremi/3d/{split}/images/{stem}.nrrd").is_file()
        assert (root / f"cremi/2d/{split}/images/{stem}_2_0.tiff").is_file()


def test_benchmark_masks_pair_with_images(benchmarks):
    root = benchmarks
    for bench in ("lucchi_pp", "kasthuri_pp", "perez/mito", "perez/nucleoli"):
        for image_path in sorted((root / bench / "train/images").iterdir()):
            image = np.asarray(Image.open(image_path))
            mask = np.asarray(Image.open(root / bench / "train/masks" / image_path.name))
            assert image.shape == mask.shape and image.dtype == mask.dtype == np.uint8
            assert set(np.unique(mask).tolist()) == {0, 1}, (bench, image_path.name)
    guay, _ = nrrd.read(str(root / "guay/3d/train/masks/train-images.nrrd"), index_order="C")
    assert (
        guay.dtype == np.uint8
        and set(np.unique(guay).tolist()) <= set(range(7))
        and {0, 1, 2} <= set(np.unique(guay).tolist())
    )
    urocell, _ = nrrd.read(str(root / "urocell/3d/test/masks/fib1-0-0-0.nrrd"), index_order="C")
    assert set(np.unique(urocell).tolist()) <= {0, 1, 2} and 2 in urocell
    cremi, header = nrrd.read(str(root / "cremi/3d/train/masks/sample_A_20160501.nrrd"), index_order="C")
    image, _ = nrrd.read(str(root / "cremi/3d/train/images/sample_A_20160501.nrrd"), index_order="C")
    assert cremi.shape == image.shape and set(np.unique(cremi).tolist()) == {0, 1}
    spacing = np.diag(header["space directions"])[::-1]
    assert spacing[0] / spacing[2] == pytest.approx(10.0)  # CREMI's 40 × 4 × 4 nm anisotropy


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("raw")
    return root, syn.write_raw_collection(root, "small", seed=0)


def test_raw_collection_sidecar(collection):
    root, sidecar = collection
    assert json.loads((root / syn.SIDECAR).read_text()) == sidecar
    sources = sidecar["sources"]
    assert {s["format"] for s in sources} == {"png", "tif", "mrc", "nrrd", "h5", "zarr"}
    assert {s["dtype"] for s in sources} == {"uint8", "uint16", "float32"}
    assert sum(s["inverted"] for s in sources) == 1
    volumes = [s for s in sources if s["kind"] == "volume"]
    assert any(s["anisotropy"] > 0.2 for s in volumes) and any(0 < s["anisotropy"] <= 0.2 for s in volumes)
    assert any(s["anisotropy"] == 0 for s in volumes)
    junk = {f["junk"] for s in sources for f in s["files"]} - {None}
    assert {"zero_padding", "empty_resin", "saturated"} <= junk
    for source in sources:
        for entry in source["files"]:
            assert (root / entry["path"]).exists(), entry
    pairs = [pair for s in sources for pair in s["near_duplicates"]]
    assert pairs and all((root / a).exists() and (root / b).exists() for a, b in pairs)


def test_raw_collection_contents_match_sidecar(collection):
    root, sidecar = collection
    by_name = {s["name"]: s for s in sidecar["sources"]}
    mrc_source = by_name["fibsem_brain_mrc"]
    with mrcfile.open(root / mrc_source["files"][0]["path"]) as mrc:
        assert list(mrc.data.shape) == mrc_source["files"][0]["shape"]
        assert float(mrc.voxel_size.z) == pytest.approx(10 * mrc_source["spacing_nm"][0])
    tif_source = by_name["tem_liver_tif16"]
    first = tifffile.imread(root / tif_source["files"][0]["path"])
    assert first.dtype == np.uint16 and np.mean(first == 0) > 0.4  # the zero-padded frame
    a, b = by_name["tem_hippocampus_png"]["near_duplicates"][0]
    im_a, im_b = (np.asarray(Image.open(root / p), np.float64) for p in (a, b))
    assert np.corrcoef(im_a.ravel(), im_b.ravel())[0, 1] > 0.3 and not np.array_equal(im_a, im_b)


def test_raw_collection_is_byte_reproducible(collection, tmp_path):
    """Written again in 2 worker processes (the demo's way), the collection equals the serial one byte for byte."""
    root, sidecar = collection
    assert syn.write_raw_collection(tmp_path, "small", seed=0, workers=2) == sidecar
    assert _tree_bytes(tmp_path) == _tree_bytes(root)


def test_sheets_and_cli_help(tmp_path, capsys):
    from cemjax.synthetic.__main__ import main

    paths = syn.write_sheets(tmp_path, "small", seed=0)
    assert [Path(p).name for p in paths] == ["styles.png", "volumes.png", "quality_patches.png"]
    assert all(Image.open(p).size[0] > 100 for p in paths)
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--size" in capsys.readouterr().out
