"""Weight interop between cemjax (Flax NNX) and PyTorch: torchvision, segmentation_models_pytorch, the
reference MoCo checkpoint and the CEM1.5M SwAV weights. See `names.py` for the one rule table."""

from cemjax.convert.checkpoints import (
    detect_layout,
    encoder_state,
    encoder_to_unet_state,
    export_encoder_files,
    export_moco,
    export_resnet,
    export_swav,
    export_unet,
    import_moco,
    import_resnet,
    import_swav,
    import_unet,
    load_state,
    moco_state_dict,
    swav_state_dict,
)
from cemjax.convert.files import (
    CheckpointFormatError,
    UnsafeCheckpointError,
    read_weights,
    torch_available,
    write_weights,
)
from cemjax.convert.state import LoadReport, WeightMismatchError, load_torch_state_dict, to_torch_state_dict

__all__ = [
    "CheckpointFormatError",
    "LoadReport",
    "UnsafeCheckpointError",
    "WeightMismatchError",
    "detect_layout",
    "encoder_state",
    "encoder_to_unet_state",
    "export_encoder_files",
    "export_moco",
    "export_resnet",
    "export_swav",
    "export_unet",
    "import_moco",
    "import_resnet",
    "import_swav",
    "import_unet",
    "load_state",
    "load_torch_state_dict",
    "moco_state_dict",
    "read_weights",
    "swav_state_dict",
    "torch_available",
    "to_torch_state_dict",
    "write_weights",
]
