"""Learning-rate schedules by optimizer step (docs/method.md §2 counts epochs; we convert with steps_per_epoch)."""

from __future__ import annotations

import jax.numpy as jnp


def moco_lr(
    base_lr: float,
    *,
    steps_per_epoch: int,
    epochs: int,
    kind: str = "step",
    milestones: tuple[int, ...] = (120, 160),
    gamma: float = 0.1,
):
    """MoCo's schedules, as a function of the step about to be taken (0-based).

    "step": base_lr · gamma^(number of milestones ≤ epoch), the paper's ×0.1 at epochs 120 and 160;
    "cosine": base_lr · ½(1 + cos(π · epoch / epochs)), with the fractional epoch (MoCo's `--cos`).
    """
    if kind == "step":
        bounds = jnp.asarray([m * steps_per_epoch for m in milestones], jnp.int32)

        def schedule(step):
            return base_lr * gamma ** jnp.sum(jnp.asarray(step) >= bounds).astype(jnp.float32)

        return schedule
    if kind == "cosine":
        total = float(epochs * steps_per_epoch)

        def schedule(step):
            return base_lr * 0.5 * (1.0 + jnp.cos(jnp.pi * jnp.asarray(step, jnp.float32) / total))

        return schedule
    raise ValueError(f"optim.schedule must be 'step' or 'cosine', got {kind!r}")


def scaled_lr(base_lr: float, batch_size: int, base_batch: int = 128) -> float:
    """The linear scaling rule the reference uses: 0.015 at batch 128."""
    return base_lr * batch_size / base_batch


def warmup_cosine(base_lr: float, final_lr: float, *, total_steps: int, warmup_steps: int = 0,
                  start_lr: float = 0.0):  # fmt: skip
    """SwAV's schedule by step (0-based): `np.linspace(start_lr, base_lr, warmup_steps)` for the warm-up, then
    final_lr + ½(base_lr − final_lr)(1 + cos(π t / (total_steps − warmup_steps))), t = step − warmup_steps."""
    cosine_steps = float(max(total_steps - warmup_steps, 1))

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        warm = start_lr + (base_lr - start_lr) * step / max(warmup_steps - 1, 1)
        t = step - warmup_steps
        cos = final_lr + 0.5 * (base_lr - final_lr) * (1.0 + jnp.cos(jnp.pi * t / cosine_steps))
        return jnp.where(step < warmup_steps, warm, cos)

    return schedule
