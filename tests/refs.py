"""Reference implementations for the tests, the benchmarks and the fuzzers:
written from the RFCs and papers in plain Python, sharing no code with
fastseg's kernels (they are the oracles those kernels are checked against).

* checksums: RFC 1071 one's-complement sum and Internet checksum;
* SipHash-2-4 (the paper's reference algorithm) and fastseg's flow key;
* addresses: packed bytes and the 16-byte rows fastseg stores;
* packets: link headers, IPv4/IPv6 (with options and extension headers), TCP
  with any options and correct checksums.  Every builder returns ``bytes``;
  layers nest: ``ether(ipv4(..., tcp(...)))``;
* captures: whole pcap/pcapng files of such frames (``fastseg.synth``'s
  writer, whose output the synth tests check byte by byte).
"""
import ipaddress
import struct

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
M64 = (1 << 64) - 1


# -- checksums -------------------------------------------------------------
def ones_sum(data: bytes) -> int:
    """RFC 1071 one's-complement sum of the big-endian 16-bit words, folded
    (0xFFFF over a region whose checksum is right)."""
    data = bytes(data)
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def internet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement checksum (the value for the field)."""
    return (~ones_sum(data)) & 0xFFFF


# -- SipHash-2-4 and the flow key --------------------------------------------
# _siphash.h keys the flow hash with these 16 bytes.
FLOW_KEY_SECRET = b"g flow kyfastseg"


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M64


def siphash24(key: bytes, msg: bytes) -> int:
    """SipHash-2-4 straight from the paper, one Python int at a time."""
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:16], "little")
    v = [0x736F6D6570736575 ^ k0, 0x646F72616E646F6D ^ k1,
         0x6C7967656E657261 ^ k0, 0x7465646279746573 ^ k1]

    def rounds(n):
        for _ in range(n):
            v[0] = (v[0] + v[1]) & M64; v[1] = _rotl(v[1], 13); v[1] ^= v[0]; v[0] = _rotl(v[0], 32)
            v[2] = (v[2] + v[3]) & M64; v[3] = _rotl(v[3], 16); v[3] ^= v[2]
            v[0] = (v[0] + v[3]) & M64; v[3] = _rotl(v[3], 21); v[3] ^= v[0]
            v[2] = (v[2] + v[1]) & M64; v[1] = _rotl(v[1], 17); v[1] ^= v[2]; v[2] = _rotl(v[2], 32)

    full = len(msg) - len(msg) % 8
    for i in range(0, full, 8):
        m = int.from_bytes(msg[i:i + 8], "little")
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    b = ((len(msg) & 0xFF) << 56) | int.from_bytes(msg[full:], "little")
    v[3] ^= b
    rounds(2)
    v[0] ^= b
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def flow_key(src, sport: int, dst, dport: int) -> int:
    """The direction-free flow key of _siphash.h (fs_flow_key); addresses as
    strings or 16-byte rows."""
    a, b = (mapped(src), sport), (mapped(dst), dport)
    lo, hi = min(a, b), max(a, b)
    return siphash24(FLOW_KEY_SECRET, lo[0] + hi[0] + struct.pack("!HH", lo[1], hi[1]))


# -- addresses and flags -------------------------------------------------------
def addr(text) -> bytes:
    """Packed network-order bytes of an address string (4 or 16 bytes)."""
    if isinstance(text, (bytes, bytearray)):
        return bytes(text)
    return ipaddress.ip_address(text).packed


def mapped(text) -> bytes:
    """The 16-byte row fastseg stores for an address (IPv4 as ::ffff:a.b.c.d)."""
    raw = addr(text)
    return b"\0" * 10 + b"\xff\xff" + raw if len(raw) == 4 else raw


FLAG_LETTERS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20,
                "E": 0x40, "C": 0x80, "N": 0x100}


def flags_of(letters: str) -> int:
    """TCP flag bits from letters (F S R P A U E C N)."""
    v = 0
    for ch in letters:
        v |= FLAG_LETTERS[ch]
    return v


# -- TCP options ---------------------------------------------------------
def opt_nop():
    return b"\x01"


def opt_eol():
    return b"\x00"


def opt_mss(mss):
    return struct.pack("!BBH", 2, 4, mss)


def opt_wscale(shift):
    return struct.pack("!BBB", 3, 3, shift)


def opt_sack_perm():
    return b"\x04\x02"


def opt_sack(blocks):
    body = b"".join(struct.pack("!II", a, b) for a, b in blocks)
    return struct.pack("!BB", 5, 2 + len(body)) + body


def opt_ts(tsval, tsecr):
    return struct.pack("!BBII", 8, 10, tsval, tsecr)


def opt_tfo(cookie=b""):
    return struct.pack("!BB", 34, 2 + len(cookie)) + cookie


def opt_tfo_exp(cookie=b""):
    return struct.pack("!BBH", 254, 4 + len(cookie), 0xF989) + cookie


def opt_raw(kind, body=b""):
    return struct.pack("!BB", kind, 2 + len(body)) + body


# -- TCP -----------------------------------------------------------------
def tcp(sport=40000, dport=80, seq=1000, ack=0, flags=0x002, window=65535,
        urgent=0, options=b"", payload=b"", data_offset=None, checksum=None):
    """A TCP segment.  ``options`` are padded with EOL to a 4-byte multiple;
    ``data_offset`` (in words) overrides the header length field.  The
    checksum field is left 0 (the IP builder fills it) unless ``checksum``."""
    options = bytes(options)
    options += b"\0" * (-len(options) % 4)
    hdr_words = (20 + len(options)) // 4
    doff = hdr_words if data_offset is None else data_offset
    ns = (flags >> 8) & 1
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      (doff << 4) | ns, flags & 0xFF, window,
                      0 if checksum is None else checksum, urgent)
    return _TcpBytes(hdr + options + bytes(payload), checksum is None)


class _TcpBytes(bytes):
    """TCP bytes that remember whether the IP builder should fill the checksum."""

    def __new__(cls, value, fill):
        obj = super().__new__(cls, value)
        obj.fill_checksum = fill
        return obj


def _fill_tcp_checksum(segment, pseudo):
    if not getattr(segment, "fill_checksum", False) or len(segment) < 18:
        return bytes(segment)
    seg = bytearray(segment)
    seg[16:18] = b"\0\0"
    c = internet_checksum(pseudo + bytes(seg))
    seg[16:18] = struct.pack("!H", c)
    return bytes(seg)


# -- IP ------------------------------------------------------------------
def ipv4(src="10.0.0.1", dst="10.0.0.2", payload=b"", proto=6, ttl=64, ident=0x1234,
         df=True, mf=False, frag_offset=0, tos=0, options=b"", total_length=None,
         ihl=None, header_checksum=None, version=4):
    """An IPv4 packet.  A TCP payload built by :func:`tcp` gets its checksum
    over the pseudo-header (length = the TCP bytes given)."""
    s, d = addr(src), addr(dst)
    options = bytes(options) + b"\0" * (-len(options) % 4)
    hl = (20 + len(options)) // 4 if ihl is None else ihl
    if proto == 6:
        payload = _fill_tcp_checksum(payload, s + d + struct.pack("!BBH", 0, 6, len(payload)))
    total = 20 + len(options) + len(payload) if total_length is None else total_length
    frag = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset & 0x1FFF)
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", (version << 4) | hl, tos, total, ident,
                                frag, ttl, proto, 0, s, d) + options)
    c = internet_checksum(bytes(hdr)) if header_checksum is None else header_checksum
    hdr[10:12] = struct.pack("!H", c)
    return bytes(hdr) + bytes(payload)


def ext_header(kind, body=b""):
    """An IPv6 extension header (next-header byte filled by :func:`ipv6`).
    ``body`` is what follows the two leading bytes; it is zero-padded to the
    header's unit (8 bytes; 4 for AH)."""
    body = bytes(body)
    if kind == 44:
        body = (body + b"\0" * 6)[:6]
        return (kind, b"\0\0" + body)
    unit = 4 if kind == 51 else 8
    raw = b"\0\0" + body
    raw += b"\0" * (-len(raw) % unit)
    if kind == 51 and len(raw) % 8:
        raw += b"\0" * 4  # AH in IPv6 must be a multiple of 8 bytes
    length = len(raw) // 4 - 2 if kind == 51 else len(raw) // 8 - 1
    return (kind, raw[:1] + bytes([length]) + raw[2:])


