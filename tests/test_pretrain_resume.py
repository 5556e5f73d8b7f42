"""Faults: SIGKILL at arbitrary steps then resume ends bit-identical (subprocesses, as a real preemption)."""

import pytest
import torch
from pretrain_helpers import moco_export, run_pretrain, run_until_line_then_kill


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax_cache")


def test_sigkill_at_arbitrary_steps_then_resume_is_bit_identical(tmp_path, cache):
    reference = tmp_path / "uninterrupted"
    run_pretrain(reference, cache_dir=cache)

    workdir = tmp_path / "killed"
    run_until_line_then_kill(workdir, "step       6/", cache_dir=cache)  # checkpoints every 4 steps: last is 4
    out = run_until_line_then_kill(workdir, "step      10/", cache_dir=cache)  # resumes at 4, killed after 10
    assert "resumed from step 4" in out
    out = run_pretrain(workdir, cache_dir=cache)  # resumes at 8, runs to 16
    assert "resumed from step 8" in out

    a, b = moco_export(workdir), moco_export(reference)
    assert a["epoch"] == b["epoch"] and a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
