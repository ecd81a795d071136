"""What-if: a capture's SYNs replayed against a model of a Linux listening socket.

``listen_queue(capture, backlog=..., syncookies=...)`` answers the question a
SYN-flood capture leaves open: with other settings (SYN cookies on or off, a
bigger backlog, fewer SYN-ACK retries), which legitimate clients would have
been served, delayed or locked out?

The capture gives, per listener (server address:port), every SYN with its
time, which sources were legitimate (they completed a handshake, retransmitted
the same ISN or sent data; a source that answers a SYN-ACK with RST, or never
does anything, is an attacker), each legitimate client's RTT and SYN retry
schedule.  The model (``fastseg._whatif``) follows Linux >= 4.4:
tcp_conn_request(), reqsk_timer_handler(), tcp_check_req(); the SYN-queue test
is ``qlen > backlog`` from Linux 6.14 on (``kernel="6.13"`` or older restores
``>=``).  Legitimate clients are replayed from their first SYN: each attempt
the model drops is followed by the client's next retry, and a client completes
one measured RTT after the model admits it, not when the capture says.

The cookies the model issues are real Linux cookies (:mod:`fastseg.syncookies`)
for the SYN's addresses, ports, ISN and MSS.
"""
from __future__ import annotations

import itertools
import math
import os
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from . import _consts
from . import _whatif
from . import syncookies as _syncookies
from .segments import Segments, format_addresses, parse_addresses

__all__ = ["listen_queue", "fit", "WhatIf", "Scenario", "VERDICTS", "OUTCOMES",
           "NSTAT_NAMES", "DEFAULT_BACKLOGS", "DEFAULT_SYNCOOKIES", "client_schedule",
           "estimate_wheel", "render", "render_fit", "write_syns", "plot"]

VERDICTS = _consts.SYN_VERDICT_NAMES
OUTCOMES = _consts.CLIENT_OUTCOME_NAMES
_V_NOT_SENT, _V_QUEUED, _V_COOKIE = _consts.SV_NOT_SENT, _consts.SV_QUEUED, _consts.SV_COOKIE
# order of the kernel's counters array (_whatif.pyx K_*)
NSTAT_NAMES = ("TcpExtListenOverflows", "TcpExtListenDrops", "TcpExtTCPReqQFullDrop",
               "TcpExtTCPReqQFullDoCookies", "TcpExtSyncookiesSent", "TcpExtSyncookiesRecv",
               "TcpExtTCPSynRetrans", "TcpPassiveOpens")
_N_COUNTERS = 10
SERIES_COLUMNS = ("syn_queue", "accept_queue", "syns", "drops", "cookies",
                  "legit_completed", "legit_syns")
DEFAULT_BACKLOGS = (128, 511, 4096)
DEFAULT_SYNCOOKIES = (0, 1, 2)
DEFAULT_MAX_SYN_BACKLOG = 4096   # max(128, ehash entries / 128) on a host with 512k ehash buckets
# tcp_syn_retries = 6: seven SYNs.  Linux >= 6.5 (tcp_syn_linear_timeouts = 4)
# sends its first retries a second apart, older stacks double from 1 s.
SYN_RETRIES = 6
_SCHEDULES = {
    "linux": (1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 120.0),
    "exponential": (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 120.0, 120.0, 120.0, 120.0, 120.0),
}
# a SYN counts as answered when a SYN-ACK for it follows before the client's
# next SYN and within this many seconds
_ANSWER_WINDOW = 3.0
_TIME_WAIT = 60.0                 # TCP_TIMEWAIT_LEN
_COOKIE_QUIET = 1.2               # s without a SYN-ACK retransmission that marks a cookie
_DELAYED = 0.001                  # added connect delay (s) that counts a served client as delayed
_FLAG_SYN, _FLAG_ACK, _FLAG_RST, _FLAG_FIN = (int(_consts.SYN), int(_consts.ACK),
                                              int(_consts.RST), int(_consts.FIN))
_FLAG_ECE, _FLAG_CWR = int(_consts.ECE), int(_consts.CWR)


# -- capture -> per-listener inputs ---------------------------------------------

def _mix(a, b):
    """A 64-bit hash of two uint64 columns (splitmix64 finaliser)."""
    with np.errstate(over="ignore"):
        x = np.asarray(a, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        x ^= np.asarray(b, dtype=np.uint64)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _endpoint_key(addr, port):
    halves = np.ascontiguousarray(addr).view(np.uint64).reshape(-1, 2)
    return _mix(_mix(halves[:, 0], halves[:, 1]), np.asarray(port, dtype=np.uint64))


def _last_before(marker_key, marker_t, query_key, query_t):
    """For each query, the index of the latest marker with the same key and a
    time <= the query's (-1 when none): one stable sort, no Python loop."""
    nm, nq = len(marker_key), len(query_key)
    if nm == 0 or nq == 0:
        return np.full(nq, -1, dtype=np.int64)
    keys = np.concatenate([marker_key, query_key])
    times = np.concatenate([marker_t, query_t])
    is_query = np.concatenate([np.zeros(nm, bool), np.ones(nq, bool)])
    # by key, then time, markers first at equal times (they come first and
    # both sorts are stable)
    order = np.argsort(times, kind="stable")
    order = order[np.argsort(keys[order], kind="stable")]
    pos = np.arange(len(order))
    marker_pos = np.where(~is_query[order], pos, -1)
    last = np.maximum.accumulate(marker_pos)
    q_sorted = is_query[order]
    found = last[q_sorted]
    qidx = order[q_sorted] - nm
    ok = found >= 0
    ok[ok] = keys[order[found[ok]]] == keys[order[pos[q_sorted][ok]]]
    out = np.full(nq, -1, dtype=np.int64)
    out[qidx[ok]] = order[found[ok]]
    return out


def _rank_in_runs(keys_sorted):
    """0, 1, 2, ... within each run of equal keys of a sorted array."""
    n = len(keys_sorted)
    if n == 0:
        return np.zeros(0, np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(keys_sorted)) + 1]
    return np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))


def _parse_server(server: str):
    host, _, port = server.rpartition(":")
    try:
        return _endpoint_key(parse_addresses([host.strip("[]")]), np.array([int(port)]))[0]
    except ValueError:
        raise ValueError(f"server must be ADDR:PORT (IPv6: [ADDR]:PORT), not {server!r}") from None


class _ListenerInput:
    """What the replay needs from the capture about one listener."""

    def __init__(self, **kw):
        self.__dict__.update(kw)


