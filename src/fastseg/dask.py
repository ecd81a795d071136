"""Many capture files, or one huge one, through Dask (needs the ``dask``
extra): the same report and connections as one process reading the files in
order.

Partitions
    One per file, listed in capture order (rotated ``tcpdump -C/-G`` output);
    an uncompressed file larger than ``partition_bytes`` (default
    :data:`PARTITION_BYTES`) is cut into byte ranges at record boundaries by
    an index pass over its record headers
    (:func:`fastseg.capture.index_capture`; a pcapng range carries the SHB
    and IDBs in force at its start).  Compressed files are one partition
    each.  Indexed partitions know their time range, so a time window
    (``start``/``end``) skips those outside it (pruning, not Dask divisions:
    the frames are not indexed by time).

One pass per partition (``_read``, ``_track``)
    Each partition is read and parsed once on its worker, which keeps the
    parsed columns (no packet bytes) and tallies its checksums.  It is
    tracked once, as soon as the partitions before it are read: its checksum
    verdict starts from their tallies (where one process's verdict stands
    when it reaches the partition, batch for batch, so each segment is
    dropped for a bad checksum or kept as one process does; the decision
    stays with the segment).  The worker keeps the connections its tracker
    emitted after each batch.  Connections are independent per
    ``flow_key``, so a partition's connections are final unless their key
    was still alive at the end of an earlier partition.

Plan (driver, keys only)
    Each partition reports when the keys left open at the end of the
    earlier partitions occur in it, and its own open keys (``_lookup``).  A
    key is alive after partition *j* when *j* ended with a live connection
    on it, or when its segments in *j* were themselves a continuation, until
    ``idle_timeout`` (plus one second) after its last segment there (every
    connection expires after that much silence) (``_boundary_keys``).  The
    segments of those keys in later partitions (*dirty*), and of every open
    connection whose key goes on (*carried*), are the fragments.

Split and stitch
    Every other connection is final: the partition's report aggregates are
    folded from the connections its tracker already emitted (``_Replay``
    hands them to an ``_Analysis``; nothing is tracked twice).  Only the
    fragments are cut into buckets by ``flow_key`` and moved; each bucket is
    put back in capture order and tracked by a fresh tracker with the
    fragments' own drop decisions (``_stitch``): a fragment chain starts at
    a connection that began on a key with no live connection, so the
    tracker sees what one process saw.  The analyses are merged on the
    workers in a tree (``_Analysis.merge``), in capture order, and the
    report is built there: only it goes to the driver.  Connection uids
    derive from ``flow_key`` and the first timestamp, so they are the
    single-process uids.

Equal to one process
    Reports and connections equal ``fastseg.analyze(files)`` with the same
    ``batch_packets`` (default 65536, as ``analyze``): the checksum verdict
    is reached batch by batch, so batches must match; byte ranges end at
    batch ends for that reason.  ``max_connections`` is not supported.

Clients
    ``client``: a ``dask.distributed.Client`` (default: the current one, if
    any, else local threads).  With an asynchronous client
    (``Client(asynchronous=True)``), ``summary`` and ``connections`` return
    awaitables.
"""
from __future__ import annotations

import glob as _glob
import os
import warnings
from typing import TYPE_CHECKING, List, NamedTuple, Optional, Sequence, Union

import numpy as np

if TYPE_CHECKING:
    from .capture import ByteRange

__all__ = ["segments", "connections", "summary", "plan", "partitions", "Partition",
           "PARTITION_BYTES"]

PARTITION_BYTES = 128 << 20     # byte ranges of one big file: ~1 s of work each
_SLACK_NS = 1_000_000_000
_BATCH_PACKETS = 65536      # as fastseg.analyze: the same checksum verdict per batch
# hidden columns a partition keeps: the parser's checksum detail, the drop decision
_HIDDEN_KEPT = ("_csum_unfilled", "_dropped")


