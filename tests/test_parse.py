"""The bulk parser: link layers, IP, TCP header and options -> Segments."""
import struct
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck
from hypothesis import strategies as st

import refs as pb
import fastseg
from fastseg import _consts, _parse
from fastseg.errors import CaptureError, TruncatedCaptureWarning
from fastseg.segments import SEGMENT_DTYPES, HIDDEN_DTYPES, NULL_SENTINELS

O = _consts


def one(pkt, linktype=1, **kw):
    seg = fastseg.parse_packets([pkt], linktype=linktype, **kw)
    assert seg.stats.packets == 1
    return seg


def outcome_of(pkt, linktype=1, wirelen=None):
    seg = fastseg.parse_packets([pkt], linktype=linktype, wirelen=wirelen)
    (code,) = np.flatnonzero(seg.stats.counts)
    return int(code)


def syn4(**kw):
    return pb.ipv4(payload=pb.tcp(**kw))


def test_siphash_reference_matches_published_vector():
    # SipHash-2-4 paper, Appendix A: key 00..0f, message 00..0e.
    assert pb.siphash24(bytes(range(16)), bytes(range(15))) == 0xA129CA6149BE45E5


# -- every column of a hand-built packet ---------------------------------------
def test_every_column_of_an_ipv4_segment_matches_what_was_built():
    opts = (pb.opt_mss(1460) + pb.opt_sack_perm() + pb.opt_ts(123456789, 987654321)
            + pb.opt_nop() + pb.opt_wscale(9) + pb.opt_tfo(b"12345678"))
    seg_bytes = pb.tcp(sport=51000, dport=443, seq=0xDEADBEEF, ack=0x01020304,
                       flags=O.SYN | O.ECE | O.CWR | O.NS, window=29200, urgent=7,
                       options=opts, payload=b"abcdefghij")
    pkt = pb.ether(pb.ipv4("192.0.2.10", "198.51.100.20", seg_bytes, ttl=57, ident=4321),
                   vlans=[(0x8100, 5)])
    seg = one(pkt, ts_ns=1_700_000_000_123_456_789, first_frame=41)
    assert set(seg._cols) == set(SEGMENT_DTYPES) | set(HIDDEN_DTYPES)
    for name, dt in {**SEGMENT_DTYPES, **HIDDEN_DTYPES}.items():
        want = dt[0] if isinstance(dt, tuple) else dt
        assert seg[name].dtype == np.dtype(want), name
    r = {k: seg[k][0] for k in seg._cols}
    hdr_len = 20 + len(opts) + (-len(opts) % 4)
    expected = dict(
        frame=41, ts_ns=1_700_000_000_123_456_789, ip_version=4, sport=51000, dport=443,
        seq=0xDEADBEEF, ack=0x01020304, flags=O.SYN | O.ECE | O.CWR | O.NS,
        hdr_len=hdr_len, payload_len=10, window=29200, urgent=7, ttl=57, ip_id=4321,
        mss=1460, wscale=9, sack_perm=True, sack_blocks=0, tsval=123456789,
        tsecr=987654321, tfo_cookie_len=8, checksum_status=O.CSUM_OK,
        ip_checksum_status=O.CSUM_OK, fragment=False,
        checksum=struct.unpack_from("!H", pkt, 18 + 20 + 16)[0],
        flow_key=pb.flow_key("192.0.2.10", 51000, "198.51.100.20", 443),
        _l3_off=18, _l4_off=38, _l3_caplen=len(pkt) - 18,
    )
    for name, value in expected.items():
        assert r[name] == value, name
    assert bytes(r["src"]) == pb.mapped("192.0.2.10")
    assert bytes(r["dst"]) == pb.mapped("198.51.100.20")
    assert list(seg.src_text()) == ["192.0.2.10"]
    # _l3_off/_l4_off point at the headers in Segments.data.
    assert bytes(seg.data[r["_l4_off"]:r["_l4_off"] + 2]) == struct.pack("!H", 51000)
    assert seg.data[r["_l3_off"]] == 0x45


def test_every_column_of_an_ipv6_segment_matches_what_was_built():
    pkt = pb.ether(pb.ipv6("2001:db8::a", "2001:db8:1::b",
                           pb.tcp(sport=1, dport=2, seq=5, ack=6, flags=O.ACK | O.PSH,
                                  payload=b"xyz"), hop_limit=3), ethertype=pb.ETH_IPV6)
    seg = one(pkt)
    assert seg["ip_version"][0] == 6
    assert bytes(seg["src"][0]) == pb.mapped("2001:db8::a")
    assert bytes(seg["dst"][0]) == pb.mapped("2001:db8:1::b")
    assert seg["ttl"][0] == 3 and seg["ip_id"][0] == -1
    assert seg["ip_checksum_status"][0] == O.CSUM_NOT_APPLICABLE
    assert seg["checksum_status"][0] == O.CSUM_OK
    assert seg["payload_len"][0] == 3 and seg["hdr_len"][0] == 20
    assert seg["flags"][0] == O.ACK | O.PSH
    assert seg["flow_key"][0] == pb.flow_key("2001:db8::a", 1, "2001:db8:1::b", 2)
    for name, sentinel in NULL_SENTINELS.items():
        if name != "ip_id":
            assert seg[name][0] == sentinel, name
    assert not seg["sack_perm"][0] and seg["sack_blocks"][0] == 0


