"""Interleaved step timing and its Markdown table, shared by the CPU step benchmarks (`moco_step_cpu.py`,
`swav_step_cpu.py`). No JAX or PyTorch here: a step is any callable that runs one step to completion."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_medians(steps: dict[str, Callable[[], None]], rounds: int, per_round: int) -> dict[str, float]:
    """Seconds per step of every implementation: `rounds` rounds, each timing `per_round` steps of every one in
    turn (so load on a shared machine hits all alike); the median over rounds. Warm-up is the caller's."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(rounds):
        for name, run in steps.items():
            start = time.perf_counter()
            for _ in range(per_round):
                run()
            times[name].append((time.perf_counter() - start) / per_round)
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{t[-1]:.3f}" for t in times.values()), flush=True)
    return {name: statistics.median(t) for name, t in times.items()}


def ratio_table(seconds: dict[str, float], baseline: str, images_per_step: int, *, unit: str = "s") -> str:
    """Markdown rows: implementation, time per step (`unit` "s" or "ms"), images/s, ratio vs `baseline`'s time."""
    scale = 1000.0 if unit == "ms" else 1.0
    digits = 1 if unit == "ms" else 3
    lines = [f"| implementation | {unit}/step | img/s | ratio vs torch |", "|---|---|---|---|"]
    for name, s in seconds.items():
        lines.append(f"| {name} | {s * scale:.{digits}f} | {images_per_step / s:.1f} | {s / seconds[baseline]:.2f} |")
    return "\n".join(lines)


def compiled_runner(step: Callable, state, batch, mode: str) -> Callable[[], None]:
    """`step(state, batch, key)` jitted with the state donated and compiled under the CPU gradient `mode`, run
    once (warm-up); → a callable that runs one more step and waits for it."""
    import jax

    from cemjax.models.cpu_grads import gradient_mode

    with gradient_mode(mode):
        compiled = jax.jit(step, donate_argnums=0).lower(state, batch, jax.random.key(0)).compile()
    holder = {"state": state}

    def run():
        holder["state"], metrics = compiled(holder["state"], batch, jax.random.key(0))
        jax.block_until_ready(metrics)

    run()
    return run
