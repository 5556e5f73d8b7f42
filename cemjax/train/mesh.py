"""Device meshes, sharding rules and global batches (single host, multi-GPU, multi-host / TPU pods).

One mesh axis, `data`. Batches are split along it. Parameters and optimizer state follow a rule:
"replicate" (every device holds everything; right for ResNet-50's 25M parameters) or "fsdp" (each array's
largest axis that divides the device count is split along `data`; XLA all-gathers for compute).
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

DATA = "data"


def maybe_initialize_distributed(coordinator: str | None, num_processes: int, process_id: int) -> None:
    """Join a multi-process run. On TPU pods / SLURM JAX detects everything (`coordinator=auto`); locally pass
    `127.0.0.1:PORT` with explicit process counts. CPU processes talk through gloo collectives."""
    if coordinator is None or jax.distributed.is_initialized():
        return
    # Only affects CPU devices; must be set before backends start, so no backend query here.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if coordinator == "auto":
        jax.distributed.initialize()
    else:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)


def make_data_mesh(num_devices: int = -1, *, local: bool = False) -> jax.sharding.Mesh:
    """A 1-axis mesh over `num_devices` devices (-1: all devices of all processes; with `local`, of this
    process only — for work each process does on its own, such as blockwise inference)."""
    devices = jax.local_devices() if local else jax.devices()
    n = len(devices) if num_devices == -1 else num_devices
    if n > len(devices) or n < 1:
        raise ValueError(f"mesh.num_devices={num_devices}: {len(devices)} device(s) are visible")
    return jax.make_mesh((n,), (DATA,), axis_types=(jax.sharding.AxisType.Auto,), devices=devices[:n])


def data_sharding(mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA))


def replicated(mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def _fsdp_spec(shape: tuple[int, ...], n: int, min_size: int = 2**14) -> P:
    if n == 1 or int(np.prod(shape, dtype=np.int64)) < min_size:
        return P()
    for axis in np.argsort(shape)[::-1]:
        if shape[axis] % n == 0:
            spec = [None] * len(shape)
            spec[axis] = DATA
            return P(*spec)
    return P()


def state_shardings(abstract_state, mesh, rule: str):
    """A sharding for every leaf of `abstract_state` (a pytree of arrays or ShapeDtypeStructs)."""
    if rule not in ("replicate", "fsdp"):
        raise ValueError(f"param_sharding must be 'replicate' or 'fsdp', got {rule!r}")
    n = mesh.shape[DATA]

    def leaf(x):
        if rule == "replicate" or not hasattr(x, "shape"):
            return replicated(mesh)
        return NamedSharding(mesh, _fsdp_spec(tuple(x.shape), n))

    return jax.tree.map(leaf, abstract_state)


def global_batch(mesh, local: np.ndarray) -> jax.Array:
    """This process's rows [b_local, ...] → one global array [b_local · processes, ...] split along `data`."""
    return jax.make_array_from_process_local_data(data_sharding(mesh), local)


def global_batches(mesh, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """`global_batch` of every entry of a batch dict."""
    return {name: global_batch(mesh, rows) for name, rows in local.items()}
