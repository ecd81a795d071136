"""Many capture files through Dask (needs the ``dask`` extra): the same
report and connections as one process reading the files in order.

Files are partitions, listed in capture order (rotated ``tcpdump -C/-G``
output).  Each partition is read once and tracked on its own
(``_scan``).  Connections are independent per ``flow_key``, so a
partition's connections are final unless their key was still alive at the
end of an earlier partition.  The driver finds those keys from small
per-partition tables (``_boundary_keys``): a key is alive after partition
*j* when partition *j* ended with a live connection on it, or when its
segments in *j* were themselves a continuation, until ``idle_timeout`` (plus
one second) after its last segment there (every connection expires after
that much silence).  The segments of those keys in later partitions, and
of every connection still open at a partition's end, are the fragments:
only they are shuffled on ``flow_key`` (``_buckets``), put back in capture
order and tracked again (``_stitch``).  A fragment chain starts at a
connection that began on a key with no live connection, so a fresh tracker
over it sees what one process saw.  Reports are the per-partition
aggregates of the final connections merged with those of the stitched
ones (``_Analysis.merge``).

Checksum offload: each partition's tracker diagnoses offloading senders
from its own segments; the report's offload hosts come from the whole
capture and are forced when the fragments and final connections are
tracked.  Results equal one process whenever every partition reaches the
capture's verdict on its own (as with any sender that offloads
throughout).
"""
from __future__ import annotations

import glob as _glob
import os
from typing import List, Optional, Sequence, Union

import numpy as np

__all__ = ["segments", "connections", "summary", "plan"]

_SLACK_NS = 1_000_000_000


def _paths(paths_or_glob) -> List[str]:
    if isinstance(paths_or_glob, (str, os.PathLike)):
        text = str(paths_or_glob)
        found = sorted(_glob.glob(text))
        return found if found or not _glob.has_magic(text) else []
    return [str(p) for p in paths_or_glob]


# -- per partition ------------------------------------------------------------

class _Done:
    """Stands in for a flushed Tracker inside a finished _Analysis, so the
    analysis can be pickled and merged (nothing is left to flush)."""

    def __init__(self, tracker):
        self.next_id = int(tracker.next_id)
        self.evicted = int(getattr(tracker, "evicted", 0))
        self.verdict = tracker.verdict

    @staticmethod
    def flush_columns() -> dict:
        return {"_conn": np.zeros(0, np.int64)}

    @staticmethod
    def min_live_id() -> float:
        return np.inf


def _finished(acc):
    """Flush an _Analysis and make it picklable."""
    acc._fold(acc.tracker.flush_columns())
    acc._release(np.inf)
    acc.tracker = _Done(acc.tracker)
    acc.on_connections = None
    return acc


def _track_opts(opts: dict) -> dict:
    return {k: opts[k] for k in ("idle_timeout", "checksums") if k in opts}


def _scan(path: str, opts: dict):
    """Read and track one partition, batch by batch.  Returns its batches
    (tracked: column ``conn``; columns only, no packet bytes), the ids and
    keys of the connections still open at its end, each key's first and
    last time, and the partition's checksum tally."""
    from .parse import open as open_capture
    from .segments import Segments
    from .track import Tracker

    tracker = Tracker(**_track_opts(opts))
    batches = []
    with open_capture(path, batch_packets=262144) as cap:
        for seg in cap.batches():
            seg = Segments({k: v for k, v in seg._cols.items() if k not in _FRAGMENT_DROP},
                           None, seg.stats)
            tracker.update_columns(seg)
            batches.append(seg)
    still = tracker.flush_columns()
    keys = np.concatenate([b["flow_key"] for b in batches]) if batches else np.zeros(0, np.uint64)
    ts = np.concatenate([b["ts_ns"] for b in batches]) if batches else np.zeros(0, np.int64)
    order = np.argsort(keys, kind="stable")
    uk, first_at = np.unique(keys[order], return_index=True)
    ts_by_key = ts[order]
    key_first = np.minimum.reduceat(ts_by_key, first_at) if len(uk) else np.zeros(0, np.int64)
    key_last = np.maximum.reduceat(ts_by_key, first_at) if len(uk) else np.zeros(0, np.int64)
    return {
        "batches": batches,
        "open_ids": np.asarray(still["_conn"], np.int64),
        "open_keys": np.asarray(still["flow_key"], np.uint64),
        "keys": uk, "key_first": key_first, "key_last": key_last,
        "start": int(ts.min()) if len(ts) else None,
        "verdict": tracker.verdict,
    }