def test_flow_key_is_the_same_in_both_directions():
    fwd = syn4(sport=1111, dport=80)
    rev = pb.ipv4("10.0.0.2", "10.0.0.1", pb.tcp(sport=80, dport=1111, flags=O.SYN | O.ACK))
    other = syn4(sport=1112, dport=80)
    seg = fastseg.parse_packets([fwd, rev, other], linktype=101)
    fk = seg["flow_key"]
    assert fk[0] == fk[1] != fk[2]
    assert fk[0] == pb.flow_key("10.0.0.1", 1111, "10.0.0.2", 80)


# -- link layers ------------------------------------------------------------------
IP4_SYN = syn4()
IP6_SYN = pb.ipv6(payload=pb.tcp())


@pytest.mark.parametrize("linktype,pkt,l3", [
    (1, pb.ether(IP4_SYN), 14),
    (1, pb.ether(IP6_SYN, ethertype=pb.ETH_IPV6), 14),
    (1, pb.ether(IP4_SYN, vlans=[(0x8100, 10)]), 18),
    (1, pb.ether(IP4_SYN, vlans=[(0x88A8, 100), (0x8100, 10)]), 22),
    (1, pb.ether(IP6_SYN, ethertype=pb.ETH_IPV6, vlans=[(0x9100, 1), (0x88A8, 2), (0x8100, 3)]), 26),
    (113, pb.sll(IP4_SYN), 16),
    (113, pb.sll(IP6_SYN, protocol=pb.ETH_IPV6), 16),
    (276, pb.sll2(IP4_SYN), 20),
    (276, pb.sll2(IP6_SYN, protocol=pb.ETH_IPV6), 20),
    (0, pb.null(IP4_SYN), 4),
    (0, pb.null(IP4_SYN, big_endian=True), 4),
    (0, pb.null(IP6_SYN, family=10), 4),
    (0, pb.null(IP6_SYN, family=24, big_endian=True), 4),
    (0, pb.null(IP6_SYN, family=28), 4),
    (0, pb.null(IP6_SYN, family=30, big_endian=True), 4),
    (108, pb.loop(IP4_SYN), 4),
    (108, pb.loop(IP6_SYN, family=24), 4),
    (101, IP4_SYN, 0), (101, IP6_SYN, 0), (12, IP4_SYN, 0), (14, IP6_SYN, 0),
    (228, IP4_SYN, 0), (229, IP6_SYN, 0),
])
def test_link_layer_finds_the_ip_header(linktype, pkt, l3):
    seg = one(pkt, linktype=linktype)
    assert len(seg) == 1, seg.stats.to_dict()
    assert seg["_l3_off"][0] == l3
    assert seg["checksum_status"][0] == O.CSUM_OK


@pytest.mark.parametrize("linktype,pkt,code", [
    (1, pb.ether(b"\0" * 28, ethertype=0x0806), O.OUT_NOT_IP),            # ARP
    (1, pb.ether(IP4_SYN, ethertype=100), O.OUT_NOT_IP),                 # 802.3 length
    (1, pb.ether(IP4_SYN, vlans=[(0x8100, 1)], ethertype=0x88CC), O.OUT_NOT_IP),
    (1, pb.ether(IP4_SYN, vlans=[(0x8100, 1)] * 9), O.OUT_BAD_LINK_HEADER),
    (1, b"\x02" * 13, O.OUT_BAD_LINK_HEADER),
    (1, pb.ether(b"", vlans=[(0x8100, 1)], pad=False)[:15], O.OUT_BAD_LINK_HEADER),
    (113, pb.sll(b"\0" * 20, protocol=0x0004), O.OUT_NOT_IP),
    (113, pb.sll(IP4_SYN)[:15], O.OUT_BAD_LINK_HEADER),
    (276, pb.sll2(IP4_SYN)[:19], O.OUT_BAD_LINK_HEADER),
    (276, pb.sll2(IP4_SYN, protocol=0x0806), O.OUT_NOT_IP),
    (0, pb.null(IP4_SYN, family=7), O.OUT_NOT_IP),
    (0, b"\x02\0\0", O.OUT_BAD_LINK_HEADER),
    (108, pb.loop(IP4_SYN, family=17), O.OUT_NOT_IP),
    (107, pb.ether(IP4_SYN), O.OUT_UNSUPPORTED_LINKTYPE),
    (1, b"", O.OUT_EMPTY),
    (101, b"", O.OUT_EMPTY),
    (101, b"\x50" + IP4_SYN[1:], O.OUT_BAD_IP_VERSION),
    (228, IP6_SYN, O.OUT_BAD_IP_VERSION),
    (229, IP4_SYN, O.OUT_BAD_IP_VERSION),
    (1, pb.ether(IP6_SYN), O.OUT_BAD_IP_VERSION),          # ethertype says IPv4
    (0, pb.null(IP4_SYN, family=10), O.OUT_BAD_IP_VERSION),
])
def test_link_layer_outcomes(linktype, pkt, code):
    assert outcome_of(pkt, linktype) == code


def test_short_link_header_cut_by_snaplen_is_truncated():
    pkt = pb.ether(IP4_SYN)
    assert outcome_of(pkt[:10], 1, wirelen=len(pkt)) == O.OUT_TRUNCATED


# -- IPv4 -------------------------------------------------------------------------
def test_ipv4_options_are_skipped():
    opts = b"\x94\x04\0\0" + b"\x01" * 4 + b"\x07\x07\x04" + b"\0" * 4  # router alert, NOPs, RR
    pkt = pb.ipv4(payload=pb.tcp(payload=b"p" * 3), options=opts)
    seg = one(pkt, linktype=101)
    ihl = 20 + len(opts) + (-len(opts) % 4)
    assert seg["_l4_off"][0] == ihl and seg["payload_len"][0] == 3
    assert seg["ip_checksum_status"][0] == O.CSUM_OK
    assert seg["checksum_status"][0] == O.CSUM_OK


