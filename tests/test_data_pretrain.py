"""Pretraining grain loader on a real array_record build: determinism, process shards, Orbax checkpointing."""

import itertools

import numpy as np
import pytest

from cemjax.data.build import build_cem500k
from cemjax.data.pretrain import batch_loader
from cemjax.data.sources import ImageSource
from cemjax.data.testing import patch_id, write_fake_cem500k

N = 36


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    write_fake_cem500k(root / "release", n=N, seed=1)
    build_cem500k(root / "release", root / "tfds")
    return str(root / "tfds")


def make_pretrain_loader(data_dir, **kwargs):
    """What the pretraining trainers read for `data.source="tfds"`."""
    return batch_loader(ImageSource("cem500k", "train", data_dir), canvas=(224, 224), **kwargs)


def _ids(loader, n_batches):
    out = []
    for batch in itertools.islice(iter(loader), n_batches):
        assert set(batch) == {"image", "valid"}
        assert batch["image"].dtype == np.uint8 and batch["image"].shape[1:] == (224, 224, 1)
        out.append(patch_id(batch["image"]).tolist())
    return out


def test_seeded_epochs_and_worker_independence(data_dir):
    ids = _ids(make_pretrain_loader(data_dir, global_batch_size=6, seed=4, num_epochs=2), 100)
    assert len(ids) == 12 and all(len(b) == 6 for b in ids)
    first, second = sum(ids[:6], []), sum(ids[6:], [])
    assert sorted(first) == sorted(second) == list(range(N)) and first != second  # reshuffled each epoch
    assert _ids(make_pretrain_loader(data_dir, global_batch_size=6, seed=4, num_epochs=2), 100) == ids
    assert _ids(make_pretrain_loader(data_dir, global_batch_size=6, seed=5, num_epochs=2), 100) != ids
    workers = _ids(make_pretrain_loader(data_dir, global_batch_size=6, seed=4, num_epochs=2, worker_count=2), 100)
    assert workers == ids


def test_process_shards_are_disjoint_and_cover(data_dir):
    per_process = [
        sum(_ids(make_pretrain_loader(data_dir, global_batch_size=8, seed=0, num_epochs=1, process_index=i,
                                      process_count=2), 100), [])
        for i in range(2)
    ]  # fmt: skip
    assert all(len(p) == 16 for p in per_process)  # 18 per shard, batches of 4, remainder dropped
    assert not set(per_process[0]) & set(per_process[1])
    with pytest.raises(ValueError, match="not divisible"):
        make_pretrain_loader(data_dir, global_batch_size=7, seed=0, process_count=2)


def test_iterator_state_round_trips_through_orbax(data_dir, tmp_path):
    import grain
    import orbax.checkpoint as ocp

    loader = make_pretrain_loader(data_dir, global_batch_size=4, seed=2)
    it = iter(loader)
    for _ in range(5):
        next(it)
    with ocp.CheckpointManager(tmp_path / "ckpt") as mngr:
        mngr.save(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointSave(it)))
        mngr.wait_until_finished()
        expected = [patch_id(next(it)["image"]).tolist() for _ in range(12)]  # crosses an epoch boundary
        fresh = iter(make_pretrain_loader(data_dir, global_batch_size=4, seed=2))
        mngr.restore(5, args=ocp.args.Composite(data=grain.checkpoint.CheckpointRestore(fresh)))
    assert [patch_id(next(fresh)["image"]).tolist() for _ in range(12)] == expected
