"""tcpdump-style text for TCP segments: the lines ``tcpdump -n -S -tt -r FILE``
prints for TCP packets (IPv4 and IPv6), from the Segments columns plus the raw
option bytes: options cut by the snapshot length end in ``[|tcp]``, a bad
option length in ``[bad opt]``, IPv6 fragments (atomic ones too) start with
``frag (offset|length)``.  Not reproduced: tcpdump's decoding of payloads on
well-known ports (": HTTP" and the like), its text for the other IPv6
extension headers and for MPTCP options, and the lines it prints for the
encapsulation (MPLS, PPPoE, GRE, VXLAN, ...) before a tunnelled segment,
which gets its TCP line only."""
from __future__ import annotations

from typing import Iterator, List

from . import _consts

# tcpdump's flag letters, in its order (FIN SYN RST PSH ACK URG ECE CWR); it
# shows only the low eight flag bits.
_FLAG_CHARS = ((_consts.FIN, "F"), (_consts.SYN, "S"), (_consts.RST, "R"), (_consts.PSH, "P"),
               (_consts.ACK, "."), (_consts.URG, "U"), (_consts.ECE, "E"), (_consts.CWR, "W"))
_FLAG_TEXT = []
for _f in range(256):
    _FLAG_TEXT.append("".join(c for bit, c in _FLAG_CHARS if _f & bit) or "none")

_OPT_NAMES = {0: "eol", 1: "nop", 2: "mss", 3: "wscale", 4: "sackOK", 5: "sack", 6: "echo",
              7: "echoreply", 8: "TS", 11: "cc", 12: "ccnew", 13: "", 19: "md5", 20: "scps",
              28: "uto", 29: "tcp-ao", 30: "mptcp", 34: "tfo", 254: "exp"}


def _tfo(body: bytes, exp: bool) -> str:
    s = "tfo" if exp else ""
    if len(body) == 0:
        return s + " cookiereq"
    if len(body) % 2 or len(body) < 4 or len(body) > 16:
        return s + " (invalid)"
    return s + " cookie " + body.hex()


class _Truncated(Exception):
    def __init__(self, text):
        self.text = text


def format_options(opts: bytes, declared: int = None) -> str:
    """The ``options [...]`` body tcpdump prints for these TCP option bytes.

    ``declared`` is the option length the header announces when fewer bytes
    were captured; tcpdump then stops the line with `` [|tcp]``, and after a
    bad option length with ``[bad opt]`` (both raised as ``_Truncated``
    carrying the line's end).  Like tcpdump, a known option with a wrong
    length is printed with ``[len N]`` and the next one read where its own
    fixed length ends."""
    cap = len(opts)
    n = cap if declared is None else declared
    i = 0
    sep = ""
    text = ""
    while i < n:
        text += sep
        if i >= cap:                      # the kind byte itself is missing
            raise _Truncated(text + " [|tcp]")
        kind = opts[i]
        if kind in (0, 1):
            length = 1
        else:
            if i + 1 >= cap:
                raise _Truncated(text + " [|tcp]")
            length = opts[i + 1]
            if length < 2 or length > n - i:
                raise _Truncated(text + "[bad opt]" + ("]" if sep else ""))
        name = _OPT_NAMES.get(kind, f"unknown-{kind}")
        want = {2: 2, 3: 1, 6: 4, 7: 4, 11: 4, 12: 4, 13: 4, 8: 8, 28: 2, 19: 16}.get(kind, length - 2)
        if kind in (0, 1, 4):
            want = 0
        # tcpdump reads a known option's fixed fields whatever its length says.
        body = opts[i + 2:i + 2 + max(want, length - 2)] if kind not in (0, 1) else b""
        if want > n - i - 2 and kind not in (0, 1):
            raise _Truncated(text + name + "[bad opt]" + ("]" if sep else ""))
        if len(body) < want:              # declared but not captured
            raise _Truncated(text + name + " [|tcp]>")
        datalen = 0
        if kind == 2:
            datalen = 2
            name += f" {int.from_bytes(body[:2], 'big')}"
        elif kind == 3:
            datalen = 1
            name += f" {body[0]}"
        elif kind == 5:
            datalen = len(body)
            if datalen % 8:
                name += " invalid sack"
            else:
                name += f" {datalen // 8} " + "".join(
                    "{%d:%d}" % (int.from_bytes(body[j:j + 4], "big"),
                                 int.from_bytes(body[j + 4:j + 8], "big"))
                    for j in range(0, datalen, 8))
        elif kind == 19:
            # tcpdump built with libcrypto, without -M.
            datalen = 16
            name += " shared secret not supplied with -M, can't check - " + body[:16].hex()
        elif kind in (6, 7, 11, 12, 13):
            datalen = 4
            name += f" {int.from_bytes(body[:4], 'big')}"
        elif kind == 8:
            datalen = 8
            name += (f" val {int.from_bytes(body[:4], 'big')}"
                     f" ecr {int.from_bytes(body[4:8], 'big')}")
        elif kind == 34:
            datalen = len(body)
            name += " " + _tfo(body, False)
        elif kind == 254:
            datalen = len(body)
            if datalen < 2:
                raise _Truncated(text + name + "[bad opt]" + ("]" if sep else ""))
            magic = int.from_bytes(body[:2], "big")
            name += "-" + (_tfo(body[2:], True) if magic == 0xF989 else f"{magic:04x}")
        elif kind == 28:
            datalen = 2
            uto = int.from_bytes(body[:2], "big")
            name += f" 0x{uto:x} {(uto >> 1) * 60 if uto & 1 else uto >> 1}"
        elif kind in (0, 1, 4):
            datalen = 0
        else:
            datalen = len(body)
            if datalen:
                name += " 0x" + body.hex()
        expected = datalen + (1 if kind in (0, 1) else 2)
        if expected != length:
            name += f"[len {length}]"
        text += name
        sep = ","
        i += expected
        if kind == 0:
            break
    return text


