"""Cross-section choice, the patch grid and names, and unit planning."""

from __future__ import annotations

import numpy as np
import pytest

from cemjax.curate.cross_sections import anisotropy, plan_units, section_axes
from cemjax.curate.patches import cut_patches, grid, patch_name, resize_bilinear
from cemjax.io.formats import EMArray


def test_grid_follows_the_reference_rule():
    assert grid(100) == []  # one tile of 100 px < 112: dropped
    assert grid(112) == [(0, 112)]
    assert grid(224) == [(0, 224)]
    assert grid(335) == [(0, 224)]  # 111-px remainder dropped
    assert grid(336) == [(0, 224), (224, 336)]  # 112-px edge tile kept
    assert grid(560) == [(0, 224), (224, 448), (448, 560)]  # half-up rounding (Python's round: 2 tiles)
    assert grid(1000) == [(0, 224), (224, 448), (448, 672), (672, 896)]


def test_cut_patches_content_boxes_and_edge_resize():
    rng = np.random.default_rng(0)
    planes = rng.integers(0, 256, (2, 400, 500), dtype=np.uint8)
    patches, boxes = cut_patches(planes)
    assert patches.shape == (8, 224, 224) and patches.dtype == np.uint8
    assert boxes[:4].tolist() == [[0, 0, 224, 0, 224], [0, 0, 224, 224, 448], [0, 224, 400, 0, 224],
                                  [0, 224, 400, 224, 448]]  # fmt: skip
    assert np.array_equal(patches[5], planes[1, :224, 224:448])
    assert np.array_equal(patches[2], resize_bilinear(planes[0, 224:400, :224]))  # 176 px → 224 px
    assert cut_patches(planes[:, :50])[0].shape == (0, 224, 224)


def test_patch_name():
    assert patch_name("mito_fib", "xz", 17, 0, 224, 448, 672) == "mito_fib-LOC-xz_17_0-224_448-672"


@pytest.mark.parametrize(
    "spacing,axes",
    [
        ((8, 8, 8), 3),
        ((9.6, 8, 8), 3),
        ((9.7, 8, 8), 1),
        ((6.5, 8, 8), 3),
        ((6.3, 8, 8), 1),
        ((40, 4, 4), 1),
        (None, 1),
    ],
)
def test_anisotropy_rule(spacing, axes):
    assert len(section_axes(3, spacing)) == axes
    assert section_axes(2, (1, 1, 1)) == ("xy",)
    assert anisotropy((30.0, 5.0, 5.0)) == pytest.approx(5.0)
    assert len(section_axes(3, (9.7, 8, 8), threshold=0.25)) == 3  # v2 threshold


def test_units_cover_every_plane_once():
    em = EMArray("v", np.zeros((10, 300, 200), np.uint16))
    units = plan_units("v", em, ("xy", "xz", "yz"), budget=3 * 300 * 200 * 2, max_planes=64)
    for axis, n in [("xy", 10), ("xz", 300), ("yz", 200)]:
        spans = [(u.start, u.stop) for u in units if u.axis == axis]
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert max(u.stop - u.start for u in units if u.axis == "xy") == 3  # byte budget respected
