"""Connection kinds and the scripts that play them.

Every connection kind is a short *script* of packet steps written once with
numpy arrays over all the connections of that kind (one row per connection,
one column per step).  ``schedule`` picks each connection's kind and first-SYN
time, ``params`` its addresses, options, RTTs and sizes, and ``block`` runs
the scripts of one block of connections into per-packet rows (headers are
built from them by ``headers``) and the raw truth of each connection.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from .. import _consts

FIN, SYN, RST, PSH, ACK = _consts.FIN, _consts.SYN, _consts.RST, _consts.PSH, _consts.ACK
ECE, CWR = _consts.ECE, _consts.CWR

C, S = 0, 1                      # packet direction: client -> server, server -> client
_US = _consts.NS_PER_US
_MS = _consts.NS_PER_MS
_SEC = _consts.NS_PER_SEC

# ---------------------------------------------------------------------------
# Scenario kinds and their expected Zeek conn_state.

_KIND_DOC = {
    "fin_orig": "handshake, request/response, client closes first with FIN (SF)",
    "fin_resp": "handshake, request/response, server closes first with FIN and "
                "holds TIME-WAIT (SF)",
    "refused": "SYN answered by RST,ACK (REJ)",
    "unanswered": "SYN never answered, retransmitted with Linux backoff 1 s, 2 s, "
                  "4 s ... (S0)",
    "rst_orig": "established, then the client aborts with RST (RSTO)",
    "rst_resp": "established, then the server aborts with RST (RSTR)",
    "close_wait": "client sends FIN, server ACKs but never sends its FIN: the "
                  "server leaks a CLOSE-WAIT socket (S2)",
    "half_open": "established, then the server goes silent while the client keeps "
                 "retransmitting (S1)",
    "keepalive": "established, idle, keepalive probes answered, then FIN close (SF)",
    "tfo_request": "SYN with a TFO cookie request, SYN-ACK carries the cookie (SF)",
    "tfo_data": "SYN with a TFO cookie and request data (SF)",
    "retransmit": "a response segment lost after the tap, duplicate ACK, "
                  "retransmission after RTO (SF)",
    "reorder": "two response segments seen out of order at the tap (SF)",
    "flood": "spoofed SYN of a SYN-flood burst toward one server:port; the "
             "SYN-ACK (if any, resent with backoff when the server has no "
             "syncookies) is never answered (S1 / S0)",
}
KINDS = tuple(_KIND_DOC)
_KIND_ID = {k: i for i, k in enumerate(KINDS)}

DEFAULT_MIX = {
    "fin_orig": 52.0, "fin_resp": 14.0, "refused": 4.0, "unanswered": 3.0,
    "rst_orig": 3.0, "rst_resp": 2.0, "close_wait": 2.0, "half_open": 1.5,
    "keepalive": 1.5, "tfo_request": 1.5, "tfo_data": 1.5, "retransmit": 4.0,
    "reorder": 2.0, "flood": 8.0,
}

CONN_STATES = ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0",
               "RSTRH", "SH", "SHR", "OTH")
_ST = {s: i for i, s in enumerate(CONN_STATES)}
_CLOSERS = ("none", "orig", "resp")
_CLOSES = ("none", "fin", "rst")
_TFO = ("none", "cookie_request", "cookie_data")

def scenarios() -> Dict[str, str]:
    """The connection kinds ``generate`` can write, each with a one-line description."""
    return dict(_KIND_DOC)

# ---------------------------------------------------------------------------
# Per-connection parameters.

_SERVERS_V4 = np.array([[192, 0, 2, 10 + i] for i in range(6)] +
                       [[198, 51, 100, 20 + i] for i in range(4)], np.uint8)
_SERVERS_V6 = np.array([[0x20, 0x01, 0x0d, 0xb8, 0, 0x5e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 + i]
                        for i in range(6)], np.uint8)
_PORTS = np.array([80, 443, 8080, 8443], np.int64)
_PORT_P = np.array([0.45, 0.35, 0.12, 0.08])
_MSS_V4 = np.array([1460, 1440, 1380, 8960])
_MSS_P = np.array([0.70, 0.10, 0.12, 0.08])
_WS_VALUES = np.arange(15)
_WS_P = np.array([1, 1, 2, 2, 2, 2, 4, 40, 16, 12, 8, 4, 3, 2, 1], float)
_WS_P /= _WS_P.sum()
_MAPPED = np.array([0] * 10 + [0xff, 0xff], np.uint8)
ID_BITS = 30
_ID_MULT = 0x2545F491 | 1        # odd: i -> i * m mod 2**30 is a bijection


def _unique_ids(gidx: np.ndarray, salt: int) -> np.ndarray:
    """A scrambled but collision-free id in [0, 2**30) per global connection index,
    so that no two connections share a 4-tuple (each is its own tcp.stream)."""
    return ((gidx.astype(np.int64) + salt) * _ID_MULT) & ((1 << ID_BITS) - 1)


def syn_layout(sack, ts, ws, tfo):
    """Index of a SYN's option layout in ``headers._LAYOUTS`` (built in this
    order: SACK-permitted, timestamps, window scale, Fast Open)."""
    return 2 + ((sack.astype(np.int64) * 2 + ts) * 2 + ws) * 3 + tfo


@dataclass
class Params:
    """One array per field, one row per connection of a block."""
    cols: Dict[str, np.ndarray]

    def __getattr__(self, k):
        try:
            return self.cols[k]
        except KeyError:
            raise AttributeError(k) from None

    def take(self, idx):
        return Params({k: v[idx] for k, v in self.cols.items()})

    def __len__(self):
        return len(self.cols["gidx"])


def _lognormal(rng, median, sigma, n, lo, hi):
    return np.clip(rng.lognormal(np.log(median), sigma, n), lo, hi)


def _addresses(ids, v6, net4, net6):
    """(n, 16) address rows from unique ids: host = the id's high 16 bits, placed
    in a /15 (IPv4-mapped) or a /48 (IPv6); the low 14 bits pick the port."""
    n = len(ids)
    host = ids >> 14
    # Spread the host over .1 - .254 of consecutive /24s (no network or
    # broadcast-looking addresses).
    q = host // 254
    out = np.zeros((n, 16), np.uint8)
    out[:, 10:12] = 0xff
    out[:, 12] = net4[0]
    out[:, 13] = net4[1] + (q >> 8)
    out[:, 14] = q & 0xff
    out[:, 15] = 1 + host % 254
    if v6.any():
        six = np.zeros((n, 16), np.uint8)
        six[:, :6] = net6
        six[:, 6] = host >> 8
        six[:, 7] = host & 0xff
        six[:, 15] = 1 + (host % 200)
        out[v6] = six[v6]
    return out


def params(rng, gidx, kind, syn_ts, burst, bursts, ipv6_fraction) -> Params:
    n = len(gidx)
    flood = kind == _KIND_ID["flood"]
    v6 = rng.random(n) < ipv6_fraction
    srv = rng.integers(0, 1 << 30, n)
    sport = _PORTS[rng.choice(len(_PORTS), n, p=_PORT_P)]
    if flood.any():
        b = burst[flood]
        v6[flood] = bursts["v6"][b]
        srv[flood] = bursts["server"][b]
        sport[flood] = bursts["port"][b]
    saddr = np.zeros((n, 16), np.uint8)
    saddr[:, 10:12] = 0xff
    saddr[:, 12:] = _SERVERS_V4[srv % len(_SERVERS_V4)]
    saddr[v6] = _SERVERS_V6[srv[v6] % len(_SERVERS_V6)]

    ids = _unique_ids(gidx, 0)
    # Clients live in 10.20.0.0/15 (and 2001:db8:c1::/48); spoofed flood sources in
    # 198.18.0.0/15 (and 2001:db8:bad::/48): the two never share a 4-tuple.
    caddr = _addresses(ids, v6, (10, 20), [0x20, 0x01, 0x0d, 0xb8, 0x00, 0xc1])
    cport = 32768 + (ids & 0x3fff)
    if flood.any():
        caddr[flood] = _addresses(ids[flood], v6[flood], (198, 18),
                                  [0x20, 0x01, 0x0d, 0xb8, 0x0b, 0xad])
        cport[flood] = 1024 + (ids[flood] & 0x3fff)

    mss_c = _MSS_V4[rng.choice(4, n, p=_MSS_P)] - 20 * v6
    mss_s = _MSS_V4[rng.choice(4, n, p=[0.85, 0.05, 0.05, 0.05])] - 20 * v6
    sack_c = rng.random(n) < 0.92
    ts_c = rng.random(n) < 0.85
    ws_c = np.where(rng.random(n) < 0.92, rng.choice(15, n, p=_WS_P), -1)
    ws_s = np.where(ws_c >= 0, rng.choice([7, 8, 9, 10], n, p=[0.5, 0.2, 0.2, 0.1]), -1)
    ecn_c = rng.random(n) < 0.06
    ecn_s = ecn_c & (rng.random(n) < 0.6)
    tfo = np.zeros(n, np.int64)
    tfo[kind == _KIND_ID["tfo_request"]] = 1
    tfo[kind == _KIND_ID["tfo_data"]] = 2
    # Flood tools send bare SYNs; Linux answers them with MSS only.
    for arr in (sack_c, ts_c, ecn_c, ecn_s):
        arr[flood] = False
    ws_c[flood] = -1
    ws_s[flood] = -1
    lid_c = syn_layout(sack_c, ts_c, ws_c >= 0, tfo)
    lid_c[flood] = 0
    lid_s = syn_layout(sack_c, ts_c, ws_c >= 0, np.where(tfo == 1, 2, 0))
    ts_ok = ts_c
    eff_mss = np.minimum(mss_c, mss_s) - 12 * ts_ok

    lan = rng.random(n) < 0.25
    rtt = np.where(lan, _lognormal(rng, 0.4 * _MS, 0.5, n, 50 * _US, 20 * _MS),
                   _lognormal(rng, 35 * _MS, 0.8, n, 1 * _MS, 3 * _SEC)).astype(np.int64)
    split = rng.uniform(0.05, 0.95, n)
    srv_rtt = (rtt * split).astype(np.int64)
    bw = rng.choice([10e6, 100e6, 1e9], n, p=[0.2, 0.5, 0.3])
    win_scaled = rng.integers(400, 3000, n)
    cols = dict(
        gidx=gidx, kind=kind, syn_ts=syn_ts, v6=v6, caddr=caddr, saddr=saddr,
        cport=cport, sport=sport,
        isn_c=rng.integers(0, 1 << 32, n), isn_s=rng.integers(0, 1 << 32, n),
        tsb_c=rng.integers(0, 1 << 31, n), tsb_s=rng.integers(0, 1 << 31, n),
        mss_c=mss_c, mss_s=mss_s, sack_c=sack_c, ts_c=ts_c, ws_c=ws_c, ws_s=ws_s,
        ecn_c=ecn_c, ecn_s=ecn_s, tfo=tfo, lid_c=lid_c, lid_s=lid_s, ts_ok=ts_ok,
        eff_mss=eff_mss,
        rtt=rtt, srv_rtt=srv_rtt, cli_rtt=rtt - srv_rtt,
        srv_proc=rng.integers(10 * _US, 80 * _US, n),
        cli_proc=rng.integers(5 * _US, 50 * _US, n),
        think=_lognormal(rng, 2 * _MS, 1.2, n, 50 * _US, 2 * _SEC).astype(np.int64),
        idle=_lognormal(rng, 20 * _MS, 1.5, n, 100 * _US, 10 * _SEC).astype(np.int64),
        ns_per_byte=(8e9 / bw),
        req=_lognormal(rng, 300, 0.7, n, 16, 1400).astype(np.int64),
        resp=_lognormal(rng, 2000, 1.3, n, 1, 1 << 20).astype(np.int64),
        syn_win_c=np.where(rng.random(n) < 0.8, 64240, 65535),
        syn_win_s=np.where(v6, 64800, 65160),
        win_c=np.where(ws_c >= 0, win_scaled, 64240),
        win_s=np.where(ws_c >= 0, win_scaled // 2 + 200, 65160),
        ttl_c=np.where(rng.random(n) < 0.75, 64, 128) - rng.integers(1, 20, n),
        ttl_s=64 - rng.integers(1, 6, n),
        ipid_c=rng.integers(0, 1 << 16, n), ipid_s=rng.integers(0, 1 << 16, n),
        flow_c=rng.integers(0, 1 << 20, n), flow_s=rng.integers(0, 1 << 20, n),
        cookie=rng.integers(0, 256, (n, 8), dtype=np.uint8),
        synack_answered=rng.random(n) < 0.75,
        n_syn=rng.integers(1, 8, n),
        n_probe=rng.integers(1, 4, n),
        probe_gap=rng.integers(5 * _SEC, 20 * _SEC, n),
        n_retx=rng.integers(3, 7, n),
    )
    cols["synack_retx"] = np.zeros(n, np.int64)
    if flood.any():
        cols["syn_win_c"][flood] = rng.choice([512, 1024, 64240], int(flood.sum()))
        cols["synack_retx"][flood] = np.where(bursts["cookies"][burst[flood]], 0,
                                              rng.integers(1, 6, int(flood.sum())))
    return Params(cols)


# ---------------------------------------------------------------------------
# Scripts: packet steps over all connections of one kind.

_RETX, _KEEPALIVE = 1, 2        # step tags counted in the truth


class _Script:
    """Sequence/ack/timestamp bookkeeping for n connections stepping in lockstep.

    ``send`` appends one step (one packet per connection, dropped where ``valid``
    is False).  Sequence numbers advance unless ``seq`` is given (retransmissions,
    keepalive probes, RSTs); the receiver's next expected sequence advances only
    for in-order segments that are not ``lost`` (lost = dropped after the tap)."""

    def __init__(self, p: Params, quantum: int):
        self.p, self.n, self.q = p, len(p), quantum
        self.t0 = p.syn_ts
        self.nxt = [p.isn_c.astype(np.int64), p.isn_s.astype(np.int64)]
        self.rcv = [np.zeros(self.n, np.int64), np.zeros(self.n, np.int64)]
        self.recent = [np.zeros(self.n, np.int64), np.zeros(self.n, np.int64)]
        self.data = [np.zeros(self.n, np.int64), np.zeros(self.n, np.int64)]
        self.tsb = [p.tsb_c, p.tsb_s]
        self.steps: List[dict] = []
        self.hs_ack: Optional[int] = None       # step of the handshake-completing ACK
        self.synack: Optional[int] = None       # step of the (first) SYN-ACK
        self.state = np.zeros(self.n, np.int64)

    def _vec(self, x, dtype=np.int64):
        return np.broadcast_to(np.asarray(x, dtype), (self.n,))

    def send(self, d, flags, t, plen=0, valid=True, lost=False, seq=None, ack=None,
             noopt=False, sack=None, tag=0):
        p = self.p
        flags = self._vec(flags)
        plen = self._vec(plen)
        valid = self._vec(valid, bool)
        t = (self._vec(t) // self.q) * self.q
        s = self.nxt[d] if seq is None else self._vec(seq)
        a = self.rcv[d] if ack is None else self._vec(ack)
        a = np.where(flags & ACK, a, 0)
        tsval = (self.tsb[d] + (t - self.t0) // _MS) & 0xffffffff
        tsecr = self.recent[d]
        is_syn = (flags & SYN) != 0
        if d == C:
            win = np.where(is_syn, p.syn_win_c, p.win_c)
        else:
            win = np.where(is_syn, p.syn_win_s, p.win_s)
        win = np.where(flags & RST, 0, win)
        end = s + plen + is_syn + ((flags & FIN) != 0)
        if seq is None:
            self.nxt[d] = np.where(valid, end, self.nxt[d])
            self.data[d] = self.data[d] + np.where(valid, plen, 0)
        if not lost:
            peer = 1 - d
            in_order = valid & ((self.rcv[peer] == 0) | (s <= self.rcv[peer]))
            self.rcv[peer] = np.where(in_order, np.maximum(self.rcv[peer], end),
                                      self.rcv[peer])
            self.recent[peer] = np.where(valid, tsval, self.recent[peer])
        if sack is None:
            sack_l = sack_r = np.zeros(self.n, np.int64)
        else:
            sack_l, sack_r = self._vec(sack[0]), self._vec(sack[1])
        self.steps.append(dict(t=t, d=d, flags=flags, seq=s, ack=a, plen=plen,
                               tsval=tsval, tsecr=tsecr, win=win, valid=valid.copy(),
                               noopt=noopt, sack_l=sack_l, sack_r=sack_r, tag=tag))
        return t

    def stacked(self):
        cols = {}
        for k in ("t", "flags", "seq", "ack", "plen", "tsval", "tsecr", "win", "valid",
                  "sack_l", "sack_r"):
            cols[k] = np.stack([s[k] for s in self.steps], axis=1)
        cols["d"] = np.array([s["d"] for s in self.steps], np.int64)
        cols["noopt"] = np.array([s["noopt"] for s in self.steps], bool)
        cols["tag"] = np.array([s["tag"] for s in self.steps], np.int64)
        return cols


def _handshake(sc: _Script, p: Params):
    ecn_syn = np.where(p.ecn_c, ECE | CWR, 0)
    tfo_len = np.where(p.tfo == 2, np.minimum(p.req, p.eff_mss), 0)
    t0 = sc.send(C, SYN | ecn_syn, p.syn_ts, plen=tfo_len)
    sc.synack = len(sc.steps)
    t1 = sc.send(S, SYN | ACK | np.where(p.ecn_s, ECE, 0), t0 + p.srv_rtt + p.srv_proc)
    t2 = sc.send(C, ACK, t1 + p.cli_rtt + p.cli_proc)
    sc.hs_ack = len(sc.steps) - 1
    return t2


_RMAX = 6          # response segments at most


def _exchange(sc: _Script, p: Params, t, final_ack=True):
    """Client request (unless it rode in a TFO SYN), server response of up to
    _RMAX segments, client ACKs.  Returns the time of the last client ACK, or
    without ``final_ack`` the time the last response segment ended."""
    req = np.minimum(p.req, p.eff_mss)
    if np.any(p.tfo != 2):
        t = sc.send(C, PSH | ACK, t + p.cli_proc, plen=req, valid=p.tfo != 2)
    # Linux delays an ACK by at least 40 ms: a slow server acknowledges the
    # request on its own before the response is ready.
    slow = p.think > 40 * _MS
    sc.send(S, ACK, t + p.srv_rtt + 40 * _MS, valid=slow)
    k = np.clip(-(-p.resp // p.eff_mss), 1, _RMAX)
    resp = np.clip(p.resp, (k - 1) * p.eff_mss + 1, k * p.eff_mss)
    t_r = t + p.srv_rtt + p.think
    full_gap = (p.eff_mss * p.ns_per_byte).astype(np.int64) + _US
    last = t_r
    for j in range(_RMAX):
        seg = np.clip(resp - j * p.eff_mss, 0, p.eff_mss)
        flags = ACK | np.where(j == k - 1, PSH, 0)
        tj = t_r + j * full_gap
        sc.send(S, flags, tj, plen=seg, valid=j < k)
        last = np.where(j < k, tj + (seg * p.ns_per_byte).astype(np.int64) + _US, last)
        if j % 2 == 1 and j < _RMAX - 1:
            # Delayed ACK: one ACK per two full segments (RFC 9293 3.8.6.3); the
            # tap may see it after later segments already passed.
            sc.send(C, ACK, tj + full_gap + p.cli_rtt + p.cli_proc, valid=j < k - 1)
    if not final_ack:
        return last
    return sc.send(C, ACK, last + p.cli_rtt + p.cli_proc)


def _close_orig(sc, p, t):
    t = sc.send(C, FIN | ACK, t + p.idle)
    t = sc.send(S, FIN | ACK, t + p.srv_rtt + p.srv_proc)
    return sc.send(C, ACK, t + p.cli_rtt + p.cli_proc)


def _k_fin_orig(sc, p):
    t = _handshake(sc, p)
    t = _exchange(sc, p, t)
    _close_orig(sc, p, t)
    sc.state[:] = _ST["SF"]


def _k_fin_resp(sc, p):
    t = _handshake(sc, p)
    last = _exchange(sc, p, t, final_ack=False)
    # The server closes right after the response (HTTP/1.0 style, or an idle
    # timeout) and so it is the side that holds TIME-WAIT.
    t = sc.send(S, FIN | ACK, last + p.srv_proc)
    t = sc.send(C, ACK, t + p.cli_rtt + p.cli_proc)
    t = sc.send(C, FIN | ACK, t + p.idle // 8 + p.cli_proc)
    sc.send(S, ACK, t + p.srv_rtt + p.srv_proc)
    sc.state[:] = _ST["SF"]


def _k_refused(sc, p):
    t0 = sc.send(C, SYN | np.where(p.ecn_c, ECE | CWR, 0), p.syn_ts)
    # A closed port answers with RST,ACK, sequence 0 (RFC 9293 3.10.7.1), no options.
    sc.send(S, RST | ACK, t0 + p.srv_rtt + p.srv_proc, seq=0, noopt=True)
    sc.state[:] = _ST["REJ"]


def _k_unanswered(sc, p):
    # Linux: initial RTO 1 s doubling per retry, tcp_syn_retries = 6 (up to 7 SYNs);
    # the application may give up earlier.  ECN is dropped on retransmitted SYNs.
    sc.send(C, SYN | np.where(p.ecn_c, ECE | CWR, 0), p.syn_ts, lost=True)
    for j in range(1, 7):
        jitter = (p.cli_proc * 20) % (3 * _MS)
        sc.send(C, SYN, p.syn_ts + ((1 << j) - 1) * _SEC + jitter, seq=p.isn_c,
                valid=j < p.n_syn, lost=True)
    sc.state[:] = _ST["S0"]


def _k_rst_orig(sc, p):
    t = _handshake(sc, p)
    t = _exchange(sc, p, t)
    sc.send(C, RST | ACK, t + p.idle)
    sc.state[:] = _ST["RSTO"]


def _k_rst_resp(sc, p):
    t = _handshake(sc, p)
    t = sc.send(C, PSH | ACK, t + p.cli_proc, plen=np.minimum(p.req, p.eff_mss))
    sc.send(S, RST | ACK, t + p.srv_rtt + p.think)
    sc.state[:] = _ST["RSTR"]


def _k_close_wait(sc, p):
    t = _handshake(sc, p)
    t = _exchange(sc, p, t)
    t = sc.send(C, FIN | ACK, t + p.idle)
    sc.send(S, ACK, t + p.srv_rtt + p.srv_proc)
    sc.state[:] = _ST["S2"]


def _k_half_open(sc, p):
    t = _handshake(sc, p)
    t = _exchange(sc, p, t)
    # The server vanishes (crashed, unplugged, state lost behind a NAT).  Half of
    # the clients send their next request and retransmit it with RTO backoff
    # (Linux: RTO >= 200 ms, doubling); the others only probe with keepalives.
    req = np.minimum(p.req, p.eff_mss)
    data = p.n_retx % 2 == 0
    t1 = sc.send(C, PSH | ACK, t + p.idle, plen=req, lost=True, valid=data)
    seq = sc.nxt[C] - np.where(data, req, 0)
    rto = np.maximum(200 * _MS, p.rtt + 200 * _MS)
    for j in range(6):
        sc.send(C, PSH | ACK, t1 + rto * ((2 << j) - 1), plen=req, seq=seq, lost=True, tag=_RETX,
                valid=data & (j < p.n_retx))
    for j in range(3):
        sc.send(C, ACK, t + (j + 1) * p.probe_gap, seq=seq - 1, lost=True, tag=_KEEPALIVE,
                valid=~data & (j < p.n_probe))
    sc.state[:] = _ST["S1"]


def _k_keepalive(sc, p):
    t = _handshake(sc, p)
    t = _exchange(sc, p, t)
    # A keepalive probe carries seq = SND.NXT - 1 and no data (RFC 9293 3.8.4).
    for j in range(3):
        ok = j < p.n_probe
        tp = sc.send(C, ACK, t + (j + 1) * p.probe_gap, seq=sc.nxt[C] - 1, valid=ok,
                     tag=_KEEPALIVE)
        sc.send(S, ACK, tp + p.srv_rtt + p.srv_proc, valid=ok)
    t = t + p.n_probe * p.probe_gap + p.rtt + 2 * _MS
    _close_orig(sc, p, t)
    sc.state[:] = _ST["SF"]


def _request(sc, p):
    """Handshake and a one-segment request; returns when the response starts,
    its segment size (full segments) and the time one takes on the wire."""
    t = _handshake(sc, p)
    t = sc.send(C, PSH | ACK, t + p.cli_proc, plen=np.minimum(p.req, p.eff_mss))
    seg = p.eff_mss
    return t + p.srv_rtt + p.think, seg, (seg * p.ns_per_byte).astype(np.int64) + _US


def _k_retransmit(sc, p):
    # Three full segments; the second is lost after the tap.
    t_r, seg, gap = _request(sc, p)
    s0 = sc.send(S, ACK, t_r, plen=seg)
    # Early in a connection Linux acknowledges every segment (quick-ACK mode).
    sc.send(C, ACK, s0 + gap + p.cli_rtt + p.cli_proc)
    seq1 = sc.nxt[S].copy()
    sc.send(S, ACK, s0 + gap, plen=seg, lost=True)
    ack_hole = sc.rcv[C].copy()
    s2 = sc.send(S, ACK | PSH, s0 + 2 * gap, plen=seg, lost=True)
    end = sc.nxt[S].copy()
    # Duplicate ACK for the hole; with SACK negotiated it reports the segment
    # that did arrive (RFC 2018).
    sack = (np.where(p.sack_c, end - seg, 0), np.where(p.sack_c, end, 0))
    sc.send(C, ACK, s2 + gap + p.cli_rtt + p.cli_proc, ack=ack_hole, sack=sack)
    rto = np.maximum(200 * _MS, p.rtt + 200 * _MS)
    tr = sc.send(S, ACK, s0 + gap + rto, plen=seg, seq=seq1, tag=_RETX)
    sc.rcv[C] = end
    t = sc.send(C, ACK, tr + gap + p.cli_rtt + p.cli_proc, ack=end)
    _close_orig(sc, p, t)
    sc.state[:] = _ST["SF"]


def _k_reorder(sc, p):
    t_r, seg, gap = _request(sc, p)
    # Sent in order, but a path with several links delivers the second to the tap
    # before the first: the capture shows them swapped.
    sc.send(S, ACK, t_r + gap + 50 * _US, plen=seg)
    last = sc.send(S, ACK | PSH, t_r + gap, plen=seg)
    t = sc.send(C, ACK, last + 50 * _US + p.cli_rtt + p.cli_proc)
    _close_orig(sc, p, t)
    sc.state[:] = _ST["SF"]


def _k_flood(sc, p):
    t0 = sc.send(C, SYN, p.syn_ts)
    ans = p.synack_answered
    sc.synack = len(sc.steps)
    t1 = sc.send(S, SYN | ACK, t0 + p.srv_proc, valid=ans, lost=True)
    # With syncookies active Linux keeps no state for the SYN, so the cookie
    # SYN-ACK is never retransmitted.  Without them the request sits in the SYN
    # queue and its SYN-ACK is resent after 1, 2, 4 ... s (tcp_synack_retries = 5)
    # until the entry is pruned.
    for j in range(1, 6):
        sc.send(S, SYN | ACK, t1 + ((1 << j) - 1) * _SEC, seq=p.isn_s, lost=True,
                valid=ans & (j <= p.synack_retx))
    # Zeek marks both endpoints ESTABLISHED on a SYN-ACK (no final ACK needed).
    sc.state[:] = np.where(ans, _ST["S1"], _ST["S0"])


_SCRIPTS = {
    "fin_orig": _k_fin_orig, "fin_resp": _k_fin_resp, "refused": _k_refused,
    "unanswered": _k_unanswered, "rst_orig": _k_rst_orig, "rst_resp": _k_rst_resp,
    "close_wait": _k_close_wait, "half_open": _k_half_open,
    "keepalive": _k_keepalive,
    # The TFO kinds differ from fin_orig only in their SYN options and data
    # (params), not in their steps.
    "tfo_request": _k_fin_orig, "tfo_data": _k_fin_orig,
    "retransmit": _k_retransmit, "reorder": _k_reorder, "flood": _k_flood,
}
assert tuple(_SCRIPTS) == KINDS

# ---------------------------------------------------------------------------
# Block generation: scripts -> per-packet rows + truth rows.

def _zeek_conns(valid, d, flags, t):
    """How many connections Zeek's rules (and ``fastseg.track``) make of each
    scripted one.  An attempt nobody answered is removed tcp_attempt_delay after
    its first SYN, so a SYN retransmitted later starts a new connection: the
    1 s, 2 s, 4 s ... backoff of an unanswered SYN splits it.  Wireshark keeps it
    one tcp.stream (the truth row)."""
    n, nsteps = t.shape
    conns = np.zeros(n, np.int64)
    start = np.zeros(n, np.int64)
    answered = np.zeros(n, bool)
    for j in range(nsteps):
        v = valid[:, j]
        syn = v & (d[:, j] == C) & ((flags[:, j] & (SYN | ACK)) == SYN)
        new = syn & ((conns == 0) | (~answered & (t[:, j] - start >= _consts.TCP_ATTEMPT_DELAY_NS)))
        conns += new
        start = np.where(new, t[:, j], start)
        answered |= v & (d[:, j] == S)
    return np.maximum(conns, 1)


def block(rng, p: Params, quantum: int, bad_fraction: float):
    pk_parts, tr_parts = [], []
    for kid, kind in enumerate(KINDS):
        idx = np.flatnonzero(p.kind == kid)
        if len(idx) == 0:
            continue
        sub = p.take(idx)
        sc = _Script(sub, quantum)
        _SCRIPTS[kind](sc, sub)
        st = sc.stacked()
        n, nsteps = st["t"].shape
        valid = st["valid"]
        d = np.broadcast_to(st["d"], (n, nsteps))
        flags = st["flags"]
        t = st["t"]
        # Truth, straight from the script.
        tr = {"lc": idx, "state": sc.state}
        tr["syn_count"] = (valid & (d == C) & ((flags & (SYN | ACK)) == SYN)).sum(1)
        tr["synack_count"] = (valid & (d == S) & ((flags & (SYN | ACK)) == SYN | ACK)).sum(1)
        tr["fin_count"] = (valid & ((flags & FIN) != 0)).sum(1)
        tr["rst_count"] = (valid & ((flags & RST) != 0)).sum(1)
        closing = valid & ((flags & (FIN | RST)) != 0)
        first = np.argmax(closing, axis=1)
        has = closing.any(1)
        r = np.arange(n)
        tr["closer"] = np.where(has, d[r, first] + 1, 0)
        tr["close"] = np.where(has, np.where(flags[r, first] & RST, 2, 1), 0)
        if sc.hs_ack is not None:
            done = valid[:, sc.hs_ack]
            tr["completed"] = done
            tr["rtt"] = np.where(done, t[:, sc.hs_ack] - t[:, 0], -1)
        else:
            tr["completed"] = np.zeros(n, bool)
            tr["rtt"] = np.full(n, -1, np.int64)
        tr["syn_ts"] = t[:, 0]
        tr["orig_bytes"], tr["resp_bytes"] = sc.data
        tr["tfo_data"] = np.where(flags[:, 0] & SYN, st["plen"][:, 0], 0)
        tr["packets"] = valid.sum(1)
        tr["zeek_conns"] = _zeek_conns(valid, d, flags, t)
        tr["retransmits"] = (valid & (st["tag"] == _RETX)).sum(1)
        tr["keepalives"] = (valid & (st["tag"] == _KEEPALIVE)).sum(1)
        tr["orig_pkts"] = tr["zeek_orig_pkts"] = (valid & (d == C)).sum(1)
        tr["resp_pkts"] = tr["zeek_resp_pkts"] = (valid & (d == S)).sum(1)
        tr["duration"] = np.where(valid, t, 0).max(1) - t[:, 0]
        if sc.synack is not None:
            tr["syn_synack"] = np.where(valid[:, sc.synack], t[:, sc.synack] - t[:, 0], -1)
        else:
            tr["syn_synack"] = np.full(n, -1, np.int64)
        if sc.synack is not None and sc.hs_ack is not None:
            tr["synack_ack"] = np.where(valid[:, sc.hs_ack],
                                        t[:, sc.hs_ack] - t[:, sc.synack], -1)
        else:
            tr["synack_ack"] = np.full(n, -1, np.int64)
        tr_parts.append(tr)
        # Per-packet rows.
        rows, steps = np.nonzero(valid)
        pk = {k: st[k][rows, steps] for k in ("t", "flags", "seq", "ack", "plen",
                                               "tsval", "tsecr", "win", "sack_l",
                                               "sack_r")}
        pk["d"] = st["d"][steps]
        pk["noopt"] = st["noopt"][steps]
        pk["lc"] = idx[rows]
        pk["key"] = 2 * steps + 1
        hs_steps = [0] + [x for x in (sc.synack, sc.hs_ack) if x is not None]
        pk["hs"] = np.isin(steps, hs_steps)
        pk_parts.append(pk)
    pk = {k: np.concatenate([x[k] for x in pk_parts]) for k in pk_parts[0]}
    truth = {k: np.concatenate([x[k] for x in tr_parts]) for k in tr_parts[0]}
    order = np.argsort(truth["lc"], kind="stable")
    truth = {k: v[order] for k, v in truth.items()}
    # Damaged duplicates: the tap saw a copy with a broken checksum just before the
    # good one (the receiver dropped the damaged copy, the sender's copy got through),
    # so the damage never changes what the connection does.  Handshake packets are
    # left alone so that Wireshark's initial RTT stays the truth's.
    pk["bad"] = np.zeros(len(pk["t"]), bool)
    truth["bad_checksums"] = np.zeros(len(p), np.int64)
    if bad_fraction > 0:
        cand = ~pk["hs"] & ((pk["flags"] & SYN) == 0)
        pick = np.flatnonzero(cand & (rng.random(len(cand)) < bad_fraction))
        if len(pick):
            dup = {k: v[pick] for k, v in pk.items()}
            dup["key"] = dup["key"] - 1
            dup["bad"][:] = True
            pk = {k: np.concatenate([pk[k], dup[k]]) for k in pk}
            truth["bad_checksums"] = np.bincount(dup["lc"], minlength=len(p))
            truth["packets"] = truth["packets"] + truth["bad_checksums"]
            truth["orig_pkts"] = truth["orig_pkts"] + np.bincount(
                dup["lc"], weights=dup["d"] == C, minlength=len(p)).astype(np.int64)
            truth["resp_pkts"] = truth["resp_pkts"] + np.bincount(
                dup["lc"], weights=dup["d"] == S, minlength=len(p)).astype(np.int64)
    return pk, truth

# ---------------------------------------------------------------------------
# The driver.

def parse_mix(mix) -> Dict[str, float]:
    if mix is None:
        return dict(DEFAULT_MIX)
    if isinstance(mix, str):
        out = {}
        for part in mix.split(","):
            part = part.strip()
            if not part:
                continue
            name, _, w = part.partition("=")
            out[name.strip()] = float(w) if w else 1.0
        mix = out
    mix = {k: float(v) for k, v in dict(mix).items()}
    unknown = set(mix) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown scenario kind(s): {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(KINDS)}")
    if any(v < 0 for v in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError("mix weights must be >= 0 and not all zero")
    return mix


def schedule(rng, connections, mix, start_ns, duration_ns, quantum, flood_bursts):
    """Kinds and first-SYN times of every connection, in SYN order."""
    names = list(mix)
    w = np.array([mix[k] for k in names], float)
    counts = rng.multinomial(connections, w / w.sum())
    kind = np.repeat(np.array([_KIND_ID[k] for k in names], np.int8), counts)
    rng.shuffle(kind)
    syn = start_ns + (rng.random(connections) * duration_ns).astype(np.int64)
    flood = np.flatnonzero(kind == _KIND_ID["flood"])
    nb = max(1, min(flood_bursts, len(flood))) if len(flood) else 0
    burst = np.full(connections, -1, np.int16)
    bursts = {"v6": np.zeros(nb, bool), "server": np.zeros(nb, np.int64),
              "port": np.zeros(nb, np.int64), "cookies": np.zeros(nb, bool)}
    if len(flood):
        # Each burst is a dense stream of spoofed SYNs toward one server:port.
        b = rng.integers(0, nb, len(flood))
        blen = np.maximum(duration_ns // (10 * nb), _SEC)
        bstart = start_ns + (rng.random(nb) * max(duration_ns - blen, 1)).astype(np.int64)
        syn[flood] = bstart[b] + (rng.random(len(flood)) * blen).astype(np.int64)
        burst[flood] = b
        bursts = {"v6": rng.random(nb) < 0.2, "server": rng.integers(0, 1 << 30, nb),
                  "port": _PORTS[rng.integers(0, 2, nb)],
                  "cookies": np.arange(nb) % 2 == 0}
    syn = (syn // quantum) * quantum
    order = np.argsort(syn, kind="stable")
    return kind[order], syn[order], burst[order], bursts
