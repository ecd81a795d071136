"""Pure-Python builders of small valid captures, with the position of every record.

The seed corpus (``fuzz/corpus``) and the mutation property suite
(``tests/test_hostile.py``) both start from these captures.  Everything is laid
out with ``struct`` straight from the formats (libpcap savefile, pcapng), so the
builders share no code with the reader they exercise.  Each builder returns a
:class:`Built`: the file bytes, the byte offset of every packet record / block
(so a mutation can aim at a length field) and the format.
"""
import gzip
import os
import struct
import sys
from dataclasses import dataclass, field
from typing import List

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from refs import internet_checksum  # noqa: E402

ETH, RAW, NULL, SLL, SLL2 = 1, 101, 0, 113, 276


@dataclass
class Built:
    data: bytes
    fmt: str                                        # "pcap" or "pcapng"
    big: bool
    records: List[int] = field(default_factory=list)  # offsets of packet records / blocks
    blocks: List[int] = field(default_factory=list)   # pcapng: offsets of every block
    hdr_len: int = 16                                 # pcap record header length
    tcp: int = -1                                     # TCP packets in it (-1: not counted)


def tcp_header(sport, dport, seq, ack, flags, *, window=65535, options=b""):
    options += b"\x01" * (-len(options) % 4)
    off = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, window, 0, 0) + options


SYN_OPTS = (b"\x02\x04\x05\xb4"          # MSS 1460
            b"\x04\x02"                  # SACK permitted
            b"\x08\x0a\x00\x00\x10\x00\x00\x00\x00\x00"   # timestamps
            b"\x01\x03\x03\x07")         # NOP, wscale 7


def ipv4_tcp(src, dst, tcp, payload=b"", *, ttl=64, ip_id=1, frag=0, ip_options=b""):
    ip_options += b"\0" * (-len(ip_options) % 4)
    ihl = 5 + len(ip_options) // 4
    seg = tcp + payload
    pseudo = bytes(src) + bytes(dst) + struct.pack("!BBH", 0, 6, len(seg))
    csum = internet_checksum(pseudo + seg)
    seg = seg[:16] + struct.pack("!H", csum) + seg[18:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + len(seg), ip_id, frag, ttl, 6, 0,
                      bytes(src), bytes(dst)) + ip_options
    hdr = hdr[:10] + struct.pack("!H", internet_checksum(hdr)) + hdr[12:]
    return hdr + seg


def ipv6_tcp(src, dst, tcp, payload=b"", *, hop_by_hop=False):
    seg = tcp + payload
    pseudo = bytes(src) + bytes(dst) + struct.pack("!IxxxB", len(seg), 6)
    csum = internet_checksum(pseudo + seg)
    seg = seg[:16] + struct.pack("!H", csum) + seg[18:]
    ext, nxt = b"", 6
    if hop_by_hop:
        ext, nxt = bytes([6, 0, 1, 4, 0, 0, 0, 0]), 0
    return struct.pack("!IHBB16s16s", 0x60000000, len(ext) + len(seg), nxt, 64,
                       bytes(src), bytes(dst)) + ext + seg


def ethernet(ip, *, v6=False, vlans=()):
    out = b"\x02\0\0\0\0\x01" + b"\x02\0\0\0\0\x02"
    for vid in vlans:
        out += struct.pack("!HH", 0x8100, vid)
    return out + struct.pack("!H", 0x86DD if v6 else 0x0800) + ip


def sll(ip, *, v6=False):
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0", 0x86DD if v6 else 0x0800) + ip


def sll2(ip, *, v6=False):
    return struct.pack("!HHIHBB8s", 0x86DD if v6 else 0x0800, 0, 1, 1, 0, 6,
                       b"\x02\0\0\0\0\x01\0\0") + ip


def null_loop(ip, *, v6=False, big=False):
    return struct.pack(">I" if big else "<I", 24 if v6 else 2) + ip


A4, B4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8000000000000000000000002")


def connection_ips(v6=False, *, sport=40000, dport=80):
    """IP packets of one whole TCP connection: handshake, data both ways, FIN close."""
    a, b = (A6, B6) if v6 else (A4, B4)
    mk = ipv6_tcp if v6 else ipv4_tcp
    c, s = 1000, 5000
    S, A, F, P, R = 0x02, 0x10, 0x01, 0x08, 0x04
    out = [
        mk(a, b, tcp_header(sport, dport, c, 0, S, options=SYN_OPTS)),
        mk(b, a, tcp_header(dport, sport, s, c + 1, S | A, options=SYN_OPTS)),
        mk(a, b, tcp_header(sport, dport, c + 1, s + 1, A)),
        mk(a, b, tcp_header(sport, dport, c + 1, s + 1, P | A), b"GET / HTTP/1.0\r\n\r\n"),
        mk(b, a, tcp_header(dport, sport, s + 1, c + 19, P | A), b"HTTP/1.0 200 OK\r\n\r\nhi"),
        mk(a, b, tcp_header(sport, dport, c + 19, s + 22, F | A)),
        mk(b, a, tcp_header(dport, sport, s + 22, c + 20, F | A)),
        mk(a, b, tcp_header(sport, dport, c + 20, s + 23, A)),
    ]
    # a refused connection and a non-TCP (UDP) packet for the accounting
    out.append(mk(a, b, tcp_header(sport + 1, 81, 7, 0, S)))
    out.append(mk(b, a, tcp_header(81, sport + 1, 0, 8, R | A)))
    if not v6:
        udp = struct.pack("!HHHH", 53, 53, 12, 0) + b"abcd"
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 9, 0, 64, 17, 0, a, b)
        out.append(hdr + udp)
    return out


