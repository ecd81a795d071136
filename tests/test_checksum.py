"""Checksums: the RFC 1071 kernel against a pure-Python reference, TCP/IPv4
verify / compute / fix against scapy and tshark, offload diagnosis on real
loopback and veth captures (tests/data/checksum, made by make_captures.py)."""
import struct
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastseg import _consts
from fastseg.checksum import (
    diagnose_offload, fix_checksums, internet_checksum, ip_checksums, offload_pattern,
    tcp_checksums, verify_checksums, verify_ip_checksums,
)
from fastseg.segments import Segments
from refs import internet_checksum as ref_checksum, ones_sum as ref_sum

OK, BAD, UNVERIFIED, NA = (_consts.CSUM_OK, _consts.CSUM_BAD, _consts.CSUM_UNVERIFIED,
                           _consts.CSUM_NOT_APPLICABLE)
CAPTURES = ("lo_offload.pcap", "veth_real.pcap", "veth_mixed.pcap", "veth_flipped.pcap",
            "veth_snap80.pcap")


# ------------------------------------------------- a small pcap -> rows reader

def read_pcap_rows(path) -> Segments:
    """Segments-like rows from an Ethernet pcap (enough for these captures):
    the data buffer is the whole file, offsets point into it, as the parser's
    memory-mapped tables do."""
    raw = open(path, "rb").read()
    magic = struct.unpack_from("<I", raw, 0)[0]
    assert magic == 0xA1B2C3D4, "little-endian microsecond pcap expected"
    assert struct.unpack_from("<I", raw, 20)[0] == 1, "Ethernet link type expected"
    rows = {k: [] for k in ("frame", "ip_version", "src", "dst", "hdr_len", "payload_len",
                            "fragment", "_l3_off", "_l4_off", "_l3_caplen", "checksum")}
    pos, frame = 24, 0
    while pos + 16 <= len(raw):
        incl = struct.unpack_from("<I", raw, pos + 8)[0]
        pkt, end = pos + 16, pos + 16 + incl
        frame += 1
        pos = end
        ethertype = struct.unpack_from(">H", raw, pkt + 12)[0]
        l3 = pkt + 14
        if ethertype == 0x0800:
            version, ihl = 4, (raw[l3] & 0x0F) * 4
            l4 = l3 + ihl
            total_len = struct.unpack_from(">H", raw, l3 + 2)[0]
            flags_frag = struct.unpack_from(">H", raw, l3 + 6)[0]
            fragment = bool(flags_frag & 0x2000) or (flags_frag & 0x1FFF) != 0
            src = b"\0" * 10 + b"\xff\xff" + raw[l3 + 12:l3 + 16]
            dst = b"\0" * 10 + b"\xff\xff" + raw[l3 + 16:l3 + 20]
            tcp_total = total_len - ihl
        elif ethertype == 0x86DD:
            version, l4 = 6, l3 + 40
            fragment = False
            src, dst = raw[l3 + 8:l3 + 24], raw[l3 + 24:l3 + 40]
            tcp_total = struct.unpack_from(">H", raw, l3 + 4)[0]
        else:
            continue
        assert l4 + 13 <= end, "these captures keep the TCP data offset byte"
        hdr_len = (raw[l4 + 12] >> 4) * 4
        rows["frame"].append(frame)
        rows["ip_version"].append(version)
        rows["src"].append(np.frombuffer(src, np.uint8))
        rows["dst"].append(np.frombuffer(dst, np.uint8))
        rows["hdr_len"].append(hdr_len)
        rows["payload_len"].append(tcp_total - hdr_len)
        rows["fragment"].append(fragment)
        rows["_l3_off"].append(l3)
        rows["_l4_off"].append(l4)
        rows["_l3_caplen"].append(end - l3)
        rows["checksum"].append(struct.unpack_from(">H", raw, l4 + 16)[0] if l4 + 18 <= end else 0)
    dtypes = {"frame": np.int64, "ip_version": np.uint8, "hdr_len": np.uint8,
              "payload_len": np.uint32, "fragment": np.bool_, "_l3_off": np.int64,
              "_l4_off": np.int64, "_l3_caplen": np.uint32, "checksum": np.uint16}
    cols = {k: (np.array(v, dtype=dtypes[k]) if k in dtypes else np.array(v).reshape(-1, 16))
            for k, v in rows.items()}
    return Segments(cols, np.frombuffer(raw, dtype=np.uint8))


