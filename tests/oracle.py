"""tshark as the test oracle: the one place every test asks Wireshark what a
capture contains.

``tshark_tcp_fields(path)`` returns one numpy column per Segments column
(names as in ``fastseg.segments.SEGMENT_DTYPES``), one row per frame whose
innermost transport header is a TCP header whose fixed 20 bytes were
captured, in frame order.  Absent values use fastseg's sentinels (-1 / False
/ 0).  Addresses are returned as text (``src``, ``dst``), the form fastseg's
``src_text()`` gives.

Which frames are segments (the rule the parser must follow too):
- the frame's innermost IP header (after any encapsulation tshark decodes:
  VLAN, MPLS, PPPoE, GRE, VXLAN, Teredo, ...) carries TCP (ICMP errors that
  quote a TCP header are not segments; tshark would show the quoted header);
- the fixed 20-byte TCP header was captured and its data offset (>= 20
  bytes) fits in the IP payload; options cut by the snapshot length or with
  a bad length are decoded as far as they go, and the segment kept;
- later IP fragments are not segments (tshark, with defragmentation off,
  does not dissect them as TCP either), nor is a first fragment too short
  for the whole TCP header;
- an IP total/payload length larger than the frame on the wire (not a
  snapshot-length cut: the bytes never existed) makes it malformed.

tshark quirks handled here:
- a frame without a timestamp (pcapng SPB) gets ts_ns -1;
- nanosecond timestamps: ``frame.time_epoch`` printed with 9 decimals and
  parsed as text (a float64 would lose the nanoseconds);
- ``tcp.flags`` is 12 bits in tshark (3 reserved bits above NS), as in fastseg;
- ``-E occurrence=l``: the innermost IP/TCP layer's fields (the frame's
  protocol list says which IP version that is);
- Wireshark checksum statuses (0 bad, 1 good, 2 unverified) mapped to
  fastseg's (0 ok, 1 bad, 2 unverified, 3 not applicable);
- ``tcp.len`` is missing for a first fragment (tshark does not know the
  segment's end): computed from the IP length and the TCP header position;
- options: ``tcp.option.len.invalid`` / ``tcp.suboption_malformed`` mark a
  bad option length (``opt_status`` 2), a header longer than the captured
  bytes a cut (1);
- reassembly and defragmentation are off so every frame stands alone.
"""
from __future__ import annotations

import functools
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List

import numpy as np

TSHARK_PREFS = [
    "-o", "tcp.check_checksum:TRUE",
    "-o", "ip.check_checksum:TRUE",
    "-o", "ip.defragment:FALSE",
    "-o", "ipv6.defragment:FALSE",
    "-o", "tcp.desegment_tcp_streams:FALSE",
    "-o", "tcp.analyze_sequence_numbers:FALSE",
    "-o", "tcp.relative_sequence_numbers:FALSE",
    # The Ethernet pseudowire of encap_mpls_pw.pcap, as an operator tells
    # Wireshark (Decode As): its heuristic takes the control word for MACs.
    "-d", "mpls.label==16,pwethcw",
]

# tshark field -> short name used below.
FIELDS = [
    ("frame.number", "frame"),
    ("frame.time_epoch", "time"),
    ("frame.cap_len", "caplen"),
    ("frame.len", "wirelen"),
    ("frame.protocols", "protocols"),
    ("ip.src", "ip_src"), ("ip.dst", "ip_dst"),
    ("ipv6.src", "ip6_src"), ("ipv6.dst", "ip6_dst"),
    ("ip.ttl", "ip_ttl"), ("ipv6.hlim", "ip6_hlim"),
    ("ip.id", "ip_id"), ("ip.len", "ip_len"), ("ipv6.plen", "ip6_plen"),
    ("ip.flags.mf", "ip_mf"), ("ip.frag_offset", "ip_frag_offset"),
    ("ipv6.fraghdr.offset", "ip6_frag_offset"), ("ipv6.fraghdr.more", "ip6_mf"),
    ("ip.checksum.status", "ip_csum_status"),
    ("tcp.srcport", "sport"), ("tcp.dstport", "dport"),
    ("tcp.seq_raw", "seq"), ("tcp.ack_raw", "ack"),
    ("tcp.flags", "flags"), ("tcp.hdr_len", "hdr_len"), ("tcp.len", "tcp_len"),
    ("tcp.window_size_value", "window"), ("tcp.checksum", "checksum"),
    ("tcp.urgent_pointer", "urgent"),
    ("tcp.options.mss_val", "mss"), ("tcp.options.wscale.shift", "wscale"),
    ("tcp.options.sack_perm", "sack_perm"), ("tcp.options.sack.count", "sack_count"),
    ("tcp.options.timestamp.tsval", "tsval"), ("tcp.options.timestamp.tsecr", "tsecr"),
    ("tcp.options.tfo.cookie", "tfo_cookie"), ("tcp.options.tfo.request", "tfo_request"),
    ("tcp.checksum.status", "tcp_csum_status"),
    ("tcp.option.len.invalid", "opt_invalid"),
    ("tcp.suboption_malformed", "subopt_malformed"),
]

