"""Files that are no PyTorch checkpoint end in one line (exit 3); a pickle that would run code is still refused."""

import os
import pickle

import numpy as np
import pytest
import torch
from flax import nnx

from cemjax.common.errors import EXIT_INPUT, EXIT_REFUSED, exit_code, guarded
from cemjax.convert import CheckpointFormatError, UnsafeCheckpointError, import_resnet, read_weights
from cemjax.models import ResNet

NOT_CHECKPOINTS = {
    "random": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    "text": b"hello world\nthis is not a checkpoint\n",
    "zip_without_pickle": b"PK\x05\x06" + bytes(18),
    "half_pickle": pickle.dumps({"a": 1})[:-3],
}


@pytest.mark.parametrize("kind", sorted(NOT_CHECKPOINTS))
def test_a_file_that_is_no_checkpoint_is_one_input_error_line(tmp_path, kind, capsys):
    path = tmp_path / "x.pth"
    path.write_bytes(NOT_CHECKPOINTS[kind])
    with pytest.raises(CheckpointFormatError) as info:
        read_weights(path)
    err = info.value
    assert not isinstance(err, UnsafeCheckpointError) and exit_code(err) == EXIT_INPUT
    text = str(err)
    assert "x.pth is not a PyTorch checkpoint (" in text and "expected a .pth/.pth.tar saved by torch.save" in text
    assert "\n" not in text and "will likely succeed" not in text and "weights_only" not in text
    with pytest.raises(CheckpointFormatError):  # the importer says the same, never an IndexError
        import_resnet(ResNet(18, rngs=nnx.Rngs(0)), path)
    code = guarded(lambda: read_weights(path))()
    printed = capsys.readouterr().err
    assert code == EXIT_INPUT and printed.count("\n") == 1 and printed.startswith("error: ")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("true",))


@pytest.mark.parametrize("writer", ["torch_zip", "plain_pickle"])
def test_a_pickle_that_would_run_code_is_refused_without_torchs_advice(tmp_path, writer):
    path = tmp_path / "evil.pth"
    payload = {"state_dict": {"w": torch.zeros(1)}, "hook": _RunsCode()}
    torch.save(payload, path) if writer == "torch_zip" else path.write_bytes(pickle.dumps(payload))
    with pytest.raises(UnsafeCheckpointError) as info:
        read_weights(path)
    assert exit_code(info.value) == EXIT_REFUSED
    assert "will likely succeed" not in str(info.value) and "\n" not in str(info.value)