def _collect(seg: Segments, server: Optional[str]) -> List[_ListenerInput]:
    flags = np.asarray(seg["flags"]).astype(np.int64)
    ts = np.asarray(seg["ts_ns"]).astype(np.int64)
    if len(ts) == 0:
        return []
    t0_ns = int(ts.min())
    t = (ts - t0_ns) / 1e9
    syn = (flags & (_FLAG_SYN | _FLAG_ACK | _FLAG_RST)) == _FLAG_SYN
    synack = (flags & (_FLAG_SYN | _FLAG_ACK | _FLAG_RST)) == (_FLAG_SYN | _FLAG_ACK)
    other = (flags & _FLAG_SYN) == 0
    src, dst = np.asarray(seg["src"]), np.asarray(seg["dst"])
    sport, dport = np.asarray(seg["sport"]), np.asarray(seg["dport"])
    flow = np.asarray(seg["flow_key"]).astype(np.uint64)
    seq = np.asarray(seg["seq"]).astype(np.uint64)
    ack = np.asarray(seg["ack"]).astype(np.uint64)
    to_ep = _endpoint_key(dst, dport)
    from_ep = _endpoint_key(src, sport)

    syn_idx = np.flatnonzero(syn)
    if server is not None:
        syn_idx = syn_idx[to_ep[syn_idx] == _parse_server(server)]
    if len(syn_idx) == 0:
        return []
    one = np.uint64(1)
    mask32 = np.uint64(0xFFFFFFFF)
    # a SYN "group" is one client attempt: 4-tuple + ISN
    syn_group_key = _mix(flow[syn_idx], seq[syn_idx])
    groups, g_of_syn = np.unique(syn_group_key, return_inverse=True)
    n_groups = len(groups)

    def group_of(idx, isn):
        k = _mix(flow[idx], isn)
        pos = np.minimum(np.searchsorted(groups, k), n_groups - 1)
        return np.where(groups[pos] == k, pos, -1)

    # SYN-ACKs and client segments, each tied to a group by ISN + 1
    sa_idx = np.flatnonzero(synack)
    sa_g = group_of(sa_idx, (ack[sa_idx] - one) & mask32)
    sa_idx, sa_g = sa_idx[sa_g >= 0], sa_g[sa_g >= 0]
    cl_idx = np.flatnonzero(other)
    cl_g = group_of(cl_idx, (seq[cl_idx] - one) & mask32)
    keep = cl_g >= 0
    cl_idx, cl_g = cl_idx[keep], cl_g[keep]
    # the client's direction only: its segment goes to the SYN's destination
    syn_to_of_group = np.empty(n_groups, dtype=np.uint64)
    syn_to_of_group[g_of_syn] = to_ep[syn_idx]
    keep = to_ep[cl_idx] == syn_to_of_group[cl_g]
    cl_idx, cl_g = cl_idx[keep], cl_g[keep]
    keep = from_ep[sa_idx] == syn_to_of_group[sa_g]
    sa_idx, sa_g = sa_idx[keep], sa_g[keep]
    # RSTs from the server to SYNs: nothing listened there (then)
    rf_idx = np.flatnonzero(((flags & (_FLAG_RST | _FLAG_SYN)) == _FLAG_RST) & (ack > 0))
    rf_g = group_of(rf_idx, (ack[rf_idx] - one) & mask32)
    keep = rf_g >= 0
    keep[keep] = from_ep[rf_idx[keep]] == syn_to_of_group[rf_g[keep]]
    refused_group = np.zeros(n_groups, bool)
    refused_group[rf_g[keep]] = True

    cl_rst = (flags[cl_idx] & _FLAG_RST) != 0
    cl_ack = ((flags[cl_idx] & _FLAG_ACK) != 0) & ~cl_rst
    cl_data = cl_ack & (np.asarray(seg["payload_len"])[cl_idx] > 0)
    completed = np.zeros(n_groups, bool)
    completed[cl_g[cl_ack]] = True
    sent_data = np.zeros(n_groups, bool)
    sent_data[cl_g[cl_data]] = True
    reset_synack = np.zeros(n_groups, bool)
    reset_synack[cl_g[cl_rst]] = True
    syns_per_group = np.bincount(g_of_syn, minlength=n_groups)
    legit_group = (completed | (syns_per_group > 1) | sent_data) & ~(reset_synack & ~completed)

    # which captured SYN each SYN-ACK answers: the group's last SYN before it
    last_syn = _last_before(g_of_syn.astype(np.int64), t[syn_idx], sa_g.astype(np.int64), t[sa_idx])
    answered = np.zeros(len(syn_idx), bool)
    ok = last_syn >= 0
    close = ok.copy()
    close[ok] = (t[sa_idx[ok]] - t[syn_idx[last_syn[ok]]]) < _ANSWER_WINDOW
    answered[last_syn[close]] = True
    synacks_per_syn = np.bincount(last_syn[close], minlength=len(syn_idx))
    # timer-driven SYN-ACK retransmissions: the k-th SYN-ACK after one SYN
    # came 2 ** (k - 1) s after the previous (they show the timer wheel)
    order = np.lexsort((t[sa_idx[ok]], last_syn[ok]))
    owner = last_syn[ok][order]
    rank = _rank_in_runs(owner)
    rtx_syn = owner[rank >= 1]
    rtx_t = t[sa_idx[ok]][order][rank >= 1]
    rtx_k = rank[rank >= 1]

    # RTT: first completing ACK minus the last SYN-ACK before it
    first_ack = np.full(n_groups, np.inf)
    np.minimum.at(first_ack, cl_g[cl_ack], t[cl_idx[cl_ack]])
    has_ack = np.isfinite(first_ack)
    rtt = np.full(n_groups, np.nan)
    ga = np.flatnonzero(has_ack)
    prev_sa = _last_before(sa_g.astype(np.int64), t[sa_idx], ga.astype(np.int64), first_ack[ga])
    good = prev_sa >= 0
    rtt[ga[good]] = first_ack[ga[good]] - t[sa_idx[prev_sa[good]]]
    # an attack source's RST: delay after the SYN-ACK it answers
    rst_delay = np.full(n_groups, -1.0)
    first_rst = np.full(n_groups, np.inf)
    np.minimum.at(first_rst, cl_g[cl_rst], t[cl_idx[cl_rst]])
    gr = np.flatnonzero(np.isfinite(first_rst))
    prev_sa = _last_before(sa_g.astype(np.int64), t[sa_idx], gr.astype(np.int64), first_rst[gr])
    good = prev_sa >= 0
    rst_delay[gr[good]] = first_rst[gr[good]] - t[sa_idx[prev_sa[good]]]

    # TIME-WAIT: the server closed an earlier connection on the same 4-tuple
    # first, less than TCP_TIMEWAIT_LEN ago (its SYN then skips the limits)
    fin = (flags & _FLAG_FIN) != 0
    fin_idx = np.flatnonzero(fin)
    fin_from_server = np.isin(from_ep[fin_idx], np.unique(to_ep[syn_idx]))
    sf, cf = fin_idx[fin_from_server], fin_idx[~fin_from_server]
    fk = flow.view(np.int64)
    last_sf = _last_before(fk[sf], t[sf], fk[syn_idx], t[syn_idx])
    last_cf = _last_before(fk[cf], t[cf], fk[syn_idx], t[syn_idx])
    tw = np.zeros(len(syn_idx), np.uint8)
    has = last_sf >= 0
    t_sf = np.full(len(syn_idx), -np.inf)
    t_sf[has] = t[sf[last_sf[has]]]
    t_cf = np.full(len(syn_idx), np.inf)
    t_cf[last_cf >= 0] = t[cf[last_cf[last_cf >= 0]]]
    tw[has & (t[syn_idx] - t_sf < _TIME_WAIT) & (t_cf >= t_sf)] = 1

    # proven peers (tcp_peer_is_proven): the source address completed a
    # handshake before
    src_key = _mix(np.ascontiguousarray(src).view(np.uint64).reshape(-1, 2)[:, 0],
                   np.ascontiguousarray(src).view(np.uint64).reshape(-1, 2)[:, 1])
    done_idx = cl_idx[cl_ack]
    prev_done = _last_before(src_key[done_idx].view(np.int64), t[done_idx],
                             src_key[syn_idx].view(np.int64), t[syn_idx] - 1e-9)
    proven = (prev_done >= 0).astype(np.uint8)

    # real cookie SYN-ACKs (cookie_init_timestamp): the SYN had timestamps,
    # the SYN-ACK is never retransmitted, and its TSval's low 6 bits carry
    # wscale | sack << 4 | ecn << 5 -- plus the TSval offset, which is a keyed
    # hash of the address pair (secure_tcp_ts_off, 0 with tcp_timestamps=2).
    # So per address pair, (TSval - options) mod 64 is one value on every
    # cookie SYN-ACK and spread evenly on the others.
    tsval = np.asarray(seg["tsval"]).astype(np.int64)
    wscale = np.asarray(seg["wscale"]).astype(np.int64)
    sack_perm = np.asarray(seg["sack_perm"]).astype(bool)
    mss = np.asarray(seg["mss"]).astype(np.int64)
    ecn_syn = (flags & (_FLAG_ECE | _FLAG_CWR)) == (_FLAG_ECE | _FLAG_CWR)
    first_sa_of_syn = np.full(len(syn_idx), -1, np.int64)
    first_sa_of_syn[last_syn[close][::-1]] = sa_idx[close][::-1]
    with_ts = (first_sa_of_syn >= 0) & (tsval[syn_idx] >= 0)
    with_ts[with_ts] = tsval[first_sa_of_syn[with_ts]] >= 0
    sa_rows = first_sa_of_syn[with_ts]
    s_rows = syn_idx[with_ts]
    ws = np.where(wscale[s_rows] < 0, _syncookies.TS_OPT_WSCALE_MASK,
                  np.minimum(wscale[s_rows], _syncookies.TCP_MAX_WSCALE))
    enc = (ws | np.where(sack_perm[s_rows], _syncookies.TS_OPT_SACK, 0)
           | np.where(ecn_syn[s_rows], _syncookies.TS_OPT_ECN, 0))
    residue = (tsval[sa_rows] - enc) & ((1 << _syncookies.TSBITS) - 1)
    pair = _mix(_mix(*np.ascontiguousarray(src[s_rows]).view(np.uint64).reshape(-1, 2).T),
                _mix(*np.ascontiguousarray(dst[s_rows]).view(np.uint64).reshape(-1, 2).T))
    pairs, pair_of = np.unique(pair, return_inverse=True)
    hist = np.bincount(pair_of * 64 + residue, minlength=len(pairs) * 64).reshape(-1, 64)
    mode = hist.argmax(axis=1)
    mode_n = hist.max(axis=1)
    per_pair = hist.sum(axis=1)
    strong = mode_n >= np.maximum(6, 4 * per_pair / 64.0 + 3)
    single = synacks_per_syn[with_ts] == 1
    ts_cookie = np.zeros(len(syn_idx), bool)
    ts_cookie[np.flatnonzero(with_ts)[single & strong[pair_of] & (residue == mode[pair_of])]] = True
    # without timestamps (or with per-connection TSval offsets, Linux >= 6.x):
    # a SYN-ACK to a source that never answers, not retransmitted although
    # the capture runs on past the request timer, kept no request: a cookie
    silent_cookie = ((synacks_per_syn == 1) & (first_sa_of_syn >= 0) & ~completed[g_of_syn]
                     & ~reset_synack[g_of_syn])
    silent_cookie &= t[np.maximum(first_sa_of_syn, 0)] + _COOKIE_QUIET < t.max()
    # and a SYN-ACK that was retransmitted came from a request socket
    silent_request = np.zeros(len(syn_idx), bool)
    silent_request[rtx_syn] = True
    silent_request &= ~completed[g_of_syn] & ~reset_synack[g_of_syn]

    listener_of_syn = to_ep[syn_idx]
    out = []
    names, first_of, lis = np.unique(listener_of_syn, return_index=True, return_inverse=True)
    by_listener = np.lexsort((t[syn_idx], lis))
    bounds = np.searchsorted(lis[by_listener], np.arange(len(names) + 1))
    rtx_lis = lis[rtx_syn]
    rtx_order = np.argsort(rtx_lis, kind="stable")
    rtx_bounds = np.searchsorted(rtx_lis[rtx_order], np.arange(len(names) + 1))
    ip_version = np.asarray(seg["ip_version"])
    frame = np.asarray(seg["frame"]).astype(np.int64)
    for li in np.argsort(-np.diff(bounds), kind="stable"):
        rows = by_listener[bounds[li]:bounds[li + 1]]
        if not answered[rows].any() and refused_group[g_of_syn[rows]].any():
            continue    # a closed port: no listener to model
        mine = rtx_order[rtx_bounds[li]:rtx_bounds[li + 1]]
        at = syn_idx[rows]
        first_row = syn_idx[first_of[li]:first_of[li] + 1]
        server_text = _endpoint_text(dst[first_row], ip_version[first_row], dport[first_row])[0]
        out.append(_ListenerInput(
            server=server_text, t0_ns=t0_ns, end=float(t.max()), rtx_t=rtx_t[mine], rtx_k=rtx_k[mine],
            rows=at, t=t[at], group=g_of_syn[rows], legit=legit_group[g_of_syn[rows]],
            answered=answered[rows], ts_cookie=ts_cookie[rows], silent_cookie=silent_cookie[rows],
            silent_request=silent_request[rows], with_ts=with_ts[rows], tw=tw[rows], proven=proven[rows],
            rtt=rtt, rst_delay=rst_delay, completed=completed, sent_data=sent_data,
            mss=mss[at], wscale=wscale[at], sack=sack_perm[at], ts=tsval[at] >= 0, ecn=ecn_syn[at],
            src=src[at], dst=dst[at], sport=sport[at], dport=dport[at],
            isn=seq[at].astype(np.uint32), ip_version=ip_version[at], frame=frame[at]))
    return out