def _paths(paths_or_glob) -> List[str]:
    if isinstance(paths_or_glob, (str, os.PathLike)):
        text = str(paths_or_glob)
        found = sorted(_glob.glob(text))
        return found if found or not _glob.has_magic(text) else []
    return [str(p) for p in paths_or_glob]


def _files(paths_or_glob) -> List[str]:
    paths = _paths(paths_or_glob)
    if not paths:
        raise FileNotFoundError(f"no capture files match {paths_or_glob!r}")
    return paths


def _ns(t) -> Optional[int]:
    """A time bound as ns since the epoch: seconds (int/float), or anything
    ``pandas.Timestamp`` takes (naive means UTC)."""
    if t is None:
        return None
    if isinstance(t, (int, float, np.integer, np.floating)):
        return int(round(float(t) * 1e9))
    import pandas as pd
    return int(pd.Timestamp(t).value)


# -- partitions -----------------------------------------------------------------

class Partition(NamedTuple):
    """A unit of work: a whole file (``byte_range`` None) or a
    :class:`fastseg.capture.ByteRange` of one."""

    path: str
    byte_range: Optional["ByteRange"] = None

    @property
    def time_range(self):
        """(first, last) packet time in ns, or None when not indexed."""
        r = self.byte_range
        return None if r is None or r.ts_first is None else (r.ts_first, r.ts_last)


def _index(path: str, target: int, always: bool, batch_packets: int):
    """The byte ranges of ``path`` (None: read it whole): indexed when it is
    larger than ``target`` or when ``always`` (a time window needs times)."""
    from .capture import index_capture
    if not always and os.path.getsize(path) <= target:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # a cut-short file warns again when read
        return index_capture(path, target, batch_packets=batch_packets)


def _in_window(part: Partition, window) -> bool:
    if window is None:
        return True
    if part.byte_range is None:
        return True
    tr = part.time_range
    lo, hi = window
    return tr is not None and (hi is None or tr[0] < hi) and (lo is None or tr[1] >= lo)


async def _partitions(ex, paths, partition_bytes, window, batch_packets) -> List[Partition]:
    target = int(partition_bytes or PARTITION_BYTES)
    ranges = await ex.gather(ex.map(_index, paths, target=target, always=window is not None,
                                    batch_packets=batch_packets))
    parts = []
    for path, rs in zip(paths, ranges):
        parts += [Partition(path)] if rs is None else [Partition(path, r) for r in rs]
    return [p for p in parts if _in_window(p, window)]


def partitions(paths_or_glob, partition_bytes: Optional[int] = None, start=None, end=None,
               client=None, batch_packets: int = _BATCH_PACKETS) -> List[Partition]:
    """The partitions the other functions use: one per file, byte ranges of
    files over ``partition_bytes`` (ending at batch ends of a reader with
    ``batch_packets``), pruned to the time window [``start``, ``end``)
    (seconds since the epoch or timestamps)."""
    paths = _files(paths_or_glob)
    window = _window(start, end)
    return _run(_executor(client), _partitions, paths, partition_bytes, window,
                int(batch_packets))


def _window(start, end):
    return None if start is None and end is None else (_ns(start), _ns(end))


# -- executors -------------------------------------------------------------------

class _Workers:
    """Tasks on a dask.distributed Client (results stay on the workers)."""

    def __init__(self, client):
        self.client = client

    def map(self, fn, *iterables, **kw):
        if not iterables or not len(iterables[0]):
            return []
        return self.client.map(fn, *iterables, pure=False, **kw)

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)

    async def gather(self, handles):
        return await self.client.gather(handles, asynchronous=True)


class _Threads:
    """Tasks on Dask's local scheduler, computed stage by stage."""

    def map(self, fn, *iterables, **kw):
        import dask
        return list(dask.compute(*[dask.delayed(fn, pure=False)(*args, **kw)
                                   for args in zip(*iterables)]))

    def submit(self, fn, *args):
        return fn(*args)

    async def gather(self, handles):
        return handles


