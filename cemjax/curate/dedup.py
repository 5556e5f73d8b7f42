"""Greedy near-duplicate removal within one source (docs/method.md §1.4), exact and vectorised.

Semantics (the reference's loop, `dedup_naive`): visit hashes in a seeded random order; the first remaining
hash becomes an exemplar and every remaining hash within Hamming distance ≤ d of it is dropped, with that
exemplar recorded. Equivalently, a hash is an exemplar iff no earlier exemplar lies within d, and otherwise
its exemplar is the earliest exemplar within d. `dedup` computes exactly this:

1. identical hashes share their fate, so only unique hashes are processed (in order of first appearance);
2. exemplar-centric: every new exemplar marks the later hashes within d (keeping the earliest mark), so a
   hash still unmarked when reached is an exemplar and a marked one is final. The next `chunk` unmarked
   hashes are resolved together: their links among themselves decide which become exemplars (greedy over
   the few that have an earlier neighbour in the batch), then those exemplars mark the later ones. Only
   exemplars search, and only among hashes not yet resolved — far fewer pairs than every hash searching
   all earlier exemplars when most hashes are near-duplicates;
3. the search uses a multi-index over the unresolved hashes (rebuilt as they get resolved): the 64 bits
   are split into m blocks with probe radii t_b, Σ t_b ≥ d − m + 1, so by the generalised pigeonhole
   principle two hashes within d agree within t_b on at least one block (e.g. four 16-bit blocks with
   radii 3, 2, 2, 2 for d = 12). Each block's buckets are stored as fixed-width rows, so a probe fetches a
   whole bucket with one row gather and all candidates are checked with flat popcounts; overfull buckets
   keep the rest in a CSR table.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations

import numpy as np

# Block layouts: (bit width, probe radius) per block; Σ radius ≥ d − n_blocks + 1 (GPH) for d = 12. Few wide
# blocks probe many buckets; more, narrower blocks probe fewer but fuller ones. `_layout` picks whichever is
# cheaper for the number of indexed hashes.
LAYOUTS = (
    ((16, 3), (16, 2), (16, 2), (16, 2)),
    ((13, 2), (13, 2), (13, 2), (13, 1), (12, 1)),
    ((11, 2), (11, 1), (11, 1), (11, 1), (10, 1), (10, 1)),
)
# Relative costs (measured, ≈ ns): fetching one bucket row, checking one slot of it, checking one spilled entry.
ROW_COST, SLOT_COST, SPILL_COST = 20.0, 2.2, 15.0
REBUILD = 0.8  # rebuild the index of unresolved hashes once fewer than this fraction of its entries are


def dedup_reference(bits: np.ndarray, order: np.ndarray, max_distance: int = 12) -> np.ndarray:
    """The reference's greedy loop as it runs there: hashes kept as imagehash's bool arrays [N, 64]; per
    exemplar, the distance to every remaining hash is a `logical_xor(...).sum(1)`, and the matches are deleted
    (`np.delete`) from the remaining hashes and indices. Returns exemplar index (into `bits`) per hash.
    The naive baseline of `experiments/benchmarks/curation_throughput.py`; the tests check `dedup` against it."""
    remaining_bits = np.asarray(bits, bool).reshape(len(bits), -1)[order]
    remaining = np.asarray(order, np.int64)
    exemplar = np.full(len(remaining), -1, np.int64)
    while len(remaining):
        matches = np.flatnonzero(np.logical_xor(remaining_bits[0], remaining_bits).sum(1) <= max_distance)
        exemplar[remaining[matches]] = remaining[0]
        remaining_bits = np.delete(remaining_bits, matches, axis=0)
        remaining = np.delete(remaining, matches)
    return exemplar


def dedup_naive(hashes: np.ndarray, order: np.ndarray, max_distance: int = 12) -> np.ndarray:
    """The reference's greedy loop on packed uint64 hashes (one popcount per remaining hash and exemplar; a
    stricter baseline than `dedup_reference`). Returns exemplar index (into `hashes`) per hash."""
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


def _expected_slots(mean: float) -> float:
    """Bucket capacity `_capacity` picks for Poisson(mean) bucket sizes, roughly."""
    return max(1.0, mean + 2.0 * mean**0.5)


def _layout(max_distance: int, n_hashes: int) -> tuple[tuple[int, int], ...]:
    """Cheapest valid block layout for indexing `n_hashes` (radii scaled to max_distance by the GPH condition)."""
    best, best_cost = None, np.inf
    for layout in LAYOUTS:
        need = max(0, max_distance - len(layout) + 1)
        radii = [r for _, r in layout]
        while sum(radii) < need:  # other thresholds: grow the smallest radii first
            radii[int(np.argmin(radii))] += 1
        while sum(radii) > need and max(radii) > 0:
            radii[int(np.argmax(radii))] -= 1
        spec = tuple((w, r) for (w, _), r in zip(layout, radii, strict=True))
        cost = sum(len(_masks(w, r)) * (ROW_COST + SLOT_COST * _expected_slots(n_hashes / 2**w)) for w, r in spec)
        if cost < best_cost:
            best, best_cost = spec, cost
    return best


def _capacity(counts: np.ndarray) -> int:
    """Slots per bucket row minimising (per probe) C·SLOT_COST + spilled entries per bucket·SPILL_COST."""
    hist = np.bincount(counts)
    at_least = np.cumsum(hist[::-1])[::-1]  # at_least[c] = buckets holding ≥ c entries
    spilled = np.cumsum(at_least[::-1])[::-1] - at_least  # spilled[C] = Σ_k max(0, count_k − C)
    cost = np.arange(len(hist)) * SLOT_COST + spilled / len(counts) * SPILL_COST
    return max(1, int(np.argmin(cost)))


class _BlockIndex:
    """Per block of a layout, the indexed hashes bucketed by that block's bits: a dense row of `cap` slots
    per bucket key (hashes and their ids), so that one probe fetches a whole bucket with a single row gather,
    plus a CSR table of the entries that did not fit ("spill", from buckets with more than `cap` entries).

    Unused slots hold the complement of a hash of that bucket, which is far from anything probing it; a
    hit in an unused slot is anyway discarded by checking the slot against the bucket's count.
    """

    def __init__(self, hashes: np.ndarray, layout: tuple[tuple[int, int], ...]):
        self.n = n = len(hashes)
        self.tables = []
        shift = 0
        for width, radius in layout:
            nk = 1 << width
            keys = ((hashes >> np.uint64(shift)) & np.uint64(nk - 1)).astype(np.int64)
            order = np.argsort(keys.astype(np.uint16), kind="stable")  # radix sort; ids ascending per bucket
            counts = np.bincount(keys, minlength=nk)
            starts = np.zeros(nk + 1, np.int64)
            np.cumsum(counts, out=starts[1:])
            cap = _capacity(counts)
            sk = keys[order]
            rank = np.arange(n) - starts[sk]
            fit = rank < cap
            pad = ~(np.arange(nk, dtype=np.uint64) << np.uint64(shift))
            used = counts > 0
            pad[used] = ~hashes[order[starts[:-1][used]]]
            rows = np.repeat(pad[:, None], cap, axis=1)
            rows[sk[fit], rank[fit]] = hashes[order[fit]]
            row_ids = np.zeros((nk, cap), np.int32)
            row_ids[sk[fit], rank[fit]] = order[fit]
            spill = order[~fit]
            spill_offs = np.zeros(nk + 1, np.int32)
            np.cumsum(np.bincount(keys[spill], minlength=nk), out=spill_offs[1:])
            self.tables.append(
                (shift, width, _masks(width, radius), cap, counts.astype(np.int32), rows, row_ids,
                 spill_offs, spill.astype(np.int32), hashes[spill])
            )  # fmt: skip
            shift += width


def _segments(lo: np.ndarray, cnt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate ranges [lo_i, lo_i + cnt_i), cnt_i > 0 → (flat positions, segment ends); no np.repeat."""
    ends = np.cumsum(cnt)
    delta = np.ones(int(ends[-1]), np.int64)
    delta[0] = lo[0]
    delta[ends[:-1]] = lo[1:] - (lo[:-1] + cnt[:-1] - 1)
    return np.cumsum(delta), ends


