"""The analysis report: handshakes, teardowns, SYN floods, TIME-WAIT,
CLOSE-WAIT, checksums and capture accounting, computed from columns only.

``analyze(path)`` streams the capture batch by batch through the parser and
the streaming tracker, keeping per-connection aggregates (a few numbers per
connection) rather than packets, so memory follows the number of connections,
not the size of the file.

JSON keys (``Report.to_dict()``) are a contract; see ``REPORT_KEYS``.
"""
from __future__ import annotations

import math
import os
import queue
import threading
import warnings
from typing import Dict, Iterator, List, Optional

import numpy as np

from . import _consts
from .aggregates import Chunks, LogHistogram
from .loss import ANALYSIS_FLAGS, LOSS_REPORT_KEYS, LossAggregate
from .floods import SynRecords
from .teardowns import Teardowns
from .segments import CaptureStats, Segments

__all__ = ["analyze", "Report", "connections_of", "default_threads", "read_ahead",
           "stream_connections",
           "REPORT_KEYS"]

REPORT_KEYS = {
    "capture": ["packets", "tcp", "non_tcp", "malformed", "malformed_by_reason",
                "non_tcp_by_reason", "tcp_options", "link_types_not_decoded", "start", "end",
                "duration"],
    "checksums": ["ok", "bad", "unverified", "ip_bad", "offload", "untrusted"],
    "connections": ["total", "by_state", "ipv4", "ipv6", "evicted"],
    "handshakes": ["completed", "refused", "unanswered", "syn_retransmits",
                   "syn_backoff", "rtt", "syn_synack", "synack_ack"],
    "teardowns": ["fin", "rst", "by_orig", "by_resp", "close_wait_leaks",
                  "close_wait_open_at_end", "half_open", "time_wait", "port_pressure",
                  "port_reuse"],
    "syn_flood": None,
    "tfo": ["syn_with_data", "cookie_requests"],
    "options": ["mss", "wscale", "sack", "timestamps", "ecn"],
    "loss": LOSS_REPORT_KEYS,
}



# -- small helpers --------------------------------------------------------
def _strs(col) -> np.ndarray:
    col = np.asarray(col)
    if col.dtype.kind in "US":
        return col.astype(str)
    return np.array(["" if v is None else str(v) for v in col.tolist()], dtype=object).astype(str)


def _floats(col) -> np.ndarray:
    col = np.asarray(col)
    if col.dtype.kind == "f":
        return col.astype(np.float64)
    if col.dtype.kind in "iu":
        return col.astype(np.float64)
    return np.array([np.nan if v is None else float(v) for v in col.tolist()])


def _secs(col) -> np.ndarray:
    """Timestamps in seconds whatever the column's unit (ns ints or float s)."""
    col = np.asarray(col)
    if col.dtype.kind in "iu":
        out = col.astype(np.float64) / 1e9
        out[col < 0] = np.nan
        return out
    return _floats(col)


