#!/usr/bin/env python3
"""Regenerate the committed test captures (run through make_captures.sh, as root).

All traffic stays inside network namespaces created here (their loopback, or
veth pairs that connect only to each other); every namespace is deleted at the
end, whatever happens.  Every traffic generator and capture is bounded in time.
"""
import gzip
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import pcapconv as pc  # noqa: E402

TRAFFIC = [sys.executable, str(HERE / "traffic.py")]
NS_LO, NS_A, NS_B = "fsd_lo", "fsd_a", "fsd_b"
TMP = None     # scratch directory, made by main()
DROP_5010 = """
table inet fsd {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 5010 drop
  }
}
"""
LOSSY_5008 = """
table inet fsd_loss {
  chain input {
    type filter hook input priority 0; policy accept;
    tcp dport 5008 tcp flags & (syn|fin) == 0 meta length > 300 numgen random mod 100 < 6 drop
  }
}
"""


def run(*args, check=True, **kw):
    return subprocess.run([str(a) for a in args], check=check, **kw)


def nsx(ns, *args):
    return ["ip", "netns", "exec", ns] + [str(a) for a in args]


def in_ns(ns, *args, **kw):
    return run(*nsx(ns, *args), **kw)


class Tcpdump:
    """One tcpdump inside a namespace, started and confirmed listening."""

    def __init__(self, ns, iface, out, *extra):
        self.out = out
        self.errpath = TMP / (Path(out).name + ".err")
        self.err = open(self.errpath, "w")
        self.proc = subprocess.Popen(
            nsx(ns, "tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-Z", "root", "-w", out, *extra),
            stdout=subprocess.DEVNULL, stderr=self.err)
        for _ in range(100):
            if "listening on" in self.errpath.read_text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"tcpdump for {out} did not start: {self.errpath.read_text()}")

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.close()


class Server:
    def __init__(self, ns, *addrs, lifetime=60):
        ready = TMP / f"ready-{ns}-{time.monotonic_ns()}"
        args = ["serve", "--ready", ready, "--lifetime", lifetime]
        for a in addrs:
            args += ["--addr", a]
        self.proc = subprocess.Popen(nsx(ns, *TRAFFIC, *args))
        for _ in range(100):
            if ready.exists():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def client(ns, host, *scenarios, extra=()):
    in_ns(ns, *TRAFFIC, "client", "--host", host, *extra, *scenarios, timeout=120)


def capture(dumps, body):
    """Run body() while the tcpdumps listen; stop them once the last packets
    have been written."""
    try:
        body()
        time.sleep(1.0)
    finally:
        for d in dumps:
            d.stop()


def cleanup_namespaces():
    for ns in (NS_LO, NS_A, NS_B):
        run("ip", "netns", "del", ns, check=False, stderr=subprocess.DEVNULL)


# ------------------------------------------------------------- loopback
def make_loopback(out: Path):
    run("ip", "netns", "add", NS_LO)
    in_ns(NS_LO, "ip", "link", "set", "lo", "up")
    # Server and client share the namespace: 3 = TFO for both sides.
    in_ns(NS_LO, "sysctl", "-q", "-w", "net.ipv4.tcp_fastopen=3")
    in_ns(NS_LO, "nft", "-f", "-", input=DROP_5010.encode())
    srv = Server(NS_LO, "127.0.0.1", "::1")
    dumps = [
        Tcpdump(NS_LO, "lo", out / "lo_conv.pcap"),
        Tcpdump(NS_LO, "lo", out / "lo_conv_ns.pcap", "--time-stamp-precision=nano"),
        Tcpdump(NS_LO, "lo", out / "lo_snap80.pcap", "-s", "80"),
    ]

    def body():
        client(NS_LO, "127.0.0.1", "fin_client_first", "fin_server_first", "refused",
               "rst_client", "rst_server", "close_wait", "tfo", "tfo", "urgent", "ipopts",
               "udp", "unanswered")
        client(NS_LO, "::1", "fin_client_first", "fin_server_first", "refused",
               "rst_client", "udp")

    try:
        capture(dumps, body)
    finally:
        srv.stop()
        run("ip", "netns", "del", NS_LO)


