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
import warnings
from typing import Dict, List, Optional

import numpy as np

from . import _consts
from .segments import CaptureStats, Segments, format_addresses

__all__ = ["analyze", "Report", "connections_of", "REPORT_KEYS"]

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
}

MSL2 = 60.0                  # Linux TIME-WAIT length (TCP_TIMEWAIT_LEN)
EPHEMERAL_RANGE = 28232      # Linux default ip_local_port_range 32768-60999
PORT_PRESSURE_MIN = 0.01     # share of the range in one window that is worth a row
PORT_PRESSURE_ROWS = 10
SYN = _consts.SYN
ACK = _consts.ACK
FIN = _consts.FIN
RST = _consts.RST


# -- small helpers --------------------------------------------------------
def _pcts(values: np.ndarray) -> Dict[str, Optional[float]]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return {"count": 0, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"count": int(len(values)), "p50": float(p50), "p90": float(p90),
            "p99": float(p99), "max": float(values.max())}


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


def _peak_concurrency(group: np.ndarray, start: np.ndarray, end: np.ndarray):
    """Peak number of overlapping [start, end) intervals per group id.
    Returns (group ids, peaks, time of peak)."""
    if len(group) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    g = np.concatenate([group, group])
    t = np.concatenate([start, end])
    delta = np.concatenate([np.ones(len(start), np.int64), -np.ones(len(end), np.int64)])
    order = np.lexsort((delta, t, g))      # at equal times, closes before opens
    g, t, delta = g[order], t[order], delta[order]
    running = np.cumsum(delta)
    boundaries = np.flatnonzero(np.diff(g)) + 1
    base = np.concatenate([[0], running[boundaries - 1]]) if len(boundaries) else np.array([0])
    starts = np.concatenate([[0], boundaries])
    level = running - np.repeat(base, np.diff(np.concatenate([starts, [len(g)]])))
    peaks = np.maximum.reduceat(level, starts)
    block = np.repeat(np.arange(len(starts)), np.diff(np.concatenate([starts, [len(g)]])))
    first_max = np.lexsort((-level, block))[starts]   # highest level first in each block
    return g[starts], peaks, t[first_max]


# What the report keeps of each finished connection (and in which dtype), so
# that a long capture costs about 170 bytes per connection, not a full row.
_KEPT = {
    "_conn": np.int64, "ip_version": np.uint8, "orig_h": None, "resp_h": None,
    "orig_p": np.uint16, "resp_p": np.uint16, "ts": np.float64, "duration": np.float64,
    "ack_ts": np.float64, "handshake_rtt": np.float64, "syn_synack": np.float64,
    "synack_ack": np.float64, "conn_state": "S6", "orig_state": "S11", "resp_state": "S11",
    "closer": "S4", "close": "S3", "history": "S1", "syn_count": np.int32,
    "synack_count": np.int32, "orig_pkts": np.int64, "resp_pkts": np.int64,
    "tfo_data": np.int32, "orig_mss": np.int32, "orig_wscale": np.int16,
    "sack_ok": np.bool_, "ts_ok": np.bool_, "ecn_ok": np.bool_,
}


def _ascii(col: np.ndarray, width: int) -> np.ndarray:
    """ASCII text of a unicode array as bytes ('S' dtype) of at most ``width``
    characters: the low byte of each UCS-4 code unit, without per-item work."""
    chars = col.dtype.itemsize // 4
    n = len(col)
    if chars == 0 or n == 0:
        return np.zeros(n, dtype=f"S{width}")
    units = np.ascontiguousarray(col).view(np.uint32).reshape(n, chars)[:, :width]
    out = np.zeros((n, width), dtype=np.uint8)
    out[:, :units.shape[1]] = units
    return out.view(f"S{width}").reshape(n)


class _ConnColumns(dict):
    """The kept columns of many connections: ``cols[name]``, ``len()``."""

    def __len__(self):
        return len(self["_conn"])

    @classmethod
    def compact(cls, conns) -> "_ConnColumns":
        out = cls()
        for name, dt in _KEPT.items():
            col = np.asarray(conns[name])
            if col.dtype.kind == "U" and isinstance(dt, str):
                out[name] = _ascii(col, int(dt[1:]))
            else:
                out[name] = col.copy() if dt is None else col.astype(dt)
        return out

    @classmethod
    def concat(cls, parts) -> "_ConnColumns":
        out = cls({k: np.concatenate([p[k] for p in parts]) for k in _KEPT})
        order = np.argsort(out["_conn"], kind="stable")   # first-seen order, as track()
        return cls({k: v[order] for k, v in out.items()})


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