def _executor(client):
    if client is None:
        try:
            from distributed import default_client
            client = default_client()
        except (ImportError, ValueError):
            return _Threads()
    return _Workers(client)


def _run(ex, fn, *args):
    """Run the driver coroutine ``fn(ex, *args)``: on the client's event loop
    (an awaitable for an asynchronous client), else to the end here (local
    stages never suspend)."""
    if isinstance(ex, _Workers):
        return ex.client.sync(fn, ex, *args)
    coro = fn(ex, *args)
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("a local Dask stage suspended")     # pragma: no cover


# -- one pass per partition ---------------------------------------------------------

class _Scan:
    """What a partition's pass leaves on its worker: its parsed batches (no
    packet bytes), its own checksum tally, and once tracked (``_track``) the
    connections the tracker emitted after each batch and those open at the
    end."""

    def __init__(self, batches, verdict):
        self.batches = batches
        self.verdict = verdict
        self.done: List[dict] = []
        self.open: dict = {}
        self.next_id = 0

    def __getstate__(self):
        state = dict(self.__dict__)
        state["batches"] = [(dict(_columns(b), conn=b["conn"]) if "conn" in b else _columns(b),
                             b.stats) for b in self.batches]
        return state

    def __setstate__(self, state):
        from .segments import Segments
        state["batches"] = [Segments(cols, None, stats) for cols, stats in state["batches"]]
        self.__dict__.update(state)

    def __sizeof__(self) -> int:
        # what moving it would cost: Dask's scheduler then keeps scans where they are
        cols = [_columns(b) for b in self.batches] + self.done + [self.open]
        return sum(v.nbytes for c in cols for v in c.values())

    def key_times(self):
        """Per connection: flow key, first and last segment time."""
        cols = [d for d in self.done + [self.open] if len(d["_conn"])]
        if not cols:
            return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        key = np.concatenate([d["flow_key"] for d in cols])
        first = np.concatenate([d["first_ts"] for d in cols])
        last = np.concatenate([np.maximum(d["last_ts"], d["last_seen"].max(axis=1))
                               for d in cols])
        return key, first, last


def _columns(seg) -> dict:
    """The columns a partition keeps of a batch (no packet bytes)."""
    cols = {k: seg[k] for k in seg.columns if k != "conn"}
    cols.update((k, seg[k]) for k in _HIDDEN_KEPT if k in seg)
    return cols


def _mode(opts: dict) -> str:
    return opts.get("checksums", "auto")


def _batch_packets(opts: dict) -> int:
    return int(opts.get("batch_packets", _BATCH_PACKETS))


def _read(part: Partition, opts: dict, window=None) -> _Scan:
    """Read and parse one partition (``window``: keep the segments with
    ``start <= ts_ns < end``), tallying its checksums as a tracker would."""
    from .checksum import ChecksumVerdict
    from .parse import open as open_capture
    from .segments import Segments

    verdict = ChecksumVerdict(_mode(opts))
    batches = []
    with open_capture(part.path, batch_packets=_batch_packets(opts),
                      byte_range=part.byte_range) as cap:
        for seg in cap.batches():
            seg = Segments(_columns(seg), None, seg.stats)
            if window is not None:
                seg = _clip(seg, window)
            verdict.dropped(seg)
            batches.append(seg)
    return _Scan(batches, verdict)


class _Decided:
    """A tracker's checksum verdict that hands back the decisions already
    made for each segment (column ``_dropped``)."""

    def __init__(self, mode: str):
        self.mode = mode

    @staticmethod
    def dropped(seg) -> np.ndarray:
        return np.ascontiguousarray(seg["_dropped"], np.uint8)