def test_ethernet_padding_after_ip_total_length_is_ignored():
    pkt = pb.ether(syn4())  # 54 bytes padded to 60
    assert len(pkt) == 60
    seg = one(pkt)
    assert seg["payload_len"][0] == 0 and seg["checksum_status"][0] == O.CSUM_OK


def test_bad_ipv4_header_checksum_is_reported():
    seg = one(pb.ipv4(payload=pb.tcp(), header_checksum=0x1111), linktype=101)
    assert seg["ip_checksum_status"][0] == O.CSUM_BAD
    assert seg["checksum_status"][0] == O.CSUM_OK


@pytest.mark.parametrize("pkt,code", [
    (pb.ipv4(payload=pb.tcp(), ihl=4), O.OUT_BAD_IP_HEADER),
    (pb.ipv4(payload=pb.tcp())[:19], O.OUT_BAD_IP_HEADER),
    (pb.ipv4(payload=pb.tcp(), ihl=15)[:40], O.OUT_BAD_IP_HEADER),
    (pb.ipv4(payload=pb.tcp(), total_length=19), O.OUT_BAD_IP_LENGTH),
    (pb.ipv4(payload=pb.tcp(), total_length=200), O.OUT_BAD_IP_LENGTH),
    (pb.ipv4(payload=b"\0" * 8, proto=17), O.OUT_NOT_TCP),
    (pb.ipv4(payload=b"\0" * 8, proto=1), O.OUT_NOT_TCP),
    (pb.ipv4(payload=b"\0" * 24, frag_offset=3, df=False), O.OUT_LATER_FRAGMENT),
    (pb.ipv4(payload=b"\0" * 24, proto=17, frag_offset=3, df=False), O.OUT_LATER_FRAGMENT),
    (pb.ipv4(payload=pb.tcp()[:16], mf=True, df=False), O.OUT_FRAGMENT_NO_TCP_HDR),
    (pb.ipv4(payload=pb.tcp(options=pb.opt_mss(1))[:22], mf=True, df=False), O.OUT_FRAGMENT_NO_TCP_HDR),
    (pb.ipv4(payload=pb.tcp(data_offset=4), mf=True, df=False), O.OUT_BAD_TCP_OFFSET),
])
def test_ipv4_outcomes(pkt, code):
    assert outcome_of(pkt, 101) == code


def test_ipv4_header_cut_by_snaplen_is_truncated():
    pkt = pb.ether(pb.ipv4(payload=pb.tcp(), options=b"\x01" * 20))
    assert outcome_of(pkt[:30], 1, wirelen=len(pkt)) == O.OUT_TRUNCATED
    assert outcome_of(pkt[:40], 1, wirelen=len(pkt)) == O.OUT_TRUNCATED


def test_first_fragment_holding_the_tcp_header_is_a_flagged_row():
    full = pb.tcp(flags=O.ACK, payload=b"z" * 100, options=pb.opt_ts(1, 2))
    pkt = pb.ipv4(payload=full[:64], mf=True, df=False)
    seg = one(pkt, linktype=101)
    assert len(seg) == 1
    assert seg["fragment"][0]
    assert seg["checksum_status"][0] == O.CSUM_UNVERIFIED
    assert seg["tsval"][0] == 1 and seg["hdr_len"][0] == 32
    assert seg["payload_len"][0] == 64 - 32  # what this fragment's IP length carries


# -- IPv6 -------------------------------------------------------------------------
def test_ipv6_extension_chain_is_walked():
    ext = [pb.ext_header(0, b"\x01\x04\0\0\0\0"),            # hop-by-hop, PadN
           pb.ext_header(43, b"\0\0" + b"\0" * 4 + pb.addr("2001:db8::2")),  # routing, 0 segments left
           pb.ext_header(60, b"\x01\x0c" + b"\0" * 12),       # dest options, 16 bytes
           pb.ext_header(51, b"\0\0" + b"\1\2\3\4" + b"\0\0\0\1" + b"\xaa" * 12),  # AH
           pb.frag_header(offset=0, more=False)]
    pkt = pb.ipv6(payload=pb.tcp(payload=b"q" * 5), ext=ext)
    chain = sum(len(raw) for _, raw in ext)
    seg = one(pkt, linktype=101)
    assert len(seg) == 1, seg.stats.to_dict()
    assert seg["_l4_off"][0] == 40 + chain
    assert seg["payload_len"][0] == 5
    assert not seg["fragment"][0]
    assert seg["checksum_status"][0] == O.CSUM_OK


@pytest.mark.parametrize("kind", [135, 139, 140])
def test_ipv6_generic_extension_headers_use_8_byte_units(kind):
    pkt = pb.ipv6(payload=pb.tcp(), ext=[pb.ext_header(kind, b"\0" * 14)])
    seg = one(pkt, linktype=101)
    assert seg["_l4_off"][0] == 40 + 16


def test_ipv6_first_fragment_is_a_flagged_row():
    pkt = pb.ipv6(payload=pb.tcp(payload=b"a" * 40)[:48], ext=[pb.frag_header(0, more=True)])
    seg = one(pkt, linktype=101)
    assert seg["fragment"][0] and seg["checksum_status"][0] == O.CSUM_UNVERIFIED