def tshark_fields(tshark, path, *fields):
    out = subprocess.run(
        [tshark, "-n", "-r", str(path), "-o", "tcp.check_checksum:TRUE",
         "-o", "ip.check_checksum:TRUE", "-T", "fields", "-e", "frame.number",
         *[a for f in fields for a in ("-e", f)]],
        check=True, capture_output=True, text=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split("\t")
        table[int(parts[0])] = parts[1:]
    return table


# tshark's tcp.checksum.status / ip.checksum.status: 0 Bad, 1 Good, 2 Unverified.
TSHARK_STATUS = {"0": BAD, "1": OK, "2": UNVERIFIED}


@pytest.fixture(scope="module")
def checksum_dir(data_dir):
    return data_dir / "checksum"


# --------------------------------------------------------------- the kernel

def test_rfc1071_worked_example_sums_to_ddf2():
    # RFC 1071 section 3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
    data = bytes.fromhex("0001f203f4f5f6f7")
    assert ref_sum(data) == 0xDDF2
    assert internet_checksum(data) == 0xFFFF ^ 0xDDF2


def test_checksum_of_data_with_its_checksum_appended_is_zero():
    data = bytes.fromhex("0001f203f4f5f6f7")
    c = internet_checksum(data)
    assert internet_checksum(data + c.to_bytes(2, "big")) == 0


def test_odd_length_pads_last_byte_as_high_half():
    assert internet_checksum(b"\x01") == 0xFFFF ^ 0x0100
    assert internet_checksum(b"\x00\x01\xf2") == 0xFFFF ^ (0x0001 + 0xF200)
    assert internet_checksum(b"") == 0xFFFF


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_internet_checksum_matches_reference_on_random_buffers(data):
    assert internet_checksum(data) == ref_checksum(data)


@pytest.mark.parametrize("offset", range(8))
@pytest.mark.parametrize("length", [0, 1, 2, 3, 5, 20, 63, 255, 256, 257, 1448, 1501, 9001])
def test_internet_checksum_is_independent_of_alignment(offset, length):
    rng = np.random.default_rng(length * 8 + offset)
    backing = rng.integers(0, 256, length + 16, dtype=np.uint8)
    view = backing[offset:offset + length]
    assert internet_checksum(view) == ref_checksum(view.tobytes())


def test_carries_survive_long_runs_of_ff():
    data = b"\xff" * ((1 << 20) + 3)
    assert internet_checksum(data) == ref_checksum(data)
    data = b"\xff\xfe" * (1 << 19)
    assert internet_checksum(data) == ref_checksum(data)


def test_internet_checksum_accepts_any_bytes_like():
    payload = bytes(range(256)) * 3 + b"\x07"
    expect = ref_checksum(payload)
    assert internet_checksum(bytearray(payload)) == expect
    assert internet_checksum(memoryview(payload)) == expect
    assert internet_checksum(np.frombuffer(payload, np.uint8)) == expect
    words = np.frombuffer(payload[:-1], dtype=np.uint16)
    assert internet_checksum(words) == ref_checksum(payload[:-1])
    strided = np.frombuffer(payload, np.uint8)[::2]
    assert internet_checksum(strided) == ref_checksum(strided.tobytes())


# ------------------------------------------------ synthetic packets in a buffer

def ipv4_header(src, dst, tcp_len, ttl=64):
    hdr = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + tcp_len, 0x1234, 0x4000,
                                ttl, 6, 0, bytes(src), bytes(dst)))
    return hdr


def ipv6_header(src, dst, tcp_len):
    return bytearray(struct.pack(">IHBB16s16s", 0x60000000, tcp_len, 6, 64,
                                 bytes(src), bytes(dst)))


