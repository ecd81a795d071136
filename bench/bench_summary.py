"""`fastseg summary` end to end against tshark -q -z conv,tcp and tcptrace -n -l
on the same synthetic capture."""
import json
import subprocess
import sys

import pytest

from benchutil import run_tool, tool


@pytest.fixture(scope="module")
def summary_input(capture_1m):
    return capture_1m


def test_summary_fastseg(benchmark, summary_input):
    path, result = summary_input
    benchmark.group = "summary end to end"
    benchmark.extra_info.update(items=result.packets, unit="packets")

    def go():
        return subprocess.run([sys.executable, "-m", "fastseg", "summary", "--json", str(path)],
                              check=True, capture_output=True, text=True).stdout
    out = benchmark.pedantic(go, rounds=3, iterations=1)
    assert json.loads(out)["capture"]["packets"] == result.packets


def test_summary_tshark_conv_tcp(benchmark, summary_input):
    path, result = summary_input
    tshark = tool("tshark")
    benchmark.group = "summary end to end"
    benchmark.extra_info.update(items=result.packets, unit="packets")
    benchmark.pedantic(run_tool, args=([tshark, "-n", "-q", "-r", str(path), "-z", "conv,tcp"],),
                       rounds=1, iterations=1)


def test_summary_tcptrace(benchmark, summary_input):
    path, result = summary_input
    tcptrace = tool("tcptrace")
    benchmark.group = "summary end to end"
    benchmark.extra_info.update(items=result.packets, unit="packets")
    benchmark.pedantic(run_tool, args=([tcptrace, "-n", "-l", str(path)],), rounds=1, iterations=1)
