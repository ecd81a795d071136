#!/usr/bin/env python3
"""Regenerate the encapsulation and cut/damaged-option captures (as root).

    python3 tests/data/make_encap.py [OUTDIR] [--rewrap-only]   # needs veth_eth.pcap in OUTDIR

Two sources, and each file says which it is (README.md, "Encapsulations"):

- **real**: VXLAN is the one tunnel this kernel has (no gre, ipip, sit,
  ip6tnl, geneve, erspan or mpls_router modules).  Two network namespaces
  ``encap_a`` / ``encap_b`` joined only by a veth pair (underlay 10.10.0.1/2)
  carry a VXLAN overlay (VNI 42, 192.168.42.1/2, fd00:42::1/2) and
  ``traffic.py`` runs its scenarios over the overlay; tcpdump captures the
  underlay (``encap_vxlan.pcap``), the overlay with ``-s 60``
  (``snap60_overlay.pcap``: headers-only, options cut) and the underlay with
  ``-s 110`` (``snap110_vxlan.pcap``: options cut inside the tunnel).
  Checksums are filled in software (``ethtool -K ... tx off``).
- **re-wrapped**: every other encapsulation is real captured traffic (the
  frames of ``veth_eth.pcap``, see make_captures.py) wrapped with headers
  laid out here byte by byte from their RFCs; outer IPv4/IPv6/UDP headers
  and their checksums come from scapy.  Timestamps are the source frames'.
- ``synth_options.pcap`` is crafted (scapy + bytes): damaged options,
  reserved flag bits, IPv6 routing/home-address pseudo-headers, atomic
  fragments.

The namespaces are deleted at the end, whatever happens; every traffic loop
and capture is bounded in time.
"""
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_captures as mc  # noqa: E402
import pcapconv as pc  # noqa: E402

NS_A, NS_B = "encap_a", "encap_b"
MAC_A, MAC_B = "02:00:00:00:2a:01", "02:00:00:00:2a:02"
LINKTYPE_PPP, LINKTYPE_FDDI, LINKTYPE_PPP_HDLC = 9, 10, 50
LINKTYPE_C_HDLC, LINKTYPE_NFLOG = 104, 239


# --------------------------------------------------------------- real VXLAN
def make_vxlan(out: Path):
    mc.run("ip", "netns", "add", NS_A)
    mc.run("ip", "netns", "add", NS_B)
    try:
        mc.in_ns(NS_A, "ip", "link", "add", "uA", "type", "veth", "peer", "name", "uB",
                 "netns", NS_B)
        for ns, dev, peer, me, mac, v4, v6 in (
                (NS_A, "uA", "10.10.0.2", "10.10.0.1", MAC_A, "192.168.42.1/24", "fd00:42::1/64"),
                (NS_B, "uB", "10.10.0.1", "10.10.0.2", MAC_B, "192.168.42.2/24", "fd00:42::2/64")):
            mc.in_ns(ns, "ip", "link", "set", "lo", "up")
            mc.in_ns(ns, "ip", "addr", "add", me + "/24", "dev", dev)
            mc.in_ns(ns, "ethtool", "-K", dev, "tx", "off", stdout=subprocess.DEVNULL)
            mc.in_ns(ns, "ip", "link", "set", dev, "up")
            mc.in_ns(ns, "ip", "link", "add", "vx0", "address", mac, "type", "vxlan", "id", "42",
                     "local", me, "remote", peer, "dstport", "4789", "dev", dev)
            mc.in_ns(ns, "sysctl", "-q", "-w", "net.ipv6.conf.vx0.router_solicitations=0")
            mc.in_ns(ns, "ip", "addr", "add", v4, "dev", "vx0")
            mc.in_ns(ns, "ip", "addr", "add", v6, "dev", "vx0", "nodad")
            mc.in_ns(ns, "ethtool", "-K", "vx0", "tx", "off", stdout=subprocess.DEVNULL)
            mc.in_ns(ns, "ip", "link", "set", "vx0", "up")
        time.sleep(1.0)
        srv = mc.Server(NS_B, "192.168.42.2", "fd00:42::2")
        dumps = [mc.Tcpdump(NS_B, "uB", out / "encap_vxlan.pcap"),
                 mc.Tcpdump(NS_B, "vx0", out / "snap60_overlay.pcap", "-s", "60"),
                 mc.Tcpdump(NS_B, "uB", out / "snap110_vxlan.pcap", "-s", "110")]

        def body():
            mc.client(NS_A, "192.168.42.2", "fin_client_first", "refused", "rst_client",
                      "urgent", "noopts")
            mc.client(NS_A, "fd00:42::2", "fin_client_first", "rst_server")

        try:
            mc.capture(dumps, body)
        finally:
            srv.stop()
    finally:
        for ns in (NS_A, NS_B):
            mc.run("ip", "netns", "del", ns, check=False, stderr=subprocess.DEVNULL)