# ------------------------------------------------------------------ veth
def setup_veth():
    run("ip", "netns", "add", NS_A)
    run("ip", "netns", "add", NS_B)
    in_ns(NS_A, "ip", "link", "add", "vA", "address", "02:00:00:00:0a:01", "type", "veth",
          "peer", "name", "vB", "address", "02:00:00:00:0b:02", "netns", NS_B)
    for ns, dev, v4, v6 in ((NS_A, "vA", "10.9.0.1/24", "fd00:9::1/64"),
                            (NS_B, "vB", "10.9.0.2/24", "fd00:9::2/64")):
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{dev}.router_solicitations=0")
        in_ns(ns, "ip", "addr", "add", v4, "dev", dev)
        in_ns(ns, "ip", "addr", "add", v6, "dev", dev, "nodad")
        # Software checksums: the capture carries real, filled checksums.
        in_ns(ns, "ethtool", "-K", dev, "tx", "off", stdout=subprocess.DEVNULL)
        in_ns(ns, "ip", "link", "set", dev, "up")
    in_ns(NS_A, "sysctl", "-q", "-w", "net.ipv4.tcp_ecn=1")
    in_ns(NS_B, "nft", "-f", "-", input=DROP_5010.encode())
    time.sleep(1.0)     # let the links settle (IPv6 MLD/ND chatter) before capturing


def make_veth(out: Path):
    srv = Server(NS_B, "10.9.0.2", "fd00:9::2")
    in_ns(NS_A, "ip", "neigh", "flush", "all")
    dumps = [
        Tcpdump(NS_B, "vB", out / "veth_eth.pcap"),
        Tcpdump(NS_B, "vB", out / "veth_eth_ns.pcap", "--time-stamp-precision=nano"),
        Tcpdump(NS_A, "any", out / "any_sll.pcap", "-y", "LINUX_SLL"),
        Tcpdump(NS_A, "any", out / "any_sll2.pcap", "-y", "LINUX_SLL2"),
    ]

    def body():
        client(NS_A, "10.9.0.2", "udp", "fin_client_first", "fin_server_first", "refused",
               "rst_client", "rst_server", "close_wait", "noopts", "urgent", "ipopts",
               "unanswered")
        client(NS_A, "fd00:9::2", "fin_client_first", "rst_client")

    try:
        capture(dumps, body)
    finally:
        srv.stop()


def has_sack_blocks(path):
    res = run("tshark", "-r", path, "-Y", "tcp.options.sack_le", "-T", "fields",
              "-e", "frame.number", capture_output=True, text=True)
    return bool(res.stdout.strip())


def make_sack(out: Path):
    """Bulk transfer where the receiver's firewall drops a random few data
    segments, captured on the sender's side, so the receiver sends SACK
    blocks.  Loss is random: a few bounded attempts."""
    in_ns(NS_B, "nft", "-f", "-", input=LOSSY_5008.encode())
    path = out / "veth_sack.pcap"
    try:
        for attempt in range(5):
            srv = Server(NS_B, "10.9.0.2")
            dumps = [Tcpdump(NS_A, "vA", path, "tcp", "port", "5008")]
            try:
                capture(dumps, lambda: client(NS_A, "10.9.0.2", "bulk",
                                              extra=("--bulk", "24000", "--maxseg", "400")))
            finally:
                srv.stop()
            if has_sack_blocks(path):
                return
        raise RuntimeError("no SACK blocks after 5 attempts")
    finally:
        in_ns(NS_B, "nft", "delete", "table", "inet", "fsd_loss")