# -- the timer wheel -------------------------------------------------------------

_HZ_CANDIDATES = (1000, 250, 300, 100)


def _wheel_level(delta_jiffies):
    lvl = np.zeros(np.shape(delta_jiffies), np.int64)
    for n in range(1, 9):
        lvl += np.asarray(delta_jiffies) >= (63 << (3 * (n - 1)))
    return lvl


def _concentration(t, grid):
    angle = 2 * np.pi * np.mod(t, grid) / grid
    c, s = np.cos(angle).mean(), np.sin(angle).mean()
    return float(np.hypot(c, s)), float(np.mod(np.arctan2(s, c) / (2 * np.pi) * grid, grid))


def estimate_wheel(rtx_t, rtx_k, hz="auto"):
    """(tick, phase) of the listener's timer wheel from its timer-driven
    SYN-ACK retransmissions (times in s, retransmission number k >= 1): each
    fires on a multiple of its level's granularity (8 ** level jiffies).
    ``hz="auto"`` tries 1000, 250, 300 and 100 Hz and keeps the one under
    which every level's retransmissions sit on its grid; ``0``: exact timers,
    (0, 0)."""
    rtx_t, rtx_k = np.asarray(rtx_t, float), np.asarray(rtx_k, np.int64)
    if hz == 0 or hz is None:
        return 0.0, 0.0
    candidates = _HZ_CANDIDATES if hz == "auto" else (int(hz),)
    best = None
    for cand in candidates:
        tick = 1.0 / cand
        delta = (2.0 ** (np.minimum(rtx_k, 8) - 1) * cand).round().astype(np.int64)
        lvl = _wheel_level(delta)
        score, phase = None, None
        for level in np.unique(lvl):
            at = lvl == level
            if at.sum() < 3:
                continue
            r, p = _concentration(rtx_t[at], (8 ** level) * tick)
            score = r if score is None else min(score, r)
            # a coarser level's grid is a subset of a finer one's: the
            # coarsest level seen places the phase
            phase = p
        if score is not None and (best is None or score > best[0] + 0.02):
            best = (score, tick, phase)
    if best is None or best[0] < 0.8:
        return (0.0, 0.0) if hz == "auto" else (1.0 / int(hz), 0.0)
    return best[1], best[2]