# ---------------------------------------------------------- re-wrapped
def split_ether(frame: bytes):
    """(ethertype, payload) of an untagged Ethernet frame."""
    return struct.unpack("!H", frame[12:14])[0], frame[14:]


def outer_v4(proto, payload, src="198.51.100.1", dst="198.51.100.2"):
    from scapy.all import IP
    return bytes(IP(src=src, dst=dst, proto=proto, id=7, ttl=63) / payload)


def outer_v6(nh, payload, src="2001:db8:ff::1", dst="2001:db8:ff::2"):
    from scapy.all import IPv6
    return bytes(IPv6(src=src, dst=dst, nh=nh, hlim=63) / payload)


def udp_v4(dport, payload, sport=49152, src="198.51.100.1", dst="198.51.100.2"):
    from scapy.all import IP, UDP
    return bytes(IP(src=src, dst=dst, id=7, ttl=63) / UDP(sport=sport, dport=dport) / payload)


def eth(ethertype, payload, dst="02:00:00:00:ee:02", src="02:00:00:00:ee:01"):
    mac = lambda m: bytes.fromhex(m.replace(":", ""))  # noqa: E731
    return mac(dst) + mac(src) + struct.pack("!H", ethertype) + payload


def mpls(labels, payload):
    out = b""
    for k, label in enumerate(labels):
        bos = 1 if k == len(labels) - 1 else 0
        out += struct.pack("!I", (label << 12) | (bos << 8) | 64)
    return out + payload


PPP_PROTO = {0x0800: 0x0021, 0x86DD: 0x0057}


def pppoe(ethertype, ip, session=0x2A):
    ppp = struct.pack("!H", PPP_PROTO[ethertype]) + ip
    return struct.pack("!BBHH", 0x11, 0x00, session, len(ppp)) + ppp


def gre(proto, payload, key=None, seq=None, flags_extra=0, version=0):
    flags = flags_extra | version
    opt = b""
    if key is not None:
        flags |= 0x2000
        opt += struct.pack("!I", key)
    if seq is not None:
        flags |= 0x1000
        opt += struct.pack("!I", seq)
    return struct.pack("!HH", flags, proto) + opt + payload


