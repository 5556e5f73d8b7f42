"""The reference's patch grid, true-size patches and their hashes, cross-section rules with notes, unit planning."""

from __future__ import annotations

import numpy as np
import pytest

from cemjax.curate.cross_sections import RULES, anisotropy, axes_and_note, plan_units, section_axes
from cemjax.curate.dhash import bits_to_uint64, dhash64, dhash_bits_reference
from cemjax.curate.patches import cut_patches, grid, hash_copies, patch_name, true_patch
from cemjax.curate.sources import discover
from cemjax.io.array import EMArray
from cemjax.synthetic import writers


def reference_boxes(h: int, w: int, size: int = 224) -> list[tuple[int, int, int, int]]:
    """The reference's `patch_and_hash` grid, restated: max(1, int(round(L / size))) tiles per side."""
    ny, nx = max(1, int(round(h / size))), max(1, int(round(w / size)))
    return [
        (y * size, min(y * size + size, h), x * size, min(x * size + size, w)) for y in range(ny) for x in range(nx)
    ]


@pytest.mark.parametrize("shape", [(560, 1008), (1456, 300), (100, 250), (224, 224), (335, 336), (50, 400), (1, 7)])
def test_grid_and_boxes_equal_the_reference(shape):
    planes = np.random.default_rng(0).integers(0, 256, (1, *shape), dtype=np.uint8)
    _, boxes = cut_patches(planes)
    assert [tuple(b) for b in boxes[:, 1:].tolist()] == reference_boxes(*shape)


def test_the_cases_that_used_to_differ():
    assert grid(560) == [(0, 224), (224, 448)]  # round(2.5) = 2: half to even, as Python rounds
    assert len(cut_patches(np.zeros((1, 560, 1008), np.uint8))[1]) == 8  # 2 × 4, not 3 × 5
    assert len(cut_patches(np.zeros((1, 1456, 300), np.uint8))[1]) == 6  # round(6.5) = 6
    assert grid(100) == [(0, 100)]  # a short side gives one short tile
    assert cut_patches(np.zeros((1, 100, 250), np.uint8))[1][:, 1:].tolist() == [[0, 100, 0, 224]]


def test_patches_keep_their_true_size_and_hash_as_the_reference():
    rng = np.random.default_rng(0)
    planes = rng.integers(0, 256, (2, 400, 500), dtype=np.uint8)
    canvases, boxes = cut_patches(planes)
    assert canvases.shape == (8, 224, 224) and boxes[:4].tolist() == [
        [0, 0, 224, 0, 224], [0, 0, 224, 224, 448], [0, 224, 400, 0, 224], [0, 224, 400, 224, 448]]  # fmt: skip
    assert np.array_equal(true_patch(canvases[2], boxes[2]), planes[0, 224:400, :224])  # 176 × 224, as stored
    assert not canvases[2, 176:].any()
    ours = dhash64(hash_copies(canvases, boxes))
    pairs = zip(canvases, boxes, strict=True)
    theirs = bits_to_uint64(np.stack([dhash_bits_reference(true_patch(c, b)) for c, b in pairs]))
    np.testing.assert_array_equal(ours, theirs)  # imagehash.dhash of the PIL-bilinear 224² copy


def test_patch_name():
    assert patch_name("mito_fib", "xz", 17, 0, 224, 448, 672) == "mito_fib-LOC-xz_17_0-224_448-672"


@pytest.mark.parametrize(
    "spacing,axes", [((8, 8, 8), 3), ((9.6, 8, 8), 3), ((9.7, 8, 8), 1), ((6.5, 8, 8), 3), ((6.3, 8, 8), 1),
                     ((40, 4, 4), 1), (None, 1)],
)  # fmt: skip
def test_anisotropy_rule(spacing, axes):
    assert len(section_axes(3, spacing)) == axes
    assert section_axes(2, (1, 1, 1)) == ("xy",)
    assert anisotropy((30.0, 5.0, 5.0)) == pytest.approx(5.0)
    assert len(section_axes(3, (9.7, 8, 8), threshold=RULES["v2"]["anisotropy"])) == 3  # v2: 0.25


def test_left_out_axes_say_why():
    assert axes_and_note(3, None)[1].startswith("xy only: no voxel spacing")
    assert "anisotropy 4.00 > 0.2" in axes_and_note(3, (40.0, 8.0, 8.0))[1]
    assert axes_and_note(3, (8.0, 8.0, 8.0), video=True)[1].startswith("xy only: a video")
    assert axes_and_note(3, (8.0, 8.0, 8.0)) == (("xy", "xz", "yz"), "")


def test_a_thin_isotropic_volume_keeps_its_side_planes(tmp_path):
    """50 × 300 × 400 at 8 nm: xy 50 planes × 1 × 2, xz 300 × 1 × 2 (50-px-high tiles), yz 400 × 1 × 1 = 1,100
    patches. The reference cuts 1,095: its plane loop stops one short on every axis (kept here on purpose)."""
    writers.write_array(tmp_path / "thin.h5", np.zeros((50, 300, 400), np.uint8), (8.0, 8.0, 8.0))
    plan = discover([str(tmp_path / "thin.h5")])
    (info,) = plan.files["thin"]
    with_last = sum(len(cut_patches(np.zeros((u.stop - u.start, *_plane(u.axis)), np.uint8))[1])
                    for _, u in plan.units["thin"])  # fmt: skip
    assert info.axes == ("xy", "xz", "yz") and with_last == 1100
    reference = sum((n - 1) * len(reference_boxes(*_plane(a))) for a, n in (("xy", 50), ("xz", 300), ("yz", 400)))
    assert reference == 1095


def _plane(axis: str) -> tuple[int, int]:
    return {"xy": (300, 400), "xz": (50, 400), "yz": (50, 300)}[axis]


def test_sources_can_be_named_and_2d_dedup_groups_follow_the_rules(tmp_path):
    for folder in ("a/images", "b/images"):
        (tmp_path / folder).mkdir(parents=True)
        for i in range(2):
            writers.write_png(tmp_path / folder / f"{i}.png", np.full((64, 64), 40 * i + 10, np.uint8))
    plan = discover([str(tmp_path / "a/images"), str(tmp_path / "b/images")])
    assert sorted(plan.files) == ["images", "images_2"] and "was taken" in plan.notes["images_2"][0]
    named = discover([f"mito={tmp_path / 'a/images'}", f"er={tmp_path / 'b/images'}"])
    assert sorted(named.files) == ["er", "mito"]
    assert {f.dedup_group for f in named.files["mito"]} == {str(tmp_path / "a/images" / f"{i}.png") for i in (0, 1)}
    assert {f.dedup_group for f in discover([str(tmp_path / "a")], rules="v2").files["images"]} == {"none"}


def test_units_cover_every_plane_once():
    em = EMArray("v", np.zeros((10, 300, 200), np.uint16))
    units = plan_units("v", em, ("xy", "xz", "yz"), budget=3 * 300 * 200 * 2, max_planes=64)
    for axis, n in [("xy", 10), ("xz", 300), ("yz", 200)]:
        spans = [(u.start, u.stop) for u in units if u.axis == axis]
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert max(u.stop - u.start for u in units if u.axis == "xy") == 3  # byte budget respected
