"""SYN cookies per second: fastseg (AVX2 lanes and the scalar C path) against
siphashc called from Python and a pure-Python kernel transcription, on the
same random SYNs / final ACKs, IPv4 and IPv6.

10M rows per fastseg run (1M with FASTSEG_BENCH_QUICK=1); the Python peers
run on a prefix of the same rows (they are 1000x slower) and are reported as
rates.  The table at the end lists cookies/s for every peer.

    PYTHONPATH=src python3 -m pytest -q bench/bench_syncookies.py
"""
import os
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from fastseg import _cookies, syncookies

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from refs import siphash24  # noqa: E402

QUICK = os.environ.get("FASTSEG_BENCH_QUICK", "") not in ("", "0")
N_FAST = 1_000_000 if QUICK else 10_000_000
N_SIPHASHC = 20_000 if QUICK else 100_000
N_PYTHON = 500 if QUICK else 2_000
SECRET = bytes(range(1, 33))
M32 = 0xFFFFFFFF
RATES = {}


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    if not RATES:
        return
    lines = ["", f"SYN cookies/s ({N_FAST:,} rows for fastseg; "
                 f"AVX2 {'on' if _cookies.simd_available() else 'unavailable'})",
             f"{'peer':<24}{'op':<8}{'IPv4':>14}{'IPv6':>14}"]
    for peer, op in sorted({(p, o) for p, o, _ in RATES}):
        cells = [RATES.get((peer, op, v)) for v in (4, 6)]
        text = ["%12.2fM" % (c / 1e6) if c else "%13s" % "-" for c in cells]
        lines.append(f"{peer:<24}{op:<8}{text[0]:>14}{text[1]:>14}")
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print("\n".join(lines), flush=True)


def _rate(benchmark, n, peer, op, version):
    rate = n / benchmark.stats.stats.min
    RATES[(peer, op, version)] = rate
    benchmark.extra_info["cookies_per_s"] = rate
    benchmark.extra_info["rows"] = n


@pytest.fixture(scope="module", params=[4, 6], ids=["ipv4", "ipv6"])
def rows(request):
    """Random SYNs and the matching final ACKs (cookies from fastseg)."""
    version = request.param
    rng = np.random.default_rng(version)
    width = 4 if version == 4 else 16
    data = dict(
        version=version,
        saddr=rng.integers(0, 256, (N_FAST, width), dtype=np.uint8),
        daddr=rng.integers(0, 256, (N_FAST, width), dtype=np.uint8),
        sport=rng.integers(1024, 1 << 16, N_FAST, dtype=np.uint16),
        dport=rng.integers(0, 1 << 16, N_FAST, dtype=np.uint16),
        isn=rng.integers(0, 1 << 32, N_FAST, dtype=np.uint32),
        mss=rng.choice(np.array([536, 1220, 1360, 1440, 1460, 8960], np.uint16), N_FAST),
        count=np.full(N_FAST, 28_000_000, np.uint32),
    )
    cookies, _ = syncookies.encode(SECRET, data["saddr"], data["daddr"], data["sport"],
                                   data["dport"], data["isn"], data["mss"], data["count"])
    data["seq"] = data["isn"] + np.uint32(1)
    data["ack"] = cookies + np.uint32(1)
    return data


def _encode(d):
    return syncookies.encode(SECRET, d["saddr"], d["daddr"], d["sport"], d["dport"],
                             d["isn"], d["mss"], d["count"])


def _check(d):
    return syncookies.check(SECRET, d["saddr"], d["daddr"], d["sport"], d["dport"],
                            d["seq"], d["ack"], d["count"])


@pytest.mark.parametrize("simd", [True, False], ids=["avx2", "scalar"])
@pytest.mark.parametrize("op", ["encode", "check"])
def test_fastseg(benchmark, rows, op, simd):
    if simd and not _cookies.simd_available():
        pytest.skip("CPU without AVX2")
    benchmark.group = f"syncookies-{op}-ipv{rows['version']}"
    previous = _cookies.set_simd(simd)
    try:
        result = benchmark.pedantic(_encode if op == "encode" else _check, args=(rows,),
                                    rounds=3, iterations=1, warmup_rounds=1)
    finally:
        _cookies.set_simd(previous)
    if op == "check":
        assert (result != 0).all()
    _rate(benchmark, N_FAST, "fastseg avx2" if simd else "fastseg scalar C", op, rows["version"])


def _messages(d, n):
    """The two hashed messages of each row, built as the kernel lays them
    out (precomputed: only the hashing and the cookie arithmetic are timed)."""
    out0, out1 = [], []
    for i in range(n):
        s, t = d["saddr"][i].tobytes(), d["daddr"][i].tobytes()
        sp, dp, c = int(d["sport"][i]), int(d["dport"][i]), int(d["count"][i])
        if d["version"] == 4:
            # siphash_4u32's third word, sport << 16 | dport of the raw
            # __be16 fields, is dport then sport in network order
            head = s + t + struct.pack(">HH", dp, sp)
            out0.append(head + struct.pack("<I", 0))
            out1.append(head + struct.pack("<I", c))
        else:
            tail = struct.pack(">HH", sp, dp)
            out0.append(s + t + struct.pack("<I", 0) + tail)
            out1.append(s + t + struct.pack("<I", c) + tail)
    return out0, out1


def test_siphashc_from_python(benchmark, rows):
    siphashc = pytest.importorskip("siphashc")
    n = N_SIPHASHC
    m0, m1 = _messages(rows, n)
    isn = rows["isn"][:n].tolist()
    count = rows["count"][:n].tolist()
    key0, key1 = SECRET[:16], SECRET[16:]
    siphash = siphashc.siphash

    def run():
        return [(siphash(key0, a) + i + (c << 24) + ((siphash(key1, b) + 3) & 0xFFFFFF)) & M32
                for a, b, i, c in zip(m0, m1, isn, count)]

    benchmark.group = f"syncookies-encode-ipv{rows['version']}"
    benchmark.pedantic(run, rounds=3, iterations=1)
    _rate(benchmark, n, "siphashc (Python loop)", "encode", rows["version"])


def test_pure_python_reference(benchmark, rows):
    n = N_PYTHON
    m0, m1 = _messages(rows, n)
    isn = rows["isn"][:n].tolist()
    count = rows["count"][:n].tolist()
    key0, key1 = SECRET[:16], SECRET[16:]

    def run():
        return [(siphash24(key0, a) + i + (c << 24)
                 + ((siphash24(key1, b) + 3) & 0xFFFFFF)) & M32
                for a, b, i, c in zip(m0, m1, isn, count)]

    benchmark.group = f"syncookies-encode-ipv{rows['version']}"
    got = benchmark.pedantic(run, rounds=1, iterations=1)
    # the Python peers compute the same hashes as fastseg (mss index 3 rows)
    want, mss = _encode({k: (v[:n] if hasattr(v, "__len__") else v) for k, v in rows.items()})
    same = np.asarray(got, dtype=np.uint32)[mss == (1460 if rows["version"] == 4 else 8940)]
    assert (same == want[mss == (1460 if rows["version"] == 4 else 8940)]).all()
    _rate(benchmark, n, "pure Python reference", "encode", rows["version"])