def _ipv6_fragment(data, l3: int, l4: int):
    """tcpdump's ``frag (offset|length) `` for an IPv6 packet whose only
    extension header is a fragment header (an atomic fragment, RFC 6946, or
    a first fragment), else None."""
    if l4 - l3 != 48 or data[l3 + 6] != 44:
        return None
    plen = (int(data[l3 + 4]) << 8) | int(data[l3 + 5])
    offset = ((int(data[l3 + 42]) << 8) | int(data[l3 + 43])) & 0xFFF8
    return f"frag ({offset}|{plen - 8}) "


def format_segments(seg) -> List[str]:
    """One tcpdump line per row of a Segments table (its ``data`` must hold
    the packet bytes for the options)."""
    n = len(seg)
    if n == 0:
        return []
    src = seg.src_text()
    dst = seg.dst_text()
    ts = seg["ts_ns"]
    sec = (ts // 1_000_000_000).tolist()
    usec = ((ts % 1_000_000_000) // 1000).tolist()
    ver = seg["ip_version"].tolist()
    sport = seg["sport"].tolist()
    dport = seg["dport"].tolist()
    flags = seg["flags"].tolist()
    seq = seg["seq"].tolist()
    ack = seg["ack"].tolist()
    win = seg["window"].tolist()
    urg = seg["urgent"].tolist()
    hdr = seg["hdr_len"].tolist()
    plen = seg["payload_len"].tolist()
    data = seg.data
    l4 = seg["_l4_off"].tolist() if data is not None else None
    l3 = seg["_l3_off"].tolist() if data is not None else None
    l3cap = seg["_l3_caplen"].tolist() if data is not None else None
    lines = []
    for i in range(n):
        f = flags[i]
        frag = _ipv6_fragment(data, l3[i], l4[i]) if ver[i] == 6 and data is not None else None
        if frag is None:
            parts = [f"{sec[i]}.{usec[i]:06d} {'IP' if ver[i] == 4 else 'IP6'} "
                     f"{src[i]}.{sport[i]} > {dst[i]}.{dport[i]}: Flags [{_FLAG_TEXT[f & 0xFF]}]"]
        else:
            parts = [f"{sec[i]}.{usec[i]:06d} IP6 {src[i]} > {dst[i]}: {frag}"
                     f"{sport[i]} > {dport[i]}: Flags [{_FLAG_TEXT[f & 0xFF]}]"]
        length = plen[i]
        if length > 0 or f & (_consts.SYN | _consts.FIN | _consts.RST):
            parts.append(f", seq {seq[i]}")
            if length > 0:
                parts.append(f":{(seq[i] + length) & 0xFFFFFFFF}")
        if f & _consts.ACK:
            parts.append(f", ack {ack[i]}")
        parts.append(f", win {win[i]}")
        if f & _consts.URG:
            parts.append(f", urg {urg[i]}")
        if hdr[i] > 20 and data is not None:
            start = l4[i] + 20
            end = min(l4[i] + hdr[i], l3[i] + l3cap[i])
            try:
                parts.append(", options [" + format_options(bytes(data[start:end]),
                                                            hdr[i] - 20) + "]")
            except _Truncated as cut:
                parts.append(", options [" + cut.text)
                lines.append("".join(parts))
                continue
        parts.append(f", length {length}")
        lines.append("".join(parts))
    return lines


def show_lines(path: str, stats=None) -> Iterator[str]:
    """tcpdump-style lines for every TCP segment of a capture, streamed.
    ``stats``, a :class:`fastseg.CaptureStats`, if given, accumulates the
    capture accounting (e.g. the link types that were not decoded)."""
    from .parse import open as open_segments

    with open_segments(path) as cap:
        for seg in cap.batches():
            if stats is not None:
                stats += seg.stats
            yield from format_segments(seg)
