"""Greedy near-duplicate removal within one source (REFERENCE §1.4), exact and vectorised.

Semantics (the reference's loop, `dedup_naive`): visit hashes in a seeded random order; the first remaining
hash becomes an exemplar and every remaining hash within Hamming distance ≤ d of it is dropped, with that
exemplar recorded. Equivalently, a hash is an exemplar iff no earlier exemplar lies within d, and otherwise
its exemplar is the earliest exemplar within d. `dedup` computes exactly this:

1. identical hashes share their fate, so only unique hashes are processed (in order of first appearance);
2. unique hashes are taken in chunks; each chunk is matched against the exemplars found so far through a
   multi-index: the 64 bits are split into m blocks with probe radii t_b, Σ t_b ≥ d − m + 1, so by the
   generalised pigeonhole principle two hashes within d agree within t_b on at least one block (e.g. four
   16-bit blocks with radii 3, 2, 2, 2 for d = 12). Probing those radii in each block's bucket table finds
   every exemplar within d, plus false candidates that the exact popcount test discards;
3. hashes left uncovered are resolved inside the chunk with a small all-pairs popcount and the greedy scan.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations

import numpy as np

# Block layouts: (bit width, probe radius) per block; Σ radius ≥ d − n_blocks + 1 (GPH) for d = 12. Few wide
# blocks probe many buckets but find few false candidates; more, narrower blocks the reverse. `_layout`
# picks whichever is cheaper for the current number of exemplars.
LAYOUTS = (
    ((16, 3), (16, 2), (16, 2), (16, 2)),
    ((13, 2), (13, 2), (13, 2), (13, 1), (12, 1)),
    ((11, 2), (11, 1), (11, 1), (11, 1), (10, 1), (10, 1)),
)
PROBE_COST, CANDIDATE_COST = 2.0, 1.0  # relative per-element costs, measured


def dedup_naive(hashes: np.ndarray, order: np.ndarray, max_distance: int = 12) -> np.ndarray:
    """The reference's greedy loop (numpy per exemplar). Returns exemplar index (into `hashes`) per hash."""
    remaining = np.asarray(order, np.int64)
    exemplar = np.full(len(hashes), -1, np.int64)
    while len(remaining):
        ref = remaining[0]
        near = np.bitwise_count(hashes[remaining] ^ hashes[ref]) <= max_distance
        exemplar[remaining[near]] = ref
        remaining = remaining[~near]
    return exemplar


@functools.cache
def _masks(width: int, radius: int) -> np.ndarray:
    """All width-bit masks with popcount ≤ radius (the probe offsets of one block)."""
    out = [0]
    for r in range(1, radius + 1):
        out += [sum(1 << b for b in bits) for bits in combinations(range(width), r)]
    return np.array(out, np.int32)


def _layout(max_distance: int, n_exemplars: int) -> tuple[tuple[int, int], ...]:
    """Cheapest valid block layout for `n_exemplars` (radii scaled to max_distance by the GPH condition)."""
    best, best_cost = None, np.inf
    for layout in LAYOUTS:
        need = max(0, max_distance - len(layout) + 1)
        radii = [r for _, r in layout]
        while sum(radii) < need:  # other thresholds: grow the smallest radii first
            radii[int(np.argmin(radii))] += 1
        while sum(radii) > need and max(radii) > 0:
            radii[int(np.argmax(radii))] -= 1
        spec = tuple((w, r) for (w, _), r in zip(layout, radii, strict=True))
        cost = sum(len(_masks(w, r)) * (PROBE_COST + CANDIDATE_COST * n_exemplars / 2**w) for w, r in spec)
        if cost < best_cost:
            best, best_cost = spec, cost
    return best


