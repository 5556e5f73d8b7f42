"""Optimizer pieces for pretraining, as optax transformations equal to their PyTorch originals."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def larc(trust_coefficient: float = 1e-3, weight_decay: float = 0.0, eps: float = 1e-8):
    """LARC in its scaling mode (You et al. 2017; NVIDIA apex's `LARC(clip=False)`, which the SwAV reference
    wraps around SGD), applied to the gradient before the inner optimizer. Per parameter tensor p with gradient g:
    when ‖p‖ ≠ 0 and ‖g‖ ≠ 0, g ← (g + wd·p) · trust · ‖p‖ / (‖g‖ + wd·‖p‖ + eps); otherwise g is left as it is
    (and not decayed). The weight decay lives here: chain with an optimizer that has none (`larc_sgd`)."""

    def update(updates, state, params):
        def one(g, p):
            p_norm, g_norm = jnp.linalg.norm(p), jnp.linalg.norm(g)
            local_lr = trust_coefficient * p_norm / (g_norm + p_norm * weight_decay + eps)
            return jnp.where((p_norm != 0) & (g_norm != 0), (g + weight_decay * p) * local_lr, g)

        return jax.tree.map(one, updates, params), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def larc_sgd(lr, *, momentum: float, weight_decay: float, trust_coefficient: float = 1e-3):
    """torch.optim.SGD(lr, momentum, weight_decay) wrapped in LARC as the SwAV reference builds it: LARC takes
    the weight decay over, then SGD with momentum (buf = μ·buf + g; θ -= lr·buf). `lr`: a number or a
    schedule of the step."""
    return optax.chain(larc(trust_coefficient, weight_decay), optax.sgd(lr, momentum=momentum))
