"""cemjax.seg evaluation library: IoU metrics, Perez instance matching, 2D/3D inference, overlays.

Expected values are worked out by hand in the comments (not produced by the code under test)."""

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from cemjax.common.pictures import overlay_labels
from cemjax.seg import inference, instances, metrics, overlays

E = 1e-5


# --------------------------------------------------------------------------- metrics


def test_iou_2d_hand_computed():
    pred = np.array([[1, 1, 0], [0, 2, 2]])
    truth = np.array([[1, 0, 0], [2, 2, 0]])
    # class 1: pred {(0,0),(0,1)}, truth {(0,0)} → I 1, U 2; class 2: pred {(1,1),(1,2)}, truth {(1,0),(1,1)} → I 1, U 3
    per_class = metrics.class_ious_2d(pred, truth, [1, 2])
    np.testing.assert_allclose(per_class, [(1 + E) / (2 + E), (1 + E) / (3 + E)], rtol=1e-12)
    assert metrics.iou_2d(pred, truth, [1, 2]) == pytest.approx(((1 + E) / (2 + E) + (1 + E) / (3 + E)) / 2)
    assert metrics.iou_2d(pred, truth, [2]) == pytest.approx((1 + E) / (3 + E))


def test_iou_2d_edge_cases_and_binary():
    zeros = np.zeros((4, 4), np.uint8)
    assert metrics.iou_2d(zeros, zeros, [1]) == 1.0  # empty truth and prediction: eps / eps
    one = zeros.copy()
    one[1, 1:3] = 1  # 2 predicted pixels, empty truth → (0 + eps) / (2 + eps)
    assert metrics.iou_2d(one, zeros, [1]) == pytest.approx(E / (2 + E))
    assert metrics.iou_2d(one, one, [1]) == 1.0
    assert metrics.default_eval_classes(1) == [1]
    assert metrics.default_eval_classes(4) == [1, 2, 3]
    with pytest.raises(ValueError):
        metrics.iou_2d(zeros, zeros[:3], [1])


def test_dataset_iou_2d_mean_over_images():
    a = (np.array([[1, 1, 0], [0, 2, 2]]), np.array([[1, 0, 0], [2, 2, 0]]))  # classes ≈ [1/2, 1/3]
    b = (np.array([[0, 1], [2, 2]]), np.array([[0, 1], [2, 2]]))  # perfect: [1, 1]
    mean, per_class = metrics.dataset_iou_2d([a, b], [1, 2])
    assert mean == pytest.approx((0.5 + 1 / 3 + 1 + 1) / 4, abs=1e-5)
    np.testing.assert_allclose(per_class, [(0.5 + 1) / 2, (1 / 3 + 1) / 2], atol=1e-5)


PRED3 = np.array([[[2, 2], [2, 3]], [[3, 1], [1, 2]]])
TRUTH3 = np.array([[[0, 0], [2, 2]], [[3, 3], [1, 0]]])


def test_iou_3d_hand_computed_and_masked():
    # unmasked: class 2 pred {000,001,010,111} truth {010,011} → 1/5; class 3 pred {011,100} truth {100,101} → 1/3
    np.testing.assert_allclose(metrics.class_ious_3d(PRED3, TRUTH3, [2, 3]), [1 / 5, 1 / 3])
    assert metrics.iou_3d(PRED3, TRUTH3, [2, 3]) == pytest.approx((1 / 5 + 1 / 3) / 2)
    # masked to truth > 0 (000, 001, 111 cleared): class 2 pred {010} → 1/2; class 3 unchanged → 1/3
    masked = metrics.mask_prediction(PRED3, TRUTH3)
    np.testing.assert_array_equal(masked, [[[0, 0], [2, 3]], [[3, 1], [1, 0]]])
    assert metrics.iou_3d(PRED3, TRUTH3, [2, 3], mask_to_truth=True) == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_iou_3d_undefined_class_is_nan_and_skipped():
    per_class = metrics.class_ious_3d(PRED3, TRUTH3, [2, 3, 5])  # class 5 in neither volume: U = 0
    assert math.isnan(per_class[2])
    assert metrics.iou_3d(PRED3, TRUTH3, [2, 3, 5]) == pytest.approx((1 / 5 + 1 / 3) / 2)
    assert math.isnan(metrics.iou_3d(PRED3, TRUTH3, [5]))
    perfect = (TRUTH3, TRUTH3)
    mean, per_class = metrics.dataset_iou_3d([(PRED3, TRUTH3), perfect], [2, 3])
    assert mean == pytest.approx(((1 / 5 + 1 / 3) / 2 + 1) / 2)
    np.testing.assert_allclose(per_class, [(1 / 5 + 1) / 2, (1 / 3 + 1) / 2])


