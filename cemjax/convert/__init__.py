"""Weight interop between cemjax (Flax NNX) and PyTorch: torchvision, segmentation_models_pytorch, the
reference MoCo checkpoint and the CEM1.5M SwAV weights. See `names.py` for the one rule table."""

from cemjax.convert.checkpoints import (
    PAPER_NORMS,
    detect_layout,
    encoder_to_unet_state,
    export_moco,
    export_resnet,
    export_unet,
    import_moco,
    import_resnet,
    import_unet,
    load_state,
    moco_state_dict,
)
from cemjax.convert.files import CheckpointFormatError, UnsafeCheckpointError, read_weights, write_weights
from cemjax.convert.state import LoadReport, WeightMismatchError, load_torch_state_dict, to_torch_state_dict

__all__ = [
    "PAPER_NORMS",
    "CheckpointFormatError",
    "LoadReport",
    "UnsafeCheckpointError",
    "WeightMismatchError",
    "detect_layout",
    "encoder_to_unet_state",
    "export_moco",
    "export_resnet",
    "export_unet",
    "import_moco",
    "import_resnet",
    "import_unet",
    "load_state",
    "load_torch_state_dict",
    "moco_state_dict",
    "read_weights",
    "to_torch_state_dict",
    "write_weights",
]