@pytest.mark.parametrize("pkt,code", [
    (pb.ipv6(payload=pb.tcp(), ext=[pb.frag_header(offset=10, more=True)]), O.OUT_LATER_FRAGMENT),
    (pb.ipv6(payload=pb.tcp()[:12], ext=[pb.frag_header(0, more=True)]), O.OUT_FRAGMENT_NO_TCP_HDR),
    (pb.ipv6(payload=b"", next_header=59), O.OUT_NOT_TCP),
    (pb.ipv6(payload=b"\0" * 16, next_header=50), O.OUT_NOT_TCP),
    (pb.ipv6(payload=b"\0" * 8, next_header=17), O.OUT_NOT_TCP),
    (pb.ipv6(payload=b"\0" * 8, next_header=58, ext=[pb.ext_header(0, b"\0" * 6)]), O.OUT_NOT_TCP),
    (pb.ipv6(payload=pb.tcp(), ext=[pb.ext_header(60, b"\0" * 6)] * 17), O.OUT_BAD_IP_HEADER),
    (pb.ipv6(payload=b"", ext=[(60, b"\x06\x05" + b"\0" * 6)]), O.OUT_BAD_IP_HEADER),
    (pb.ipv6(payload=pb.tcp(), payload_length=0), O.OUT_BAD_IP_LENGTH),
    (pb.ipv6(payload=pb.tcp(), payload_length=100), O.OUT_BAD_IP_LENGTH),
    (pb.ipv6(payload=pb.tcp())[:39], O.OUT_BAD_IP_HEADER),
])
def test_ipv6_outcomes(pkt, code):
    assert outcome_of(pkt, 101) == code


def test_ipv6_chain_cut_by_snaplen_is_truncated():
    pkt = pb.ipv6(payload=pb.tcp(), ext=[pb.ext_header(0, b"\0" * 14)])
    assert outcome_of(pkt[:44], 101, wirelen=len(pkt)) == O.OUT_TRUNCATED


def test_sixteen_extension_headers_are_accepted():
    pkt = pb.ipv6(payload=pb.tcp(), ext=[pb.ext_header(60, b"\0" * 6)] * 16)
    assert outcome_of(pkt, 101) == O.OUT_TCP


# -- TCP header and options -------------------------------------------------------
@pytest.mark.parametrize("options,expect", [
    (pb.opt_mss(536), dict(mss=536)),
    (pb.opt_wscale(14), dict(wscale=14)),
    (pb.opt_wscale(200), dict(wscale=200)),                       # raw shift count
    (pb.opt_sack_perm(), dict(sack_perm=True)),
    (pb.opt_nop() * 2 + pb.opt_sack([(1, 2)]), dict(sack_blocks=1)),
    (pb.opt_nop() * 2 + pb.opt_sack([(1, 2), (3, 4), (5, 6)]), dict(sack_blocks=3)),
    (pb.opt_ts(0xFFFFFFFF, 0), dict(tsval=0xFFFFFFFF, tsecr=0)),
    (pb.opt_tfo(), dict(tfo_cookie_len=0)),
    (pb.opt_tfo(b"\1" * 16), dict(tfo_cookie_len=16)),
    (pb.opt_tfo_exp(b"\1" * 8), dict(tfo_cookie_len=8)),
    (pb.opt_tfo_exp(), dict(tfo_cookie_len=0)),
    (pb.opt_raw(254, b"\x12\x34\0\0"), dict()),                   # other experiment
    (pb.opt_raw(2, b"\x05\xb4\0"), dict()),                       # MSS with a wrong length
    (pb.opt_raw(8, b"\0" * 4), dict()),                           # TS with a wrong length
    (pb.opt_raw(5, b"\0" * 5), dict()),                           # SACK not 2+8n
    (pb.opt_raw(99, b"\0" * 3) + pb.opt_mss(1400), dict(mss=1400)),  # unknown kind skipped
    (pb.opt_eol() + pb.opt_mss(1400), dict()),                    # EOL stops
    (pb.opt_nop() * 3 + pb.opt_wscale(2), dict(wscale=2)),
])
def test_tcp_option_kinds(options, expect):
    seg = one(syn4(options=options), linktype=101)
    assert len(seg) == 1
    base = dict(mss=-1, wscale=-1, sack_perm=False, sack_blocks=0, tsval=-1, tsecr=-1,
                tfo_cookie_len=-1)
    base.update(expect)
    for name, value in base.items():
        assert seg[name][0] == value, name


@pytest.mark.parametrize("options,mss", [
    (b"\x02", -1),                     # kind without length byte at the end of the header
    (b"\x02\x01\0\0", -1),             # length < 2
    (b"\x02\x00\0\0", -1),             # length 0
    (b"\x01\x01\x08\x0a\0\0\0\0", -1),  # TS length runs past the header
    (pb.opt_mss(1400) + b"\x03\x09\0\0", 1400),   # decoded up to the bad one
])
def test_bad_option_length_keeps_the_segment_and_flags_it(options, mss):
    seg = one(pb.ipv4(payload=pb.tcp(options=options)), linktype=101)
    assert seg.stats.tcp == 1 and seg.stats.malformed == 0
    assert seg["opt_status"][0] == O.OPTS_BAD
    assert seg["mss"][0] == mss


def test_options_without_a_column_of_their_own_are_named():
    opts = bytes([30, 4, 0, 0x81, 28, 4, 0x80, 0x3C, 99, 2, 19, 18]) + bytes(16)
    seg = one(pb.ipv4(payload=pb.tcp(options=opts)), linktype=101)
    assert seg["opt_status"][0] == O.OPTS_OK
    assert seg["opt_other"][0] == O.OPT_MPTCP | O.OPT_UTO | O.OPT_UNKNOWN | O.OPT_MD5


