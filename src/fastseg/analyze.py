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
from .aggregates import DistinctValues, KeyTable, LogHistogram, peaks_in_window
from .loss import ANALYSIS_FLAGS, LOSS_REPORT_KEYS, LossAggregate
from .segments import CaptureStats, Segments, format_addresses

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

MSL2 = 60.0                  # Linux TIME-WAIT length (TCP_TIMEWAIT_LEN)
EPHEMERAL_RANGE = 28232      # Linux default ip_local_port_range 32768-60999
PORT_PRESSURE_MIN = 0.01     # share of the range in one window that is worth a row
PORT_PRESSURE_ROWS = 10
# conn_flags bits
COMPLETED, SYNACK_SEEN, SYN_RECORDED = 1, 2, 4
SYN = _consts.SYN
ACK = _consts.ACK
FIN = _consts.FIN
RST = _consts.RST


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


def _side(src: np.ndarray, sport: np.ndarray, dst: np.ndarray, dport: np.ndarray) -> np.ndarray:
    """1 where (src, sport) sorts after (dst, dport): a direction label that
    needs no knowledge of who the originator is."""
    s = np.ascontiguousarray(src).view(">u8").reshape(-1, 2)
    d = np.ascontiguousarray(dst).view(">u8").reshape(-1, 2)
    gt = (s[:, 0] > d[:, 0]) | ((s[:, 0] == d[:, 0]) & (
        (s[:, 1] > d[:, 1]) | ((s[:, 1] == d[:, 1]) & (sport > dport))))
    return gt.astype(np.int8)


def _addr_rows(col, version=None) -> np.ndarray:
    """(n, 16) address rows from a column of rows or of text."""
    col = np.asarray(col)
    if col.ndim == 2:
        return np.ascontiguousarray(col, dtype=np.uint8)
    from .segments import parse_addresses
    return parse_addresses(col.tolist())


def _round_floats(obj, digits: int):
    """A copy of a JSON-able structure with every float rounded."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: _round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_round_floats(v, digits) for v in obj]
    return obj


def _mix64(x: np.ndarray) -> np.ndarray:
    """A 64-bit finaliser (splitmix64) over uint64 arrays, for row keys."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _row_hash(rows: np.ndarray) -> np.ndarray:
    """A 64-bit key per 16-byte address row."""
    w = np.ascontiguousarray(rows).view(np.uint64).reshape(-1, 2)
    return _mix64(_mix64(w[:, 0]) ^ w[:, 1])


def _endpoint_key(addr: np.ndarray, port: np.ndarray, ver: np.ndarray) -> np.ndarray:
    """A 64-bit key per (address row, port, IP version)."""
    return _mix64(_row_hash(addr) ^ ((np.asarray(port).astype(np.uint64) << np.uint64(8))
                                     | np.asarray(ver).astype(np.uint64)))


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