class _Grow:
    """Per-connection aggregates indexed by global connection number."""

    def __init__(self, dtype, fill):
        self.dtype, self.fill = dtype, fill
        self.a = np.full(1024, fill, dtype=dtype)

    def ensure(self, n: int) -> None:
        if n > len(self.a):
            size = len(self.a)
            while size < n:
                size *= 2
            b = np.full(size, self.fill, dtype=self.dtype)
            b[:len(self.a)] = self.a
            self.a = b


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


class _Analysis:
    """Accumulates what the report needs, one batch of segments at a time."""

    def __init__(self, checksums="auto", idle_timeout=300.0, close_wait_threshold=60.0,
                 flood_window=1.0, flood_min_syns=50, flood_max_completed_ratio=0.5,
                 tracker=None, keep_connections=False, max_connections=None):
        from .track import Tracker
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
        self.syn_parts: List[dict] = []
        self.cookie_requests = 0
        # per connection, per canonical side (0/1)
        self.last_ts = [_Grow(np.float64, -np.inf), _Grow(np.float64, -np.inf)]
        self.fin_ts = [_Grow(np.float64, np.inf), _Grow(np.float64, np.inf)]
        self.conn_parts: List = []

    def add(self, seg: Segments) -> None:
        self.stats += seg.stats
        n = len(seg)
        if n == 0:
            return
        self.csum += np.bincount(seg["checksum_status"], minlength=4)[:4]
        self.ip_bad += int(np.count_nonzero(seg["ip_checksum_status"] == _consts.CSUM_BAD))
        ts = seg["ts_ns"].astype(np.float64) / 1e9
        self.t_first = min(self.t_first, float(ts.min()))
        self.t_last = max(self.t_last, float(ts.max()))
        finished = self.tracker.update(seg)
        if finished is not None and len(finished):
            self.conn_parts.append(finished if self.keep_connections
                                   else _ConnColumns.compact(finished))
        conn = np.asarray(seg["conn"], dtype=np.int64)
        flags = seg["flags"]
        side = _side(seg["src"], seg["sport"], seg["dst"], seg["dport"])
        top = int(conn.max()) + 1 if n else 0
        for g in self.last_ts + self.fin_ts:
            g.ensure(top)
        for s in (0, 1):
            m = side == s
            np.maximum.at(self.last_ts[s].a, conn[m], ts[m])
            f = m & ((flags & FIN) != 0)
            np.minimum.at(self.fin_ts[s].a, conn[f], ts[f])
        syn = ((flags & SYN) != 0) & ((flags & ACK) == 0)
        if syn.any():
            self.syn_parts.append({
                "ts": ts[syn], "conn": conn[syn], "src": seg["src"][syn].copy(),
                "dst": seg["dst"][syn].copy(), "dport": seg["dport"][syn].copy(),
                "ver": seg["ip_version"][syn].copy()})
            self.cookie_requests += int(np.count_nonzero(seg["tfo_cookie_len"][syn] == 0))

    def finish(self, files: List[str]) -> Report:
        last = self.tracker.flush()
        if last is not None and len(last):
            self.conn_parts.append(last if self.keep_connections
                                   else _ConnColumns.compact(last))
        from .track import Connections, track
        if not self.conn_parts:
            self.conn_parts.append(track(Segments.empty()))
            if not self.keep_connections:
                self.conn_parts[0] = _ConnColumns.compact(self.conn_parts[0])
        if self.keep_connections:
            conns = Connections.concat(self.conn_parts)
            conns = conns[np.argsort(conns["_conn"], kind="stable")]  # first-seen order, as track()
        else:
            conns = _ConnColumns.concat(self.conn_parts)
        self.conn_parts = []
        series = {"syn_ts": (np.concatenate([p["ts"] for p in self.syn_parts])
                             if self.syn_parts else np.empty(0))}
        return Report(self._build(conns, files), conns, series)

    # -- sections ---------------------------------------------------------
    def _build(self, conns, files) -> dict:
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
                "(a rewritten or anonymised trace?): ignoring them", stacklevel=3)
        report.update(self._connections(conns, end))
        return report

    def _connections(self, conns, capture_end) -> dict:
        n = 0 if conns is None else len(conns)
        empty_pcts = _pcts(np.empty(0))
        if n == 0:
            return {
                "connections": {"total": 0, "by_state": {}, "ipv4": 0, "ipv6": 0,
                                "evicted": 0},
                "handshakes": {"completed": 0, "refused": 0, "unanswered": 0,
                               "syn_retransmits": 0, "syn_backoff": {}, "rtt": empty_pcts,
                               "syn_synack": empty_pcts, "synack_ack": empty_pcts},
                "teardowns": {"fin": 0, "rst": 0, "by_orig": 0, "by_resp": 0,
                              "close_wait_leaks": 0, "close_wait_open_at_end": 0,
                              "half_open": 0,
                              "time_wait": {"held_by_orig": 0, "held_by_resp": 0,
                                            "peak_per_server": [], "peak_per_client": []},
                              "port_pressure": [], "port_reuse": 0},
                "syn_flood": [],
                "tfo": {"syn_with_data": 0, "cookie_requests": self.cookie_requests},
                "options": {"mss": {}, "wscale": {}, "sack": 0, "timestamps": 0, "ecn": 0},
            }
        state = _strs(conns["conn_state"])
        states, counts = np.unique(state, return_counts=True)
        by_state = {str(s): int(c) for s, c in sorted(zip(states, counts), key=lambda x: -x[1])}
        ver = np.asarray(conns["ip_version"]) if "ip_version" in conns else None
        ack_ts = _secs(conns["ack_ts"])
        completed = np.isfinite(ack_ts)
        syn_count = np.asarray(conns["syn_count"]).astype(np.int64)
        synack_count = np.asarray(conns["synack_count"]).astype(np.int64)
        refused = state == "REJ"
        unanswered = (syn_count > 0) & (synack_count == 0) & ~refused & ~completed
        rtt = _floats(conns["handshake_rtt"])
        out = {
            "connections": {
                "total": int(n), "by_state": by_state,
                "evicted": int(getattr(self.tracker, "evicted", 0)),
                "ipv4": int(np.count_nonzero(ver == 4)) if ver is not None else None,
                "ipv6": int(np.count_nonzero(ver == 6)) if ver is not None else None,
            },
            "handshakes": {
                "completed": int(np.count_nonzero(completed)),
                "refused": int(np.count_nonzero(refused)),
                "unanswered": int(np.count_nonzero(unanswered)),
                "syn_retransmits": int(np.maximum(syn_count - 1, 0).sum()),
                "syn_backoff": self._backoff(),
                "rtt": _pcts(rtt),
                "syn_synack": _pcts(_floats(conns["syn_synack"])),
                "synack_ack": _pcts(_floats(conns["synack_ack"])),
            },
        }
        out["teardowns"] = self._teardowns(conns, capture_end)
        out["syn_flood"] = self._floods(conns)
        tfo_data = np.asarray(conns["tfo_data"]).astype(np.int64)
        out["tfo"] = {"syn_with_data": int(np.count_nonzero(tfo_data > 0)),
                      "cookie_requests": int(self.cookie_requests)}
        out["options"] = self._options(conns)
        return out

    def _backoff(self) -> Dict[str, int]:
        """Intervals between successive SYNs of one connection, rounded to the
        nearest power of two seconds (Linux: 1 s, 2 s, 4 s ...)."""
        if not self.syn_parts:
            return {}
        conn = np.concatenate([p["conn"] for p in self.syn_parts])
        ts = np.concatenate([p["ts"] for p in self.syn_parts])
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

    def _teardowns(self, conns, capture_end) -> dict:
        n = len(conns)
        closer = _strs(conns["closer"])
        close = _strs(conns["close"])
        orig_state = _strs(conns["orig_state"])
        resp_state = _strs(conns["resp_state"])
        orig_h = _addr_rows(conns["orig_h"])
        resp_h = _addr_rows(conns["resp_h"])
        orig_p = np.asarray(conns["orig_p"]).astype(np.int64)
        resp_p = np.asarray(conns["resp_p"]).astype(np.int64)
        ver = np.asarray(conns["ip_version"]) if "ip_version" in conns else \
            np.where((orig_h[:, :12] == np.array([0] * 10 + [255, 255], np.uint8)).all(1), 4, 6)
        ts = _secs(conns["ts"])
        dur = _floats(conns["duration"])
        end = ts + np.nan_to_num(dur)
        conn_id = np.asarray(conns["_conn"]).astype(np.int64) if "_conn" in conns \
            else np.arange(n, dtype=np.int64)
        orig_side = _side(orig_h, orig_p.astype(np.uint16), resp_h, resp_p.astype(np.uint16))
        top = int(conn_id.max()) + 1 if n else 0
        for g in self.last_ts + self.fin_ts:
            g.ensure(top)
        fin = [g.a[conn_id] for g in self.fin_ts]
        last = [g.a[conn_id] for g in self.last_ts]
        o = orig_side.astype(bool)
        orig_fin = np.where(o, fin[1], fin[0])
        resp_fin = np.where(o, fin[0], fin[1])
        orig_last = np.where(o, last[1], last[0])
        resp_last = np.where(o, last[0], last[1])
        cap_end = capture_end if capture_end is not None else float(np.nanmax(end))

        # CLOSE-WAIT: an endpoint received a FIN and sent none for too long
        def cw(fin_in, fin_out):
            waited = np.where(np.isfinite(fin_out), fin_out, cap_end) - fin_in
            return np.isfinite(fin_in) & (waited > self.close_wait_threshold)
        leak = cw(orig_fin, resp_fin) | cw(resp_fin, orig_fin)
        open_cw = (orig_state == "CLOSE-WAIT") | (resp_state == "CLOSE-WAIT")

        # half-open: established, never closed, and one side kept sending for
        # at least a second after the other side's last segment
        established = np.isfinite(_secs(conns["ack_ts"]))
        not_closed = (close == "") | (close == "None")
        silent = np.abs(orig_last - resp_last) >= 1.0
        half_open = established & not_closed & silent & (
            _strs(conns["history"]) != "") & np.isfinite(orig_last) & np.isfinite(resp_last)
        # refine by segment counts from the tracker when available
        if "orig_pkts" in conns:
            pk = np.minimum(np.asarray(conns["orig_pkts"]), np.asarray(conns["resp_pkts"]))
            half_open &= pk > 0

        # TIME-WAIT: held by the side that closed first; lasts 2*MSL from the end
        tw_orig = orig_state == "TIME-WAIT"
        tw_resp = resp_state == "TIME-WAIT"
        tw_end = np.where(np.isfinite(np.maximum(orig_fin, resp_fin)),
                          np.maximum(np.where(np.isfinite(orig_fin), orig_fin, -np.inf),
                                     np.where(np.isfinite(resp_fin), resp_fin, -np.inf)), end)
        peak_server = self._peak_table(tw_resp, resp_h, resp_p, ver, tw_end, "server")
        peak_client = self._peak_table(tw_orig, orig_h, None, ver, tw_end, "client")

        # ephemeral-port pressure: distinct client ports toward one server
        # address:port within one 2*MSL window (rows keyed by 64-bit hashes).
        # Kept: the busiest rows using at least PORT_PRESSURE_MIN of the range,
        # else only the busiest one, so that its maximum is still known.
        pressure = []
        win = np.floor(ts / MSL2).astype(np.int64)
        dest = _mix64(_mix64(_row_hash(orig_h) ^ _row_hash(resp_h) * np.uint64(3))
                      ^ resp_p.astype(np.uint64))
        key = _mix64(dest ^ win.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
        pair = _mix64(key ^ (orig_p.astype(np.uint64) << np.uint64(1)))
        _, first_pair = np.unique(pair, return_index=True)
        uk, first_key, cnt = np.unique(key[first_pair], return_index=True, return_counts=True)
        busiest = np.lexsort((first_pair[first_key], -cnt))   # ties: first seen first
        busy = int(np.count_nonzero(cnt >= PORT_PRESSURE_MIN * EPHEMERAL_RANGE))
        for i in busiest[:max(1, min(busy, PORT_PRESSURE_ROWS))]:
            r = first_pair[first_key[i]]
            v = np.array([ver[r]])
            pressure.append({
                "client": str(format_addresses(orig_h[r:r + 1], v)[0]),
                "server": str(format_addresses(resp_h[r:r + 1], v)[0]),
                "port": int(resp_p[r]),
                "window_start": float(win[r] * MSL2),
                "ports": int(cnt[i]),
                "fraction_of_range": round(float(cnt[i]) / EPHEMERAL_RANGE, 6),
            })
        tuple_key = _mix64(_mix64(dest ^ _row_hash(orig_h)) ^ orig_p.astype(np.uint64))
        tcount = np.unique(tuple_key, return_counts=True)[1]
        return {
            "fin": int(np.count_nonzero(close == "fin")),
            "rst": int(np.count_nonzero(close == "rst")),
            "by_orig": int(np.count_nonzero(closer == "orig")),
            "by_resp": int(np.count_nonzero(closer == "resp")),
            "close_wait_leaks": int(np.count_nonzero(leak)),
            "close_wait_open_at_end": int(np.count_nonzero(open_cw)),
            "half_open": int(np.count_nonzero(half_open)),
            "time_wait": {
                "held_by_orig": int(np.count_nonzero(tw_orig)),
                "held_by_resp": int(np.count_nonzero(tw_resp)),
                "peak_per_server": peak_server,
                "peak_per_client": peak_client,
            },
            "port_pressure": pressure,
            "port_reuse": int((tcount - 1).sum()),
        }

    def _peak_table(self, mask, addr, port, ver, start, who) -> List[dict]:
        if not mask.any():
            return []
        a = addr[mask]
        cols = [a]
        if port is not None:
            cols.append(port[mask].astype(">u2").view(np.uint8).reshape(-1, 2))
        key = np.concatenate(cols, axis=1)
        kv = np.ascontiguousarray(key).view(np.dtype((np.void, key.shape[1]))).reshape(-1)
        uk, gid = np.unique(kv, return_inverse=True)
        t0 = start[mask]
        groups, peaks, when = _peak_concurrency(gid.reshape(-1), t0, t0 + MSL2)
        order = np.argsort(-peaks)[:10]
        out = []
        vv = ver[mask]
        first = {}
        for i, g in enumerate(gid.reshape(-1)):
            if g not in first:
                first[g] = i
            if len(first) == len(uk):
                break
        for i in order:
            g = groups[i]
            row = np.frombuffer(bytes(uk[g]), np.uint8)
            text = str(format_addresses(row[:16].reshape(1, 16), np.array([vv[first[g]]]))[0])
            item = {who: text, "peak": int(peaks[i]), "at": float(when[i])}
            if port is not None:
                item["port"] = int(row[16]) << 8 | int(row[17])
            out.append(item)
        return out

    def _floods(self, conns) -> List[dict]:
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
        if not self.syn_parts:
            return []
        k = max(int(self.flood_min_syns), 1)
        ts = np.concatenate([p["ts"] for p in self.syn_parts])
        dst = np.concatenate([p["dst"] for p in self.syn_parts])
        src = np.concatenate([p["src"] for p in self.syn_parts])
        dport = np.concatenate([p["dport"] for p in self.syn_parts])
        ver = np.concatenate([p["ver"] for p in self.syn_parts])
        conn = np.concatenate([p["conn"] for p in self.syn_parts])
        key = np.concatenate([dst, dport.astype(">u2").view(np.uint8).reshape(-1, 2)], axis=1)
        kv = np.ascontiguousarray(key).view(np.dtype((np.void, 18))).reshape(-1)
        uk, gid, total = np.unique(kv, return_inverse=True, return_counts=True)
        gid = gid.reshape(-1)
        cand = np.flatnonzero(total >= k)
        if len(cand) == 0:
            return []
        conn_ids = np.asarray(conns["_conn"]).astype(np.int64)
        size = int(max(conn_ids.max() if len(conn_ids) else 0, conn.max())) + 1
        done = np.zeros(size, bool)
        done[conn_ids] = np.isfinite(_secs(conns["ack_ts"]))
        synack = np.zeros(size, bool)
        synack[conn_ids] = np.asarray(conns["synack_count"]) > 0
        first_syn = np.ones(len(conn), bool)
        order = np.lexsort((ts, conn))
        first_syn[order[1:]] = conn[order[1:]] != conn[order[:-1]]
        completed = first_syn & done[conn]
        stray = ~done[conn]
        unanswered = first_syn & synack[conn] & ~done[conn]
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
            row = np.frombuffer(bytes(uk[g]), np.uint8)
            server = str(format_addresses(row[:16].reshape(1, 16), np.array([ver[idx[0]]]))[0])
            for a, b in zip(first, last):
                s0 = t[strays[np.searchsorted(strays, lo[bad[a]], side="left")]]
                e0 = t[strays[np.searchsorted(strays, bad[b], side="right") - 1]]
                inside = idx[(t >= s0) & (t <= e0)]
                out.append({
                    "server": server, "port": int(row[16]) << 8 | int(row[17]),
                    "start": float(s0), "end": float(e0), "syns": int(len(inside)),
                    "completed": int(completed[inside].sum()),
                    "sources": int(len(np.unique(np.ascontiguousarray(src[inside]).view(
                        np.dtype((np.void, 16)))))),
                    "synacks_unanswered": int(unanswered[inside].sum()),
                })
        out.sort(key=lambda f: (f["start"], f["server"], f["port"]))
        return out

    def _options(self, conns) -> dict:
        def counts(col, limit=8):
            v = np.asarray(col).astype(np.int64)
            v = v[v >= 0]
            vals, cnt = np.unique(v, return_counts=True)
            order = np.argsort(-cnt)[:limit]
            return {str(int(vals[i])): int(cnt[i]) for i in order}

        def n_true(name):
            return int(np.count_nonzero(np.asarray(conns[name]).astype(bool))) \
                if name in conns else 0
        return {
            "mss": counts(conns["orig_mss"]),
            "wscale": counts(conns["orig_wscale"]),
            "sack": n_true("sack_ok"),
            "timestamps": n_true("ts_ok"),
            "ecn": n_true("ecn_ok"),
        }


def analyze(path_or_segments, *, checksums: str = "auto",
            idle_timeout: float = 300.0, close_wait_threshold: float = 60.0,
            flood_window: float = 1.0, flood_min_syns: int = 50,
            progress: bool = False, keep_connections: bool = False,
            max_connections: int = None, **reader_kwargs) -> Report:
    """Analyse a capture file (streamed batch by batch), a list of files read
    as one capture in order (e.g. rotated ``tcpdump -C`` output), or a
    Segments table.

    ``checksums``: ``auto`` (default) ignores the checksums of senders
    diagnosed as offloading, ``verify`` drops every bad-checksum segment from
    the state machine, ``ignore`` trusts them all.  ``close_wait_threshold``:
    seconds an endpoint may sit in CLOSE-WAIT before it counts as a leak.
    ``keep_connections=True`` keeps every connection's full row in
    ``Report.connections`` (a Connections table); by default the report keeps
    only the few columns it needs per connection (about 170 bytes each).
    ``max_connections`` bounds the connections the tracker holds at once
    (the least recently active are finished early, counted in
    ``connections.evicted``).
    SYN floods are looked for per server address:port in windows of
    ``flood_window`` seconds holding at least ``flood_min_syns`` SYNs.
    """
    acc = _Analysis(checksums=checksums, idle_timeout=idle_timeout,
                    close_wait_threshold=close_wait_threshold, flood_window=flood_window,
                    flood_min_syns=flood_min_syns, keep_connections=keep_connections,
                    max_connections=max_connections)
    if isinstance(path_or_segments, Segments):
        acc.add(path_or_segments)
        return acc.finish([])
    from .parse import open as open_capture
    paths = ([str(p) for p in path_or_segments]
             if isinstance(path_or_segments, (list, tuple)) else [str(path_or_segments)])
    from .progress import Progress
    for path in paths:
        with open_capture(path, **reader_kwargs) as cap:
            bar = Progress(progress, getattr(cap.reader, "size", None), path)
            for seg in cap.batches():
                acc.add(seg)
                bar.update(getattr(cap.reader, "raw_bytes_read", 0))
            bar.close()
    return acc.finish(paths)


def connections_of(path: str, *, checksums: str = "auto", idle_timeout: float = 300.0,
                   max_connections: int = None):
    """Every connection of a capture (streamed), as one Connections table."""
    return analyze(path, checksums=checksums, idle_timeout=idle_timeout,
                   keep_connections=True, max_connections=max_connections).connections