@pytest.mark.parametrize("pkt,code", [
    (pb.ipv4(payload=pb.tcp(data_offset=4)), O.OUT_BAD_TCP_OFFSET),
    (pb.ipv4(payload=pb.tcp(data_offset=6)), O.OUT_BAD_TCP_OFFSET),   # beyond IP payload
    (pb.ipv4(payload=pb.tcp()[:19]), O.OUT_BAD_TCP_OFFSET),
    (pb.ipv6(payload=pb.tcp(data_offset=2)), O.OUT_BAD_TCP_OFFSET),
])
def test_tcp_data_offset_outcomes(pkt, code):
    assert outcome_of(pkt, 101) == code


def test_snaplen_cut_options_are_decoded_as_far_as_captured():
    opts = pb.opt_mss(1460) + pb.opt_nop() * 2 + pb.opt_ts(1, 2)
    pkt = pb.ether(pb.ipv4(payload=pb.tcp(options=opts, payload=b"x" * 100)))
    # Fixed header cut: not a segment.
    assert outcome_of(pkt[:14 + 20 + 19], 1, wirelen=len(pkt)) == O.OUT_TRUNCATED
    for keep, mss, tsval, tsecr in ((20, -1, -1, -1), (25, 1460, -1, -1),
                                    (34, 1460, 1, -1), (36, 1460, 1, 2)):
        seg = one(pkt[:14 + 20 + keep], wirelen=len(pkt))
        assert seg.stats.tcp == 1
        assert (seg["mss"][0], seg["tsval"][0], seg["tsecr"][0]) == (mss, tsval, tsecr)
        assert seg["opt_status"][0] == (O.OPTS_OK if keep == 36 else O.OPTS_CUT)
        assert seg["hdr_len"][0] == 36 and seg["payload_len"][0] == 100
        assert seg["checksum_status"][0] == O.CSUM_UNVERIFIED


def test_payload_len_comes_from_ip_length_and_snaplen_makes_checksum_unverified():
    pkt = pb.ether(pb.ipv4(payload=pb.tcp(payload=b"d" * 1000)))
    seg = one(pkt[:80], wirelen=len(pkt))
    assert seg["payload_len"][0] == 1000
    assert seg["checksum_status"][0] == O.CSUM_UNVERIFIED
    assert seg["_l3_caplen"][0] == 80 - 14


@pytest.mark.parametrize("build", [
    lambda p: pb.ipv4(payload=p),
    lambda p: pb.ipv6(payload=p),
    lambda p: pb.ipv6(payload=p, ext=[pb.ext_header(0, b"\0" * 6)]),
])
@pytest.mark.parametrize("payload", [b"", b"a", b"ab", b"abc" * 111])
def test_tcp_checksum_ok_and_bad(build, payload):
    good = build(pb.tcp(payload=payload, flags=O.ACK))
    bad = build(pb.tcp(payload=payload, flags=O.ACK, checksum=0xBEEF))
    seg = fastseg.parse_packets([good, bad], linktype=101)
    assert list(seg["checksum_status"]) == [O.CSUM_OK, O.CSUM_BAD]
    assert seg["checksum"][1] == 0xBEEF


def test_tcp_checksum_agrees_with_dpkt():
    import dpkt
    pkt = pb.ipv4("1.2.3.4", "5.6.7.8", pb.tcp(payload=b"hello world", options=pb.opt_mss(1)))
    ip = dpkt.ip.IP(pkt)
    ip.data.sum = 0
    ip.sum = 0
    good_sum = dpkt.ip.IP(bytes(ip)).data.sum  # dpkt recomputes on serialisation
    assert one(pkt, linktype=101)["checksum"][0] == good_sum


# -- accounting and batch contract ----------------------------------------------
def test_every_packet_gets_one_outcome_and_frames_count_every_record():
    pkts = [pb.ether(syn4()), b"", pb.ether(b"\0" * 30, ethertype=0x0806),
            pb.ether(pb.ipv4(payload=pb.tcp(data_offset=3))), pb.ether(syn4(sport=7))]
    seg = fastseg.parse_packets(pkts, first_frame=100, ts_ns=np.arange(5) * 10)
    s = seg.stats
    assert s.packets == 5 and s.tcp == 2 and s.non_tcp == 1 and s.malformed == 2
    assert s.packets == s.tcp + s.non_tcp + s.malformed
    assert list(seg["frame"]) == [100, 104]
    assert list(seg["ts_ns"]) == [0, 40]
    assert list(seg["sport"]) == [40000, 7]


def test_every_outcome_code_is_reachable():
    seen = set()
    cases = [
        (1, pb.ether(syn4())), (1, pb.ether(b"", ethertype=0x0806)),
        (101, pb.ipv4(payload=b"\0" * 8, proto=17)),
        (101, pb.ipv4(payload=b"\0" * 24, frag_offset=3, df=False)),
        (101, pb.ipv4(payload=pb.tcp()[:10], mf=True, df=False)),
        (1, b"\0" * 13), (107, b"\0" * 40), (228, IP6_SYN),
        (101, pb.ipv4(payload=pb.tcp(), ihl=4)),
        (101, pb.ipv4(payload=pb.tcp(), total_length=500)),
        (101, pb.ipv4(payload=pb.tcp(data_offset=4))),
        (101, pb.ipv4(payload=b"\x00\x07\x08\x00" + b"\0" * 8, proto=47)), (1, b""),
    ]
    for lt, pkt in cases:
        seen.add(outcome_of(pkt, lt))
    pkt = pb.ether(syn4())
    seen.add(outcome_of(pkt[:40], 1, wirelen=len(pkt)))
    assert seen == set(range(O.N_OUTCOMES))