def _round_floats(obj, digits: int):
    """A copy of a JSON-able structure with every float rounded."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: _round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_floats(v, digits) for v in obj]
    return obj


# -- the report -----------------------------------------------------------
class Report:
    """The analysis of one capture (or of several merged).  ``to_dict()`` is
    JSON-able with stable keys; ``render()`` is the text for people."""

    def __init__(self, data: dict, connections=None, series=None):
        self._data = data
        self.connections = connections
        self.series = series or {}

    def to_dict(self) -> dict:
        import copy
        return copy.deepcopy(self._data)

    def to_json(self, indent: Optional[int] = 2) -> str:
        """``to_dict()`` as JSON text, floats rounded to the microsecond (6
        decimals): captures time packets in microseconds or nanoseconds, and
        more digits are float noise."""
        import json
        return json.dumps(_round_floats(self._data, 6), indent=indent)

    def __getitem__(self, key):
        return self._data[key]

    def __repr__(self):
        c = self._data["capture"]
        return f"<Report: {c['packets']} packets, {self._data['connections']['total']} connections>"

    def render(self) -> str:
        from .render import render_report
        return render_report(self._data)


def _counts_into(acc: Dict, values: np.ndarray) -> None:
    vals, cnt = np.unique(values, return_counts=True)
    for v, c in zip(vals.tolist(), cnt.tolist()):
        acc[v] = acc.get(v, 0) + c


class _Analysis:
    """Accumulates what the report needs, one batch at a time.

    Segments are read once, by the tracker (plus the SYN rows, for floods and
    SYN backoff); every finished connection is folded into exact counters,
    per-key tables and histograms (``fastseg.aggregates``) the moment the
    tracker emits it.  What stays per connection is what the sections with a
    global view need exactly: its 4-tuple key (port reuse), its (client
    host, server, window) row and client port (port pressure), the holder
    and start of a TIME-WAIT (peaks), one record per SYN (floods, backoff):
    about 50 bytes, besides the connections alive at once."""

    def __init__(self, checksums="auto", idle_timeout=300.0, close_wait_threshold=60.0,
                 flood_window=1.0, flood_min_syns=50, flood_max_completed_ratio=0.5,
                 tracker=None, keep_connections=False, max_connections=None,
                 on_connections=None, aggregates=True):
        from .track import Tracker
        self.text_bytes = False
        # without aggregates only the connections (and the capture's
        # accounting) are produced: what ``fastseg conns`` needs
        self.aggregates = aggregates
        self.keep_connections = keep_connections
        self.checksums = checksums
        self.close_wait_threshold = close_wait_threshold
        self.tracker = tracker if tracker is not None else Tracker(
            idle_timeout=idle_timeout, checksums=checksums, max_connections=max_connections)
        self.stats = CaptureStats()
        self.csum = np.zeros(4, dtype=np.int64)
        self.ip_bad = 0
        self.t_first = math.inf
        self.t_last = -math.inf
        self.evicted_elsewhere = 0
        self.conn_parts: List = []
        self._pending: List[dict] = []
        self.on_connections = on_connections
        if on_connections is not None:
            self.keep_connections = True
        # exact counters over finished connections
        self.n = 0
        self.ipv4 = self.ipv6 = 0
        from .track import CONN_STATES
        self.state_counts = np.zeros(len(CONN_STATES), np.int64)
        self.count = dict.fromkeys(
            ("completed", "refused", "unanswered", "syn_retransmits", "syn_with_data", "sack",
             "timestamps", "ecn"), 0)
        self.mss: Dict[int, int] = {}
        self.wscale: Dict[int, int] = {}
        # a few numbers per finished connection
        self.times = {name: LogHistogram() for name in ("rtt", "syn_synack", "synack_ack")}
        self.teardowns = Teardowns(close_wait_threshold)
        # one record per SYN (floods, backoff)
        self.syns = SynRecords(flood_window, flood_min_syns, flood_max_completed_ratio)
        # the loss section, and retransmission times
        self.loss = LossAggregate()
        self.retrans = Chunks(ts=np.float64)

    # -- per batch ----------------------------------------------------------
    def add(self, seg: Segments) -> None:
        """Track one batch and fold it in."""
        self.fold(seg, self.track(seg))

    def track(self, seg: Segments):
        """The tracking half of ``add``: batches in capture order, on any one
        thread; its result goes to ``fold``, in the same order."""
        if len(seg) == 0:
            return None
        finished = self.tracker.update_columns(seg)
        return finished, (self.tracker.min_live_id() if self.keep_connections else None)

    def fold(self, seg: Segments, tracked) -> None:
        """The folding half of ``add``, given what ``track`` returned."""
        self.stats += seg.stats
        n = len(seg)
        if n == 0:
            return
        self.csum += np.bincount(seg["checksum_status"], minlength=4)[:4]
        self.ip_bad += int(np.count_nonzero(seg["ip_checksum_status"] == _consts.CSUM_BAD))
        ts_ns = seg["ts_ns"]
        self.t_first = min(self.t_first, float(ts_ns.min()) / 1e9)
        self.t_last = max(self.t_last, float(ts_ns.max()) / 1e9)
        self._fold(*tracked)
        if not self.aggregates:
            return
        if self.keep_connections and "analysis" in seg:
            retrans = (seg["analysis"] & ANALYSIS_FLAGS["retransmission"]) != 0
            if retrans.any():
                self.retrans.add(ts=ts_ns[retrans] / 1e9)
        self.syns.add(seg)

    def _fold(self, k: dict, limit=None) -> None:
        """Fold a batch of finished connections (kernel columns) into the
        report's aggregates; ``limit``: the tracker's smallest live id when
        they were emitted."""
        from .track import _conn_state, CONN_STATES
        n = len(k["_conn"])
        if n == 0:
            return
        if self.keep_connections:
            self._pending.append(dict(k, _min=int(k["_conn"].min())))
            self._release(self.tracker.min_live_id() if limit is None else limit)
        if not self.aggregates:
            return
        zs, nbytes, opts = k["zstate"], k["bytes"], k["opts"]
        history = k["history"]
        code = _conn_state(zs[:, 0], zs[:, 1], nbytes[:, 0], nbytes[:, 1], history, as_codes=True)
        self.state_counts += np.bincount(code, minlength=len(CONN_STATES))
        self.n += n
        ver = k["ip_version"]
        self.ipv4 += int(np.count_nonzero(ver == 4))
        self.ipv6 += int(np.count_nonzero(ver == 6))
        cnt = self.count
        ack_ns, syn_ns, synack_ns = k["ack_ts"], k["hs_last_syn"], k["synack_ts"]
        completed = ack_ns >= 0
        # a handshake that completed is not also refused (a REJ state can
        # come from a RST after an ACK the tracker did not take as a reply)
        refused = (code == CONN_STATES.index("REJ")) & ~completed
        syn_count, synack_count = k["syn_count"], k["synack_count"]
        cnt["completed"] += int(np.count_nonzero(completed))
        cnt["refused"] += int(np.count_nonzero(refused))
        cnt["unanswered"] += int(np.count_nonzero(
            (syn_count > 0) & (synack_count == 0) & ~refused & ~completed))
        cnt["syn_retransmits"] += int(np.maximum(syn_count - 1, 0).sum())
        cnt["syn_with_data"] += int(np.count_nonzero(k["tfo_data"] > 0))
        # handshake times, seconds (track._finish's definitions)
        rtt_ok = completed & (syn_ns >= 0)
        ss_ok = (synack_ns >= 0) & (syn_ns >= 0)
        sa_ok = completed & (k["hs_last_synack"] >= 0)
        self.times["rtt"].add((ack_ns[rtt_ok] - syn_ns[rtt_ok]) / 1e9)
        self.times["syn_synack"].add((synack_ns[ss_ok] - syn_ns[ss_ok]) / 1e9)
        self.times["synack_ack"].add((ack_ns[sa_ok] - k["hs_last_synack"][sa_ok]) / 1e9)
        # options
        both = (opts[:, 0] & 16 != 0) & (opts[:, 1] & 16 != 0)
        cnt["sack"] += int(np.count_nonzero(both & (opts[:, 0] & 1 != 0) & (opts[:, 1] & 1 != 0)))
        cnt["timestamps"] += int(np.count_nonzero(both & (opts[:, 0] & 2 != 0) & (opts[:, 1] & 2 != 0)))
        cnt["ecn"] += int(np.count_nonzero(both & (opts[:, 0] & 12 == 12) & (opts[:, 1] & 12 == 4)))
        mss, wscale = k["mss"][:, 0], k["wscale"][:, 0]
        _counts_into(self.mss, mss[mss >= 0])
        _counts_into(self.wscale, wscale[wscale >= 0])
        self.syns.finished(k["_conn"], completed, synack_count > 0)
        self.teardowns.add(k, completed, history, self.t_last)
        if "ttfb" in k:
            cols = dict(k, ip_version=ver, orig_pkts=k["pkts"][:, 0], resp_pkts=k["pkts"][:, 1],
                        orig_bytes=nbytes[:, 0], resp_bytes=nbytes[:, 1])
            self.loss.add(cols)

    def _release(self, limit) -> None:
        """Hand on, in first-seen order, the finished connections whose ids
        are below ``limit`` (no live connection has a smaller id, so none
        will come before them)."""
        from .track import _finish
        # Each waiting batch is looked at only when the limit passes its
        # smallest id (a long-lived connection can hold back everything
        # finished after it: those rows are not copied batch after batch).
        ready_parts, waiting = [], []
        for part in self._pending:
            ids = part["_conn"]
            if part["_min"] >= limit:
                waiting.append(part)
                continue
            now = ids < limit
            if now.all():
                ready_parts.append(part)
            else:
                ready_parts.append({name: col[now] for name, col in part.items() if name != "_min"})
                rest = {name: col[~now] for name, col in part.items() if name != "_min"}
                rest["_min"] = int(rest["_conn"].min())
                waiting.append(rest)
        self._pending = waiting
        if not ready_parts:
            return
        names = [name for name in ready_parts[0] if name != "_min"]
        raw = {name: np.concatenate([p[name] for p in ready_parts]) if len(ready_parts) > 1
               else ready_parts[0][name] for name in names}
        ids = raw["_conn"]
        if not np.all(ids[1:] > ids[:-1]):
            order = np.argsort(ids, kind="stable")
            raw = {name: col[order] for name, col in raw.items()}
        if len(ids):
            conns = _finish(raw, text_bytes=self.text_bytes)
            if self.on_connections is not None:
                self.on_connections(conns)
            else:
                self.conn_parts.append(conns)

    # -- scale-out ------------------------------------------------------------
    def merge(self, other: "_Analysis") -> "_Analysis":
        """Add the aggregates of ``other``, the analysis of a later part of the
        same capture, into this one: after both have been flushed, the merged
        report is the report of both parts read as one (connections that
        span the boundary count once per part; stitching them is the
        caller's job).  Connection ids of ``other`` are renumbered after this
        part's."""
        self._fold(self.tracker.flush_columns())
        other._fold(other.tracker.flush_columns())
        self._release(np.inf)
        other._release(np.inf)
        offset = int(self.tracker.next_id)
        self.stats += other.stats
        self.csum += other.csum
        self.ip_bad += other.ip_bad
        self.t_first = min(self.t_first, other.t_first)
        self.t_last = max(self.t_last, other.t_last)
        self.n += other.n
        self.ipv4 += other.ipv4
        self.ipv6 += other.ipv6
        self.evicted_elsewhere += other.evicted_elsewhere + int(getattr(other.tracker, "evicted", 0))
        self.state_counts += other.state_counts
        for name, value in other.count.items():
            self.count[name] += value
        for mine, theirs in ((self.mss, other.mss), (self.wscale, other.wscale)):
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value
        self.teardowns.merge(other.teardowns, offset)
        for name, hist in self.times.items():
            hist.merge(other.times[name])
        self.loss.merge(other.loss)
        self.retrans.extend(other.retrans)
        self.syns.merge(other.syns, offset)
        for part in other.conn_parts:
            part._cols["_conn"] = part._cols["_conn"] + offset
        self.conn_parts += other.conn_parts
        self.tracker.next_id = offset + int(other.tracker.next_id)
        self.tracker.verdict.merge(other.tracker.verdict)
        return self

    # -- the end --------------------------------------------------------------
    def finish(self, files: List[str]) -> Report:
        self._fold(self.tracker.flush_columns())
        self._release(np.inf)
        conns = None
        if self.keep_connections and self.on_connections is None:
            from .track import Connections
            conns = (Connections.concat(self.conn_parts) if self.conn_parts
                     else Connections.empty())
            self.conn_parts = []
        # the time series (for plots) come with the connections
        series = ({"syn_ts": self.syns.times(), "retrans_ts": self.retrans.get("ts")}
                  if self.keep_connections else {})
        return Report(self._build(files), conns, series)

    def _build(self, files) -> dict:
        report = self._accounting(files)
        report.update(self._connections(report["capture"]["end"]))
        report["loss"] = self.loss.report()
        return report

    def _accounting(self, files) -> dict:
        """The report's files, capture and checksums sections."""
        st = self.stats.to_dict()
        start = None if not math.isfinite(self.t_first) else self.t_first
        end = None if not math.isfinite(self.t_last) else self.t_last
        st.update(start=start, end=end,
                  duration=(end - start) if start is not None else 0.0)
        report = {
            "files": list(files),
            "capture": st,
            "checksums": {
                "ok": int(self.csum[_consts.CSUM_OK]),
                "bad": int(self.csum[_consts.CSUM_BAD]),
                "unverified": int(self.csum[_consts.CSUM_UNVERIFIED]),
                "ip_bad": int(self.ip_bad),
                **self.tracker.verdict.to_dict(),
            },
        }
        if report["checksums"]["untrusted"]:
            warnings.warn(
                "TCP checksums are wrong almost everywhere and not in the offload pattern "
                "(a rewritten or anonymised trace?): ignoring them", stacklevel=4)
        return report

    def _connections(self, capture_end) -> dict:
        cnt = self.count
        from .track import CONN_STATES
        by_state = dict(sorted(((name, int(c)) for name, c in zip(CONN_STATES, self.state_counts)
                                if c), key=lambda x: (-x[1], x[0])))
        ver_known = self.n > 0
        out = {
            "connections": {
                "total": int(self.n), "by_state": {str(s): int(c) for s, c in by_state.items()},
                "evicted": (int(getattr(self.tracker, "evicted", 0)) + self.evicted_elsewhere
                            if self.n else 0),
                "ipv4": self.ipv4 if ver_known else 0,
                "ipv6": self.ipv6 if ver_known else 0,
            },
            "handshakes": {
                "completed": cnt["completed"], "refused": cnt["refused"],
                "unanswered": cnt["unanswered"], "syn_retransmits": cnt["syn_retransmits"],
                "syn_backoff": self.syns.backoff() if self.n else {},
                "rtt": self.times["rtt"].summary(),
                "syn_synack": self.times["syn_synack"].summary(),
                "synack_ack": self.times["synack_ack"].summary(),
            },
            "teardowns": self.teardowns.report(capture_end),
            "syn_flood": self.syns.floods() if self.n else [],
            "tfo": {"syn_with_data": cnt["syn_with_data"],
                    "cookie_requests": int(self.syns.cookie_requests)},
            "options": self._options(),
        }
        return out

    def _options(self) -> dict:
        def top(counts, limit=8):
            items = sorted(counts.items())          # np.unique order, then by count
            order = np.argsort(-np.array([c for _, c in items], dtype=np.int64))[:limit]
            return {str(int(items[i][0])): int(items[i][1]) for i in order}
        cnt = self.count
        return {"mss": top(self.mss), "wscale": top(self.wscale), "sack": cnt["sack"],
                "timestamps": cnt["timestamps"], "ecn": cnt["ecn"]}


def read_ahead(batches: Iterator, depth: int = 2) -> Iterator:
    """The items of ``batches``, produced on a second thread up to ``depth``
    ahead: reading and parsing batch k+1 (GIL-free kernels) overlaps the
    tracking of batch k.  Order and content are those of ``batches``; an
    exception the producer meets is raised here after the items before it."""
    items: "queue.Queue" = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        items.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put((done, None))
        except BaseException as exc:     # handed to the consumer
            items.put((done, exc))

    worker = threading.Thread(target=produce, name="fastseg-read", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = items.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        worker.join()


def default_threads() -> int:
    """Threads used when none are asked for: the machine's cores."""
    return max(1, os.cpu_count() or 1)


def analyze(path_or_segments, *, checksums: str = "auto",
            idle_timeout: float = 300.0, close_wait_threshold: float = 60.0,
            flood_window: float = 1.0, flood_min_syns: int = 50,
            progress: bool = False, keep_connections: bool = False,
            max_connections: int = None, threads: Optional[int] = None,
            on_connections=None, **reader_kwargs) -> Report:
    """Analyse a capture file (streamed batch by batch), a list of files read
    as one capture in order (e.g. rotated ``tcpdump -C`` output), or a
    Segments table.

    ``checksums``: ``auto`` (default) ignores the checksums of senders
    diagnosed as offloading, ``verify`` drops every bad-checksum segment from
    the state machine, ``ignore`` trusts them all.  ``close_wait_threshold``:
    seconds an endpoint may sit in CLOSE-WAIT before it counts as a leak.
    ``keep_connections=True`` keeps every connection's full row in
    ``Report.connections`` (a Connections table); by default the report keeps
    only what its sections need (about 50 bytes per connection).
    ``max_connections`` bounds the connections the tracker holds at once
    (the least recently active are finished early, counted in
    ``connections.evicted``).
    SYN floods are looked for per server address:port in windows of
    ``flood_window`` seconds holding at least ``flood_min_syns`` SYNs.
    ``on_connections``: a callable that receives the connections as
    Connections tables in first-seen order, batch by batch, as soon as no
    earlier connection is still alive (memory then stays bounded by the
    connections alive at once); ``Report.connections`` is then None.
    ``threads`` (default: the machine's cores): with two or more, reading and
    parsing run on their own thread ahead of tracking; the report is the same
    whatever the number.
    """
    threads = default_threads() if threads is None else int(threads)
    if threads < 1:
        raise ValueError("threads must be at least 1")
    acc = _Analysis(checksums=checksums, idle_timeout=idle_timeout,
                    close_wait_threshold=close_wait_threshold, flood_window=flood_window,
                    flood_min_syns=flood_min_syns, keep_connections=keep_connections,
                    max_connections=max_connections, on_connections=on_connections)
    return acc.finish(_feed(acc, path_or_segments, threads, progress, reader_kwargs))


def _feed(acc: "_Analysis", path_or_segments, threads: int, progress: bool,
          reader_kwargs: dict) -> List[str]:
    """Read the capture (or Segments table) into ``acc``; the paths read."""
    if isinstance(path_or_segments, Segments):
        acc.add(path_or_segments)
        return []
    from .parse import open as open_capture
    # Small batches: the report keeps no segments, so a batch only has to be
    # large enough to amortise the per-batch calls.
    reader_kwargs.setdefault("batch_packets", 65536)
    paths = ([str(p) for p in path_or_segments]
             if isinstance(path_or_segments, (list, tuple)) else [str(path_or_segments)])
    from .progress import Progress
    for path in paths:
        with open_capture(path, **reader_kwargs) as cap:
            bar = Progress(progress, getattr(cap.reader, "size", None), path)
            batches = cap.batches()
            if threads > 1:
                # three stages: read + parse, track, fold (each in batch order)
                parsed = read_ahead(batches, depth=1)
                tracked = read_ahead(((seg, acc.track(seg)) for seg in parsed), depth=1)
            else:
                tracked = ((seg, acc.track(seg)) for seg in batches)
            for seg, done in tracked:
                acc.fold(seg, done)
                bar.update(getattr(cap.reader, "raw_bytes_read", 0))
            bar.close()
    return paths


def stream_connections(path_or_segments, on_connections, *, checksums: str = "auto",
                       idle_timeout: float = 300.0, max_connections: int = None,
                       threads: Optional[int] = None, progress: bool = False,
                       text_bytes: bool = False, **reader_kwargs) -> dict:
    """Track a capture and hand its connections to ``on_connections`` as
    :func:`analyze` does, computing none of the report's aggregates; returns
    the report's ``files``, ``capture`` and ``checksums`` sections.
    ``text_bytes``: the tables also carry their text columns as bytes, which
    the text writers (``Connections.to_zeek``, jsonl, csv) take as they are."""
    threads = default_threads() if threads is None else int(threads)
    if threads < 1:
        raise ValueError("threads must be at least 1")
    acc = _Analysis(checksums=checksums, idle_timeout=idle_timeout,
                    max_connections=max_connections, on_connections=on_connections,
                    aggregates=False)
    acc.text_bytes = text_bytes
    files = _feed(acc, path_or_segments, threads, progress, reader_kwargs)
    acc._fold(acc.tracker.flush_columns())
    acc._release(np.inf)
    return acc._accounting(files)


def connections_of(path: str, *, checksums: str = "auto", idle_timeout: float = 300.0,
                   max_connections: int = None, threads: Optional[int] = None):
    """Every connection of a capture (streamed), as one Connections table."""
    return analyze(path, checksums=checksums, idle_timeout=idle_timeout,
                   keep_connections=True, max_connections=max_connections,
                   threads=threads).connections
