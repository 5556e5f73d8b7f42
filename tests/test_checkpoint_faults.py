"""Checkpoints that fail: corrupted ones are set aside (never deleted) and the newest good one restores; a
non-finite state is never saved; another model's checkpoints stop with one line."""

import os
from pathlib import Path

import grain
import jax.numpy as jnp
import numpy as np
import pytest

from cemjax.common.errors import ConfigError, InputError
from cemjax.data.pretrain import iterate_batches
from cemjax.train import checkpointing


class _Numbers:
    def __len__(self):
        return 1000

    def __getitem__(self, k):
        return {"x": np.full((2,), k, np.int32)}


def _iterator():
    return iter(iterate_batches(_Numbers(), read_threads=1))


def _saved(tmp_path):
    """Checkpoints at steps 1, 2, 3 of a small state whose arrays hold the step number."""
    manager = checkpointing.make_manager(str(tmp_path / "checkpoints"), every=1, keep=5, async_save=False)
    it = _iterator()
    for step in (1, 2, 3):
        next(it)
        state = {"w": jnp.full((4, 3), float(step)), "b": {"c": jnp.arange(5.0) + step}}
        checkpointing.save(manager, step, state, it, {"step": step}, force=True)
    manager.wait_until_finished()
    return manager, state


def _first(folder: Path, pattern: str) -> Path:
    return next(p for p in sorted(folder.rglob(pattern)) if p.is_file() and p.stat().st_size > 0)


def _truncate(path: Path, keep: int = 7) -> None:
    path.write_bytes(path.read_bytes()[:keep])


CORRUPTIONS = {
    "truncated array file": lambda d: _truncate(_first(d / "state", "d/*")),
    "flipped bytes": lambda d: _flip(_first(d / "state", "d/*")),
    "empty metadata": lambda d: (d / "state" / "_METADATA").write_text(""),
    "deleted manifest": lambda d: (d / "state" / "manifest.ocdbt").unlink(),
    "truncated iterator state": lambda d: [_truncate(p, 5) for p in (d / "data").rglob("*") if p.is_file()],
    "empty step folder": lambda d: [p.unlink() for p in sorted(d.rglob("*"), reverse=True) if p.is_file()],
}  # fmt: skip


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(0, len(data), max(1, len(data) // 16)):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupted_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, kind, capsys):
    manager, state = _saved(tmp_path)
    CORRUPTIONS[kind](tmp_path / "checkpoints" / "3")
    fresh = checkpointing.make_manager(str(tmp_path / "checkpoints"), every=1, keep=5, async_save=False)
    abstract = {"w": jnp.zeros((4, 3)), "b": {"c": jnp.zeros(5)}}
    restored, step = checkpointing.restore_latest(fresh, abstract, _iterator())
    assert step == 2 and float(restored["w"][0, 0]) == 2.0
    out = capsys.readouterr().out
    assert "checkpoint step 3 in" in out and "does not restore" in out and "trying an older one" in out
    (aside,) = (tmp_path / "checkpoints" / "unreadable").iterdir()  # kept, not deleted
    assert aside.name.startswith("3-") and fresh.all_steps() == [1, 2]


def test_a_non_finite_checkpoint_is_skipped_and_none_left_is_one_line(tmp_path):
    manager = checkpointing.make_manager(str(tmp_path / "checkpoints"), every=1, keep=5, async_save=False)
    it = _iterator()
    checkpointing.save(manager, 1, {"w": jnp.full((2,), jnp.nan)}, it, {}, force=True)
    manager.wait_until_finished()
    with pytest.raises(InputError, match="no checkpoint in .* restores; they were moved to"):
        checkpointing.restore_latest(manager, {"w": jnp.zeros(2)}, _iterator())
    assert os.listdir(tmp_path / "checkpoints" / "unreadable")


def test_another_models_checkpoints_stop_with_one_line(tmp_path):
    manager, _ = _saved(tmp_path)
    with pytest.raises(ConfigError, match=r"another model or recipe: w is \(4, 3\) there, \(8, 3\) in this config"):
        checkpointing.restore_latest(manager, {"w": jnp.zeros((8, 3)), "b": {"c": jnp.zeros(5)}}, _iterator())
    assert sorted(manager.all_steps()) == [1, 2, 3]  # nothing set aside for a mismatch


def test_count_non_finite():
    assert int(checkpointing.count_non_finite({"a": jnp.ones(3), "b": jnp.arange(3)})) == 0
    assert int(checkpointing.count_non_finite({"a": jnp.array([1.0, jnp.inf]), "b": jnp.array([jnp.nan])})) == 2


assert grain  # the iterator state goes through grain's checkpoint handlers