def test_raw_arrays_interface_and_per_packet_linktype():
    a, b = pb.ether(syn4()), syn4(sport=9)
    data = np.frombuffer(b"XX" + a + b, dtype=np.uint8)
    seg = fastseg.parse_packets(data=data, offset=[2, 2 + len(a)], caplen=[len(a), len(b)],
                                linktype=np.array([1, 101]))
    assert list(seg["sport"]) == [40000, 9]
    assert seg.data is data or np.shares_memory(seg.data, data)
    assert list(seg["_l3_off"]) == [16, 2 + len(a)]


def test_out_of_bounds_offsets_are_rejected():
    data = np.zeros(10, dtype=np.uint8)
    with pytest.raises(ValueError):
        fastseg.parse_packets(data=data, offset=[5], caplen=[6])
    with pytest.raises(ValueError):
        fastseg.parse_packets(data=data, offset=[-1], caplen=[2])


def test_kernel_returns_one_outcome_per_packet():
    pkts = [pb.ether(syn4()), b"\1\2"]
    data = np.frombuffer(b"".join(pkts), dtype=np.uint8)
    cols, outcome = _parse.parse_batch(
        data, np.array([0, len(pkts[0])], dtype=np.int64),
        np.array([len(p) for p in pkts], dtype=np.uint32),
        np.array([len(p) for p in pkts], dtype=np.uint32),
        np.zeros(2, dtype=np.int64), np.ones(2, dtype=np.uint16), 1)
    assert outcome.dtype == np.uint8 and list(outcome) == [O.OUT_TCP, O.OUT_BAD_LINK_HEADER]
    assert len(cols["frame"]) == 1


def test_empty_batch():
    seg = fastseg.parse_packets([])
    assert len(seg) == 0 and seg.stats.packets == 0


def test_read_only_buffer_is_accepted():
    pkt = pb.ether(syn4())
    data = np.frombuffer(pkt, dtype=np.uint8)
    assert not data.flags.writeable
    seg = fastseg.parse_packets(data=data, offset=[0], caplen=[len(pkt)])
    assert len(seg) == 1


# -- fuzzing ------------------------------------------------------------------------
LINKTYPES = [0, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147]


def _valid_packets():
    tcp_any = pb.tcp(options=pb.opt_mss(1460) + pb.opt_sack_perm() + pb.opt_ts(5, 6)
                     + pb.opt_nop() + pb.opt_wscale(7), payload=b"x" * 30)
    v6 = pb.ipv6(payload=tcp_any, ext=[pb.ext_header(0, b"\0" * 6), pb.frag_header()])
    v4 = pb.ipv4(payload=tcp_any, options=b"\x01" * 4)
    return [(1, pb.ether(v4, vlans=[(0x8100, 3)])), (1, pb.ether(v6, ethertype=pb.ETH_IPV6)),
            (113, pb.sll(v4)), (276, pb.sll2(v6, protocol=pb.ETH_IPV6)), (0, pb.null(v4)),
            (108, pb.loop(v6, family=24)), (101, v4), (229, v6)]