def _neighbours(q: np.ndarray, index: _BlockIndex, max_distance: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (query i, index entry j) with popcount(q[i] ^ entry j) ≤ max_distance → (i int64, j int32).

    A pair may repeat (once per block in which it falls within that block's probe radius)."""
    per_query = sum(len(t[2]) * (t[3] + 1) for t in index.tables)
    step = int(max(16, budget // per_query))
    qi_out, id_out = [], []
    bufs = [np.empty((min(step, len(q)), len(t[2]), t[3]), np.uint64) for t in index.tables]
    for s in range(0, len(q), step):
        qs = q[s : s + step]
        for buf, (shift, width, masks, cap, counts, rows, row_ids, spill_offs, spill_ids, spill_hs) in zip(
            bufs, index.tables, strict=True
        ):
            key = ((qs >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int32)
            probe = (key[:, None] ^ masks[None, :]).ravel()  # [n·P] bucket keys, query-major
            cand = np.take(rows, probe, axis=0, out=buf[: len(qs)].reshape(len(probe), cap))
            cand.reshape(len(qs), len(masks) * cap)[...] ^= qs[:, None]  # one bucket row per probe
            hit = np.flatnonzero(np.bitwise_count(cand) <= max_distance)
            if len(hit):
                p, slot = np.divmod(hit, cap)
                ok = slot < counts[probe[p]]
                p, slot = p[ok], slot[ok]
                qi_out.append(s + p // len(masks))
                id_out.append(row_ids[probe[p], slot])
            if len(spill_ids):
                over = np.flatnonzero(counts[probe] > cap)
                if len(over):
                    lo = spill_offs[probe[over]]
                    pos, ends = _segments(lo, spill_offs[probe[over] + 1] - lo)
                    seg_q = over // len(masks)
                    qstep = np.zeros(len(pos), np.int64)
                    qstep[0] = seg_q[0]
                    qstep[ends[:-1]] = np.diff(seg_q)
                    c = spill_hs[pos]
                    c ^= qs[np.cumsum(qstep)]
                    h = np.flatnonzero(np.bitwise_count(c) <= max_distance)
                    if len(h):
                        qi_out.append(s + seg_q[np.searchsorted(ends, h, side="right")])
                        id_out.append(spill_ids[pos[h]])
    if not qi_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    return np.concatenate(qi_out).astype(np.int64), np.concatenate(id_out)


def _resolve_batch(q: np.ndarray, max_distance: int, rows: int = 512) -> np.ndarray:
    """Greedy among hashes q (visiting order) that no earlier exemplar covers → owner (index into q) per entry.

    An entry without an earlier neighbour in q is an exemplar; the others, in order, take their earliest
    earlier neighbour that is an exemplar, or become one. All pairs are tested (in blocks of `rows`)."""
    n = len(q)
    near = np.empty((n, n), bool)
    for r in range(0, n, rows):
        np.less_equal(np.bitwise_count(q[r : r + rows, None] ^ q[None, :]), max_distance, out=near[r : r + rows])
    near &= np.tri(n, n, -1, dtype=bool)  # only earlier neighbours
    owner = np.arange(n)
    is_ex = np.ones(n, bool)
    for i in np.flatnonzero(near.any(1)):  # contested entries only, in order
        ex = np.flatnonzero(near[i, :i] & is_ex[:i])
        if len(ex):
            owner[i] = ex[0]
            is_ex[i] = False
    return owner


def _dedup_unique(u: np.ndarray, max_distance: int, batch: int, budget: int, threads: int) -> np.ndarray:
    """Greedy over distinct hashes u (uint64 [M], visiting order) → exemplar position in u per entry.

    `mark[p]` holds the earliest exemplar within d that precedes p (M if none yet). The next `batch` unmarked
    entries are the next candidates for exemplar; they are resolved among themselves, then each new exemplar
    marks every later entry within d, found through a multi-index over the entries still unmarked (rebuilt
    once a fraction 1 − REBUILD of them got resolved). Marked entries are final: every exemplar that
    precedes them has already marked its neighbours.
    """
    m = len(u)
    none = m
    mark = np.full(m, none, np.int64)
    ex_of = np.full(m, -1, np.int64)
    cursor = 0  # every position before it is resolved
    index = index_pos = None
    live = 0  # index entries still unresolved
    k0 = 0  # index entries before k0 lie before the cursor
    with ThreadPoolExecutor(max(1, threads)) as pool:  # numpy releases the GIL in the heavy loops
        while cursor < m:
            if index is None or live < REBUILD * index.n:
                index_pos = cursor + np.flatnonzero(mark[cursor:] == none)
                index = _BlockIndex(u[index_pos], _layout(max_distance, len(index_pos)))
                live, k0 = len(index_pos), 0
            take, got = [], 0  # the batch: the next unmarked positions
            while got < batch and k0 < len(index_pos):
                piece = index_pos[k0 : k0 + 2 * batch]
                piece = piece[mark[piece] == none][: batch - got]
                take.append(piece)
                got += len(piece)
                k0 = np.searchsorted(index_pos, piece[-1], side="right") if len(piece) else k0 + 2 * batch
            b = np.concatenate(take) if take else np.zeros(0, np.int64)
            end = int(b[-1]) + 1 if len(b) else m
            seg = mark[cursor:end]
            covered = seg != none
            ex_of[cursor:end][covered] = seg[covered]
            if len(b) == 0:
                break
            owner = _resolve_batch(u[b], max_distance)
            ex_of[b] = b[owner]
            live -= len(b)
            cursor = end
            new = b[owner == np.arange(len(b))]
            # every later unresolved entry within d of a new exemplar takes the earliest such exemplar
            pieces = np.array_split(new, max(1, min(threads, len(new))))
            jobs = [pool.submit(_neighbours, u[p], index, max_distance, budget // threads) for p in pieces]
            found = [j.result() for j in jobs]
            src = np.concatenate([p[f[0]] for p, f in zip(pieces, found, strict=True)])
            tgt = index_pos[np.concatenate([f[1] for f in found])]
            later = tgt >= end
            src, tgt = src[later], tgt[later]
            if len(tgt):
                live -= int(np.count_nonzero(mark[np.unique(tgt)] == none))
                np.minimum.at(mark, tgt, src)
    return ex_of


def dedup(
    hashes: np.ndarray,
    order: np.ndarray | None = None,
    seed: int = 0,
    max_distance: int = 12,
    chunk: int = 2048,
    budget: int = 4_000_000,
    threads: int = 2,
) -> np.ndarray:
    """Exemplar index (into `hashes`) for every hash; equal to `dedup_naive(hashes, order, max_distance)`.

    hashes: uint64 [N]. order: visiting order (a permutation of range(N)); default a permutation drawn from
    `np.random.default_rng(seed)`. A hash is kept iff its exemplar is itself. `chunk`: unresolved hashes
    resolved per batch; `budget` caps the bucket slots fetched at once (memory ≈ 10 bytes × budget);
    `threads` split each batch's searches.
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
