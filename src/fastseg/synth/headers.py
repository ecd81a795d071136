"""Packet headers for the rows a scenario script produced.

Headers for all packets of a block are assembled column-wise: fixed byte
templates per connection and direction, option layouts per SYN kind, fancy
indexing for the variable fields.  The TCP checksum is the sum of the header
words, the pseudo-header words and a prefix-sum table over the fixed payload
pattern, so no payload byte is read per packet; the sums are the numpy form
of RFC 1071 (the packet kernels in _checksum verify the result in the tests).
"""
from __future__ import annotations

import numpy as np

from .scenarios import SYN, C, S, Params

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


# ---------------------------------------------------------------------------
# Payload: every segment carries a prefix of one of two fixed patterns (request
# text from the client, response text from the server), so the payload part of
# the TCP checksum is a lookup in a prefix-sum table.

PAT_LEN = 16384


def _make_pattern(head: bytes, filler: bytes) -> bytes:
    body = head + filler * (PAT_LEN // len(filler) + 1)
    return body[:PAT_LEN]


_REQ = _make_pattern(b"GET /api/v1/items?page=2 HTTP/1.1\r\nHost: example.net\r\n"
                     b"User-Agent: fastseg-synth/1\r\nAccept: */*\r\n",
                     b"X-Pad: abcdefghijklmnopqrstuvwxyz0123456789\r\n")
_RSP = _make_pattern(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Server: synth\r\n\r\n",
                     b"Lorem ipsum dolor sit amet, consectetur adipiscing elit. ")
PATTERN = np.frombuffer(_REQ + _RSP, np.uint8)


def _prefix_sums(pat: bytes) -> np.ndarray:
    a = np.frombuffer(pat, np.uint8).astype(np.uint64)
    words = np.zeros(len(a), np.uint64)
    words[0::2] = a[0::2] << np.uint64(8)     # big-endian 16-bit words
    words[1::2] = a[1::2]
    return np.concatenate([[0], np.cumsum(words)]).astype(np.uint64)


_PSUM = np.stack([_prefix_sums(_REQ), _prefix_sums(_RSP)])


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


_ROUTER_MAC = np.array([0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x01], np.uint8)
_HEAD = 114          # Ethernet 14 + IPv6 40 + TCP 60: the widest header


def templates(p: Params):
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


def headers(rng, pk, p: Params, tpl):
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

def relink(head, hlen, d, link):
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
