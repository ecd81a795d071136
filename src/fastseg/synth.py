"""Synthetic TCP captures with ground truth.

``generate()`` writes a pcap or pcapng file of realistic TCP connections (Ethernet
by default, also 802.1Q, raw IP and Linux SLL; IPv4 and IPv6; Linux-like option
layouts, retransmission and keepalive timers; lognormal RTTs) together with a
ground-truth file that says, for every connection, what it is and what a correct
analyser must report about it (Zeek's conn_state, Wireshark's initial RTT, who
closed and how, ...).  ``scenarios()`` lists the connection kinds.  It is the
benchmark input of fastseg and the capture behind ``fastseg demo``.

How it stays fast: every connection kind is a short *script* of packet steps
written once with numpy arrays over all the connections of that kind (one row
per connection, one column per step).  Headers for all packets of a block are
then assembled column-wise (fixed byte templates per option layout, fancy
indexing for the variable fields) and the TCP checksum is the sum of the header
words, the pseudo-header words and a prefix-sum table over the fixed payload
pattern.  Blocks of connections are merged in time order, so the file is in
global timestamp order while memory stays bounded by the block size; only the
final concatenation of variable-length records is a small Cython loop
(``_synth.assemble``).
"""
from __future__ import annotations

import argparse
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np

from . import _consts
from ._synth import assemble

__all__ = ["generate", "packets", "demo", "scenarios", "SynthResult", "SynthPackets",
           "add_arguments", "run_from_args", "KINDS", "DEFAULT_MIX", "TRUTH_COLUMNS",
           "CONN_STATES", "LINKS", "DEMO_CONNECTIONS"]

FIN, SYN, RST, PSH, ACK = _consts.FIN, _consts.SYN, _consts.RST, _consts.PSH, _consts.ACK
ECE, CWR = _consts.ECE, _consts.CWR

C, S = 0, 1                      # packet direction: client -> server, server -> client
_US = 1_000
_MS = 1_000_000
_SEC = 1_000_000_000
LINKTYPE_ETHERNET = 1
LINKS = {"ethernet": 1, "vlan": 1, "raw": 101, "sll": 113}   # name -> pcap LINKTYPE_*

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

TRUTH_COLUMNS = (
    "conn", "kind", "client", "client_port", "server", "server_port", "ip_version",
    "syn_ts", "syn_ts_ns", "conn_state", "closer", "close", "syn_count",
    "synack_count", "fin_count", "rst_count", "handshake_completed",
    "handshake_rtt", "orig_bytes", "resp_bytes", "tfo", "tfo_data", "orig_isn",
    "resp_isn", "mss", "wscale", "sack", "ts", "ecn", "resp_mss", "resp_wscale",
    "ecn_ok", "packets", "bad_checksums", "orig_pkts", "resp_pkts", "duration",
    "syn_synack", "synack_ack", "retransmits", "keepalives", "zeek_conns", "zeek_orig_pkts", "zeek_resp_pkts",
)


def scenarios() -> Dict[str, str]:
    """The connection kinds ``generate`` can write, each with a one-line description."""
    return dict(_KIND_DOC)


# ---------------------------------------------------------------------------
# TCP option layouts.  Layout 0 has no options, 1 is the timestamp option of an
# established connection, 2.. are SYN layouts in Linux's order (MSS, SACK-permitted
# merged with the timestamp when both are present, window scale, Fast Open).
# Field offsets point at column 40 (a scratch area) when the field is absent, so
# filling every field for every row needs no masks.

_OPT_WIDTH = 48
_SCRATCH = 40


def _build_layouts():
    rows, lens = [], []
    offs = {k: [] for k in ("mss", "ws", "tsval", "tsecr", "cookie")}

    def add(b, o):
        rows.append(bytes(b) + bytes(_OPT_WIDTH - len(b)))
        lens.append(len(b))
        for k in offs:
            offs[k].append(o.get(k, _SCRATCH))

    add([], {})
    add([1, 1, 8, 10] + [0] * 8, {"tsval": 4, "tsecr": 8})
    for sack in (0, 1):
        for ts in (0, 1):
            for ws in (0, 1):
                for tfo in (0, 1, 2):
                    b, o = [2, 4, 0, 0], {"mss": 2}
                    if ts:
                        b += ([4, 2] if sack else [1, 1]) + [8, 10]
                        o["tsval"], o["tsecr"] = len(b), len(b) + 4
                        b += [0] * 8
                    elif sack:
                        b += [1, 1, 4, 2]
                    if ws:
                        b += [1, 3, 3, 0]
                        o["ws"] = len(b) - 1
                    if tfo == 1:
                        b += [1, 1, 34, 2]
                    elif tfo == 2:
                        b += [1, 1, 34, 10]
                        o["cookie"] = len(b)
                        b += [0] * 8
                    add(b, o)
    table = np.frombuffer(b"".join(rows), np.uint8).reshape(len(rows), _OPT_WIDTH)
    return (table, np.array(lens, np.int64),
            {k: np.array(v, np.int64) for k, v in offs.items()})


_LAYOUTS, _LAYOUT_LEN, _LAYOUT_OFF = _build_layouts()


def _syn_layout(sack, ts, ws, tfo):
    return 2 + ((sack.astype(np.int64) * 2 + ts) * 2 + ws) * 3 + tfo


# ---------------------------------------------------------------------------
# Payload: every segment carries a prefix of one of two fixed patterns (request
# text from the client, response text from the server), so the payload part of
# the TCP checksum is a lookup in a prefix-sum table.

_PAT_LEN = 16384


