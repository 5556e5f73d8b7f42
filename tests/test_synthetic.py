"""Synthetic EM world: determinism, content, imaging, junk and contact sheets (file writers: see
test_synthetic_files.py)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cemjax import synthetic as syn
from cemjax.common.pictures import overlay_labels, write_contact_sheet
from cemjax.synthetic import classes as C


def test_class_names_are_documented_constants():
    assert syn.CLASS_NAMES[0] == "background"
    assert len(set(syn.CLASS_NAMES)) == len(syn.CLASS_NAMES) == len(syn.CLASS_COLORS) == 8
    assert {"membrane", "mitochondria", "lysosome", "nucleus", "nucleolus", "vesicle", "cleft"} <= set(syn.CLASS_NAMES)


def test_same_seed_same_arrays_other_seed_other_arrays():
    a = syn.make_em_image((64, 80), 8.0, "neuropil", seed=3)
    b = syn.make_em_image((64, 80), 8.0, "neuropil", seed=3)
    c = syn.make_em_image((64, 80), 8.0, "neuropil", seed=4)
    assert a.image.tobytes() == b.image.tobytes() and a.labels.tobytes() == b.labels.tobytes()
    assert not np.array_equal(a.image, c.image)
    v1 = syn.make_em_volume((6, 32, 32), (8.0, 8.0, 8.0), "tissue", seed=1, dtype="uint16")
    v2 = syn.make_em_volume((6, 32, 32), (8.0, 8.0, 8.0), "tissue", seed=1, dtype="uint16")
    assert v1.image.tobytes() == v2.image.tobytes()


@pytest.mark.parametrize(
    ("style", "pixel", "expected"),
    [
        ("neuropil", 8.0, {C.MEMBRANE, C.MITOCHONDRIA, C.VESICLE, C.CLEFT}),
        ("tissue", 25.0, {C.MEMBRANE, C.MITOCHONDRIA, C.LYSOSOME, C.NUCLEUS, C.NUCLEOLUS, C.VESICLE}),
        ("culture", 35.0, {C.MEMBRANE, C.MITOCHONDRIA, C.NUCLEUS}),
    ],
)
def test_styles_hold_their_organelles(style, pixel, expected):
    present = set()
    for seed in range(4):
        sample = syn.make_em_image((128, 128), pixel, style, seed=seed)
        assert sample.labels.dtype == np.uint8 and sample.labels.shape == sample.image.shape
        present |= set(np.unique(sample.labels).tolist())
    assert expected <= present, (style, present)
    assert present <= set(range(len(syn.CLASS_NAMES)))


def test_tem_contrast_resin_bright_stain_dark():
    sample = syn.make_em_image((160, 160), 20.0, "culture", seed=2)
    resin = sample.image[sample.cell_ids == 0]
    dense = sample.image[np.isin(sample.labels, [C.NUCLEOLUS, C.LYSOSOME, C.MITOCHONDRIA])]
    cytoplasm = sample.image[(sample.labels == C.BACKGROUND) & (sample.cell_ids > 0)]
    assert resin.mean() > cytoplasm.mean() + 40 > dense.mean() + 40


def test_anisotropic_volume_is_stretched_along_z():
    """Objects are defined in nm: with 80 nm sections a cell boundary is crossed ~5× as often per voxel
    along z as along x (16 nm pixels); isotropic voxels cross about equally often."""
    iso = syn.make_em_volume((16, 64, 64), (16.0, 16.0, 16.0), "neuropil", seed=1)
    aniso = syn.make_em_volume((16, 64, 64), (80.0, 16.0, 16.0), "neuropil", seed=1)
    assert aniso.spacing_nm == (80.0, 16.0, 16.0) and aniso.anisotropy == pytest.approx(4.0)
    assert iso.anisotropy == 0.0

    def changes(ids, axis):
        return float(np.mean(np.diff(ids.astype(np.int64), axis=axis) != 0))

    ratio_aniso = changes(aniso.cell_ids, 0) / changes(aniso.cell_ids, 2)
    ratio_iso = changes(iso.cell_ids, 0) / changes(iso.cell_ids, 2)
    assert 0.4 < ratio_iso < 2.0
    assert ratio_aniso > 2.5


def test_dtypes_and_ranges():
    u8 = syn.make_em_image((96, 96), 10.0, "tissue", seed=0, dtype="uint8").image
    u16 = syn.make_em_image((96, 96), 10.0, "tissue", seed=0, dtype="uint16").image
    f32 = syn.make_em_image((96, 96), 10.0, "tissue", seed=0, dtype="float32").image
    assert u8.dtype == np.uint8 and int(u8.max()) - int(u8.min()) > 120
    assert u16.dtype == np.uint16 and int(u16.max()) - int(u16.min()) > 25000 and u16.max() > 255
    assert f32.dtype == np.float32 and not np.allclose(f32, np.round(f32)) and 0.0 < f32.mean() < 2.0


def test_inversion():
    plain = syn.make_em_image((64, 64), 8.0, "neuropil", seed=9, dtype="uint16")
    inverted = syn.make_em_image((64, 64), 8.0, "neuropil", seed=9, dtype="uint16", invert=True)
    assert inverted.inverted and np.array_equal(inverted.image, 65535 - plain.image)
    f = np.array([0.5, 1.5, 1.0], np.float32)
    np.testing.assert_allclose(syn.invert_contrast(f), [1.5, 0.5, 1.0])


def test_imaging_noise_and_drift():
    density = np.full((8, 32, 32), 0.4, np.float32)
    rng = np.random.default_rng(0)
    signal = syn.simulate_signal(density, (40.0, 8.0, 8.0), rng, syn.Imaging(drift=0.05, illumination=0.0))
    per_slice = signal.mean(axis=(1, 2))
    assert signal.std() > 0.02  # shot + read noise
    assert per_slice.std() > 0.01  # slice-to-slice drift
    assert np.isclose(signal.mean(), np.exp(-2.2 * 0.4), atol=0.1)


@pytest.mark.parametrize("kind", syn.JUNK_KINDS)
def test_junk_kinds_have_their_properties(kind):
    image = syn.make_junk_image(kind, (96, 96), seed=1)
    assert image.dtype == np.uint8 and image.shape == (96, 96)
    smooth_var = float(np.var(np.diff(image.astype(np.float64), axis=1)))
    if kind == "empty_resin":
        assert image.mean() > 170 and smooth_var < 200
    elif kind == "saturated":
        assert np.mean(image == 255) >= 0.9
    elif kind == "black":
        assert np.mean(image == 0) >= 0.9
    elif kind == "zero_padding":
        assert np.mean(image == 0) >= 0.55 and image.max() > 100
    elif kind == "featureless":
        assert smooth_var < 10 and 40 < image.mean() < 220


def test_zero_padding_on_volume_is_exact_zero_in_every_slice():
    vol = syn.make_em_volume((4, 32, 32), (8.0, 8.0, 8.0), seed=0).image
    padded = syn.add_zero_padding(vol, np.random.default_rng(0), 0.3)
    zeros = padded == 0
    assert np.all(zeros == zeros[:1]) and 0.2 < zeros[0].mean() < 0.4


def test_quality_patches():
    patches, informative, kinds = syn.make_quality_patches(10, seed=2, size=64)
    assert patches.shape == (10, 64, 64) and patches.dtype == np.uint8
    assert informative.tolist() == [int(k == "good") for k in kinds]
    assert informative.sum() == 5 and set(kinds) - {"good"} <= set(syn.JUNK_KINDS)
    good_var = np.mean([patches[i].std() for i in range(10) if informative[i]])
    assert good_var > 10


def test_contact_sheet_size(tmp_path):
    images = [np.zeros((20, 30), np.uint8), np.ones((20, 30), np.float32), np.zeros((20, 30), np.uint16)]
    labels = [None, np.ones((20, 30), np.uint8), None]
    path = write_contact_sheet(
        tmp_path / "s.png", images, labels, titles=["a", "b", "c"], ncols=2, palette=syn.CLASS_COLORS
    )
    with Image.open(path) as sheet:
        assert sheet.size == (2 * (30 + 4) + 4, 2 * (20 + 14 + 4) + 4) and sheet.mode == "RGB"
    plain = write_contact_sheet(tmp_path / "t.png", images[:1], tile_size=50, padding=0)
    with Image.open(plain) as sheet:
        assert sheet.size == (50, 50)
    rgb = overlay_labels(images[1], labels[1], alpha=1.0, palette=syn.CLASS_COLORS)
    assert tuple(rgb[0, 0]) == syn.CLASS_COLORS[1]
