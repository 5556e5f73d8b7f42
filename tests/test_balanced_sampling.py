"""Source-balanced sampling on a real array_record build with sources of 24, 8 and 4 patches: the weights equal
the reference's `_example_weights`, the stream's source frequencies follow them, and the weighted loader is
deterministic, the same for any process count, and resumes from Orbax like the uniform one."""

import itertools

import numpy as np
import pytest

from cemjax.configs import get_config
from cemjax.data.build import build_cem500k
from cemjax.data.pretrain import batch_loader, make_loader
from cemjax.data.sources import ImageSource, ShuffledBatches, source_balance_weights
from cemjax.data.testing import fake_source, patch_id, write_fake_cem500k

SIZES = (24, 8, 4)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("balanced")
    write_fake_cem500k(root / "release", n=sum(SIZES), sources=SIZES, seed=2)
    build_cem500k(root / "release", root / "tfds")
    return str(root / "tfds")


@pytest.fixture(scope="module")
def source(data_dir):
    return ImageSource("cem500k", "train", data_dir)


def reference_example_weights(counts_by_source: dict[str, int], gamma: float) -> dict[str, float]:
    """The reference's `_example_weights`, restated: (1 / count)^γ per source, normalised over the sources;
    every image of a source gets its source's weight."""
    counts = np.array(list(counts_by_source.values()), np.float64)
    weights = (1 / counts) ** gamma
    return dict(zip(counts_by_source, weights / weights.sum(), strict=True))


def test_source_names_and_weights_follow_the_reference(source):
    names = source.source_names()
    ids = [int(patch_id(source[i]["image"][None])[0]) for i in range(len(source))]
    assert names == [fake_source(i, SIZES) for i in ids]
    for gamma in (0.3, 0.5, 1.0):
        ours = source_balance_weights(names, gamma)
        per_source = reference_example_weights({f"source{s}": n for s, n in enumerate(SIZES)}, gamma)
        expected = np.array([per_source[n] for n in names])
        np.testing.assert_allclose(ours, expected / expected.sum(), rtol=1e-12)
    np.testing.assert_allclose(source_balance_weights(names, 0.0), 1 / len(names))


@pytest.mark.parametrize("gamma", [0.5, 1.0])
def test_stream_source_frequencies(source, gamma):
    """Over 36,000 positions each source comes up with probability n_s^(1−γ) / Σ n^(1−γ) (±0.012, 4σ)."""
    names = source.source_names()
    batches = ShuffledBatches(source, 6, seed=3, weights=source_balance_weights(names, gamma))
    drawn = np.array([names[batches.record(p)] for p in range(36_000)])
    shares = np.array(SIZES, np.float64) ** (1 - gamma)
    for s, share in enumerate(shares / shares.sum()):
        assert abs(np.mean(drawn == f"source{s}") - share) < 0.012
    again = ShuffledBatches(source, 6, seed=3, weights=source_balance_weights(names, gamma))
    other = ShuffledBatches(source, 6, seed=4, weights=source_balance_weights(names, gamma))
    assert [again.record(p) for p in range(500)] == [batches.record(p) for p in range(500)]
    assert [other.record(p) for p in range(500)] != [batches.record(p) for p in range(500)]


def _ids(loader, n):
    return [patch_id(b["image"]).tolist() for b in itertools.islice(iter(loader), n)]


def test_weighted_loader_is_process_independent_and_resumes(source, tmp_path):
    import grain
    import orbax.checkpoint as ocp

    weights = source_balance_weights(source.source_names(), 0.5)
    loader = lambda **kw: batch_loader(source, global_batch_size=8, seed=1, canvas=(224, 224), weights=weights,  # noqa: E731
                                       **kw)  # fmt: skip
    whole = _ids(loader(), 10)
    halves = [_ids(loader(process_index=i, process_count=2), 10) for i in range(2)]
    assert [a + b for a, b in zip(*halves, strict=True)] == whole

    it = iter(loader())
    for _ in range(3):
        next(it)
    with ocp.CheckpointManager(tmp_path / "ckpt") as manager:
        manager.save(3, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
        manager.wait_until_finished()
        expected = [patch_id(next(it)["image"]).tolist() for _ in range(6)]  # crosses a block of 36 positions
        fresh = iter(loader())
        manager.restore(3, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(fresh)))
    assert [patch_id(next(fresh)["image"]).tolist() for _ in range(6)] == expected == whole[3:9]


def test_config_switches_it_on_for_any_method(data_dir, source):
    for name in ("mocov2:test", "swav:test"):
        config = get_config(name)
        config.data.update(source="tfds", data_dir=data_dir, balance_gamma=0.5)
        loader, _ = make_loader(config, process_index=0, process_count=1)
        expected = ShuffledBatches(source, config.batch_size, config.seed, canvas=(224, 224),
                                   weights=source_balance_weights(source.source_names(), 0.5))  # fmt: skip
        assert _ids(loader, 3) == [patch_id(expected[k]["image"]).tolist() for k in range(3)]
    config.data.balance_gamma = -0.1
    with pytest.raises(ValueError, match="data.balance_gamma=-0.1 must be ≥ 0"):
        make_loader(config, process_index=0, process_count=1)
    assert get_config("mocov2").data.balance_gamma == 0 and get_config("swav").data.balance_gamma == 0.5