def tcp_header(sport, dport, seq, options=b""):
    hdr_len = 20 + len(options)
    return bytearray(struct.pack(">HHIIBBHHH", sport, dport, seq, 0, (hdr_len // 4) << 4,
                                 0x18, 65535, 0xBEEF, 0)) + options


def build_rows(packets, gap=3):
    """Lay packets ((version, ip_hdr, tcp_hdr, payload), ...) out in one buffer
    with odd gaps between them and return (buffer, Segments)."""
    buf = bytearray()
    cols = {k: [] for k in ("ip_version", "src", "dst", "hdr_len", "payload_len", "fragment",
                            "_l3_off", "_l4_off", "_l3_caplen")}
    for i, (version, ip, tcp, payload) in enumerate(packets):
        buf += b"\xaa" * (gap + i % 5)
        l3 = len(buf)
        buf += ip + tcp + payload
        cols["ip_version"].append(version)
        if version == 4:
            cols["src"].append(b"\0" * 10 + b"\xff\xff" + bytes(ip[12:16]))
            cols["dst"].append(b"\0" * 10 + b"\xff\xff" + bytes(ip[16:20]))
        else:
            cols["src"].append(bytes(ip[8:24]))
            cols["dst"].append(bytes(ip[24:40]))
        cols["hdr_len"].append(len(tcp))
        cols["payload_len"].append(len(payload))
        cols["fragment"].append(False)
        cols["_l3_off"].append(l3)
        cols["_l4_off"].append(l3 + len(ip))
        cols["_l3_caplen"].append(len(ip) + len(tcp) + len(payload))
    buf += b"\xaa" * gap
    seg = Segments({
        "ip_version": np.array(cols["ip_version"], np.uint8),
        "src": np.frombuffer(b"".join(cols["src"]), np.uint8).reshape(-1, 16),
        "dst": np.frombuffer(b"".join(cols["dst"]), np.uint8).reshape(-1, 16),
        "hdr_len": np.array(cols["hdr_len"], np.uint8),
        "payload_len": np.array(cols["payload_len"], np.uint32),
        "fragment": np.array(cols["fragment"], np.bool_),
        "_l3_off": np.array(cols["_l3_off"], np.int64),
        "_l4_off": np.array(cols["_l4_off"], np.int64),
        "_l3_caplen": np.array(cols["_l3_caplen"], np.uint32),
    }, np.frombuffer(bytes(buf), np.uint8))
    return np.frombuffer(buf, np.uint8).copy(), seg


def ref_tcp_checksum(version, ip, tcp, payload):
    """The TCP checksum from RFC 9293 3.1 / RFC 8200 8.1, field zeroed."""
    seg = bytearray(tcp + payload)
    seg[16:18] = b"\0\0"
    if version == 4:
        pseudo = bytes(ip[12:20]) + struct.pack(">BBH", 0, 6, len(seg))
    else:
        pseudo = bytes(ip[8:40]) + struct.pack(">I3xB", len(seg), 6)
    return ref_checksum(pseudo + bytes(seg))


V4_SRC, V4_DST = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 7])
V6_SRC = bytes.fromhex("20010db8000000000000000000000001")
V6_DST = bytes.fromhex("20010db800000000000000000000abcd")


def sample_packets():
    rng = np.random.default_rng(7)
    packets = []
    for i, n in enumerate([0, 1, 2, 37, 1448, 1449, 9000]):
        payload = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        options = b"\x02\x04\x05\xb4\x01\x01\x04\x02" if i % 2 else b""
        tcp = tcp_header(1000 + i, 80, 12345 * i, options)
        if i % 3 == 2:
            packets.append((6, ipv6_header(V6_SRC, V6_DST, len(tcp) + n), tcp, payload))
        else:
            packets.append((4, ipv4_header(V4_SRC, V4_DST, len(tcp) + n), tcp, payload))
    return packets