# Wireshark proto_checksum_enum_e -> fastseg ChecksumStatus
_WS_STATUS = {"0": 1, "1": 0, "2": 2}

# Columns tshark_tcp_fields returns (the parser's columns it can check;
# flow_key is a hash tshark does not know).
ORACLE_COLUMNS = [
    "frame", "ts_ns", "ip_version", "src", "dst", "sport", "dport", "seq", "ack",
    "flags", "hdr_len", "payload_len", "window", "checksum", "urgent", "ttl", "ip_id",
    "mss", "wscale", "sack_perm", "sack_blocks", "tsval", "tsecr", "tfo_cookie_len",
    "checksum_status", "ip_checksum_status", "fragment", "opt_status", "tunnel",
]

# The tshark protocol names of IP-level tunnels, in fastseg's TunnelKind
# order (fastseg._consts.TUNNEL_NAMES); "ip" is IP-in-IP.
_TUNNEL_PROTOCOLS = {"gre": 2, "vxlan": 3, "geneve": 4, "teredo": 5, "gtp": 6, "ayiya": 7}


def tshark_path() -> str:
    path = shutil.which("tshark")
    if path is None:
        raise FileNotFoundError("tshark not found")
    return path


def _run(args: List[str]) -> str:
    res = subprocess.run([tshark_path()] + args, capture_output=True, text=True)
    # tshark exits 2 on a capture cut mid-record but prints what it read.
    if res.returncode not in (0, 2):
        raise RuntimeError(f"tshark {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


def _epoch_ns(text: str) -> int:
    if text == "":
        return -1       # no timestamp (pcapng Simple Packet Block)
    sec, _, frac = text.partition(".")
    return int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])


def _int(text: str, default: int = -1) -> int:
    if text == "":
        return default
    return int(text, 0)


@functools.lru_cache(maxsize=None)
def _tcp_positions(path: str) -> Dict[int, tuple]:
    """frame -> (offset of the innermost IP header before the first TCP
    header, offset of that TCP header) from tshark's PDML, for frames that
    have a TCP layer."""
    xml = _run(["-r", path, "-n"] + TSHARK_PREFS + ["-Y", "tcp", "-T", "pdml"])
    out = {}
    for packet in ET.fromstring(xml).iter("packet"):
        frame, l3, l4 = None, None, None
        for proto in packet.findall("proto"):
            name = proto.get("name")
            if name == "geninfo":
                for field in proto.findall("field"):
                    if field.get("name") == "num":
                        frame = int(field.get("show"))
            elif name in ("ip", "ipv6") and l4 is None:
                l3 = int(proto.get("pos"))
            elif name == "tcp" and l4 is None:
                l4 = int(proto.get("pos"))
        if frame is not None and l3 is not None and l4 is not None:
            out[frame] = (l3, l4)
    return out


@functools.lru_cache(maxsize=None)
def _tcp_rows(path: str) -> tuple:
    args = ["-r", path, "-n"] + TSHARK_PREFS + [
        "-Y", "tcp and not icmp and not icmpv6",
        "-T", "fields", "-E", "separator=/t", "-E", "occurrence=l"]
    for field, _ in FIELDS:
        args += ["-e", field]
    rows = []
    names = [short for _, short in FIELDS]
    for line in _run(args).splitlines():
        parts = line.split("\t")
        if len(parts) != len(names):
            continue
        rows.append(dict(zip(names, parts)))
    return tuple(rows)