# -- client retry schedules ------------------------------------------------------

def client_schedule(kind: str = "linux", retries: int = SYN_RETRIES) -> np.ndarray:
    """Offsets (s) of a client's SYNs from its first: ``"linux"`` (>= 6.5,
    tcp_syn_linear_timeouts: 1 s apart, then doubling) or ``"exponential"``
    (doubling from 1 s), ``retries`` retransmissions."""
    steps = _SCHEDULES[kind]
    steps = steps + (120.0,) * max(0, retries - len(steps))
    return np.concatenate([[0.0], np.cumsum(steps[:retries])])


def _attempts(inp: _ListenerInput, client_retries, give_up):
    """Per legitimate client (its first group in the capture): the times of
    its SYNs in the replay; observed SYNs keep their frames."""
    legit_rows = np.flatnonzero(inp.legit)
    groups, first_pos, inv = np.unique(inp.group[legit_rows], return_index=True,
                                       return_inverse=True)
    n_client = len(groups)
    rank = np.zeros(len(legit_rows), np.int64)
    order = np.lexsort((inp.t[legit_rows], inv))
    rank[order] = _rank_in_runs(inv[order])
    n_obs = np.bincount(inv, minlength=n_client)
    first_t = np.full(n_client, np.inf)
    np.minimum.at(first_t, inv, inp.t[legit_rows])
    if isinstance(client_retries, str) and client_retries not in ("observed", "linux", "exponential"):
        raise ValueError("client_retries: 'observed', 'linux', 'exponential' or offsets, "
                         f"not {client_retries!r}")
    n_max = max(SYN_RETRIES + 1, int(n_obs.max()) if n_client else 0)
    if not isinstance(client_retries, str):
        offs = np.asarray(list(client_retries), dtype=float)
        if offs.ndim != 1 or len(offs) == 0 or np.any(np.diff(offs) <= 0) or offs[0] != 0:
            raise ValueError("client_retries offsets must start at 0 and increase")
        base = np.broadcast_to(offs, (n_client, len(offs))).copy()
        n_max = len(offs)
        observed = np.zeros((n_client, n_max), bool)
        times = first_t[:, None] + base
    else:
        kind = "linux" if client_retries == "observed" else client_retries
        sched = client_schedule(kind, n_max + 1)[:n_max]
        times = first_t[:, None] + np.broadcast_to(sched, (n_client, n_max))
        observed = np.zeros((n_client, n_max), bool)
        if client_retries == "observed" and len(legit_rows):
            obs = np.full((n_client, n_max), np.nan)
            obs[inv, rank] = inp.t[legit_rows]
            observed = np.isfinite(obs)
            # after the last observed SYN, continue the schedule the client
            # followed: a second interval like the first means linear retries
            d1 = obs[:, 1] - obs[:, 0]
            d2 = obs[:, 2] - obs[:, 1] if n_max > 2 else np.full(n_client, np.nan)
            exp_like = (d2 > 1.5 * d1) | (np.isnan(d2) & (d1 > 1.5))
            scale = np.where(np.isfinite(d1), d1, 1.0)
            doubling = client_schedule("exponential", n_max + 1)[:n_max]
            base = np.where(exp_like[:, None], doubling[None, :], sched[None, :]) * scale[:, None]
            last = np.maximum(n_obs - 1, 0)
            anchor_t = obs[np.arange(n_client), last]
            anchor_off = base[np.arange(n_client), last]
            times = np.where(observed, obs, anchor_t[:, None] + base - anchor_off[:, None])
    if give_up is not None:
        keep = times - first_t[:, None] < float(give_up)
    else:
        keep = np.ones_like(times, bool)
    keep[:, 0] = True
    keep |= observed
    # captured SYNs stand for the replay's attempts of the same rank; with a
    # schedule other than the observed one only the first SYN keeps its place
    frame_of = np.zeros((n_client, n_max), np.int64)
    row_of = np.full((n_client, n_max), -1, np.int64)
    sel = rank < (n_max if client_retries == "observed" else 1)
    row_of[inv[sel], rank[sel]] = legit_rows[sel]
    frame_of[inv[sel], rank[sel]] = inp.frame[legit_rows[sel]]
    cl, at = np.nonzero(keep)
    last_t = np.where(keep, times, -np.inf).max(axis=1)
    gap = np.diff(times, axis=1)[:, -1] if n_max > 1 else np.ones(n_client)
    return dict(n_client=n_client, first_t=first_t, client_group=groups,
                client_row=legit_rows[first_pos] if n_client else np.zeros(0, np.int64),
                att_client=cl.astype(np.int32), att_t=times[cl, at], att_frame=frame_of[cl, at],
                att_row=row_of[cl, at], give_up_t=last_t + gap * 2)