def _track(scan: _Scan, before: list, opts: dict) -> _Scan:
    """Track a read partition.  Its checksum verdict starts from ``before``,
    the tallies of every earlier partition: where one process's verdict stands
    when it reaches this partition, so each segment is dropped (or not) as
    one process drops it; the decision is kept with the segment (``_dropped``)
    for when a fragment is tracked again.  Fills ``scan`` in (the same
    object comes back: the batches are not copied)."""
    from .checksum import ChecksumVerdict
    from .track import Tracker

    verdict = ChecksumVerdict(_mode(opts))
    for tally in before:
        verdict.merge(tally)
    tracker = Tracker(**_track_opts(opts))
    tracker.verdict = _Decided(_mode(opts))
    scan.done = []
    for seg in scan.batches:
        seg["_dropped"] = verdict.dropped(seg)
        scan.done.append(tracker.update_columns(seg))
    scan.open = tracker.flush_columns()
    scan.next_id = int(tracker.next_id)
    return scan


def _track_opts(opts: dict) -> dict:
    return {k: opts[k] for k in ("idle_timeout", "checksums") if k in opts}


def _clip(seg, window):
    lo, hi = window
    ts = seg["ts_ns"]
    keep = np.ones(len(ts), bool)
    if lo is not None:
        keep &= ts >= lo
    if hi is not None:
        keep &= ts < hi
    return seg if keep.all() else seg[keep]


def _head(scan: _Scan) -> dict:
    """What the plan needs of a tracked partition (small): its first packet
    time and the keys of its open connections."""
    ts = [b["ts_ns"] for b in scan.batches if len(b)]
    return {"start": int(min(t.min() for t in ts)) if ts else None,
            "open_keys": np.unique(scan.open["flow_key"])}


def _tally(scan: _Scan):
    return scan.verdict


def _lookup(scan: _Scan, earlier: list) -> dict:
    """First and last time in this partition of its open keys and of the
    keys open at the end of the ``earlier`` partitions (their heads), sorted
    by key."""
    key, first, last = scan.key_times()
    want = np.unique(np.concatenate([scan.open["flow_key"]] + [h["open_keys"] for h in earlier]))
    hit = np.isin(key, want)
    key, first, last = key[hit], first[hit], last[hit]
    order = np.argsort(key, kind="stable")
    uk, at = np.unique(key[order], return_index=True)
    return {"keys": uk,
            "key_first": np.minimum.reduceat(first[order], at) if len(uk) else first[:0],
            "key_last": np.maximum.reduceat(last[order], at) if len(uk) else last[:0]}


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


def _fragment_ids(scan: _Scan, dirty: np.ndarray, carried: np.ndarray) -> np.ndarray:
    """By connection id of the partition: True for the connections that are
    fragments (on a ``dirty`` key, or open at the end on a ``carried`` one).
    Every segment of a key belongs to a connection on that key, so segments
    are picked by their connection id (one gather, no key search)."""
    frag = np.zeros(scan.next_id + 1, bool)
    frag[scan.open["_conn"][np.isin(scan.open["flow_key"], carried)]] = True
    if len(dirty):
        for cols in scan.done + [scan.open]:
            frag[cols["_conn"][np.isin(cols["flow_key"], dirty)]] = True
    return frag


def _final_rows(cols: dict, frag: np.ndarray) -> dict:
    """The connections of ``cols`` (kernel columns) that no fragment continues."""
    if not len(cols["_conn"]):
        return cols
    drop = frag[cols["_conn"]]
    return {k: v[~drop] for k, v in cols.items()} if drop.any() else cols


# -- turning tracked connections into report aggregates -----------------------------

