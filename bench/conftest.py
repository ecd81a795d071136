"""Shared benchmark inputs: synthetic captures made once per session.

FASTSEG_BENCH_QUICK=1 (CI) shrinks them so the whole bench runs in about a
minute; the README's table comes from the full sizes."""
import os
import pytest

QUICK = os.environ.get("FASTSEG_BENCH_QUICK", "") not in ("", "0")


def _synth(path, connections, **kw):
    from fastseg import synth
    return synth.generate(str(path), connections=connections, seed=7, **kw)


@pytest.fixture(scope="session")
def capture_1m(tmp_path_factory):
    """Short TCP connections, ~10 packets each: >= 1M packets (100k quick)."""
    path = tmp_path_factory.mktemp("bench") / "short.pcap"
    result = _synth(path, 12_000 if QUICK else 120_000)
    return path, result
