#!/usr/bin/env python3
"""Minimal pcap/pcapng reader and writers used to derive capture variants.

Independent of fastseg on purpose (the files it writes are test inputs for
fastseg).  Supports what make_captures.py needs: reading classic pcap (either
byte order, us or ns), writing pcap in either byte order and precision, writing
pcapng (either byte order, several interfaces with their own link type and
if_tsresol, EPB / SPB / obsolete PB, an unknown block), and rewriting the
link-layer header of Ethernet frames (raw IP, BSD NULL, BSD LOOP).
"""
import struct
from typing import List, NamedTuple, Tuple

PCAP_US = 0xA1B2C3D4
PCAP_NS = 0xA1B23C4D

LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_OLD = 12
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108


class Record(NamedTuple):
    ts_ns: int          # ns since the epoch
    orig_len: int
    data: bytes


class Pcap(NamedTuple):
    linktype: int
    snaplen: int
    nano: bool
    records: List[Record]


def read_pcap(path) -> Pcap:
    with open(path, "rb") as f:
        buf = f.read()
    magic_le = struct.unpack_from("<I", buf, 0)[0]
    magic_be = struct.unpack_from(">I", buf, 0)[0]
    if magic_le in (PCAP_US, PCAP_NS):
        e, magic = "<", magic_le
    elif magic_be in (PCAP_US, PCAP_NS):
        e, magic = ">", magic_be
    else:
        raise ValueError(f"{path}: not a pcap file")
    nano = magic == PCAP_NS
    _, _, _, _, snaplen, linktype = struct.unpack_from(e + "HHiIII", buf, 4)
    off, recs = 24, []
    while off + 16 <= len(buf):
        sec, frac, caplen, origlen = struct.unpack_from(e + "IIII", buf, off)
        off += 16
        data = buf[off:off + caplen]
        if len(data) < caplen:
            break
        off += caplen
        recs.append(Record(sec * 10**9 + frac * (1 if nano else 1000), origlen, data))
    return Pcap(linktype & 0x0FFFFFFF, snaplen, nano, recs)


def write_pcap(path, cap: Pcap, big_endian=False, nano=None):
    nano = cap.nano if nano is None else nano
    e = ">" if big_endian else "<"
    out = [struct.pack(e + "IHHiIII", PCAP_NS if nano else PCAP_US, 2, 4, 0, 0,
                       cap.snaplen, cap.linktype)]
    for r in cap.records:
        sec, ns = divmod(r.ts_ns, 10**9)
        frac = ns if nano else ns // 1000
        out.append(struct.pack(e + "IIII", sec, frac, len(r.data), r.orig_len))
        out.append(r.data)
    with open(path, "wb") as f:
        f.write(b"".join(out))


# ------------------------------------------------------------------ pcapng
def _pad4(b: bytes) -> bytes:
    return b + b"\0" * (-len(b) % 4)


def _option(e, code, value: bytes) -> bytes:
    return struct.pack(e + "HH", code, len(value)) + _pad4(value)


