"""Capture read throughput: fastseg's record scanners vs the cost of touching
the same bytes once (a numpy sum over the file) and vs dpkt's reader.

Input: a pcap / pcapng of 1M packets (50k with FASTSEG_BENCH_QUICK=1) built
with numpy.  Run: ``PYTHONPATH=src pytest bench/bench_capture.py``, or
``PYTHONPATH=src python3 bench/bench_capture.py`` for a one-line table.
"""
import gzip
import os
import time

import numpy as np
import pytest

from fastseg.capture import open_capture
from fastseg.synth import capture_bytes

QUICK = os.environ.get("FASTSEG_BENCH_QUICK", "") not in ("", "0")
N_PACKETS = 50_000 if QUICK else 1_000_000
PAYLOAD = 64


def _frames(n, payload):
    return ((np.arange(payload) + np.arange(n)[:, None]) & 0xFF).astype(np.uint8)


def build_pcap(n, payload=PAYLOAD):
    i = np.arange(n, dtype=np.int64)
    ts_ns = (1700000000 + i // 1000) * 10**9 + (i % 1000) * 10**6
    return capture_bytes(_frames(n, payload), ts_ns, wirelen=payload + 10, snaplen=65535)


def build_pcapng(n, payload=PAYLOAD):
    ts_ns = (1700000000_000000 + np.arange(n, dtype=np.int64) * 7) * 1000
    return capture_bytes(_frames(n, payload), ts_ns, format="pcapng", snaplen=65535)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    out = {}
    for name, data in (("pcap", build_pcap(N_PACKETS)), ("pcapng", build_pcapng(N_PACKETS))):
        path = root / f"{N_PACKETS}.{name}"
        path.write_bytes(data)
        out[name] = path
    gz = root / f"{N_PACKETS}.pcap.gz"
    gz.write_bytes(gzip.compress(out["pcap"].read_bytes(), compresslevel=1))
    out["pcap.gz"] = gz
    return out


def read_fastseg(path, **kw):
    n = 0
    with open_capture(path, **kw) as reader:
        for batch in reader:
            n += len(batch)
    return n


def numpy_sum(path):
    """Touch every byte once: the floor for anything that reads the file."""
    return int(np.fromfile(path, np.uint8).sum(dtype=np.uint64))


def numpy_sum_mapped(path):
    """The same sum over a memory map (no copy into the process)."""
    return int(np.memmap(path, np.uint8, mode="r").sum(dtype=np.uint64))


def read_dpkt(path):
    import dpkt
    n = 0
    with open(path, "rb") as f:
        for _ts, _buf in dpkt.pcap.Reader(f):
            n += 1
    return n


@pytest.mark.benchmark(group="capture-read")
@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_fastseg_mmap(benchmark, files, kind):
    assert benchmark(read_fastseg, files[kind]) == N_PACKETS


@pytest.mark.benchmark(group="capture-read")
def test_fastseg_streamed(benchmark, files):
    assert benchmark(read_fastseg, files["pcap"], use_mmap=False) == N_PACKETS


@pytest.mark.benchmark(group="capture-read")
def test_fastseg_gzip(benchmark, files):
    assert benchmark.pedantic(read_fastseg, (files["pcap.gz"],), rounds=1) == N_PACKETS


@pytest.mark.benchmark(group="capture-read")
def test_numpy_sum_same_bytes(benchmark, files):
    benchmark(numpy_sum, files["pcap"])


@pytest.mark.benchmark(group="capture-read")
def test_numpy_sum_same_bytes_mapped(benchmark, files):
    benchmark(numpy_sum_mapped, files["pcap"])


@pytest.mark.benchmark(group="capture-read")
def test_dpkt_reader(benchmark, files):
    pytest.importorskip("dpkt")
    assert benchmark.pedantic(read_dpkt, (files["pcap"],), rounds=1) == N_PACKETS


def _best(fn, *args, repeat=3, **kw):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return best


if __name__ == "__main__":
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, data in (("pcap", build_pcap(N_PACKETS)), ("pcapng", build_pcapng(N_PACKETS))):
            paths[name] = os.path.join(tmp, "f." + name)
            with open(paths[name], "wb") as f:
                f.write(data)
        gz = os.path.join(tmp, "f.pcap.gz")
        with open(paths["pcap"], "rb") as src, open(gz, "wb") as dst:
            dst.write(gzip.compress(src.read(), compresslevel=1))
        size = os.path.getsize(paths["pcap"])
        rows = [
            ("fastseg pcap (mmap)", _best(read_fastseg, paths["pcap"]), size),
            ("fastseg pcapng (mmap)", _best(read_fastseg, paths["pcapng"]),
             os.path.getsize(paths["pcapng"])),
            ("fastseg pcap (streamed)", _best(read_fastseg, paths["pcap"], use_mmap=False), size),
            ("fastseg pcap.gz", _best(read_fastseg, gz, repeat=1), size),
            ("numpy sum (same pcap bytes)", _best(numpy_sum, paths["pcap"]), size),
            ("numpy sum (memmap)", _best(numpy_sum_mapped, paths["pcap"]), size),
        ]
        try:
            import dpkt  # noqa: F401
            rows.append(("dpkt pcap.Reader", _best(read_dpkt, paths["pcap"], repeat=1), size))
        except ImportError:
            pass
        print(f"{N_PACKETS} packets, {size / 1e6:.0f} MB pcap")
        for name, sec, nbytes in rows:
            print(f"{name:30s} {sec * 1e3:8.1f} ms  {N_PACKETS / sec / 1e6:7.2f} Mpkt/s  "
                  f"{nbytes / sec / 1e9:6.2f} GB/s")