# -- results ---------------------------------------------------------------------

def _pct(values, q):
    return float(np.percentile(values, q)) if len(values) else None


class Scenario:
    """One listener under one setting: ``settings``, ``totals`` (nstat names),
    ``legit`` (served / delayed / locked out, added delay percentiles),
    ``connections`` and ``syns`` (columns), ``series`` (per time bin)."""

    def __init__(self, server, settings, totals, connections, syns, series, bin_width, t0_ns,
                 agreement=None):
        self.server = server
        self.settings = settings
        self.totals = totals
        self.connections = connections
        self.syns = syns
        self.series = series
        self.bin_width = bin_width
        self.t0_ns = t0_ns
        self.agreement = agreement

    @property
    def legit(self) -> dict:
        out = self.connections["outcome"]
        delay = self.connections["added_delay"]
        served = np.isin(out, ("ok_queue", "ok_cookie", "ok_after_retries"))
        delayed = served & (delay > _DELAYED)
        return {
            "clients": int(len(out)),
            "served": int(served.sum()),
            "delayed": int(delayed.sum()),
            "locked_out": int((~served).sum()),
            "by_outcome": {o: int((out == o).sum()) for o in OUTCOMES[1:]},
            "added_delay": {"p50": _pct(delay[served], 50), "p99": _pct(delay[served], 99),
                            "max": float(delay[served].max()) if served.any() else None},
        }

    def to_dict(self, connections: bool = True, series: bool = True, syns: bool = False) -> dict:
        d = {"server": self.server, "settings": dict(self.settings), "totals": dict(self.totals),
             "legit": self.legit, "syns": int((self.syns["verdict"] != "not_sent").sum())}
        if self.agreement is not None:
            d["agreement"] = self.agreement
        if connections:
            c = self.connections
            d["connections"] = [
                {"client": c["client"][i], "first_syn": float(c["first_syn"][i]),
                 "outcome": c["outcome"][i], "attempts": int(c["attempts"][i]),
                 "added_delay": (float(c["added_delay"][i]) if np.isfinite(c["added_delay"][i])
                                 else None),
                 "rtt": float(c["rtt"][i]), "cookie_mss": int(c["cookie_mss"][i]),
                 "cookie_loses": c["cookie_loses"][i]}
                for i in range(len(c["outcome"]))]
        if syns:
            d["syn_rows"] = _syn_rows(self)
        if series:
            d["series"] = {"bin_width": self.bin_width,
                           **{k: v.tolist() for k, v in self.series.items()}}
        return d


class WhatIf:
    """Every scenario of one call: ``scenarios`` (a list of :class:`Scenario`,
    listener-major), ``real`` (what the capture shows per listener: SYNs
    answered, cookie SYN-ACKs recognised)."""

    def __init__(self, scenarios: List[Scenario], real: List[dict]):
        self.scenarios = scenarios
        self.real = real

    def __iter__(self):
        return iter(self.scenarios)

    def __len__(self):
        return len(self.scenarios)

    def __getitem__(self, i) -> Scenario:
        return self.scenarios[i]

    def find(self, **settings) -> Scenario:
        """The first scenario whose settings match the keywords."""
        for s in self.scenarios:
            if all(s.settings.get(k) == v for k, v in settings.items()):
                return s
        raise KeyError(settings)

    def to_dict(self, connections: bool = False) -> dict:
        return {"real": self.real,
                "scenarios": [s.to_dict(connections=connections) for s in self.scenarios]}


# -- the replay ------------------------------------------------------------------

def _kernel_at_least(kernel, version):
    if kernel is None:
        return True
    parts = [int(p) for p in str(kernel).split("-")[0].split(".")[:2] if p.isdigit()]
    return tuple(parts + [0] * (2 - len(parts))) >= version


def _accept_interval(accept) -> float:
    if accept in ("instant", None):
        return 0.0
    if accept == "never":
        return math.inf
    rate = float(accept)
    if not rate > 0:
        raise ValueError(f"accept: 'instant', 'never' or accepts per second > 0, not {accept!r}")
    return 1.0 / rate


def _as_list(value) -> list:
    if isinstance(value, (list, tuple, np.ndarray, range)):
        return list(value)
    return [value]


def _segments(path_or_segments) -> Segments:
    if isinstance(path_or_segments, Segments):
        return path_or_segments
    from .parse import read_segments
    return read_segments(os.fspath(path_or_segments), keep_bytes=False)


_LOSES = np.array([",".join(name for bit, name in enumerate(("mss", "wscale", "sack", "ecn"))
                            if code >> bit & 1) for code in range(16)], dtype=object)


def _cookie_columns(inp, rows, secret, count_t):
    """Per SYN row: the MSS a cookie would carry, the cookie (the server ISN
    Linux would send, keyed by ``secret``, minute counter from ``count_t``
    seconds), and the options it loses (names joined by commas)."""
    if len(rows) == 0:
        return np.zeros(0, np.uint16), np.zeros(0, np.uint32), np.zeros(0, object)
    announced = np.where(inp.mss[rows] < 0, _syncookies.TCP_MSS_DEFAULT, inp.mss[rows])
    cookies, mss = _syncookies.encode(
        secret, inp.src[rows], inp.dst[rows], inp.sport[rows], inp.dport[rows],
        inp.isn[rows], announced, _syncookies.count_from_time(count_t),
        ip_version=inp.ip_version[rows])
    # without timestamps the cookie cannot carry wscale, SACK or ECN
    no_ts = ~inp.ts[rows]
    code = ((mss < announced).astype(np.int64)
            | ((no_ts & (inp.wscale[rows] >= 0)) << 1)
            | ((no_ts & inp.sack[rows]) << 2)
            | ((no_ts & inp.ecn[rows]) << 3))
    return mss, cookies, _LOSES[code]