def _segment(r: dict, pos: Dict[int, tuple]):
    """One oracle row from one tshark row, or None when the frame is not a
    segment (see the module docstring)."""
    frame = int(r["frame"])
    # The innermost IP layer decides, and it must carry TCP directly (after
    # IPv6 extension headers): ICMP quotes are not segments.
    protos = r["protocols"].split(":")
    if "tcp" not in protos:
        return None
    ips = [i for i, p in enumerate(protos[:protos.index("tcp")]) if p in ("ip", "ipv6")]
    if not ips:
        return None
    first = ips[-1]
    v6 = protos[first] == "ipv6"
    after = [p for p in protos[first + 1:] if not p.startswith("ipv6.")]
    if not after or after[0] != "tcp":
        return None
    tunnel = 0
    for p in protos[ips[0] + 1:first]:
        if p in _TUNNEL_PROTOCOLS:
            tunnel = _TUNNEL_PROTOCOLS[p]
            break
    else:
        if len(ips) > 1:
            tunnel = 1
    if r["hdr_len"] == "" or r["checksum"] == "" or frame not in pos:
        # No fixed header dissected (tshark's FabricPath assumes an FCS
        # that eats the last 4 bytes of the frame).
        return None
    hdr_len = int(r["hdr_len"])
    l3, l4 = pos[frame]
    if hdr_len < 20 or l4 + 20 > int(r["caplen"]):
        return None
    if v6:
        fragment = r["ip6_frag_offset"] != "" and (
            int(r["ip6_frag_offset"]) > 0 or r["ip6_mf"] in ("1", "True"))
        if r["ip6_frag_offset"] not in ("", "0"):
            return None
        l3_end = l3 + 40 + int(r["ip6_plen"])
    else:
        offset = int(r["ip_frag_offset"] or 0)
        fragment = offset > 0 or r["ip_mf"] in ("1", "True")
        if offset > 0:
            return None
        l3_end = l3 + int(r["ip_len"])
    if l3_end > int(r["wirelen"]):
        return None     # the IP length claims more bytes than the frame had
    if l4 + hdr_len > l3_end:
        return None     # tshark's "bogus TCP header length"
    if r["opt_invalid"] != "" or r["subopt_malformed"] != "":
        opt_status = 2
    elif l4 + hdr_len > int(r["caplen"]):
        opt_status = 1
    else:
        opt_status = 0
    if r["tcp_len"] != "":
        payload_len = int(r["tcp_len"])
    else:
        payload_len = l3_end - l4 - hdr_len
    if r["tfo_cookie"] != "":
        tfo = len(r["tfo_cookie"].replace(":", "")) // 2
    elif r["tfo_request"] != "":
        tfo = 0
    else:
        tfo = -1
    return {
        "frame": frame,
        "ts_ns": _epoch_ns(r["time"]),
        "ip_version": 6 if v6 else 4,
        "src": r["ip6_src"] if v6 else r["ip_src"],
        "dst": r["ip6_dst"] if v6 else r["ip_dst"],
        "sport": int(r["sport"]),
        "dport": int(r["dport"]),
        "seq": int(r["seq"]),
        "ack": int(r["ack"]),
        "flags": int(r["flags"], 16),
        "hdr_len": hdr_len,
        "payload_len": payload_len,
        "window": int(r["window"]),
        "checksum": int(r["checksum"], 16),
        "urgent": int(r["urgent"] or 0),
        "ttl": int(r["ip6_hlim"] if v6 else r["ip_ttl"]),
        "ip_id": -1 if v6 else int(r["ip_id"], 16),
        "mss": _int(r["mss"]),
        "wscale": _int(r["wscale"]),
        "sack_perm": r["sack_perm"] != "",
        "sack_blocks": _int(r["sack_count"], 0),
        "tsval": _int(r["tsval"]),
        "tsecr": _int(r["tsecr"]),
        "tfo_cookie_len": tfo,
        # A first fragment does not hold the whole segment: never verifiable.
        "checksum_status": 2 if fragment else _WS_STATUS.get(r["tcp_csum_status"], 2),
        "ip_checksum_status": 3 if v6 else _WS_STATUS.get(r["ip_csum_status"], 2),
        "fragment": fragment,
        "opt_status": opt_status,
        "tunnel": tunnel,
    }