# --------------------------------------------------------------------------- instances


def _perez_case():
    truth = np.zeros((6, 6), np.uint8)
    truth[0:2, 0:2] = 1  # labelled object, 4 px
    pred = np.zeros((6, 6), np.uint8)
    pred[1:3, 1:3] = 1  # component A (4 px), overlaps truth at (1, 1)
    pred[3, 3] = 1  # diagonal neighbour of A's (2, 2): part of A with 8-connectivity only
    pred[5, 4:6] = 1  # component B: touches nothing (not even (3, 3) diagonally)
    return pred, truth


def test_match_instances_connectivity():
    pred, truth = _perez_case()
    full = instances.match_instances(pred == 1, truth == 1)  # reference default: 8-connectivity
    expect = np.zeros((6, 6), bool)
    expect[1:3, 1:3] = True
    expect[3, 3] = True
    np.testing.assert_array_equal(full, expect)
    faces = instances.match_instances(pred == 1, truth == 1, connectivity=1)
    expect[3, 3] = False
    np.testing.assert_array_equal(faces, expect)


def test_instance_iou_hand_computed():
    pred, truth = _perez_case()
    # matched A ∪ {(3,3)} = 5 px, I = 1, U = 4 + 5 - 1 = 8; plain IoU: 7 px predicted, U = 10
    assert instances.instance_iou_2d(pred, truth, [1]) == pytest.approx((1 + E) / (8 + E))
    assert metrics.iou_2d(pred, truth, [1]) == pytest.approx((1 + E) / (10 + E))
    # class 2 predicted but never labelled: everything removed, empty vs empty → 1.0
    pred2 = pred.copy()
    pred2[5, 0] = 2
    np.testing.assert_allclose(instances.instance_class_ious_2d(pred2, truth, [1, 2]), [(1 + E) / (8 + E), 1.0])
    mean, _ = instances.dataset_instance_iou_2d([(pred, truth), (truth, truth)], [1])
    assert mean == pytest.approx(((1 + E) / (8 + E) + 1) / 2)


# --------------------------------------------------------------------------- 2D inference

BIG = 1e4


def binary_fn(x):
    """Foreground where the pixel > 0.5 (i.e. uint8 ≥ 128), saturated logits."""
    assert x.dtype == np.float32 and x.shape[-1] == 1 and x.shape[1] % 32 == 0 and x.shape[2] % 32 == 0
    assert 0.0 <= x.min() and x.max() <= 1.0
    return (jnp.asarray(x) - 0.5) * BIG


def three_class_fn(x):
    """Class 0 below 0.3 (uint8 ≤ 76), class 1 below 0.61 (≤ 155), else class 2: one-hot logits."""
    x = jnp.asarray(x)[..., 0]
    cls = (x >= 0.3).astype(jnp.int32) + (x >= 0.61).astype(jnp.int32)
    return jnp.eye(3, dtype=jnp.float32)[cls] * 50.0


def test_resize_linear_is_opencvs_as_the_reference_calls_it():
    """The reference's 2D evaluation resizes with albumentations → cv2.resize(INTER_LINEAR) on uint8: half-pixel
    centres, edge clamp, OpenCV's fixed-point weights (within 1 grey level of the exact bilinear value)."""
    import cv2

    ramp = np.tile((3 * np.arange(40)).astype(np.uint8), (8, 1))  # [8, 40], value 3·col
    out = inference.resize_linear(ramp, 8, 32)
    src = np.clip((np.arange(32) + 0.5) * 40 / 32 - 0.5, 0, 39)  # the source column of each output column
    assert np.abs(out[0].astype(int) - 3 * src).max() <= 1
    image = np.random.default_rng(0).integers(0, 256, (500, 333), dtype=np.uint8)
    np.testing.assert_array_equal(inference.resize_linear(image, 480, 320),
                                  cv2.resize(image, (320, 480), interpolation=cv2.INTER_LINEAR))  # fmt: skip


