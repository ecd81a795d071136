"""Pure-Python builders of pcap / pcapng file bytes for tests.

Independent of fastseg: everything is laid out with ``struct`` straight from
the file-format specifications (libpcap savefile format, IETF pcapng draft),
so a test can state exactly which bytes a reader must understand.
"""
import struct

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_MAGIC_MODIFIED = 0xA1B2CD34

SHB, IDB, PB, SPB, NRB, ISB, EPB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6
DSB, CB_COPY, CB_NOCOPY = 0x0000000A, 0x00000BAD, 0x40000BAD

OPT_ENDOFOPT, OPT_COMMENT = 0, 1
IF_NAME, IF_DESCRIPTION, IF_TSRESOL, IF_FCSLEN, IF_TSOFFSET = 2, 3, 9, 13, 14


def _e(big):
    return ">" if big else "<"


def _pad4(data):
    return data + b"\0" * (-len(data) % 4)


# -- pcap -------------------------------------------------------------------
def pcap_header(*, big=False, nanosecond=False, modified=False, linktype=1,
                snaplen=65535, version=(2, 4), thiszone=0, sigfigs=0):
    magic = PCAP_MAGIC_MODIFIED if modified else (PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US)
    return struct.pack(_e(big) + "IHHiIII", magic, version[0], version[1], thiszone,
                       sigfigs, snaplen, linktype)


def pcap_record(sec, frac, data, *, wirelen=None, big=False, modified=False, caplen=None,
                ifindex=7, protocol=2, pkt_type=4):
    """One record; ``caplen`` overrides the length field (to build damage);
    ``ifindex``, ``protocol`` and ``pkt_type`` fill the modified-pcap fields."""
    wirelen = len(data) if wirelen is None else wirelen
    caplen = len(data) if caplen is None else caplen
    rec = struct.pack(_e(big) + "IIII", sec, frac, caplen, wirelen)
    if modified:
        rec += struct.pack(_e(big) + "IHBB", ifindex, protocol, pkt_type, 0)
    return rec + data


def pcap(packets, *, big=False, nanosecond=False, modified=False, linktype=1, snaplen=65535):
    """A pcap file; ``packets`` are ``(sec, frac, data[, wirelen])`` tuples."""
    out = [pcap_header(big=big, nanosecond=nanosecond, modified=modified,
                       linktype=linktype, snaplen=snaplen)]
    for pkt in packets:
        sec, frac, data = pkt[:3]
        wirelen = pkt[3] if len(pkt) > 3 else None
        out.append(pcap_record(sec, frac, data, wirelen=wirelen, big=big, modified=modified))
    return b"".join(out)


# -- pcapng -------------------------------------------------------------------
def options(opts, *, big=False, end=True):
    """Encode ``[(code, value_bytes), ...]`` (+ opt_endofopt when non-empty)."""
    if not opts:
        return b""
    out = [struct.pack(_e(big) + "HH", code, len(value)) + _pad4(value) for code, value in opts]
    if end:
        out.append(struct.pack(_e(big) + "HH", OPT_ENDOFOPT, 0))
    return b"".join(out)


def block(btype, body, *, big=False, trailer=None, length=None):
    """Generic block; ``length`` / ``trailer`` override the two length fields."""
    body = _pad4(body)
    total = 12 + len(body)
    head = struct.pack(_e(big) + "II", btype, total if length is None else length)
    return head + body + struct.pack(_e(big) + "I", total if trailer is None else trailer)


def shb(*, big=False, version=(1, 0), section_length=-1, opts=()):
    body = struct.pack(_e(big) + "IHHq", 0x1A2B3C4D, version[0], version[1], section_length)
    return block(SHB, body + options(list(opts), big=big), big=big)


def tsresol_opt(value):
    return (IF_TSRESOL, bytes([value]))


def tsoffset_opt(seconds, *, big=False):
    return (IF_TSOFFSET, struct.pack(_e(big) + "q", seconds))


def idb(linktype=1, snaplen=0, *, big=False, tsresol=None, tsoffset=None, name=None, opts=()):
    """IDB; ``tsresol`` is the raw if_tsresol byte (e.g. 9 = ns, 0x80|20 = 2^-20 s)."""
    opt_list = []
    if name is not None:
        opt_list.append((IF_NAME, name.encode()))
    if tsresol is not None:
        opt_list.append(tsresol_opt(tsresol))
    if tsoffset is not None:
        opt_list.append(tsoffset_opt(tsoffset, big=big))
    opt_list.extend(opts)
    body = struct.pack(_e(big) + "HHI", linktype, 0, snaplen)
    return block(IDB, body + options(opt_list, big=big), big=big)


def epb(if_id, ticks, data, *, wirelen=None, big=False, opts=(), caplen=None):
    wirelen = len(data) if wirelen is None else wirelen
    caplen = len(data) if caplen is None else caplen
    body = struct.pack(_e(big) + "IIIII", if_id, ticks >> 32, ticks & 0xFFFFFFFF, caplen, wirelen)
    return block(EPB, body + _pad4(data) + options(list(opts), big=big), big=big)


def pb(if_id, ticks, data, *, wirelen=None, big=False, drops=0, opts=()):
    """Obsolete Packet Block (type 2)."""
    wirelen = len(data) if wirelen is None else wirelen
    body = struct.pack(_e(big) + "HHIIII", if_id, drops, ticks >> 32, ticks & 0xFFFFFFFF,
                       len(data), wirelen)
    return block(PB, body + _pad4(data) + options(list(opts), big=big), big=big)


def spb(data, *, wirelen=None, big=False):
    """Simple Packet Block: ``data`` as stored (the reader trims it by snaplen / wirelen)."""
    wirelen = len(data) if wirelen is None else wirelen
    return block(SPB, struct.pack(_e(big) + "I", wirelen) + _pad4(data), big=big)


def custom_block(payload, *, pen=32473, big=False, copy=True):
    return block(CB_COPY if copy else CB_NOCOPY, struct.pack(_e(big) + "I", pen) + payload, big=big)


def nrb(*, big=False, address=bytes([127, 0, 0, 1])):
    """A name resolution block with one IPv4 record and nrb_record_end."""
    rec = struct.pack(_e(big) + "HH", 1, 4 + 10) + _pad4(address + b"localhost\0")
    return block(NRB, rec + struct.pack(_e(big) + "HH", 0, 0), big=big)


def isb(if_id=0, ticks=0, *, big=False):
    return block(ISB, struct.pack(_e(big) + "III", if_id, ticks >> 32, ticks & 0xFFFFFFFF), big=big)


def payload(i, length):
    """Deterministic packet bytes for packet ``i``."""
    return bytes((i * 7 + k) & 0xFF for k in range(length))