def _endpoint_text(addr, ip_version, port):
    text = format_addresses(addr, ip_version).astype(str)
    text = np.where(ip_version == 6, np.char.add(np.char.add("[", text), "]"), text)
    return np.char.add(np.char.add(text, ":"), port.astype(str)).astype(object)


class _Stream:
    """One listener's replay input, the same for every scenario: the SYN
    events in time order (attack SYNs as captured, legitimate clients'
    attempts from their schedules) and the per-client columns."""

    def __init__(self, inp, att, secret, default_rtt, data_first_default, bin_width):
        a_rows = np.flatnonzero(~inp.legit)
        t = np.concatenate([inp.t[a_rows], att["att_t"]])
        client = np.concatenate([np.full(len(a_rows), -1, np.int32), att["att_client"]])
        row = np.concatenate([a_rows, att["att_row"]])
        order = np.argsort(t, kind="stable")
        self.t, self.client = np.ascontiguousarray(t[order]), np.ascontiguousarray(client[order])
        row = row[order]
        has_row = row >= 0
        safe = np.where(has_row, row, 0)
        self.tw = np.where(has_row, inp.tw[safe], 0).astype(np.uint8)
        self.proven = np.where(has_row, inp.proven[safe], 0).astype(np.uint8)
        self.rst = np.where(self.client < 0, inp.rst_delay[inp.group[safe]], -1.0)
        self.syns = {"frame": np.where(has_row, inp.frame[safe], 0), "time": self.t,
                     "legitimate": self.client >= 0,
                     "real_answered": has_row & inp.answered[safe],
                     "real_cookie": has_row & (inp.silent_cookie[safe] | inp.ts_cookie[safe]),
                     "real_request": has_row & inp.silent_request[safe]}
        cgroup = att["client_group"]
        rtt = inp.rtt[cgroup]
        self.rtt = np.where(np.isfinite(rtt) & (rtt >= 0), rtt, default_rtt).astype(np.float64)
        self.data_first = np.where(inp.completed[cgroup], inp.sent_data[cgroup],
                                   data_first_default).astype(np.uint8)
        self.first_t = np.ascontiguousarray(att["first_t"], dtype=np.float64)
        self.give_up_t = np.ascontiguousarray(att["give_up_t"], dtype=np.float64)
        crow = att["client_row"]
        cookie_mss, _, loses = _cookie_columns(inp, crow, secret, inp.t0_ns / 1e9 + self.first_t)
        # the cookie each SYN would get (a retry the capture lacks: its
        # client's first SYN, at the retry's time)
        fields = np.where(has_row, row, crow[np.maximum(self.client, 0)] if len(crow) else 0)
        _, self.cookie_isn, _ = _cookie_columns(inp, fields, secret, inp.t0_ns / 1e9 + self.t)
        self.clients = {"client": _endpoint_text(inp.src[crow], inp.ip_version[crow],
                                                 inp.sport[crow]),
                        "first_syn": self.first_t, "rtt": self.rtt,
                        "cookie_mss": cookie_mss.astype(np.int64), "cookie_loses": loses}
        span = (float(self.t.max()) if len(self.t) else 0.0) + 2.0
        self.bin_width = bin_width or max(span / 200.0, 0.01)
        self.n_bins = int(math.ceil(span / self.bin_width)) + 1

    def replay(self, *, backlog, syncookies, synack_retries, max_syn_backlog, abort_on_overflow,
               accept, full_gt, until, wheel):
        n_client = len(self.rtt)
        series = np.zeros((self.n_bins, len(SERIES_COLUMNS)), np.int32)
        verdict = np.zeros(len(self.t), np.uint8)
        outcome = np.zeros(n_client, np.uint8)
        done = np.zeros(n_client, np.float64)
        attempts = np.zeros(n_client, np.int32)
        synack_rtx = np.zeros(n_client, np.int32)
        counters = np.zeros(_N_COUNTERS, np.int64)
        rc = _whatif.replay(
            self.t, self.client, self.tw, self.rst, self.proven,
            self.rtt, self.data_first, self.first_t, self.give_up_t,
            int(backlog), int(syncookies), int(synack_retries), int(max_syn_backlog),
            bool(abort_on_overflow), bool(full_gt), _accept_interval(accept),
            0.0, self.bin_width, math.inf if until is None else float(until), wheel[0], wheel[1],
            verdict, outcome, done, attempts, synack_rtx, counters, series)
        if rc != 0:
            raise MemoryError("whatif: out of memory in the replay")
        syns = dict(self.syns, verdict=np.array(VERDICTS, dtype=object)[verdict],
                    answered=(verdict == _V_QUEUED) | (verdict == _V_COOKIE),
                    cookie=verdict == _V_COOKIE,
                    cookie_isn=np.where(verdict == _V_COOKIE, self.cookie_isn, 0).astype(np.uint32))
        served = np.isin(outcome, (_consts.CO_OK_QUEUE, _consts.CO_OK_COOKIE,
                                   _consts.CO_OK_AFTER_RETRIES))
        added = np.full(n_client, np.nan)
        added[served] = np.maximum(done[served] - (self.first_t[served] + self.rtt[served]), 0.0)
        connections = dict(self.clients, outcome=np.array(OUTCOMES, dtype=object)[outcome],
                           attempts=attempts, added_delay=added, synack_retransmits=synack_rtx)
        totals = {name: int(counters[i]) for i, name in enumerate(NSTAT_NAMES)}
        totals["expired_requests"] = int(counters[8])
        totals["events"] = int(counters[9])
        ser = {name: series[:, j] for j, name in enumerate(SERIES_COLUMNS)}
        ser["t"] = np.arange(self.n_bins) * self.bin_width
        return syns, connections, totals, ser, _agreement(syns, verdict)


def _agreement(syns, verdict) -> dict:
    """How the replay's verdicts match the capture's on the SYNs both sent:
    answered / dropped, and where the capture tells them apart, answered by a
    cookie (never retransmitted to a silent source) / by a request socket
    (retransmitted)."""
    sent = verdict != _V_NOT_SENT
    verdict = verdict[sent]
    classes = (("answered", syns["real_answered"][sent], syns["answered"][sent]),
               ("dropped", ~syns["real_answered"][sent], ~syns["answered"][sent]),
               ("cookie", syns["real_cookie"][sent], verdict == _V_COOKIE),
               ("request", syns["real_request"][sent], verdict == _V_QUEUED))
    out = {}
    for name, real, model in classes:
        n = int(real.sum())
        m = int((real & model).sum())
        out[name] = {"real": n, "model_agrees": m, "rate": (m / n) if n else None}
    out["not_sent"] = int((~sent & (syns["frame"] > 0)).sum())
    return out


