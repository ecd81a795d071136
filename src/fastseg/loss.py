"""Loss, retransmissions and stalls: Wireshark's tcp.analysis per segment,
tcptrace-style counters per connection, and the report's ``loss`` section.

``analyze_segments(segments, connections)`` runs the analysis over segments
that were tracked (``segments["conn"]`` set by ``fastseg.track``) and adds
the per-segment columns ``analysis`` (bits of ``ANALYSIS_FLAGS``),
``ack_rtt`` (seconds, NaN = none), ``bytes_in_flight`` (-1 = none) and
``dup_ack_num`` (0 = not a duplicate ACK).  It returns the per-connection
columns (``LOSS_COLUMNS``), row i for connection i.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from . import _consts, _loss
from .aggregates import KeyTable, LogHistogram, ValueCounts, endpoint_key
from ._consts import ANALYSIS_FLAGS

__all__ = ["ANALYSIS_FLAGS", "SEGMENT_LOSS_COLUMNS", "LOSS_COLUMNS", "LOSS_NULLS",
           "analyze_segments", "LossAnalyzer", "with_loss_columns", "endpoint_keys", "flag_names",
           "distinct_flag_names", "flag_names_arrow", "loss_columns", "loss_report", "LossAggregate",
           "LOSS_REPORT_KEYS"]

SEGMENT_LOSS_COLUMNS = ("analysis", "ack_rtt", "bytes_in_flight", "dup_ack_num")

# Per side, in the order of _loss.pxd's LC_* counters and LS_* seconds.
_COUNTS = ("retrans_pkts", "retrans_bytes", "fast_retrans", "spurious_retrans",
           "out_of_order", "lost_segments", "dup_acks", "zero_windows", "keepalives",
           "rtt_samples", "max_in_flight", "first_flight_bytes", "first_flight_segs")
_SECONDS = ("zero_window_time", "rtt_min", "rtt_avg", "rtt_max")

# Connection columns: orig_* then resp_* for every per-side name, then ttfb.
LOSS_COLUMNS: List[str] = ([f"orig_{n}" for n in _COUNTS + _SECONDS]
                           + [f"resp_{n}" for n in _COUNTS + _SECONDS] + ["ttfb"])
LOSS_NULLS = {f"{side}_{n}": "nan" for side in ("orig", "resp")
              for n in ("rtt_min", "rtt_avg", "rtt_max")}
LOSS_NULLS["ttfb"] = "nan"


def _sack_bytes(segments) -> np.ndarray:
    n = len(segments)
    out = np.full(n, -1, dtype=np.int64)
    if segments.data is None or "_l4_off" not in segments or "sack_blocks" not in segments:
        return out
    rows = np.flatnonzero(segments["sack_blocks"])
    if len(rows):
        sub = np.empty(len(rows), dtype=np.int64)
        c = lambda name, dt: np.ascontiguousarray(segments[name][rows], dtype=dt)  # noqa: E731
        _loss.sack_block_bytes(np.frombuffer(segments.data, dtype=np.uint8),
                               c("_l3_off", np.int64), c("_l3_caplen", np.uint32),
                               c("_l4_off", np.int64), c("hdr_len", np.uint8), sub)
        out[rows] = sub
    return out


def endpoint_keys(addrs: np.ndarray, ports: np.ndarray) -> np.ndarray:
    """A 64-bit key per (address row, port): tells a connection's two
    endpoints apart."""
    rows = np.ascontiguousarray(addrs, dtype=np.uint8).view(np.uint64).reshape(-1, 2)
    k = rows[:, 0] * np.uint64(0x9E3779B97F4A7C15)
    k ^= (rows[:, 1] + np.uint64(0x632BE59BD9B4E019)) * np.uint64(0xBF58476D1CE4E5B9)
    k ^= np.asarray(ports, dtype=np.uint64) * np.uint64(0x94D049BB133111EB)
    return k ^ (k >> np.uint64(31))


class LossAnalyzer:
    """The loss analysis over segments tracked elsewhere (``fastseg.Tracker``
    runs the same analysis in its own pass): ``process`` each tracked
    batch (adds the per-segment columns), ``finish`` each Connections table
    the tracker emits (adds ``LOSS_COLUMNS``).  Memory: one state (about
    700 bytes, plus 24 per unacknowledged segment) per connection in
    progress."""

    def __init__(self):
        self._engine = _loss.Engine()

    @property
    def live(self) -> int:
        return self._engine.live

    def memory_bytes(self) -> int:
        return self._engine.memory_bytes()

    def process(self, segments) -> None:
        """Analyse one tracked batch (``segments["conn"]`` set), in capture order."""
        n = len(segments)
        analysis = np.empty(n, dtype=np.uint32)
        ack_rtt = np.empty(n, dtype=np.float64)
        bif = np.empty(n, dtype=np.int64)
        dup = np.empty(n, dtype=np.uint32)
        if n:
            c = lambda name, dt: np.ascontiguousarray(segments[name], dtype=dt)  # noqa: E731
            conn = c("conn", np.int64)
            if "opt_status" in segments:
                # tshark's dissector stops at options cut by the snapshot
                # length, before its sequence analysis: such a segment
                # neither gets nor changes any analysis
                cut = segments["opt_status"] == _consts.OPTS_CUT
                if cut.any():
                    conn = np.where(cut, -1, conn)
            status = self._engine.process(
                conn, endpoint_keys(segments["src"], segments["sport"]),
                c("ts_ns", np.int64), c("seq", np.uint32), c("ack", np.uint32),
                c("flags", np.uint16), c("payload_len", np.uint32), c("window", np.uint16),
                c("wscale", np.int16), _sack_bytes(segments), analysis, ack_rtt, bif, dup)
            if status != 0:
                raise MemoryError("loss analysis: out of memory")
        segments["analysis"] = analysis
        segments["ack_rtt"] = ack_rtt
        segments["bytes_in_flight"] = bif
        segments["dup_ack_num"] = dup

    def finish(self, connections) -> Dict[str, np.ndarray]:
        """The loss columns of finished ``connections`` (a table or the
        tracker's kernel columns: ``_conn``, ``orig_h``, ``orig_p``; rows in
        their order); frees their states."""
        n = len(connections["_conn"])
        counts = np.zeros((n, 2, len(_COUNTS)), dtype=np.uint64)
        seconds = np.full((n, 2, len(_SECONDS)), np.nan)
        ttfb = np.full(n, np.nan)
        if n:
            self._engine.finish(np.ascontiguousarray(connections["_conn"], dtype=np.int64),
                                endpoint_keys(connections["orig_h"], connections["orig_p"]),
                                counts, seconds, ttfb)
        # one transposing copy each, then every column is a contiguous row
        return loss_columns(np.ascontiguousarray(counts.transpose(1, 2, 0), dtype=np.int64),
                            np.ascontiguousarray(seconds.transpose(1, 2, 0)), ttfb)


def loss_columns(counts: np.ndarray, seconds: np.ndarray, ttfb: np.ndarray) -> Dict[str, np.ndarray]:
    """``LOSS_COLUMNS`` by name from the kernel's per-side arrays: counters
    (2, 13, n) and seconds (2, 4, n), the originator first, in the order of
    _loss.pxd's LC_* and LS_*; ``ttfb`` (n,)."""
    out: Dict[str, np.ndarray] = {}
    for s, side in enumerate(("orig", "resp")):
        for k, name in enumerate(_COUNTS):
            out[f"{side}_{name}"] = counts[s, k]
        for k, name in enumerate(_SECONDS):
            out[f"{side}_{name}"] = seconds[s, k]
    out["ttfb"] = ttfb
    return {name: out[name] for name in LOSS_COLUMNS}