def _block(e, btype, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack(e + "II", btype, total) + body + struct.pack(e + "I", total)


class Interface(NamedTuple):
    linktype: int
    snaplen: int
    tsresol: int        # if_tsresol byte: 6 = us, 9 = ns, 0x80|n = 2^-n


def _units(ts_ns: int, tsresol: int) -> int:
    if tsresol & 0x80:
        return (ts_ns << (tsresol & 0x7F)) // 10**9
    exp = tsresol
    if exp >= 9:
        return ts_ns * 10 ** (exp - 9)
    return ts_ns // 10 ** (9 - exp)


def write_pcapng(path, interfaces: List[Interface], packets: List[Tuple[int, Record]],
                 big_endian=False, block_kinds=None, unknown_block=False, comment=None):
    """Write a pcapng file.  ``packets`` is a list of (interface index, Record);
    ``block_kinds`` optionally gives, per packet, "epb" (default), "spb" or "pb"."""
    e = ">" if big_endian else "<"
    shb_opts = b""
    if comment:
        shb_opts += _option(e, 1, comment.encode())
    shb_opts += _option(e, 4, b"fastseg tests/data/pcapconv.py") + struct.pack(e + "HH", 0, 0)
    out = [_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_opts)]
    for itf in interfaces:
        opts = b""
        if itf.tsresol != 6:
            opts += _option(e, 9, bytes([itf.tsresol]))
        if opts:
            opts += struct.pack(e + "HH", 0, 0)
        out.append(_block(e, 1, struct.pack(e + "HHI", itf.linktype, 0, itf.snaplen) + opts))
    if unknown_block:
        # A block type from the local-use range that readers must skip.
        out.append(_block(e, 0x80000F5E, _pad4(b"skip me")))
    for i, (ifid, rec) in enumerate(packets):
        kind = block_kinds[i] if block_kinds else "epb"
        units = _units(rec.ts_ns, interfaces[ifid].tsresol)
        hi, lo = units >> 32, units & 0xFFFFFFFF
        if kind == "epb":
            body = struct.pack(e + "IIIII", ifid, hi, lo, len(rec.data), rec.orig_len)
            out.append(_block(e, 6, body + _pad4(rec.data)))
        elif kind == "pb":
            body = struct.pack(e + "HHIIII", ifid, 0, hi, lo, len(rec.data), rec.orig_len)
            out.append(_block(e, 2, body + _pad4(rec.data)))
        elif kind == "spb":
            # An SPB stores min(orig_len, snaplen) bytes; callers keep that true.
            out.append(_block(e, 3, struct.pack(e + "I", rec.orig_len) + _pad4(rec.data)))
        else:
            raise ValueError(kind)
    with open(path, "wb") as f:
        f.write(b"".join(out))


# ------------------------------------------------------------ link headers
ETH_IPV4, ETH_IPV6 = 0x0800, 0x86DD


def relink(cap: Pcap, linktype: int, af_inet6: int = 24) -> Pcap:
    """Replace the 14-byte Ethernet header of every IPv4/IPv6 frame by the
    header of ``linktype`` (raw IP: nothing; NULL: 4-byte host-order (little-
    endian here) address family; LOOP: 4-byte network-order family).  Frames
    that are not IP cannot be represented and are dropped."""
    assert cap.linktype == LINKTYPE_ETHERNET
    recs = []
    for r in cap.records:
        if len(r.data) < 14:
            continue
        etype = struct.unpack_from(">H", r.data, 12)[0]
        if etype not in (ETH_IPV4, ETH_IPV6):
            continue
        family = 2 if etype == ETH_IPV4 else af_inet6
        if linktype in (LINKTYPE_RAW, LINKTYPE_RAW_OLD):
            head = b""
        elif linktype == LINKTYPE_NULL:
            head = struct.pack("<I", family)
        elif linktype == LINKTYPE_LOOP:
            head = struct.pack(">I", family)
        else:
            raise ValueError(linktype)
        recs.append(Record(r.ts_ns, r.orig_len - 14 + len(head), head + r.data[14:]))
    return Pcap(linktype, cap.snaplen, cap.nano, recs)


def flip_bits(cap: Pcap, flips) -> Pcap:
    """Flip bits on purpose: ``flips`` is a list of (record index, byte offset,
    bit mask)."""
    recs = list(cap.records)
    for idx, off, mask in flips:
        r = recs[idx]
        data = bytearray(r.data)
        data[off] ^= mask
        recs[idx] = Record(r.ts_ns, r.orig_len, bytes(data))
    return Pcap(cap.linktype, cap.snaplen, cap.nano, recs)


def add_vlan_tags(cap: Pcap, tags_for) -> Pcap:
    """Insert VLAN tags after the MAC addresses of every Ethernet frame.
    ``tags_for(ethertype)`` returns the tags, outermost first, as
    (TPID, VID) pairs."""
    assert cap.linktype == LINKTYPE_ETHERNET
    recs = []
    for r in cap.records:
        etype = struct.unpack_from(">H", r.data, 12)[0]
        tags = b"".join(struct.pack(">HH", tpid, vid) for tpid, vid in tags_for(etype))
        recs.append(Record(r.ts_ns, r.orig_len + len(tags), r.data[:12] + tags + r.data[12:]))
    return Pcap(cap.linktype, cap.snaplen + 8, cap.nano, recs)
