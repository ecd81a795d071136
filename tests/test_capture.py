"""Capture reader: every pcap/pcapng variant, compression, batching, damage, oracles."""
import gzip
import io
import os
import socket
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import capfiles as cf
from fastseg import CaptureError, TruncatedCaptureWarning
from fastseg.capture import BLOCK_MAX, CAPLEN_MAX, PacketBatch, open_capture

try:
    import zstandard
except ImportError:  # pragma: no cover
    zstandard = None

COLUMNS = ("offset", "caplen", "wirelen", "ts_ns", "linktype", "record_offset")


# -- helpers -------------------------------------------------------------------
def write(tmp_path, data, name="cap.bin"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_all(source, **kw):
    """Read every batch; returns (list of batches, reader)."""
    with open_capture(source, **kw) as reader:
        batches = list(reader)
    return batches, reader


def packets(batches):
    """Flatten batches to a list of per-packet tuples (frame, bytes, caplen, wirelen, ts, lt, rec)."""
    out = []
    for b in batches:
        assert isinstance(b, PacketBatch)
        n = len(b)
        for col in COLUMNS:
            assert len(getattr(b, col)) == n
        for i in range(n):
            out.append((b.first_frame + i, b.packet(i), int(b.caplen[i]), int(b.wirelen[i]),
                        int(b.ts_ns[i]), int(b.linktype[i]), int(b.record_offset[i])))
    return out


def read_until_error(source, **kw):
    """Read batches until CaptureError; returns (packets, error)."""
    got = []
    with open_capture(source, **kw) as reader:
        with pytest.raises(CaptureError) as info:
            for batch in reader:
                got.append(batch)
    return packets(got), info.value


# -- pcap ----------------------------------------------------------------------
PCAP_PKTS = [(1700000000, 999999, cf.payload(0, 60)),
             (1700000001, 0, cf.payload(1, 1), 1514),
             (0, 5, b""),
             (4294967295, 123, cf.payload(3, 300), 300)]


@pytest.mark.parametrize("big", [False, True])
@pytest.mark.parametrize("nanosecond,modified", [(False, False), (True, False), (False, True)])
def test_pcap_variants_fields_match_the_records(tmp_path, big, nanosecond, modified):
    data = cf.pcap(PCAP_PKTS, big=big, nanosecond=nanosecond, modified=modified, linktype=101)
    batches, reader = read_all(write(tmp_path, data))
    assert reader.format == "pcap" and reader.compression is None
    assert reader.interfaces[0]["linktype"] == 101
    assert reader.interfaces[0]["tsresol"] == (1.0 if nanosecond else 1000.0)
    hdr = 24 if modified else 16
    rec = 24
    got = packets(batches)
    assert len(got) == len(PCAP_PKTS)
    for i, (pkt, row) in enumerate(zip(PCAP_PKTS, got)):
        sec, frac, payload = pkt[:3]
        wirelen = pkt[3] if len(pkt) > 3 else len(payload)
        ts = sec * 10**9 + frac * (1 if nanosecond else 1000)
        assert row == (i + 1, payload, len(payload), wirelen, ts, 101, rec)
        assert int(batches[0].offset[i]) == rec + hdr
        rec += hdr + len(payload)
    assert reader.bytes_read == len(data)


def test_pcap_linktype_field_fcs_bits_are_masked(tmp_path):
    field = 0x04000000 | (2 << 28) | 1     # FCS present, 2 x 16-bit words, Ethernet
    data = cf.pcap([(1, 0, b"abcd")], linktype=field)
    batches, reader = read_all(write(tmp_path, data))
    assert int(batches[0].linktype[0]) == 1
    assert reader.interfaces[0]["linktype"] == 1
    assert reader.interfaces[0]["fcs_len"] == 4


def test_pcap_of_headers_only_yields_no_batches(tmp_path):
    batches, reader = read_all(write(tmp_path, cf.pcap_header()))
    assert batches == [] and reader.bytes_read == 24


# -- pcapng --------------------------------------------------------------------
def two_interface_file(big):
    """SHB, an IDB with ns resolution and an offset, an IDB with 2^-20 s
    resolution, packets on both, plus blocks a reader must skip."""
    ticks_ns = 1700000000_123456789
    ticks_b20 = (1700000005 << 20) | 0x80000      # .5 s
    return (cf.shb(big=big, opts=[(cf.OPT_COMMENT, b"section one")])
            + cf.idb(1, 65535, big=big, tsresol=9, tsoffset=-100, name="eth0")
            + cf.nrb(big=big)
            + cf.idb(113, 96, big=big, tsresol=0x80 | 20)
            + cf.epb(0, ticks_ns, cf.payload(0, 54), wirelen=60, big=big,
                     opts=[(cf.OPT_COMMENT, b"hi")])
            + cf.custom_block(b"vendor data", big=big)
            + cf.epb(1, ticks_b20, cf.payload(1, 96), wirelen=1500, big=big)
            + cf.isb(0, 5, big=big)
            + cf.block(0x12345678, b"unknown block type", big=big)
            + cf.pb(1, ticks_b20 + (1 << 19), cf.payload(2, 7), big=big)
            + cf.spb(cf.payload(3, 40), wirelen=40, big=big)
            + cf.epb(0, 0, b"", big=big))


@pytest.mark.parametrize("big", [False, True])
def test_pcapng_interfaces_resolutions_and_block_kinds(tmp_path, big):
    data = two_interface_file(big)
    batches, reader = read_all(write(tmp_path, data))
    assert reader.format == "pcapng"
    assert [i["linktype"] for i in reader.interfaces] == [1, 113]
    assert reader.interfaces[0]["name"] == "eth0"
    assert reader.interfaces[0]["tsoffset"] == -100
    assert reader.interfaces[1]["snaplen"] == 96
    assert reader.interfaces[1]["tsresol"] == pytest.approx(1e9 / 2**20)
    got = packets(batches)
    ts0 = 1700000000_123456789 - 100 * 10**9
    want = [
        (cf.payload(0, 54), 54, 60, ts0, 1),
        (cf.payload(1, 96), 96, 1500, 1700000005_500000000, 113),
        (cf.payload(2, 7), 7, 7, 1700000006_000000000, 113),
        (cf.payload(3, 40), 40, 40, 0, 1),              # SPB: interface 0, no timestamp
        (b"", 0, 0, -100 * 10**9, 1),
    ]
    assert [g[1:6] for g in got] == want
    assert [g[0] for g in got] == [1, 2, 3, 4, 5]
    # record offsets point at the block type of each packet block
    for row in got:
        btype = int.from_bytes(data[row[6]:row[6] + 4], "big" if big else "little")
        assert btype in (cf.EPB, cf.PB, cf.SPB)
    assert reader.bytes_read == len(data)


def test_pcapng_decimal_and_binary_tsresol_conversions(tmp_path):
    cases = [  # (if_tsresol byte, ticks, expected ns)
        (None, 1_500_000, 1_500_000_000),             # default: microseconds
        (0, 7, 7_000_000_000),                        # seconds
        (3, 1234, 1_234_000_000),                     # ms
        (9, 42, 42),
        (12, 1700000000_123456789, 1700000000_123456),  # ps -> ns rounds down
        (0x80 | 0, 3, 3_000_000_000),                 # 2^0 s
        (0x80 | 10, 1536, 1_500_000_000),             # 2^-10 s
        (0x80 | 30, (1 << 30) + 1, 1_000_000_000),    # 0.93 ns rounds down
        (0x80 | 63, (1 << 63) + (1 << 62), 1_500_000_000),
        (0x80 | 40, (5 << 40) + (1 << 40) - 1, 5_999_999_999),   # 0.99999999999909 s
        (0x80 | 50, (1 << 50) - 1, 999_999_999),
    ]
    data = cf.shb()
    for i, (res, ticks, _) in enumerate(cases):
        data += cf.idb(1, tsresol=res)
    for i, (_, ticks, _) in enumerate(cases):
        data += cf.epb(i, ticks, b"x")
    batches, _ = read_all(write(tmp_path, data))
    assert [g[4] for g in packets(batches)] == [c[2] for c in cases]


def test_pcapng_spb_caplen_is_min_of_wirelen_snaplen_and_block_room(tmp_path):
    data = (cf.shb() + cf.idb(1, snaplen=8)
            + cf.spb(cf.payload(0, 12), wirelen=100)    # snaplen cuts: 8
            + cf.spb(cf.payload(1, 5), wirelen=5)       # wirelen cuts: 5 (padding ignored)
            + cf.shb() + cf.idb(1, snaplen=0)
            + cf.spb(cf.payload(2, 6), wirelen=1000))   # block room cuts: 8 (6 + 2 padding)
    got = packets(read_all(write(tmp_path, data))[0])
    assert [(g[2], g[3]) for g in got] == [(8, 100), (5, 5), (8, 1000)]
    assert got[0][1] == cf.payload(0, 8)
    assert got[2][1] == cf.payload(2, 6) + b"\0\0"


def test_pcapng_new_section_resets_interfaces_and_byte_order(tmp_path):
    data = (cf.shb(big=False) + cf.idb(1, tsresol=9) + cf.idb(101)
            + cf.epb(1, 5, b"a")
            + cf.shb(big=True) + cf.idb(113, big=True, tsresol=9)
            + cf.epb(0, 6, b"bb", big=True))
    batches, reader = read_all(write(tmp_path, data))
    got = packets(batches)
    assert [(g[1], g[4], g[5]) for g in got] == [(b"a", 5000, 101), (b"bb", 6, 113)]
    assert [i["section"] for i in reader.interfaces] == [0, 0, 1]
    # interface 1 existed in section 0 only
    bad = data + cf.epb(1, 7, b"c", big=True)
    got, err = read_until_error(write(tmp_path, bad, "bad.pcapng"))
    assert len(got) == 2
    assert err.offset == len(data) and "unknown interface id 1" in err.reason


def test_pcapng_interfaces_are_known_on_open(tmp_path):
    with open_capture(write(tmp_path, two_interface_file(False))) as reader:
        assert len(reader.interfaces) == 1      # the second IDB follows an NRB
        assert reader.interfaces[0]["linktype"] == 1


# -- memory: zero copy, batches ---------------------------------------------------
def test_mapped_batches_share_one_read_only_view_with_absolute_offsets(tmp_path):
    pkts = [(i, i, cf.payload(i, 10 + i)) for i in range(10)]
    data = cf.pcap(pkts)
    batches, _ = read_all(write(tmp_path, data), batch_packets=3)
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert all(b.data is batches[0].data for b in batches)
    assert not batches[0].data.flags.writeable
    assert batches[0].data.dtype == np.uint8 and len(batches[0].data) == len(data)
    for b in batches:
        for i in range(len(b)):
            off = int(b.offset[i])
            assert data[off:off + int(b.caplen[i])] == b.packet(i)
    assert [b.first_frame for b in batches] == [1, 4, 7, 10]


def concat(batches):
    return packets(batches)


@pytest.mark.parametrize("use_mmap", [True, False])
@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_small_batches_give_the_same_packets_as_one_batch(tmp_path, use_mmap, kind):
    if kind == "pcap":
        data = cf.pcap([(i, i * 3, cf.payload(i, i % 97)) for i in range(200)])
    else:
        data = cf.shb() + cf.idb(1) + cf.idb(101, tsresol=9)
        for i in range(200):
            data += cf.epb(i % 2, i * 1000, cf.payload(i, i % 97))
            if i % 50 == 0:
                data += cf.idb(12) + cf.custom_block(b"x" * i)
    path = write(tmp_path, data)
    whole = concat(read_all(path)[0])
    assert len(whole) == 200
    for kw in ({"batch_packets": 3}, {"batch_bytes": 100}, {"batch_packets": 1, "batch_bytes": 1}):
        batches = read_all(path, use_mmap=use_mmap, **kw)[0]
        assert concat(batches) == whole
        assert max(len(b) for b in batches) <= kw["batch_packets"] if "batch_packets" in kw else True


def test_streamed_batches_hold_whole_records_only(tmp_path):
    data = cf.pcap([(i, 0, cf.payload(i, 1000)) for i in range(300)])
    with open(write(tmp_path, data), "rb") as f:
        batches = list(open_capture(f, batch_bytes=1 << 16))
    assert sum(len(b) for b in batches) == 300
    assert len(batches) > 3
    for b in batches:
        end = int(b.offset[-1]) + int(b.caplen[-1])
        assert end == len(b.data)      # the buffer ends with the batch's last record
        assert len(b.data) < (1 << 16) + 2 * 1016


def test_streamed_memory_stays_bounded_by_batch_bytes(tmp_path):
    import tracemalloc
    plain = cf.pcap([(i, 0, cf.payload(i, 1500)) for i in range(256)])
    body = plain[24:] * 80                                     # ~31 MB, 20480 packets
    path = write(tmp_path, gzip.compress(plain[:24] + body, compresslevel=1), "big.gz")
    tracemalloc.start()
    try:
        n = 0
        for batch in open_capture(path, batch_bytes=1 << 20):
            n += len(batch)
            del batch
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 256 * 80
    assert peak < 8 << 20, peak


def test_record_larger_than_a_chunk_is_carried_whole(tmp_path):
    big = cf.payload(9, 300_000)
    data = cf.pcap([(1, 0, b"a"), (2, 0, big), (3, 0, b"c")])
    got = concat(read_all(io.BytesIO(data), batch_bytes=1000)[0])
    assert [g[1] for g in got] == [b"a", big, b"c"]


def test_readers_on_threads_agree(tmp_path):
    path = write(tmp_path, sample_pcapng())
    want = concat(read_all(path)[0])
    results = [None] * 4

    def work(k):
        results[k] = concat(read_all(path, batch_packets=7, use_mmap=k % 2 == 0)[0])
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [want] * 4


# -- compression -------------------------------------------------------------------
def sample_pcapng():
    data = cf.shb() + cf.idb(1, tsresol=9)
    for i in range(500):
        data += cf.epb(0, 1700000000_000000000 + i, cf.payload(i, 40 + i % 50))
    return data


def test_gzip_and_zstd_equal_plain_and_are_detected_by_magic(tmp_path):
    plain = sample_pcapng()
    want = concat(read_all(write(tmp_path, plain, "p.pcapng"))[0])
    gz = write(tmp_path, gzip.compress(plain), "looks_plain.pcapng")
    batches, reader = read_all(gz, batch_bytes=4096)
    assert reader.compression == "gzip" and concat(batches) == want
    if zstandard is None:
        pytest.skip("zstandard not installed")
    zs = write(tmp_path, zstandard.ZstdCompressor().compress(plain), "x.gz")
    batches, reader = read_all(zs, batch_bytes=4096)
    assert reader.compression == "zstd" and concat(batches) == want
    assert reader.bytes_read == len(plain)
    assert reader.raw_bytes_read == reader.size == zs.stat().st_size


def test_multi_member_gzip_and_multi_frame_zstd_read_across_members(tmp_path):
    plain = cf.pcap([(i, 0, cf.payload(i, 30)) for i in range(40)])
    want = concat(read_all(write(tmp_path, plain, "p"))[0])
    half = 24 + 23 * 46
    gz = gzip.compress(plain[:half]) + gzip.compress(plain[half:])
    assert concat(read_all(write(tmp_path, gz, "m.gz"))[0]) == want
    if zstandard is not None:
        c = zstandard.ZstdCompressor()
        zs = c.compress(plain[:half]) + c.compress(plain[half:])
        assert concat(read_all(write(tmp_path, zs, "m.zst"))[0]) == want


def test_zstd_without_zstandard_names_the_package(tmp_path, monkeypatch):
    data = bytes.fromhex("28b52ffd") + b"\0" * 20
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(CaptureError) as info:
        open_capture(write(tmp_path, data, "c.zst"))
    assert info.value.offset == 0 and "zstandard" in info.value.reason
    assert "c.zst" in str(info.value)


def test_damaged_gzip_stream_keeps_earlier_packets_then_raises(tmp_path):
    plain = cf.pcap([(i, 0, cf.payload(i, 200)) for i in range(2000)])
    gz = bytearray(gzip.compress(plain, compresslevel=1))
    mid = len(gz) // 2
    gz[mid:mid + 16] = b"\xff" * 16
    got, err = read_until_error(write(tmp_path, bytes(gz), "d.gz"), batch_bytes=4096)
    assert [g[1] for g in got] == [cf.payload(i, 200) for i in range(len(got))]
    assert err.offset >= 24 + 216 * len(got)


def test_gzip_crc_mismatch_is_damage_after_the_packets_before_it(tmp_path):
    plain = cf.pcap([(i, 0, cf.payload(i, 200)) for i in range(3000)])
    gz = bytearray(gzip.compress(plain))
    gz[-8] ^= 0xFF                                  # CRC32 of the member
    got, err = read_until_error(write(tmp_path, bytes(gz), "crc.gz"), batch_bytes=4096)
    assert 1000 < len(got) < 3000         # all but the last piece read before the check
    assert [g[1] for g in got] == [cf.payload(i, 200) for i in range(len(got))]
    assert "damaged compressed stream" in err.reason and "CRC" in err.reason


def test_truncated_gzip_warns_and_keeps_whole_records(tmp_path):
    plain = cf.pcap([(i, 0, cf.payload(i, 200)) for i in range(2000)])
    gz = gzip.compress(plain, compresslevel=1)
    path = write(tmp_path, gz[: len(gz) // 2], "t.gz")
    with pytest.warns(TruncatedCaptureWarning):
        got = concat(read_all(path, batch_bytes=4096)[0])
    assert 0 < len(got) < 2000
    assert [g[1] for g in got] == [cf.payload(i, 200) for i in range(len(got))]


def test_truncated_and_damaged_zstd(tmp_path):
    if zstandard is None:
        pytest.skip("zstandard not installed")
    plain = cf.pcap([(i, 0, cf.payload(i, 200)) for i in range(2000)])
    zs = zstandard.ZstdCompressor().compress(plain)
    with pytest.warns(TruncatedCaptureWarning, match="ends inside a record"):
        got = concat(read_all(write(tmp_path, zs[:-3], "t.zst"))[0])
    assert 0 < len(got) < 2000
    assert [g[1] for g in got] == [cf.payload(i, 200) for i in range(len(got))]
    bad = bytearray(zs)
    bad[len(bad) // 2:len(bad) // 2 + 8] = b"\xff" * 8
    with pytest.raises(CaptureError, match="damaged compressed stream"):
        read_all(write(tmp_path, bytes(bad), "d.zst"))


def _whole_records(plain: bytes) -> int:
    """Whole pcap records in ``plain`` (an independent count)."""
    pos, n = 24, 0
    while pos + 16 <= len(plain):
        caplen = int.from_bytes(plain[pos + 8:pos + 12], "little")
        if pos + 16 + caplen > len(plain):
            break
        pos, n = pos + 16 + caplen, n + 1
    return n


@pytest.mark.parametrize("cut", [5000, 0.25, 0.5, 0.9, -9])
def test_cut_gzip_reads_every_whole_record_tshark_reads(tmp_path, tshark, cut):
    """A .gz cut by a failed download: every whole record it holds is read,
    as many as tshark reads, with the truncation warning (the first 5 KB
    used to be refused as holding no data, longer cuts lost the last piece)."""
    plain = cf.pcap([(i, 0, cf.payload(i, 200)) for i in range(2000)])
    gz = gzip.compress(plain, compresslevel=6)
    end = cut if isinstance(cut, int) and cut > 0 else (
        len(gz) + cut if isinstance(cut, int) else int(len(gz) * cut))
    path = write(tmp_path, gz[:end], "cut.pcap.gz")
    frames = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.number"],
                            capture_output=True, text=True).stdout.split()
    with pytest.warns(TruncatedCaptureWarning):
        got = concat(read_all(path, batch_bytes=4096)[0])
    assert len(got) == len(frames) > 0
    assert [g[1] for g in got] == [cf.payload(i, 200) for i in range(len(got))]


@pytest.mark.parametrize("frac", [0.3, 0.5, 0.99])
def test_cut_zstd_reads_every_whole_record_it_holds(tmp_path, frac):
    if zstandard is None:
        pytest.skip("zstandard not installed")
    plain = cf.pcap([(i, 0, cf.payload(i, 200)) for i in range(5000)])
    zs = zstandard.ZstdCompressor(level=3).compress(plain)
    cut = zs[:int(len(zs) * frac)]
    held = zstandard.ZstdDecompressor().decompressobj().decompress(cut)
    path = write(tmp_path, cut, "cut.pcap.zst")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = concat(read_all(path, batch_bytes=4096)[0])
    assert [type(w.message) for w in caught] == [TruncatedCaptureWarning]
    assert len(got) == _whole_records(held) > 0


def test_zstd_cut_inside_its_first_block_holds_no_data(tmp_path):
    if zstandard is None:
        pytest.skip("zstandard not installed")
    plain = cf.pcap([(i, 0, cf.payload(i, 200)) for i in range(5000)])
    zs = zstandard.ZstdCompressor(level=3).compress(plain)
    with pytest.raises(CaptureError, match="holds no data"):
        read_all(write(tmp_path, zs[:len(zs) // 10], "first.zst"))


def test_gzip_cut_at_a_record_boundary_still_warns(tmp_path):
    plain = cf.pcap([(i, 0, cf.payload(i, 100)) for i in range(50)])
    gz = gzip.compress(plain)
    with pytest.warns(TruncatedCaptureWarning, match="compressed stream ends early"):
        got = concat(read_all(write(tmp_path, gz[:-8], "c.gz"))[0])   # CRC and size cut
    assert len(got) == 50


def test_gzip_members_may_be_followed_by_zero_padding(tmp_path):
    plain = cf.pcap([(i, 0, cf.payload(i, 100)) for i in range(50)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = concat(read_all(write(tmp_path, gzip.compress(plain) + bytes(512), "p.gz"))[0])
    assert len(got) == 50


# -- other sources ---------------------------------------------------------------
def test_file_object_and_pipe_are_streamed(tmp_path):
    plain = sample_pcapng()
    want = concat(read_all(write(tmp_path, plain))[0])
    assert concat(read_all(io.BytesIO(plain))[0]) == want
    rfd, wfd = os.pipe()

    def feed():
        with os.fdopen(wfd, "wb") as w:
            for k in range(0, len(plain), 777):
                w.write(plain[k:k + 777])
    thread = threading.Thread(target=feed)
    thread.start()
    try:
        with os.fdopen(rfd, "rb", buffering=0) as r:
            got = concat(read_all(r, batch_bytes=2048)[0])
    finally:
        thread.join(10)
    assert got == want


def test_fifo_path_is_streamed(tmp_path):
    plain = cf.pcap([(i, 0, cf.payload(i, 20)) for i in range(50)])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as w:
            w.write(plain)
    thread = threading.Thread(target=feed)
    thread.start()
    try:
        got = concat(read_all(fifo)[0])
    finally:
        thread.join(10)
    assert [g[1] for g in got] == [cf.payload(i, 20) for i in range(50)]


# -- damage ------------------------------------------------------------------------
def pcapng_prefix():
    return cf.shb() + cf.idb(1, tsresol=9) + cf.epb(0, 1, b"ok") + cf.epb(0, 2, b"ok2")


DAMAGE = {
    "block length under 12": (lambda: cf.block(cf.EPB, b"", length=8), "bad block length 8"),
    "block length not multiple of 4": (lambda: cf.block(0x77, b"abcd", length=18), "not a multiple of 4"),
    "block length over cap": (lambda: cf.block(0x77, b"abcd", length=BLOCK_MAX + 4), "over the"),
    "trailer differs": (lambda: cf.block(0x77, b"abcd", trailer=20), "trailing length 20"),
    "unknown interface": (lambda: cf.epb(3, 0, b"x"), "unknown interface id 3"),
    "caplen past block": (lambda: cf.epb(0, 0, b"xxxx", caplen=9), "runs past the end"),
    "caplen over cap": (lambda: cf.epb(0, 0, b"xxxx", caplen=CAPLEN_MAX + 1), "over the"),
    "EPB too short": (lambda: cf.block(cf.EPB, b"\0" * 12), "too short"),
    "SHB bad byte-order magic": (lambda: cf.block(cf.SHB, b"\x01\x02\x03\x04" + b"\0" * 12),
                                 "byte-order magic"),
    "SHB bad version": (lambda: cf.shb(version=(2, 0)), "version 2.0"),
    "IDB option overrun": (lambda: cf.block(cf.IDB, b"\x01\0\0\0\0\0\0\0" + b"\x09\0\x40\0"),
                           "runs past"),
    "IDB bad tsresol": (lambda: cf.idb(1, tsresol=0x80 | 64), "if_tsresol"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
@pytest.mark.parametrize("use_mmap", [True, False])
def test_pcapng_damage_keeps_earlier_packets_and_names_offset(tmp_path, case, use_mmap):
    make, reason = DAMAGE[case]
    prefix = pcapng_prefix()
    data = prefix + make() + cf.epb(0, 3, b"after")
    got, err = read_until_error(write(tmp_path, data, "damaged.pcapng"), use_mmap=use_mmap,
                                batch_bytes=64)
    assert [g[1] for g in got] == [b"ok", b"ok2"]
    assert err.offset == len(prefix)
    assert reason in err.reason
    assert "damaged.pcapng" in str(err) and str(len(prefix)) in str(err)


def test_spb_before_any_interface_is_damage(tmp_path):
    data = cf.shb() + cf.spb(b"abcd")
    got, err = read_until_error(write(tmp_path, data))
    assert got == [] and err.offset == 28 and "unknown interface" in err.reason


def test_pcap_caplen_over_cap_is_damage_at_its_record(tmp_path):
    good = cf.pcap([(1, 0, b"abc"), (2, 0, b"defg")])
    data = good + cf.pcap_record(3, 0, b"zz", caplen=CAPLEN_MAX + 1) + b"\0" * 64
    got, err = read_until_error(write(tmp_path, data))
    assert [g[1] for g in got] == [b"abc", b"defg"]
    assert err.offset == len(good) and "captured length 16777217 over" in err.reason


@pytest.mark.parametrize("data,reason", [
    (b"", "empty file"),
    (b"\xd4\xc3", "cut short"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "cut short"),
    (b"GET / HTTP/1.1\r\n\r\n", "bad magic"),
    (cf.shb()[:20], "cut short"),
    (gzip.compress(b""), "holds no data"),
    (gzip.compress(b"hello world, not a capture"), "bad magic"),
])
def test_not_a_capture_is_an_error_at_offset_zero(tmp_path, data, reason):
    with pytest.raises(CaptureError) as info:
        open_capture(write(tmp_path, data, "x.pcap"))
    assert info.value.offset == 0 and reason in info.value.reason
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("cut", [1, 5, 16, 17])
def test_pcap_cut_inside_last_record_warns_and_keeps_packets(tmp_path, cut):
    full = cf.pcap([(i, 0, cf.payload(i, 20)) for i in range(3)])
    last = 24 + 2 * 36
    data = full[:last + cut]
    for source in (write(tmp_path, data, "t.pcap"), io.BytesIO(data)):
        with pytest.warns(TruncatedCaptureWarning) as rec:
            got = concat(read_all(source)[0])
        assert len(got) == 2
        msg = str(rec[0].message)
        assert f"ends inside a record at byte offset {last}; read 2 packets" in msg


def test_pcapng_cut_inside_block_warns(tmp_path):
    data = pcapng_prefix()
    cut = data + cf.epb(0, 9, b"tail")[:10]
    with pytest.warns(TruncatedCaptureWarning, match=f"byte offset {len(data)}"):
        got = concat(read_all(write(tmp_path, cut))[0])
    assert len(got) == 2


def test_whole_file_reads_without_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_all(write(tmp_path, sample_pcapng()))


def test_context_manager_and_single_iteration(tmp_path):
    path = write(tmp_path, cf.pcap([(1, 0, b"a")]))
    with open_capture(path) as reader:
        batches = list(reader)
        with pytest.raises(RuntimeError):
            iter(reader)
    assert batches[0].packet(0) == b"a"      # batches outlive the reader


# -- oracles: tshark ------------------------------------------------------------------
def tshark_fields(tshark, path):
    out = subprocess.run([tshark, "-r", str(path), "-T", "fields", "-e", "frame.time_epoch",
                          "-e", "frame.cap_len", "-e", "frame.len"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    rows = []
    for line in out.splitlines():
        ts, cap, wire = line.split("\t")
        sec, _, frac = ts.partition(".")
        rows.append((int(sec) * 10**9 + int(frac.ljust(9, "0")[:9]), int(cap), int(wire)))
    return rows


def ours(path):
    return [(g[4], g[2], g[3]) for g in concat(read_all(path)[0])]


@pytest.fixture(scope="module")
def loopback_capture(tmp_path_factory):
    """A real tcpdump capture of TCP traffic on loopback (skips if it cannot capture)."""
    import shutil
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        pytest.skip("tcpdump not found")
    path = tmp_path_factory.mktemp("lo") / "lo.pcap"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    proc = subprocess.Popen([tcpdump, "-i", "lo", "-Z", "root", "-U", "--immediate-mode", "-s", "200", "-w", str(path),
                             f"tcp port {port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 5
        while time.time() < deadline and not (path.exists() and path.stat().st_size >= 24):
            time.sleep(0.05)
        time.sleep(0.3)
        for k in range(5):
            c = socket.create_connection(("127.0.0.1", port))
            s, _ = server.accept()
            c.sendall(b"x" * (100 + 700 * k))
            s.recv(65536)
            c.close()
            s.close()
        time.sleep(1.0)
    finally:
        proc.terminate()
        proc.wait(5)
        server.close()
    if not path.exists() or path.stat().st_size <= 24:
        pytest.skip("tcpdump could not capture on loopback")
    return path


def test_tcpdump_loopback_capture_matches_tshark(tshark, loopback_capture, tmp_path):
    want = tshark_fields(tshark, loopback_capture)
    assert len(want) >= 20
    assert ours(loopback_capture) == want
    assert any(c < w for _, c, w in want)        # snaplen 200 cut the bigger segments
    # the same capture as pcapng and as nanosecond pcap, converted by editcap
    for fmt, name in (("pcapng", "lo.pcapng"), ("nsecpcap", "lo_ns.pcap")):
        conv = tmp_path / name
        subprocess.run(["editcap", "-F", fmt, str(loopback_capture), str(conv)], check=True,
                       timeout=60)
        assert ours(conv) == tshark_fields(tshark, conv) == want


@pytest.mark.parametrize("big", [False, True])
def test_built_pcapng_matches_tshark(tshark, tmp_path, big):
    # (tshark 4.0 overflows on resolutions finer than 1 ns: the hand-computed
    # test above covers those.)
    data = (cf.shb(big=big) + cf.idb(1, big=big, tsresol=0x80 | 20, tsoffset=-3)
            + cf.idb(101, 50, big=big, tsresol=7) + cf.idb(113, big=big, tsresol=6))
    for i in range(30):
        data += cf.epb(0, (1700000000 << 20) + i * 12345, cf.payload(i, 60), wirelen=70, big=big)
        data += cf.pb(1, 17_000_000_001_234_567 + i * 99_999_999, cf.payload(i, 50), big=big)
        data += cf.epb(2, 1700000000_000001 + i, cf.payload(i, 0), wirelen=9, big=big)
    path = write(tmp_path, data, "built.pcapng")
    assert ours(path) == tshark_fields(tshark, path)


# -- never another exception, never a hang -----------------------------------------------
def read_any(data, **kw):
    """Read bytes both ways; only CaptureError may escape."""
    results = []
    for source in (io.BytesIO(data),):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TruncatedCaptureWarning)
                with open_capture(source, **kw) as reader:
                    n = 0
                    for batch in reader:
                        n += len(batch)
                        assert len(batch) <= kw.get("batch_packets", 262144)
                        if len(batch):
                            end = batch.offset + batch.caplen
                            assert int(end.max()) <= len(batch.data)
                            assert int(batch.offset.min()) >= 0
                    results.append(n)
        except CaptureError:
            results.append(None)
    return results


VALID = [cf.pcap([(i, i, cf.payload(i, 9 + i)) for i in range(6)]),
         cf.pcap([(i, i, cf.payload(i, 9 + i)) for i in range(6)], big=True, nanosecond=True),
         two_interface_file(False), two_interface_file(True)]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_read_or_raise_capture_error(data):
    read_any(data)
    read_any(b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + data)
    read_any(cf.shb() + data, batch_packets=2)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(VALID))), st.lists(st.tuples(st.integers(0, 10**6),
                                                              st.integers(0, 255)), max_size=4),
       st.integers(0, 10**6))
def test_bit_flips_and_truncations_read_or_raise_capture_error(which, flips, cut):
    data = bytearray(VALID[which])
    for pos, val in flips:
        data[pos % len(data)] ^= val
    data = bytes(data[:cut % (len(data) + 1)])
    read_any(data, batch_packets=2)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(range(len(VALID))), st.integers(0, 10**6), st.integers(1, 255))
def test_mapped_reads_of_damaged_files_stay_in_bounds(tmp_path_factory, which, pos, val):
    data = bytearray(VALID[which])
    data[pos % len(data)] ^= val
    path = tmp_path_factory.mktemp("fz") / "f"
    path.write_bytes(bytes(data))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TruncatedCaptureWarning)
            for batch in open_capture(path):
                assert int((batch.offset + batch.caplen).max(initial=0)) <= len(batch.data)
    except CaptureError:
        pass


# -- agreement with a pure-Python reader on random valid files ----------------------------
def reference_read(data):
    """A straightforward pure-Python pcap/pcapng reader (whole, valid files only):
    [(bytes, caplen, wirelen, ts_ns, linktype, record_offset)]."""
    import struct
    out = []
    if data[:4] != b"\x0a\x0d\x0d\x0a":
        e = ">" if data[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d") else "<"
        ns = data[:4] in (b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1")
        lt = struct.unpack_from(e + "I", data, 20)[0] & 0xFFFF
        pos = 24
        while pos < len(data):
            sec, frac, cap, wire = struct.unpack_from(e + "IIII", data, pos)
            ts = sec * 10**9 + frac * (1 if ns else 1000)
            out.append((data[pos + 16:pos + 16 + cap], cap, wire, ts, lt, pos))
            pos += 16 + cap
        return out
    pos, e, ifs = 0, "<", []
    while pos < len(data):
        if data[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
            e = ">" if data[pos + 8:pos + 12] == b"\x1a\x2b\x3c\x4d" else "<"
            ifs = []
        btype, blen = struct.unpack_from(e + "II", data, pos)
        if btype == 1:
            lt, _, snap = struct.unpack_from(e + "HHI", data, pos + 8)
            res, off, opt = 10**-6, 0, pos + 16
            while opt < pos + blen - 4:
                code, olen = struct.unpack_from(e + "HH", data, opt)
                if code == 0:
                    break
                if code == 9:
                    v = data[opt + 4]
                    res = (2, v & 0x7F) if v & 0x80 else (10, v)
                if code == 14:
                    off = struct.unpack_from(e + "q", data, opt + 4)[0]
                opt += 4 + olen + (-olen % 4)
            ifs.append((lt, snap, res, off))
        elif btype in (2, 6):
            if_id = struct.unpack_from(e + ("I" if btype == 6 else "H"), data, pos + 8)[0]
            hi, lo, cap, wire = struct.unpack_from(e + "IIII", data, pos + 12)
            lt, _, res, off = ifs[if_id]
            base, exp = res if isinstance(res, tuple) else (10, 6)
            ts = (((hi << 32) | lo) * 10**9) // base**exp + off * 10**9
            ts = (ts + 2**63) % 2**64 - 2**63          # int64 wraps
            out.append((data[pos + 28:pos + 28 + cap], cap, wire, ts, lt, pos))
        elif btype == 3:
            wire = struct.unpack_from(e + "I", data, pos + 8)[0]
            lt, snap = ifs[0][:2]
            cap = min(wire, snap or wire, blen - 16)
            out.append((data[pos + 12:pos + 12 + cap], cap, wire, 0, lt, pos))
        pos += blen
    return out


packet_st = st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 10**6 - 1),
                      st.binary(max_size=70), st.integers(0, 3000))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(packet_st, max_size=25), st.booleans(), st.booleans(), st.integers(1, 7))
def test_random_pcap_agrees_with_reference(pkts, big, ns, batch):
    data = cf.pcap(pkts, big=big, nanosecond=ns)
    got = concat(read_all(io.BytesIO(data), batch_packets=batch, batch_bytes=200)[0])
    want = reference_read(data)
    assert [g[1:] for g in got] == want


idb_st = st.tuples(st.sampled_from([0, 1, 101, 113, 276]), st.integers(0, 100),
                   st.one_of(st.none(), st.integers(0, 12), st.integers(0x80, 0x80 + 40)),
                   st.one_of(st.none(), st.integers(-10**6, 10**6)))
block_st = st.one_of(
    st.tuples(st.just("epb"), st.integers(0, 7), st.integers(0, 2**64 - 1), st.binary(max_size=60),
              st.integers(0, 3000)),
    st.tuples(st.just("pb"), st.integers(0, 7), st.integers(0, 2**64 - 1), st.binary(max_size=60),
              st.integers(0, 3000)),
    st.tuples(st.just("spb"), st.binary(max_size=60), st.integers(0, 100)),
    st.tuples(st.just("idb"), idb_st),
    st.tuples(st.just("shb"), st.booleans(), idb_st),
    st.tuples(st.just("other"), st.sampled_from([4, 5, 0xBAD, 0x40000BAD, 0x1234]),
              st.binary(max_size=20)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), idb_st, st.lists(block_st, max_size=30), st.integers(1, 7),
       st.booleans())
def test_random_pcapng_agrees_with_reference(big, first_idb, blocks, batch, mapped):
    def make_idb(spec, big):
        lt, snap, res, off = spec
        return cf.idb(lt, snap, big=big, tsresol=res, tsoffset=off)
    data = cf.shb(big=big) + make_idb(first_idb, big)
    n_if = 1
    for blk in blocks:
        kind = blk[0]
        if kind in ("epb", "pb"):
            _, if_id, ticks, payload, wire = blk
            make = cf.epb if kind == "epb" else cf.pb
            data += make(if_id % n_if, ticks, payload, wirelen=wire, big=big)
        elif kind == "spb":
            data += cf.spb(blk[1], wirelen=blk[2], big=big)
        elif kind == "idb":
            data += make_idb(blk[1], big)
            n_if += 1
        elif kind == "shb":
            big = blk[1]
            data += cf.shb(big=big) + make_idb(blk[2], big)
            n_if = 1
        else:
            data += cf.block(blk[1], blk[2], big=big)
    if mapped:
        import tempfile
        with tempfile.NamedTemporaryFile(suffix=".pcapng") as f:
            f.write(data)
            f.flush()
            got = concat(read_all(f.name, batch_packets=batch)[0])
    else:
        got = concat(read_all(io.BytesIO(data), batch_packets=batch, batch_bytes=300)[0])
    assert [g[1:] for g in got] == reference_read(data)
