"""Real captures rebuilt for the byte-range tests (read with dpkt, written
with capfiles: independent of fastseg).

``multi_section_pcapng``: the loopback HTTP capture interleaved with Linux
cooked captures, in two pcapng sections whose IDBs differ in link type,
order and timestamp resolution, so that a byte range must bring the right
SHB and IDBs with it to be read on its own."""
import gzip
from pathlib import Path

import capfiles as cf

ROOT = Path(__file__).resolve().parents[1]
LO_HTTP = ROOT / "bench" / "data" / "lo_http.pcap.gz"
DATA = Path(__file__).parent / "data"


def packets(path):
    """``(ts_ns, bytes)`` of every record of a microsecond pcap (plain or .gz)."""
    import dpkt
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        return [(int(round(ts * 1e6)) * 1000, bytes(buf)) for ts, buf in dpkt.pcap.Reader(fh)]


def lo_http_pcap(path):
    """The loopback HTTP capture, decompressed."""
    with gzip.open(LO_HTTP, "rb") as src:
        Path(path).write_bytes(src.read())
    return path


def _interleave(main, extra, shift_to):
    """``main`` with ``extra`` spread evenly through it, ``extra``'s times
    moved to start at ``shift_to``; items are (ts_ns, bytes, iface)."""
    if not extra:
        return list(main)
    delta = shift_to - extra[0][0]
    step = max(1, len(main) // (len(extra) + 1))
    out, j = [], 0
    for i, item in enumerate(main):
        out.append(item)
        if (i + 1) % step == 0 and j < len(extra):
            ts, buf, iface = extra[j]
            out.append((ts + delta, buf, iface))
            j += 1
    out += [(ts + delta, buf, iface) for ts, buf, iface in extra[j:]]
    return out


def multi_section_pcapng(path):
    """Write the two-section, multi-interface pcapng; returns its packet count."""
    lo = packets(LO_HTTP)
    sll = packets(DATA / "any_sll.pcap")       # LINKTYPE_LINUX_SLL (113)
    sll2 = packets(DATA / "any_sll2.pcap")     # LINKTYPE_LINUX_SLL2 (276)
    half = len(lo) // 2
    # section 1: if 0 Ethernet in microseconds, if 1 SLL in nanoseconds
    one = _interleave([(t, b, 0) for t, b in lo[:half]], [(t, b, 1) for t, b in sll],
                      lo[0][0] + 1000)
    # section 2: if 0 SLL2 in nanoseconds, if 1 Ethernet in microseconds
    two = _interleave([(t, b, 1) for t, b in lo[half:]], [(t, b, 0) for t, b in sll2],
                      lo[half][0] + 1000)
    out = [cf.shb(), cf.idb(1, 65535), cf.idb(113, 65535, tsresol=9)]
    for ts, buf, iface in one:
        out.append(cf.epb(iface, ts // 1000 if iface == 0 else ts, buf))
    out += [cf.shb(), cf.idb(276, 65535, tsresol=9), cf.idb(1, 65535)]
    for ts, buf, iface in two:
        out.append(cf.epb(iface, ts if iface == 0 else ts // 1000, buf))
    Path(path).write_bytes(b"".join(out))
    return len(one) + len(two)