def _summary_of_scan(scan: dict) -> dict:
    """What the driver needs from a scan (small: keys, not segments)."""
    return {k: scan[k] for k in ("open_keys", "keys", "key_first", "key_last", "start",
                                 "verdict")}


def _boundary_keys(scans: List[dict], idle_timeout: float):
    """Per partition: the sorted keys whose segments there may continue a
    connection of an earlier partition (``dirty``), and the keys of its
    connections open at its end that a later partition may continue
    (``carried``); see the module docstring."""
    idle = int(idle_timeout * 1e9) + _SLACK_NS
    alive_keys = np.zeros(0, np.uint64)
    alive_until = np.zeros(0, np.int64)
    alive_from = np.zeros(0, np.int64)
    dirty_of, hit = [], [[] for _ in scans]
    for part, s in enumerate(scans):
        keys, first, last = s["keys"], s["key_first"], s["key_last"]
        if s["start"] is None:
            dirty_of.append(np.zeros(0, np.uint64))
            continue
        live = alive_until >= s["start"]
        alive_keys, alive_until, alive_from = alive_keys[live], alive_until[live], alive_from[live]
        at = np.searchsorted(keys, alive_keys)
        at_ok = np.minimum(at, max(len(keys) - 1, 0))
        seen = (at < len(keys)) & (keys[at_ok] == alive_keys) if len(keys) else \
            np.zeros(len(alive_keys), bool)
        seen &= first[at_ok] <= alive_until if len(keys) else seen
        for origin in np.unique(alive_from[seen]):
            hit[origin].append(alive_keys[seen & (alive_from == origin)])
        dirty = np.unique(alive_keys[seen])
        dirty_of.append(dirty)
        # keys that leave this partition possibly alive
        carry = np.union1d(dirty, s["open_keys"])
        until = last[np.searchsorted(keys, carry)] + idle
        alive_keys = np.r_[alive_keys, carry]
        alive_until = np.r_[alive_until, until]
        alive_from = np.r_[alive_from, np.full(len(carry), part, np.int64)]
        # one entry per key: the latest deadline
        order = np.lexsort((-alive_until, alive_keys))
        alive_keys, alive_until, alive_from = (alive_keys[order], alive_until[order],
                                               alive_from[order])
        one = np.r_[True, alive_keys[1:] != alive_keys[:-1]] if len(alive_keys) else \
            np.zeros(0, bool)
        alive_keys, alive_until, alive_from = alive_keys[one], alive_until[one], alive_from[one]
    carried = [np.unique(np.concatenate(h)) if h else np.zeros(0, np.uint64) for h in hit]
    return dirty_of, carried


def plan(paths_or_glob, **opts) -> dict:
    """Scan every partition locally and return, per partition, how many of
    its connections and segments cross a boundary (for sizing a cluster)."""
    paths = _paths(paths_or_glob)
    scans = [_scan(p, opts) for p in paths]
    dirty, carried = _boundary_keys([_summary_of_scan(s) for s in scans],
                                    opts.get("idle_timeout", 300.0))
    rows = []
    for s, d, c in zip(scans, dirty, carried):
        frag = np.concatenate([_fragment_mask(s, b, d, c) for b in s["batches"]] or [[]]
                              ).astype(bool)
        conn = np.concatenate([b["conn"] for b in s["batches"]] or [[]]).astype(np.int64)
        rows.append({"segments": len(conn), "fragments": int(frag.sum()),
                     "connections": int(len(np.unique(conn))),
                     "crossing": int(len(np.unique(conn[frag])))})
    return {"paths": paths, "partitions": rows}


def _fragment_mask(scan: dict, seg, dirty: np.ndarray, carried: np.ndarray) -> np.ndarray:
    """The segments of ``seg`` (a batch of the partition) of ``dirty`` keys,
    and of the connections open at the partition's end whose key is
    ``carried`` on."""
    keys = seg["flow_key"]
    ids = scan["open_ids"][np.isin(scan["open_keys"], carried)]
    mask = np.isin(seg["conn"], ids)
    if len(dirty):
        mask |= np.isin(keys, dirty)
    return mask


_FRAGMENT_DROP = ("_l3_off", "_l4_off", "_l3_caplen", "conn")


