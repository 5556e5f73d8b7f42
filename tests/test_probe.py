"""Online probes: the weighted kNN equals the common self-supervised recipe restated in PyTorch, the linear probe
separates what is separable, the probe sets label a patch by its centre and never share pixels across the
split, and a probe on an encoder returns accuracies (the trainer's use is in test_swav_train/test_architecture)."""

import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from flax import nnx
from PIL import Image

from cemjax.data.probe_sets import (
    SYNTHETIC_CLASSES,
    _centres,
    centre_window,
    mask_folder_probe_set,
    synthetic_probe_set,
)
from cemjax.models import build_encoder
from cemjax.train import mesh as mesh_lib
from cemjax.train.probe import KNN_K, KNN_TEMPERATURE, OnlineProbe, knn_predict, linear_probe_predict


def torch_weighted_knn(train_features, train_labels, test_features, num_classes, k=20, temperature=0.07):
    """The weighted kNN monitor of InstDisc / DINO / solo-learn: cosine top-k, one-hot votes × exp(sim / T)."""
    train_features, test_features = F.normalize(train_features, dim=1), F.normalize(test_features, dim=1)
    similarity, index = (test_features @ train_features.T).topk(k, dim=1)
    retrieved = torch.gather(train_labels.view(1, -1).expand(len(test_features), -1), 1, index)
    one_hot = torch.zeros(len(test_features) * k, num_classes).scatter_(1, retrieved.reshape(-1, 1), 1)
    votes = torch.sum(one_hot.view(len(test_features), k, num_classes) * (similarity / temperature).exp()[..., None], 1)
    return votes.argmax(1)


def test_knn_equals_the_common_recipe():
    rng = np.random.default_rng(0)
    train, test = rng.standard_normal((200, 32)), rng.standard_normal((150, 32))
    labels = rng.integers(0, 5, 200)
    expected = torch_weighted_knn(torch.from_numpy(train), torch.from_numpy(labels), torch.from_numpy(test), 5)
    assert (KNN_K, KNN_TEMPERATURE) == (20, 0.07)
    np.testing.assert_array_equal(knn_predict(train, labels, test, 5), expected.numpy())


def test_linear_probe_separates_what_is_separable_and_not_noise():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((4, 64)) * 3
    labels = rng.integers(0, 4, 400)
    features = centres[labels] + rng.standard_normal((400, 64))
    pred = linear_probe_predict(features[:200], labels[:200], features[200:], 4)
    assert np.mean(pred == labels[200:]) > 0.95
    noise = rng.standard_normal((400, 64))
    assert np.mean(linear_probe_predict(noise[:200], labels[:200], noise[200:], 4) == labels[200:]) < 0.45


def test_a_patch_is_labelled_by_its_centre():
    """Every centre whose window (w px, rows y − w//2 … y − w//2 + w − 1) is ≥ 50 % one class and whose patch
    fits is a candidate of that class — found by brute force here."""
    class_map = np.zeros((96, 96), np.int16)
    class_map[30:70, 40:80] = 1
    size, w = 32, centre_window(32)
    centres = _centres(class_map, 2, size, slice(None), np.random.default_rng(0), limit=10_000)
    for c in (0, 1):
        span = range(size // 2, 96 - size // 2 + 1)
        expected = {
            (y, x)
            for y in span
            for x in span
            if class_map[y, x] == c
            and np.mean(class_map[y - w // 2 : y - w // 2 + w, x - w // 2 : x - w // 2 + w] == c) >= 0.5
        }
        assert set(centres[c]) == expected and expected


def test_synthetic_probe_set_is_balanced_and_split_by_image():
    probe_set = synthetic_probe_set.__wrapped__(32, 32, seed=0)  # uncached: determinism is a fresh draw
    again = synthetic_probe_set.__wrapped__(32, 32, seed=0)
    np.testing.assert_array_equal(probe_set.images, again.images)
    assert probe_set.images.shape == (32, 32, 32, 1) and probe_set.class_names == SYNTHETIC_CLASSES
    for side in (True, False):
        assert np.bincount(probe_set.labels[probe_set.train == side], minlength=4).tolist() == [4, 4, 4, 4]
    train = {p.tobytes() for p in probe_set.images[probe_set.train]}
    assert not train & {p.tobytes() for p in probe_set.images[~probe_set.train]}


def test_mask_folder_probe_set(tmp_path):
    """Two images whose masks hold a square: classes 'background' and 'mito' (digits stripped from the names);
    train patches from the top halves, test patches from the bottom halves, labels = mask at the centre."""
    rng = np.random.default_rng(2)
    for name in ("mito1", "mito2"):
        image = rng.integers(0, 60, (128, 128), dtype=np.uint8)
        mask = np.zeros((128, 128), np.uint8)
        mask[8:56, 8:56] = mask[72:120, 72:120] = 255
        image[mask > 0] += 150
        for folder, array in (("images", image), ("masks", mask)):
            (tmp_path / folder).mkdir(exist_ok=True)
            Image.fromarray(array).save(tmp_path / folder / f"{name}.png")
    probe_set = mask_folder_probe_set(tmp_path, n=40, size=32)
    assert probe_set.class_names == ("background", "mito")
    bright = probe_set.images[:, 16, 16, 0] >= 100  # the centre pixel of a "mito" patch is bright
    np.testing.assert_array_equal(bright, probe_set.labels == 1)
    assert probe_set.train.any() and (~probe_set.train).any()
    with pytest.raises(FileNotFoundError, match="images/ and masks/"):
        mask_folder_probe_set(tmp_path / "nothing", n=8, size=32)


def test_online_probe_on_an_encoder():
    probe_set = synthetic_probe_set(32, 32, seed=0)
    probe = OnlineProbe(probe_set, norms=(0.5, 0.2), mesh=mesh_lib.make_data_mesh(4), batch_size=12)
    assert probe.chunk == 12
    encoder = build_encoder("resnet18", head="mlp", num_classes=8, rngs=nnx.Rngs(0))
    features = probe.features(encoder)
    assert features.shape == (32, 512) and np.isfinite(features).all()
    out = probe(encoder)
    assert set(out) == {"probe/knn", "probe/linear", "probe/seconds"}
    assert 0 <= out["probe/knn"] <= 1 and 0 <= out["probe/linear"] <= 1


def tensorboard_scalars(workdir) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value)]} from a run's TensorBoard event files (TFRecord frames of Event protos)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted((workdir / "tensorboard").glob("events.*")):
        data, offset = path.read_bytes(), 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset : offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
            offset += 16 + length
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out