@pytest.mark.parametrize("shape", [(4, 64, 64, 3), (8, 256, 256, 3), (16, 128, 128, 1)])
def test_quantised_probabilities_truncate_as_the_reference_at_batch_size(shape):
    """⌊p · 255 / 3⌋ per class, as the reference's `(probs * scaling).astype(np.uint8)` truncates; a float →
    uint8 cast under XLA:CPU may round instead (seen: half the values one level up at 4 × 64 × 64 × 3)."""
    logits = jax.random.normal(jax.random.key(0), shape, jnp.float32) * 3
    probs = np.asarray(inference.probabilities(logits), np.float32)
    expected = (probs * np.float32(255 / 3)).astype(np.uint8)  # numpy truncates
    got = np.asarray(inference._quantized_probabilities(logits, shape[1], shape[2], 255 / 3))
    np.testing.assert_array_equal(got, expected)


def test_predict_2d_resizes_down_and_back():
    image = np.full((70, 45), 10, np.uint8)
    image[:, :20] = 200
    # 70×45 → 64×32; small col j samples src (j+.5)·45/32-.5: j ≤ 13 has value > 127.5 (j = 14 → src 19.89 → 23).
    # Back to 45 cols, nearest: col c reads j = ⌊(c+.5)·32/45⌋ ≤ 13 ⇔ c ≤ 19, so the mask is exactly col < 20.
    labels = inference.predict_2d(binary_fn, image, 1)
    assert labels.dtype == np.uint8 and labels.shape == (70, 45)
    np.testing.assert_array_equal(labels, np.broadcast_to(np.arange(45) < 20, (70, 45)).astype(np.uint8))
    assert inference.factor_shape(70, 45) == (64, 32) and inference.factor_shape(20, 33) == (32, 32)


def test_predict_2d_multiclass_identity_size():
    image = np.random.default_rng(0).integers(0, 256, (64, 96), dtype=np.uint8)
    labels = inference.predict_2d(three_class_fn, image, 3)
    np.testing.assert_array_equal(labels, (image >= 77).astype(np.uint8) + (image >= 156))
    tiny = image[:20, :20]  # shorter than 32: resized up to 32×32 and back
    assert inference.predict_2d(three_class_fn, tiny, 3).shape == (20, 20)


def test_probabilities_and_labels():
    logits = np.array([[0.0], [np.log(3.0)]], np.float32)
    np.testing.assert_allclose(inference.probabilities(logits), [[0.5], [0.75]], rtol=1e-6)
    np.testing.assert_allclose(inference.probabilities(np.zeros((1, 4), np.float32)), [[0.25] * 4])
    np.testing.assert_array_equal(inference.labels_from_logits(logits), [0, 1])  # 0.5 is not > 0.5
    np.testing.assert_array_equal(inference.labels_from_logits(np.array([[1.0, 3.0, 2.0]])), [1])


# --------------------------------------------------------------------------- 3D inference


def test_pad_to_factor_reflects():
    x = np.arange(1, 10).reshape(1, 3, 3)
    np.testing.assert_array_equal(
        inference.pad_to_factor(x, 4)[0], [[1, 2, 3, 2], [4, 5, 6, 5], [7, 8, 9, 8], [4, 5, 6, 5]]
    )


VOL = np.random.default_rng(1).integers(0, 256, (20, 40, 70), dtype=np.uint8)  # D, H, W: pads 32, 64, 96


