"""The quality classifier of docs/method.md §1.5: a ResNet with one logit, P(informative) = sigmoid(logit).

Recipe (the reference's): Adam 1e-3, BCE-with-logits, batch 64, 20 epochs, a 15 % validation split,
augmentation brightness/contrast ±0.2, Gaussian noise, Gaussian blur and flips (each p 0.5, drawn per
sample). The reference fine-tunes an ImageNet-pretrained ResNet34 with all but layer4/fc frozen; no ImageNet
weights ship offline, so the default here trains from scratch, and `init` + `freeze_until` reproduce the
reference setup from a torchvision file (`freeze_until="layer4"`; frozen parameters get zero updates
through an optax label mask, while BatchNorm statistics still update in train mode, as in the reference).

Inputs: uint8 [N, H, W] patches are resized to `size` (bilinear, antialiased, the same function in
training and inference), scaled to [0, 1], augmented (training only) and normalised with (mean, std).

A model directory holds `save_model`'s `spec.json` + `state/` and `quality.json` (threshold, size, mean,
std, validation metrics). `load_classifier(dir)` → a `Scorer`: uint8 [N, H, W] → float32 [N] P(informative).
"""

from __future__ import annotations

import csv
import functools
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from PIL import Image
from scipy.stats import rankdata

from cemjax.common.files import write_json
from cemjax.common.norms import CEM500K_NORMS
from cemjax.convert import import_resnet
from cemjax.convert.flax_checkpoint import load_model, save_model
from cemjax.data import geometry as G
from cemjax.io import open_em, read_plane_block, to_uint8
from cemjax.models.registry import build_encoder, encoder_entry
from cemjax.models.spec import ModelSpec, build_model

QUALITY_JSON = "quality.json"
GOOD, BAD = "good", "bad"
TRUE_LABELS = {"1", "good", "informative", "true", "yes", "keep"}
FALSE_LABELS = {"0", "bad", "uninformative", "false", "no", "junk"}


@dataclass
class TrainConfig:
    """data: a folder with good/ and bad/ sub-folders, or a CSV of path,label (1/good = informative).
    init: torchvision/MoCo weights to start from (3-channel stems are summed to one channel);
    freeze_until: first trainable stage ('layer4' = the reference's setup), None = train everything."""

    data: str
    out: str
    encoder: str = "resnet34"
    size: int = 224
    epochs: int = 20
    batch: int = 64
    lr: float = 1e-3
    val_fraction: float = 0.15
    seed: int = 0
    threshold: float = 0.5
    init: str | None = None
    freeze_until: str | None = None
    mean: float = CEM500K_NORMS[0]
    std: float = CEM500K_NORMS[1]
    progress: bool = True


# ----------------------------------------------------------------------------------------------------------
# Labelled data
# ----------------------------------------------------------------------------------------------------------


def write_labelled_folders(root: str, patches: np.ndarray, informative: np.ndarray) -> str:
    """Write uint8 patches [N, H, W] as <root>/good/*.png and <root>/bad/*.png (informative 1 → good)."""
    for label in (GOOD, BAD):
        os.makedirs(os.path.join(root, label), exist_ok=True)
    for i, (p, y) in enumerate(zip(patches, informative, strict=True)):
        Image.fromarray(p).save(os.path.join(root, GOOD if y else BAD, f"{i:06d}.png"))
    return root


def _parse_label(value: str, where: str) -> int:
    v = value.strip().lower()
    if v in TRUE_LABELS:
        return 1
    if v in FALSE_LABELS:
        return 0
    raise ValueError(f"{where}: label {value!r} is neither informative ({sorted(TRUE_LABELS)}) nor not")