def _check_accounting(seg, n):
    s = seg.stats
    assert s.packets == n == s.tcp + s.non_tcp + s.malformed
    assert len(seg) == s.tcp
    for col in seg._cols.values():
        assert len(col) == s.tcp


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(LINKTYPES), st.binary(max_size=120)), max_size=20))
def test_random_bytes_never_crash(packets):
    seg = fastseg.parse_packets(data=np.frombuffer(b"".join(p for _, p in packets), dtype=np.uint8),
                                offset=np.cumsum([0] + [len(p) for _, p in packets])[:-1],
                                caplen=[len(p) for _, p in packets],
                                linktype=[lt for lt, _ in packets] or 1)
    _check_accounting(seg, len(packets))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_truncated_and_mutated_valid_packets_never_crash(data):
    lt, pkt = data.draw(st.sampled_from(_valid_packets()))
    cut = data.draw(st.integers(0, len(pkt)))
    buf = bytearray(pkt)
    for _ in range(data.draw(st.integers(0, 3))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    wire = data.draw(st.sampled_from([cut, len(pkt)]))
    # Each packet is placed at the very end of its own buffer, so a read past
    # caplen would have to leave the array.
    arr = np.frombuffer(bytes(buf[:cut]), dtype=np.uint8)
    seg = fastseg.parse_packets(data=arr, offset=[0], caplen=[cut], wirelen=[wire], linktype=lt)
    _check_accounting(seg, 1)
    if cut == len(pkt) and bytes(buf) == pkt:
        assert seg.stats.tcp == 1


def test_valid_fuzz_seed_packets_parse():
    for lt, pkt in _valid_packets():
        seg = one(pkt, linktype=lt)
        assert len(seg) == 1, (lt, seg.stats.to_dict())
        assert seg["mss"][0] == 1460 and seg["tsval"][0] == 5


# -- the file-level face, over a fake capture reader -----------------------------------
class FakeBatch:
    def __init__(self, data, offset, caplen, first_frame, linktype=1):
        self.data = data
        self.offset = np.asarray(offset, dtype=np.int64)
        self.caplen = np.asarray(caplen, dtype=np.uint32)
        self.wirelen = self.caplen.copy()
        self.ts_ns = np.arange(len(offset), dtype=np.int64) + 1000 * first_frame
        self.linktype = np.full(len(offset), linktype, dtype=np.uint16)
        self.first_frame = first_frame


class FakeReader:
    def __init__(self, batches, error=None):
        self._batches, self._error, self.closed = batches, error, False

    def __iter__(self):
        yield from self._batches
        if self._error is not None:
            raise self._error

    def close(self):
        self.closed = True


def _file_batches(shared=True):
    pkts = [pb.ether(syn4(sport=1000 + i)) for i in range(6)] + [b"\0" * 5]
    buf = np.frombuffer(b"".join(pkts), dtype=np.uint8)
    offs = np.concatenate([[0], np.cumsum([len(p) for p in pkts])[:-1]])
    lens = [len(p) for p in pkts]
    groups = [(0, 3), (3, 7)]
    out = []
    for lo, hi in groups:
        if shared:
            out.append(FakeBatch(buf, offs[lo:hi], lens[lo:hi], lo + 1))
        else:
            part = np.frombuffer(b"".join(pkts[lo:hi]), dtype=np.uint8)
            out.append(FakeBatch(part, offs[lo:hi] - offs[lo], lens[lo:hi], lo + 1))
    return out


@pytest.fixture
def fake_capture(monkeypatch):
    made = {}

    def install(batches, error=None, reader_cls=FakeReader):
        def open_capture(path, **kwargs):
            made["reader"] = reader_cls(batches, error)
            made["kwargs"] = kwargs
            return made["reader"]
        monkeypatch.setattr(fastseg.capture, "open_capture", open_capture)
        return made
    return install


def test_read_segments_keeps_the_shared_buffer(fake_capture):
    batches = _file_batches(shared=True)
    fake_capture(batches)
    seg = fastseg.read_segments("x.pcap")
    assert list(seg["frame"]) == [1, 2, 3, 4, 5, 6]
    assert list(seg["sport"]) == list(range(1000, 1006))
    assert seg.stats.packets == 7 and seg.stats.malformed == 1
    assert seg.data is batches[0].data
    off = seg["_l4_off"]
    assert [int.from_bytes(bytes(seg.data[o:o + 2]), "big") for o in off] == list(range(1000, 1006))


def test_read_segments_drops_separate_buffers_unless_asked(fake_capture):
    fake_capture(_file_batches(shared=False))
    assert fastseg.read_segments("x.pcap.gz").data is None
    fake_capture(_file_batches(shared=False))
    seg = fastseg.read_segments("x.pcap.gz", keep_bytes=True)
    off = seg["_l4_off"]
    assert [int.from_bytes(bytes(seg.data[o:o + 2]), "big") for o in off] == list(range(1000, 1006))
    fake_capture(_file_batches(shared=True))
    assert fastseg.read_segments("x.pcap", keep_bytes=False).data is None


def test_read_segments_on_damage_keeps_the_segments_before_it(fake_capture):
    batches = _file_batches()
    fake_capture(batches[:1], error=CaptureError("x.pcap", 4242, "bad record length"))
    with pytest.raises(CaptureError) as info:
        fastseg.read_segments("x.pcap")
    err = info.value
    assert (err.path, err.offset, err.reason) == ("x.pcap", 4242, "bad record length")
    assert list(err.partial["frame"]) == [1, 2, 3]
    assert err.partial.stats.packets == 3


def test_truncation_warning_passes_through(fake_capture):
    class CutReader(FakeReader):
        def __iter__(self):
            yield from self._batches
            warnings.warn("file ends inside a record", TruncatedCaptureWarning)

    fake_capture(_file_batches(), reader_cls=CutReader)
    with pytest.warns(TruncatedCaptureWarning):
        seg = fastseg.read_segments("x.pcap")
    assert len(seg) == 6


def test_batches_parse_correctly_on_concurrent_threads():
    from concurrent.futures import ThreadPoolExecutor
    pkts = [pb.ether(syn4(sport=1 + i % 60000, payload=b"x" * (i % 50))) for i in range(20000)]
    expected = fastseg.parse_packets(pkts)
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: fastseg.parse_packets(pkts), range(4)))
    for seg in results:
        for name in expected.columns:
            assert np.array_equal(seg[name], expected[name]), name


def test_open_yields_one_segments_per_batch_with_running_stats(fake_capture):
    made = fake_capture(_file_batches())
    with fastseg.open("x.pcap", batch_packets=3) as cap:
        assert cap.path == "x.pcap"
        sizes = []
        for seg in cap.batches():
            sizes.append(len(seg))
            assert cap.stats.packets in (3, 7)
        assert sizes == [3, 3]
        assert cap.stats.packets == 7 and cap.stats.tcp == 6
    assert made["kwargs"] == {"batch_packets": 3}
    assert made["reader"].closed


# -- tshark as the oracle ------------------------------------------------------------
def _write_pcap(path, packets, snaplen=65535):
    """Ethernet pcap; ``packets`` are (bytes, caplen) pairs."""
    pb.write_capture(path, [pkt[:cap] for pkt, cap in packets],
                     [(1_700_000_000 + i) * 10**9 for i in range(len(packets))],
                     snaplen=snaplen, wirelen=[len(pkt) for pkt, _ in packets])