_DTYPES = {
    "frame": np.int64, "ts_ns": np.int64, "ip_version": np.uint8, "src": object,
    "dst": object, "sport": np.uint16, "dport": np.uint16, "seq": np.uint32,
    "ack": np.uint32, "flags": np.uint16, "hdr_len": np.uint8, "payload_len": np.uint32,
    "window": np.uint16, "checksum": np.uint16, "urgent": np.uint16, "ttl": np.uint8,
    "ip_id": np.int32, "mss": np.int32, "wscale": np.int16, "sack_perm": np.bool_,
    "sack_blocks": np.uint8, "tsval": np.int64, "tsecr": np.int64,
    "tfo_cookie_len": np.int16, "checksum_status": np.uint8,
    "ip_checksum_status": np.uint8, "fragment": np.bool_, "opt_status": np.uint8,
    "tunnel": np.uint8,
}


def tshark_tcp_fields(path) -> Dict[str, np.ndarray]:
    """Every TCP segment of ``path`` as tshark dissects it: a dict of numpy
    columns keyed by fastseg column names (see ORACLE_COLUMNS), one row per
    segment in frame order."""
    path = str(Path(path))
    pos = _tcp_positions(path)
    rows = [s for s in (_segment(r, pos) for r in _tcp_rows(path)) if s is not None]
    return {name: np.array([row[name] for row in rows], dtype=dt)
            for name, dt in _DTYPES.items()}


def tshark_frame_count(path) -> int:
    """Number of frames tshark reads from ``path`` (all link types, every
    packet, including the ones that are not TCP)."""
    out = _run(["-r", str(path), "-n", "-T", "fields", "-e", "frame.number"])
    return len(out.split())


def tshark_frames(path, *fields: str, display_filter: str = "") -> List[List[str]]:
    """Raw text of ``fields`` for every frame (matching ``display_filter``),
    for tests that need other facts from tshark."""
    args = ["-r", str(path), "-n"] + TSHARK_PREFS + [
        "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f"]
    if display_filter:
        args += ["-Y", display_filter]
    for f in fields:
        args += ["-e", f]
    return [line.split("\t") for line in _run(args).splitlines()]


def tshark_streams(path) -> Dict[int, dict]:
    """tshark's view of each TCP conversation (``tcp.stream``): first frame,
    packet count, the handshake's initial RTT in seconds (Wireshark's iRTT:
    first SYN to the ACK that completes the handshake; NaN when it never
    completes; note that tshark also reports one for a refused connection,
    from the SYN to the RST-ACK) and the endpoints of its first packet.  For
    tracker tests."""
    rows = _run(["-r", str(path), "-n", "-o", "tcp.analyze_sequence_numbers:TRUE",
                 "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
                 "-Y", "tcp and not icmp and not icmpv6",
                 "-T", "fields", "-E", "separator=/t", "-E", "occurrence=f",
                 "-e", "tcp.stream", "-e", "frame.number", "-e", "ip.src", "-e", "ipv6.src",
                 "-e", "tcp.srcport", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport",
                 "-e", "tcp.analysis.initial_rtt"]).splitlines()
    out: Dict[int, dict] = {}
    for line in rows:
        stream, frame, s4, s6, sport, d4, d6, dport, irtt = line.split("\t")
        st = out.get(int(stream))
        if st is None:
            st = out[int(stream)] = {
                "first_frame": int(frame), "packets": 0, "initial_rtt": float("nan"),
                "src": s4 or s6, "sport": int(sport), "dst": d4 or d6, "dport": int(dport)}
        st["packets"] += 1
        if irtt and st["initial_rtt"] != st["initial_rtt"]:
            st["initial_rtt"] = float(irtt)
    return out