def frag_header(offset=0, more=False, ident=0xABCD):
    return (44, struct.pack("!BBHI", 0, 0, (offset << 3) | int(more), ident))


def ipv6(src="2001:db8::1", dst="2001:db8::2", payload=b"", next_header=6, hop_limit=64,
         ext=(), payload_length=None, flow_label=0, version=6):
    """An IPv6 packet with extension headers ``ext`` (a list of
    :func:`ext_header` / :func:`frag_header` results), then ``payload`` of
    protocol ``next_header``."""
    s, d = addr(src), addr(dst)
    if next_header == 6:
        payload = _fill_tcp_checksum(payload, s + d + struct.pack("!IxxxB", len(payload), 6))
    chain = b""
    kinds = [k for k, _ in ext] + [next_header]
    for i, (kind, raw) in enumerate(ext):
        chain += bytes([kinds[i + 1]]) + raw[1:]
    first = kinds[0]
    body = chain + bytes(payload)
    plen = len(body) if payload_length is None else payload_length
    hdr = struct.pack("!IHBB16s16s", (version << 28) | flow_label, plen, first, hop_limit, s, d)
    return hdr + body


# -- link layers -----------------------------------------------------------
def ether(payload, ethertype=ETH_IPV4, vlans=(), src=b"\x02\0\0\0\0\x01",
          dst=b"\x02\0\0\0\0\x02", pad=True):
    """Ethernet II; ``vlans`` is a list of (tpid, tci) tags, outermost first.
    Short frames are zero-padded to the 60-byte minimum unless ``pad=False``."""
    hdr = dst + src
    for tpid, tci in vlans:
        hdr += struct.pack("!HH", tpid, tci)
    frame = hdr + struct.pack("!H", ethertype) + bytes(payload)
    if pad and len(frame) < 60:
        frame += b"\0" * (60 - len(frame))
    return frame


