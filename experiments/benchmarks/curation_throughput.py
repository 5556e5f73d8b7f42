"""Curation throughput: prints one table (not a test).

    OPENBLAS_NUM_THREADS=1 python experiments/benchmarks/curation_throughput.py [--patches 200000]
        [--hashes 1000000] [--raw-mb 256] [--naive-patches N] [--hash-threads 2]

1. hash + dedup of synthetic EM patches: vectorised dhash64 + multi-index dedup against the naive baseline
   measured in the same run: the reference's own steps (per patch: PIL image, resize to 224², imagehash
   dhash → bool array; then its greedy loop over the bool arrays with xor-sums and np.delete). A stricter
   baseline keeps the per-patch hash but runs the greedy loop on packed uint64 hashes (one popcount each).
   The naive hash is timed on `--naive-patches` of them (default all) and scaled per patch if fewer. dhash64
   runs with `--hash-threads` Python threads (the total) and, for reference, with one thread (reported
   separately). All three give identical exemplars (checked).
2. dedup of `--hashes` clustered 64-bit hashes in one source at d ≤ 12 (2 threads).
3. end-to-end raw MB/s of the Beam pipeline on a generated collection (DirectRunner, 2 processes).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: small matmuls are slower threaded

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from cemjax.curate.dedup import dedup, dedup_naive, dedup_reference  # noqa: E402
from cemjax.curate.dhash import bits_to_uint64, dhash64, dhash_bits_reference  # noqa: E402


def em_patches(n: int, seed: int = 0, batch: int = 1024):
    """Yield uint8 [≤batch, 224, 224] random crops (with noise) of a few synthetic EM images: many distinct
    patches plus near-duplicates from overlapping crops."""
    from cemjax.synthetic.samples import make_em_image

    rng = np.random.default_rng(seed)
    bases = [make_em_image((1024, 1024), seed=seed + i).image for i in range(6)]
    for s in range(0, n, batch):
        m = min(batch, n - s)
        b, y, x = rng.integers(0, len(bases), m), rng.integers(0, 800, m), rng.integers(0, 800, m)
        out = np.stack([bases[i][yy : yy + 224, xx : xx + 224] for i, yy, xx in zip(b, y, x, strict=True)])
        noise = rng.integers(-2, 3, out.shape, dtype=np.int16)
        yield np.clip(out.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def clustered(n: int, per: int = 5, flips: int = 6, seed: int = 0) -> np.ndarray:
    """n hashes: n/per random centres, each with `per` variants of ≤ `flips` random bit flips."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2**63, n // per, dtype=np.uint64) << np.uint64(1)
    h = np.repeat(centres ^ rng.integers(0, 2, n // per).astype(np.uint64), per)
    for _ in range(flips):
        h ^= (rng.random(len(h)) < 0.7).astype(np.uint64) << rng.integers(0, 64, len(h)).astype(np.uint64)
    return h


def bench_hash_dedup(n: int, n_naive: int, threads: int) -> dict:
    fast_hash = naive_hash = one_thread = 0.0
    hashes, bits, naive_done = [], [], 0
    for batch in em_patches(n):
        t = time.perf_counter()
        h = dhash64(batch, threads=threads)
        fast_hash += time.perf_counter() - t
        t = time.perf_counter()
        assert np.array_equal(dhash64(batch, threads=1), h)
        one_thread += time.perf_counter() - t
        hashes.append(h)
        k = max(0, min(len(batch), n_naive - naive_done))  # patches of this batch the naive hash times
        t = time.perf_counter()
        ref = np.stack([dhash_bits_reference(p) for p in batch[:k]]) if k else np.zeros((0, 64), bool)
        naive_hash += time.perf_counter() - t
        naive_done += k
        assert np.array_equal(bits_to_uint64(ref), h[:k])
        # the reference loop needs every hash as bits; beyond n_naive they are unpacked from ours (checked equal)
        bits.append(np.concatenate([ref, np.unpackbits(h[k:].astype(">u8").view(np.uint8).reshape(-1, 8), 1)]))
    h, bits = np.concatenate(hashes), np.concatenate(bits).astype(bool)
    order = np.random.default_rng(0).permutation(len(h))
    t = time.perf_counter()
    fast_ex = dedup(h, order)
    fast_dedup = time.perf_counter() - t
    t = time.perf_counter()
    packed_ex = dedup_naive(h, order)
    packed_dedup = time.perf_counter() - t
    t = time.perf_counter()
    ref_ex = dedup_reference(bits, order)
    ref_dedup = time.perf_counter() - t
    assert np.array_equal(fast_ex, ref_ex) and np.array_equal(packed_ex, ref_ex)
    naive_hash *= n / max(1, naive_done)
    kept = int((fast_ex == np.arange(len(h))).sum())
    return {"fast": fast_hash + fast_dedup, "reference": naive_hash + ref_dedup, "packed": naive_hash + packed_dedup,
            "fast_hash": fast_hash, "naive_hash": naive_hash, "fast_dedup": fast_dedup, "ref_dedup": ref_dedup,
            "packed_dedup": packed_dedup, "kept": kept, "one_thread": one_thread}  # fmt: skip


def bench_dedup_1m(n: int) -> tuple[float, int]:
    h = clustered(n)
    t = time.perf_counter()
    ex = dedup(h, seed=0, threads=2)
    return time.perf_counter() - t, int((ex == np.arange(n)).sum())


def bench_end_to_end(raw_mb: int, mode: str) -> tuple[float, float, int]:
    """Raw MB/s of the whole pipeline on uint8 volumes (xy only) and a folder of 2D images."""
    from cemjax.curate.pipeline import CurateConfig, run
    from cemjax.synthetic import writers
    from cemjax.synthetic.samples import make_em_image

    root = tempfile.mkdtemp(prefix="curbench_")
    try:
        base = make_em_image((1024, 1024), seed=1).image
        rng = np.random.default_rng(0)
        n_vol = max(1, raw_mb // 64)
        for v in range(n_vol):  # 64 slices of 1024² = 64 MB each; xy only (30 nm z)
            vol = np.stack([np.roll(base, (rng.integers(0, 1024), rng.integers(0, 1024)), (0, 1)) for _ in range(64)])
            writers.write_tif(f"{root}/vol{v}.tif", vol, (30.0, 5.0, 5.0))
        os.makedirs(f"{root}/imgs")
        for i in range(16):
            writers.write_png(f"{root}/imgs/i{i}.png", np.roll(base, 37 * i, 1))
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
        out = os.path.join(root, "out")
        t = time.perf_counter()
        res = run(CurateConfig([root], out, progress=False, beam_args=[f"--direct_running_mode={mode}"]))
        dt = time.perf_counter() - t
        return size / 2**20 / dt, dt, sum(r["raw"] for r in res.summary)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patches", type=int, default=200_000)
    ap.add_argument("--naive-patches", type=int, default=None)
    ap.add_argument("--hashes", type=int, default=1_000_000)
    ap.add_argument("--raw-mb", type=int, default=256)
    ap.add_argument("--hash-threads", type=int, default=2)
    a = ap.parse_args()
    rows = []
    r = bench_hash_dedup(a.patches, a.naive_patches or a.patches, a.hash_threads)
    fast = r["fast"]
    rows.append(
        (
            f"hash+dedup {a.patches} patches (kept {r['kept']})",
            f"{fast:.1f} s",
            f"reference code {r['reference']:.1f} s = {r['reference'] / fast:.1f}x (goal >= 20x)",
        )
    )
    rows.append(
        ("  vs the loop on packed uint64 hashes", "", f"stricter naive {r['packed']:.1f} s = {r['packed'] / fast:.1f}x")
    )
    rows.append(
        (
            f"  hash only ({a.hash_threads} threads)",
            f"{r['fast_hash']:.1f} s",
            f"per-patch PIL + imagehash {r['naive_hash']:.1f} s = {r['naive_hash'] / r['fast_hash']:.1f}x",
        )
    )
    rows.append(("  hash only (1 thread)", f"{r['one_thread']:.1f} s", f"{r['naive_hash'] / r['one_thread']:.1f}x"))
    rows.append(("  dedup only", f"{r['fast_dedup']:.1f} s",
                 f"reference loop {r['ref_dedup']:.1f} s, packed loop {r['packed_dedup']:.1f} s"))  # fmt: skip
    dt, kept = bench_dedup_1m(a.hashes)
    rows.append((f"dedup {a.hashes} clustered hashes, d<=12 (kept {kept})", f"{dt:.1f} s", "goal <= 60 s"))
    for mode in ("multi_processing", "in_memory"):
        mbs, dt, n = bench_end_to_end(a.raw_mb, mode)
        rows.append(
            (f"end-to-end {a.raw_mb} MB raw, DirectRunner {mode}", f"{mbs:.1f} MB/s", f"{dt:.1f} s, {n} patches")
        )
    w = max(len(x[0]) for x in rows)
    print(f"{'measure':<{w}} | {'ours':>10} | reference / note")
    for name, ours, note in rows:
        print(f"{name:<{w}} | {ours:>10} | {note}")


if __name__ == "__main__":
    main()
