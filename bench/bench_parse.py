"""Parsing speed: fastseg's bulk parser vs dpkt on the same short packets.

The input is built in memory (no file I/O): a mix of Ethernet/IPv4 SYNs with
options, Ethernet/IPv4 ACKs with timestamps and Ethernet/IPv6 ACKs, every
packet on its own port pair with a valid TCP checksum.  Both peers extract
the same fields (addresses, ports, seq/ack, flags, window, options);
fastseg also verifies every IPv4 and TCP checksum and hashes the flow key.
"""
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import refs as pb  # noqa: E402

from fastseg import _parse  # noqa: E402

QUICK = os.environ.get("FASTSEG_BENCH_QUICK", "") not in ("", "0")
N_PACKETS = 50_000 if QUICK else 1_000_000
N_DPKT = 5_000 if QUICK else 50_000   # dpkt is timed on a prefix: its rate is per packet

RATES = {}


def _templates():
    syn = pb.ether(pb.ipv4("10.1.0.1", "10.2.0.1", pb.tcp(
        flags=0x002, options=pb.opt_mss(1460) + pb.opt_sack_perm() + pb.opt_ts(1, 0)
        + pb.opt_nop() + pb.opt_wscale(7))))
    ack4 = pb.ether(pb.ipv4("10.2.0.1", "10.1.0.1", pb.tcp(
        sport=80, dport=40000, flags=0x010, options=pb.opt_nop() * 2 + pb.opt_ts(5, 6))))
    ack6 = pb.ether(pb.ipv6("2001:db8::1", "2001:db8::2", pb.tcp(flags=0x010)),
                    ethertype=pb.ETH_IPV6)
    return [syn, ack4, ack6]


def _packets(n):
    """n packets round-robin over the templates, each with its own source port
    (and the TCP checksum updated incrementally, RFC 1624)."""
    temps = _templates()
    parts, offsets, lengths = [], [], []
    pos = 0
    for t, tmpl in enumerate(temps):
        count = len(range(t, n, len(temps)))
        l4 = 14 + (20 if tmpl[12:14] == b"\x08\x00" else 40)
        block = np.tile(np.frombuffer(tmpl, dtype=np.uint8), count).reshape(count, len(tmpl))
        old_port = int.from_bytes(tmpl[l4:l4 + 2], "big")
        old_sum = int.from_bytes(tmpl[l4 + 16:l4 + 18], "big")
        port = (1024 + np.arange(count, dtype=np.int64) * 3 + t) % 65536
        s = (~old_sum & 0xFFFF) + (~old_port & 0xFFFF) + port
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        csum = ~s & 0xFFFF
        block[:, l4] = port >> 8
        block[:, l4 + 1] = port & 0xFF
        block[:, l4 + 16] = csum >> 8
        block[:, l4 + 17] = csum & 0xFF
        parts.append(block.reshape(-1))
        offsets.append(pos + np.arange(count, dtype=np.int64) * len(tmpl))
        lengths.append(np.full(count, len(tmpl), dtype=np.uint32))
        pos += count * len(tmpl)
    data = np.concatenate(parts)
    offset = np.concatenate(offsets)
    caplen = np.concatenate(lengths)
    order = np.argsort(np.concatenate([np.arange(t, n, len(temps)) for t in range(len(temps))]),
                       kind="stable")
    offset, caplen = offset[order], caplen[order]
    return dict(data=data, offset=offset, caplen=caplen, wirelen=caplen.copy(),
                ts_ns=np.arange(n, dtype=np.int64) * 1000,
                linktype=np.ones(n, dtype=np.uint16))


@pytest.fixture(scope="module")
def packets():
    return _packets(N_PACKETS)


def _rate(benchmark, n):
    return n / benchmark.stats.stats.min


def test_parse_fastseg(benchmark, packets):
    p = packets

    def run():
        return _parse.parse_batch(p["data"], p["offset"], p["caplen"], p["wirelen"],
                                  p["ts_ns"], p["linktype"], 1)

    cols, outcome = benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    assert len(cols["frame"]) == N_PACKETS
    assert (cols["checksum_status"] == 0).all()
    RATES["fastseg"] = _rate(benchmark, N_PACKETS)
    benchmark.extra_info["packets"] = N_PACKETS
    benchmark.extra_info["packets_per_s"] = RATES["fastseg"]


def test_parse_dpkt(benchmark, packets):
    dpkt = pytest.importorskip("dpkt")
    raw = packets["data"].tobytes()
    frames = [raw[o:o + c] for o, c in zip(packets["offset"][:N_DPKT].tolist(),
                                           packets["caplen"][:N_DPKT].tolist())]

    def run():
        rows = []
        for buf in frames:
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP):
                continue
            opts = dpkt.tcp.parse_opts(tcp.opts)
            rows.append((ip.src, ip.dst, tcp.sport, tcp.dport, tcp.seq, tcp.ack,
                         tcp.flags, tcp.win, len(tcp.data), opts))
        return rows

    rows = benchmark.pedantic(run, rounds=3, iterations=1)
    assert len(rows) == N_DPKT
    RATES["dpkt"] = _rate(benchmark, N_DPKT)
    benchmark.extra_info["packets"] = N_DPKT
    benchmark.extra_info["packets_per_s"] = RATES["dpkt"]
    if "fastseg" in RATES:
        ratio = RATES["fastseg"] / RATES["dpkt"]
        benchmark.extra_info["fastseg_over_dpkt"] = ratio
        print(f"\nfastseg {RATES['fastseg'] / 1e6:.1f} M packets/s, "
              f"dpkt {RATES['dpkt'] / 1e3:.0f} k packets/s: {ratio:.0f}x")


if __name__ == "__main__":
    # Quick look without pytest-benchmark: best of 10 runs.
    data = _packets(N_PACKETS)
    args = [data[k] for k in ("data", "offset", "caplen", "wirelen", "ts_ns", "linktype")]
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        result = _parse.parse_batch(*args, 1)
        times.append(time.perf_counter() - t0)
    print(f"fastseg.parse_batch: {N_PACKETS / min(times) / 1e6:.1f} M packets/s")
