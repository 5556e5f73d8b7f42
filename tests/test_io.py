"""Readers (lazy, with spacing), uint8 conversion with the uint16 bug fixed, plane blocks, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import zarr

from cemjax.io import EMReadError, open_em, read_plane_block, to_uint8, volume_stats
from cemjax.io.convert import Stats, choose_scaling, rgb_to_gray, scan_stats
from cemjax.synthetic import writers


def test_intensity_rules():
    u16 = np.array([0, 257, 32768, 65535], np.uint16)
    assert to_uint8(u16).tolist() == [0, 1, 127, 255]  # full 16 bits used: ÷ 65535
    twelve = np.array([0, 100, 2048, 4095], np.uint16)  # a 12-bit detector's values in uint16
    assert to_uint8(twelve).tolist() == [0, 6, 127, 255]
    assert "holding 12-bit values: ÷ 4095" in choose_scaling(np.uint16, scan_stats([twelve])).description
    assert to_uint8(twelve, rule="dtype").tolist() == [0, 0, 7, 15]  # ÷ 65535: the tissue would vanish
    assert to_uint8(twelve, rule="reference").tolist() == [0, 0, 7, 15]  # the reference's rule, likewise
    signed = np.array([-500, 0, 300], np.int16)  # signed densities: min–max
    assert to_uint8(signed).tolist() == [0, 159, 255]
    assert to_uint8(signed, rule="dtype").tolist() == [125, 127, 128]  # shifted by 2^15
    assert to_uint8(signed, rule="reference").tolist() == [0, 0, 2]  # ÷ 32767, negatives clipped
    assert to_uint8(np.array([0, 32767], np.int16)).tolist() == [0, 255]  # non-negative int16: ÷ 32767
    assert to_uint8(np.array([0, 2**32 - 1], np.uint32)).tolist() == [0, 255]
    f = np.array([-1.0, 0.0, 3.0], np.float32)
    assert to_uint8(f).tolist() == [0, 63, 255]
    assert to_uint8(f, Stats(-1.0, 7.0, True)).tolist() == [0, 31, 127]  # file-wide scale
    assert to_uint8(np.array([0.0, 0.5, 1.0], np.float32)).tolist() == [0, 127, 255]  # floats in [0, 1]: × 255
    assert to_uint8(np.array([True, False])).tolist() == [255, 0]
    tissue = np.linspace(1000, 2000, 1001).astype(np.uint16)
    spread = np.concatenate([np.zeros(3, np.uint16), tissue, np.full(3, 60000, np.uint16)])  # rare outliers
    stretched = to_uint8(spread, rule="percentile")
    assert stretched[0] == 0 and stretched[-1] == 255 and abs(int(stretched[3 + 500]) - 127) <= 2
    with pytest.raises(ValueError):
        to_uint8(np.zeros(3, np.complex64))
    with pytest.raises(ValueError, match="intensity rule 'bright'"):
        to_uint8(u16, rule="bright")


def test_rgb_to_gray_matches_pil_luma():
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    pil = np.asarray(Image.fromarray(rgb).convert("L")).astype(int)
    assert np.abs(rgb_to_gray(rgb).astype(int) - pil).max() <= 1


@pytest.fixture
def vol():
    rng = np.random.default_rng(0)
    return rng.integers(0, 65535, (6, 40, 50), dtype=np.uint16)


@pytest.mark.parametrize("fmt", ["tif", "mrc", "nrrd", "h5", "zarr"])
def test_formats_round_trip_with_spacing(tmp_path, vol, fmt):
    path = writers.write_array(tmp_path / f"v.{fmt}", vol, (30.0, 4.0, 5.0))
    with open_em(path) as em:
        assert em.shape == vol.shape and em.ndim == 3
        assert em.spacing == pytest.approx((30.0, 4.0, 5.0), rel=1e-3)
        assert np.array_equal(np.asarray(em.data[2]), vol[2])


def test_large_files_stay_lazy(tmp_path, vol):
    tifffile.imwrite(tmp_path / "raw.tif", vol)
    tifffile.imwrite(tmp_path / "zip.tif", vol, compression="zlib")
    with open_em(tmp_path / "raw.tif") as em:
        assert isinstance(em.data, np.memmap)
    with open_em(tmp_path / "zip.tif") as em:
        assert isinstance(em.data, zarr.Array)  # chunked per page
        assert np.array_equal(read_plane_block(em, "yz", 3, 5), vol[:, :, 3:5].transpose(2, 0, 1))
    with open_em(writers.write_mrc(tmp_path / "v.mrc", vol.astype(np.int16), (1, 1, 1))) as em:
        assert isinstance(em.data, np.memmap)


def test_plane_blocks_and_stats(tmp_path, vol):
    tifffile.imwrite(tmp_path / "v.tif", vol)
    em = open_em(tmp_path / "v.tif")
    xy, xz = read_plane_block(em, "xy", 1, 3), read_plane_block(em, "xz", 5, 9)
    st = volume_stats(em, budget=40 * 50 * 2)  # one slice per slab
    em.close()
    assert np.array_equal(xy, vol[1:3]) and np.array_equal(xz, vol[:, 5:9].transpose(1, 0, 2))  # outlives close
    assert (st.lo, st.hi, st.finite) == (vol.min(), vol.max(), True)


def test_png_rgb_and_sidecar_spacing(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "c.png")
    with open_em(tmp_path / "c.png") as em:
        assert em.rgb and em.shape == (30, 40)
        assert read_plane_block(em, "xy", 0, 1).shape == (1, 30, 40)
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    (tmp_path / "s.tif.json").write_text('{"spacing": [40, 5, 5]}')
    assert open_em(tmp_path / "s.tif").spacing == (40.0, 5.0, 5.0)
    assert open_em(tmp_path / "s.tif", spacing=(1, 2, 3)).spacing == (1, 2, 3)


def test_errors_are_one_line_naming_the_file(tmp_path):
    (tmp_path / "x.mrc").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (tmp_path / "z.tif").write_bytes(b"")
    tifffile.imwrite(tmp_path / "q.tif", np.zeros((2, 2, 9, 9), np.uint8), photometric="minisblack")
    for name, why in [("x.mrc", "unreadable"), ("z.tif", "empty file"), ("q.tif", "4D"), ("nope.png", "no such")]:
        with pytest.raises(EMReadError) as e:
            open_em(tmp_path / name)
        msg = str(e.value)
        assert "\n" not in msg and name in msg and why in msg