def frames(linktype, *, v6=False, big=False):
    wrap = {
        ETH: lambda ip: ethernet(ip, v6=v6, vlans=(5,) if v6 else ()),
        RAW: lambda ip: ip,
        SLL: lambda ip: sll(ip, v6=v6),
        SLL2: lambda ip: sll2(ip, v6=v6),
        NULL: lambda ip: null_loop(ip, v6=v6, big=big),
    }[linktype]
    return [wrap(ip) for ip in connection_ips(v6)]


def pcap(packets, *, big=False, nanosecond=False, linktype=ETH, snaplen=65535, modified=False):
    e = ">" if big else "<"
    magic = 0xA1B2CD34 if modified else (0xA1B23C4D if nanosecond else 0xA1B2C3D4)
    out = bytearray(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
    records = []
    hdr_len = 24 if modified else 16
    for i, pkt in enumerate(packets):
        records.append(len(out))
        frac = (i * 1000 + 7) * (1000 if nanosecond else 1)
        cap = pkt[:snaplen]
        out += struct.pack(e + "IIII", 1700000000 + i // 4, frac, len(cap), len(pkt))
        if modified:
            out += struct.pack(e + "IHBB", 1, 0x0800, 0, 0)
        out += cap
    return Built(bytes(out), "pcap", big, records, [], hdr_len)


def _pad4(b):
    return b + b"\0" * (-len(b) % 4)


def _opts(e, opts):
    if not opts:
        return b""
    return b"".join(struct.pack(e + "HH", c, len(v)) + _pad4(v) for c, v in opts) + \
        struct.pack(e + "HH", 0, 0)


def _block(e, btype, body):
    body = _pad4(body)
    return struct.pack(e + "II", btype, 12 + len(body)) + body + struct.pack(e + "I", 12 + len(body))


def pcapng(interfaces, packets, *, big=False, extra_blocks=True):
    """``interfaces``: [(linktype, tsresol byte or None)]; ``packets``: [(if_id, bytes)].

    Packets go in EPBs, except every fifth on interface 0 in an obsolete PB;
    a comment option, an unknown block and an NRB are thrown in so the
    mutations have option lists and skipped blocks to work on."""
    e = ">" if big else "<"
    out = bytearray()
    blocks, records = [], []

    def add(btype, body, is_record=False):
        blocks.append(len(out))
        if is_record:
            records.append(len(out))
        out.extend(_block(e, btype, body))

    add(0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1) +
        _opts(e, [(1, b"fastseg seed"), (4, b"linux")]))
    for k, (lt, res) in enumerate(interfaces):
        opts = [(2, f"if{k}".encode())]
        if res is not None:
            opts.append((9, bytes([res])))
        add(1, struct.pack(e + "HHI", lt, 0, 0) + _opts(e, opts))
    if extra_blocks:
        add(0x00000BAD, struct.pack(e + "I", 32473) + b"custom")
        add(4, struct.pack(e + "HH", 1, 14) + _pad4(A4 + b"localhost\0") + struct.pack(e + "HH", 0, 0))
    for i, (if_id, pkt) in enumerate(packets):
        res = interfaces[if_id][1]
        per_sec = 10 ** 6 if res is None else (10 ** res if res < 0x80 else 2 ** (res & 0x7F))
        ticks = (1700000000 + i) * per_sec + i
        if i % 5 == 4 and if_id == 0:
            body = struct.pack(e + "HHIIII", if_id, 0, ticks >> 32, ticks & 0xFFFFFFFF,
                               len(pkt), len(pkt)) + _pad4(pkt)
            add(2, body, True)
        else:
            opts = [(1, b"c")] if i % 3 == 0 else []
            body = struct.pack(e + "IIIII", if_id, ticks >> 32, ticks & 0xFFFFFFFF,
                               len(pkt), len(pkt)) + _pad4(pkt) + _opts(e, opts)
            add(6, body, True)
    if extra_blocks and interfaces[0][0] in (ETH, RAW):
        pkt = packets[0][1]
        add(3, struct.pack(e + "I", len(pkt)) + _pad4(pkt), True)     # SPB, interface 0
    return Built(bytes(out), "pcapng", big, records, blocks)


def sample_captures():
    """name -> Built: every format variant the reader knows, tiny and valid."""
    out = {}
    for big in (False, True):
        bo = "be" if big else "le"
        out[f"eth_us_{bo}.pcap"] = pcap(frames(ETH), big=big)
        out[f"eth6_ns_{bo}.pcap"] = pcap(frames(ETH, v6=True), big=big, nanosecond=True)
        out[f"null_{bo}.pcap"] = pcap(frames(NULL, big=big), big=big, linktype=NULL)
        out[f"multi_if_{bo}.pcapng"] = pcapng(
            [(ETH, None), (RAW, 9), (SLL, 0x80 | 20), (SLL2, 6)],
            [(i % 4, p) for i, p in enumerate(
                [f for pair in zip(frames(ETH), frames(RAW, v6=True), frames(SLL), frames(SLL2, v6=True))
                 for f in pair])],
            big=big)
    out["raw_snap64.pcap"] = pcap(frames(RAW), linktype=RAW, snaplen=64)
    out["sll_modified.pcap"] = pcap(frames(SLL), linktype=SLL, modified=True)
    out["sll2_v6.pcap"] = pcap(frames(SLL2, v6=True), linktype=SLL2)
    for built in out.values():
        # every packet is TCP but the one UDP datagram of each IPv4 connection
        # (connection_ips); the four-interface pcapng holds no UDP
        udp = 0 if built.fmt == "pcapng" else len(built.records) - 10
        built.tcp = len(built.records) - udp
    return out


def gzipped(built, *, mtime=0):
    return Built(gzip.compress(built.data, mtime=mtime), built.fmt, built.big)


def write_corpus(directory):
    """Write the seed corpus for the capture harness; returns the file names."""
    import os
    os.makedirs(directory, exist_ok=True)
    names = []
    for name, built in sample_captures().items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(built.data)
        names.append(name)
    for name in ("eth_us_le.pcap", "multi_if_be.pcapng"):
        with open(os.path.join(directory, name + ".gz"), "wb") as f:
            f.write(gzipped(sample_captures()[name]).data)
        names.append(name + ".gz")
    try:
        import zstandard
    except ImportError:
        return names
    with open(os.path.join(directory, "eth6_ns_be.pcap.zst"), "wb") as f:
        f.write(zstandard.ZstdCompressor(level=3).compress(sample_captures()["eth6_ns_be.pcap"].data))
    names.append("eth6_ns_be.pcap.zst")
    return names


# -- inputs of fuzz_packets.py -------------------------------------------------
PACKET_LINKTYPES = (ETH, RAW, NULL, SLL, SLL2, 12, 14, 108, 105, 0xFFFF)


def split_packets(data):
    """fuzz_packets.py input -> (linktype, [packet bytes]): one byte picks the
    link type, then packets each prefixed by a 2-byte big-endian length."""
    if not data:
        return ETH, []
    linktype = PACKET_LINKTYPES[data[0] % len(PACKET_LINKTYPES)]
    packets = []
    pos = 1
    while pos < len(data) and len(packets) < 64:
        size = int.from_bytes(data[pos:pos + 2], "big")
        packets.append(data[pos + 2:pos + 2 + size])
        pos += 2 + size
    return linktype, packets


def join_packets(linktype, packets):
    """The inverse of :func:`split_packets`."""
    out = bytes([PACKET_LINKTYPES.index(linktype)])
    return out + b"".join(len(p).to_bytes(2, "big") + p for p in packets)


def write_packet_corpus(directory, join=join_packets):
    """Seeds for fuzz_packets.py: each link type's frames."""
    import os
    os.makedirs(directory, exist_ok=True)
    seeds = {
        "eth4": (ETH, frames(ETH)), "eth6_vlan": (ETH, frames(ETH, v6=True)),
        "raw4": (RAW, frames(RAW)), "raw6": (RAW, frames(RAW, v6=True)),
        "null_le": (NULL, frames(NULL)), "sll4": (SLL, frames(SLL)),
        "sll2_6": (SLL2, frames(SLL2, v6=True)),
        "v6_hbh": (RAW, [ipv6_tcp(A6, B6, tcp_header(1, 2, 3, 4, 0x18), b"x", hop_by_hop=True)]),
        "v4_opts_frag": (RAW, [ipv4_tcp(A4, B4, tcp_header(1, 2, 3, 4, 0x02, options=SYN_OPTS),
                                        ip_options=b"\x01\x01\x01\x00", frag=0x2000)]),
    }
    for name, (lt, pkts) in seeds.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(join(lt, pkts))
    return list(seeds)


def write_kernel_corpus(directory):
    """A few seeds for fuzz_kernels.py (the first byte picks the kernel)."""
    import os
    import random
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(7)
    for k in range(6):
        with open(os.path.join(directory, f"seed{k}"), "wb") as f:
            f.write(bytes([k % 3]) + bytes(rng.randrange(256) for _ in range(40 + 60 * k)))