# --------------------------------------------------------- synthetic
def make_fragments(out: Path):
    """Crafted (synthetic) packets: IP fragments, IPv4 options, IPv6
    extension headers, next to a few non-TCP packets."""
    from scapy.all import (ARP, ICMP, IP, TCP, UDP, Ether, IPv6, IPv6ExtHdrDestOpt,
                           IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                           IPOption_NOP, IPOption_RR, Raw, fragment, wrpcap)

    eth = Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0b:02")
    a4, b4 = "10.9.0.1", "10.9.0.2"
    a6, b6 = "fd00:9::1", "fd00:9::2"
    pkts = []
    # 1 ARP, 2 UDP, 3 ICMP echo
    pkts.append(Ether(src="02:00:00:00:0a:01", dst="ff:ff:ff:ff:ff:ff") /
                ARP(op=1, hwsrc="02:00:00:00:0a:01", psrc=a4, pdst=b4))
    pkts.append(eth / IP(src=a4, dst=b4, id=1) / UDP(sport=40000, dport=9) / (b"q" * 20))
    pkts.append(eth / IP(src=a4, dst=b4, id=2) / ICMP(type=8, id=7, seq=1) / b"ping")
    # IPv4 with options (NOP + record route) carrying a SYN.
    pkts.append(eth / IP(src=a4, dst=b4, id=3, options=[IPOption_NOP(), IPOption_RR(length=11)]) /
                TCP(sport=40001, dport=80, seq=1000, flags="S",
                    options=[("MSS", 1460), ("SAckOK", b""), ("WScale", 7)]))
    # A 3000-byte segment in three fragments; the first holds the TCP header.
    big = IP(src=a4, dst=b4, id=4) / TCP(sport=40002, dport=80, seq=5000, ack=1,
                                          flags="PA") / (b"d" * 3000)
    pkts += [eth / f for f in fragment(big, fragsize=1480)]
    # A first fragment of only 8 bytes: too short for the TCP header.
    tiny = IP(src=a4, dst=b4, id=5) / TCP(sport=40003, dport=80, seq=9000, ack=1,
                                           flags="PA") / (b"e" * 40)
    pkts += [eth / f for f in fragment(tiny, fragsize=8)][:2]
    # IPv6: hop-by-hop + destination options + routing (type 0, no segments
    # left) before a SYN; and a fragmented IPv6 segment.
    pkts.append(eth / IPv6(src=a6, dst=b6, hlim=64) / IPv6ExtHdrHopByHop() /
                IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting(addresses=[], segleft=0) /
                TCP(sport=40004, dport=80, seq=777, flags="S",
                    options=[("MSS", 1440), ("NOP", None), ("WScale", 2)]))
    frag6 = IPv6(src=a6, dst=b6) / IPv6ExtHdrFragment(id=0x1234)
    body6 = TCP(sport=40005, dport=80, seq=42, ack=1, flags="PA") / (b"f" * 2000)
    raw6 = bytes(IPv6(src=a6, dst=b6) / body6)[40:]  # TCP, checksum over the whole payload
    first = frag6.copy()
    first[IPv6ExtHdrFragment].m = 1
    first[IPv6ExtHdrFragment].offset = 0
    first[IPv6ExtHdrFragment].nh = 6
    second = frag6.copy()
    second[IPv6ExtHdrFragment].m = 0
    second[IPv6ExtHdrFragment].offset = 1200 // 8
    second[IPv6ExtHdrFragment].nh = 6
    pkts.append(eth / first / Raw(raw6[:1200]))
    pkts.append(eth / second / Raw(raw6[1200:]))
    # One whole, unfragmented segment for contrast.
    pkts.append(eth / IP(src=a4, dst=b4, id=6) / TCP(sport=40002, dport=80, seq=8000, ack=1,
                                                       flags="A"))
    # Every flag bit incl. NS (0x100), with an urgent pointer.
    pkts.append(eth / IP(src=a4, dst=b4, id=7) / TCP(sport=40006, dport=80, seq=1, ack=1,
                                                       flags=0x1F8, urgptr=3) / b"urg")
    # Tunnels: TCP inside IPv4-in-IPv4 and IPv4-in-IPv6. The outer header
    # carries another protocol, so these are not segments.
    inner = IP(src="192.0.2.1", dst="192.0.2.2", id=8) / TCP(sport=40007, dport=80, flags="S")
    pkts.append(eth / IP(src=a4, dst=b4, id=9) / inner)
    pkts.append(eth / IPv6(src=a6, dst=b6) / inner)
    # An urgent pointer without the URG flag: the raw field is still reported.
    pkts.append(eth / IP(src=a4, dst=b4, id=10) / TCP(sport=40008, dport=80, seq=1, ack=1,
                                                        flags="A", urgptr=0x1234))
    t0 = 1_700_000_000.0
    for i, p in enumerate(pkts):
        p.time = t0 + i * 0.001
    wrpcap(str(out / "synth_frag.pcap"), pkts)


