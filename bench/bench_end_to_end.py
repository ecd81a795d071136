"""What a user runs, end to end (process start included), next to tshark
-q -z conv,tcp and tcptrace -n -l on the same file in the same run, with each
process's peak RSS and CPU time.

Two inputs: the real loopback HTTP capture of bench/data (tcpdump on lo, every
TCP checksum left unfilled by offload) scaled to 6M packets by rewriting client
addresses (bench/scale_capture.py keeps the checksum pattern), and a synthetic
capture of short connections.  FASTSEG_BENCH_QUICK=1 shrinks both."""
import subprocess
import sys

import pytest

from benchutil import tool


@pytest.fixture(scope="session")
def synthetic_capture(capture_1m):
    path, result = capture_1m
    return path, result.packets


INPUTS = {"real": "real_capture", "synthetic": "synthetic_capture"}


def _measured(args, out_dir):
    """Run ``args`` under /usr/bin/time; returns (peak RSS MB, CPU seconds)."""
    stats = out_dir / "time.txt"
    subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", str(stats), *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rss_kb, user, system = stats.read_text().split()[-3:]
    return int(rss_kb) / 1024, float(user) + float(system)


COMMANDS = {
    "fastseg summary --json -j 1": lambda f, o: [sys.executable, "-m", "fastseg", "summary",
                                                 "--json", "-j", "1", f],
    "fastseg summary --json -j 2": lambda f, o: [sys.executable, "-m", "fastseg", "summary",
                                                 "--json", "-j", "2", f],
    "fastseg conns --format zeek": lambda f, o: [sys.executable, "-m", "fastseg", "conns",
                                                 "--format", "zeek", "-o", str(o / "c.log"), f],
    "fastseg segments --format csv": lambda f, o: [sys.executable, "-m", "fastseg", "segments",
                                                   "--format", "csv", "-o", str(o / "s.csv"), f],
    "tshark -q -z conv,tcp": lambda f, o: [tool("tshark"), "-n", "-q", "-r", f, "-z", "conv,tcp"],
    "tcptrace -n -l": lambda f, o: [tool("tcptrace"), "-n", "-l", f],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("which", list(INPUTS))
def test_end_to_end(benchmark, request, tmp_path, which, command):
    path, packets = request.getfixturevalue(INPUTS[which])
    args = COMMANDS[command](str(path), tmp_path)
    benchmark.group = f"end to end, {which} capture ({packets / 1e6:.1f}M packets)"
    benchmark.name = command
    peaks = []

    def go():
        peaks.append(_measured(args, tmp_path))
    benchmark.pedantic(go, rounds=1, iterations=1)
    rss, cpu = peaks[-1]
    benchmark.extra_info.update(items=packets, unit="packets", peak_rss_mb=round(rss, 1),
                                cpu_s=round(cpu, 2), input=which)