class _Replay:
    """Stands in for the Tracker inside an ``_Analysis``: hands back the
    connections a tracker already emitted (``pending``), so nothing is
    tracked twice; picklable once drained.  Its verdict holds no counts (the
    capture's verdict is merged from the partitions' tallies)."""

    evicted = 0

    def __init__(self, mode: str, next_id: int = 0):
        from .checksum import ChecksumVerdict
        self.verdict = ChecksumVerdict(mode)
        self.next_id = int(next_id)
        self.pending: List[dict] = []

    def update_columns(self, seg) -> dict:
        return self._take()

    def flush_columns(self) -> dict:
        return self._take()

    @staticmethod
    def min_live_id() -> int:
        return 0        # kept until the end: then handed on in id order

    def _take(self) -> dict:
        parts = [p for p in self.pending if len(p["_conn"])]
        self.pending = []
        if not parts:
            return {"_conn": np.zeros(0, np.int64)}
        if len(parts) == 1:
            return parts[0]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _new_analysis(opts: dict, replay: _Replay, keep: bool):
    from .analyze import _Analysis
    kw = {k: opts[k] for k in ("close_wait_threshold", "flood_window", "flood_min_syns")
          if k in opts}
    return _Analysis(checksums=_mode(opts), idle_timeout=opts.get("idle_timeout", 300.0),
                     tracker=replay, keep_connections=keep, aggregates=not keep, **kw)


def _split(scan: _Scan, dirty, carried, part: int, opts: dict, nbuckets: int, keep: bool):
    """Phase two of a partition: fold its final connections into an
    ``_Analysis`` and cut its fragments into ``nbuckets`` by flow_key."""
    replay = _Replay(_mode(opts), scan.next_id)
    acc = _new_analysis(opts, replay, keep)
    frag_ids = _fragment_ids(scan, dirty, carried)
    pieces = []
    pos = 0
    for seg, done in zip(scan.batches, scan.done):
        frag = frag_ids[seg["conn"]]
        replay.pending.append(_final_rows(done, frag_ids))
        acc.add(seg[~frag] if frag.any() else seg)      # stats: the whole batch's
        idx = np.flatnonzero(frag)
        if len(idx):
            cols = {k: v[idx] for k, v in _columns(seg).items()}
            cols["_part"] = np.full(len(idx), part, np.int32)
            cols["_pos"] = idx.astype(np.int64) + pos
            pieces.append(cols)
        pos += len(seg)
    replay.pending.append(_final_rows(scan.open, frag_ids))
    cols = ({k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]} if pieces else None)
    buckets = []
    for b in range(nbuckets):
        if cols is None:
            buckets.append(None)
            continue
        mine = (cols["flow_key"] % np.uint64(nbuckets)) == b
        buckets.append({k: v[mine] for k, v in cols.items()} if mine.any() else None)
    return acc, buckets


def _stitch(pieces: List[Optional[dict]], opts: dict, keep: bool):
    """Track the fragments of one bucket in capture order (each dropped for
    a bad checksum as it was in its partition)."""
    from .segments import Segments
    from .track import Tracker

    pieces = [p for p in pieces if p is not None]
    replay = _Replay(_mode(opts))
    acc = _new_analysis(opts, replay, keep)
    if pieces:
        tracker = Tracker(**_track_opts(opts))
        tracker.verdict = _Decided(_mode(opts))
        cols = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
        order = np.lexsort((cols.pop("_pos"), cols.pop("_part")))
        seg = Segments({k: v[order] for k, v in cols.items()})
        replay.pending.append(tracker.update_columns(seg))
        replay.pending.append(tracker.flush_columns())
        replay.next_id = int(tracker.next_id)
        acc.add(seg)
    return acc


def _merge2(first, second):
    """Two analyses of consecutive parts, merged (on a worker)."""
    return first.merge(second)


# -- the driver ---------------------------------------------------------------------

async def _plan(ex, parts: List[Partition], opts: dict, window):
    """Read, track and plan every partition.  Returns the tracked scans
    (handles), per partition the dirty and the carried keys, and the
    capture's checksum verdict.  Partition *j* is tracked as soon as the
    partitions before it are read (it needs their checksum tallies) and
    looked up as soon as they are tracked (it needs their open keys): one
    wait on the driver, for the small tables."""
    from .checksum import ChecksumVerdict
    read = ex.map(_read, parts, opts=opts, window=window)
    tallies = ex.map(_tally, read)
    scans = [ex.submit(_track, r, tallies[:j], opts) for j, r in enumerate(read)]
    del read
    heads = ex.map(_head, scans)
    tables = [ex.submit(_lookup, s, heads[:j]) for j, s in enumerate(scans)]
    tables, heads, tallies = await ex.gather([tables, heads, tallies])
    for h, t in zip(heads, tables):
        t.update(start=h["start"], open_keys=h["open_keys"])
    dirty, carried = _boundary_keys(tables, opts.get("idle_timeout", 300.0))
    total = ChecksumVerdict(_mode(opts))
    for t in tallies:
        total.merge(t)
    return scans, dirty, carried, total


