"""Read + parse a capture into all segment columns: fastseg against dpkt and
scapy (on a prefix: their rate is per packet) and a memory-bandwidth baseline
(numpy sum over the same file bytes), on one synthetic capture of >= 1M
packets (100k with FASTSEG_BENCH_QUICK=1)."""
import numpy as np
import pytest

import fastseg

GROUP = "read+parse"


def _prefix(path, n, tmp_path_factory):
    """The first n packets of the capture, as a file of their own."""
    import dpkt
    out = tmp_path_factory.mktemp("prefix") / f"prefix{n}.pcap"
    with open(path, "rb") as src, open(out, "wb") as dst:
        w = dpkt.pcap.Writer(dst)
        for i, (ts, buf) in enumerate(dpkt.pcap.Reader(src)):
            if i == n:
                break
            w.writepkt(buf, ts)
    return out


@pytest.fixture(scope="module")
def dpkt_prefix(capture_1m, tmp_path_factory):
    return _prefix(capture_1m[0], 100_000, tmp_path_factory)


@pytest.fixture(scope="module")
def scapy_prefix(capture_1m, tmp_path_factory):
    return _prefix(capture_1m[0], 5_000, tmp_path_factory)


@pytest.mark.benchmark(group=GROUP)
def test_fastseg_read_segments(benchmark, capture_1m):
    path, result = capture_1m
    benchmark.extra_info.update(items=result.packets, unit="packets")
    seg = benchmark.pedantic(fastseg.read_segments, args=(str(path),), rounds=3, iterations=1)
    assert seg.stats.packets == result.packets == len(seg)


@pytest.mark.benchmark(group=GROUP)
def test_numpy_sum_file_bytes(benchmark, capture_1m):
    path, result = capture_1m
    data = np.fromfile(path, dtype=np.uint8)
    words = data[:len(data) // 8 * 8].view(np.uint64)
    benchmark.extra_info.update(items=result.packets, unit="packets", bytes=len(data))
    benchmark.pedantic(np.sum, args=(words,), rounds=5, iterations=1)


def _dpkt_parse(path):
    import dpkt
    rows = 0
    with open(path, "rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP):
                continue
            fields = (ts, ip.src, ip.dst, tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags,
                      tcp.win, tcp.sum, tcp.urp, len(tcp.data))
            for opt, val in dpkt.tcp.parse_opts(tcp.opts):
                fields += (opt, val)
            rows += 1
    return rows


@pytest.mark.benchmark(group=GROUP)
def test_dpkt_parse(benchmark, dpkt_prefix):
    benchmark.extra_info.update(items=100_000, unit="packets")
    rows = benchmark.pedantic(_dpkt_parse, args=(dpkt_prefix,), rounds=1, iterations=1)
    assert rows == 100_000


def _scapy_parse(path):
    from scapy.all import TCP, PcapReader
    rows = 0
    for pkt in PcapReader(str(path)):
        if TCP in pkt:
            t = pkt[TCP]
            _ = (t.sport, t.dport, t.seq, t.ack, t.flags, t.window, t.options)
            rows += 1
    return rows


@pytest.mark.benchmark(group=GROUP)
def test_scapy_parse(benchmark, scapy_prefix):
    pytest.importorskip("scapy")
    benchmark.extra_info.update(items=5_000, unit="packets")
    rows = benchmark.pedantic(_scapy_parse, args=(scapy_prefix,), rounds=1, iterations=1)
    assert rows == 5_000
