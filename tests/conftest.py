"""Test-wide settings: 8 simulated CPU devices for sharding tests, one torch thread per xdist worker."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import fcntl  # noqa: E402

import numpy as np  # noqa: E402
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


# ---------------------------------------------------------------------------------------------------------------
# synthetic segmentation benchmarks, built once per test session (shared by the fine-tuning and TFDS tests)
# ---------------------------------------------------------------------------------------------------------------
def _to_nifti(root):
    """Replace the synthetic UroCell nrrd volumes by .nii.gz, as the real UroCell ships."""
    import nibabel
    import nrrd

    for path in sorted((root / "urocell" / "3d").glob("*/*/*.nrrd")):
        array, _ = nrrd.read(str(path), index_order="C")
        image = nibabel.Nifti1Image(np.ascontiguousarray(array.T), np.diag([0.048, 0.048, 0.048, 1.0]))  # µm
        image.header.set_xyzt_units("micron")
        nibabel.save(image, str(path).replace(".nrrd", ".nii.gz"))
        path.unlink()


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """Synthetic benchmarks (small preset) and all ten configs built in ONE child process; shared by the
    xdist workers of one session through a lock file. → (benchmarks root, TFDS data_dir)."""
    from cemjax.benchmarks import BENCHMARKS
    from cemjax.data.build import build_benchmarks
    from cemjax.synthetic import write_benchmarks

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "cem_benchmarks_built"
    shared.mkdir(exist_ok=True)
    root, data_dir = shared / "root", shared / "tfds"
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "done").exists():
            write_benchmarks(root, size="small", seed=0)
            _to_nifti(root)
            build_benchmarks(tuple(BENCHMARKS), root, data_dir)
            (shared / "done").touch()
    return root, str(data_dir)