def make_malformed(out: Path):
    """Crafted (synthetic) damaged packets, one kind per frame; see README."""
    from scapy.all import IP, TCP, Ether, IPv6, IPv6ExtHdrHopByHop, Raw

    eth = bytes(Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0b:02", type=0x0800))
    eth6 = bytes(Ether(src="02:00:00:00:0a:01", dst="02:00:00:00:0b:02", type=0x86DD))
    a4, b4 = "10.9.0.1", "10.9.0.2"
    syn20 = bytes(TCP(sport=41000, dport=80, seq=1, flags="S"))

    def ip4(payload: bytes, **kw) -> bytes:
        return bytes(IP(src=a4, dst=b4, proto=6, **kw) / Raw(payload))

    def tcp_with_options(opts: bytes) -> bytes:
        hdr = bytearray(syn20)
        hdr[12] = ((20 + len(opts)) // 4) << 4
        return bytes(hdr) + opts

    frames = [
        eth + ip4(tcp_with_options(bytes([2, 8, 5, 0]))),        # 1 MSS length past header
        eth + ip4(tcp_with_options(bytes([1, 1, 8, 10]))),       # 2 TS length past header
        eth + ip4(tcp_with_options(bytes([1, 1, 1, 5]))),        # 3 kind without length byte
        eth + ip4(bytes(TCP(sport=41000, dport=80, flags="S", dataofs=4))),   # 4 doff 4
        eth + ip4(bytes(TCP(sport=41000, dport=80, flags="S", dataofs=15))),  # 5 doff past IP
    ]
    bad_ihl = bytearray(ip4(syn20))
    bad_ihl[0] = 0x44
    frames.append(eth + bytes(bad_ihl))                          # 6 IHL 4
    short_len = bytearray(ip4(syn20))
    short_len[2:4] = (12).to_bytes(2, "big")
    frames.append(eth + bytes(short_len))                        # 7 total length < header
    long_len = bytearray(ip4(syn20))
    long_len[2:4] = (1000).to_bytes(2, "big")
    frames.append(eth + bytes(long_len))                         # 8 total length > frame
    frames.append(eth[:10])                                      # 9 short link header
    hbh = bytearray(bytes(IPv6(src="fd00:9::1", dst="fd00:9::2") / IPv6ExtHdrHopByHop() /
                          TCP(sport=41000, dport=80, flags="S")))
    hbh[41] = 30                                                 # hop-by-hop length 248 bytes
    frames.append(eth6 + bytes(hbh))                             # 10 extension chain overrun
    v5 = bytearray(ip4(syn20))
    v5[0] = 0x55
    frames.append(eth + bytes(v5))                               # 11 version 5
    frames.append(eth + ip4(syn20))                              # 12 valid SYN
    frames.append(b"")                                           # 13 empty record
    t0 = 1_700_000_100 * 10**9
    recs = [pc.Record(t0 + i * 1_000_000, len(f), f) for i, f in enumerate(frames)]
    pc.write_pcap(out / "synth_malformed.pcap",
                  pc.Pcap(pc.LINKTYPE_ETHERNET, 262144, False, recs))


# ------------------------------------------------------- derived files
def sh_out(*args):
    return run(*args, capture_output=True, text=True).stdout


def make_derived(out: Path):
    lo = pc.read_pcap(out / "lo_conv.pcap")
    lo_ns = pc.read_pcap(out / "lo_conv_ns.pcap")
    veth = pc.read_pcap(out / "veth_eth.pcap")

    run("editcap", "-F", "pcapng", out / "lo_conv.pcap", out / "lo_conv.pcapng")
    run("editcap", "-F", "pcapng", out / "lo_conv_ns.pcap", out / "lo_conv_ns.pcapng")
    pc.write_pcap(out / "lo_conv_be.pcap", lo, big_endian=True)
    pc.write_pcap(out / "lo_conv_ns_be.pcap", lo_ns, big_endian=True)
    itf_us = pc.Interface(lo.linktype, lo.snaplen, 6)
    pc.write_pcapng(out / "lo_conv_be.pcapng", [itf_us], [(0, r) for r in lo.records],
                    big_endian=True, unknown_block=True)
    # Obsolete Packet Blocks, microsecond and nanosecond interfaces, both orders.
    itf_ns = pc.Interface(lo.linktype, lo.snaplen, 9)
    pc.write_pcapng(out / "lo_conv_pb.pcapng", [itf_us, itf_ns],
                    [(i % 2, r) for i, r in enumerate(lo_ns.records)],
                    block_kinds=["pb"] * len(lo_ns.records), unknown_block=True)
    # Enhanced, Simple and obsolete Packet Blocks in turn (SPBs carry no
    # timestamp and no interface id: interface 0 is implied).
    kinds = ["epb", "spb", "pb"]
    pc.write_pcapng(out / "lo_conv_spb.pcapng", [itf_us], [(0, r) for r in lo.records],
                    block_kinds=[kinds[i % 3] for i in range(len(lo.records))])

    with open(out / "lo_conv.pcap", "rb") as f, gzip.open(out / "lo_conv.pcap.gz", "wb", 9) as g:
        shutil.copyfileobj(f, g)
    run("zstd", "-q", "-f", "-19", out / "lo_conv.pcapng", "-o", out / "lo_conv.pcapng.zst")
    run("zstd", "-q", "-f", "-19", out / "lo_conv_ns.pcap", "-o", out / "lo_conv_ns.pcap.zst")

    pc.write_pcap(out / "lo_raw.pcap", pc.relink(lo, pc.LINKTYPE_RAW))
    pc.write_pcap(out / "lo_raw12.pcap", pc.relink(lo, pc.LINKTYPE_RAW_OLD))
    pc.write_pcap(out / "lo_null.pcap", pc.relink(lo, pc.LINKTYPE_NULL, af_inet6=24))
    pc.write_pcap(out / "lo_loop.pcap", pc.relink(lo, pc.LINKTYPE_LOOP, af_inet6=30))

    # A tcpdump killed mid-write: the last record is cut in half.
    data = (out / "lo_conv.pcap").read_bytes()
    last = lo.records[-1]
    (out / "lo_cut.pcap").write_bytes(data[:len(data) - len(last.data) // 2])

    # Bits flipped on purpose in the capture with real checksums.
    flips = []
    tcp4 = [i for i, r in enumerate(veth.records)
            if r.data[12:15] == b"\x08\x00\x45" and r.data[23] == 6]
    data_pkts = [i for i in tcp4 if len(veth.records[i].data) > 14 + 20 + 32 + 10]
    acks = [i for i in tcp4 if len(veth.records[i].data) <= 14 + 20 + 32 and i not in data_pkts]
    flips.append((data_pkts[0], len(veth.records[data_pkts[0]].data) - 3, 0x10))  # payload
    flips.append((acks[3], 14 + 20 + 14, 0x01))       # TCP window low bit
    flips.append((acks[5], 14 + 8, 0x02))             # IPv4 TTL: IP header checksum bad
    flips.append((acks[7], 14 + 20 + 4, 0x80))        # TCP sequence number high bit
    pc.write_pcap(out / "veth_flipped.pcap", pc.flip_bits(veth, flips))
    (TMP / "flips.txt").write_text(repr(flips))
    print("flipped (record index, byte, mask):", flips)

    # 802.1Q / 802.1ad: this kernel has no vlan driver, so tags are inserted
    # into the real veth frames (IPv4 and ARP: one 802.1Q tag, VID 10;
    # IPv6: an 802.1ad S-tag VID 100 over an 802.1Q C-tag VID 20).
    pc.write_pcap(out / "veth_vlan.pcap", pc.add_vlan_tags(
        veth, lambda etype: [(0x88A8, 100), (0x8100, 20)] if etype == pc.ETH_IPV6
        else [(0x8100, 10)]))

    run("mergecap", "-F", "pcapng", "-w", out / "multi_if.pcapng",
        out / "veth_eth_ns.pcap", out / "any_sll.pcap")


def main():
    if os.geteuid() != 0:
        sys.exit("make_captures.py needs root (network namespaces, tcpdump)")
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    global TMP
    TMP = Path(tempfile.mkdtemp(prefix="fastseg-captures-"))
    cleanup_namespaces()
    try:
        make_loopback(out)
        setup_veth()
        make_veth(out)
        make_sack(out)
    finally:
        cleanup_namespaces()
    make_fragments(out)
    make_malformed(out)
    make_derived(out)
    shutil.rmtree(TMP, ignore_errors=True)
    for p in sorted(out.glob("*.pcap*")):
        print(f"{p.stat().st_size:8d}  {p.name}")


if __name__ == "__main__":
    main()
