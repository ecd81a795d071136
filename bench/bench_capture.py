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

QUICK = os.environ.get("FASTSEG_BENCH_QUICK", "") not in ("", "0")
N_PACKETS = 50_000 if QUICK else 1_000_000
PAYLOAD = 64


def build_pcap(n, payload=PAYLOAD):
    rec = np.dtype([("sec", "<u4"), ("frac", "<u4"), ("caplen", "<u4"), ("wirelen", "<u4"),
                    ("data", "u1", payload)])
    recs = np.zeros(n, rec)
    recs["sec"] = 1700000000 + np.arange(n) // 1000
    recs["frac"] = (np.arange(n) % 1000) * 1000
    recs["caplen"] = payload
    recs["wirelen"] = payload + 10
    recs["data"] = (np.arange(payload) + np.arange(n)[:, None]) & 0xFF
    head = np.array([0xA1B2C3D4, 0x00040002, 0, 0, 65535, 1], "<u4").tobytes()
    head = head[:4] + b"\x02\x00\x04\x00" + head[8:]
    return head + recs.tobytes()


def build_pcapng(n, payload=PAYLOAD):
    shb = np.array([0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0xFFFFFFFF, 0xFFFFFFFF, 28], "<u4").tobytes()
    idb = np.array([1, 20, 1, 65535, 20], "<u4").tobytes()
    blen = 32 + payload
    rec = np.dtype([("type", "<u4"), ("len", "<u4"), ("if_id", "<u4"), ("ts_hi", "<u4"),
                    ("ts_lo", "<u4"), ("caplen", "<u4"), ("wirelen", "<u4"),
                    ("data", "u1", payload), ("trailer", "<u4")])
    ticks = 1700000000_000000 + np.arange(n, dtype=np.uint64) * 7
    recs = np.zeros(n, rec)
    recs["type"] = 6
    recs["len"] = blen
    recs["trailer"] = blen
    recs["ts_hi"] = ticks >> 32
    recs["ts_lo"] = ticks & 0xFFFFFFFF
    recs["caplen"] = payload
    recs["wirelen"] = payload
    recs["data"] = (np.arange(payload) + np.arange(n)[:, None]) & 0xFF
    return shb + idb + recs.tobytes()


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
