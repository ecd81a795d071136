"""Hostile captures: any bytes end in accounted-for packets or a CaptureError.

Random mutations of real (small, valid) captures - bit flips, truncations,
spliced records, huge caplen, zero-length blocks, pcapng option loops, lying
block lengths, damaged gzip - must always end either in a result whose
accounting holds (every packet record counted once as tcp, non_tcp or
malformed; one segment per TCP packet) or in a ``CaptureError`` naming a
byte offset.  Never another exception type, a crash, a hang or a
MemoryError.  The contract itself is ``fuzz/pipeline.check_capture`` (shared
with the atheris harnesses); the captures come from ``fuzz/captures.py``.

The suite runs at least 5,000 mutated captures (sum of ``max_examples``
below) and then the resource-limit tests: a record claiming a 4 GB caplen,
a pcapng block claiming 0xFFFFFFF0 bytes, and a 1 GB gzip bomb, each read
with a measured memory bound.
"""
import faulthandler
import gzip
import os
import struct
import subprocess
import sys
import time
import tracemalloc
import warnings
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

ROOT = Path(__file__).resolve().parents[1]
if not (ROOT / "fuzz" / "pipeline.py").exists():
    # tests copied away from the checkout (e.g. run against an installed wheel)
    pytest.skip("needs the fuzz/ directory of the source tree", allow_module_level=True)
sys.path.insert(0, str(ROOT / "fuzz"))

import captures  # noqa: E402
import pipeline  # noqa: E402

import fastseg  # noqa: E402
from fastseg import CaptureError  # noqa: E402


SAMPLES = captures.sample_captures()
NAMES = sorted(SAMPLES)
PCAPNG = [n for n in NAMES if SAMPLES[n].fmt == "pcapng"]
HUGE = (0xFFFFFFFF, 0xFFFFFFF0, 0x80000000, 0x7FFFFFFF, (16 << 20) + 1, 0x01000000, 0x10000)
LIES = (0, 4, 8, 12, 16, 0xFFFFFFF0, 0xFFFFFFFC, 0x7FFFFFFC, (64 << 20) + 4, 0x100000)

COMMON = dict(deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))


def _put32(data, pos, value, big):
    if 0 <= pos <= len(data) - 4:
        data[pos:pos + 4] = struct.pack(">I" if big else "<I", value & 0xFFFFFFFF)


# -- mutation operators: each takes (bytearray, Built, draw params) -------------
def m_bitflip(buf, built, pos, bit):
    if buf:
        buf[pos % len(buf)] ^= 1 << bit


def m_truncate(buf, built, pos, _):
    del buf[pos % (len(buf) + 1):]


def m_splice(buf, built, pos, k):
    """Copy one whole record of another capture into a record boundary."""
    other = SAMPLES[NAMES[k % len(NAMES)]]
    if not other.records or not built.records:
        return
    i = pos % len(other.records)
    start = other.records[i]
    end = other.records[i + 1] if i + 1 < len(other.records) else len(other.data)
    at = built.records[k % len(built.records)]
    buf[at:at] = other.data[start:end]


def m_duplicate_range(buf, built, pos, k):
    if buf:
        a = pos % len(buf)
        b = min(len(buf), a + 1 + k * 13)
        buf[a:a] = buf[a:b]


def m_huge_caplen(buf, built, pos, k):
    if not built.records:
        return
    rec = built.records[pos % len(built.records)]
    value = HUGE[k % len(HUGE)]
    if built.fmt == "pcap":
        _put32(buf, rec + 8, value, built.big)              # caplen
        if k & 8:
            _put32(buf, rec + 12, value, built.big)         # wirelen too
    else:
        btype = struct.unpack_from(">I" if built.big else "<I", buf, rec)[0] if rec + 4 <= len(buf) else 0
        _put32(buf, rec + (8 if btype == 3 else 20), value, built.big)


def m_block_length_lie(buf, built, pos, k):
    if built.fmt != "pcapng":
        return m_huge_caplen(buf, built, pos, k)
    blk = built.blocks[pos % len(built.blocks)]
    value = LIES[k % len(LIES)]
    if k & 16 and blk + 8 <= len(buf):          # the trailing copy lies instead
        blen = struct.unpack_from(">I" if built.big else "<I", buf, blk + 4)[0]
        _put32(buf, blk + blen - 4, value, built.big)
    else:
        _put32(buf, blk + 4, value, built.big)


