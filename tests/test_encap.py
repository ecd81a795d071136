"""Decapsulation and damaged headers: how each committed encapsulation capture
is carried (tests/data/make_encap.py; every column is compared with tshark in
test_tshark_diff.py), tunnels keeping equal inner 4-tuples apart, malformed
tunnel headers as counted reasons, the IPv6 pseudo-header with a routing
header or home address, and Zeek's own tunnel traces."""
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastseg
from fastseg import _consts as O

import refs as pb

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parent.parent

# capture: (encap bits every carried segment has, tunnel kind, carried segments)
# A re-wrapped file carries the 92 segments of veth_eth.pcap; Teredo carries
# only its 16 IPv6 ones (the IPv4 frames stay as they were).
CARRIED = {
    "encap_mpls.pcap": (O.ENC_MPLS, O.TUN_NONE, 92),
    "encap_mpls_pw.pcap": (O.ENC_MPLS | O.ENC_MPLS_PW, O.TUN_NONE, 92),
    "encap_pppoe.pcap": (O.ENC_PPPOE, O.TUN_NONE, 92),
    "encap_pppoe_qinq.pcap": (O.ENC_PPPOE | O.ENC_VLAN, O.TUN_NONE, 92),
    "encap_fabricpath.pcap": (O.ENC_FABRICPATH, O.TUN_NONE, 92),
    "encap_pbb.pcap": (O.ENC_PBB | O.ENC_VLAN, O.TUN_NONE, 92),
    "encap_llc_snap.pcap": (O.ENC_LLC_SNAP, O.TUN_NONE, 92),
    "encap_nflog.pcap": (O.ENC_NFLOG, O.TUN_NONE, 92),
    "encap_ppp.pcap": (O.ENC_PPP, O.TUN_NONE, 92),
    "encap_ppp_hdlc.pcap": (O.ENC_PPP, O.TUN_NONE, 92),
    "encap_c_hdlc.pcap": (0, O.TUN_NONE, 92),
    "encap_fddi.pcap": (O.ENC_LLC_SNAP, O.TUN_NONE, 92),
    "encap_gre.pcap": (O.ENC_GRE, O.TUN_GRE, 92),
    "encap_gre_teb.pcap": (O.ENC_GRE | O.ENC_TEB, O.TUN_GRE, 92),
    "encap_erspan.pcap": (O.ENC_GRE | O.ENC_ERSPAN, O.TUN_GRE, 92),
    "encap_pptp.pcap": (O.ENC_GRE | O.ENC_PPP, O.TUN_GRE, 92),
    "encap_ipip4.pcap": (O.ENC_IPIP, O.TUN_IP, 92),
    "encap_ipip6.pcap": (O.ENC_IPIP, O.TUN_IP, 92),
    "encap_vxlan.pcap": (O.ENC_VXLAN, O.TUN_VXLAN, 54),
    "encap_geneve.pcap": (O.ENC_GENEVE, O.TUN_GENEVE, 92),
    "encap_teredo.pcap": (O.ENC_TEREDO, O.TUN_TEREDO, 16),
    "encap_gtp.pcap": (O.ENC_GTPV1, O.TUN_GTPV1, 92),
    "encap_ayiya.pcap": (O.ENC_AYIYA, O.TUN_AYIYA, 92),
}