def test_tcp_checksums_match_scapy_for_ipv4_and_ipv6():
    scapy = pytest.importorskip("scapy.all")
    packets = sample_packets()
    _, seg = build_rows(packets)
    values, computed = tcp_checksums(seg, with_mask=True)
    assert computed.all()
    for value, (version, ip, tcp, payload) in zip(values, packets):
        layer = scapy.IP if version == 4 else scapy.IPv6
        pkt = layer(bytes(ip) + bytes(tcp) + payload)
        del pkt[scapy.TCP].chksum
        expect = layer(bytes(pkt))[scapy.TCP].chksum
        assert value == expect == ref_tcp_checksum(version, ip, tcp, payload)


def test_ipv6_pseudo_header_uses_32_bit_length_and_both_addresses():
    payload = bytes(range(200))
    tcp = tcp_header(443, 50000, 1)
    ip = ipv6_header(V6_SRC, V6_DST, len(tcp) + len(payload))
    _, seg = build_rows([(6, ip, tcp, payload)])
    assert tcp_checksums(seg)[0] == ref_tcp_checksum(6, ip, tcp, payload)
    swapped = ipv6_header(V6_DST, V6_SRC, len(tcp) + len(payload))
    _, seg2 = build_rows([(6, swapped, tcp, payload)])
    assert tcp_checksums(seg2)[0] == tcp_checksums(seg)[0]  # the sum is commutative
    other = ipv6_header(V6_SRC, V6_SRC, len(tcp) + len(payload))
    _, seg3 = build_rows([(6, other, tcp, payload)])
    assert tcp_checksums(seg3)[0] != tcp_checksums(seg)[0]


def test_ip_checksums_match_reference_and_are_na_for_ipv6():
    packets = sample_packets()
    _, seg = build_rows(packets)
    values, computed = ip_checksums(seg, with_mask=True)
    for value, ok, (version, ip, _, _) in zip(values, computed, packets):
        if version == 4:
            assert ok and value == ref_checksum(bytes(ip))  # field is zero in ip
        else:
            assert not ok and value == 0
    assert list(verify_ip_checksums(seg)) == [BAD if v == 4 else NA for v, *_ in packets]


def test_fix_then_verify_is_ok_and_the_buffer_matches_the_reference():
    packets = sample_packets()
    buf, seg = build_rows(packets)
    assert (verify_checksums(seg) == BAD).all()
    assert fix_checksums(buf, seg) == len(packets)
    fixed = Segments(dict((k, seg[k]) for k in seg._cols), buf)
    assert (verify_checksums(fixed) == OK).all()
    assert (verify_ip_checksums(fixed)[seg["ip_version"] == 4] == OK).all()
    for l4, (version, ip, tcp, payload) in zip(seg["_l4_off"], packets):
        assert int.from_bytes(buf[l4 + 16:l4 + 18], "big") == ref_tcp_checksum(
            version, ip, tcp, payload)
    # Bytes between the packets are untouched.
    mask = np.ones(len(buf), bool)
    for l3, caplen in zip(seg["_l3_off"], seg["_l3_caplen"]):
        mask[l3:l3 + caplen] = False
    assert (buf[mask] == 0xAA).all()


def test_fix_accepts_bytearray_and_raw_row_arrays():
    packets = sample_packets()
    buf, seg = build_rows(packets)
    ba = bytearray(buf.tobytes())
    n = fix_checksums(ba, l3_off=seg["_l3_off"], l4_off=seg["_l4_off"],
                      l3_caplen=seg["_l3_caplen"], ip_version=seg["ip_version"],
                      hdr_len=seg["hdr_len"], payload_len=seg["payload_len"])
    assert n == len(packets)
    fixed = Segments(dict((k, seg[k]) for k in seg._cols), np.frombuffer(bytes(ba), np.uint8))
    assert (verify_checksums(fixed) == OK).all()


def test_fix_refuses_read_only_buffers_with_a_clear_error():
    _, seg = build_rows(sample_packets())
    with pytest.raises(ValueError, match="writable"):
        fix_checksums(seg.data, seg)
    with pytest.raises(ValueError, match="writable"):
        fix_checksums(bytes(seg.data), seg)