async def _analyses(ex, parts: List[Partition], opts: dict, keep: bool,
                    npartitions: Optional[int], window=None):
    """The finished analyses (handles): one per partition (its final
    connections), then one per bucket of stitched fragments."""
    scans, dirty, carried, total = await _plan(ex, parts, opts, window)
    n = len(parts)
    nbuckets = _nbuckets(n, npartitions, sum(map(len, dirty)) + sum(map(len, carried)))
    splits = ex.map(_split, scans, dirty, carried, list(range(n)), opts=opts,
                    nbuckets=nbuckets, keep=keep)
    del scans
    accs = ex.map(_first, splits)
    stitched = [ex.submit(_stitch, ex.map(_bucket, splits, [b] * n), opts, keep)
                for b in range(nbuckets)]
    return accs + stitched, total


def _first(split):
    return split[0]


def _bucket(split, b: int):
    return split[1][b]


async def _summary(ex, paths, opts, partition_bytes):
    parts = await _partitions(ex, paths, partition_bytes, None, _batch_packets(opts))
    accs, total = await _analyses(ex, parts, opts, keep=False, npartitions=None)
    while len(accs) > 1:        # a tree, in capture order, on the workers
        pairs = [ex.submit(_merge2, accs[i], accs[i + 1]) for i in range(0, len(accs) - 1, 2)]
        accs = pairs + accs[len(accs) - len(accs) % 2:]
    return await ex.gather(ex.submit(_finish, accs[0], total, paths))


def _finish(acc, verdict, paths):
    """The report, built where the merged analysis is (only it travels)."""
    acc.tracker.verdict = verdict
    return acc.finish(paths)


_KEYS_PER_BUCKET = 65536


