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
from ._consts import ANALYSIS_FLAGS

__all__ = ["ANALYSIS_FLAGS", "SEGMENT_LOSS_COLUMNS", "LOSS_COLUMNS", "LOSS_NULLS",
           "analyze_segments", "LossAnalyzer", "with_loss_columns", "endpoint_keys", "flag_names",
           "distinct_flag_names", "flag_names_arrow", "loss_columns", "loss_report",
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


def _pcts(values: np.ndarray) -> dict:
    v = values[np.isfinite(values)]
    if len(v) == 0:
        return {"samples": 0, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {"samples": int(len(v)), "p50": float(p50), "p90": float(p90),
            "p99": float(p99), "max": float(v.max())}


def _servers(conns, n):
    """Distinct servers (``"address|port"``, in text order) and each row's
    index into them.  Rows are told apart by their bytes; only the distinct
    servers are formatted."""
    from .segments import format_addresses
    ver = (np.asarray(conns["ip_version"]).astype(np.uint8) if "ip_version" in conns
           else np.full(n, 6, np.uint8))
    addr = np.ascontiguousarray(conns["resp_h"], dtype=np.uint8).reshape(n, 16)
    port = np.asarray(conns["resp_p"]).astype(np.uint16)
    rows = np.empty((n, 19), np.uint8)
    rows[:, :16] = addr
    rows[:, 16:18] = port.astype(">u2").view(np.uint8).reshape(n, 2)
    rows[:, 18] = ver
    _, first, inv = np.unique(rows.view(np.dtype((np.void, 19))).reshape(-1),
                              return_index=True, return_inverse=True)
    hosts = format_addresses(addr[first], ver[first])
    labels = np.array([f"{h}|{int(p)}" for h, p in zip(hosts, port[first])])
    order = np.argsort(labels, kind="stable")
    rank = np.empty(len(order), np.intp)
    rank[order] = np.arange(len(order))
    return labels[order], rank[inv.reshape(-1)]


def loss_report(conns, top: int = 10) -> dict:
    """The report's ``loss`` section from the connection columns
    (``LOSS_COLUMNS`` plus resp_h/resp_p/orig_pkts/resp_pkts/orig_bytes/
    resp_bytes).  Keys are ``LOSS_REPORT_KEYS``; lists are the worst
    ``top`` servers first.  Rates are retransmitted segments per packet;
    ``rtt`` is the path RTT of each connection (the sum of both sides'
    fastest data ACK), overall and for the busiest servers;
    ``keepalive_only`` counts connections that carried keep-alives and
    no payload (half-open suspects)."""
    n = 0 if conns is None else len(conns)
    def col(name, dt=np.int64):
        if n and name in conns:
            return np.asarray(conns[name]).astype(dt)
        return np.zeros(n, dt) if dt is not np.float64 else np.full(n, np.nan)
    def both(name, dt=np.int64):
        return col("orig_" + name, dt) + col("resp_" + name, dt)
    retrans = both("retrans_pkts")
    pkts = both("pkts")
    out = {
        "connections_with_retransmissions": int(np.count_nonzero(retrans)),
        "packets": int(pkts.sum()),
        "retrans_pkts": int(retrans.sum()),
        "retrans_bytes": int(both("retrans_bytes").sum()),
        "retrans_rate": float(retrans.sum() / pkts.sum()) if pkts.sum() else 0.0,
        "fast_retrans": int(both("fast_retrans").sum()),
        "spurious_retrans": int(both("spurious_retrans").sum()),
        "out_of_order": int(both("out_of_order").sum()),
        "dup_acks": int(both("dup_acks").sum()),
        "lost_segments": int(both("lost_segments").sum()),
    }
    per_server, rtt_servers = [], []
    # Path RTT per connection from where the capture was taken: the two
    # sides' fastest data ACKs added up (at either end one of them is the
    # local stack's own delay; in the middle each is half the path).
    o_min, r_min = col("orig_rtt_min", np.float64), col("resp_rtt_min", np.float64)
    rtt = np.where(np.isnan(o_min) & np.isnan(r_min), np.nan,
                   np.nan_to_num(o_min) + np.nan_to_num(r_min))
    if n:
        uk, inv = _servers(conns, n)
        s_pkts = np.bincount(inv, weights=pkts, minlength=len(uk))
        s_re = np.bincount(inv, weights=retrans, minlength=len(uk))
        s_conns = np.bincount(inv, minlength=len(uk))
        rate = np.divide(s_re, s_pkts, out=np.zeros(len(uk)), where=s_pkts > 0)
        for i in np.lexsort((-s_re, -rate))[:top]:
            if s_re[i] == 0:
                break
            host, port = str(uk[i]).rsplit("|", 1)
            per_server.append({"server": host, "port": int(port), "connections": int(s_conns[i]),
                               "packets": int(s_pkts[i]), "retrans_pkts": int(s_re[i]),
                               "retrans_rate": float(rate[i])})
        for i in np.argsort(-s_conns, kind="stable")[:top]:
            r = _pcts(rtt[inv == i])
            if r["samples"]:
                host, port = str(uk[i]).rsplit("|", 1)
                rtt_servers.append({"server": host, "port": int(port), **r})
    out["per_server"] = per_server
    zw_o, zw_r = col("orig_zero_windows"), col("resp_zero_windows")
    zt = col("orig_zero_window_time", np.float64) + col("resp_zero_window_time", np.float64)
    stalled = (zw_o + zw_r) > 0
    out["zero_window"] = {
        "connections": int(np.count_nonzero(stalled)),
        "by_orig": int(np.count_nonzero(zw_o)), "by_resp": int(np.count_nonzero(zw_r)),
        "segments": int((zw_o + zw_r).sum()),
        "time": float(np.nansum(zt[stalled])) if stalled.any() else 0.0,
        "max_time": float(np.nanmax(zt[stalled])) if stalled.any() else 0.0,
    }
    keep = both("keepalives")
    out["keepalive_only"] = int(np.count_nonzero((keep > 0) & (both("bytes") == 0)))
    out["rtt"] = {**_pcts(rtt), "per_server": rtt_servers}
    ff = {}
    for side in ("orig", "resp"):
        b = col(f"{side}_first_flight_bytes").astype(np.float64)
        sg = col(f"{side}_first_flight_segs").astype(np.float64)
        sent = b > 0
        ff[side] = {"bytes": _pcts(b[sent]), "segments": _pcts(sg[sent])}
    out["first_flight"] = ff
    return out