def m_zero_length_block(buf, built, pos, k):
    """Insert a block whose length is 0 (or a bare 12-byte block) at a boundary."""
    e = ">" if built.big else "<"
    btype = (6, 1, 3, 2, 0x0A0D0D0A, 0xBAD, 5, 0xDEAD)[k % 8]
    if built.fmt == "pcapng":
        at = built.blocks[pos % len(built.blocks)]
        blen = 0 if k & 8 else 12
        buf[at:at] = struct.pack(e + "III", btype, blen, blen)
    elif built.records:
        at = built.records[pos % len(built.records)]
        buf[at:at] = struct.pack(e + "IIII", 0, 0, 0, 0)    # an empty pcap record


def m_option_loop(buf, built, pos, k):
    """A block whose options never end or overrun: zero-length options with no
    opt_endofopt, a 0xFFFF option length, options running past the block."""
    if built.fmt != "pcapng":
        return m_zero_length_block(buf, built, pos, k)
    e = ">" if built.big else "<"
    kind = k % 4
    if kind == 0:
        opts = struct.pack(e + "HH", 1, 0) * (64 + pos % 512)      # no end, all empty
    elif kind == 1:
        opts = struct.pack(e + "HH", 9, 0xFFFF) + b"\x09\0\0\0"    # length past the block
    elif kind == 2:
        opts = struct.pack(e + "HH", 0xFFFF, 0xFFFC) * 4
    else:
        opts = struct.pack(e + "HHB3x", 9, 1, 0xFF) + struct.pack(e + "HH", 14, 8) + b"\xff" * 8
    which = pos % 3
    if which == 0:
        body = struct.pack(e + "HHI", 1, 0, 0) + opts                 # IDB
        btype = 1
    elif which == 1:
        body = struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1) + opts   # SHB
        btype = 0x0A0D0D0A
    else:
        body = struct.pack(e + "IIIII", 0, 0, 0, 0, 0) + opts        # EPB
        btype = 6
    block = struct.pack(e + "II", btype, 12 + len(body)) + body + struct.pack(e + "I", 12 + len(body))
    at = built.blocks[(pos // 3) % len(built.blocks)] if pos % 5 else len(buf)
    buf[at:at] = block


OPERATORS = (m_bitflip, m_truncate, m_splice, m_duplicate_range, m_huge_caplen,
             m_block_length_lie, m_zero_length_block, m_option_loop)

op_params = st.tuples(st.integers(0, len(OPERATORS) - 1), st.integers(0, 1 << 20),
                      st.integers(0, 31))


def mutate(name, ops, compress=False):
    built = SAMPLES[name]
    buf = bytearray(built.data)
    for which, pos, k in ops:
        OPERATORS[which](buf, built, pos, k if OPERATORS[which] is not m_bitflip else k % 8)
    data = bytes(buf)
    return gzip.compress(data, mtime=0) if compress else data


def check(data, mode, tmp_dir):
    """The contract; mode 0: stream with tiny batches, 1: memory map, 2: one big batch."""
    if mode == 1:
        return pipeline.check_capture(data, mmap_dir=tmp_dir)
    if mode == 2:
        return pipeline.check_capture(data, batch_packets=1 << 18, batch_bytes=1 << 22)
    return pipeline.check_capture(data, batch_packets=3, batch_bytes=64)


@pytest.fixture(scope="module")
def shm_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("hostile"))


HANG_SECONDS = 60


@pytest.fixture(autouse=True)
def hang_guard():
    """A test stuck (e.g. a kernel looping without the GIL) dumps every
    thread's stack and exits the run instead of hanging CI."""
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@settings(max_examples=2500, **COMMON)
@given(name=st.sampled_from(NAMES), ops=st.lists(op_params, min_size=1, max_size=4),
       mode=st.integers(0, 2))
def test_mutated_captures_are_accounted_or_rejected_with_offset(name, ops, mode, shm_dir):
    data = mutate(name, ops)
    packets, segments, conns, error = check(data, mode, shm_dir)
    if error is not None:
        assert error.offset <= len(data)


@settings(max_examples=1200, **COMMON)
@given(name=st.sampled_from(NAMES),
       ops=st.lists(st.tuples(st.sampled_from([4, 5, 6, 7]), st.integers(0, 1 << 20),
                              st.integers(0, 31)), min_size=1, max_size=3),
       mode=st.integers(0, 2))
def test_lying_lengths_and_option_loops_end_in_capture_error_or_accounting(name, ops, mode, shm_dir):
    data = mutate(name, ops)
    packets, segments, conns, error = check(data, mode, shm_dir)
    if error is not None:
        assert error.offset <= len(data)
        # whole records before the damage are kept
        assert packets <= len(SAMPLES[name].records) + len(ops) * 520


@settings(max_examples=800, **COMMON)
@given(name=st.sampled_from(NAMES), ops=st.lists(op_params, min_size=0, max_size=3),
       gz_flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)), max_size=2),
       cut=st.one_of(st.none(), st.integers(0, 1 << 20)))
