"""Facts about the committed captures themselves (format, link type, packet
counts, interfaces, precision, what each conversation is), checked with
tshark/capinfos and a few header bytes, so the data set cannot rot silently.
When the captures are regenerated (tests/data/make_captures.sh) the counts
here are updated with them."""
import gzip
import shutil
import struct
import subprocess
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from oracle import tshark_frame_count, tshark_frames, tshark_tcp_fields

DATA = Path(__file__).parent / "data"

# name: (capinfos file type, capinfos encapsulation, packets, TCP segments)
FILES = {
    "lo_conv.pcap": ("pcap", "ether", 116, 112),
    "lo_conv_be.pcap": ("pcap", "ether", 116, 112),
    "lo_conv_ns.pcap": ("nsecpcap", "ether", 116, 112),
    "lo_conv_ns_be.pcap": ("nsecpcap", "ether", 116, 112),
    "lo_conv.pcapng": ("pcapng", "ether", 116, 112),
    "lo_conv_be.pcapng": ("pcapng", "ether", 116, 112),
    "lo_conv_ns.pcapng": ("pcapng", "ether", 116, 112),
    "lo_conv_pb.pcapng": ("pcapng", "ether", 116, 112),
    "lo_conv_spb.pcapng": ("pcapng", "ether", 116, 112),
    "lo_conv.pcap.gz": ("pcap", "ether", 116, 112),
    "lo_conv.pcapng.zst": ("pcapng", "ether", 116, 112),
    "lo_conv_ns.pcap.zst": ("nsecpcap", "ether", 116, 112),
    "lo_cut.pcap": ("pcap", "ether", 115, 112),
    "lo_raw.pcap": ("pcap", "rawip", 116, 112),
    "lo_raw12.pcap": ("pcap", "rawip", 116, 112),
    "lo_null.pcap": ("pcap", "null", 116, 112),
    "lo_loop.pcap": ("pcap", "loop", 116, 112),
    "lo_snap80.pcap": ("pcap", "ether", 116, 112),
    "veth_eth.pcap": ("pcap", "ether", 104, 92),
    "veth_eth_ns.pcap": ("nsecpcap", "ether", 104, 92),
    "veth_flipped.pcap": ("pcap", "ether", 104, 92),
    "veth_vlan.pcap": ("pcap", "ether", 104, 92),
    "veth_sack.pcap": ("pcap", "ether", 87, 87),
    "syn_flood.pcap": ("pcap", "ether", 1117, 1117),
    "any_sll.pcap": ("pcap", "linux-sll", 104, 92),
    "any_sll2.pcap": ("pcap", "linux-sll2", 104, 92),
    "multi_if.pcapng": ("pcapng", "per-packet", 208, 184),
    "synth_frag.pcap": ("pcap", "ether", 17, 9),
    "synth_malformed.pcap": ("pcap", "ether", 13, 4),
    "synth_options.pcap": ("pcap", "ether", 17, 17),
    "snap60_overlay.pcap": ("pcap", "ether", 62, 38),
    "snap110_vxlan.pcap": ("pcap", "ether", 66, 38),
    "encap_vxlan.pcap": ("pcap", "ether", 66, 54),
    "encap_two_tunnels.pcap": ("pcap", "ether", 128, 108),
}
# Re-wrapped copies of veth_eth.pcap (tests/data/make_encap.py): Ethernet
# ones keep its 104 frames; the others drop its 2 ARP frames.
for _kind in ("ayiya", "erspan", "fabricpath", "geneve", "gre", "gre_teb", "gtp", "ipip4",
              "ipip6", "llc_snap", "mpls", "mpls_pw", "pbb", "pppoe", "pppoe_qinq", "pptp",
              "teredo"):
    FILES[f"encap_{_kind}.pcap"] = ("pcap", "ether", 104, 92)
for _kind, _encap in (("c_hdlc", "chdlc"), ("fddi", "fddi-swapped"), ("nflog", "nflog"),
                      ("ppp", "ppp"), ("ppp_hdlc", "ppp")):
    FILES[f"encap_{_kind}.pcap"] = ("pcap", _encap, 102, 92)

# The link-layer type in the file header (pcap) or first IDB (pcapng).
LINKTYPES = {
    "lo_conv.pcap": 1, "lo_raw.pcap": 101, "lo_raw12.pcap": 12, "lo_null.pcap": 0,
    "lo_loop.pcap": 108, "any_sll.pcap": 113, "any_sll2.pcap": 276, "veth_vlan.pcap": 1,
}