class _Chunks:
    """Arrays appended batch by batch, concatenated once at the end."""

    def __init__(self, **dtypes):
        self._dtypes = dtypes
        self._parts = {k: [] for k in dtypes}

    def add(self, **cols) -> None:
        for k, v in cols.items():
            self._parts[k].append(np.asarray(v, dtype=self._dtypes[k]))

    def extend(self, other: "_Chunks") -> None:
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


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique without return arrays takes a hash
    path that is ~50x slower on random 64-bit keys)."""
    v = np.sort(values)
    if len(v):
        v = v[np.concatenate([[True], v[1:] != v[:-1]])]
    return v


def _ns_seconds(a: np.ndarray, missing: float) -> np.ndarray:
    """ns timestamps (-1 = none) as float seconds, ``missing`` for none."""
    out = a / 1e9
    out[a < 0] = missing
    return out


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
        self.flood_window = flood_window
        self.flood_min_syns = flood_min_syns
        self.flood_ratio = flood_max_completed_ratio
        self.tracker = tracker if tracker is not None else Tracker(
            idle_timeout=idle_timeout, checksums=checksums, max_connections=max_connections)
        self.stats = CaptureStats()
        self.csum = np.zeros(4, dtype=np.int64)
        self.ip_bad = 0
        self.t_first = math.inf
        self.t_last = -math.inf
        self.cookie_requests = 0
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
            ("completed", "refused", "unanswered", "syn_retransmits", "syn_with_data", "fin",
             "rst", "by_orig", "by_resp", "close_wait_leaks", "close_wait_open_at_end",
             "half_open", "held_by_orig", "held_by_resp", "sack", "timestamps", "ecn"), 0)
        self.mss: Dict[int, int] = {}
        self.wscale: Dict[int, int] = {}
        # a few numbers per finished connection
        self.times = {name: LogHistogram() for name in ("rtt", "syn_synack", "synack_ack")}
        self.cw_pending = _Chunks(fin_in=np.float64)
        # ephemeral ports: (client, server address:port, 2*MSL window) rows,
        # the distinct (row, client port) pairs, the distinct 4-tuples
        self.port_rows = KeyTable(orig_h=(np.uint8, (16,)), resp_h=(np.uint8, (16,)),
                                  resp_p=(np.uint16, ()), ver=(np.uint8, ()), win=(np.int64, ()),
                                  conn=(np.int64, ()))
        self.ports_used = DistinctValues()
        self.tuples = DistinctValues(np.uint64)
        # TIME-WAIT holders (servers by address:port, clients by address) and,
        # per TIME-WAIT, the holder's index and the time it began
        self.tw = {"server": KeyTable(addr=(np.uint8, (16,)), port=(np.uint16, ()),
                                      ver=(np.uint8, ())),
                   "client": KeyTable(addr=(np.uint8, (16,)), port=(np.uint16, ()),
                                      ver=(np.uint8, ()))}
        self.tw_rows = {who: _Chunks(gid=np.int32, t=np.float64) for who in self.tw}
        # by connection id: COMPLETED, SYNACK_SEEN, SYN_RECORDED
        self.conn_flags = np.zeros(1024, np.uint8)
        # one record per SYN (floods, backoff): its listener's index, whether
        # it is its connection's first
        self.syns = _Chunks(ts=np.float64, conn=np.int64, listener=np.int32, source=np.uint64,
                            first=np.bool_)
        self.listeners = KeyTable(dst=(np.uint8, (16,)), dport=(np.uint16, ()),
                                  ver=(np.uint8, ()))
        # the loss section, and retransmission times
        self.loss = LossAggregate()
        self.retrans = _Chunks(ts=np.float64)

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
        flags = seg["flags"]
        syn = np.flatnonzero(((flags & SYN) != 0) & ((flags & ACK) == 0))
        if len(syn):
            dst = np.ascontiguousarray(seg["dst"][syn])
            dport = seg["dport"][syn]
            listener = self.listeners.index(_mix64(_row_hash(dst) ^ dport.astype(np.uint64)),
                                            dst=dst, dport=dport, ver=seg["ip_version"][syn])
            conn = seg["conn"][syn]
            self.syns.add(ts=ts_ns[syn] / 1e9, conn=conn, listener=listener,
                          source=_row_hash(np.ascontiguousarray(seg["src"][syn])),
                          first=self._first_syns(conn))
            self.cookie_requests += int(np.count_nonzero(seg["tfo_cookie_len"][syn] == 0))

    def _grow_flags(self, top: int) -> None:
        if top > len(self.conn_flags):
            grown = np.zeros(max(top, 2 * len(self.conn_flags)), np.uint8)
            grown[:len(self.conn_flags)] = self.conn_flags
            self.conn_flags = grown

    def _first_syns(self, conn: np.ndarray) -> np.ndarray:
        """Which of these SYNs (capture order) is the first of its
        connection; SYNs of no connection (-1) each count as a first."""
        first = np.ones(len(conn), bool)
        tracked = np.flatnonzero(conn >= 0)
        if len(tracked):
            c = conn[tracked]
            self._grow_flags(int(c.max()) + 1)
            here = np.zeros(len(c), bool)
            here[np.unique(c, return_index=True)[1]] = True
            first[tracked] = here & ((self.conn_flags[c] & SYN_RECORDED) == 0)
            self.conn_flags[c] |= SYN_RECORDED
        return first

    def _conn_flags_of(self, conn: np.ndarray) -> np.ndarray:
        self._grow_flags(int(conn.max()) + 1 if len(conn) else 0)
        return np.where(conn >= 0, self.conn_flags[np.maximum(conn, 0)], 0)

    def _fold(self, k: dict, limit=None) -> None:
        """Fold a batch of finished connections (kernel columns) into the
        report's aggregates; ``limit``: the tracker's smallest live id when
        they were emitted."""
        from .track import _conn_state, _finish, CONN_STATES
        n = len(k["_conn"])
        if n == 0:
            return
        if self.keep_connections:
            self._pending.append(dict(k, _min=int(k["_conn"].min())))
            self._release(self.tracker.min_live_id() if limit is None else limit)
        if not self.aggregates:
            return
        zs, rfc, nbytes, opts = k["zstate"], k["rfc"], k["bytes"], k["opts"]
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
        # flags by connection id, for the SYN-flood counts
        ids = k["_conn"]
        self._grow_flags(int(ids.max()) + 1)
        self.conn_flags[ids] = ((self.conn_flags[ids] & SYN_RECORDED)
                                | np.where(completed, COMPLETED, 0).astype(np.uint8)
                                | np.where(synack_count > 0, SYNACK_SEEN, 0).astype(np.uint8))
        self._fold_teardowns(k, completed, history)
        if "ttfb" in k:
            cols = dict(k, ip_version=ver, orig_pkts=k["pkts"][:, 0], resp_pkts=k["pkts"][:, 1],
                        orig_bytes=nbytes[:, 0], resp_bytes=nbytes[:, 1])
            self.loss.add(cols)

    def _fold_teardowns(self, k, completed, history) -> None:
        from .track import CLOSE_WAIT, TIME_WAIT
        cnt = self.count
        close, closer, rfc = k["close"], k["closer"], k["rfc"]
        cnt["fin"] += int(np.count_nonzero(close == 1))
        cnt["rst"] += int(np.count_nonzero(close == 2))
        cnt["by_orig"] += int(np.count_nonzero(closer == 0))
        cnt["by_resp"] += int(np.count_nonzero(closer == 1))
        orig_fin = _ns_seconds(k["first_fin"][:, 0], np.inf)
        resp_fin = _ns_seconds(k["first_fin"][:, 1], np.inf)
        orig_last = _ns_seconds(k["last_seen"][:, 0], -np.inf)
        resp_last = _ns_seconds(k["last_seen"][:, 1], -np.inf)

        # CLOSE-WAIT: an endpoint received a FIN and sent none for too long.
        # Without the answering FIN the wait runs to the capture's end, which
        # is at least the latest time seen so far: decided now when that is
        # already long enough, else kept (one float) until the end.
        thr = self.close_wait_threshold
        both = np.isfinite(orig_fin) & np.isfinite(resp_fin)
        with np.errstate(invalid="ignore"):
            leak = both & ((resp_fin - orig_fin > thr) | (orig_fin - resp_fin > thr))
        one = np.isfinite(orig_fin) ^ np.isfinite(resp_fin)
        fin_in = np.where(np.isfinite(orig_fin), orig_fin, resp_fin)[one]
        sure = self.t_last - fin_in > thr
        cnt["close_wait_leaks"] += int(np.count_nonzero(leak)) + int(np.count_nonzero(sure))
        self.cw_pending.add(fin_in=fin_in[~sure])
        cnt["close_wait_open_at_end"] += int(np.count_nonzero(
            (rfc[:, 0] == CLOSE_WAIT) | (rfc[:, 1] == CLOSE_WAIT)))

        # half-open: established, never closed, and one side kept sending for
        # at least a second after the other side's last segment
        half_open = (completed & (close == 0) & (np.abs(orig_last - resp_last) >= 1.0)
                     & (history != b"") & np.isfinite(orig_last) & np.isfinite(resp_last)
                     & (np.minimum(k["pkts"][:, 0], k["pkts"][:, 1]) > 0))
        cnt["half_open"] += int(np.count_nonzero(half_open))

        # TIME-WAIT: held by the side that closed first; lasts 2*MSL from the
        # last FIN (or the connection's end)
        tw_orig = rfc[:, 0] == TIME_WAIT
        tw_resp = rfc[:, 1] == TIME_WAIT
        cnt["held_by_orig"] += int(np.count_nonzero(tw_orig))
        cnt["held_by_resp"] += int(np.count_nonzero(tw_resp))
        ts = k["first_ts"] / 1e9
        end = ts + (k["last_ts"] - k["first_ts"]) / 1e9
        fins = np.maximum(np.where(np.isfinite(orig_fin), orig_fin, -np.inf),
                          np.where(np.isfinite(resp_fin), resp_fin, -np.inf))
        tw_end = np.where(np.isfinite(fins), fins, end)
        ver = k["ip_version"]
        orig_h, resp_h = k["orig_h"], k["resp_h"]
        orig_p, resp_p = k["orig_p"], k["resp_p"]
        for who, held, addr, port in (("server", tw_resp, resp_h, resp_p),
                                      ("client", tw_orig, orig_h, np.zeros_like(orig_p))):
            if held.any():
                a, p, v = addr[held], port[held], ver[held]
                gid = self.tw[who].index(_endpoint_key(a, p, v), addr=a, port=p, ver=v)
                self.tw_rows[who].add(gid=gid, t=tw_end[held])

        # ephemeral ports: distinct client ports toward one server address:port
        # within one 2*MSL window, and reuse of whole 4-tuples (64-bit keys)
        win = np.floor(ts / MSL2).astype(np.int64)
        oh, rh = _row_hash(orig_h), _row_hash(resp_h)
        dest = _mix64(_mix64(oh ^ rh * np.uint64(3)) ^ resp_p.astype(np.uint64))
        key = _mix64(dest ^ win.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        row = self.port_rows.index(key, orig_h=orig_h, resp_h=resp_h, resp_p=resp_p, ver=ver,
                                   win=win, conn=k["_conn"])
        self.ports_used.add((row << 16) | orig_p.astype(np.int64))
        self.tuples.add(_mix64(_mix64(dest ^ oh) ^ orig_p.astype(np.uint64)))

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
        self.cookie_requests += other.cookie_requests
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
        other.port_rows.cols["conn"] = other.port_rows.cols["conn"] + offset
        remap = self.port_rows.merge_index(other.port_rows)
        used = other.ports_used.values()
        self.ports_used.add((remap[used >> 16] << 16) | (used & 0xFFFF))
        self.tuples.merge(other.tuples)
        for name, hist in self.times.items():
            hist.merge(other.times[name])
        self.loss.merge(other.loss)
        for mine, theirs in ((self.cw_pending, other.cw_pending),
                             (self.retrans, other.retrans)):
            mine.extend(theirs)
        for who, table in self.tw.items():
            remap = table.merge_index(other.tw[who])
            rows = other.tw_rows[who]
            rows._parts["gid"] = [remap[p] for p in rows._parts["gid"]]
            self.tw_rows[who].extend(rows)
        syns = other.syns
        remap = self.listeners.merge_index(other.listeners)
        syns._parts["conn"] = [np.where(p >= 0, p + offset, p) for p in syns._parts["conn"]]
        syns._parts["listener"] = [remap[p] for p in syns._parts["listener"]]
        self.syns.extend(syns)
        flags = np.zeros(offset + len(other.conn_flags), np.uint8)
        flags[:min(len(self.conn_flags), offset)] = self.conn_flags[:offset]
        flags[offset:] = other.conn_flags
        self.conn_flags = flags
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
        series = ({"syn_ts": self.syns.get("ts"), "retrans_ts": self.retrans.get("ts")}
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
        if capture_end is not None:
            pending = self.cw_pending.get("fin_in")
            cnt["close_wait_leaks"] += int(np.count_nonzero(capture_end - pending
                                                            > self.close_wait_threshold))
            self.cw_pending = _Chunks(fin_in=np.float64)
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
                "syn_backoff": self._backoff() if self.n else {},
                "rtt": self.times["rtt"].summary(),
                "syn_synack": self.times["syn_synack"].summary(),
                "synack_ack": self.times["synack_ack"].summary(),
            },
            "teardowns": self._teardowns(),
            "syn_flood": self._floods() if self.n else [],
            "tfo": {"syn_with_data": cnt["syn_with_data"],
                    "cookie_requests": int(self.cookie_requests)},
            "options": self._options(),
        }
        return out

    def _backoff(self) -> Dict[str, int]:
        """Intervals between successive SYNs of one connection, rounded to the
        nearest power of two seconds (Linux: 1 s, 2 s, 4 s ...)."""
        conn, first = self.syns.get("conn"), self.syns.get("first")
        # only connections that sent more than one SYN have intervals
        again = np.flatnonzero(np.isin(conn, conn[~first]))
        if not len(again):
            return {}
        conn, ts = conn[again], self.syns.get("ts")[again]
        order = np.lexsort((ts, conn))
        conn, ts = conn[order], ts[order]
        same = conn[1:] == conn[:-1]
        gaps = (ts[1:] - ts[:-1])[same]
        gaps = gaps[gaps > 0.05]
        if len(gaps) == 0:
            return {}
        exp = np.round(np.log2(gaps)).astype(np.int64)
        vals, cnt = np.unique(exp, return_counts=True)
        return {f"{2.0 ** int(v):g}s": int(c) for v, c in zip(vals, cnt)}

    def _teardowns(self) -> dict:
        cnt = self.count
        pressure = []
        rows = self.port_rows
        if len(rows):
            # Kept: the busiest rows using at least PORT_PRESSURE_MIN of the
            # range, else only the busiest one, so that its maximum is still
            # known; ties go to the row whose first connection came first.
            ports = np.bincount(self.ports_used.values() >> 16, minlength=len(rows))
            busiest = np.lexsort((rows.cols["conn"], -ports))
            busy = int(np.count_nonzero(ports >= PORT_PRESSURE_MIN * EPHEMERAL_RANGE))
            for r in busiest[:max(1, min(busy, PORT_PRESSURE_ROWS))]:
                v = rows.cols["ver"][r:r + 1]
                pressure.append({
                    "client": str(format_addresses(rows.cols["orig_h"][r:r + 1], v)[0]),
                    "server": str(format_addresses(rows.cols["resp_h"][r:r + 1], v)[0]),
                    "port": int(rows.cols["resp_p"][r]),
                    "window_start": float(rows.cols["win"][r] * MSL2),
                    "ports": int(ports[r]),
                    "fraction_of_range": round(float(ports[r]) / EPHEMERAL_RANGE, 6),
                })
        return {
            "fin": cnt["fin"], "rst": cnt["rst"], "by_orig": cnt["by_orig"],
            "by_resp": cnt["by_resp"], "close_wait_leaks": cnt["close_wait_leaks"],
            "close_wait_open_at_end": cnt["close_wait_open_at_end"],
            "half_open": cnt["half_open"],
            "time_wait": {
                "held_by_orig": cnt["held_by_orig"], "held_by_resp": cnt["held_by_resp"],
                "peak_per_server": self._peak_table("server", True),
                "peak_per_client": self._peak_table("client", False),
            },
            "port_pressure": pressure,
            "port_reuse": int(self.n - len(self.tuples)) if self.n else 0,
        }

    def _peak_table(self, who: str, with_port: bool) -> List[dict]:
        """The ten holders with the most TIME-WAITs at once (each lasts
        2*MSL), ties in first-seen order."""
        table, rows = self.tw[who], self.tw_rows[who]
        peaks, when = peaks_in_window(rows.get("gid"), rows.get("t"), MSL2, len(table))
        out = []
        for g in np.argsort(-peaks, kind="stable")[:10]:
            if peaks[g] == 0:
                break
            text = str(format_addresses(table.cols["addr"][g:g + 1], table.cols["ver"][g:g + 1])[0])
            item = {who: text, "peak": int(peaks[g]), "at": float(when[g])}
            if with_port:
                item["port"] = int(table.cols["port"][g])
            out.append(item)
        return out

    def _floods(self) -> List[dict]:
        """SYN-flood suspects per server address:port.

        A stray SYN is one whose connection never completed its handshake
        (retransmitted SYNs of a connection that did complete are not
        strays: a load test that retransmits is not a flood).  Every SYN
        closes a trailing window of ``flood_window`` seconds; the window is
        suspect when it holds at least ``flood_min_syns`` strays and at most
        ``flood_max_completed_ratio`` of its SYNs led to a completed handshake
        (a completed handshake counts at its connection's first SYN).
        Overlapping suspect windows merge into one entry that runs from the
        first stray of its first window to the last stray of its last, with
        counts exact over that span."""
        ts = self.syns.get("ts")
        if not len(ts):
            return []
        k = max(int(self.flood_min_syns), 1)
        gid = self.syns.get("listener")
        flags = self._conn_flags_of(self.syns.get("conn"))
        stray = (flags & COMPLETED) == 0
        # a suspect window holds at least k strays: listeners with fewer in
        # all are passed over
        cand = np.flatnonzero(np.bincount(gid[stray], minlength=len(self.listeners)) >= k)
        if len(cand) == 0:
            return []
        src = self.syns.get("source")
        first_syn = self.syns.get("first")
        completed = first_syn & ~stray
        unanswered = first_syn & ((flags & SYNACK_SEEN) != 0) & stray
        del flags
        out = []
        w = self.flood_window
        for g in cand:
            idx = np.flatnonzero(gid == g)
            idx = idx[np.argsort(ts[idx], kind="stable")]
            t = ts[idx]
            cum_done = np.concatenate([[0], np.cumsum(completed[idx])])
            cum_stray = np.concatenate([[0], np.cumsum(stray[idx])])
            lo = np.searchsorted(t, t - w, side="left")
            hi = np.arange(1, len(t) + 1)
            n_in = hi - lo
            c_in = cum_done[hi] - cum_done[lo]
            bad = np.flatnonzero((cum_stray[hi] - cum_stray[lo] >= k)
                                 & (c_in <= self.flood_ratio * n_in))
            if len(bad) == 0:
                continue
            # positions (in time order) of the strays; every flagged window
            # [lo, bad] holds at least k of them, so the look-ups below land
            strays = np.flatnonzero(stray[idx])
            starts, ends = t[lo[bad]], t[bad]
            reach = np.maximum.accumulate(ends)
            new = np.concatenate([[True], starts[1:] > reach[:-1]])
            first = np.flatnonzero(new)
            last = np.concatenate([first[1:] - 1, [len(bad) - 1]])
            cols = self.listeners.cols
            server = str(format_addresses(cols["dst"][g:g + 1], cols["ver"][g:g + 1])[0])
            port = int(cols["dport"][g])
            for a, b in zip(first, last):
                s0 = t[strays[np.searchsorted(strays, lo[bad[a]], side="left")]]
                e0 = t[strays[np.searchsorted(strays, bad[b], side="right") - 1]]
                inside = idx[(t >= s0) & (t <= e0)]
                out.append({
                    "server": server, "port": port,
                    "start": float(s0), "end": float(e0), "syns": int(len(inside)),
                    "completed": int(completed[inside].sum()),
                    "sources": int(len(_distinct(src[inside]))),
                    "synacks_unanswered": int(unanswered[inside].sum()),
                })
        out.sort(key=lambda f: (f["start"], f["server"], f["port"]))
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
