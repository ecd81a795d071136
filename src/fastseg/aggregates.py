"""Mergeable aggregates the report folds finished connections into, batch by
batch, so that its memory follows the distinct values and keys it counts,
not the number of connections.

Each aggregate adds columns (``add``) and merges another of its kind
(``merge``): the aggregate of two parts of a capture merged is the
aggregate of both parts read as one.
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np

__all__ = ["Chunks", "DistinctValues", "LogHistogram", "ValueCounts", "KeyTable", "quantiles",
           "peaks_in_window", "distinct", "mix64", "row_hash", "endpoint_key"]

QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))


def quantiles(values: np.ndarray, counts: np.ndarray) -> Dict[str, float]:
    """p50/p90/p99 of a multiset given as sorted distinct ``values`` with
    their ``counts``: numpy's linear interpolation between the two order
    statistics around each rank, as ``np.percentile`` gives on the
    expanded values."""
    cum = np.cumsum(counts)
    n = int(cum[-1])
    out = {}
    for name, q in QUANTILES:
        rank = (n - 1) * q
        below, above = int(math.floor(rank)), int(math.ceil(rank))
        a, b = values[np.searchsorted(cum, [below + 1, above + 1])]
        out[name] = float(a + (b - a) * (rank - below))
    return out


class ValueCounts:
    """Exact counts of distinct integer values (a sparse histogram).

    Batches are appended as they come and folded into one sorted table when
    they outgrow it, so adding n values costs O(n log n) overall and memory
    is a few times the number of distinct values."""

    def __init__(self):
        self.values = np.empty(0, np.int64)
        self.counts = np.empty(0, np.int64)
        self._parts = []
        self._pending = 0

    def add(self, values: np.ndarray, counts: Optional[np.ndarray] = None) -> None:
        values = np.asarray(values, np.int64)
        if len(values) == 0:
            return
        if counts is None:
            values, counts = np.unique(values, return_counts=True)
        self._parts.append((values, np.asarray(counts, np.int64)))
        self._pending += len(values)
        if self._pending > max(4096, len(self.values)):
            self._compact()

    def _compact(self) -> None:
        if not self._parts:
            return
        v = np.concatenate([self.values] + [p[0] for p in self._parts])
        c = np.concatenate([self.counts] + [p[1] for p in self._parts])
        self._parts, self._pending = [], 0
        order = np.argsort(v, kind="stable")
        v, c = v[order], c[order]
        start = np.flatnonzero(np.concatenate([[True], v[1:] != v[:-1]]))
        self.values, self.counts = v[start], np.add.reduceat(c, start) if len(v) else c

    def merge(self, other: "ValueCounts") -> None:
        other._compact()
        self.add(other.values, other.counts)

    def items(self):
        """(sorted distinct values, their counts)."""
        self._compact()
        return self.values, self.counts

    def total(self) -> int:
        self._compact()
        return int(self.counts.sum())

    def summary(self) -> dict:
        """``samples``, ``p50``/``p90``/``p99`` (exact, as np.percentile) and ``max``."""
        values, counts = self.items()
        if len(values) == 0:
            return {"samples": 0, "p50": None, "p90": None, "p99": None, "max": None}
        return {"samples": int(counts.sum()), **quantiles(values, counts),
                "max": float(values[-1])}


class DistinctValues:
    """The set of distinct integer values seen, folded into one sorted
    array when the appended batches outgrow it."""

    def __init__(self, dtype=np.int64):
        self._dtype = dtype
        self._values = np.empty(0, dtype)
        self._parts = []
        self._pending = 0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, self._dtype)
        if len(values) == 0:
            return
        self._parts.append(values)
        self._pending += len(values)
        if self._pending > max(65536, len(self._values)):
            self._compact()

    def _compact(self) -> None:
        if self._parts:
            v = np.sort(np.concatenate([self._values] + self._parts))
            self._parts, self._pending = [], 0
            self._values = v[np.concatenate([[True], v[1:] != v[:-1]])] if len(v) else v

    def merge(self, other: "DistinctValues") -> None:
        self.add(other.values())

    def values(self) -> np.ndarray:
        """The distinct values, sorted."""
        self._compact()
        return self._values

    def __len__(self) -> int:
        return len(self.values())


class LogHistogram:
    """Fixed-size, mergeable histogram of durations in seconds, for quantiles.

    Magnitudes from 1 ns to 1e5 s fall in logarithmic buckets of ratio
    ``g = (1 + e) / (1 - e)`` with ``e = RELATIVE_ERROR`` (0.1 %), one set for
    each sign, plus one bucket for zero; a bucket stands for ``2 g^k / (g + 1)``,
    within ``e`` of every value in it.  Quantiles (numpy's linear
    interpolation between the two order statistics around the rank) are
    therefore within 0.1 % of the exact ones, clamped to the exact minimum and
    maximum, which are kept too.  About 260 kB whatever the number of values.
    """

    RELATIVE_ERROR = 1e-3
    _GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
    _LO = 1e-9
    _SIZE = int(math.ceil(math.log(1e5 / 1e-9) / math.log(_GAMMA))) + 1
    BUCKETS = 2 * _SIZE + 1

    def __init__(self):
        # [negative magnitudes, highest first] [zero] [positive magnitudes]
        self.counts = np.zeros(self.BUCKETS, np.int64)
        self.lo = math.inf
        self.hi = -math.inf

    @classmethod
    def buckets(cls, values: np.ndarray) -> np.ndarray:
        """The bucket of each (finite) value."""
        mag = np.maximum(np.abs(values), cls._LO)
        k = np.clip(np.ceil(np.log(mag / cls._LO) / math.log(cls._GAMMA)), 0, cls._SIZE - 1)
        k = k.astype(np.int64)
        return np.where(values > 0, cls._SIZE + 1 + k,
                        np.where(values < 0, cls._SIZE - 1 - k, cls._SIZE))

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, np.float64)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            return
        self.lo = min(self.lo, float(values.min()))
        self.hi = max(self.hi, float(values.max()))
        self.counts += np.bincount(self.buckets(values), minlength=self.BUCKETS)

    def merge(self, other: "LogHistogram") -> None:
        self.counts += other.counts
        self.lo = min(self.lo, other.lo)
        self.hi = max(self.hi, other.hi)

    @classmethod
    def bucket_values(cls, bucket: np.ndarray, lo: float, hi: float) -> np.ndarray:
        """The value each bucket stands for, clamped to [lo, hi]."""
        k = np.abs(bucket - cls._SIZE) - 1
        mag = cls._LO * cls._GAMMA ** k * 2 / (cls._GAMMA + 1)
        return np.clip(np.where(bucket == cls._SIZE, 0.0, np.sign(bucket - cls._SIZE) * mag),
                       lo, hi)

    @classmethod
    def sparse_summary(cls, buckets: np.ndarray, counts: np.ndarray, lo: float,
                       hi: float) -> Dict[str, Optional[float]]:
        """``summary()`` of the histogram whose non-empty ``buckets`` (sorted)
        hold ``counts``."""
        n = int(counts.sum())
        if n == 0:
            return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
        return {"count": n, **quantiles(cls.bucket_values(buckets, lo, hi), counts),
                "max": float(hi)}

    def summary(self) -> Dict[str, Optional[float]]:
        nz = np.flatnonzero(self.counts)
        return self.sparse_summary(nz, self.counts[nz], self.lo, self.hi)


class KeyTable:
    """Dense indices for 64-bit keys, in first-seen order, with the columns
    that describe each key (e.g. an address and port) kept from its first
    row.  Lookups are vectorised: the keys are kept sorted in two levels (a
    large one and a small recent one folded into it when it grows), so
    adding k new keys to a table of K costs O(k log k) plus O(K) now and
    then, not O(K log K) per batch."""

    def __init__(self, **dtypes):
        self.keys = np.empty(0, np.uint64)
        self.cols = {name: np.empty((0,) + tuple(shape), dt)
                     for name, (dt, shape) in dtypes.items()}
        # (sorted keys, their indices) for the large level and the recent one
        self._levels = [(np.empty(0, np.uint64), np.empty(0, np.int64)),
                        (np.empty(0, np.uint64), np.empty(0, np.int64))]

    def __len__(self) -> int:
        return len(self.keys)

    def _find(self, keys: np.ndarray, out: np.ndarray) -> np.ndarray:
        known = np.zeros(len(keys), bool)
        for sorted_keys, where in self._levels:
            if len(sorted_keys) == 0:
                continue
            pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
            hit = sorted_keys[pos] == keys
            out[hit] = where[pos[hit]]
            known |= hit
        return known

    def index(self, keys: np.ndarray, **cols) -> np.ndarray:
        """The index of each key, adding the keys not seen before (their
        columns from their first row here)."""
        keys = np.asarray(keys, np.uint64)
        out = np.empty(len(keys), np.int64)
        new = np.flatnonzero(~self._find(keys, out))
        if len(new) == 0:
            return out
        nk, first, inv = np.unique(keys[new], return_index=True, return_inverse=True)
        # first-seen order among the new keys
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        base = len(self.keys)
        out[new] = base + rank[inv.reshape(-1)]
        rows = new[first[order]]
        self.keys = np.concatenate([self.keys, nk[order]])
        for name, col in cols.items():
            self.cols[name] = np.concatenate(
                [self.cols[name], np.asarray(col)[rows].astype(self.cols[name].dtype)])
        (big_k, big_w), (rec_k, rec_w) = self._levels
        rec_k = np.concatenate([rec_k, nk])
        rec_w = np.concatenate([rec_w, base + rank])
        o = np.argsort(rec_k, kind="stable")
        rec_k, rec_w = rec_k[o], rec_w[o]
        if len(rec_k) > max(4096, len(big_k) // 4):
            big_k, big_w = np.concatenate([big_k, rec_k]), np.concatenate([big_w, rec_w])
            o = np.argsort(big_k, kind="stable")        # two sorted runs: a merge
            big_k, big_w = big_k[o], big_w[o]
            rec_k, rec_w = rec_k[:0], rec_w[:0]
        self._levels = [(big_k, big_w), (rec_k, rec_w)]
        return out

    def merge_index(self, other: "KeyTable") -> np.ndarray:
        """Add ``other``'s keys (with their columns); returns, for each of
        its indices, the index here."""
        return self.index(other.keys, **other.cols)


def peaks_in_window(group: np.ndarray, t: np.ndarray, width: float, ngroups: int):
    """For each group, the largest number of its times that fall in one
    window ``(s - width, s]`` ending at one of them, and the earliest such
    ``s``: the peak concurrency of intervals ``[t, t + width)`` that all
    last ``width`` (an interval ending at ``s`` no longer counts at ``s``).
    Returns (peaks, at) indexed by group (0 and NaN for groups without
    times).  Works on integer ranks, a few 8-byte arrays per time."""
    peaks = np.zeros(ngroups, np.int64)
    at = np.full(ngroups, np.nan)
    if len(t) == 0:
        return peaks, at
    # times as ranks among the distinct times, so that group and time
    # make one sortable integer
    u = np.unique(t)
    m = np.int64(len(u) + 1)
    comp = np.asarray(group, np.int64) * m + np.searchsorted(u, t)
    order = np.argsort(comp, kind="stable")
    comp = comp[order]
    g = np.asarray(group, np.int64)[order]
    ts = np.asarray(t)[order]
    del order
    lo = g * m + np.searchsorted(u, ts - width, side="right")
    count = np.searchsorted(comp, comp, side="right") - np.searchsorted(comp, lo, side="left")
    del lo, comp
    starts = np.flatnonzero(np.concatenate([[True], g[1:] != g[:-1]]))
    top = np.maximum.reduceat(count, starts)
    peaks[g[starts]] = top
    best = np.flatnonzero(count == np.repeat(top, np.diff(np.append(starts, len(g)))))
    # rows are in time order within a group: the first hit is the earliest
    first = best[np.concatenate([[True], g[best][1:] != g[best][:-1]])]
    at[g[first]] = ts[first]
    return peaks, at


class Chunks:
    """Arrays appended batch by batch, concatenated once at the end."""

    def __init__(self, **dtypes):
        self._dtypes = dtypes
        self._parts = {k: [] for k in dtypes}

    def add(self, **cols) -> None:
        for k, v in cols.items():
            self._parts[k].append(np.asarray(v, dtype=self._dtypes[k]))

    def extend(self, other: "Chunks") -> None:
        for k, parts in other._parts.items():
            self._parts[k].extend(parts)

    def get(self, name) -> np.ndarray:
        parts = self._parts[name]
        if not parts:
            dt = self._dtypes[name]
            return np.empty((0, 16) if name in ("addr", "orig_h", "resp_h", "dst", "src") else 0, dt)
        if len(parts) > 1:
            parts[:] = [np.concatenate(parts)]
        return parts[0]


def distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique without return arrays takes a hash
    path that is ~50x slower on random 64-bit keys)."""
    v = np.sort(values)
    if len(v):
        v = v[np.concatenate([[True], v[1:] != v[:-1]])]
    return v


# -- 64-bit keys for rows ----------------------------------------------------
def mix64(x: np.ndarray) -> np.ndarray:
    """A 64-bit finaliser (splitmix64) over uint64 arrays, for row keys."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def row_hash(rows: np.ndarray) -> np.ndarray:
    """A 64-bit key per 16-byte address row."""
    w = np.ascontiguousarray(rows).view(np.uint64).reshape(-1, 2)
    return mix64(mix64(w[:, 0]) ^ w[:, 1])


def endpoint_key(addr: np.ndarray, port: np.ndarray, ver: np.ndarray) -> np.ndarray:
    """A 64-bit key per (address row, port, IP version)."""
    return mix64(row_hash(addr) ^ ((np.asarray(port).astype(np.uint64) << np.uint64(8))
                                   | np.asarray(ver).astype(np.uint64)))
