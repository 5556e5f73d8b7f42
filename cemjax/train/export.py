"""PyTorch files from a MoCo train state: the reference `.pth.tar`, torchvision encoder weights, safetensors."""

from __future__ import annotations

import os

import jax
import numpy as np

from cemjax.convert import export_moco, write_weights
from cemjax.convert.state import to_torch_state_dict
from cemjax.train import checkpointing
from cemjax.train.moco_step import build_encoder, encoders_from_state, init_state, sgd_with_weight_decay


def export_pretrained(graphdef, state, config, out_dir: str, *, epoch: int) -> dict[str, str]:
    """Write into `out_dir`:
    - `mocov2.pth.tar`: the reference checkpoint layout (both encoders, queue, norms) — `module.encoder_q.*` …;
    - `encoder_torchvision.pth` / `.safetensors`: the query encoder without the MLP head, torchvision names
      (load with `net.fc = torch.nn.Identity(); net.load_state_dict(sd, strict=True)`);
    - `unet_encoder.pth`: the same keys prefixed `encoder.` for segmentation_models_pytorch's Unet.
    """
    state = jax.device_get(state)
    encoder_q, encoder_k = encoders_from_state(graphdef, state)
    os.makedirs(out_dir, exist_ok=True)
    paths = {
        "moco": export_moco(
            os.path.join(out_dir, "mocov2.pth.tar"),
            encoder_q,
            encoder_k,
            np.asarray(state.queue),
            int(state.queue_ptr),
            epoch=epoch,
            norms=tuple(config.data.norms),
        )
    }
    encoder = {k: v for k, v in to_torch_state_dict(encoder_q).items() if not k.startswith("fc.")}
    paths["torchvision"] = write_weights(os.path.join(out_dir, "encoder_torchvision.pth"), encoder)
    paths["safetensors"] = write_weights(os.path.join(out_dir, "encoder_torchvision.safetensors"), encoder)
    paths["unet_encoder"] = write_weights(
        os.path.join(out_dir, "unet_encoder.pth"), {f"encoder.{k}": v for k, v in encoder.items()}
    )
    return {k: str(v) for k, v in paths.items()}


def restore_pretraining(workdir: str, step: int | None = None):
    """A pretraining workdir's saved step (default: the latest) → (graphdef, MoCoState on the host, config,
    step, steps_per_epoch). Raises FileNotFoundError naming the folder when it is not a pretraining workdir."""
    import json

    import ml_collections
    import orbax.checkpoint as ocp

    config_path = os.path.join(workdir, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"{workdir}: no config.json — not a pretraining workdir (experiments/pretrain.py)")
    with open(config_path) as f:
        saved = json.load(f)
    steps_per_epoch = saved.pop("resolved_steps_per_epoch", 0)
    config = ml_collections.ConfigDict(saved)
    m = config.model
    encoder = build_encoder(m.depth, m.in_channels, m.embed_dim, m.compute_dtype, config.seed)
    tx = sgd_with_weight_decay(lambda _: 0.0, config.optim.momentum, config.optim.weight_decay)  # structure only
    graphdef, template = init_state(encoder, tx, config.moco.queue_size, m.embed_dim, config.seed)
    manager = checkpointing.make_manager(os.path.join(workdir, "checkpoints"), every=1, keep=1, async_save=False)
    step = manager.latest_step() if step is None else step
    if step is None:
        raise FileNotFoundError(f"{workdir}/checkpoints holds no checkpoint yet")
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), template)
    state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"]
    return graphdef, state, config, step, steps_per_epoch


def export_checkpoint(workdir: str, out_dir: str | None = None, step: int | None = None) -> dict[str, str]:
    """Export any saved step (default: the latest) of a pretraining workdir, as `export_pretrained` does."""
    graphdef, state, config, step, steps_per_epoch = restore_pretraining(workdir, step)
    epoch = step // steps_per_epoch if steps_per_epoch else 0
    return export_pretrained(
        graphdef, state, config, out_dir or os.path.join(workdir, f"export_step{step}"), epoch=epoch
    )