def sll(payload, protocol=ETH_IPV4, pkttype=0, hatype=1):
    """Linux cooked capture v1 (LINKTYPE_LINUX_SLL, 16 bytes)."""
    return struct.pack("!HHH8sH", pkttype, hatype, 6, b"\x02\0\0\0\0\x01\0\0",
                       protocol) + bytes(payload)


def sll2(payload, protocol=ETH_IPV4, ifindex=2, hatype=1, pkttype=0):
    """Linux cooked capture v2 (LINKTYPE_LINUX_SLL2, 20 bytes)."""
    return struct.pack("!HHIHBB8s", protocol, 0, ifindex, hatype, pkttype, 6,
                       b"\x02\0\0\0\0\x01\0\0") + bytes(payload)


def null(payload, family=2, big_endian=False):
    """BSD loopback (LINKTYPE_NULL): family in the capturing host's order."""
    return struct.pack(">I" if big_endian else "<I", family) + bytes(payload)


def loop(payload, family=2):
    """OpenBSD loopback (LINKTYPE_LOOP): family in network order."""
    return struct.pack(">I", family) + bytes(payload)


# -- captures ------------------------------------------------------------------
def capture(frames, ts_ns=None, *, linktype=1, format="pcap", nanosecond=False,
            snaplen=262144, wirelen=None) -> bytes:
    """A pcap (or pcapng) file of ``frames``; frame i at i microseconds unless
    ``ts_ns`` gives the times."""
    from fastseg.synth import capture_bytes
    return capture_bytes(frames, ts_ns, linktype=linktype, format=format,
                         nanosecond=nanosecond, snaplen=snaplen, wirelen=wirelen)


def write_capture(path, frames, ts_ns=None, **kwargs) -> None:
    """Write ``capture(frames, ts_ns, **kwargs)`` to ``path``."""
    with open(path, "wb") as f:
        f.write(capture(frames, ts_ns, **kwargs))


def zeek_dev():
    """Zeek's test traces with Zeek's conn.log rows and scorer
    (``../shared/zeek-dev`` beside the checkout, or ``$FASTSEG_ZEEK_DEV``),
    or None when they are not here."""
    import os
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    for path in (root.parent / "shared" / "zeek-dev", os.environ.get("FASTSEG_ZEEK_DEV")):
        if path and (Path(path) / "zeek_compare.py").exists():
            return Path(path)
    return None