def test_damaged_gzip_streams_are_accounted_or_rejected(name, ops, gz_flips, cut):
    data = bytearray(mutate(name, ops, compress=True))
    for pos, bit in gz_flips:
        data[pos % len(data)] ^= 1 << bit
    if cut is not None:
        del data[cut % (len(data) + 1):]
    pipeline.check_capture(bytes(data), batch_packets=5, batch_bytes=256)


@settings(max_examples=600, **COMMON)
@given(data=st.binary(max_size=300), prefix=st.sampled_from(
    [b"", b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", b"\x0a\x0d\x0d\x0a", b"\x1f\x8b",
     b"\xa1\xb2\x3c\x4d", b"\x28\xb5\x2f\xfd"]))
def test_random_bytes_after_a_magic_are_accounted_or_rejected(data, prefix):
    pipeline.check_capture(prefix + data, batch_packets=2, batch_bytes=32)


def _read_segments_or_skip(path):
    try:
        return fastseg.read_segments(path), None
    except CaptureError as err:
        return err.partial, err


@settings(max_examples=500, **COMMON)
@given(name=st.sampled_from(NAMES), ops=st.lists(op_params, min_size=1, max_size=3))
def test_read_segments_agrees_with_tiny_batches_on_mutated_captures(name, ops, shm_dir):
    """The same damaged file read whole (read_segments, default batches, memory
    map) and in 3-packet / 64-byte batches from a stream: same packets, same
    segments, same error offset; the partial result of an error is accounted."""
    data = mutate(name, ops)
    path = os.path.join(shm_dir, "whole.pcap")
    with open(path, "wb") as f:
        f.write(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastseg.TruncatedCaptureWarning)
        segs, err = _read_segments_or_skip(path)
    packets, n_segs, _, small_err = pipeline.check_capture(data, batch_packets=3, batch_bytes=64)
    assert (err is None) == (small_err is None)
    if err is not None:
        assert err.offset == small_err.offset
        if segs is None:                            # the file header itself was bad
            assert packets == 0
            return
    pipeline.check_segments(segs, segs.stats, packets)
    assert len(segs) == n_segs


def test_unmutated_samples_read_every_packet(shm_dir):
    """The mutation bases themselves are valid: every record read, no error."""
    for name, built in SAMPLES.items():
        for mode in (0, 1, 2):
            packets, segments, _, error = check(built.data, mode, shm_dir)
            assert error is None, (name, error)
            assert packets == len(built.records), name
            if pipeline.PARSE_BATCH is not None:
                assert segments == built.tcp, name