def _make_pattern(head: bytes, filler: bytes) -> bytes:
    body = head + filler * (_PAT_LEN // len(filler) + 1)
    return body[:_PAT_LEN]


_REQ = _make_pattern(b"GET /api/v1/items?page=2 HTTP/1.1\r\nHost: example.net\r\n"
                     b"User-Agent: fastseg-synth/1\r\nAccept: */*\r\n",
                     b"X-Pad: abcdefghijklmnopqrstuvwxyz0123456789\r\n")
_RSP = _make_pattern(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Server: synth\r\n\r\n",
                     b"Lorem ipsum dolor sit amet, consectetur adipiscing elit. ")
_PATTERN = np.frombuffer(_REQ + _RSP, np.uint8)


def _prefix_sums(pat: bytes) -> np.ndarray:
    a = np.frombuffer(pat, np.uint8).astype(np.uint64)
    words = np.zeros(len(a), np.uint64)
    words[0::2] = a[0::2] << np.uint64(8)     # big-endian 16-bit words
    words[1::2] = a[1::2]
    return np.concatenate([[0], np.cumsum(words)]).astype(np.uint64)


_PSUM = np.stack([_prefix_sums(_REQ), _prefix_sums(_RSP)])

# ---------------------------------------------------------------------------
# Per-connection parameters.

_SERVERS_V4 = np.array([[192, 0, 2, 10 + i] for i in range(6)] +
                       [[198, 51, 100, 20 + i] for i in range(4)], np.uint8)
_SERVERS_V6 = np.array([[0x20, 0x01, 0x0d, 0xb8, 0, 0x5e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 + i]
                        for i in range(6)], np.uint8)
_PORTS = np.array([80, 443, 8080, 8443], np.int64)
_PORT_P = np.array([0.45, 0.35, 0.12, 0.08])
_ROUTER_MAC = np.array([0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x01], np.uint8)
_MSS_V4 = np.array([1460, 1440, 1380, 8960])
_MSS_P = np.array([0.70, 0.10, 0.12, 0.08])
_WS_VALUES = np.arange(15)
_WS_P = np.array([1, 1, 2, 2, 2, 2, 4, 40, 16, 12, 8, 4, 3, 2, 1], float)
_WS_P /= _WS_P.sum()
_MAPPED = np.array([0] * 10 + [0xff, 0xff], np.uint8)
_ID_BITS = 30
_ID_MULT = 0x2545F491 | 1        # odd: i -> i * m mod 2**30 is a bijection


def _unique_ids(gidx: np.ndarray, salt: int) -> np.ndarray:
    """A scrambled but collision-free id in [0, 2**30) per global connection index,
    so that no two connections share a 4-tuple (each is its own tcp.stream)."""
    return ((gidx.astype(np.int64) + salt) * _ID_MULT) & ((1 << _ID_BITS) - 1)


@dataclass
class _Params:
    """One array per field, one row per connection of a block."""
    cols: Dict[str, np.ndarray]

    def __getattr__(self, k):
        try:
            return self.cols[k]
        except KeyError:
            raise AttributeError(k) from None

    def take(self, idx):
        return _Params({k: v[idx] for k, v in self.cols.items()})

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


def _params(rng, gidx, kind, syn_ts, burst, bursts, ipv6_fraction) -> _Params:
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
    lid_c = _syn_layout(sack_c, ts_c, ws_c >= 0, tfo)
    lid_c[flood] = 0
    lid_s = _syn_layout(sack_c, ts_c, ws_c >= 0, np.where(tfo == 1, 2, 0))
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
    return _Params(cols)


# ---------------------------------------------------------------------------
# Scripts: packet steps over all connections of one kind.

_RETX, _KEEPALIVE = 1, 2        # step tags counted in the truth


class _Script:
    """Sequence/ack/timestamp bookkeeping for n connections stepping in lockstep.

    ``send`` appends one step (one packet per connection, dropped where ``valid``
    is False).  Sequence numbers advance unless ``seq`` is given (retransmissions,
    keepalive probes, RSTs); the receiver's next expected sequence advances only
    for in-order segments that are not ``lost`` (lost = dropped after the tap)."""

    def __init__(self, p: _Params, quantum: int):
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


def _handshake(sc: _Script, p: _Params):
    ecn_syn = np.where(p.ecn_c, ECE | CWR, 0)
    tfo_len = np.where(p.tfo == 2, np.minimum(p.req, p.eff_mss), 0)
    t0 = sc.send(C, SYN | ecn_syn, p.syn_ts, plen=tfo_len)
    sc.synack = len(sc.steps)
    t1 = sc.send(S, SYN | ACK | np.where(p.ecn_s, ECE, 0), t0 + p.srv_rtt + p.srv_proc)
    t2 = sc.send(C, ACK, t1 + p.cli_rtt + p.cli_proc)
    sc.hs_ack = len(sc.steps) - 1
    return t2


_RMAX = 6          # response segments at most


def _exchange(sc: _Script, p: _Params, t, final_ack=True):
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


def _k_tfo(sc, p):
    t = _handshake(sc, p)
    t = _exchange(sc, p, t)
    _close_orig(sc, p, t)
    sc.state[:] = _ST["SF"]


def _k_retransmit(sc, p):
    t = _handshake(sc, p)
    t = sc.send(C, PSH | ACK, t + p.cli_proc, plen=np.minimum(p.req, p.eff_mss))
    # Three full segments; the second is lost after the tap.
    seg = p.eff_mss
    gap = (seg * p.ns_per_byte).astype(np.int64) + _US
    t_r = t + p.srv_rtt + p.think
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
    t = _handshake(sc, p)
    t = sc.send(C, PSH | ACK, t + p.cli_proc, plen=np.minimum(p.req, p.eff_mss))
    seg = p.eff_mss
    gap = (seg * p.ns_per_byte).astype(np.int64) + _US
    t_r = t + p.srv_rtt + p.think
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
    "keepalive": _k_keepalive, "tfo_request": _k_tfo, "tfo_data": _k_tfo,
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


def _block(rng, p: _Params, quantum: int, bad_fraction: float):
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


def _be(values, dtype, n, width):
    return np.ascontiguousarray(values, dtype=dtype).view(np.uint8).reshape(n, width)


def _fold(s):
    s = (s & 0xffff) + (s >> 16)
    s = (s & 0xffff) + (s >> 16)
    return (s & 0xffff) + (s >> 16)


def _ones_sum(rows: np.ndarray) -> np.ndarray:
    """Folded 16-bit one's-complement sum of the big-endian words of each row of a
    uint8 matrix whose width is a multiple of 4.  The sum is byte-order independent
    (RFC 1071 section 2(B)): add native 32-bit words, fold, swap the two bytes."""
    rows = np.ascontiguousarray(rows)
    s = rows.view(np.uint32).sum(axis=1, dtype=np.uint64)
    s = _fold((s & 0xffffffff) + (s >> 32))
    if np.little_endian:
        s = ((s & 0xff) << 8) | (s >> 8)
    return s


_HEAD = 114          # Ethernet 14 + IPv6 40 + TCP 60: the widest header


def _templates(p: _Params):
    """Header bytes that never change within a connection, per direction:
    (n, 2, _HEAD) uint8 (Ethernet, the static IP fields, TCP ports), with the
    folded sums of the static IPv4 header (per direction) and of the TCP
    pseudo-header and ports (the same both ways)."""
    n = len(p)
    v6, m4 = p.v6, ~p.v6
    tpl = np.zeros((n, 2, _HEAD), np.uint8)
    cmac = np.empty((n, 6), np.uint8)
    cmac[:, 0:2] = (0x02, 0x42)                           # locally administered
    cmac[:, 2:6] = p.caddr[:, 12:]
    tpl[:, C, 0:6] = _ROUTER_MAC
    tpl[:, C, 6:12] = cmac
    tpl[:, S, 0:6] = cmac
    tpl[:, S, 6:12] = _ROUTER_MAC
    tpl[:, :, 12] = np.where(v6, 0x86, 0x08)[:, None]
    tpl[:, :, 13] = np.where(v6, 0xdd, 0x00)[:, None]
    cport = _be(p.cport, ">u2", n, 2)
    sport = _be(p.sport, ">u2", n, 2)
    ends = ((C, p.caddr, p.saddr, cport, sport, p.ttl_c, p.flow_c),
            (S, p.saddr, p.caddr, sport, cport, p.ttl_s, p.flow_s))
    for d, src, dst, sp, dp, ttl, flow in ends:
        if m4.any():
            h = np.zeros((int(m4.sum()), 40), np.uint8)
            h[:, 0] = 0x45
            h[:, 6] = 0x40                                 # DF
            h[:, 8] = ttl[m4]
            h[:, 9] = 6
            h[:, 12:16] = src[m4, 12:]
            h[:, 16:20] = dst[m4, 12:]
            h[:, 20:22] = sp[m4]
            h[:, 22:24] = dp[m4]
            tpl[m4, d, 14:54] = h
        if v6.any():
            k = int(v6.sum())
            h = np.zeros((k, 44), np.uint8)
            fl = flow[v6]
            h[:, 0] = 0x60
            h[:, 1] = fl >> 16
            h[:, 2] = (fl >> 8) & 0xff
            h[:, 3] = fl & 0xff
            h[:, 6] = 6
            h[:, 7] = ttl[v6]
            h[:, 8:24] = src[v6]
            h[:, 24:40] = dst[v6]
            h[:, 40:42] = sp[v6]
            h[:, 42:44] = dp[v6]
            tpl[v6, d, 14:58] = h
    ip_sum = np.zeros((n, 2), np.uint64)
    ip_sum[:, C] = _ones_sum(np.ascontiguousarray(tpl[:, C, 14:34]))
    ip_sum[:, S] = _ones_sum(np.ascontiguousarray(tpl[:, S, 14:34]))
    # IPv4-mapped rows add two 0xffff words: one's-complement zeros, harmless.
    pseudo = _fold(_ones_sum(p.caddr) + _ones_sum(p.saddr) + np.uint64(6)
                   + p.cport.astype(np.uint64) + p.sport.astype(np.uint64))
    return tpl, ip_sum, pseudo


def _headers(rng, pk, p: _Params, tpl):
    """Ethernet + IP + TCP header bytes for every packet row: (n, _HEAD) uint8,
    the header length per row, and the row order used (IPv4 packets first, then
    IPv6, so that every field sits at a fixed column within each group)."""
    tpl, ip_sum, pseudo = tpl
    v6 = p.v6[pk["lc"]]
    groups = [np.flatnonzero(~v6), np.flatnonzero(v6)]
    heads, hlens = [], []
    for fam6, sel in zip((False, True), groups):
        h, l = _head_group(rng, {k: v[sel] for k, v in pk.items()}, p, tpl, ip_sum,
                           pseudo, fam6)
        heads.append(h)
        hlens.append(l)
    return np.concatenate(heads), np.concatenate(hlens), np.concatenate(groups)


def _head_group(rng, pk, p, tpl, ip_sum, pseudo, fam6):
    n = len(pk["t"])
    lc, d, flags, plen = pk["lc"], pk["d"], pk["flags"], pk["plen"]
    head = tpl[lc, d]
    o = 54 if fam6 else 34                                  # TCP header offset
    is_syn = (flags & SYN) != 0

    # --- TCP options.  Established packets carry at most the timestamp option,
    # written column-wise; SYNs (a minority) go through the layout templates.
    tsv = _be(pk["tsval"], ">u4", n, 4)
    tse = _be(pk["tsecr"], ">u4", n, 4)
    ts_rows = ~is_syn & p.ts_ok[lc] & ~pk["noopt"]
    tsm = ts_rows.astype(np.uint8)[:, None]
    head[:, o + 20:o + 24] = tsm * np.array([1, 1, 8, 10], np.uint8)
    head[:, o + 24:o + 28] = tsv * tsm
    head[:, o + 28:o + 32] = tse * tsm
    opt_len = np.where(ts_rows, 12, 0)
    ki = np.flatnonzero(pk["sack_r"] != pk["sack_l"])
    if len(ki):
        # One SACK block after the timestamp option (or alone), NOP-aligned as
        # Linux writes it.
        blk = np.zeros((len(ki), 12), np.uint8)
        blk[:, 0:4] = (1, 1, 5, 10)
        blk[:, 4:8] = _be(pk["sack_l"][ki] & 0xffffffff, ">u4", len(ki), 4)
        blk[:, 8:12] = _be(pk["sack_r"][ki] & 0xffffffff, ">u4", len(ki), 4)
        at = o + 20 + opt_len[ki]
        for i in range(12):
            head[ki, at + i] = blk[:, i]
        opt_len[ki] += 12
    si = np.flatnonzero(is_syn)
    if len(si):
        fromc, slc = d[si] == C, lc[si]
        lid = np.where(fromc, p.lid_c[slc], p.lid_s[slc])
        opt = _LAYOUTS[lid]
        r = np.arange(len(si))
        mss = np.where(fromc, p.mss_c[slc], p.mss_s[slc])
        off = _LAYOUT_OFF["mss"][lid]
        opt[r, off] = mss >> 8
        opt[r, off + 1] = mss & 0xff
        opt[r, _LAYOUT_OFF["ws"][lid]] = np.where(fromc, p.ws_c[slc], p.ws_s[slc]) & 0xff
        off, off2 = _LAYOUT_OFF["tsval"][lid], _LAYOUT_OFF["tsecr"][lid]
        ck = _LAYOUT_OFF["cookie"][lid]
        cookie = p.cookie[slc]
        for i in range(4):
            opt[r, off + i] = tsv[si, i]
            opt[r, off2 + i] = tse[si, i]
        for i in range(8):
            opt[r, ck + i] = cookie[:, i]
        head[si, o + 20:o + 60] = opt[:, :40]
        opt_len[si] = _LAYOUT_LEN[lid]
    tcp_len = 20 + opt_len
    head[:, o + 4:o + 8] = _be(pk["seq"] & 0xffffffff, ">u4", n, 4)
    head[:, o + 8:o + 12] = _be(pk["ack"] & 0xffffffff, ">u4", n, 4)
    head[:, o + 12] = ((tcp_len // 4) << 4) | ((flags >> 8) & 1)
    head[:, o + 13] = flags & 0xff
    head[:, o + 14:o + 16] = _be(pk["win"], ">u2", n, 2)

    # --- TCP checksum: variable header words (the ports are in the static sum),
    # pseudo-header, payload from the prefix-sum table.
    var = np.ascontiguousarray(head[:, o + 4:o + 60])
    s = (_ones_sum(var) + pseudo[lc] + (tcp_len + plen).astype(np.uint64)
         + _PSUM[d, plen])
    csum = (~_fold(s)) & 0xffff
    bad = pk["bad"]
    if bad.any():
        csum = np.where(bad, csum ^ rng.integers(1, 1 << 16, n).astype(np.uint64), csum)
    head[:, o + 16:o + 18] = _be(csum, ">u2", n, 2)

    # --- IP: length, ECN codepoint, IPv4 identification and header checksum
    ecn_ok = p.ecn_c[lc] & p.ecn_s[lc] & (plen > 0)       # ECT(0) on data segments
    if fam6:
        head[:, 18:20] = _be(tcp_len + plen, ">u2", n, 2)
        head[:, 15] |= np.where(ecn_ok, 0x20, 0).astype(np.uint8)
    else:
        total = 20 + tcp_len + plen
        ipid = (np.where(d == C, p.ipid_c[lc], p.ipid_s[lc]) + pk["key"] // 2) & 0xffff
        tos = np.where(ecn_ok, 2, 0)
        head[:, 15] = tos
        head[:, 16:18] = _be(total, ">u2", n, 2)
        head[:, 18:20] = _be(ipid, ">u2", n, 2)
        s = ip_sum[lc, d] + total.astype(np.uint64) + ipid.astype(np.uint64) \
            + tos.astype(np.uint64)
        head[:, 24:26] = _be((~_fold(s)) & 0xffff, ">u2", n, 2)
    return head, (o + tcp_len).astype(np.int32)


# ---------------------------------------------------------------------------
# Output formats.

def _relink(head, hlen, d, link):
    """Re-frame Ethernet header rows for another link layer."""
    if link == "ethernet":
        return head, hlen
    n = len(head)
    if link == "raw":
        return np.ascontiguousarray(head[:, 14:]), hlen - 14
    if link == "vlan":
        # One 802.1Q tag (TPID 0x8100, priority 0, VLAN 100) before the EtherType.
        out = np.empty((n, head.shape[1] + 4), np.uint8)
        out[:, :12] = head[:, :12]
        out[:, 12:16] = (0x81, 0x00, 0x00, 100)
        out[:, 16:] = head[:, 12:]
        return out, hlen + 4
    # Linux cooked capture v1, taken on the client: its own packets are
    # "outgoing" (4), the server's are "to us" (0); the address is the sender's MAC.
    out = np.zeros((n, head.shape[1] + 2), np.uint8)
    out[:, 1] = np.where(d == C, 4, 0)
    out[:, 3] = 1                                            # ARPHRD_ETHER
    out[:, 5] = 6
    out[:, 6:12] = head[:, 6:12]
    out[:, 14:16] = head[:, 12:14]
    out[:, 16:] = head[:, 14:]
    return out, hlen + 2


def _file_header(fmt: str, nanosecond: bool, snaplen: int,
                 linktype: int = LINKTYPE_ETHERNET) -> bytes:
    if fmt == "pcap":
        magic = 0xa1b23c4d if nanosecond else 0xa1b2c3d4
        return np.array([magic], "<u4").tobytes() + np.array([2, 4], "<u2").tobytes() + \
            np.array([0, 0, snaplen, linktype], "<u4").tobytes()
    shb = (np.array([0x0A0D0D0A, 28, 0x1A2B3C4D], "<u4").tobytes()
           + np.array([1, 0], "<u2").tobytes()
           + np.array([-1], "<i8").tobytes() + np.array([28], "<u4").tobytes())
    opts = b""
    if nanosecond:
        # if_tsresol = 9: timestamps in nanoseconds (default is microseconds).
        opts = np.array([9, 1], "<u2").tobytes() + b"\x09\x00\x00\x00" + \
            np.array([0, 0], "<u2").tobytes()
    blen = 20 + len(opts)
    idb = (np.array([1, blen], "<u4").tobytes()
           + np.array([linktype, 0], "<u2").tobytes()
           + np.array([snaplen], "<u4").tobytes() + opts + np.array([blen], "<u4").tobytes())
    return shb + idb


def _records(fmt, nanosecond, snaplen, head, hlen, plen, pay_off, ts):
    """File bytes for a run of packets (already in time order)."""
    n = len(ts)
    orig = hlen.astype(np.int64) + plen
    cap = np.minimum(orig, snaplen)
    head_cap = np.minimum(hlen, cap).astype(np.int32)
    pay_cap = (cap - head_cap).astype(np.int32)
    if fmt == "pcap":
        pre = np.empty((n, 4), "<u4")
        pre[:, 0] = ts // _SEC
        pre[:, 1] = (ts % _SEC) if nanosecond else (ts % _SEC) // _US
        pre[:, 2] = cap
        pre[:, 3] = orig
        pre_len, trailer = 16, 0
    else:
        units = ts if nanosecond else ts // _US
        pad = (-cap) % 4
        pre = np.empty((n, 7), "<u4")
        pre[:, 0] = 6
        pre[:, 1] = 32 + cap + pad
        pre[:, 2] = 0
        pre[:, 3] = units >> 32
        pre[:, 4] = units & 0xffffffff
        pre[:, 5] = cap
        pre[:, 6] = orig
        pre_len, trailer = 28, 4
    total = int(n * (pre_len + trailer) + cap.sum() + (((-cap) % 4).sum() if trailer else 0))
    out = np.empty(total, np.uint8)
    pre8 = pre.view(np.uint8).reshape(n, pre_len)
    w = assemble(out, pre8, pre_len, head, head_cap, _PATTERN, pay_off.astype(np.int64),
                 pay_cap, fmt == "pcapng")
    assert w == total
    return out


# ---------------------------------------------------------------------------
# The driver.

def _parse_mix(mix) -> Dict[str, float]:
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


def _schedule(rng, connections, mix, start_ns, duration_ns, quantum, flood_bursts):
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


@dataclass
class SynthResult:
    """What ``generate`` wrote."""
    path: str
    packets: int
    connections: int
    truth: Optional[str]
    bytes: int
    seconds: float
    kinds: Dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for people: what was written and how fast."""
        rate = self.packets / self.seconds if self.seconds > 0 else 0.0
        line = (f"wrote {self.path}: {self.packets} packets, {self.connections} "
                f"connections, {self.bytes / 1e6:.1f} MB in {self.seconds:.2f} s "
                f"({rate / 1e6:.2f} M packets/s)")
        return line + (f"; truth in {self.truth}" if self.truth else "")


@dataclass
class SynthPackets:
    """Packets in memory (link-layer frames in time order, ``linktype`` says which)
    and their ground truth."""
    data: np.ndarray         # uint8, all frames back to back
    offsets: np.ndarray      # int64, start of each frame in data
    caplens: np.ndarray      # int32, captured bytes per frame
    lens: np.ndarray         # int32, original length per frame
    ts_ns: np.ndarray        # int64, nanoseconds since the epoch
    truth: Dict[str, np.ndarray]
    linktype: int = LINKTYPE_ETHERNET

    def __len__(self):
        return len(self.offsets)


def _stream(connections, seed, mix, ipv6_fraction, start_ts, duration, nanosecond,
            bad_checksum_fraction, block_size, flood_bursts):
    """Yield (packet batch, truth batch) in global time order, block by block."""
    if not 0 <= connections <= 1 << _ID_BITS:
        raise ValueError(f"connections must be within [0, {1 << _ID_BITS}]")
    if block_size < 1:
        raise ValueError("block_size must be >= 1")
    if not 0 <= ipv6_fraction <= 1 or not 0 <= bad_checksum_fraction <= 1:
        raise ValueError("fractions must be within [0, 1]")
    if int(seed) != seed or seed < 0:
        raise ValueError("seed must be a non-negative integer")
    seed = int(seed)
    mix = _parse_mix(mix)
    quantum = 1 if nanosecond else _US
    start_ns = int(round(float(start_ts) * _SEC))
    if duration is None:
        duration = max(10.0, connections / 2000.0)
    duration_ns = max(int(float(duration) * _SEC), 1)
    root = np.random.SeedSequence(seed)
    rng = np.random.default_rng(root.spawn(1)[0])
    kind, syn, burst, bursts = _schedule(rng, connections, mix, start_ns, duration_ns,
                                         quantum, flood_bursts)
    carry = None
    for b, lo in enumerate(range(0, connections, block_size)):
        hi = min(lo + block_size, connections)
        brng = np.random.default_rng([seed & 0xffffffffffff, b + 1])
        gidx = np.arange(lo, hi, dtype=np.int64)
        p = _params(brng, gidx, kind[lo:hi].astype(np.int64), syn[lo:hi], burst[lo:hi],
                    bursts, ipv6_fraction)
        pk, truth = _block(brng, p, quantum, bad_checksum_fraction)
        head, hlen, order = _headers(brng, pk, p, _templates(p))
        pk = {k: v[order] for k, v in pk.items()}
        new = {"ts": pk["t"], "conn": gidx[pk["lc"]], "key": pk["key"], "head": head,
               "hlen": hlen, "plen": pk["plen"], "pay_off": pk["d"] * _PAT_LEN}
        if carry is not None:
            new = {k: np.concatenate([carry[k], new[k]]) for k in new}
        order = np.lexsort((new["key"], new["conn"], new["ts"]))
        new = {k: v[order] for k, v in new.items()}
        bound = syn[hi] if hi < connections else np.iinfo(np.int64).max
        cut = int(np.searchsorted(new["ts"], bound, "left"))
        out = {k: v[:cut] for k, v in new.items()}
        carry = {k: v[cut:] for k, v in new.items()}
        yield out, (p, truth)
    if carry is not None and len(carry["ts"]):
        yield carry, None


def _truth_rows(p: _Params, t: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Truth columns (text-ready) for one block."""
    v6 = p.v6
    ipv = np.where(v6, 6, 4)
    ws_c = p.ws_c
    return {
        "conn": p.gidx, "kind": np.array(KINDS)[p.kind],
        "client": _format_addresses(p.caddr, v6), "client_port": p.cport,
        "server": _format_addresses(p.saddr, v6), "server_port": p.sport,
        "ip_version": ipv, "syn_ts": t["syn_ts"], "syn_ts_ns": t["syn_ts"],
        "conn_state": np.array(CONN_STATES)[t["state"]],
        "closer": np.array(_CLOSERS)[t["closer"]], "close": np.array(_CLOSES)[t["close"]],
        "syn_count": t["syn_count"], "synack_count": t["synack_count"],
        "fin_count": t["fin_count"], "rst_count": t["rst_count"],
        "handshake_completed": t["completed"], "handshake_rtt": t["rtt"],
        "orig_bytes": t["orig_bytes"], "resp_bytes": t["resp_bytes"],
        "tfo": np.array(_TFO)[p.tfo], "tfo_data": t["tfo_data"],
        "orig_isn": p.isn_c, "resp_isn": np.where(t["synack_count"] > 0, p.isn_s, -1),
        "mss": np.where(p.lid_c > 0, p.mss_c, -1), "wscale": ws_c,
        "sack": p.sack_c, "ts": p.ts_c, "ecn": p.ecn_c,
        "resp_mss": np.where(t["synack_count"] > 0, p.mss_s, -1),
        "resp_wscale": np.where(t["synack_count"] > 0, p.ws_s, -1),
        "ecn_ok": p.ecn_c & p.ecn_s & (t["synack_count"] > 0),
        "packets": t["packets"], "bad_checksums": t["bad_checksums"],
        "orig_pkts": t["orig_pkts"], "resp_pkts": t["resp_pkts"], "duration": t["duration"],
        "syn_synack": t["syn_synack"], "synack_ack": t["synack_ack"],
        "retransmits": t["retransmits"], "keepalives": t["keepalives"],
        "zeek_conns": t["zeek_conns"], "zeek_orig_pkts": t["zeek_orig_pkts"],
        "zeek_resp_pkts": t["zeek_resp_pkts"],
    }


_SECONDS_COLUMNS = ("syn_ts", "handshake_rtt", "duration", "syn_synack", "synack_ack")


def _truth_text(rows: Dict[str, np.ndarray], kind: str) -> str:
    """One block of truth rows as CSV ('csv') or JSON lines ('json').

    Each row is one ``%``-format of Python ints and short strings (the strings
    are addresses and fixed names: nothing to escape), which is several times
    faster than converting every value to text separately."""
    json_ = kind == "json"
    fmt, cols = [], []
    for name in TRUTH_COLUMNS:
        col = rows[name]
        key = f'"{name}":' if json_ else ""
        if name in _SECONDS_COLUMNS:
            ns = col.astype(np.int64)
            if (ns >= 0).all():
                fmt.append(key + "%d.%09d")
                cols += [(ns // _SEC).tolist(), (ns % _SEC).tolist()]
            else:
                absent = "null" if json_ else ""
                fmt.append(key + "%s")
                cols.append([f"{v // _SEC}.{v % _SEC:09d}" if v >= 0 else absent
                             for v in ns.tolist()])
        elif col.dtype == bool:
            fmt.append(key + "%s")
            cols.append(np.where(col, "true" if json_ else "1",
                                 "false" if json_ else "0").tolist())
        elif col.dtype.kind in "OUS":
            fmt.append(key + ('"%s"' if json_ else "%s"))
            cols.append(col.tolist())
        else:
            fmt.append(key + "%d")
            cols.append(col.astype(np.int64).tolist())
    line = ",".join(fmt)
    if json_:
        line = "{" + line + "}"
    return "".join(map((line + "\n").__mod__, zip(*cols)))


def _format_addresses(addrs: np.ndarray, v6: np.ndarray) -> np.ndarray:
    """Text addresses: dotted quads straight from the bytes; IPv6 through the C
    library's inet_ntop (RFC 5952 form), once per distinct address."""
    out = np.empty(len(addrs), dtype=object)
    m4 = ~v6
    if m4.any():
        out[m4] = [f"{a}.{b}.{c}.{d}" for a, b, c, d in addrs[m4, 12:].tolist()]
    if v6.any():
        uniq, inverse = np.unique(addrs[v6], axis=0, return_inverse=True)
        text = np.array([socket.inet_ntop(socket.AF_INET6, row.tobytes()) for row in uniq],
                        dtype=object)
        out[v6] = text[inverse.reshape(-1)]
    return out


def _write_truth(f, rows: Dict[str, np.ndarray], kind: str):
    f.write(_truth_text(rows, kind))


def _truth_kind(path: str) -> str:
    low = path.lower()
    return "json" if low.endswith((".jsonl", ".json", ".ndjson")) else "csv"


def _open_output(path: str):
    """The capture file, compressed when its name ends in .gz (stdlib) or .zst
    (needs the optional ``zstandard`` package)."""
    low = path.lower()
    if low.endswith(".gz"):
        import gzip
        return gzip.open(path, "wb", compresslevel=1)
    if low.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise ValueError(f"{path}: writing .zst needs the 'zstandard' package") from None
        return zstandard.ZstdCompressor(level=1).stream_writer(open(path, "wb"),
                                                               closefd=True)
    return open(path, "wb")


def generate(path, connections: int = 10000, *, seed: int = 0, mix=None,
             ipv6_fraction: float = 0.2, start_ts: float = 1_700_000_000.0,
             duration: Optional[float] = None, format: str = "pcap",
             nanosecond: bool = False, truth: Optional[str] = None,
             bad_checksum_fraction: float = 0.0, snaplen: int = 262144,
             block_size: int = 20_000, flood_bursts: int = 2,
             link: str = "ethernet") -> SynthResult:
    """Write a synthetic capture (and optionally its ground truth).

    Parameters
    ----------
    path : output capture file (``.pcap`` or ``.pcapng`` per ``format``);
        gzip- or zstd-compressed when the name ends in ``.gz`` / ``.zst``.
    connections : number of TCP connections, spoofed flood SYNs included (each
        flood SYN is a connection of its own, as Wireshark and Zeek see it).
    seed : the same seed and arguments give byte-identical output.
    mix : weights per scenario kind (dict or ``"fin_orig=50,refused=5"``);
        default ``DEFAULT_MIX``.  ``scenarios()`` lists the kinds.
    ipv6_fraction : share of connections over IPv6.
    start_ts, duration : first-SYN times are spread over
        ``[start_ts, start_ts + duration)`` seconds (default duration:
        ``max(10, connections / 2000)``); later packets of a connection follow.
    format : ``"pcap"`` or ``"pcapng"``; ``nanosecond`` selects the nanosecond
        pcap magic / pcapng ``if_tsresol`` = 9 (else microseconds).
    truth : path of the ground-truth file, CSV, or JSON lines if it ends in
        ``.jsonl``/``.json``; one row per connection in first-SYN order (the
        order of Wireshark's tcp.stream), columns ``TRUTH_COLUMNS``: Zeek's
        ``conn_state``, ``closer`` (orig/resp/none) and ``close`` (fin/rst/none)
        of the first FIN or RST, SYN/SYN-ACK/FIN/RST counts, handshake times
        (``syn_ts``, ``handshake_rtt`` = first SYN to completing ACK as
        Wireshark's iRTT, ``syn_synack``, ``synack_ack``, ``duration``: seconds
        with nanosecond digits, empty/null when absent), payload bytes each way
        (distinct bytes, retransmissions counted once), TFO, the options the
        client offered (``mss``/``wscale`` -1 when absent) and the server's
        answer, packets per direction including ``bad_checksums`` copies,
        retransmitted data segments and keepalive probes (SYN retransmissions
        are in ``syn_count``).  A row is Wireshark's view (one tcp.stream);
        ``zeek_conns``, ``zeek_orig_pkts`` and ``zeek_resp_pkts`` are what
        ``fastseg.track`` (Zeek's rules) reports for it: an unanswered SYN
        retransmitted past tcp_attempt_delay (5 s) starts a new connection,
        and damaged copies never reach the state machine.
    bad_checksum_fraction : probability per non-handshake packet that the tap
        also saw a damaged copy of it (wrong TCP checksum) just before it; the
        truth counts them per connection (``bad_checksums``).
    snaplen : capture length limit per packet.
    block_size : connections generated at a time (bounds memory).
    flood_bursts : number of SYN-flood bursts the ``flood`` connections form.
    link : link layer: ``"ethernet"`` (default), ``"vlan"`` (Ethernet with one
        802.1Q tag), ``"raw"`` (LINKTYPE_RAW 101) or ``"sll"`` (Linux cooked
        capture, LINKTYPE_LINUX_SLL 113, taken on the client).
    """
    if format not in ("pcap", "pcapng"):
        raise ValueError(f"format must be 'pcap' or 'pcapng', not {format!r}")
    if snaplen < 64:
        raise ValueError("snaplen must be >= 64")
    if link not in LINKS:
        raise ValueError(f"link must be one of {', '.join(LINKS)}, not {link!r}")
    started = time.perf_counter()
    path = os.fspath(path)
    truth = os.fspath(truth) if truth else None
    npk = nbytes = 0
    kinds = np.zeros(len(KINDS), np.int64)
    tf = open(truth, "w", encoding="ascii", newline="\n") if truth else None
    tkind = _truth_kind(truth) if truth else None
    if tf is not None and tkind == "csv":
        tf.write(",".join(TRUTH_COLUMNS) + "\n")
    try:
        with _open_output(path) as f:
            hdr = _file_header(format, nanosecond, snaplen, LINKS[link])
            f.write(hdr)
            nbytes += len(hdr)
            for batch, blk in _stream(connections, seed, mix, ipv6_fraction, start_ts,
                                      duration, nanosecond, bad_checksum_fraction,
                                      block_size, flood_bursts):
                if len(batch["ts"]):
                    head, hlen = _relink(batch["head"], batch["hlen"],
                                         batch["pay_off"] // _PAT_LEN, link)
                    out = _records(format, nanosecond, snaplen, head, hlen,
                                   batch["plen"], batch["pay_off"], batch["ts"])
                    f.write(memoryview(out))
                    nbytes += len(out)
                    npk += len(batch["ts"])
                if blk is not None:
                    p, t = blk
                    kinds += np.bincount(p.kind, minlength=len(KINDS))
                    if tf is not None:
                        _write_truth(tf, _truth_rows(p, t), tkind)
    finally:
        if tf is not None:
            tf.close()
    return SynthResult(path=path, packets=npk, connections=connections,
                       truth=os.fspath(truth) if truth else None, bytes=nbytes,
                       seconds=time.perf_counter() - started,
                       kinds={k: int(c) for k, c in zip(KINDS, kinds) if c})


DEMO_CONNECTIONS = 20_000


def demo(path, connections: int = DEMO_CONNECTIONS, *, seed: int = 0,
         truth: Optional[str] = None, **kwargs) -> SynthResult:
    """The capture behind ``fastseg demo``: every scenario kind of ``DEFAULT_MIX``
    (so every part of the analysis report has something to say), two SYN-flood
    bursts and a few damaged checksums (0.2 % of packets unless overridden)."""
    kwargs.setdefault("bad_checksum_fraction", 0.002)
    return generate(path, connections, seed=seed, truth=truth, **kwargs)


def packets(connections: int = 1000, *, seed: int = 0, mix=None,
            ipv6_fraction: float = 0.2, start_ts: float = 1_700_000_000.0,
            duration: Optional[float] = None, nanosecond: bool = True,
            bad_checksum_fraction: float = 0.0, snaplen: int = 262144,
            block_size: int = 20_000, flood_bursts: int = 2,
            link: str = "ethernet") -> SynthPackets:
    """The same packets ``generate`` would write, as link-layer frames in memory.

    Returns ``SynthPackets`` (``data``, ``offsets``, ``caplens``, ``lens``,
    ``ts_ns``, ``truth`` as a dict of arrays with the ``TRUTH_COLUMNS`` names;
    its time columns are int64 nanoseconds, -1 when absent).  Timestamps are
    nanoseconds unless ``nanosecond=False`` (then whole microseconds, exactly
    as ``generate`` writes them by default)."""
    if link not in LINKS:
        raise ValueError(f"link must be one of {', '.join(LINKS)}, not {link!r}")
    datas, caps, lens, tss, truths = [], [], [], [], []
    for batch, blk in _stream(connections, seed, mix, ipv6_fraction, start_ts,
                              duration, nanosecond, bad_checksum_fraction,
                              block_size, flood_bursts):
        n = len(batch["ts"])
        if n:
            head, hlen = _relink(batch["head"], batch["hlen"],
                                 batch["pay_off"] // _PAT_LEN, link)
            orig = hlen.astype(np.int64) + batch["plen"]
            cap = np.minimum(orig, snaplen)
            head_cap = np.minimum(hlen, cap).astype(np.int32)
            out = np.empty(int(cap.sum()), np.uint8)
            assemble(out, np.zeros((n, 0), np.uint8), 0, head, head_cap,
                     _PATTERN, batch["pay_off"].astype(np.int64),
                     (cap - head_cap).astype(np.int32), False)
            datas.append(out)
            caps.append(cap)
            lens.append(orig)
            tss.append(batch["ts"])
        if blk is not None:
            truths.append(_truth_rows(*blk))
    caplens = np.concatenate(caps).astype(np.int32) if caps else np.zeros(0, np.int32)
    offsets = np.zeros(len(caplens), np.int64)
    if len(caplens):
        offsets[1:] = np.cumsum(caplens[:-1])
    truth = {k: np.concatenate([t[k] for t in truths]) for k in TRUTH_COLUMNS} \
        if truths else {k: np.zeros(0) for k in TRUTH_COLUMNS}
    return SynthPackets(
        data=np.concatenate(datas) if datas else np.zeros(0, np.uint8),
        offsets=offsets, caplens=caplens,
        lens=np.concatenate(lens).astype(np.int32) if lens else np.zeros(0, np.int32),
        ts_ns=np.concatenate(tss) if tss else np.zeros(0, np.int64), truth=truth,
        linktype=LINKS[link])


# ---------------------------------------------------------------------------
# Command line (wired in by fastseg.cli as `fastseg synth`).

def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``fastseg synth`` options to ``parser``."""
    parser.add_argument("-o", "--output", required=True, help="capture file to write")
    parser.add_argument("--connections", "-n", type=int, default=10000,
                        help="number of connections (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--format", choices=("pcap", "pcapng"), default=None,
                        help="capture format (default: from the file name, else pcap)")
    parser.add_argument("--nanosecond", action="store_true",
                        help="nanosecond timestamps (default microseconds)")
    parser.add_argument("--mix", default=None,
                        help="scenario weights, e.g. 'fin_orig=50,refused=5,flood=10'; "
                             "kinds: " + ", ".join(KINDS))
    parser.add_argument("--truth", default=None,
                        help="ground-truth file (CSV, or JSON lines for .jsonl)")
    parser.add_argument("--ipv6-fraction", type=float, default=0.2,
                        help="share of connections over IPv6 (default 0.2)")
    parser.add_argument("--start", type=float, default=1_700_000_000.0,
                        help="first SYN time, seconds since the epoch")
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds over which connections start")
    parser.add_argument("--bad-checksum-fraction", type=float, default=0.0,
                        help="share of packets also seen as a damaged copy (default 0)")
    parser.add_argument("--snaplen", type=int, default=262144,
                        help="captured bytes per packet at most (default 262144)")
    parser.add_argument("--flood-bursts", type=int, default=2,
                        help="SYN-flood bursts formed by the flood connections (default 2)")
    parser.add_argument("--link", choices=tuple(LINKS), default="ethernet",
                        help="link layer (default ethernet)")
    parser.add_argument("--block-size", type=int, default=20_000,
                        help="connections generated at a time (bounds memory)")
    return parser


def run_from_args(args: argparse.Namespace) -> SynthResult:
    """Run ``fastseg synth`` from parsed arguments; returns the result (the CLI
    prints it).  Raises ValueError on bad arguments."""
    name = str(args.output).lower()
    for ext in (".gz", ".zst"):
        name = name[:-len(ext)] if name.endswith(ext) else name
    fmt = args.format or ("pcapng" if name.endswith(".pcapng") else "pcap")
    return generate(args.output, args.connections, seed=args.seed, mix=args.mix,
                    ipv6_fraction=args.ipv6_fraction, start_ts=args.start,
                    duration=args.duration, format=fmt, nanosecond=args.nanosecond,
                    truth=args.truth, bad_checksum_fraction=args.bad_checksum_fraction,
                    snaplen=args.snaplen, block_size=args.block_size,
                    flood_bursts=args.flood_bursts, link=args.link)