def listen_queue(path_or_segments, *, backlog, somaxconn: int = 4096, syncookies=1,
                 synack_retries: int = 5, max_syn_backlog: Optional[int] = None,
                 abort_on_overflow: bool = False, client_retries="observed",
                 give_up: Optional[float] = None, accept="instant",
                 server: Optional[str] = None, kernel: Optional[str] = None,
                 secret: Optional[bytes] = None, bin_width: Optional[float] = None,
                 until: Union[None, float, str] = None, hz="auto") -> WhatIf:
    """Replay a capture's SYNs against a Linux listening socket.

    ``backlog`` and ``syncookies`` (0, 1, 2) may be lists: every combination
    is a scenario (the grid).  The listener's limit is ``min(backlog,
    somaxconn)``; ``max_syn_backlog`` (None = 4096) only matters with
    syncookies off.  ``accept``: ``"instant"`` (the application accepts at
    once), ``"never"``, or accepts per second.  ``client_retries``:
    ``"observed"`` (each client's own SYN times, then its schedule),
    ``"linux"``, ``"exponential"`` or a list of offsets; ``give_up``: seconds
    after its first SYN when a client stops.  ``server`` ("addr:port") picks
    one listener (default: every listener, most SYNs first).  ``kernel``:
    "6.13" or older uses the old ``>=`` SYN-queue test.  ``secret``: the 32
    bytes the cookies are computed with (default: random).  ``until``:
    seconds after the capture's first packet when the replay stops (``"end"``:
    the capture's last packet, to compare with counters read then); by
    default it runs until every request and client has finished.  ``hz``:
    the listener's timer wheel (request timers fire on its granularity, not
    to the microsecond): ``"auto"`` estimates HZ and the wheel's phase from
    the capture's SYN-ACK retransmissions, ``0`` makes timers exact.
    """
    seg = _segments(path_or_segments)
    inputs = _collect(seg, server)
    if server is not None and not inputs:
        raise ValueError(f"no SYNs to {server} in the capture")
    secret = os.urandom(32) if secret is None else secret
    full_gt = _kernel_at_least(kernel, (6, 14))
    backlogs = [int(b) for b in _as_list(backlog)]
    cookie_modes = [int(c) for c in _as_list(syncookies)]
    for c in cookie_modes:
        if c not in (0, 1, 2):
            raise ValueError(f"syncookies must be 0, 1 or 2, not {c}")
    for b in backlogs:
        if b < 0:
            raise ValueError(f"backlog must be >= 0, not {b}")
    if synack_retries < 0 or synack_retries > 63:
        raise ValueError("synack_retries must be 0..63")
    _accept_interval(accept)
    msb = DEFAULT_MAX_SYN_BACKLOG if max_syn_backlog is None else int(max_syn_backlog)
    scenarios, real = [], []
    for inp in inputs:
        att = _attempts(inp, client_retries, give_up)
        rtts = inp.rtt[np.isfinite(inp.rtt)]
        default_rtt = float(np.median(rtts)) if len(rtts) else 0.05
        data_first_default = (bool(inp.sent_data[inp.completed].mean() >= 0.5)
                              if inp.completed.any() else True)
        stream = _Stream(inp, att, secret, default_rtt, data_first_default, bin_width)
        wheel = estimate_wheel(inp.rtx_t, inp.rtx_k, hz)
        real.append(_real_summary(inp, wheel))
        for c, b in itertools.product(cookie_modes, backlogs):
            eff = min(b, int(somaxconn))
            syns, conns, totals, ser, agreement = stream.replay(
                backlog=eff, syncookies=c, synack_retries=synack_retries, max_syn_backlog=msb,
                abort_on_overflow=abort_on_overflow, accept=accept, full_gt=full_gt,
                until=(inp.end if until == "end" else until), wheel=wheel)
            settings = {"backlog": b, "somaxconn": int(somaxconn), "effective_backlog": eff,
                        "syncookies": c, "synack_retries": int(synack_retries),
                        "max_syn_backlog": msb, "abort_on_overflow": bool(abort_on_overflow),
                        "accept": accept,
                        "client_retries": (client_retries if isinstance(client_retries, str)
                                           else "custom"),
                        "give_up": give_up, "syn_queue_test": ">" if full_gt else ">=",
                        "hz": round(1.0 / wheel[0]) if wheel[0] else 0}
            scenarios.append(Scenario(inp.server, settings, totals, conns, syns, ser,
                                      stream.bin_width, inp.t0_ns, agreement=agreement))
    return WhatIf(scenarios, real)


def _real_summary(inp, wheel) -> dict:
    legit = inp.legit
    n_ts = int(inp.with_ts.sum())
    n_ts_cookie = int(inp.ts_cookie.sum())
    n_silent = int(inp.silent_cookie.sum())
    return {"server": inp.server, "syns": int(len(inp.t)), "legit_syns": int(legit.sum()),
            "attack_syns": int((~legit).sum()), "answered": int(inp.answered.sum()),
            "synack_retransmits": int(len(inp.rtx_t)),
            "timer_hz": round(1.0 / wheel[0]) if wheel[0] else None,
            "legit_answered": int((inp.answered & legit).sum()),
            "cookie_synacks": {"with_timestamps": n_ts, "tsval_low_bits": n_ts_cookie,
                               "never_retransmitted_to_silent_sources": n_silent,
                               "cookies_seen": bool(n_ts_cookie or n_silent >= 8)}}


