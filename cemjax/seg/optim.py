"""Fine-tuning optimizer (docs/method.md §4): AdamW with PyTorch's one-cycle schedule on the lr and on β1.

The reference builds `torch.optim.AdamW(params, lr=0.003, weight_decay=0.1)` and
`OneCycleLR(optimizer, 0.003, total_steps=iters)` with all other settings at their defaults, and calls
`scheduler.step()` once after every `optimizer.step()`. Here a schedule is a function of `step`, the number of
optimizer steps already taken, so `lr(k)` is the learning rate the (k+1)-th torch `optimizer.step()` uses.

OneCycleLR with `three_phase=False` has two phases over the steps s = 0 … total_steps − 1:

* warm-up, s ∈ [0, e1] with e1 = pct_start · total_steps − 1: lr anneals max_lr/div_factor → max_lr while β1
  anneals max_momentum → base_momentum;
* decay, s ∈ (e1, total_steps − 1]: lr anneals max_lr → max_lr/(div_factor · final_div_factor) while β1 anneals
  back base_momentum → max_momentum.

"cos" annealing from a to b at fraction p is b + (a − b)(1 + cos πp)/2; "linear" is a + (b − a)p.
torch refuses steps beyond total_steps; these functions just extrapolate the decay phase there.
"""

from __future__ import annotations

from collections.abc import Callable

import jax.numpy as jnp
import optax

Schedule = Callable[[int], jnp.ndarray]


def _anneal(kind: str) -> Callable:
    if kind == "cos":
        return lambda start, end, pct: end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1.0)
    if kind == "linear":
        return lambda start, end, pct: (end - start) * pct + start
    raise ValueError(f"anneal must be 'cos' or 'linear', got {kind!r}")


def one_cycle(
    total_steps: int,
    max_lr: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    base_momentum: float = 0.85,
    max_momentum: float = 0.95,
    anneal: str = "cos",
) -> tuple[Schedule, Schedule]:
    """PyTorch `OneCycleLR` (two phases, `cycle_momentum=True`) as `(lr(step), beta1(step))`.

    Args:
        total_steps: optimizer steps in the whole run (the reference's `iters`), > 0.
        max_lr: peak learning rate; the run starts at max_lr / div_factor and ends at
            max_lr / (div_factor · final_div_factor).
        pct_start: fraction of the steps spent warming up.
        base_momentum, max_momentum: β1 range; β1 falls max → base while the lr rises and rises back after.
        anneal: "cos" (torch's default) or "linear".

    Returns:
        Two functions of `step` (int or int array; 0 = before the first update) giving scalar arrays in the
        default float dtype (float64 under `jax.enable_x64`, where they equal torch's values to rounding).
    """
    if int(total_steps) != total_steps or total_steps <= 0:
        raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
    if not 0.0 <= pct_start <= 1.0:
        raise ValueError(f"pct_start must lie in [0, 1], got {pct_start!r}")
    annealer = _anneal(anneal)
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    warm_end = float(pct_start * total_steps) - 1.0  # last step of the warm-up phase (torch: inclusive)
    last = float(total_steps - 1)

    def _two_phase(start: float, peak: float, end: float) -> Schedule:
        def schedule(step):
            s = jnp.asarray(step).astype(jnp.result_type(float))
            rising = annealer(start, peak, s / warm_end)
            falling = annealer(peak, end, (s - warm_end) / (last - warm_end))
            return jnp.where(s <= warm_end, rising, falling)

        return schedule

    return _two_phase(initial_lr, max_lr, min_lr), _two_phase(max_momentum, base_momentum, max_momentum)


def one_cycle_adamw(
    total_steps: int, max_lr: float = 0.003, weight_decay: float = 0.1, *, b2: float = 0.999, eps: float = 1e-8,
    **schedule,
) -> optax.GradientTransformation:  # fmt: skip
    """`torch.optim.AdamW(lr=max_lr, weight_decay=weight_decay)` driven by `OneCycleLR(max_lr, total_steps)`;
    `schedule` holds `one_cycle`'s keyword arguments (pct_start, div_factor, final_div_factor, base_momentum,
    max_momentum, anneal), torch's defaults when left out.

    Update k (0-based) with lr = lr(k), β1 = beta1(k) from `one_cycle`, t = k + 1, gradient g:
        m ← β1·m + (1 − β1)·g,   v ← b2·v + (1 − b2)·g²
        θ ← θ − lr·weight_decay·θ − lr · (m / (1 − β1^t)) / (√(v / (1 − b2^t)) + eps)
    i.e. the decoupled decay uses the scheduled lr, and the bias correction uses the *current* β1 raised to t,
    exactly as torch does when OneCycleLR rewrites `betas[0]` every step. Every parameter is decayed (biases and
    BatchNorm scales too), as in the reference. The current values are readable from the state:
    `state.hyperparams["learning_rate"]`, `state.hyperparams["b1"]` (the values used by the last update).
    """
    lr, beta1 = one_cycle(total_steps, max_lr, **schedule)
    # inject_hyperparams rebuilds optax.adamw every update with the schedules evaluated at the update count, so
    # scale_by_adam's moments and bias correction (1 − b1**t) see this step's β1, and the decay term is scaled by
    # this step's lr (optax.adamw: −lr · (adam_direction + weight_decay · θ)).
    return optax.inject_hyperparams(optax.adamw)(learning_rate=lr, b1=beta1, b2=b2, eps=eps, weight_decay=weight_decay)