def list_labelled(data: str) -> tuple[list[str], np.ndarray]:
    """(paths, labels uint8 [N]) from good/ + bad/ folders or a CSV with columns path,label (header optional;
    relative paths are relative to the CSV's folder)."""
    if os.path.isdir(data):
        paths, labels = [], []
        for label, y in ((GOOD, 1), (BAD, 0)):
            folder = os.path.join(data, label)
            if not os.path.isdir(folder):
                raise FileNotFoundError(f"{data}: expected sub-folders '{GOOD}/' and '{BAD}/' (missing {label}/)")
            names = sorted(f for f in os.listdir(folder) if not f.startswith("."))
            paths += [os.path.join(folder, f) for f in names]
            labels += [y] * len(names)
        return paths, np.array(labels, np.uint8)
    base = os.path.dirname(os.path.abspath(data))
    paths, labels = [], []
    with open(data, newline="") as f:
        for k, row in enumerate(csv.reader(f)):
            if not row or (k == 0 and row[0].strip().lower() == "path"):
                continue
            if len(row) < 2:
                raise ValueError(f"{data}:{k + 1}: need 'path,label', got {row}")
            paths.append(row[0] if os.path.isabs(row[0]) else os.path.join(base, row[0]))
            labels.append(_parse_label(row[1], f"{data}:{k + 1}"))
    return paths, np.array(labels, np.uint8)


def read_patch(path: str) -> np.ndarray:
    """One 2D image file → uint8 [H, W] (any format and dtype `cemjax.io` reads; RGB → gray)."""
    with open_em(path) as em:
        if em.ndim != 2:
            raise ValueError(f"{path}: a labelled patch must be a 2D image, got shape {em.shape}")
        return to_uint8(read_plane_block(em, "xy", 0, 1))[0]


def load_labelled(data: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 [N, size, size], labels uint8 [N]) for `list_labelled(data)`, resized by `fit_size`."""
    paths, labels = list_labelled(data)
    if len(paths) == 0 or labels.min() == labels.max():
        raise ValueError(f"{data}: need labelled patches of both classes, got {np.bincount(labels, minlength=2)}")
    images = [read_patch(p) for p in paths]
    out = np.empty((len(images), size, size), np.uint8)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, im in enumerate(images):
        by_shape.setdefault(im.shape, []).append(i)
    for idx in by_shape.values():
        out[idx] = np.asarray(fit_size(np.stack([images[i] for i in idx]), size) * 255.0 + 0.5).astype(np.uint8)
    return out, labels


# ----------------------------------------------------------------------------------------------------------
# Preprocessing and augmentation (jitted, per-sample keys)
# ----------------------------------------------------------------------------------------------------------


def fit_size(patches: jax.Array, size: int) -> jax.Array:
    """uint8 [N, H, W] → float32 [N, size, size] in [0, 1] (antialiased bilinear; identity if already size)."""
    x = jnp.asarray(patches).astype(jnp.float32) / 255.0
    if x.shape[1:] == (size, size):
        return x
    return jnp.clip(jax.image.resize(x, (x.shape[0], size, size), "linear", antialias=True), 0.0, 1.0)


def augment_one(key: jax.Array, x: jax.Array) -> jax.Array:
    """The reference's augmentation of one [H, W] image in [0, 1], each step with p 0.5:
    brightness/contrast ±0.2 (x·(1 + c) + b), Gaussian noise (σ ∈ [√10, √50]/255, albumentations' default
    variance range on 0–255), Gaussian blur (σ ∈ [0.1, 1.5] px), horizontal and vertical flips."""
    ks = jax.random.split(key, 10)
    p = jax.random.uniform(ks[0], (5,)) < 0.5
    c = jax.random.uniform(ks[1], (), minval=-0.2, maxval=0.2)
    b = jax.random.uniform(ks[2], (), minval=-0.2, maxval=0.2)
    x = jnp.where(p[0], x * (1.0 + c) + b, x)
    sd = jax.random.uniform(ks[3], (), minval=np.sqrt(10.0) / 255, maxval=np.sqrt(50.0) / 255)
    x = jnp.where(p[1], x + sd * jax.random.normal(ks[4], x.shape), x)
    sigma = jax.random.uniform(ks[5], (), minval=0.1, maxval=1.5)
    x = jnp.where(p[2], G.separable_blur(x, G.gaussian_taps(sigma, 3)), x)
    x = jnp.where(p[3], x[:, ::-1], x)
    x = jnp.where(p[4], x[::-1, :], x)
    return jnp.clip(x, 0.0, 1.0)


@jax.jit
def augment(key: jax.Array, x: jax.Array) -> jax.Array:
    """float32 [B, H, W] in [0, 1] → augmented, an independent draw per sample."""
    return jax.vmap(augment_one)(jax.random.split(key, x.shape[0]), x)


def normalise(x: jax.Array, mean: float, std: float) -> jax.Array:
    """[B, H, W] in [0, 1] → NHWC [B, H, W, 1] standardised."""
    return ((x - mean) / std)[..., None]


# ----------------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------------


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a random positive > a random negative), ties count ½."""
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores, np.float64))
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------