def _nbuckets(nparts: int, npartitions: Optional[int], crossing_keys: int) -> int:
    """Buckets of fragments: as asked, else one per ``_KEYS_PER_BUCKET``
    crossing keys, at most half the partitions."""
    if npartitions:
        return max(1, int(npartitions))
    return max(1, min(nparts // 2, -(-crossing_keys // _KEYS_PER_BUCKET)))


def summary(paths_or_glob: Union[str, Sequence[str]], client=None,
            partition_bytes: Optional[int] = None, **opts):
    """The Report of the files read in order as one capture (as
    ``fastseg.analyze(list_of_files)``), computed on Dask (``client``: see
    the module docstring; an awaitable with an asynchronous client).
    Files over ``partition_bytes`` are read in byte ranges.  Options:
    ``checksums``, ``idle_timeout``, ``close_wait_threshold``,
    ``flood_window``, ``flood_min_syns``."""
    paths = _files(paths_or_glob)
    return _run(_executor(client), _summary, paths, opts, partition_bytes)


def _conn_frame(acc):
    conns = acc.finish([]).connections
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


async def _connections(ex, paths, opts, partition_bytes, npartitions, window):
    import dask.dataframe as dd
    parts = await _partitions(ex, paths, partition_bytes, window, _batch_packets(opts))
    if not parts:
        return dd.from_pandas(_connections_meta(), npartitions=1)
    accs, _ = await _analyses(ex, parts, opts, keep=True,
                              npartitions=npartitions, window=window)
    if isinstance(ex, _Workers):
        return dd.from_delayed(ex.map(_conn_frame, accs), meta=_connections_meta(),
                               verify_meta=False)
    import dask
    return dd.from_delayed([dask.delayed(_conn_frame)(a) for a in accs],
                           meta=_connections_meta(), verify_meta=False)


def connections(paths_or_glob, client=None, npartitions: Optional[int] = None,
                partition_bytes: Optional[int] = None, start=None, end=None, **opts):
    """A Dask DataFrame of every connection of the files read in order as one
    capture: one partition per file or byte range (its final connections)
    and ``npartitions`` (default: one per 65,536 crossing flow keys, at most
    half the partitions) of stitched connections that crossed a boundary.
    Rows equal ``fastseg.track`` over the files read as one capture (uids
    included); row order is not capture order.  ``start``/``end`` (seconds since the epoch or timestamps): the
    connections of the segments with ``start <= ts < end`` only, as if the
    capture held nothing else; partitions outside the window are not read.
    The boundary plan is computed eagerly (the scans stay on the workers);
    with an asynchronous client the result is an awaitable."""
    paths = _files(paths_or_glob)
    return _run(_executor(client), _connections, paths, opts, partition_bytes, npartitions,
                _window(start, end))


async def _plan_rows(ex, paths, opts, partition_bytes):
    parts = await _partitions(ex, paths, partition_bytes, None, _batch_packets(opts))
    scans, dirty, carried, _ = await _plan(ex, parts, opts, None)
    return parts, await ex.gather(ex.map(_plan_row, scans, dirty, carried))


def _plan_row(scan: _Scan, dirty, carried) -> dict:
    frag_ids = _fragment_ids(scan, dirty, carried)
    conn = np.concatenate([b["conn"] for b in scan.batches] or [[]]).astype(np.int64)
    frag = frag_ids[conn]
    moved = sum(sum(v[frag_ids[b["conn"]]].nbytes for v in _columns(b).values())
                for b in scan.batches)
    return {"segments": len(conn), "fragments": int(frag.sum()),
            "connections": int(len(np.unique(conn))),
            "crossing": int(len(np.unique(conn[frag]))), "bytes_moved": int(moved)}


def plan(paths_or_glob, client=None, partition_bytes: Optional[int] = None, **opts) -> dict:
    """Scan every partition and return, per partition, how many of its
    connections and segments cross a boundary and the bytes of fragments it
    would move (for sizing a cluster)."""
    paths = _files(paths_or_glob)
    parts, rows = _run(_executor(client), _plan_rows, paths, opts, partition_bytes)
    return {"paths": paths, "partitions": [dict(r, path=p.path, byte_range=p.byte_range)
                                           for p, r in zip(parts, rows)]}


# -- segments -----------------------------------------------------------------

def _read_pandas(part: Partition, columns=None, window=None):
    from .parse import read_segments
    seg = read_segments(part.path, keep_bytes=False, byte_range=part.byte_range)
    if window is not None:
        seg = _clip(seg, window)
    df = seg.to_pandas()
    for name in ("src", "dst"):
        df[name] = df[name].astype("string[pyarrow]")
    return df if columns is None else df[list(columns)]


def segments(paths_or_glob, columns: Optional[Sequence[str]] = None,
             partition_bytes: Optional[int] = None, start=None, end=None):
    """A Dask DataFrame of the segments of every file, one partition per file
    or byte range (addresses as text, absent options as <NA>, as
    ``Segments.to_pandas``).  ``columns`` selects columns in the reader;
    ``start``/``end`` keep the segments with ``start <= ts < end`` and skip
    the partitions outside (the frame is not indexed by time, so there are
    no divisions)."""
    import dask.dataframe as dd
    from .segments import Segments

    meta = Segments.empty().to_pandas()
    for name in ("src", "dst"):
        meta[name] = meta[name].astype("string[pyarrow]")
    if columns is not None:
        meta = meta[list(columns)]
    window = _window(start, end)
    parts = partitions(paths_or_glob, partition_bytes, start, end)
    if not parts:
        return dd.from_pandas(meta, npartitions=1)
    return dd.from_map(_read_pandas, parts, columns=columns, window=window, meta=meta,
                       enforce_metadata=False)