def _oracle_packets():
    import random
    rng = random.Random(7)
    out = []
    for i in range(60):
        opts = b""
        if rng.random() < 0.5:
            opts += pb.opt_mss(rng.randrange(536, 9000))
        if rng.random() < 0.4:
            opts += pb.opt_sack_perm()
        if rng.random() < 0.5:
            opts += pb.opt_nop() + pb.opt_wscale(rng.randrange(15))
        if rng.random() < 0.5:
            opts += pb.opt_nop() * 2 + pb.opt_ts(rng.getrandbits(32), rng.getrandbits(32))
        if rng.random() < 0.2:
            opts = pb.opt_nop() * 2 + pb.opt_sack([(rng.getrandbits(32), rng.getrandbits(32))
                                                   for _ in range(rng.randrange(1, 4))])
        seg = pb.tcp(sport=rng.randrange(1, 65536), dport=rng.randrange(1, 65536),
                     seq=rng.getrandbits(32), ack=rng.getrandbits(32),
                     flags=rng.getrandbits(9), window=rng.getrandbits(16), options=opts,
                     payload=bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 80))),
                     checksum=0xABCD if rng.random() < 0.2 else None)
        if rng.random() < 0.5:
            ip = pb.ipv4(f"10.0.{i}.1", f"192.168.{i}.2", seg, ttl=rng.randrange(1, 256),
                         ident=rng.getrandbits(16),
                         header_checksum=0x1234 if rng.random() < 0.1 else None)
            pkt = pb.ether(ip, vlans=[(0x8100, i)] if rng.random() < 0.3 else ())
        else:
            ip = pb.ipv6(f"2001:db8::{i + 1:x}", f"2001:db8:1::{i + 1:x}", seg,
                         hop_limit=rng.randrange(1, 256))
            pkt = pb.ether(ip, ethertype=pb.ETH_IPV6)
        cap = len(pkt) if rng.random() < 0.8 else len(pkt) - rng.randrange(1, 10)
        out.append((pkt, cap))
    return out


def test_columns_agree_with_tshark(tshark, tmp_path):
    import subprocess
    packets = _oracle_packets()
    path = tmp_path / "oracle.pcap"
    _write_pcap(path, packets)
    fields = ["frame.number", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw",
              "tcp.flags", "tcp.hdr_len", "tcp.len", "tcp.window_size_value",
              "tcp.options.mss_val", "tcp.options.wscale.shift", "tcp.options.sack_perm",
              "tcp.options.timestamp.tsval", "tcp.options.timestamp.tsecr",
              "tcp.options.sack.count", "tcp.checksum.status", "ip.checksum.status",
              "ip.ttl", "ipv6.hlim", "ip.id"]
    cmd = [tshark, "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE",
           "-o", "ip.check_checksum:TRUE", "-o", "tcp.analyze_sequence_numbers:FALSE",
           "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    lines = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    seg = fastseg.parse_packets(data=np.frombuffer(b"".join(p[:c] for p, c in packets), dtype=np.uint8),
                                offset=np.cumsum([0] + [c for _, c in packets])[:-1],
                                caplen=[c for _, c in packets], wirelen=[len(p) for p, _ in packets])
    assert len(lines) == len(packets)
    # Packets whose fixed 20-byte TCP header the snapshot length cut are not
    # segments (tshark prints what it could dissect); every other one is a
    # row, its options decoded as far as they were captured.
    rows = {int(f): r for r, f in enumerate(seg["frame"])}
    cut = [i for i in range(len(packets)) if i + 1 not in rows]
    l4 = [14 + (20 if p[12:14] == b"\x08\x00" else 40) for p, _ in packets]
    assert all(packets[i][1] < l4[i] + 20 for i in cut)
    assert seg.stats.counts[O.OUT_TRUNCATED] == len(cut) == seg.stats.malformed
    assert len(seg) > 50
    # Wireshark's checksum enum: 0 bad, 1 good, 2 unverified.
    ws_status = {"0": O.CSUM_BAD, "1": O.CSUM_OK, "2": O.CSUM_UNVERIFIED}

    def num(text, default=-1):
        return int(text, 0) if text else default

    for line in lines:
        v = dict(zip(fields, line.split("|")))
        if int(v["frame.number"]) not in rows:
            continue
        row = rows[int(v["frame.number"])]
        got = {k: seg[k][row] for k in seg.columns}
        assert got["frame"] == int(v["frame.number"])
        assert got["sport"] == int(v["tcp.srcport"]) and got["dport"] == int(v["tcp.dstport"])
        assert got["seq"] == int(v["tcp.seq_raw"]) and got["ack"] == int(v["tcp.ack_raw"])
        assert got["flags"] == int(v["tcp.flags"], 16)
        assert got["hdr_len"] == int(v["tcp.hdr_len"])
        assert got["payload_len"] == int(v["tcp.len"])
        assert got["window"] == int(v["tcp.window_size_value"])
        assert got["mss"] == num(v["tcp.options.mss_val"])
        assert got["wscale"] == num(v["tcp.options.wscale.shift"])
        assert got["sack_perm"] == bool(v["tcp.options.sack_perm"])
        assert got["tsval"] == num(v["tcp.options.timestamp.tsval"])
        assert got["tsecr"] == num(v["tcp.options.timestamp.tsecr"])
        assert got["sack_blocks"] == num(v["tcp.options.sack.count"], 0)
        assert got["checksum_status"] == ws_status[v["tcp.checksum.status"]], row
        if got["ip_version"] == 4:
            assert got["ip_checksum_status"] == ws_status[v["ip.checksum.status"]]
            assert got["ttl"] == int(v["ip.ttl"]) and got["ip_id"] == int(v["ip.id"], 0)
        else:
            assert got["ttl"] == int(v["ipv6.hlim"])
