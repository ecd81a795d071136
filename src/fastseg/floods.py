"""SYN records: SYN-flood suspects per listener and the SYN retransmission
backoff, from one record per SYN (its time, connection, listener and source)
and what each connection's handshake came to."""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from . import _consts
from .aggregates import Chunks, KeyTable, distinct, mix64, row_hash
from .segments import format_addresses

__all__ = ["SynRecords"]

# conn_flags bits
COMPLETED, SYNACK_SEEN, SYN_RECORDED = 1, 2, 4


class SynRecords:
    """One record per SYN (without ACK) of a capture, plus a few flags per
    connection id; mergeable (``merge``)."""

    def __init__(self, window: float = 1.0, min_syns: int = 50,
                 max_completed_ratio: float = 0.5):
        self.window = window
        self.min_syns = min_syns
        self.max_completed_ratio = max_completed_ratio
        # by connection id: COMPLETED, SYNACK_SEEN, SYN_RECORDED
        self.conn_flags = np.zeros(1024, np.uint8)
        # its listener's index, whether it is its connection's first
        self.syns = Chunks(ts=np.float64, conn=np.int64, listener=np.int32, source=np.uint64,
                           first=np.bool_)
        self.listeners = KeyTable(dst=(np.uint8, (16,)), dport=(np.uint16, ()),
                                  ver=(np.uint8, ()))
        self.cookie_requests = 0

    def add(self, seg) -> None:
        """The SYNs of a tracked batch (``seg["conn"]`` set)."""
        flags = seg["flags"]
        syn = np.flatnonzero(((flags & _consts.SYN) != 0) & ((flags & _consts.ACK) == 0))
        if len(syn) == 0:
            return
        dst = np.ascontiguousarray(seg["dst"][syn])
        dport = seg["dport"][syn]
        listener = self.listeners.index(mix64(row_hash(dst) ^ dport.astype(np.uint64)),
                                        dst=dst, dport=dport, ver=seg["ip_version"][syn])
        conn = seg["conn"][syn]
        self.syns.add(ts=seg["ts_ns"][syn] / 1e9, conn=conn, listener=listener,
                      source=row_hash(np.ascontiguousarray(seg["src"][syn])),
                      first=self._first_syns(conn))
        self.cookie_requests += int(np.count_nonzero(seg["tfo_cookie_len"][syn] == 0))

    def finished(self, ids: np.ndarray, completed: np.ndarray, synack_seen: np.ndarray) -> None:
        """What the handshakes of finished connections came to."""
        self._grow_flags(int(ids.max()) + 1)
        self.conn_flags[ids] = ((self.conn_flags[ids] & SYN_RECORDED)
                                | np.where(completed, COMPLETED, 0).astype(np.uint8)
                                | np.where(synack_seen, SYNACK_SEEN, 0).astype(np.uint8))

    def merge(self, other: "SynRecords", offset: int) -> None:
        """Add ``other``'s records, its connection ids renumbered from ``offset``
        (this part's next id)."""
        syns = other.syns
        remap = self.listeners.merge_index(other.listeners)
        syns._parts["conn"] = [np.where(p >= 0, p + offset, p) for p in syns._parts["conn"]]
        syns._parts["listener"] = [remap[p] for p in syns._parts["listener"]]
        self.syns.extend(syns)
        flags = np.zeros(offset + len(other.conn_flags), np.uint8)
        flags[:min(len(self.conn_flags), offset)] = self.conn_flags[:offset]
        flags[offset:] = other.conn_flags
        self.conn_flags = flags
        self.cookie_requests += other.cookie_requests

    def times(self) -> np.ndarray:
        """Every SYN's time (seconds), in capture order."""
        return self.syns.get("ts")

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

    def backoff(self) -> Dict[str, int]:
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

    def floods(self) -> List[dict]:
        """SYN-flood suspects per server address:port.

        A stray SYN is one whose connection never completed its handshake
        (retransmitted SYNs of a connection that did complete are not
        strays: a load test that retransmits is not a flood).  Every SYN
        closes a trailing window of ``window`` seconds; the window is
        suspect when it holds at least ``min_syns`` strays and at most
        ``max_completed_ratio`` of its SYNs led to a completed handshake
        (a completed handshake counts at its connection's first SYN).
        Overlapping suspect windows merge into one entry that runs from the
        first stray of its first window to the last stray of its last, with
        counts exact over that span."""
        ts = self.syns.get("ts")
        if not len(ts):
            return []
        k = max(int(self.min_syns), 1)
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
        w = self.window
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
                                 & (c_in <= self.max_completed_ratio * n_in))
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
                    "sources": int(len(distinct(src[inside]))),
                    "synacks_unanswered": int(unanswered[inside].sum()),
                })
        out.sort(key=lambda f: (f["start"], f["server"], f["port"]))
        return out