def split_indices(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random (train, val) index split; each class gives round(val_fraction · count) ≥ 1 to val."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for y in (0, 1):
        idx = rng.permutation(np.flatnonzero(labels == y))
        k = min(len(idx) - 1, max(1, int(round(val_fraction * len(idx))))) if val_fraction > 0 else 0
        val.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def stages(encoder: str) -> tuple[str, ...]:
    """The classifier's parameter-holding children, input to head: the encoder's blocks, then `fc`."""
    return (*encoder_entry(encoder).blocks, "fc")


def trainable_labels(freeze_until: str | None, encoder: str):
    """optax `param_labels` function: 'train' for parameters of stages ≥ freeze_until, else 'freeze'."""
    order = stages(encoder)
    if freeze_until is not None and freeze_until not in order:
        raise ValueError(f"freeze_until must be one of {order}, got {freeze_until!r}")
    first = 0 if freeze_until is None else order.index(freeze_until)
    trainable = set(order[first:])

    def labels(params):
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "train" if str(getattr(path[0], "key", path[0])) in trainable else "freeze", params
        )

    return labels


def _batches(rng: np.random.Generator, n: int, batch: int) -> np.ndarray:
    """One epoch of shuffled indices [steps, batch], the last batch filled up from a second shuffle."""
    steps = -(-n // batch)
    order = rng.permutation(n)
    while len(order) < steps * batch:
        order = np.concatenate([order, rng.permutation(n)])
    return order[: steps * batch].reshape(steps, batch)


def predict(model: nnx.Module, x: np.ndarray, size: int, mean: float, std: float, batch: int = 64) -> np.ndarray:
    """P(informative) float32 [N] for uint8 patches [N, H, W] (model switched to eval mode)."""
    model.eval()
    graphdef, state = nnx.split(model)
    fn = _inference_fn(graphdef, size, mean, std)
    out = np.empty(len(x), np.float32)
    for s in range(0, len(x), batch):
        chunk = np.asarray(x[s : s + batch])
        pad = batch - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), np.uint8)])
        out[s : s + batch - pad] = np.asarray(fn(state, chunk))[: batch - pad]
    return out


@functools.cache
def _inference_fn(graphdef, size: int, mean: float, std: float):
    @jax.jit
    def fn(state, patches):
        model = nnx.merge(graphdef, state)
        return jax.nn.sigmoid(model(normalise(fit_size(patches, size), mean, std))[:, 0])

    return fn


def initialise_backbone(model: nnx.Module, path: str) -> None:
    """Load every weight but the head from a torchvision/MoCo/smp file into `model` (3-channel stems summed
    to one channel); the 1-logit `fc` keeps its fresh initialisation. Strict on everything else."""
    backbone = build_encoder(model.name, in_channels=1, head=None, rngs=nnx.Rngs(0))
    import_resnet(backbone, path, stem="sum")
    nnx.update(model, nnx.state(backbone))


