"""Test-wide settings: 8 simulated CPU devices for sharding tests, one torch thread per xdist worker."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _torch_single_thread():
    try:
        import torch
    except ImportError:
        yield
        return
    torch.set_num_threads(1)
    yield