def read(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fastseg.read_segments(DATA / name)


@pytest.mark.parametrize("name", sorted(CARRIED))
def test_segments_say_how_they_were_carried(name):
    bits, kind, carried = CARRIED[name]
    seg = read(name)
    inside = seg["encap"] != 0 if bits == 0 else (seg["encap"] & bits) == bits
    if bits == 0:       # Cisco HDLC is a link type, not an encapsulation
        inside = np.ones(len(seg), dtype=bool)
    assert np.count_nonzero(inside) == carried
    assert np.all(seg["tunnel"][inside] == kind)
    assert np.all((seg["tunnel_id"][inside] != 0) == (kind != O.TUN_NONE))
    assert np.all(seg["tunnel"][~inside] == O.TUN_NONE)
    assert seg.stats.malformed == 0


@pytest.mark.parametrize("name", ["encap_gre.pcap", "encap_vxlan.pcap", "encap_pppoe.pcap"])
def test_carried_connections_are_those_of_the_plain_capture(name):
    """The same conversations, whatever carries them (the tracker sees the
    inner 4-tuples)."""
    plain = fastseg.track(read("veth_eth.pcap"))
    ours = fastseg.track(read(name))
    if name == "encap_vxlan.pcap":
        assert len(ours) == 7       # the scenarios make_encap.py runs over the overlay
        return
    assert sorted(ours["conn_state"].tolist()) == sorted(plain["conn_state"].tolist())
    assert sorted(ours["history"].tolist()) == sorted(plain["history"].tolist())


def test_equal_inner_tuples_in_two_tunnels_stay_apart():
    one = read("encap_vxlan.pcap")
    two = read("encap_two_tunnels.pcap")
    assert len(two) == 2 * len(one)
    assert len(np.unique(two["tunnel_id"])) == 2
    # Same inner 4-tuples, different flow keys, twice the connections.
    assert len(np.unique(two["flow_key"])) == 2 * len(np.unique(one["flow_key"]))
    conns = fastseg.track(two)
    assert len(conns) == 2 * len(fastseg.track(one))


def test_tunnel_id_is_direction_free():
    seg = read("encap_gre.pcap")
    assert len(np.unique(seg["tunnel_id"])) == 1
    conns = fastseg.track(seg)
    assert conns["orig_pkts"].sum() + conns["resp_pkts"].sum() == len(seg)


def test_plain_flow_keys_do_not_change():
    plain = read("veth_eth.pcap")
    mpls = read("encap_mpls.pcap")
    assert np.array_equal(plain["flow_key"], mpls["flow_key"])


# ---------------------------------------------------------------- damage
SYN = pb.ipv4("192.0.2.1", "192.0.2.2", pb.tcp(flags=0x002))


def outer(proto, payload):
    return pb.ipv4("198.51.100.1", "198.51.100.2", payload, proto=proto)


def udp(dport, payload):
    import struct
    return outer(17, struct.pack("!HHHH", 40000, dport, 8 + len(payload), 0) + payload)


def outcome(pkt, linktype=101, wirelen=None):
    stats = fastseg.parse_packets([pkt], linktype=linktype, wirelen=wirelen).stats
    (code,) = np.flatnonzero(stats.counts)
    return O.OUTCOME_NAMES[int(code)]


@pytest.mark.parametrize("pkt,reason", [
    (outer(47, b"\x00\x03\x08\x00" + SYN), "bad_tunnel_header"),          # GRE version 3
    (outer(47, b"\x40\x00\x08\x00" + b"\0" * 4 + SYN), "bad_tunnel_header"),  # source routing
    (outer(47, b"\x20\x00\x08\x00"), "bad_tunnel_header"),                # key bit, no key
    (outer(47, b"\x00\x01\x08\x00" + SYN), "bad_tunnel_header"),          # v1 not PPP
    (udp(6081, b"\x40\x00\x08\x00\0\0\x2a\0" + SYN), "bad_tunnel_header"),  # Geneve version 1
    (udp(6081, b"\x3f\x00\x08\x00\0\0\x2a\0" + SYN), "bad_tunnel_header"),  # options overrun
    (udp(2152, b"\x34\xff\x00\x30\0\0\0\1\0\0\0\x85\x00\0\0\0" + SYN), "bad_tunnel_header"),
    (udp(2152, b"\x50\xff\x00\x30\0\0\0\1" + SYN), "bad_tunnel_header"),  # GTP version 2
    (udp(4789, b"\x08\0\0\0\0\0\x2a\0" + b"\0" * 6), "bad_tunnel_header"),  # Ethernet cut short
    (udp(2152, b"\x30\x01\x00\x00\0\0\0\1"), "not_tcp"),                  # GTP echo request
    (udp(3544, b"\x45" + b"\0" * 39), "not_tcp"),                          # not Teredo
    (outer(47, b"\x00\x00\x88\x47" + b"\x00\x01\x01\x40" + b"\x20" * 20), "not_ip"),
])
def test_malformed_tunnel_headers_are_counted_reasons(pkt, reason):
    assert outcome(pkt) == reason


def test_nesting_is_bounded():
    pkt = SYN
    for _ in range(40):
        pkt = outer(4, pkt)
    assert outcome(pkt) == "bad_tunnel_header"
    assert outcome(outer(4, outer(4, SYN))) == "tcp"


def test_mpls_label_stack_is_bounded():
    pkt = pb.ether(b"\x00\x01\x00\x40" * 40 + SYN, ethertype=0x8847)
    assert outcome(pkt, linktype=1) == "bad_tunnel_header"


def test_tunnel_header_cut_by_snaplen_is_truncated():
    pkt = udp(4789, b"\x08\0\0\0\0\0\x2a\0" + pb.ether(SYN))
    assert outcome(pkt[:20 + 8 + 4], wirelen=len(pkt)) == "truncated"
    assert outcome(pkt) == "tcp"


def test_inner_packet_cannot_claim_more_than_its_outer_payload():
    inner = bytearray(SYN)
    inner[2:4] = (len(SYN) + 40).to_bytes(2, "big")
    assert outcome(outer(4, bytes(inner)) + b"\0" * 40) == "bad_ip_length"


# ------------------------------------------------ pseudo-header, flags
def test_ipv6_pseudo_header_uses_final_destination_and_home_address():
    """synth_options.pcap frames 13-16: routing header type 0 with a segment
    left, home address option; each with a good then a bad checksum (the
    packet's own addresses would call the good ones bad)."""
    seg = read("synth_options.pcap")
    status = dict(zip(seg["frame"].tolist(), seg["checksum_status"].tolist()))
    assert [status[f] for f in (13, 14, 15, 16)] == [O.CSUM_OK, O.CSUM_BAD, O.CSUM_OK, O.CSUM_BAD]


def test_flags_keep_the_reserved_bits():
    seg = read("synth_options.pcap")
    flags = dict(zip(seg["frame"].tolist(), seg["flags"].tolist()))
    assert flags[11] == 0xE10 and flags[12] == 0x310


def test_damaged_options_are_segments_flagged_bad():
    seg = read("synth_options.pcap")
    status = dict(zip(seg["frame"].tolist(), seg["opt_status"].tolist()))
    assert [status[f] for f in range(1, 11)] == [2, 2, 2, 2, 2, 2, 0, 0, 0, 2]
    assert seg.stats.to_dict()["tcp_options"] == {"cut": 0, "bad": 7}
    other = dict(zip(seg["frame"].tolist(), seg["opt_other"].tolist()))
    assert other[7] == O.OPT_UNKNOWN | O.OPT_MD5
    assert other[9] == O.OPT_MPTCP | O.OPT_UTO


# ------------------------------------------------------------- Zeek
# Zeek's tunnel and link-layer cases; gre-aruba-amsdu (802.11 in Aruba's GRE)
# is checked on its own below: Zeek counts each A-MSDU subframe as a packet.
ZEEK_CASES = r"core\.(tunnels\.(ayiya|gre|gre-over-udp|teredo.*|vxlan.*|geneve.*|gtp.*)" \
             r"|mpls-in-vlan|vlan-mpls|pbb|pppoe.*|cisco-fabric-path|tunnels\.teredo)$"


def test_zeek_tunnel_cases(tmp_path):
    cases = pb.zeek_dev()
    if cases is None:
        pytest.skip("../shared/zeek-dev (Zeek's traces and conn.log rows) is not here")
    report = tmp_path / "zeek.json"
    cmd = [sys.executable, str(cases / "zeek_compare.py"), "--cases", str(cases),
           "--cmd", f"{sys.executable} -m fastseg conns {{trace}} --format jsonl",
           "--cmd-ignore-checksums",
           f"{sys.executable} -m fastseg conns {{trace}} --format jsonl --checksums ignore",
           "--history-ignore", "X", "--only", ZEEK_CASES, "--json-report", str(report)]
    subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    got = json.loads(report.read_text())["cases"]
    assert len(got) >= 5, [c["id"] for c in got]
    bad = {c["id"]: (c["missing"], c["extra"], c["scores"]["conn_state"],
                     c["scores"]["history"], c["scores"]["pkts"])
           for c in got if c["missing"] or c["extra"] or c["error"]
           or any(s[0] != s[1] for k, s in c["scores"].items()
                  if k in ("conn_state", "history", "pkts"))}
    assert not bad, bad


def test_zeek_aruba_amsdu_is_decoded():
    """Zeek's GRE analyzer hands protocol types 0x8200-0x8370 to its 802.11
    analyzer (Aruba); the TCP in the A-MSDU's first subframe is found."""
    cases = pb.zeek_dev()
    if cases is None:
        pytest.skip("../shared/zeek-dev (Zeek's traces and conn.log rows) is not here")
    seg = read_any(cases / "traces" / "tunnels" / "gre-aruba-amsdu.pcap")
    assert len(seg) == 1
    assert seg["encap"][0] == O.ENC_VLAN | O.ENC_GRE | O.ENC_IEEE80211
    assert {int(seg["sport"][0]), int(seg["dport"][0])} == {443, 49392}
    assert seg["payload_len"][0] == 229


def read_any(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fastseg.read_segments(path)


# ------------------------------------------------------------- 802.11
def _dot11_frames(tmp_path):
    """veth_eth.pcap's frames re-wrapped by scapy: as 802.11 QoS data in
    Aruba's GRE (every other one as an A-MSDU of one subframe), and as
    plain 802.11 data frames (link type 105)."""
    from scapy.all import GRE, IP, LLC, SNAP, Dot11, Dot11QoS, Ether, PcapWriter, rdpcap
    gre, wlan = tmp_path / "aruba.pcap", tmp_path / "wlan.pcap"
    pkts = rdpcap(str(DATA / "veth_eth.pcap"))
    with PcapWriter(str(gre), linktype=1) as wg, PcapWriter(str(wlan), linktype=105) as ww:
        for i, p in enumerate(pkts):
            inner = bytes(p[Ether].payload)
            llc = bytes(LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=p[Ether].type))
            amsdu = i % 2 == 1
            qos = bytes(Dot11(type=2, subtype=8, FCfield=0x02, addr1=p.dst, addr2=p.src,
                              addr3=p.src) / Dot11QoS(A_MSDU_Present=int(amsdu)))
            body = llc + inner
            if amsdu:
                body = bytes.fromhex(p.dst.replace(":", "") + p.src.replace(":", "")) \
                    + len(body).to_bytes(2, "big") + body
            outer = Ether() / IP(src="10.226.22.9", dst="10.102.16.187") / GRE(proto=0x8240)
            frame = outer / (qos + body)
            frame.time = p.time
            wg.write(frame)
            plain = Dot11(type=2, subtype=0, FCfield=0x01, addr1=p.dst, addr2=p.src,
                          addr3=p.dst) / (llc + inner)
            plain.time = p.time
            ww.write(plain)
    return gre, wlan


def test_ieee80211_frames_carry_the_plain_segments(tmp_path):
    """802.11 in Aruba's GRE and the 802.11 link type: the same segments as
    the plain capture, and tshark finds the same ports and sequence numbers."""
    plain = read("veth_eth.pcap")
    for path, bits in zip(_dot11_frames(tmp_path),
                          (O.ENC_GRE | O.ENC_IEEE80211, O.ENC_IEEE80211)):
        seg = read_any(path)
        assert len(seg) == len(plain)
        assert np.all(seg["encap"] == bits)
        for col in ("sport", "dport", "seq", "ack", "flags", "payload_len", "flow_key"):
            assert np.array_equal(seg[col], plain[col]), col
        out = subprocess.run(["tshark", "-r", str(path), "-Y", "tcp", "-T", "fields",
                              "-o", "tcp.relative_sequence_numbers:FALSE",
                              "-e", "tcp.srcport", "-e", "tcp.seq_raw"],
                             capture_output=True, text=True, check=True).stdout.split()
        ports = [int(x) for x in out[0::2]]
        seqs = [int(x) for x in out[1::2]]
        assert ports == seg["sport"].tolist() and seqs == seg["seq"].tolist()


@pytest.mark.parametrize("frame,reason", [
    (bytes([0x80, 0x00]) + bytes(30), "not_ip"),                       # beacon (management)
    (bytes([0x48, 0x01]) + bytes(30), "not_ip"),                       # null data, no payload
    (bytes([0x08, 0x41]) + bytes(22) + bytes.fromhex("aaaa03000000") + b"\x08\x00",
     "not_ip"),                                                        # protected data
    (bytes([0x08, 0x01]) + bytes(22) + bytes.fromhex("aaaa03"), "truncated"),
])
def test_ieee80211_frames_that_carry_no_ip(frame, reason):
    got = outcome(frame, linktype=105, wirelen=len(frame) + (40 if reason == "truncated" else 0))
    assert got == reason


# -------------------------------------------------- tunnels and flow keys
def _rewrap(tmp_path, name, outer_for):
    """veth_eth.pcap's frames in GRE (IPv4, protocol 0x0800) whose outer
    addresses ``outer_for(index, packet)`` returns (None: left plain)."""
    from scapy.all import GRE, IP, Ether, PcapWriter, rdpcap
    path = tmp_path / name
    with PcapWriter(str(path), linktype=1) as w:
        for i, p in enumerate(rdpcap(str(DATA / "veth_eth.pcap"))):
            ends = outer_for(i, p)
            if ends is None:
                w.write(p)
                continue
            frame = Ether() / IP(src=ends[0], dst=ends[1]) / GRE(proto=p[Ether].type) \
                / bytes(p[Ether].payload)
            frame.time = p.time
            w.write(frame)
    return path


def _same_connections(path):
    plain = fastseg.track(read("veth_eth.pcap"))
    seg = read_any(path)
    ours = fastseg.track(seg)
    assert len(ours) == len(plain)
    for col in ("conn_state", "history", "orig_pkts", "resp_pkts"):
        assert sorted(ours[col].tolist()) == sorted(plain[col].tolist()), col
    return seg


def test_tunnel_endpoints_that_change_keep_one_connection(tmp_path):
    """Zeek keys a connection by its inner 5-tuple and only notes a tunnel
    change: other outer endpoints per direction (as GTP's uplink and
    downlink) or halfway through do not split it."""
    from scapy.all import Ether
    first = read("veth_eth.pcap")["ts_ns"][0]
    half = first + (read("veth_eth.pcap")["ts_ns"][-1] - first) // 2

    def ends(i, p):
        up = p[Ether].src < p[Ether].dst
        late = int(p.time * 10**9) > half
        return ("192.0.2.1", "198.51.100.1") if up else \
            ("198.51.100.%d" % (7 if late else 2), "192.0.2.%d" % (9 if late else 1))
    seg = _same_connections(_rewrap(tmp_path, "moving.pcap", ends))
    assert len(np.unique(seg["tunnel_id"])) == 3     # the segments still say which tunnel


def test_path_in_and_out_of_a_tunnel_keeps_one_connection(tmp_path):
    """Half the packets tunnelled, half plain (a tunnel bypass): one set of
    connections, as Zeek (its tunnel_changed event, not a new connection)."""
    seg = _same_connections(_rewrap(tmp_path, "bypass.pcap",
                                    lambda i, p: None if i % 2 else ("192.0.2.1", "198.51.100.1")))
    assert 0 < np.count_nonzero(seg["tunnel"] == O.TUN_GRE) < len(seg)