# -- resource limits ----------------------------------------------------------
def _pcap_with_huge_record(big=False):
    built = captures.pcap(captures.frames(captures.ETH)[:3], big=big)
    e = ">" if big else "<"
    bad = struct.pack(e + "IIII", 1700000001, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"\0" * 64
    return built.data + bad, len(built.data)


def _traced_peak(func):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = func()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


@pytest.mark.parametrize("via", ["stream", "mmap"])
@pytest.mark.parametrize("big", [False, True])
def test_record_claiming_4gb_caplen_is_damage_not_an_allocation(tmp_path, via, big):
    data, bad_at = _pcap_with_huge_record(big)
    mmap_dir = str(tmp_path) if via == "mmap" else None
    (packets, _, _, error), peak = _traced_peak(
        lambda: pipeline.check_capture(data, mmap_dir=mmap_dir, batch_bytes=1 << 20))
    assert packets == 3                                  # the records before it are kept
    assert isinstance(error, CaptureError)
    assert error.offset == bad_at
    assert str(0xFFFFFFF0) in error.reason
    assert peak < 16 << 20, f"peak traced allocation {peak} bytes"


@pytest.mark.parametrize("via", ["stream", "mmap"])
@pytest.mark.parametrize("big", [False, True])
def test_pcapng_block_length_0xfffffff0_is_damage_not_an_allocation(tmp_path, via, big):
    built = captures.pcapng([(captures.ETH, None)], [(0, p) for p in captures.frames(captures.ETH)[:3]],
                            big=big, extra_blocks=False)
    e = ">" if big else "<"
    bad = struct.pack(e + "II", 6, 0xFFFFFFF0) + b"\0" * 64
    data = built.data + bad
    mmap_dir = str(tmp_path) if via == "mmap" else None
    (packets, _, _, error), peak = _traced_peak(
        lambda: pipeline.check_capture(data, mmap_dir=mmap_dir, batch_bytes=1 << 20))
    assert packets == 3
    assert isinstance(error, CaptureError)
    assert error.offset == len(built.data)
    assert str(0xFFFFFFF0) in error.reason
    assert peak < 16 << 20, f"peak traced allocation {peak} bytes"


@pytest.mark.parametrize("blen", [0, 4, 8])
def test_pcapng_block_shorter_than_a_header_is_damage_at_its_offset(blen):
    built = captures.pcapng([(captures.ETH, None)], [(0, p) for p in captures.frames(captures.ETH)[:4]],
                            extra_blocks=False)
    data = built.data + struct.pack("<III", 6, blen, blen) + built.data[built.records[0]:]
    packets, _, _, error = pipeline.check_capture(data)
    assert packets == 4
    assert isinstance(error, CaptureError)
    assert error.offset == len(built.data)


def test_two_hundred_thousand_empty_blocks_read_in_linear_time():
    """A chain of minimal 12-byte unknown blocks: each is skipped by its length."""
    built = captures.pcapng([(captures.ETH, None)], [(0, p) for p in captures.frames(captures.ETH)[:2]],
                            extra_blocks=False)
    filler = struct.pack("<III", 0x0BAD0000, 12, 12) * 200_000
    first = built.records[0]
    data = built.data[:first] + filler + built.data[first:]
    start = time.perf_counter()
    packets, _, _, error = pipeline.check_capture(data, batch_packets=1 << 16, batch_bytes=1 << 20)
    assert error is None and packets == 2
    assert time.perf_counter() - start < 10


def test_pcapng_option_list_without_end_is_bounded(tmp_path):
    """An IDB with 16,000 empty options and no opt_endofopt: read in linear time."""
    e = "<"
    opts = struct.pack(e + "HH", 1, 0) * 16000
    body = struct.pack(e + "HHI", 1, 0, 0) + opts
    idb = struct.pack(e + "II", 1, 12 + len(body)) + body + struct.pack(e + "I", 12 + len(body))
    built = captures.pcapng([(captures.ETH, None)], [(0, p) for p in captures.frames(captures.ETH)],
                            extra_blocks=False)
    first_idb = built.blocks[1]
    data = built.data[:first_idb] + idb + built.data[first_idb:]
    packets, _, _, error = pipeline.check_capture(data, batch_bytes=1 << 20)
    # the extra IDB shifts interface numbering, but nothing is lost or crashes
    assert packets == len(built.records) or isinstance(error, CaptureError)


GZIP_BOMB_GB = 1 << 30
RECORD = 16 << 20           # CAPLEN_MAX: the largest record the reader accepts


def _write_gzip_bomb(path):
    """pcap header + 64 records of 16 MiB of zeros (1 GiB + 1 KiB decompressed),
    compressed as one gzip member from a streaming compressor: 1 MiB of zeros
    at a time, never the whole thing in memory."""
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    n_records = GZIP_BOMB_GB // RECORD
    with open(path, "wb") as f:
        f.write(comp.compress(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, RECORD, 1)))
        for i in range(n_records):
            f.write(comp.compress(struct.pack("<IIII", 1700000000 + i, 0, RECORD, RECORD)))
            for _ in range(RECORD // len(zeros)):
                f.write(comp.compress(zeros))
        f.write(comp.flush())
    return n_records


_BOMB_READER = r"""
import resource, sys, warnings
import fastseg
from fastseg import open_capture
def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = rss()
packets = 0
warnings.simplefilter("error")
with open_capture(sys.argv[1], batch_bytes=8 << 20) as reader:
    decompressed = 0
    for batch in reader:
        packets += len(batch)
        decompressed = reader.bytes_read
print(packets, decompressed, rss() - base)
"""


def test_gzip_bomb_streams_in_bounded_memory(tmp_path):
    path = tmp_path / "bomb.pcap.gz"
    n_records = _write_gzip_bomb(path)
    assert path.stat().st_size < 8 << 20                 # > 100x amplification
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [p for p in (str(Path(fastseg.__file__).parents[1]), os.environ.get("PYTHONPATH")) if p]))
    out = subprocess.run([sys.executable, "-c", _BOMB_READER, str(path)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    packets, decompressed, growth = map(int, out.stdout.split())
    assert packets == n_records
    assert decompressed == 24 + n_records * (16 + RECORD)
    # 1 GiB went through; resident memory grew by at most a few batches
    assert growth < 160 << 20, f"peak RSS grew by {growth >> 20} MiB"
