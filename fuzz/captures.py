"""Pure-Python builders of small valid captures, with the position of every record.

The seed corpus (``fuzz/corpus``) and the mutation property suite
(``tests/test_hostile.py``) both start from these captures.  Files are laid out
by tests/capfiles.py and packets checksummed by tests/refs.py, both ``struct``
straight from the formats (libpcap savefile, pcapng, RFC 1071), so the
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
import capfiles as cf  # noqa: E402
import refs  # noqa: E402

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


SYN_OPTS = (b"\x02\x04\x05\xb4"          # MSS 1460
            b"\x04\x02"                  # SACK permitted
            b"\x08\x0a\x00\x00\x10\x00\x00\x00\x00\x00"   # timestamps
            b"\x01\x03\x03\x07")         # NOP, wscale 7
# A hop-by-hop header holding only a PadN option.
HOP_BY_HOP = refs.ext_header(0, b"\x01\x04\0\0\0\0")


def ipv4_tcp(src, dst, segment, *, ip_id=1, mf=False, ip_options=b""):
    return refs.ipv4(src, dst, segment, ident=ip_id, df=False, mf=mf, options=ip_options)


def ipv6_tcp(src, dst, segment, *, hop_by_hop=False):
    return refs.ipv6(src, dst, segment, ext=[HOP_BY_HOP] if hop_by_hop else ())


def ethernet(ip, *, v6=False, vlans=()):
    return refs.ether(ip, refs.ETH_IPV6 if v6 else refs.ETH_IPV4,
                      vlans=[(0x8100, vid) for vid in vlans],
                      src=b"\x02\0\0\0\0\x02", dst=b"\x02\0\0\0\0\x01", pad=False)


A4, B4 = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
A6 = bytes.fromhex("20010db8000000000000000000000001")
B6 = bytes.fromhex("20010db8000000000000000000000002")


def connection_ips(v6=False, *, sport=40000, dport=80):
    """IP packets of one whole TCP connection: handshake, data both ways, FIN close."""
    a, b = (A6, B6) if v6 else (A4, B4)
    ip = ipv6_tcp if v6 else ipv4_tcp
    c, s = 1000, 5000
    S, A, F, P, R = 0x02, 0x10, 0x01, 0x08, 0x04

    def mk(src, dst, sp, dp, seq, ack, flags, payload=b"", options=b""):
        return ip(src, dst, refs.tcp(sp, dp, seq, ack, flags, options=options, payload=payload))

    out = [
        mk(a, b, sport, dport, c, 0, S, options=SYN_OPTS),
        mk(b, a, dport, sport, s, c + 1, S | A, options=SYN_OPTS),
        mk(a, b, sport, dport, c + 1, s + 1, A),
        mk(a, b, sport, dport, c + 1, s + 1, P | A, b"GET / HTTP/1.0\r\n\r\n"),
        mk(b, a, dport, sport, s + 1, c + 19, P | A, b"HTTP/1.0 200 OK\r\n\r\nhi"),
        mk(a, b, sport, dport, c + 19, s + 22, F | A),
        mk(b, a, dport, sport, s + 22, c + 20, F | A),
        mk(a, b, sport, dport, c + 20, s + 23, A),
    ]
    # a refused connection and a non-TCP (UDP) packet for the accounting
    out.append(mk(a, b, sport + 1, 81, 7, 0, S))
    out.append(mk(b, a, 81, sport + 1, 0, 8, R | A))
    if not v6:
        udp = struct.pack("!HHHH", 53, 53, 12, 0) + b"abcd"
        out.append(refs.ipv4(a, b, udp, proto=17, ident=9, df=False, header_checksum=0))
    return out


def frames(linktype, *, v6=False, big=False):
    wrap = {
        ETH: lambda ip: ethernet(ip, v6=v6, vlans=(5,) if v6 else ()),
        RAW: lambda ip: ip,
        SLL: lambda ip: refs.sll(ip, refs.ETH_IPV6 if v6 else refs.ETH_IPV4),
        SLL2: lambda ip: refs.sll2(ip, refs.ETH_IPV6 if v6 else refs.ETH_IPV4, ifindex=1),
        NULL: lambda ip: refs.null(ip, 24 if v6 else 2, big_endian=big),
    }[linktype]
    return [wrap(ip) for ip in connection_ips(v6)]


def pcap(packets, *, big=False, nanosecond=False, linktype=ETH, snaplen=65535, modified=False):
    out = bytearray(cf.pcap_header(big=big, nanosecond=nanosecond, modified=modified,
                                   linktype=linktype, snaplen=snaplen))
    records = []
    for i, pkt in enumerate(packets):
        records.append(len(out))
        frac = (i * 1000 + 7) * (1000 if nanosecond else 1)
        out += cf.pcap_record(1700000000 + i // 4, frac, pkt[:snaplen], wirelen=len(pkt), big=big,
                              modified=modified, ifindex=1, protocol=0x0800, pkt_type=0)
    return Built(bytes(out), "pcap", big, records, [], 24 if modified else 16)


def pcapng(interfaces, packets, *, big=False, extra_blocks=True):
    """``interfaces``: [(linktype, tsresol byte or None)]; ``packets``: [(if_id, bytes)].

    Packets go in EPBs, except every fifth on interface 0 in an obsolete PB;
    a comment option, an unknown block and an NRB are thrown in so the
    mutations have option lists and skipped blocks to work on."""
    out = bytearray()
    blocks, records = [], []

    def add(block, is_record=False):
        blocks.append(len(out))
        if is_record:
            records.append(len(out))
        out.extend(block)

    add(cf.shb(big=big, opts=[(cf.OPT_COMMENT, b"fastseg seed"), (4, b"linux")]))
    for k, (lt, res) in enumerate(interfaces):
        add(cf.idb(lt, 0, big=big, tsresol=res, name=f"if{k}"))
    if extra_blocks:
        add(cf.custom_block(b"custom", big=big))
        add(cf.nrb(big=big, address=A4))
    for i, (if_id, pkt) in enumerate(packets):
        res = interfaces[if_id][1]
        per_sec = 10 ** 6 if res is None else (10 ** res if res < 0x80 else 2 ** (res & 0x7F))
        ticks = (1700000000 + i) * per_sec + i
        if i % 5 == 4 and if_id == 0:
            add(cf.pb(if_id, ticks, pkt, big=big), True)
        else:
            opts = [(cf.OPT_COMMENT, b"c")] if i % 3 == 0 else []
            add(cf.epb(if_id, ticks, pkt, big=big, opts=opts), True)
    if extra_blocks and interfaces[0][0] in (ETH, RAW):
        add(cf.spb(packets[0][1], big=big), True)                  # SPB, interface 0
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
# PPP, FDDI, PPP in HDLC framing, PPPoE, Cisco HDLC and NFLOG reach the
# decapsulation paths (tunnels are reached through ETH and RAW).
PACKET_LINKTYPES = (ETH, RAW, NULL, SLL, SLL2, 12, 14, 108, 105, 0xFFFF, 9, 10, 50, 51, 104, 239)


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
        "v6_hbh": (RAW, [ipv6_tcp(A6, B6, refs.tcp(1, 2, 3, 4, 0x18, payload=b"x"), hop_by_hop=True)]),
        "v4_opts_frag": (RAW, [ipv4_tcp(A4, B4, refs.tcp(1, 2, 3, 4, 0x02, options=SYN_OPTS),
                                        ip_options=b"\x01\x01\x01\x00", mf=True)]),
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
