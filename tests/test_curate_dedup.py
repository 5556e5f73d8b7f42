"""The fast multi-index dedup returns exactly what the reference's greedy loop returns."""

from __future__ import annotations

import numpy as np
import pytest

from cemjax.curate.dedup import LAYOUTS, _layout, dedup, dedup_naive, dedup_reference
from cemjax.curate.dhash import bits_to_uint64, dhash64, dhash_bits_reference
from cemjax.synthetic.samples import make_em_image


def clustered_hashes(n_centers: int, per: int, flips: int, rng: np.random.Generator) -> np.ndarray:
    """Random centres, each with `per` variants of up to `flips` random bit flips (uint64 [n_centers·per])."""
    c = rng.integers(0, 2**63, n_centers, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n_centers).astype(
        np.uint64
    )
    h = np.repeat(c, per)
    for _ in range(flips):
        h ^= (rng.random(len(h)) < 0.7).astype(np.uint64) << rng.integers(0, 64, len(h)).astype(np.uint64)
    return h


@pytest.mark.parametrize(
    "seed,d,chunk,flips",
    [(0, 12, 64, 8), (1, 12, 4096, 8), (2, 12, 37, 14), (3, 5, 128, 4), (4, 0, 64, 2), (5, 20, 100, 10)],
)
def test_equals_naive_greedy(seed, d, chunk, flips):
    rng = np.random.default_rng(seed)
    h = clustered_hashes(150, 12, flips, rng)
    h = np.concatenate([h, h[:100], rng.integers(0, 2**63, 200, dtype=np.uint64)])  # exact repeats + loners
    order = rng.permutation(len(h))
    want = dedup_naive(h, order, d)
    assert np.array_equal(dedup(h, order, max_distance=d, chunk=chunk), want)
    assert np.array_equal(dedup(h, order, max_distance=d, chunk=chunk, threads=1), want)


def test_many_exemplars_switch_block_layouts():
    rng = np.random.default_rng(7)
    h = clustered_hashes(1500, 4, 6, rng)  # ≥ 1500 exemplars: later chunks use a different layout
    order = rng.permutation(len(h))
    assert _layout(12, 10) != _layout(12, 200_000)
    assert np.array_equal(dedup(h, order, chunk=500), dedup_naive(h, order))


def test_layouts_satisfy_the_pigeonhole_condition():
    for d in range(0, 25):
        for n in (0, 10**3, 10**6):
            spec = _layout(d, n)
            assert sum(w for w, _ in spec) == 64 and sum(r for _, r in spec) >= d - len(spec) + 1
    assert all(sum(w for w, _ in lay) == 64 for lay in LAYOUTS)


def test_seeded_and_semantics():
    rng = np.random.default_rng(9)
    h = clustered_hashes(50, 6, 5, rng)
    a, b = dedup(h, seed=3), dedup(h, seed=3)
    assert np.array_equal(a, b)
    kept = np.flatnonzero(a == np.arange(len(h)))
    assert np.array_equal(a[kept], kept)  # exemplars represent themselves
    assert (np.bitwise_count(h ^ h[a]) <= 12).all()  # everyone is near its exemplar
    ex = h[kept]
    assert (np.bitwise_count(ex[:, None] ^ ex[None, :]) + 64 * np.eye(len(ex), dtype=np.uint8) > 12).all()
    assert len(dedup(np.zeros(0, np.uint64))) == 0


def test_overfull_buckets_and_extreme_hashes():
    """Hashes that share whole blocks (overfull buckets → spill table), plus 0, all-ones and complements (the
    values unused bucket slots are padded with) must not change the result."""
    rng = np.random.default_rng(11)
    top = rng.integers(0, 2**20, 3000, dtype=np.uint64) << np.uint64(44)  # low 44 bits equal: same buckets
    h = np.concatenate([top | np.uint64(0x5A5A5A5A5A5), ~top, np.array([0, 2**64 - 1, 1, 2**63], np.uint64)])
    h = np.concatenate([h, clustered_hashes(200, 5, 4, rng), ~clustered_hashes(100, 5, 4, rng)])
    for d in (3, 12):
        order = rng.permutation(len(h))
        want = dedup_naive(h, order, d)
        assert np.array_equal(dedup(h, order, max_distance=d, chunk=256), want)
        assert np.array_equal(dedup(h, order, max_distance=d, chunk=5000, threads=1, budget=10_000), want)


def test_mostly_duplicates_many_batches():
    """Large near-duplicate clusters (most hashes resolved by marks, index rebuilt many times)."""
    rng = np.random.default_rng(12)
    h = clustered_hashes(40, 80, 5, rng)
    order = rng.permutation(len(h))
    assert np.array_equal(dedup(h, order, chunk=16), dedup_naive(h, order))


def test_equals_the_reference_pipeline_on_em_patches():
    """Hashes from imagehash through the reference's own steps (bool arrays, xor-sum, delete) give the same
    exemplars as dhash64 + dedup, on overlapping crops of a synthetic EM image (many near-duplicates)."""
    rng = np.random.default_rng(13)
    em = make_em_image((640, 640), seed=13).image
    ys, xs = rng.integers(0, 416, 300), rng.integers(0, 416, 300)
    patches = np.stack([em[y : y + 224, x : x + 224] for y, x in zip(ys, xs, strict=True)])
    bits = np.stack([dhash_bits_reference(p) for p in patches])
    h = dhash64(patches)
    assert np.array_equal(bits_to_uint64(bits), h)
    for d in (6, 12):
        order = rng.permutation(len(h))
        want = dedup_reference(bits, order, d)
        assert 10 < (want == np.arange(len(h))).sum() < len(h) - 10  # a real mix of exemplars and duplicates
        assert np.array_equal(dedup(h, order, max_distance=d, chunk=64), want)
        assert np.array_equal(dedup_naive(h, order, d), want)
