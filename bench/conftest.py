"""Shared benchmark inputs: synthetic captures made once per session.

FASTSEG_BENCH_QUICK=1 (CI) shrinks them so the whole bench runs in about a
minute; the README's table comes from the full sizes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICK = os.environ.get("FASTSEG_BENCH_QUICK", "") not in ("", "0")
HERE = Path(__file__).parent
REAL_PACKETS = 600_000 if QUICK else 6_000_000


def _synth(path, connections, **kw):
    from fastseg import synth
    return synth.generate(str(path), connections=connections, seed=7, **kw)


@pytest.fixture(scope="session")
def capture_1m(tmp_path_factory):
    """Short TCP connections, ~10 packets each: >= 1M packets (100k quick)."""
    path = tmp_path_factory.mktemp("bench") / "short.pcap"
    result = _synth(path, 12_000 if QUICK else 120_000)
    return path, result


@pytest.fixture(scope="session")
def real_capture(tmp_path_factory):
    """The real loopback HTTP capture of bench/data (tcpdump on lo, every TCP
    checksum left unfilled by offload) scaled to 6M packets (600k quick) by
    rewriting client addresses: (path, packets)."""
    path = tmp_path_factory.mktemp("real") / "lo_http_scaled.pcap"
    subprocess.run([sys.executable, str(HERE / "scale_capture.py"),
                    str(HERE / "data" / "lo_http.pcap.gz"), str(path),
                    "--packets", str(REAL_PACKETS)], check=True, capture_output=True)
    return path, _packets(path)


def _packets(path):
    import fastseg
    with fastseg.open(str(path)) as cap:
        return sum(len(b.offset) for b in cap.reader)
