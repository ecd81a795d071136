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

from typing import Dict, List, Optional

import numpy as np

from . import _loss
from ._consts import ANALYSIS_FLAGS

__all__ = ["ANALYSIS_FLAGS", "SEGMENT_LOSS_COLUMNS", "LOSS_COLUMNS", "LOSS_NULLS",
           "analyze_segments", "LossAnalyzer", "with_loss_columns", "endpoint_keys", "flag_names", "loss_report",
           "merge_loss_reports"]

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
    """Streaming loss analysis beside a ``fastseg.Tracker``: ``process``
    each tracked batch (adds the per-segment columns), ``finish`` each
    Connections table the tracker emits (adds ``LOSS_COLUMNS``).  Memory:
    one state (about 500 bytes, plus 24 per unacknowledged segment) per
    connection in progress."""

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
            status = self._engine.process(
                c("conn", np.int64), endpoint_keys(segments["src"], segments["sport"]),
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
        """The loss columns of finished ``connections`` (rows in their
        order); frees their states."""
        n = len(connections)
        counts = np.zeros((n, 2, len(_COUNTS)), dtype=np.uint64)
        seconds = np.full((n, 2, len(_SECONDS)), np.nan)
        ttfb = np.full(n, np.nan)
        if n:
            self._engine.finish(np.ascontiguousarray(connections["_conn"], dtype=np.int64),
                                endpoint_keys(connections["orig_h"], connections["orig_p"]),
                                counts, seconds, ttfb)
        out: Dict[str, np.ndarray] = {}
        for s, side in enumerate(("orig", "resp")):
            for k, name in enumerate(_COUNTS):
                out[f"{side}_{name}"] = counts[:, s, k].astype(np.int64)
            for k, name in enumerate(_SECONDS):
                out[f"{side}_{name}"] = seconds[:, s, k].copy()
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


def flag_names(analysis) -> List[List[str]]:
    """The tcp.analysis names set in each value of an ``analysis`` column."""
    analysis = np.asarray(analysis, dtype=np.int64)
    items = list(ANALYSIS_FLAGS.items())
    hits = [(name, (analysis & bit) != 0) for name, bit in items]
    out: List[List[str]] = [[] for _ in range(len(analysis))]
    for name, mask in hits:
        for i in np.flatnonzero(mask).tolist():
            out[i].append(name)
    return out