def train(cfg: TrainConfig, patches: np.ndarray | None = None, labels: np.ndarray | None = None) -> dict:
    """Train on `cfg.data` (or the given uint8 [N, size, size] patches and labels), save to `cfg.out`.

    Returns the metrics that go into quality.json: val_auroc, val_accuracy (at `cfg.threshold`), train/val
    counts, per-epoch history of train loss and val AUROC, seconds.
    """
    t0 = time.time()
    if patches is None:
        patches, labels = load_labelled(cfg.data, cfg.size)
    else:
        patches = np.asarray(fit_size(patches, cfg.size) * 255.0 + 0.5).astype(np.uint8)
    labels = np.asarray(labels, np.uint8)
    tr, va = split_indices(labels, cfg.val_fraction, cfg.seed)
    spec = ModelSpec(kind="encoder", encoder=cfg.encoder, in_channels=1, num_classes=1, head="linear")
    model = build_model(spec, seed=cfg.seed)
    if cfg.init:
        initialise_backbone(model, cfg.init)
        if cfg.progress:
            print(f"[quality] backbone initialised from {cfg.init}", file=sys.stderr)
    tx = optax.multi_transform(
        {"train": optax.adam(cfg.lr), "freeze": optax.set_to_zero()}, trainable_labels(cfg.freeze_until, cfg.encoder)
    )
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    batch = min(cfg.batch, len(tr))

    @nnx.jit
    def step(model, optimizer, key, x, y):
        x = normalise(augment(key, fit_size(x, cfg.size)), cfg.mean, cfg.std)

        def loss_fn(model):
            logits = model(x)[:, 0]
            return optax.sigmoid_binary_cross_entropy(logits, y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    rng = np.random.default_rng(cfg.seed)
    key = jax.random.key(cfg.seed)
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        losses = []
        for idx in _batches(rng, len(tr), batch):
            key, sub = jax.random.split(key)
            losses.append(step(model, optimizer, sub, patches[tr[idx]], labels[tr[idx]].astype(np.float32)))
        val_scores = predict(model, patches[va], cfg.size, cfg.mean, cfg.std) if len(va) else np.zeros(0)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_auroc": auroc(val_scores, labels[va])}
        history.append(row)
        if cfg.progress:
            print(f"[quality] epoch {row['epoch']}/{cfg.epochs} loss {row['train_loss']:.4f} "
                  f"val AUROC {row['val_auroc']:.4f} ({time.time() - t0:.0f}s)", file=sys.stderr)  # fmt: skip
    val_scores = predict(model, patches[va], cfg.size, cfg.mean, cfg.std) if len(va) else np.zeros(0)
    metrics = {
        "val_auroc": auroc(val_scores, labels[va]),
        "val_accuracy": float(((val_scores > cfg.threshold) == labels[va].astype(bool)).mean()) if len(va) else None,
        "n_train": int(len(tr)),
        "n_val": int(len(va)),
        "history": history,
        "seconds": time.time() - t0,
    }
    save_classifier(cfg.out, model, spec, cfg, metrics)
    return metrics


def save_classifier(directory: str, model: nnx.Module, spec: ModelSpec, cfg: TrainConfig, metrics: dict) -> None:
    """`save_model` + quality.json (threshold, input size, normalisation, training config and metrics)."""
    save_model(directory, model, spec)
    meta = {"threshold": cfg.threshold, "size": cfg.size, "mean": cfg.mean, "std": cfg.std, **metrics}
    meta["config"] = {k: v for k, v in asdict(cfg).items() if k != "progress"}
    write_json(os.path.join(directory, QUALITY_JSON), meta)


# ----------------------------------------------------------------------------------------------------------
# Inference
# ----------------------------------------------------------------------------------------------------------


class Scorer:
    """uint8 [N, H, W] → float32 [N] P(informative), batched and jitted; `threshold` from quality.json."""

    def __init__(self, directory: str, batch: int = 64):
        meta_path = os.path.join(directory, QUALITY_JSON)
        if not os.path.isfile(meta_path):
            raise FileNotFoundError(f"{directory}: not a quality classifier (no {QUALITY_JSON}); see train_quality")
        with open(meta_path) as f:
            self.meta = json.load(f)
        self.model, self.spec = load_model(directory)
        self.model.eval()
        self.threshold = float(self.meta["threshold"])
        self.size, self.mean, self.std = int(self.meta["size"]), float(self.meta["mean"]), float(self.meta["std"])
        self.batch = batch

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        return predict(self.model, np.asarray(patches, np.uint8), self.size, self.mean, self.std, self.batch)


def load_classifier(directory: str) -> Scorer:
    return Scorer(directory)