def _split(scan: dict, dirty: np.ndarray, carried: np.ndarray, part: int, offload: np.ndarray,
           opts: dict, nbuckets: int, keep: bool):
    """Phase two of a partition: fold its final connections into an
    _Analysis and cut its fragments into ``nbuckets`` by flow_key."""
    acc = _new_analysis(opts, offload, keep)
    pieces = []
    pos = 0
    for seg in scan["batches"]:
        frag = _fragment_mask(scan, seg, dirty, carried)
        # a new table (the tracker rewrites its "conn"); stats: the whole batch's
        acc.add(seg[~frag] if frag.any() else seg[:])
        idx = np.flatnonzero(frag)
        if len(idx):
            cols = {k: v[idx] for k, v in seg._cols.items() if k != "conn"}
            cols["_part"] = np.full(len(idx), part, np.int32)
            cols["_pos"] = idx.astype(np.int64) + pos
            pieces.append(cols)
        pos += len(seg)
    acc = _finished(acc)
    cols = ({k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]} if pieces else None)
    buckets = []
    for b in range(nbuckets):
        if cols is None:
            buckets.append({"flow_key": np.zeros(0, np.uint64)})
            continue
        mine = (cols["flow_key"] % np.uint64(nbuckets)) == b
        buckets.append({k: v[mine] for k, v in cols.items()})
    return acc, buckets


def _new_analysis(opts: dict, offload: np.ndarray, keep: bool):
    from .analyze import _Analysis
    from .track import Tracker

    checksums = opts.get("checksums", "auto")
    tracker = Tracker(idle_timeout=opts.get("idle_timeout", 300.0), checksums=checksums,
                      offload_hosts=offload if checksums == "auto" and len(offload) else None)
    kw = {k: opts[k] for k in ("close_wait_threshold", "flood_window", "flood_min_syns")
          if k in opts}
    return _Analysis(checksums=checksums, idle_timeout=opts.get("idle_timeout", 300.0),
                     tracker=tracker, keep_connections=keep, **kw)


def _stitch(pieces: List[dict], offload: np.ndarray, opts: dict, keep: bool):
    """Track the fragments of one bucket in capture order."""
    from .segments import Segments

    pieces = [p for p in pieces if len(p["flow_key"])]
    acc = _new_analysis(opts, offload, keep)
    if pieces:
        cols = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
        order = np.lexsort((cols.pop("_pos"), cols.pop("_part")))
        acc.add(Segments({k: v[order] for k, v in cols.items()}))
    return _finished(acc)


def _merge(accs):
    out = accs[0]
    for other in accs[1:]:
        out.merge(other)
    return out


def _offload_rows(summaries) -> np.ndarray:
    from .checksum import ChecksumVerdict
    mode = summaries[0]["verdict"].mode if summaries else "auto"
    total = ChecksumVerdict(mode)
    for s in summaries:
        total.merge(s["verdict"])
    return np.ascontiguousarray(total.offload_rows(), dtype=np.uint8).reshape(-1, 16)


# -- the graph ----------------------------------------------------------------

def _bucket(split, b: int) -> dict:
    return split[1][b]


def _first(split):
    return split[0]


