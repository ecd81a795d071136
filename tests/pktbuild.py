"""Pure-Python packet builders for the tests: link headers, IPv4/IPv6 (with
options and extension headers), TCP with any options, correct checksums.

Every builder returns ``bytes``; layers nest: ``ether(ipv4(..., tcp(...)))``.
Checksums are computed here, independently of fastseg's C kernels.
"""
import ipaddress
import struct

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD


def internet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement checksum (the value for the field)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def addr(text) -> bytes:
    """Packed network-order bytes of an address string (4 or 16 bytes)."""
    if isinstance(text, (bytes, bytearray)):
        return bytes(text)
    return ipaddress.ip_address(text).packed


def mapped(text) -> bytes:
    """The 16-byte row fastseg stores for an address (IPv4 as ::ffff:a.b.c.d)."""
    raw = addr(text)
    return b"\0" * 10 + b"\xff\xff" + raw if len(raw) == 4 else raw


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
