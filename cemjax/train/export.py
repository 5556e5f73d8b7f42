"""PyTorch files from a MoCo train state: the reference `.pth.tar`, torchvision encoder weights, safetensors."""

from __future__ import annotations

import os

import jax
import numpy as np

from cemjax.convert import export_moco, write_weights
from cemjax.convert.state import to_torch_state_dict
from cemjax.train.moco_step import encoders_from_state


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