@pytest.mark.parametrize("mode", ["stack", "orthoplane"])
def test_predict_volume_pixelwise(mode):
    calls, seen = [], []
    fn = lambda x: calls.append(x.shape) or binary_fn(x)
    labels = inference.predict_volume(fn, VOL, 1, mode=mode, batch_size=8, progress=lambda d, t: seen.append((d, t)))
    np.testing.assert_array_equal(labels, (VOL >= 128).astype(np.uint8))  # every axis agrees
    assert labels.dtype == np.uint8 and labels.shape == VOL.shape
    assert {s[0] for s in calls} == {8}  # the last, partial batch is filled up to batch_size
    total = 20 if mode == "stack" else 20 + 40 + 70
    assert len(calls) == sum(-(-n // 8) for n in ([20] if mode == "stack" else [20, 40, 70]))
    assert seen[-1] == (total, total)
    multi = inference.predict_volume(three_class_fn, VOL, 3, mode=mode, batch_size=5)
    np.testing.assert_array_equal(multi, (VOL >= 77).astype(np.uint8) + (VOL >= 156))


def test_stack_pads_by_reflection():
    # foreground where the right-hand neighbour (in the padded slice) is bright; for the last real column
    # (69) that neighbour is padding column 70, which reflection makes a copy of column 68
    def right_neighbour(x):
        shifted = jnp.concatenate([jnp.asarray(x)[:, :, 1:], jnp.zeros_like(x[:, :, :1])], axis=2)
        return (shifted - 0.5) * BIG

    labels = inference.predict_volume(right_neighbour, VOL, 1, mode="stack", batch_size=7)
    expect = np.concatenate([VOL[:, :, 1:], VOL[:, :, 68:69]], axis=2) >= 128
    np.testing.assert_array_equal(labels, expect.astype(np.uint8))


# slice [rows, cols] of each axis: 0 → (h, w), 1 → (d, w), 2 → (d, h); padded shapes tell the axes apart
PADDED_AXIS = {(64, 96): 0, (32, 96): 1, (32, 64): 2}


def _vote(x, rows_lt=9, cols_lt=30):
    """A decision that depends on intensity, row and column: (x > .5) xor (row < 9) xor (col < 30)."""
    _, h, w, _ = x.shape
    r = (jnp.arange(h) < rows_lt)[None, :, None]
    c = (jnp.arange(w) < cols_lt)[None, None, :]
    return (jnp.asarray(x)[..., 0] > 0.5) ^ r ^ c


def _expected_vote(axis):
    d, h, w = np.meshgrid(*(np.arange(n) for n in VOL.shape), indexing="ij")
    rows, cols = {0: (h, w), 1: (d, w), 2: (d, h)}[axis]
    return (VOL >= 128) ^ (rows < 9) ^ (cols < 30)


@pytest.mark.parametrize("informative", [0, 1, 2])
def test_orthoplane_places_each_axis(informative):
    # binary: the informative axis gives p ≈ 1 or 0 (⌊85p⌋ = 85 / 0), the other two p = 0.5 (⌊42.5⌋ = 42 each):
    # 85 + 84 = 169 > 127 and 0 + 84 = 84 ≤ 127, so the result is exactly the informative axis's decision.
    def binary(x):
        if PADDED_AXIS[x.shape[1:3]] != informative:
            return jnp.zeros(x.shape, jnp.float32)
        return jnp.where(_vote(x), BIG, -BIG)[..., None]

    got = inference.predict_volume(binary, VOL, 1, mode="orthoplane", batch_size=6)
    np.testing.assert_array_equal(got, _expected_vote(informative).astype(np.uint8))

    # 3 classes: the informative axis puts 85 on class 1 + vote (others 0); the others are uniform (⌊85/3⌋ = 28
    # per class, 56 from both), so the informative axis's class wins with 141 against 56.
    def multi(x):
        if PADDED_AXIS[x.shape[1:3]] != informative:
            return jnp.zeros((*x.shape[:3], 3), jnp.float32)
        return jnp.eye(3, dtype=jnp.float32)[1 + _vote(x).astype(jnp.int32)] * 50.0

    got = inference.predict_volume(multi, VOL, 3, mode="orthoplane", batch_size=16)
    np.testing.assert_array_equal(got, 1 + _expected_vote(informative).astype(np.uint8))


def test_predict_volume_rejects_bad_input():
    with pytest.raises(ValueError):
        inference.predict_volume(binary_fn, VOL.astype(np.float32), 1)
    with pytest.raises(ValueError):
        inference.predict_volume(binary_fn, VOL, 1, mode="xyz")
    with pytest.raises(ValueError):  # predict_fn's channel count disagrees with num_classes
        inference.predict_volume(binary_fn, VOL, 3)


# --------------------------------------------------------------------------- overlays


def test_write_overlay_png(tmp_path):
    image = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))  # 64×64 ramp
    truth = np.zeros((64, 64), np.uint8)
    truth[10:30, 10:30] = 1
    pred = np.zeros((64, 64), np.uint8)
    pred[40:60, 40:60] = 2
    path = overlays.write_overlay(tmp_path / "sub" / "ov.png", image, truth, pred, ["bg", "mito", "lyso"], dpi=50)
    assert path == str(tmp_path / "sub" / "ov.png")
    assert os.listdir(tmp_path / "sub") == ["ov.png"]  # no temporary file left behind
    with Image.open(path) as im:
        assert im.format == "PNG"
        rgb = np.asarray(im.convert("RGB"))
    # square image: three 4-inch panels, 4 + 0.9 inches high, at 50 dpi
    assert rgb.shape[:2] == (round(4.9 * 50), 3 * 4 * 50)
    # the prediction (third) panel shows class 2's colour blended over gray; the image panel has no colour
    colour = overlay_labels(image, pred, overlays.ALPHA)[50, 50]
    third = rgb[:, 2 * rgb.shape[1] // 3 :]
    assert np.any(np.all(third == colour, axis=-1))
    first = rgb[:, : rgb.shape[1] // 3].astype(int)
    assert np.all(first.max(-1) - first.min(-1) <= 1)
    overlays.write_overlay(path, image, truth, truth, ["bg", "mito"])  # overwrites in place


def _reference_instance_iou(pred: np.ndarray, truth: np.ndarray, label: int = 1) -> float:
    """The reference's `instance_match2d` restated (skimage labelling; `np.unique(…)[1:]` drops the first label,
    taken to be the background)."""
    from skimage import measure

    label_mask, label_pred = truth == label, pred == label
    truth_ids, pred_ids = measure.label(label_mask), measure.label(label_pred)
    matched = np.zeros_like(label_pred)
    for t in np.unique(truth_ids)[1:]:
        for p in np.unique(pred_ids[truth_ids == t]):
            if p != 0:
                matched += pred_ids == p
    inter, union = np.logical_and(matched, label_mask).sum(), np.logical_or(matched, label_mask).sum()
    return (inter + 1e-5) / (union + 1e-5)


def test_instance_matching_equals_the_reference_except_when_truth_covers_everything():
    """On partly labelled images (what Perez's test sets are) ours equals the reference. When the truth is one
    object covering the whole image, the reference's `[1:]` drops that object (no background to drop) and scores
    0 whatever the prediction; cemjax scores the matched prediction (docs/method.md §6)."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        truth = (ndimage_blobs(rng) > 0).astype(np.uint8)
        pred = (ndimage_blobs(rng) > 0).astype(np.uint8)
        assert instances.instance_class_ious_2d(pred, truth, (1,))[0] == pytest.approx(
            _reference_instance_iou(pred, truth), abs=1e-9)  # fmt: skip
    truth = np.ones((16, 16), np.uint8)
    pred = np.zeros((16, 16), np.uint8)
    pred[:8] = 1
    assert _reference_instance_iou(pred, truth) == pytest.approx(0.0, abs=1e-6)
    assert instances.instance_class_ious_2d(pred, truth, (1,))[0] == pytest.approx(0.5)


def ndimage_blobs(rng: np.random.Generator, shape=(48, 48)) -> np.ndarray:
    """A few random rectangles and discs (some touching the border), for instance-matching comparisons."""
    out = np.zeros(shape, np.uint8)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(int(rng.integers(1, 6))):
        cy, cx, r = rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.integers(3, 10)
        out[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    return out