# Every TCP segment of these files is the same as in the source capture (the
# derived files differ only in container, byte order, compression or link
# header).  Timestamps are compared separately where precision differs.
SAME_SEGMENTS = {
    "lo_conv.pcap": ["lo_conv_be.pcap", "lo_conv.pcapng", "lo_conv_be.pcapng",
                     "lo_conv.pcap.gz", "lo_conv.pcapng.zst", "lo_raw.pcap", "lo_raw12.pcap",
                     "lo_null.pcap", "lo_loop.pcap", "lo_cut.pcap", "lo_conv_spb.pcapng"],
    "lo_conv_ns.pcap": ["lo_conv_ns_be.pcap", "lo_conv_ns.pcapng", "lo_conv_ns.pcap.zst",
                        "lo_conv_pb.pcapng"],
    "veth_eth.pcap": ["veth_vlan.pcap"],
}


def capinfos(path, *flags):
    exe = shutil.which("capinfos")
    if exe is None:
        pytest.skip("capinfos not found (apt-get install wireshark-common)")
    res = subprocess.run([exe, "-T", "-r", "-M", *flags, str(path)],
                         capture_output=True, text=True)
    return res.stdout.strip().split("\t")[1:]


def pcapng_blocks(path):
    """(block type, body bytes, endian) of every block of a pcapng file."""
    raw = (DATA / path).read_bytes()
    if path.endswith(".zst"):
        import zstandard
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    endian = "<" if raw[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    off, out = 0, []
    while off + 12 <= len(raw):
        btype, total = struct.unpack_from(endian + "II", raw, off)
        out.append((btype, raw[off + 8:off + total - 4], endian))
        off += total
    return out


def idbs(path):
    """(link type, if_tsresol) of every Interface Description Block."""
    out = []
    for btype, body, e in pcapng_blocks(path):
        if btype != 1:
            continue
        linktype = struct.unpack_from(e + "H", body, 0)[0]
        tsresol, off = 6, 8
        while off + 4 <= len(body):
            code, length = struct.unpack_from(e + "HH", body, off)
            if code == 0:
                break
            if code == 9:
                tsresol = body[off + 4]
            off += 4 + length + (-length % 4)
        out.append((linktype, tsresol))
    return out


def test_every_committed_capture_is_listed():
    on_disk = {p.name for p in DATA.iterdir()
               if p.name.endswith((".pcap", ".pcapng", ".gz", ".zst"))}
    assert on_disk == set(FILES)


def test_captures_are_small():
    sizes = {name: (DATA / name).stat().st_size for name in FILES}
    assert max(sizes.values()) < 100_000, sizes
    assert sum(sizes.values()) < 2_000_000


@pytest.mark.parametrize("name", sorted(FILES))
def test_file_type_link_type_and_packet_count(tshark, name):
    ftype, encap, packets, _ = FILES[name]
    assert capinfos(DATA / name, "-t", "-E", "-c") == [ftype, encap, str(packets)]
    assert tshark_frame_count(DATA / name) == packets


@pytest.mark.parametrize("name", sorted(FILES))
def test_tcp_segment_count(tshark, name):
    assert len(tshark_tcp_fields(DATA / name)["frame"]) == FILES[name][3]


@pytest.mark.parametrize("name,linktype", sorted(LINKTYPES.items()))
def test_pcap_header_link_type(name, linktype):
    raw = (DATA / name).read_bytes()[:24]
    assert struct.unpack_from("<I", raw, 20)[0] == linktype


@pytest.mark.parametrize("name,magic", [
    ("lo_conv.pcap", b"\xd4\xc3\xb2\xa1"), ("lo_conv_be.pcap", b"\xa1\xb2\xc3\xd4"),
    ("lo_conv_ns.pcap", b"\x4d\x3c\xb2\xa1"), ("lo_conv_ns_be.pcap", b"\xa1\xb2\x3c\x4d"),
    ("lo_conv.pcapng", b"\x0a\x0d\x0d\x0a"), ("lo_conv.pcap.gz", b"\x1f\x8b"),
    ("lo_conv.pcapng.zst", b"\x28\xb5\x2f\xfd"),
])
def test_magic_and_byte_order(name, magic):
    assert (DATA / name).read_bytes()[:len(magic)] == magic


def test_gzip_copy_is_byte_identical_to_source():
    with gzip.open(DATA / "lo_conv.pcap.gz") as f:
        assert f.read() == (DATA / "lo_conv.pcap").read_bytes()


@pytest.mark.parametrize("name,endian", [
    ("lo_conv.pcapng", "<"), ("lo_conv_be.pcapng", ">"), ("lo_conv_ns.pcapng", "<"),
    ("lo_conv_pb.pcapng", "<"), ("multi_if.pcapng", "<"), ("lo_conv.pcapng.zst", "<"),
])
def test_pcapng_byte_order(name, endian):
    assert pcapng_blocks(name)[0][2] == endian


def test_multi_interface_pcapng_has_two_interfaces_with_own_link_type_and_resolution():
    assert idbs("multi_if.pcapng") == [(1, 9), (113, 6)]
    kinds = {b[0] for b in pcapng_blocks("multi_if.pcapng")}
    assert 6 in kinds       # Enhanced Packet Blocks


def test_multi_interface_frames_come_from_both_interfaces(tshark):
    rows = tshark_frames(DATA / "multi_if.pcapng", "frame.interface_id", "frame.encap_type")
    per_if = defaultdict(set)
    for if_id, encap in rows:
        per_if[if_id].add(encap)
    assert set(per_if) == {"0", "1"}
    assert per_if["0"] != per_if["1"]


def test_nanosecond_pcapng_declares_nanosecond_resolution():
    assert idbs("lo_conv_ns.pcapng") == [(1, 9)]
    assert idbs("lo_conv.pcapng") == [(1, 6)]
    assert idbs("lo_conv_be.pcapng") == [(1, 6)]


def test_obsolete_packet_block_file_uses_pb_and_two_resolutions():
    blocks = pcapng_blocks("lo_conv_pb.pcapng")
    kinds = [b[0] for b in blocks]
    assert 2 in kinds and 6 not in kinds
    assert 0x80000F5E in kinds      # an unknown block readers must skip
    assert idbs("lo_conv_pb.pcapng") == [(1, 6), (1, 9)]


def test_spb_file_mixes_three_packet_block_kinds():
    kinds = [b[0] for b in pcapng_blocks("lo_conv_spb.pcapng")]
    assert kinds[:2] == [0x0A0D0D0A, 1]
    assert kinds[2:8] == [6, 3, 2, 6, 3, 2]


def test_unknown_block_in_big_endian_pcapng():
    assert 0x80000F5E in [b[0] for b in pcapng_blocks("lo_conv_be.pcapng")]


def test_nanosecond_capture_has_sub_microsecond_timestamps(tshark):
    ts = tshark_tcp_fields(DATA / "lo_conv_ns.pcap")["ts_ns"]
    assert np.any(ts % 1000 != 0)
    ts_us = tshark_tcp_fields(DATA / "lo_conv.pcap")["ts_ns"]
    assert np.all(ts_us % 1000 == 0)


def test_cut_capture_ends_mid_record():
    full = (DATA / "lo_conv.pcap").read_bytes()
    cut = (DATA / "lo_cut.pcap").read_bytes()
    assert full.startswith(cut) and len(cut) < len(full)


@pytest.mark.parametrize("source,derived", [
    (s, d) for s, ds in sorted(SAME_SEGMENTS.items()) for d in ds])
def test_derived_captures_carry_the_same_segments(tshark, source, derived):
    a = tshark_tcp_fields(DATA / source)
    b = tshark_tcp_fields(DATA / derived)
    for col in a:
        x, y = a[col], b[col]
        if derived == "lo_conv_spb.pcapng" and col == "ts_ns":
            # Every third frame (1-based 2, 5, ...) is an SPB: no timestamp.
            spb = a["frame"] % 3 == 2
            assert np.all(y[spb] == -1)
            x, y = x[~spb], y[~spb]
        if derived == "lo_conv_pb.pcapng" and col == "ts_ns":
            # Its packets alternate between a us and a ns interface: even
            # frames keep microseconds only, odd ones are exact.
            odd = a["frame"] % 2 == 0
            np.testing.assert_array_equal(x[odd], y[odd])
            x, y = x // 1000, y // 1000
        np.testing.assert_array_equal(x, y, err_msg=f"{derived} {col}")


def test_us_and_ns_captures_saw_the_same_packets(tshark):
    a = tshark_tcp_fields(DATA / "lo_conv.pcap")
    b = tshark_tcp_fields(DATA / "lo_conv_ns.pcap")
    for col in a:
        if col != "ts_ns":
            np.testing.assert_array_equal(a[col], b[col], err_msg=col)
    assert np.abs(a["ts_ns"] - b["ts_ns"]).max() < 1_000_000


def test_vlan_capture_has_single_and_double_tags(tshark):
    rows = tshark_frames(DATA / "veth_vlan.pcap", "vlan.id", "vlan.etype", "eth.type",
                         display_filter="tcp")
    assert {r[0] for r in rows} == {"10", "20"}
    outer = tshark_frames(DATA / "veth_vlan.pcap", "eth.type", "ieee8021ad.id", "vlan.id",
                          display_filter="ipv6")
    assert {tuple(r) for r in outer} == {("0x88a8", "100", "20")}


def test_sll_captures_are_cooked(tshark):
    assert len(tshark_frames(DATA / "any_sll.pcap", "sll.pkttype")) == 104
    assert {r[0] for r in tshark_frames(DATA / "any_sll2.pcap", "sll.ifindex")} != {""}


def test_real_checksums_are_filled_on_veth_and_unfilled_on_loopback(tshark):
    veth = tshark_tcp_fields(DATA / "veth_eth.pcap")["checksum_status"]
    assert np.all(veth == 0)
    lo = tshark_tcp_fields(DATA / "lo_conv.pcap")["checksum_status"]
    # The kernel fills checksums only of RSTs it sends on behalf of no socket.
    assert np.count_nonzero(lo == 1) >= len(lo) - 4


def test_flipped_capture_has_exactly_the_intended_damage(tshark):
    good = tshark_tcp_fields(DATA / "veth_eth.pcap")
    bad = tshark_tcp_fields(DATA / "veth_flipped.pcap")
    assert np.count_nonzero(bad["checksum_status"] == 1) == 3
    assert np.count_nonzero(bad["ip_checksum_status"] == 1) == 1
    assert np.count_nonzero(bad["window"] != good["window"]) == 1
    assert np.count_nonzero(bad["seq"] != good["seq"]) == 1
    assert np.count_nonzero(bad["ttl"] != good["ttl"]) == 1


def test_snaplen_capture_is_cut_at_80_bytes(tshark):
    caplens = [int(r[0]) for r in tshark_frames(DATA / "lo_snap80.pcap", "frame.cap_len")]
    assert max(caplens) == 80
    seg = tshark_tcp_fields(DATA / "lo_snap80.pcap")
    assert np.count_nonzero(seg["checksum_status"] == 2) > 0     # payload cut
    # 14 + 40 + 32 > 80: IPv6 headers with options are cut in their options.
    v6 = seg["ip_version"] == 6
    assert np.all(seg["opt_status"][v6 & (seg["hdr_len"] > 26)] == 1)
    assert np.count_nonzero(seg["opt_status"] == 1) == 32


@pytest.mark.parametrize("name,snaplen", [("snap60_overlay.pcap", 60), ("snap110_vxlan.pcap", 110)])
def test_headers_only_captures_cut_options(tshark, name, snaplen):
    caplens = [int(r[0]) for r in tshark_frames(DATA / name, "frame.cap_len")]
    assert snaplen - 4 <= max(caplens) <= snaplen
    seg = tshark_tcp_fields(DATA / name)
    # The SYNs' timestamps are cut (the noopts SYN's lone MSS fits).
    syn = (seg["flags"] & 2) > 0
    assert np.count_nonzero(seg["opt_status"][syn] == 1) >= 5
    assert np.all(seg["opt_status"][seg["hdr_len"] == 20] == 0)


def test_sack_capture_has_sack_blocks(tshark):
    seg = tshark_tcp_fields(DATA / "veth_sack.pcap")
    assert seg["sack_blocks"].max() >= 1
    assert np.all(seg["mss"][seg["flags"] & 2 > 0] > 0)


def test_synthetic_fragments(tshark):
    seg = tshark_tcp_fields(DATA / "synth_frag.pcap")
    assert seg["frame"].tolist() == [4, 5, 10, 11, 13, 14, 15, 16, 17]
    assert seg["fragment"].tolist() == [False, True, False, True, False, False, False, False,
                                        False]
    assert seg["checksum_status"].tolist() == [0, 2, 0, 2, 0, 0, 0, 0, 0]
    assert seg["payload_len"].tolist() == [0, 1460, 0, 1180, 0, 3, 0, 0, 0]
    assert seg["ip_version"].tolist() == [4, 4, 6, 6, 4, 4, 4, 4, 4]
    assert seg["tunnel"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 0]
    assert seg["flags"][-4] == 0x1F8 and seg["urgent"][-4] == 3
    assert seg["flags"][-1] == 0x10 and seg["urgent"][-1] == 0x1234


def test_synthetic_malformed_keeps_the_segments_with_damaged_options(tshark):
    seg = tshark_tcp_fields(DATA / "synth_malformed.pcap")
    assert seg["frame"].tolist() == [1, 2, 3, 12]
    assert seg["opt_status"].tolist() == [2, 2, 2, 0]
    caplens = [int(r[0]) for r in tshark_frames(DATA / "synth_malformed.pcap", "frame.cap_len")]
    assert caplens[8] == 10 and caplens[12] == 0


def test_urgent_data_and_ip_options_are_present(tshark):
    for name in ("lo_conv.pcap", "veth_eth.pcap"):
        seg = tshark_tcp_fields(DATA / name)
        urg = seg["flags"] & 0x20 > 0
        assert urg.sum() == 1 and seg["urgent"][urg][0] == 1
        ihl = tshark_frames(DATA / name, "ip.hdr_len", display_filter="tcp")
        assert {r[0] for r in ihl} >= {"20", "28"}


def test_option_variety(tshark):
    lo = tshark_tcp_fields(DATA / "lo_conv.pcap")
    assert set(lo["tfo_cookie_len"].tolist()) == {-1, 0, 8}
    veth = tshark_tcp_fields(DATA / "veth_eth.pcap")
    syn = (veth["flags"] & 0x12) == 0x02
    assert set(veth["mss"][syn].tolist()) == {536, 1440, 1460}
    assert -1 in veth["wscale"][syn].tolist() and 10 in veth["wscale"][syn].tolist()
    assert not veth["sack_perm"][syn].all() and veth["sack_perm"][syn].any()
    assert -1 in veth["tsval"][syn].tolist()
    # ECN negotiated from the client namespace: SYN with ECE|CWR.
    assert np.any((veth["flags"][syn] & 0xC0) == 0xC0)


# ----------------------------------------------------- conversations
def conversations(path):
    """server port -> list of per-connection event strings such as
    'S s A F f' (upper case = client, the side that sent the first SYN)."""
    rows = tshark_frames(path, "tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.flags",
                         display_filter="tcp and not icmp and not icmpv6")
    streams = {}
    for stream, sport, dport, flags in rows:
        flags = int(flags, 16)
        if stream not in streams:
            streams[stream] = (int(dport), int(sport), [])
        server, client_port, events = streams[stream]
        from_client = int(sport) == client_port
        for bit, letter in ((0x02, "s"), (0x01, "f"), (0x04, "r")):
            if flags & bit:
                events.append(letter.upper() if from_client else letter)
    out = defaultdict(list)
    for server, _, events in streams.values():
        out[server].append("".join(events))
    return dict(out)


# Server port -> the SYN/FIN/RST sequence of each connection to it, the
# ground truth documented in tests/data/README.md (per address family).
LO_CONVERSATIONS = {
    5001: ["SsFf", "SsFf", "SsFf"],  # client closes first (IPv4, IPv4 with IP options, IPv6)
    5002: ["SsfF", "SsfF"],        # server closes first
    5003: ["Sr", "Sr"],            # refused: RST-ACK to the SYN
    5004: ["SsR", "SsR"],          # client aborts (SO_LINGER 0)
    5005: ["SsF"],                 # CLOSE-WAIT leak: server never sends its FIN
    5006: ["SsFf"],                # urgent byte, client closes first
    5007: ["Ssr"],                 # server aborts after the request
    5009: ["SsFf", "SsFf"],        # TFO: cookie request, then data in the SYN
    5010: ["SSSS"],                # unanswered: SYN + 3 retransmissions, dropped
}


def test_loopback_conversations_are_as_documented(tshark):
    assert conversations(DATA / "lo_conv.pcap") == LO_CONVERSATIONS


def test_veth_conversations_are_as_documented(tshark):
    conv = conversations(DATA / "veth_eth.pcap")
    assert conv == {
        5001: ["SsFf", "SsFf", "SsFf", "SsFf"],   # IPv4, no TCP options, IP options, IPv6
        5002: ["SsfF"],
        5003: ["Sr"],
        5004: ["SsR", "SsR"],             # IPv4, IPv6
        5005: ["SsF"],
        5006: ["SsFf"],
        5007: ["Ssr"],
        5010: ["SSSS"],
    }