def fit(path_or_segments, *, server: Optional[str] = None, backlogs: Optional[Sequence[int]] = None,
        syncookies: Sequence[int] = (0, 1), **kwargs) -> dict:
    """Estimate the listener's backlog (and whether SYN cookies were on) from
    which SYNs the real server answered: the settings whose replay agrees best
    (mean of the agreement rates of each class: answered, dropped, and where
    the capture shows them, answered by cookie or by request socket).  Returns the best
    settings, the range of backlogs that tie, and the agreement."""
    if backlogs is None:
        # every backlog to 256, then 2 ** (k / 4) to 4096
        backlogs = sorted(set(range(1, 257)) | {int(round(2 ** (x / 4))) for x in range(32, 49)})
    res = listen_queue(path_or_segments, backlog=list(backlogs), syncookies=list(syncookies),
                       server=server, **kwargs)
    by_server: Dict[str, list] = {}
    for s in res.scenarios:
        a = s.agreement
        rates = [a[k]["rate"] for k in ("answered", "dropped", "cookie", "request")
                 if a[k]["rate"] is not None]
        score = sum(rates) / len(rates) if rates else 0.0
        by_server.setdefault(s.server, []).append((score, s))
    out = []
    for srv, items in by_server.items():
        best = max(score for score, _ in items)
        tied = [s for score, s in items if score >= best - 1e-12]
        cookies = sorted({s.settings["syncookies"] for s in tied})
        blogs = sorted({s.settings["backlog"] for s in tied})
        pick = tied[len(tied) // 2] if len(cookies) == 1 else tied[0]
        out.append({"server": srv, "backlog": pick.settings["backlog"],
                    "backlog_range": [blogs[0], blogs[-1]], "syncookies": cookies,
                    "score": best, "agreement": pick.agreement})
    return {"listeners": out, "real": res.real}


# -- faces -----------------------------------------------------------------------

def render(result: WhatIf) -> str:
    """One table per listener: a row per scenario."""
    lines = []
    by_server: Dict[str, List[Scenario]] = {}
    for s in result.scenarios:
        by_server.setdefault(s.server, []).append(s)
    for real in result.real:
        srv = real["server"]
        seen = real["cookie_synacks"]
        lines.append(f"{srv}: {real['syns']} SYNs ({real['legit_syns']} from "
                     f"legitimate clients, {real['attack_syns']} attack), "
                     f"{real['answered']} answered by the real server"
                     + (f"; SYN-ACKs that look like SYN cookies: {seen['tsval_low_bits']} by "
                        f"their TSval, {seen['never_retransmitted_to_silent_sources']} never "
                        f"retransmitted to silent sources"
                        if seen["cookies_seen"] else ""))
        head = ("cookies", "backlog", "served", "delayed", "locked out", "p50 delay", "p99 delay",
                "ListenDrops", "ReqQFullDrop", "DoCookies", "CookiesSent", "Overflows")
        rows = []
        for s in by_server.get(srv, []):
            lg, tot = s.legit, s.totals
            p50, p99 = lg["added_delay"]["p50"], lg["added_delay"]["p99"]
            rows.append((str(s.settings["syncookies"]), str(s.settings["backlog"]),
                         f"{lg['served']}/{lg['clients']}", str(lg["delayed"]), str(lg["locked_out"]),
                         "-" if p50 is None else f"{p50:.3f}s", "-" if p99 is None else f"{p99:.3f}s",
                         str(tot["TcpExtListenDrops"]), str(tot["TcpExtTCPReqQFullDrop"]),
                         str(tot["TcpExtTCPReqQFullDoCookies"]), str(tot["TcpExtSyncookiesSent"]),
                         str(tot["TcpExtListenOverflows"])))
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
        lines.append("  ".join(h.rjust(w) for h, w in zip(head, widths)))
        lines.extend("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows)
        lines.append("")
    return "\n".join(lines)


def render_fit(found: dict) -> str:
    lines = []
    for f in found["listeners"]:
        a = f["agreement"]
        rate = lambda k: "-" if a[k]["rate"] is None else f"{100 * a[k]['rate']:.1f}%"  # noqa: E731
        lo, hi = f["backlog_range"]
        blog = str(lo) if lo == hi else f"{lo}..{hi}"
        lines.append(f"{f['server']}: backlog {blog}, syncookies "
                     f"{'/'.join(str(c) for c in f['syncookies'])} "
                     f"(answered SYNs reproduced {rate('answered')}, dropped {rate('dropped')})")
    return "\n".join(lines) + "\n"


def _syn_rows(scenario: "Scenario") -> List[dict]:
    sy = scenario.syns
    sent = np.flatnonzero(sy["verdict"] != "not_sent")
    cols = [sy["frame"][sent].tolist(), np.round(sy["time"][sent], 9).tolist(),
            sy["legitimate"][sent].tolist(), sy["answered"][sent].tolist(),
            sy["cookie"][sent].tolist(), sy["cookie_isn"][sent].tolist(), sy["verdict"][sent].tolist()]
    names = ("frame", "time", "legitimate", "answered", "cookie", "cookie_isn", "verdict")
    return [dict(zip(names, row)) for row in zip(*cols)]


def write_syns(result: WhatIf, path: str) -> None:
    """Every scenario's SYNs as JSON lines: server, syncookies, backlog, then
    frame (0 = a retry the capture does not hold), time (s from the first
    packet), legitimate, answered, cookie, cookie_isn (the SYN-ACK's sequence
    number, null without a cookie), verdict."""
    import json
    from .output import atomic_output
    with atomic_output(path) as out:
        for s in result.scenarios:
            head = json.dumps({"server": s.server, "syncookies": s.settings["syncookies"],
                               "backlog": s.settings["backlog"]})[:-1] + ", "
            sy = s.syns
            sent = np.flatnonzero(sy["verdict"] != "not_sent")
            rows = zip(sy["frame"][sent].tolist(), np.round(sy["time"][sent], 9).tolist(),
                       sy["legitimate"][sent].tolist(), sy["answered"][sent].tolist(),
                       sy["cookie"][sent].tolist(), sy["cookie_isn"][sent].tolist(),
                       sy["verdict"][sent].tolist())
            out.writelines(
                f'{head}"frame": {f}, "time": {t!r}, "legitimate": {"true" if lg else "false"}, '
                f'"answered": {"true" if a else "false"}, "cookie": {"true" if c else "false"}, '
                f'"cookie_isn": {isn if c else "null"}, "verdict": "{v}"}}\n'
                for f, t, lg, a, c, isn, v in rows)


def plot(result: WhatIf, output: str, server: Optional[str] = None) -> None:
    """A PNG: SYN-queue and accept-queue occupancy and legitimate completions
    over time, one line per scenario (needs matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ValueError("plotting needs matplotlib: pip install 'fastseg[plot]'") from exc
    from .output import atomic_output

    srv = server or (result.real[0]["server"] if result.real else None)
    chosen = [s for s in result.scenarios if s.server == srv]
    fig, axes = plt.subplots(3, 1, figsize=(12, 10), sharex=True)
    fig.suptitle(f"fastseg whatif: {srv}")
    for s in chosen:
        label = f"syncookies={s.settings['syncookies']} backlog={s.settings['backlog']}"
        t = s.series["t"]
        axes[0].step(t, s.series["syn_queue"], where="post", label=label)
        axes[1].step(t, s.series["accept_queue"], where="post", label=label)
        axes[2].plot(t, np.cumsum(s.series["legit_completed"]), label=label)
    axes[0].set_ylabel("SYN queue (max per bin)")
    axes[1].set_ylabel("accept queue (max per bin)")
    axes[2].set_ylabel("legitimate clients served")
    axes[2].set_xlabel("seconds from the first packet")
    if chosen:
        axes[2].legend(fontsize="small")
    fig.tight_layout()
    with atomic_output(output, binary=True) as fh:
        fig.savefig(fh, format="png", dpi=90)
    plt.close(fig)