def with_loss_columns(connections, columns: Dict[str, np.ndarray]):
    """``connections`` with the loss ``columns`` after its public columns."""
    from .connections import Connections
    cols = {k: connections[k] for k in connections.keys()}
    hidden = {k: v for k, v in connections._cols.items() if k not in cols}
    return Connections({**cols, **columns, **hidden})


def analyze_segments(segments, connections) -> Dict[str, np.ndarray]:
    """Add the tcp.analysis columns to tracked ``segments`` (capture order,
    ``segments["conn"]`` from ``fastseg.track``) and return the
    per-connection loss columns (``LOSS_COLUMNS``) of ``connections``."""
    engine = LossAnalyzer()
    engine.process(segments)
    return engine.finish(connections)


def distinct_flag_names(analysis) -> Tuple[List[List[str]], np.ndarray]:
    """The distinct values of an ``analysis`` column as lists of the
    tcp.analysis names they set (in ``ANALYSIS_FLAGS`` order), and each
    row's index into them."""
    uniq, inv = np.unique(np.asarray(analysis, dtype=np.int64).reshape(-1), return_inverse=True)
    names = [[name for name, bit in ANALYSIS_FLAGS.items() if v & bit] for v in uniq.tolist()]
    return names, inv.reshape(-1)


def flag_names_arrow(analysis):
    """The tcp.analysis names set in each value of an ``analysis`` column as
    a pyarrow list<string> array, built from the set bits without a loop
    over rows."""
    import pyarrow as pa
    a = np.asarray(analysis, dtype=np.int64).reshape(-1)
    bits = np.array(list(ANALYSIS_FLAGS.values()), dtype=np.int64)
    labels = np.array(list(ANALYSIS_FLAGS), dtype=object)
    counts = np.zeros(len(a), dtype=np.int32)
    rows = np.flatnonzero(a)
    hit = (a[rows, None] & bits[None, :]) != 0          # (flagged rows, flags)
    counts[rows] = hit.sum(axis=1)
    offsets = np.zeros(len(a) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    values = pa.array(labels[np.nonzero(hit)[1]], type=pa.string())
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def flag_names(analysis) -> List[List[str]]:
    """The tcp.analysis names set in each value of an ``analysis`` column
    (a new list per row)."""
    names, inv = distinct_flag_names(analysis)
    table = np.empty(len(names), dtype=object)
    for k, v in enumerate(names):
        table[k] = v
    return list(map(list.copy, table[inv]))


# -- the report's loss section ------------------------------------------------

LOSS_REPORT_KEYS = ["connections_with_retransmissions", "packets", "retrans_pkts",
                    "retrans_bytes", "retrans_rate", "fast_retrans", "spurious_retrans",
                    "out_of_order", "dup_acks", "lost_segments", "per_server",
                    "zero_window", "keepalive_only", "rtt", "first_flight"]


class LossAggregate:
    """The report's ``loss`` section, folded from finished connections batch
    by batch (``add``) and mergeable (``merge``): exact counters, per
    server address:port sums, RTT quantiles from log histograms (within
    ``LogHistogram.RELATIVE_ERROR``, overall and per server) and exact
    first-flight quantiles from value counts.  Memory follows the servers
    and distinct values seen, not the connections."""

    _SUMS = ("retrans_pkts", "retrans_bytes", "fast_retrans", "spurious_retrans",
             "out_of_order", "dup_acks", "lost_segments")
    _BUCKET_BITS = 16           # server index << 16 | RTT bucket

    def __init__(self):
        self.count = dict.fromkeys(("connections_with_retransmissions", "packets") + self._SUMS
                                   + ("zw_connections", "zw_by_orig", "zw_by_resp",
                                      "zw_segments", "keepalive_only"), 0)
        self.zw_time = 0.0
        self.zw_max = 0.0
        self.servers = KeyTable(addr=(np.uint8, (16,)), port=(np.uint16, ()),
                                ver=(np.uint8, ()))
        # per server: connections, packets, retransmitted packets, RTT min/max
        self.s_sums = np.zeros((0, 3), np.int64)
        self.s_range = np.zeros((0, 2), np.float64)
        self.rtt = LogHistogram()
        self.server_rtt = ValueCounts()
        self.first_flight = {side: {"bytes": ValueCounts(), "segments": ValueCounts()}
                             for side in ("orig", "resp")}
        assert LogHistogram.BUCKETS < 1 << self._BUCKET_BITS

    def _grow(self) -> None:
        extra = len(self.servers) - len(self.s_sums)
        if extra > 0:
            self.s_sums = np.concatenate([self.s_sums, np.zeros((extra, 3), np.int64)])
            self.s_range = np.concatenate(
                [self.s_range, np.tile([[np.inf, -np.inf]], (extra, 1))])

    def add(self, conns) -> None:
        """Fold connection columns: ``LOSS_COLUMNS`` plus resp_h, resp_p,
        ip_version, orig_pkts, resp_pkts, orig_bytes, resp_bytes."""
        n = len(conns["resp_p"])
        if n == 0:
            return
        def col(name, dt=np.int64):
            return np.asarray(conns[name]).astype(dt, copy=False)
        def both(name, dt=np.int64):
            return col("orig_" + name, dt) + col("resp_" + name, dt)
        cnt = self.count
        retrans = both("retrans_pkts")
        pkts = both("pkts")
        cnt["connections_with_retransmissions"] += int(np.count_nonzero(retrans))
        cnt["packets"] += int(pkts.sum())
        for name in self._SUMS:
            cnt[name] += int(both(name).sum())
        zw_o, zw_r = col("orig_zero_windows"), col("resp_zero_windows")
        stalled = (zw_o + zw_r) > 0
        cnt["zw_connections"] += int(np.count_nonzero(stalled))
        cnt["zw_by_orig"] += int(np.count_nonzero(zw_o))
        cnt["zw_by_resp"] += int(np.count_nonzero(zw_r))
        cnt["zw_segments"] += int((zw_o + zw_r).sum())
        if stalled.any():
            zt = (col("orig_zero_window_time", np.float64)
                  + col("resp_zero_window_time", np.float64))[stalled]
            self.zw_time += float(np.nansum(zt))
            self.zw_max = max(self.zw_max, float(np.nanmax(zt)))
        cnt["keepalive_only"] += int(np.count_nonzero((both("keepalives") > 0)
                                                      & (both("bytes") == 0)))
        # Path RTT per connection from where the capture was taken: the two
        # sides' fastest data ACKs added up (at either end one of them is the
        # local stack's own delay; in the middle each is half the path).
        o_min, r_min = col("orig_rtt_min", np.float64), col("resp_rtt_min", np.float64)
        rtt = np.where(np.isnan(o_min) & np.isnan(r_min), np.nan,
                       np.nan_to_num(o_min) + np.nan_to_num(r_min))
        self.rtt.add(rtt)
        addr = np.ascontiguousarray(conns["resp_h"], dtype=np.uint8).reshape(n, 16)
        port = col("resp_p", np.uint16)
        ver = (col("ip_version", np.uint8) if "ip_version" in conns
               else np.full(n, 6, np.uint8))
        key = endpoint_key(addr, port, ver)
        idx = self.servers.index(key, addr=addr, port=port, ver=ver)
        self._grow()
        m = len(self.servers)
        self.s_sums[:, 0] += np.bincount(idx, minlength=m)
        self.s_sums[:, 1] += np.bincount(idx, weights=pkts, minlength=m).astype(np.int64)
        self.s_sums[:, 2] += np.bincount(idx, weights=retrans, minlength=m).astype(np.int64)
        ok = np.isfinite(rtt)
        if ok.any():
            i, v = idx[ok], rtt[ok]
            np.minimum.at(self.s_range[:, 0], i, v)
            np.maximum.at(self.s_range[:, 1], i, v)
            self.server_rtt.add((i << self._BUCKET_BITS) | LogHistogram.buckets(v))
        for side in ("orig", "resp"):
            b = col(f"{side}_first_flight_bytes")
            sent = b > 0
            self.first_flight[side]["bytes"].add(b[sent])
            self.first_flight[side]["segments"].add(col(f"{side}_first_flight_segs")[sent])

    def merge(self, other: "LossAggregate") -> None:
        """Add ``other`` (another part of the capture) into this one."""
        for name, value in other.count.items():
            self.count[name] += value
        self.zw_time += other.zw_time
        self.zw_max = max(self.zw_max, other.zw_max)
        self.rtt.merge(other.rtt)
        theirs = other.servers
        idx = self.servers.index(theirs.keys, **theirs.cols)
        self._grow()
        self.s_sums[idx] += other.s_sums
        self.s_range[idx, 0] = np.minimum(self.s_range[idx, 0], other.s_range[:, 0])
        self.s_range[idx, 1] = np.maximum(self.s_range[idx, 1], other.s_range[:, 1])
        values, counts = other.server_rtt.items()
        low = values & ((1 << self._BUCKET_BITS) - 1)
        self.server_rtt.add((idx[values >> self._BUCKET_BITS] << self._BUCKET_BITS) | low,
                            counts)
        for side, parts in other.first_flight.items():
            for name, vc in parts.items():
                self.first_flight[side][name].merge(vc)

    def report(self, top: int = 10) -> dict:
        """The section (keys ``LOSS_REPORT_KEYS``); lists are the worst
        ``top`` servers first, ties in address text order."""
        from .segments import format_addresses
        cnt = self.count
        retrans, pkts = cnt["retrans_pkts"], cnt["packets"]
        out = {"connections_with_retransmissions": cnt["connections_with_retransmissions"],
               "packets": pkts, "retrans_pkts": retrans,
               "retrans_bytes": cnt["retrans_bytes"],
               "retrans_rate": float(retrans / pkts) if pkts else 0.0}
        for name in ("fast_retrans", "spurious_retrans", "out_of_order", "dup_acks",
                     "lost_segments"):
            out[name] = cnt[name]
        per_server, rtt_servers = [], []
        if len(self.servers):
            sv = self.servers
            hosts = format_addresses(sv.cols["addr"], sv.cols["ver"])
            labels = np.array([f"{h}|{int(p)}" for h, p in zip(hosts, sv.cols["port"])])
            order = np.argsort(labels, kind="stable")
            s_conns, s_pkts, s_re = (self.s_sums[order, j] for j in range(3))
            rate = np.divide(s_re, s_pkts, out=np.zeros(len(order)), where=s_pkts > 0)
            for i in np.lexsort((-s_re, -rate))[:top]:
                if s_re[i] == 0:
                    break
                per_server.append({"server": str(hosts[order[i]]),
                                   "port": int(sv.cols["port"][order[i]]),
                                   "connections": int(s_conns[i]), "packets": int(s_pkts[i]),
                                   "retrans_pkts": int(s_re[i]),
                                   "retrans_rate": float(rate[i])})
            values, counts = self.server_rtt.items()
            owner = values >> self._BUCKET_BITS
            for i in np.argsort(-s_conns, kind="stable")[:top]:
                s = order[i]
                mine = owner == s
                if not mine.any():
                    continue
                lo, hi = self.s_range[s]
                r = LogHistogram.sparse_summary(values[mine] & ((1 << self._BUCKET_BITS) - 1),
                                                counts[mine], lo, hi)
                rtt_servers.append({"server": str(hosts[s]), "port": int(sv.cols["port"][s]),
                                    **_samples(r)})
        out["per_server"] = per_server
        out["zero_window"] = {
            "connections": cnt["zw_connections"], "by_orig": cnt["zw_by_orig"],
            "by_resp": cnt["zw_by_resp"], "segments": cnt["zw_segments"],
            "time": self.zw_time, "max_time": self.zw_max,
        }
        out["keepalive_only"] = cnt["keepalive_only"]
        out["rtt"] = {**_samples(self.rtt.summary()), "per_server": rtt_servers}
        out["first_flight"] = {side: {name: vc.summary() for name, vc in parts.items()}
                               for side, parts in self.first_flight.items()}
        return out


def _samples(summary: dict) -> dict:
    """A LogHistogram summary with ``count`` named ``samples``."""
    return {"samples": summary["count"], **{k: v for k, v in summary.items() if k != "count"}}


def loss_report(conns, top: int = 10) -> dict:
    """The report's ``loss`` section from the connection columns
    (``LOSS_COLUMNS`` plus resp_h/resp_p/ip_version/orig_pkts/resp_pkts/
    orig_bytes/resp_bytes).  Keys are ``LOSS_REPORT_KEYS``; lists are the
    worst ``top`` servers first.  Rates are retransmitted segments per
    packet; ``rtt`` is the path RTT of each connection (the sum of both
    sides' fastest data ACK), overall and for the busiest servers, as
    quantiles within ``LogHistogram.RELATIVE_ERROR``; ``keepalive_only``
    counts connections that carried keep-alives and no payload (half-open
    suspects)."""
    agg = LossAggregate()
    if conns is not None and len(conns):
        agg.add(conns)
    return agg.report(top)