def _run(paths, client, opts, keep, nbuckets=None):
    """Scan every partition, plan the boundaries, fold each partition's final
    connections and stitch the fragments.  Returns the finished analyses
    (partitions, then buckets): futures on ``client``, else values computed
    on the current Dask scheduler."""
    nbuckets = max(1, int(nbuckets or max(1, len(paths) // 2)))
    idle = opts.get("idle_timeout", 300.0)
    if client is not None:
        scans = client.map(_scan, paths, opts=opts, pure=False)
        small = client.gather(client.map(_summary_of_scan, scans))
        dirty, carried = _boundary_keys(small, idle)
        offload = _offload_rows(small)
        splits = [client.submit(_split, s, d, c, i, offload, opts, nbuckets, keep, pure=False)
                  for i, (s, d, c) in enumerate(zip(scans, dirty, carried))]
        del scans
        accs = [client.submit(_first, sp) for sp in splits]
        stitched = [client.submit(_stitch, [client.submit(_bucket, sp, b) for sp in splits],
                                  offload, opts, keep, pure=False) for b in range(nbuckets)]
        return accs + stitched
    import dask
    scans = list(dask.compute(*[dask.delayed(_scan, pure=False)(p, opts) for p in paths]))
    small = [_summary_of_scan(s) for s in scans]
    dirty, carried = _boundary_keys(small, idle)
    offload = _offload_rows(small)
    splits = list(dask.compute(*[dask.delayed(_split, pure=False)(s, d, c, i, offload, opts,
                                                                  nbuckets, keep)
                                 for i, (s, d, c) in enumerate(zip(scans, dirty, carried))]))
    del scans
    stitched = list(dask.compute(*[dask.delayed(_stitch, pure=False)(
        [sp[1][b] for sp in splits], offload, opts, keep) for b in range(nbuckets)]))
    return [sp[0] for sp in splits] + stitched


def summary(paths_or_glob: Union[str, Sequence[str]], client=None, **opts):
    """The Report of the files read in order as one capture (as
    ``fastseg.analyze(list_of_files)``), computed on Dask: ``client`` a
    ``dask.distributed.Client`` (default: the current Dask scheduler).
    Options: ``checksums``, ``idle_timeout``, ``close_wait_threshold``,
    ``flood_window``, ``flood_min_syns``."""
    import dask

    paths = _paths(paths_or_glob)
    if not paths:
        raise FileNotFoundError(f"no capture files match {paths_or_glob!r}")
    parts = _run(paths, client, opts, keep=False)
    if client is not None:
        parts = client.gather(parts)
    return _merge(parts).finish(paths)


def _conn_frame(acc):
    from .track import Connections
    conns = Connections.concat(acc.conn_parts) if acc.conn_parts else Connections.empty()
    return _arrow_friendly(conns.to_pandas())


def _arrow_friendly(df):
    """Fixed categories (so every partition has one dtype) and text as
    Arrow strings."""
    import pandas as pd
    from .track import CONN_STATES, RFC_STATES

    fixed = {"conn_state": CONN_STATES, "orig_state": RFC_STATES, "resp_state": RFC_STATES,
             "closer": ("orig", "resp"), "close": ("fin", "rst")}
    for name, cats in fixed.items():
        if name in df:
            df[name] = pd.Categorical(df[name].astype(object), categories=list(cats))
    for name in ("uid", "orig_h", "resp_h", "history"):
        if name in df:
            df[name] = df[name].astype("string[pyarrow]")
    return df.reset_index(drop=True)


def _connections_meta():
    from .track import Connections
    return _arrow_friendly(Connections.empty().to_pandas())


def connections(paths_or_glob, client=None, npartitions: Optional[int] = None, **opts):
    """A Dask DataFrame of every connection of the files read in order as one
    capture: one partition per file (its final connections) and
    ``npartitions`` (default: half the files) of stitched connections that
    crossed a file boundary.  Rows equal ``fastseg.track`` over the files
    read as one capture (uids included); row order is not capture order.
    The boundary plan is computed eagerly (the scans stay on the workers)."""
    import dask
    import dask.dataframe as dd

    paths = _paths(paths_or_glob)
    if not paths:
        raise FileNotFoundError(f"no capture files match {paths_or_glob!r}")
    parts = _run(paths, client, opts, keep=True, nbuckets=npartitions)
    if client is not None:
        frames = [client.submit(_conn_frame, a) for a in parts]
    else:
        frames = [dask.delayed(_conn_frame)(a) for a in parts]
    return dd.from_delayed(frames, meta=_connections_meta(), verify_meta=False)


# -- segments -----------------------------------------------------------------

def _read_pandas(path: str, columns=None):
    from .parse import read_segments
    df = read_segments(path).to_pandas()
    for name in ("src", "dst"):
        df[name] = df[name].astype("string[pyarrow]")
    return df if columns is None else df[list(columns)]


def segments(paths_or_glob, columns: Optional[Sequence[str]] = None):
    """A Dask DataFrame of the segments of every file, one partition per file
    (addresses as text, absent options as <NA>, as ``Segments.to_pandas``).
    ``columns`` selects columns in the reader."""
    import dask.dataframe as dd
    from .segments import Segments

    meta = Segments.empty().to_pandas()
    for name in ("src", "dst"):
        meta[name] = meta[name].astype("string[pyarrow]")
    if columns is not None:
        meta = meta[list(columns)]
    return dd.from_map(_read_pandas, _paths(paths_or_glob), columns=columns, meta=meta,
                       enforce_metadata=False)
