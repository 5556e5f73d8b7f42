"""Online probes: how good an encoder's frozen features are for an EM task, measured while it pretrains.

Every `probe.every` steps (and at step 0, the random init) the trainer's encoder embeds a small labelled patch
set (`cemjax.data.probe_sets`) in eval mode: the pooled features of its last stage (2,048 for a ResNet-50, before
any pretraining head), computed on the mesh. Two classifiers are then fitted on the host to the probe set's train
patches and scored on its test patches:

- kNN as in the common self-supervised recipe (Wu et al. 2018; DINO; solo-learn): cosine similarity, the k = 20
  nearest train patches vote with weight exp(cos / 0.07); the class with the largest summed weight wins;
- a linear probe: multinomial logistic regression on standardised features (L2 penalty 1e-4 · ‖W‖², L-BFGS).

Both report top-1 accuracy (fraction of test patches). Reported as `probe/knn`, `probe/linear` and the probe's
wall time `probe/seconds` (TensorBoard, metrics.jsonl and the progress line).
"""

from __future__ import annotations

import time

import jax
import numpy as np
from flax import nnx
from scipy.optimize import minimize

from cemjax.data.probe_sets import ProbeSet, make_probe_set
from cemjax.models.layers import at_least_float32
from cemjax.train import mesh as mesh_lib
from cemjax.train.loop import place

KNN_K = 20
KNN_TEMPERATURE = 0.07
LINEAR_L2 = 1e-4
LINEAR_MAX_ITERATIONS = 200


def l2_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_predict(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, num_classes: int,
                k: int = KNN_K, temperature: float = KNN_TEMPERATURE) -> np.ndarray:  # fmt: skip
    """Weighted kNN: features [N, F] and [M, F], labels int [N] → predicted labels int [M]. The k most
    cosine-similar train rows (ties: the lower index) vote for their class with weight exp(similarity / T)."""
    similarity = l2_rows(test_features) @ l2_rows(train_features).T  # [M, N]
    k = min(k, similarity.shape[1])
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    weights = np.exp(np.take_along_axis(similarity, nearest, axis=1) / temperature)
    votes = np.zeros((len(similarity), num_classes))
    np.add.at(votes, (np.arange(len(similarity))[:, None], np.asarray(train_labels)[nearest]), weights)
    return votes.argmax(axis=1)


def linear_probe_predict(train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
                         num_classes: int, l2: float = LINEAR_L2) -> np.ndarray:  # fmt: skip
    """Multinomial logistic regression (weights and biases) on features standardised with the train rows'
    mean / std, fitted by L-BFGS to mean cross-entropy + l2·‖W‖² → predicted labels int [M]."""
    mean, std = train_features.mean(0), train_features.std(0) + 1e-6
    x = (np.asarray(train_features, np.float64) - mean) / std
    y = np.eye(num_classes)[np.asarray(train_labels)]
    n, f = x.shape

    def loss_and_grad(theta):
        w, b = theta[: f * num_classes].reshape(f, num_classes), theta[f * num_classes :]
        logits = x @ w + b
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        loss = -np.sum(y * np.log(p + 1e-300)) / n + l2 * np.sum(w * w)
        g = (p - y) / n
        return loss, np.concatenate([(x.T @ g + 2 * l2 * w).ravel(), g.sum(0)])

    theta0 = np.zeros(f * num_classes + num_classes)
    theta = minimize(loss_and_grad, theta0, jac=True, method="L-BFGS-B",
                     options={"maxiter": LINEAR_MAX_ITERATIONS}).x  # fmt: skip
    w, b = theta[: f * num_classes].reshape(f, num_classes), theta[f * num_classes :]
    return (((np.asarray(test_features, np.float64) - mean) / std) @ w + b).argmax(1)


def pooled_features(graphdef, variables, x: jax.Array) -> jax.Array:
    """An encoder's eval-mode pooled last-stage features: x float32 [B, S, S, C] → float32 [B, F]."""
    encoder = nnx.merge(graphdef, variables, copy=True)
    encoder.eval()
    return at_least_float32(encoder.features(x)[-1]).mean(axis=(1, 2))


class OnlineProbe:
    """`probe(encoder) → {"probe/knn", "probe/linear", "probe/seconds"}` on a fixed ProbeSet. The features are
    computed on `mesh` in chunks of `batch_size` (rounded up to the data axis; the last chunk is padded, so there is
    one compilation), normalised with `norms` as the training views are."""

    def __init__(self, probe_set: ProbeSet, *, norms: tuple[float, float], mesh, batch_size: int = 64,
                 k: int = KNN_K, temperature: float = KNN_TEMPERATURE):  # fmt: skip
        self.probe_set, self.norms, self.mesh, self.k, self.temperature = probe_set, norms, mesh, k, temperature
        devices = mesh.shape[mesh_lib.DATA]
        self.chunk = -(-batch_size // devices) * devices
        self._features = jax.jit(pooled_features, static_argnums=0, out_shardings=mesh_lib.replicated(mesh))

    def features(self, encoder: nnx.Module) -> np.ndarray:
        """float32 [N, F] for every patch of the probe set."""
        graphdef, variables = nnx.split(encoder)
        images, out = self.probe_set.images, []
        mean, std = self.norms
        for start in range(0, len(images), self.chunk):
            x = np.zeros((self.chunk, *images.shape[1:]), np.float32)
            part = images[start : start + self.chunk]
            x[: len(part)] = (part.astype(np.float32) / 255.0 - mean) / std
            x = place(x, mesh_lib.data_sharding(self.mesh))
            out.append(np.asarray(self._features(graphdef, variables, x))[: len(part)])
        return np.concatenate(out)

    def __call__(self, encoder: nnx.Module) -> dict[str, float]:
        start = time.perf_counter()
        feats = self.features(encoder)
        p = self.probe_set
        n_classes = len(p.class_names)
        args = (feats[p.train], p.labels[p.train], feats[~p.train], n_classes)
        knn = knn_predict(*args, k=self.k, temperature=self.temperature)
        linear = linear_probe_predict(*args)
        truth = p.labels[~p.train]
        return {
            "probe/knn": float(np.mean(knn == truth)),
            "probe/linear": float(np.mean(linear == truth)),
            "probe/seconds": time.perf_counter() - start,
        }


def make_online_probe(config, mesh) -> OnlineProbe | None:
    """The probe `config.probe` asks for (None when `probe.every` is 0 or the config has no probe block)."""
    probe = config.get("probe")
    if probe is None or not probe.every:
        return None
    if probe.every < 0 or probe.k < 1 or probe.temperature <= 0 or probe.patches < 8:
        raise ValueError(f"invalid probe config: every={probe.every} (≥ 0), k={probe.k} (≥ 1), temperature="
                         f"{probe.temperature} (> 0), patches={probe.patches} (≥ 8)")  # fmt: skip
    probe_set = make_probe_set(probe.set, probe.patches, config.image_size, seed=config.seed)
    if jax.process_index() == 0:
        print(f"probe set: {probe_set.summary()}", flush=True)
    return OnlineProbe(probe_set, norms=tuple(config.data.norms), mesh=mesh, batch_size=probe.batch_size,
                       k=probe.k, temperature=probe.temperature)  # fmt: skip