def wrap_frame(kind, i, frame):
    """(linktype, bytes) of source frame ``frame`` (index ``i``) carried by
    ``kind``; None to leave the frame out."""
    ethertype, ip = split_ether(frame)
    is_ip = ethertype in (0x0800, 0x86DD)
    v6 = ethertype == 0x86DD
    if kind == "mpls":
        if not is_ip:
            return 1, frame
        return 1, eth(0x8847, mpls([100 + i % 3, 2000], ip))
    if kind == "mpls_pw":
        # Ethernet pseudowire: labels, a zero control word with a sequence
        # number, the whole customer frame.
        return 1, eth(0x8847, mpls([300, 16], struct.pack("!I", i & 0xFFFF) + frame))
    if kind in ("pppoe", "pppoe_qinq"):
        if not is_ip:
            return 1, frame
        body = struct.pack("!H", 0x8864) + pppoe(ethertype, ip)
        if kind == "pppoe_qinq":
            body = struct.pack("!HHHH", 0x88A8, 100, 0x8100, 20) + body
        return 1, frame[:12] + body
    if kind == "fabricpath":
        # Outer FabricPath MACs, ethertype 0x8903, FTag/TTL, the classic
        # frame and its FCS (tshark expects one inside FabricPath).
        import zlib
        fcs = struct.pack("<I", zlib.crc32(frame))
        return 1, eth(0x8903, struct.pack("!H", (1 << 6) | 32) + frame + fcs,
                      dst="02:00:0c:00:00:02", src="02:00:0c:00:00:01")
    if kind == "pbb":
        # 802.1ah: B-tag, I-TAG (I-SID 0x010203), the customer frame.
        return 1, eth(0x88A8, struct.pack("!HH", 7, 0x88E7)
                      + struct.pack("!I", 0x00010203) + frame)
    if kind == "llc_snap":
        body = bytes([0xAA, 0xAA, 0x03, 0, 0, 0]) + frame[12:]
        return 1, frame[:12] + struct.pack("!H", len(body)) + body
    if kind == "nflog":
        if not is_ip:
            return None
        tlvs = b""
        for ttype, value in ((1, struct.pack("!HBB", ethertype, 0, 0)),   # NFULA_PACKET_HDR
                             (10, b"fastseg\0"),                           # NFULA_PREFIX
                             (9, ip)):                                     # NFULA_PAYLOAD
            tlv = struct.pack("<HH", 4 + len(value), ttype) + value
            tlvs += tlv + b"\0" * (-len(tlv) % 4)
        return LINKTYPE_NFLOG, struct.pack("!BBH", 10 if v6 else 2, 0, 5) + tlvs
    if kind == "ppp":
        if not is_ip:
            return None
        return LINKTYPE_PPP, struct.pack("!BBH", 0xFF, 0x03, PPP_PROTO[ethertype]) + ip
    if kind == "ppp_hdlc":
        if not is_ip:
            return None
        return LINKTYPE_PPP_HDLC, struct.pack("!BBH", 0xFF, 0x03, PPP_PROTO[ethertype]) + ip
    if kind == "c_hdlc":
        if not is_ip:
            return None
        return LINKTYPE_C_HDLC, struct.pack("!BBH", 0x0F, 0x00, ethertype) + ip
    if kind == "fddi":
        if not is_ip:
            return None
        return LINKTYPE_FDDI, (bytes([0x50]) + frame[:12] + bytes([0xAA, 0xAA, 0x03, 0, 0, 0])
                               + struct.pack("!H", ethertype) + ip)
    if kind == "gre":
        if not is_ip:
            return 1, frame
        return 1, eth(0x0800, outer_v4(47, gre(ethertype, ip, key=0x1234, seq=i)))
    if kind == "gre_teb":
        return 1, eth(0x0800, outer_v4(47, gre(0x6558, frame, key=7)))
    if kind == "erspan":
        # Types I (no header), II (8 bytes) and III (12, + 8 with the O bit)
        # in turn.
        if i % 4 == 0:
            body = gre(0x88BE, frame)
        elif i % 4 == 1:
            body = gre(0x88BE, struct.pack("!HHI", 0x1000 | 10, 0x0000, 0) + frame, seq=i)
        elif i % 4 == 2:
            body = gre(0x22EB, struct.pack("!HHII", 0x2000 | 10, 0, 0x12345678, 0) + frame, seq=i)
        else:
            body = gre(0x22EB, struct.pack("!HHII", 0x2000 | 10, 0, 0x12345678, 1)
                       + struct.pack("!II", 0x0003_0000, 0x9ABCDEF0) + frame, seq=i)
        return 1, eth(0x0800, outer_v4(47, body))
    if kind == "pptp":
        if not is_ip:
            return 1, frame
        ppp = struct.pack("!BBH", 0xFF, 0x03, PPP_PROTO[ethertype]) + ip
        body = struct.pack("!HHHHI", 0x3000 | 0x0001, 0x880B, len(ppp), 0x4242, i) + ppp
        return 1, eth(0x0800, outer_v4(47, body))
    if kind == "ipip4":
        if not is_ip:
            return 1, frame
        return 1, eth(0x0800, outer_v4(41 if v6 else 4, ip))
    if kind == "ipip6":
        if not is_ip:
            return 1, frame
        return 1, eth(0x86DD, outer_v6(41 if v6 else 4, ip))
    if kind == "geneve":
        # Version 0, one 8-byte option (class 0x0102, type 0x80), protocol
        # Ethernet, VNI 0x00ABCD.
        opt = struct.pack("!HBB", 0x0102, 0x80, 1) + b"\x11\x22\x33\x44"
        hdr = struct.pack("!BBHI", len(opt) // 4, 0, 0x6558, 0x00ABCD << 8) + opt
        return 1, eth(0x0800, udp_v4(6081, hdr + frame, sport=40000 + i % 7))
    if kind == "teredo":
        if not v6:
            return 1, frame
        # Every third packet carries an origin indication (RFC 4380 5.1.1).
        head = b""
        if i % 3 == 0:
            head = struct.pack("!HH", 0, 0xFFFF ^ 3544) + bytes(b ^ 0xFF for b in (192, 0, 2, 9))
        return 1, eth(0x0800, udp_v4(3544, head + ip, sport=3544,
                                     src="192.0.2.9", dst="198.51.100.2"))
    if kind == "gtp":
        if not is_ip:
            return 1, frame
        # GTPv1-U G-PDU; odd packets carry a sequence number and a PDU
        # session container extension header (type 0x85).
        if i % 2:
            ext = struct.pack("!BBBB", 1, 0x10, 0x05, 0)
            body = struct.pack("!HBB", i & 0xFFFF, 0, 0x85) + ext + ip
            hdr = struct.pack("!BBHI", 0x36, 0xFF, len(body), 0x1000 + i % 2)
        else:
            body = ip
            hdr = struct.pack("!BBHI", 0x30, 0xFF, len(body), 0x1000)
        return 1, eth(0x0800, udp_v4(2152, hdr + body, sport=2152))
    if kind == "ayiya":
        if not is_ip:
            return 1, frame
        # Identity: an IPv6 address (length 2^4), signature SHA-1 (5 words),
        # op code forward, next header 4/41, epoch time.
        hdr = struct.pack("!BBBBI", 0x41, 0x52, 0x11, 41 if v6 else 4, 1_700_000_000)
        hdr += bytes(16) + bytes(range(20))
        return 1, eth(0x0800, udp_v4(5072, hdr + ip, sport=5072))
    raise ValueError(kind)


REWRAPPED = ["mpls", "mpls_pw", "pppoe", "pppoe_qinq", "fabricpath", "pbb", "llc_snap",
             "nflog", "ppp", "ppp_hdlc", "c_hdlc", "fddi", "gre", "gre_teb", "erspan", "pptp",
             "ipip4", "ipip6", "geneve", "teredo", "gtp", "ayiya"]


def make_rewrapped(out: Path):
    src = pc.read_pcap(out / "veth_eth.pcap")
    for kind in REWRAPPED:
        recs, linktype = [], None
        for i, r in enumerate(src.records):
            got = wrap_frame(kind, i, r.data)
            if got is None:
                continue
            lt, data = got
            assert linktype in (None, lt)
            linktype = lt
            recs.append(pc.Record(r.ts_ns, len(data), data))
        pc.write_pcap(out / f"encap_{kind}.pcap", pc.Pcap(linktype, 262144, False, recs))


def make_two_tunnels(out: Path):
    """The real VXLAN capture twice, the second copy in another tunnel (VNI
    43 between other underlay addresses) 10 s later: equal inner 4-tuples in
    two tunnels, which must stay two sets of connections."""
    from scapy.all import IP, UDP, Ether
    src = pc.read_pcap(out / "encap_vxlan.pcap")
    recs = list(src.records)
    for r in src.records:
        p = Ether(r.data)
        if UDP in p and p[UDP].dport == 4789:
            raw = bytearray(bytes(p[UDP].payload))
            raw[4:7] = (43).to_bytes(3, "big")
            o = p[IP]
            new = (Ether(src=p.src, dst=p.dst)
                   / IP(src=o.src.replace("10.10.0.", "10.10.1."),
                        dst=o.dst.replace("10.10.0.", "10.10.1."), ttl=o.ttl, id=o.id)
                   / UDP(sport=p[UDP].sport, dport=4789) / bytes(raw))
            data = bytes(new)
            recs.append(pc.Record(r.ts_ns + 10 * 10**9, len(data), data))
    recs.sort(key=lambda r: r.ts_ns)
    pc.write_pcap(out / "encap_two_tunnels.pcap", pc.Pcap(1, 262144, False, recs))


# ----------------------------------------------------------- crafted options
def make_options(out: Path):
    """Damaged and unusual TCP options and header bits, one per frame (README)."""
    from scapy.all import (IP, TCP, Ether, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                           IPv6ExtHdrRouting, HAO)

    e4 = Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0b:02")
    a4, b4, a6, b6 = "10.9.0.1", "10.9.0.2", "fd00:9::1", "fd00:9::2"

    def with_options(opts: bytes, flags=0x002, **kw):
        """A SYN whose option bytes are ``opts`` (padded to 4), checksum right."""
        from scapy.utils import checksum
        opts = opts + b"\0" * (-len(opts) % 4)
        t = TCP(sport=42000 + len(frames), dport=80, seq=1000, flags=flags, chksum=0, **kw)
        raw = bytearray(bytes(t)[:20] + opts)
        raw[12] = ((20 + len(opts)) // 4) << 4 | (raw[12] & 0x0F)
        pseudo = bytes(map(int, a4.split("."))) + bytes(map(int, b4.split("."))) \
            + struct.pack("!BBH", 0, 6, len(raw))
        raw[16:18] = struct.pack("!H", checksum(pseudo + bytes(raw)))
        return bytes(e4 / IP(src=a4, dst=b4, id=len(frames), proto=6) / bytes(raw))

    frames = []
    for opts in (
            bytes([2, 8, 5, 0]),                              # 1 MSS length 8 past the header
            bytes([2, 4, 5, 0xB4, 3, 1, 7, 1]),              # 2 MSS, then WS length 1 (< 2)
            bytes([2, 4, 5, 0xB4, 4, 0]),                    # 3 MSS, SACK_PERM length 0
            bytes([1, 1, 8, 10, 0, 0, 0, 1]),                # 4 TS running past the header
            bytes([2, 4, 5, 0xB4, 1, 1, 1, 5]),              # 5 kind 5 without length byte
            bytes([3, 4, 7, 0, 2, 4, 5, 0xB4]),              # 6 WS with length 4 (wrong), MSS
            bytes([2, 4, 5, 0xB4, 99, 3, 0, 19, 18]) + bytes(16),  # 7 unknown kind 99, MD5
            bytes([2, 4, 5, 0xB4, 0, 8, 10, 1, 2]),          # 8 garbage after EOL
            bytes([30, 4, 0x00, 0x81, 28, 4, 0x80, 0x3C, 34, 2]),  # 9 MPTCP, UTO, TFO request
            bytes([5, 11]) + bytes(9),                        # 10 SACK length 11
    ):
        frames.append(with_options(opts))
    # 11 reserved flag bits (all three) with ACK; 12 NS + reserved bit 9.
    for reserved, flag_bits in ((7, 0x010), (1, 0x110)):
        frames.append(bytes(e4 / IP(src=a4, dst=b4, id=len(frames))
                            / TCP(sport=43000, dport=80, seq=5, ack=9, flags=flag_bits,
                                  reserved=reserved)))
    # 13/14 IPv6 routing header type 0, one segment left: pseudo-header uses
    # the final destination (good, then bad checksum).
    e6 = Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0b:02")
    for bad in (False, True):
        p = e6 / IPv6(src=a6, dst="fd00:9::99") / IPv6ExtHdrRouting(
            addresses=[b6], segleft=1) / TCP(sport=44000, dport=80, flags="S", seq=77)
        p = Ether(bytes(p))
        if bad:
            p[TCP].chksum ^= 0x0101
        frames.append(bytes(p))
    # 15/16 home address option: pseudo-header source is the home address.
    for bad in (False, True):
        p = e6 / IPv6(src=a6, dst=b6) / IPv6ExtHdrDestOpt(options=[HAO(hoa="2001:db8:77::1")]) \
            / TCP(sport=44001, dport=80, flags="S", seq=78)
        p = Ether(bytes(p))
        if bad:
            p[TCP].chksum ^= 0x0101
        frames.append(bytes(p))
    # 17 IPv6 atomic fragment (RFC 6946: offset 0, M 0) carrying a SYN.
    frames.append(bytes(e6 / IPv6(src=a6, dst=b6) / IPv6ExtHdrFragment(id=0xABCD, m=0, offset=0)
                        / TCP(sport=44002, dport=80, flags="S", seq=79,
                              options=[("MSS", 1440)])))
    t0 = 1_700_000_200 * 10**9
    recs = [pc.Record(t0 + i * 1_000_000, len(f), f) for i, f in enumerate(frames)]
    pc.write_pcap(out / "synth_options.pcap", pc.Pcap(1, 262144, False, recs))


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = Path(args[0]) if args else HERE
    mc.TMP = Path(tempfile.mkdtemp(prefix="fastseg-encap-"))
    if "--rewrap-only" not in sys.argv:
        make_vxlan(out)
    make_rewrapped(out)
    make_two_tunnels(out)
    make_options(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
