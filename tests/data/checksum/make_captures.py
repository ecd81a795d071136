"""Make the small real captures the checksum tests compare with tshark.

Run as root on Linux with iproute2, ethtool and tcpdump (python3
make_captures.py, from this directory).  Everything happens inside network
namespaces created here and deleted at the end, so the host's interfaces are
never touched.

  lo_offload.pcap   loopback in a fresh namespace: Linux hands loopback
                    packets over with CHECKSUM_PARTIAL, so the capture shows
                    unfilled TCP checksums (the folded pseudo-header sum).
  veth_real.pcap    a veth pair between two namespaces with TX checksum
                    offload off on both ends: every checksum is real.
  veth_mixed.pcap   the same with offload left on at the capturing end (the
                    client, 10.99.0.1 / fd99::1): its segments are unfilled,
                    the server's are real.
  veth_snap80.pcap  veth_real traffic captured with -s 80: payloads cut.
  veth_flipped.pcap veth_real.pcap with single bits flipped on purpose in a
                    few TCP segments and IPv4 headers (flip_bits below).
"""
import os
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TRAFFIC = os.path.join(HERE, "traffic.py")
NS_A, NS_B = "fscsumA", "fscsumB"
V4 = ("10.99.0.1", "10.99.0.2")
V6 = ("fd99::1", "fd99::2")


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def in_ns(ns, *args, check=True):
    return sh("ip", "netns", "exec", ns, *args, check=check)


def cleanup():
    for ns in (NS_A, NS_B, "fscsumL"):
        sh("ip", "netns", "del", ns, check=False)


def veth_pair(offload_a, offload_b):
    cleanup()
    sh("ip", "netns", "add", NS_A)
    sh("ip", "netns", "add", NS_B)
    sh("ip", "link", "add", "fsca", "netns", NS_A, "type", "veth", "peer", "name", "fscb",
       "netns", NS_B)
    for ns, dev, v4, v6, off in ((NS_A, "fsca", V4[0], V6[0], offload_a),
                                 (NS_B, "fscb", V4[1], V6[1], offload_b)):
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, "ip", "addr", "add", v4 + "/24", "dev", dev)
        in_ns(ns, "ip", "addr", "add", v6 + "/64", "dev", dev, "nodad")
        in_ns(ns, "ethtool", "-K", dev, "tx", "on" if off else "off")
        in_ns(ns, "ip", "link", "set", dev, "up")
    time.sleep(1.0)


def capture(ns, dev, out, server_ns, pairs, snaplen=262144):
    """Capture on dev in ns while clients in ns talk to servers in server_ns."""
    dump = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-U", "-n", "-s",
                             str(snaplen), "-i", dev, "-w", out, "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        for port, (client_addr, server_addr) in enumerate(pairs, start=40001):
            srv = subprocess.Popen(["ip", "netns", "exec", server_ns, sys.executable, TRAFFIC,
                                    "server", server_addr, str(port), "2"])
            time.sleep(0.5)
            in_ns(ns, sys.executable, TRAFFIC, "client", server_addr, str(port), "2")
            srv.wait(timeout=20)
        time.sleep(1.0)
    finally:
        dump.send_signal(signal.SIGINT)
        dump.wait(timeout=10)


def flip_bits(src, dst):
    """Copy a pcap, flipping one bit in a few packets: in TCP payloads, TCP
    headers and IPv4 headers (Ethernet + IPv4/IPv6 + TCP frames only)."""
    import struct

    raw = bytearray(open(src, "rb").read())
    pos, frame, flipped = 24, 0, []
    while pos + 16 <= len(raw):
        incl = struct.unpack_from("<I", raw, pos + 8)[0]
        pkt = pos + 16
        frame += 1
        l3 = pkt + 14
        ethertype = struct.unpack_from(">H", raw, pkt + 12)[0]
        if ethertype == 0x0800:
            l4 = l3 + (raw[l3] & 0x0F) * 4
        else:
            l4 = l3 + 40
        tcp_hdr = (raw[l4 + 12] >> 4) * 4
        payload = pkt + incl - (l4 + tcp_hdr)
        if frame % 7 == 3 and payload > 0:          # a payload bit
            raw[l4 + tcp_hdr + payload // 2] ^= 0x10
            flipped.append((frame, "payload"))
        elif frame % 11 == 5:                       # a TCP header bit (the window)
            raw[l4 + 14] ^= 0x01
            flipped.append((frame, "tcp header"))
        elif frame % 13 == 6 and ethertype == 0x0800:  # an IPv4 header bit (TTL)
            raw[l3 + 8] ^= 0x04
            flipped.append((frame, "ip header"))
        pos = pkt + incl
    open(dst, "wb").write(bytes(raw))
    return flipped


def main():
    for tool in ("ip", "ethtool", "tcpdump"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found")
    os.chdir(HERE)
    try:
        sh("ip", "netns", "add", "fscsumL")
        in_ns("fscsumL", "ip", "link", "set", "lo", "up")
        capture("fscsumL", "lo", "lo_offload.pcap", "fscsumL",
                [("127.0.0.1", "127.0.0.1"), ("::1", "::1")])

        pairs = [(V4[0], V4[1]), (V6[0], V6[1])]
        veth_pair(offload_a=False, offload_b=False)
        capture(NS_A, "fsca", "veth_real.pcap", NS_B, pairs)
        capture(NS_A, "fsca", "veth_snap80.pcap", NS_B, pairs, snaplen=80)
        veth_pair(offload_a=True, offload_b=False)
        capture(NS_A, "fsca", "veth_mixed.pcap", NS_B, pairs)
        print("flipped:", flip_bits("veth_real.pcap", "veth_flipped.pcap"))
    finally:
        cleanup()
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".pcap"):
            print(name, os.path.getsize(name))


if __name__ == "__main__":
    main()
