"""Bulk TCP checksum verification against the memory-bandwidth baseline and
dpkt, same input, same run.

Input: ~100k full-size IPv4 segments (1448-byte payloads, 32-byte TCP headers)
laid out in memory as a pcap would hold them (16-byte record header +
Ethernet), checksums made valid with ``fastseg.fix_checksums``.

  fastseg   verify_checksums over every row            (TCP bytes / s)
  numpy     uint64 sum over the whole buffer            (memory read bandwidth)
  dpkt      dpkt.in_cksum(pseudo-header + segment) on a subset (TCP bytes / s)

Run: ``pytest bench/bench_checksum.py --benchmark-only`` (FASTSEG_BENCH_QUICK=1
for a small input), or ``python bench/bench_checksum.py`` for the table alone.
Targets: fastseg >= 40% of the numpy bandwidth and >= 50x dpkt.
"""
import os
import struct
import time

import numpy as np
import pytest

from fastseg.checksum import fix_checksums, verify_checksums
from fastseg.segments import Segments

QUICK = os.environ.get("FASTSEG_BENCH_QUICK", "") not in ("", "0")
N_SEGMENTS = 5_000 if QUICK else 100_000
N_DPKT = 500 if QUICK else 2_000
PAYLOAD = 1448
TCP_HDR = 32
RECORD = 16 + 14 + 20 + TCP_HDR + PAYLOAD


def build_segments(n=N_SEGMENTS, seed=1):
    """n IPv4/TCP segments with random payloads and valid checksums."""
    rng = np.random.default_rng(seed)
    data = np.frombuffer(rng.bytes(n * RECORD + 8), dtype=np.uint8).copy()
    base = np.arange(n, dtype=np.int64) * RECORD
    l3 = base + 16 + 14
    l4 = l3 + 20
    tcp_len = TCP_HDR + PAYLOAD

    def put(offsets, values):
        data[offsets] = values

    put(l3, 0x45)
    put(l3 + 1, 0)
    put(l3 + 2, (20 + tcp_len) >> 8)
    put(l3 + 3, (20 + tcp_len) & 0xFF)
    put(l3 + 6, 0x40)                  # DF, not a fragment
    put(l3 + 7, 0)
    put(l3 + 9, 6)
    put(l4 + 12, (TCP_HDR // 4) << 4)
    cols = {
        "ip_version": np.full(n, 4, np.uint8),
        "hdr_len": np.full(n, TCP_HDR, np.uint8),
        "payload_len": np.full(n, PAYLOAD, np.uint32),
        "fragment": np.zeros(n, np.bool_),
        "_l3_off": l3,
        "_l4_off": l4,
        "_l3_caplen": np.full(n, 20 + tcp_len, np.uint32),
    }
    seg = Segments(cols, data)
    assert fix_checksums(data, seg) == n
    return seg


@pytest.fixture(scope="module")
def segments():
    return build_segments()


def tcp_bytes(n):
    return n * (TCP_HDR + PAYLOAD)


def numpy_sum(seg):
    usable = len(seg.data) // 8 * 8
    return seg.data[:usable].view(np.uint64).sum()


def dpkt_verify(seg, rows):
    """The usual Python way: dpkt.in_cksum over pseudo-header + segment."""
    import dpkt

    raw = seg.data
    good = 0
    for i in rows:
        l3, l4 = int(seg["_l3_off"][i]), int(seg["_l4_off"][i])
        tcp_len = int(seg["hdr_len"][i]) + int(seg["payload_len"][i])
        ip = raw[l3:l3 + 20].tobytes()
        pseudo = ip[12:20] + struct.pack(">BBH", 0, 6, tcp_len)
        good += dpkt.in_cksum(pseudo + raw[l4:l4 + tcp_len].tobytes()) == 0
    return good


_RESULTS = {}


def test_verify_fastseg(benchmark, segments):
    status = benchmark(verify_checksums, segments)
    assert (status == 0).all()
    _RESULTS["fastseg"] = tcp_bytes(len(segments)) / benchmark.stats.stats.min


def test_numpy_sum_baseline(benchmark, segments):
    benchmark(numpy_sum, segments)
    _RESULTS["numpy"] = (len(segments.data) // 8 * 8) / benchmark.stats.stats.min


def test_dpkt_in_cksum(benchmark, segments):
    pytest.importorskip("dpkt")
    rows = range(min(N_DPKT, len(segments)))
    good = benchmark(dpkt_verify, segments, rows)
    assert good == len(rows)
    _RESULTS["dpkt"] = tcp_bytes(len(rows)) / benchmark.stats.stats.min


def test_ratios(benchmark, capsys):
    """Not a measurement: prints the table of the three above."""
    if not {"fastseg", "numpy", "dpkt"} <= set(_RESULTS):
        pytest.skip("run the whole file to get the ratios")
    benchmark.extra_info.update({k + "_bytes_per_s": v for k, v in _RESULTS.items()})
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    with capsys.disabled():
        print("\n" + table(_RESULTS))


def table(results):
    lines = [f"{name:>8}: {rate / 1e9:7.2f} GB/s" for name, rate in results.items()]
    lines.append(f"fastseg / numpy sum = {results['fastseg'] / results['numpy']:.0%} "
                 f"(target >= 40%)")
    lines.append(f"fastseg / dpkt      = {results['fastseg'] / results['dpkt']:.0f}x "
                 f"(target >= 50x)")
    return "\n".join(lines)


def _best(func, *args, rounds=5):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        func(*args)
        best = min(best, time.perf_counter() - t0)
    return best


if __name__ == "__main__":
    seg = build_segments()
    rows = range(N_DPKT)
    print(f"{len(seg)} segments, {tcp_bytes(len(seg)) / 1e6:.0f} MB of TCP")
    print(table({
        "fastseg": tcp_bytes(len(seg)) / _best(verify_checksums, seg),
        "numpy": (len(seg.data) // 8 * 8) / _best(numpy_sum, seg),
        "dpkt": tcp_bytes(N_DPKT) / _best(dpkt_verify, seg, rows, rounds=2),
    }))