class _BlockIndex:
    """Bucket tables (CSR over 2^width keys) of the exemplar hashes, one per block of a layout.

    Per block: `offs` int32 [2^w + 1] bucket bounds, `ids` int32 exemplar positions sorted by key, and
    `hs` the exemplar hashes in that same order (so candidates are checked without a second gather).
    """

    def __init__(self, hashes: np.ndarray, layout: tuple[tuple[int, int], ...]):
        self.n = len(hashes)
        self.tables = []
        shift = 0
        for width, radius in layout:
            keys = ((hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.uint16)
            ids = np.argsort(keys, kind="stable").astype(np.int32)  # radix sort on 16-bit keys
            offs = np.zeros((1 << width) + 1, np.int32)
            np.cumsum(np.bincount(keys, minlength=1 << width), out=offs[1:])
            self.tables.append((shift, width, _masks(width, radius), offs, ids, hashes[ids]))
            shift += width


def _segments(lo: np.ndarray, cnt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate ranges [lo_i, lo_i + cnt_i), cnt_i > 0 → (flat positions, segment ends); no np.repeat."""
    ends = np.cumsum(cnt)
    delta = np.ones(int(ends[-1]), np.int64)
    delta[0] = lo[0]
    delta[ends[:-1]] = lo[1:] - (lo[:-1] + cnt[:-1] - 1)
    return np.cumsum(delta), ends


def _earliest_match(q: np.ndarray, index: _BlockIndex, max_distance: int, budget: int) -> np.ndarray:
    """For queries q (uint64 [n]), the smallest exemplar position within max_distance, or −1."""
    none = np.iinfo(np.int32).max
    best = np.full(len(q), none, np.int32)
    per_query = sum(len(t[2]) * (1 + index.n / (1 << t[1])) for t in index.tables)
    step = int(max(16, budget // per_query))
    for s in range(0, len(q), step):
        qs = q[s : s + step]
        for shift, width, masks, offs, ids, hs in index.tables:
            key = ((qs >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int32)
            probe = (key[:, None] ^ masks[None, :]).ravel()  # [n·P] bucket keys
            lo = offs[probe]
            cnt = offs[probe + 1] - lo
            nz = np.flatnonzero(cnt)
            if len(nz) == 0:
                continue
            pos, ends = _segments(lo[nz], cnt[nz])
            seg_q = (nz // len(masks)).astype(np.int32)  # query of each non-empty probe
            qstep = np.zeros(len(pos), np.int32)
            qstep[0] = seg_q[0]
            qstep[ends[:-1]] = np.diff(seg_q)
            cand = hs[pos]
            cand ^= qs[np.cumsum(qstep)]
            hit = np.flatnonzero(np.bitwise_count(cand) <= max_distance)
            if len(hit):
                qi = seg_q[np.searchsorted(ends, hit, side="right")]
                np.minimum.at(best, s + qi, ids[pos[hit]])
    return np.where(best == none, -1, best).astype(np.int64)


def _resolve_chunk(q: np.ndarray, open_: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Greedy among chunk entries `open_` (no earlier exemplar near) → (new exemplars, exemplar per entry)."""
    near = np.bitwise_count(q[open_][:, None] ^ q[open_][None, :]) <= max_distance  # [k, k]
    owner = np.full(len(open_), -1, np.int64)
    new = []
    for i in range(len(open_)):
        if owner[i] >= 0:
            continue
        new.append(i)
        grab = near[i] & (owner < 0)
        grab[:i] = False
        owner[grab] = i
    return open_[np.array(new, np.int64)], open_[owner]


def _dedup_unique(u: np.ndarray, max_distance: int, chunk: int, budget: int, threads: int) -> np.ndarray:
    """Greedy over distinct hashes u (uint64 [M], processing order) → exemplar position in u per entry."""
    ex_of = np.full(len(u), -1, np.int64)
    parts: list[np.ndarray] = []
    ex_pos = np.zeros(0, np.int64)
    with ThreadPoolExecutor(max(1, threads)) as pool:  # numpy releases the GIL in the heavy loops
        for s in range(0, len(u), chunk):
            q = u[s : s + chunk]
            if len(ex_pos):
                index = _BlockIndex(u[ex_pos], _layout(max_distance, len(ex_pos)))
                pieces = np.array_split(q, max(1, threads))
                jobs = [pool.submit(_earliest_match, p, index, max_distance, budget // threads) for p in pieces]
                found = [j.result() for j in jobs]
                m = np.concatenate(found)
                ex_of[s : s + len(q)] = np.where(m >= 0, ex_pos[np.maximum(m, 0)], -1)
            open_ = np.flatnonzero(ex_of[s : s + len(q)] < 0)
            if len(open_):
                new, owner = _resolve_chunk(q, open_, max_distance)
                ex_of[s + open_] = s + owner
                parts.append(s + new)
                ex_pos = np.concatenate(parts)
    return ex_of


def dedup(
    hashes: np.ndarray,
    order: np.ndarray | None = None,
    seed: int = 0,
    max_distance: int = 12,
    chunk: int = 4096,
    budget: int = 4_000_000,
    threads: int = 2,
) -> np.ndarray:
    """Exemplar index (into `hashes`) for every hash; equal to `dedup_naive(hashes, order, max_distance)`.

    hashes: uint64 [N]. order: visiting order (a permutation of range(N)); default a permutation drawn from
    `np.random.default_rng(seed)`. A hash is kept iff its exemplar is itself. `budget` caps the candidate
    pairs materialised at once (memory ≈ 60 bytes × budget); `threads` split each chunk's queries.
    """
    hashes = np.asarray(hashes, np.uint64)
    n = len(hashes)
    if order is None:
        order = np.random.default_rng(seed).permutation(n)
    order = np.asarray(order, np.int64)
    if n == 0:
        return np.zeros(0, np.int64)
    seq = hashes[order]
    uniq, first, inverse = np.unique(seq, return_index=True, return_inverse=True)
    by_first = np.argsort(first, kind="stable")  # unique hashes in order of first appearance
    rank = np.empty_like(by_first)
    rank[by_first] = np.arange(len(by_first))
    ex_u = _dedup_unique(uniq[by_first], max_distance, chunk, budget, threads)  # first-appearance positions
    ex_item = order[first[by_first[ex_u]]]  # exemplar item per unique rank
    out = np.empty(n, np.int64)
    out[order] = ex_item[rank[inverse.ravel()]]
    return out
