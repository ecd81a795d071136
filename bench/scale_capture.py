"""Scale a small real capture up to millions of packets, keeping what makes it
real: its packets, timings and unfilled (offloaded) checksums.

Copy k of the input is shifted in time by k * gap seconds and its client
address (every address but the server's: the destination of the first SYN) is
rewritten to 127.(1 + k / 65536).(k / 256 % 256).(k % 256).  The IPv4 header
checksum is updated (RFC 1624) and the TCP checksum field keeps its pattern: a
field holding the unfilled pseudo-header sum gets the new pseudo-header sum,
a filled checksum is updated incrementally, so a verifier sees the same
ok/bad/offload picture in every copy.

    python bench/scale_capture.py bench/data/lo_http.pcap.gz OUT.pcap --packets 6000000
"""
import argparse
import gzip
import struct

import numpy as np


def read_pcap(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    magic = struct.unpack("<I", raw[:4])[0]
    if magic not in (0xA1B2C3D4, 0xA1B23C4D):
        raise SystemExit("only little-endian pcap input is supported")
    nano = magic == 0xA1B23C4D
    linktype = struct.unpack("<I", raw[20:24])[0]
    if linktype != 1:
        raise SystemExit("only Ethernet (linktype 1) input is supported")
    pos, offs = 24, []
    while pos + 16 <= len(raw):
        incl = struct.unpack_from("<I", raw, pos + 8)[0]
        offs.append(pos)
        pos += 16 + incl
    return np.frombuffer(raw[:pos], np.uint8).copy(), np.array(offs, np.int64), nano, raw[:24]


def fold(x):
    x = x.astype(np.uint64)
    for _ in range(3):
        x = (x & np.uint64(0xFFFF)) + (x >> np.uint64(16))
    return x


def be16(buf, at):
    return (buf[at].astype(np.uint64) << np.uint64(8)) | buf[at + 1]


def put16(buf, at, v):
    v = v.astype(np.uint64)
    buf[at] = (v >> np.uint64(8)).astype(np.uint8)
    buf[at + 1] = (v & np.uint64(0xFF)).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--packets", type=int, default=6_000_000, help="at least this many packets")
    ap.add_argument("--gap", type=float, default=0.5, help="seconds between copies")
    a = ap.parse_args()
    buf, rec, nano, header = read_pcap(a.input)
    ip = rec + 16 + 14
    ok = (be16(buf, rec + 16 + 12) == 0x0800) & (buf[ip] == 0x45) & (buf[ip + 9] == 6)
    rec, ip = rec[ok], ip[ok]          # IPv4/TCP without IP options
    src, dst = ip + 12, ip + 16
    tcp = ip + 20
    flags = buf[tcp + 13]
    first_syn = np.flatnonzero((flags & 0x12) == 0x02)[0]
    server = buf[dst[first_syn]:dst[first_syn] + 4].copy()
    addr = lambda at: np.stack([buf[at + i] for i in range(4)], axis=1)  # noqa: E731
    src_client = ~(addr(src) == server).all(axis=1)
    dst_client = ~(addr(dst) == server).all(axis=1)
    client_at = np.where(src_client, src, dst)
    old = addr(client_at).astype(np.uint64)
    old_sum = (old[:, 0] << np.uint64(8) | old[:, 1]) + (old[:, 2] << np.uint64(8) | old[:, 3])
    if (src_client & dst_client).any():
        raise SystemExit("a packet between two clients: only client<->server traffic scales")
    # Pseudo-header sums before the rewrite: which TCP fields are unfilled.
    tcp_len = be16(buf, ip + 2) - np.uint64(20)
    words = lambda at: be16(buf, at) + be16(buf, at + 2)  # noqa: E731
    pseudo = fold(words(src) + words(dst) + np.uint64(6) + tcp_len)
    field = be16(buf, tcp + 16)
    unfilled = (field == pseudo) | (field == (~pseudo & np.uint64(0xFFFF)))
    ipsum = be16(buf, ip + 10)
    tsec = buf[rec[:, None] + np.arange(4)].copy().view("<u4").reshape(-1).astype(np.int64)
    tfrac = buf[rec[:, None] + 4 + np.arange(4)].copy().view("<u4").reshape(-1).astype(np.int64)
    unit = 10 ** 9 if nano else 10 ** 6
    t0 = tsec * unit + tfrac
    keep = np.zeros(len(buf), bool)
    for r in rec:
        keep[r:r + 16 + int(buf[r + 8]) + (int(buf[r + 9]) << 8)] = True
    # Rebase offsets into the compacted template of kept records.
    newpos = np.cumsum(keep) - 1
    tmpl = buf[keep]
    rec2 = newpos[rec]
    shift = lambda at: newpos[at]  # noqa: E731
    ip2, tcp2, cl2 = shift(ip), shift(tcp), shift(client_at)
    copies = -(-a.packets // len(rec))
    out = open(a.output, "wb")
    out.write(header)
    gap = int(round(a.gap * unit))
    for k in range(copies):
        b = tmpl.copy()
        new = np.array([127, 1 + (k >> 16), (k >> 8) & 255, k & 255], np.uint8)
        for i in range(4):
            b[cl2 + i] = new[i]
        new_sum = np.uint64(int(new[0]) << 8 | int(new[1])) + np.uint64(int(new[2]) << 8 | int(new[3]))
        # RFC 1624 eqn. 3 for the (complemented) IP checksum.
        m_off = (~fold(old_sum)) & np.uint64(0xFFFF)
        put16(b, ip2 + 10, ~fold(((~ipsum) & np.uint64(0xFFFF)) + m_off + new_sum) & np.uint64(0xFFFF))
        tf = be16(b, tcp2 + 16)
        filled = ~fold(((~tf) & np.uint64(0xFFFF)) + m_off + new_sum) & np.uint64(0xFFFF)
        srcw = be16(b, ip2 + 12) + be16(b, ip2 + 14)
        dstw = be16(b, ip2 + 16) + be16(b, ip2 + 18)
        partial = fold(srcw + dstw + np.uint64(6) + tcp_len)
        put16(b, tcp2 + 16, np.where(unfilled, partial, filled))
        t = t0 + k * gap
        b[rec2[:, None] + np.arange(4)] = (t // unit).astype("<u4").view(np.uint8).reshape(-1, 4)
        b[rec2[:, None] + 4 + np.arange(4)] = (t % unit).astype("<u4").view(np.uint8).reshape(-1, 4)
        b.tofile(out)
    out.close()
    print(f"{a.output}: {copies} copies, {copies * len(rec)} packets")


if __name__ == "__main__":
    main()