def test_missing_packet_bytes_raise_value_error():
    _, seg = build_rows(sample_packets())
    no_bytes = Segments(dict((k, seg[k]) for k in seg._cols), None)
    for func in (verify_checksums, verify_ip_checksums, tcp_checksums, diagnose_offload):
        with pytest.raises(ValueError, match="no packet bytes"):
            func(no_bytes)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_fix_in_place_then_any_single_bit_flip_in_the_tcp_segment_is_bad(data):
    version = data.draw(st.sampled_from([4, 6]))
    payload = data.draw(st.binary(max_size=1600))
    options = data.draw(st.sampled_from([b"", b"\x01\x01\x04\x02", b"\x02\x04\x05\xb4" * 3]))
    src = data.draw(st.binary(min_size=16, max_size=16))
    dst = data.draw(st.binary(min_size=16, max_size=16))
    tcp = tcp_header(data.draw(st.integers(0, 65535)), 80, data.draw(st.integers(0, 2**32 - 1)),
                     options)
    tcp[16:18] = data.draw(st.binary(min_size=2, max_size=2))  # whatever was there
    if version == 4:
        ip = ipv4_header(src[:4], dst[:4], len(tcp) + len(payload))
    else:
        ip = ipv6_header(src, dst, len(tcp) + len(payload))
    buf, seg = build_rows([(version, ip, tcp, payload)],
                          gap=data.draw(st.integers(0, 7)))
    assert fix_checksums(buf, seg) == 1
    fixed = Segments(dict((k, seg[k]) for k in seg._cols), buf)
    assert verify_checksums(fixed)[0] == OK
    l4, seg_len = int(seg["_l4_off"][0]), len(tcp) + len(payload)
    bit = data.draw(st.integers(0, seg_len * 8 - 1))
    flipped = buf.copy()
    flipped[l4 + bit // 8] ^= 1 << (bit % 8)
    assert verify_checksums(Segments(dict((k, seg[k]) for k in seg._cols), flipped))[0] == BAD
    # A flipped bit in a pseudo-header address is caught too.
    l3 = int(seg["_l3_off"][0])
    addr_byte = l3 + (12 if version == 4 else 8) + data.draw(
        st.integers(0, 7 if version == 4 else 31))
    flipped = buf.copy()
    flipped[addr_byte] ^= 1 << data.draw(st.integers(0, 7))
    assert verify_checksums(Segments(dict((k, seg[k]) for k in seg._cols), flipped))[0] == BAD


def test_rows_whose_bytes_are_missing_are_unverified_and_not_fixed():
    packets = sample_packets()
    buf, seg = build_rows(packets)
    caplen = seg["_l3_caplen"].copy()
    caplen[1] -= 1                       # one byte short of the payload
    caplen[4] = 60                       # a snaplen cut
    frag = seg["fragment"].copy()
    frag[5] = True                       # a first fragment
    cols = dict((k, seg[k]) for k in seg._cols)
    cols["_l3_caplen"], cols["fragment"] = caplen, frag
    cut = Segments(cols, buf)
    before = buf.copy()
    assert fix_checksums(buf, cut) == len(packets) - 3
    status = verify_checksums(Segments(cols, buf))
    assert list(np.flatnonzero(status == UNVERIFIED)) == [1, 4, 5]
    assert (status[[0, 2, 3, 6]] == OK).all()
    values, computed = tcp_checksums(Segments(cols, buf), with_mask=True)
    assert list(np.flatnonzero(~computed)) == [1, 4, 5] and (values[~computed] == 0).all()
    for i in (1, 4, 5):                  # their TCP checksum fields were left alone
        l4 = seg["_l4_off"][i]
        assert (buf[l4 + 16:l4 + 18] == before[l4 + 16:l4 + 18]).all()


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_garbage_rows_never_read_or_write_outside_the_buffer(data):
    size = data.draw(st.integers(0, 300))
    n = data.draw(st.integers(0, 20))
    big = st.integers(-(2**40), 2**40)
    near = st.integers(-5, size + 5)
    buf = np.frombuffer(data.draw(st.binary(min_size=size, max_size=size)), np.uint8).copy()
    cols = {
        "_l3_off": np.array([data.draw(st.one_of(near, big)) for _ in range(n)], np.int64),
        "_l4_off": np.array([data.draw(st.one_of(near, big)) for _ in range(n)], np.int64),
        "_l3_caplen": np.array([data.draw(st.integers(0, 2**32 - 1)) for _ in range(n)], np.uint32),
        "ip_version": np.array([data.draw(st.sampled_from([0, 4, 6, 255])) for _ in range(n)],
                               np.uint8),
        "hdr_len": np.array([data.draw(st.integers(0, 255)) for _ in range(n)], np.uint8),
        "payload_len": np.array([data.draw(st.integers(0, 2**32 - 1)) for _ in range(n)],
                                np.uint32),
        "fragment": np.zeros(n, np.bool_),
        "src": np.zeros((n, 16), np.uint8), "dst": np.zeros((n, 16), np.uint8),
    }
    guarded = np.full(size + 64, 0x5C, np.uint8)
    guarded[32:32 + size] = buf
    inner = guarded[32:32 + size]
    seg = Segments(cols, inner)
    status = verify_checksums(seg)
    assert status.dtype == np.uint8 and set(status.tolist()) <= {OK, BAD, UNVERIFIED}
    assert set(verify_ip_checksums(seg).tolist()) <= {OK, BAD, UNVERIFIED, NA}
    tcp_checksums(seg)
    diagnose_offload(seg)
    fix_checksums(inner, seg)
    assert (guarded[:32] == 0x5C).all() and (guarded[32 + size:] == 0x5C).all()


# --------------------------------------------- real captures, tshark as oracle

@pytest.mark.parametrize("name", CAPTURES)
def test_tcp_and_ip_status_equal_tshark_on_every_frame(tshark, checksum_dir, name):
    path = checksum_dir / name
    seg = read_pcap_rows(path)
    oracle = tshark_fields(tshark, path, "tcp.checksum.status", "ip.checksum.status")
    tcp_status, ip_status = verify_checksums(seg), verify_ip_checksums(seg)
    assert len(seg) == len(oracle) > 0
    mismatches = []
    for frame, t, i in zip(seg["frame"], tcp_status, ip_status):
        want_tcp, want_ip = oracle[int(frame)]
        want_ip = TSHARK_STATUS[want_ip] if want_ip else NA
        if (TSHARK_STATUS[want_tcp], want_ip) != (t, i):
            mismatches.append((int(frame), (want_tcp, want_ip), (int(t), int(i))))
    assert mismatches == []


def test_captures_hold_the_statuses_they_were_made_for(checksum_dir):
    counts = {name: np.bincount(verify_checksums(read_pcap_rows(checksum_dir / name)),
                                minlength=3)
              for name in CAPTURES}
    assert counts["lo_offload.pcap"][OK] == 0 and counts["lo_offload.pcap"][BAD] > 0
    assert counts["veth_real.pcap"][BAD] == 0 and counts["veth_real.pcap"][OK] > 0
    assert counts["veth_flipped.pcap"][BAD] > 0 and counts["veth_flipped.pcap"][OK] > 0
    assert counts["veth_snap80.pcap"][UNVERIFIED] > 0
    ip_bad = verify_ip_checksums(read_pcap_rows(checksum_dir / "veth_flipped.pcap")) == BAD
    assert ip_bad.any()


@pytest.mark.parametrize("name", ["lo_offload.pcap", "veth_flipped.pcap", "veth_mixed.pcap"])
def test_computed_checksums_equal_tsharks_calculated_values(tshark, checksum_dir, name):
    path = checksum_dir / name
    seg = read_pcap_rows(path)
    oracle = tshark_fields(tshark, path, "tcp.checksum_calculated", "ip.checksum_calculated")
    tcp_values, ip_values = tcp_checksums(seg), ip_checksums(seg)
    compared = 0
    for frame, t, i in zip(seg["frame"], tcp_values, ip_values):
        want_tcp, want_ip = oracle[int(frame)]
        if want_tcp:            # tshark shows it only for bad checksums
            assert int(want_tcp, 16) == t, frame
            compared += 1
        if want_ip:
            assert int(want_ip, 16) == i, frame
    assert compared > 0


@pytest.mark.parametrize("name", ["lo_offload.pcap", "veth_flipped.pcap", "veth_snap80.pcap"])
def test_fixed_capture_verifies_good_in_tshark(tshark, checksum_dir, tmp_path, name):
    path = checksum_dir / name
    seg = read_pcap_rows(path)
    buf = np.array(seg.data)
    expect_fixed = int((verify_checksums(seg) != UNVERIFIED).sum())
    assert fix_checksums(buf, seg) == expect_fixed
    out = tmp_path / name
    out.write_bytes(buf.tobytes())
    oracle = tshark_fields(tshark, out, "tcp.checksum.status", "ip.checksum.status")
    before = verify_checksums(seg)
    for frame, old in zip(seg["frame"], before):
        want_tcp, want_ip = oracle[int(frame)]
        assert TSHARK_STATUS[want_tcp] == (UNVERIFIED if old == UNVERIFIED else OK), frame
        assert want_ip in ("", "1"), frame


# ------------------------------------------------------------ offload diagnosis

def test_loopback_capture_is_diagnosed_as_offload_for_both_families(checksum_dir):
    seg = read_pcap_rows(checksum_dir / "lo_offload.pcap")
    assert offload_pattern(seg).all()
    assert (verify_checksums(seg) == BAD).all()      # the raw status stays bad
    v4 = int((seg["ip_version"] == 4).sum())
    v6 = int((seg["ip_version"] == 6).sum())
    assert diagnose_offload(seg) == {"127.0.0.1": v4, "::1": v6}


def test_mixed_capture_names_only_the_offloading_sender(checksum_dir):
    seg = read_pcap_rows(checksum_dir / "veth_mixed.pcap")
    src = seg.src_text()
    n_client = {a: int((src == a).sum()) for a in ("10.99.0.1", "fd99::1")}
    assert diagnose_offload(seg) == n_client
    status = verify_checksums(seg)
    assert (status[np.isin(src, ["10.99.0.2", "fd99::2"])] == OK).all()


def test_corruption_and_real_checksums_are_not_offload(checksum_dir):
    for name in ("veth_real.pcap", "veth_flipped.pcap", "veth_snap80.pcap"):
        assert diagnose_offload(read_pcap_rows(checksum_dir / name)) == {}, name


def test_offload_rule_needs_enough_segments_and_share(checksum_dir):
    seg = read_pcap_rows(checksum_dir / "lo_offload.pcap")
    v4 = np.flatnonzero(seg["ip_version"] == 4)
    assert diagnose_offload(seg[v4[:2]]) == {}                 # below the minimum count
    assert diagnose_offload(seg[v4[:3]]) == {"127.0.0.1": 3}
    # Corrupt a quarter of one sender's unfilled fields: the share drops below 90%.
    buf = np.array(seg.data)
    for l4 in seg["_l4_off"][v4[: len(v4) // 4]]:
        buf[l4 + 16] ^= 0x40
    damaged = Segments(dict((k, seg[k]) for k in seg._cols), buf)
    result = diagnose_offload(damaged)
    assert "127.0.0.1" not in result and "::1" in result
    assert diagnose_offload(damaged, min_share=0.5)["127.0.0.1"] == len(v4) - len(v4) // 4


def test_verify_gives_the_same_answer_from_concurrent_threads(checksum_dir):
    from concurrent.futures import ThreadPoolExecutor

    seg = read_pcap_rows(checksum_dir / "veth_flipped.pcap")
    expect = verify_checksums(seg)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: verify_checksums(seg), range(16)))
    assert all((r == expect).all() for r in results)
