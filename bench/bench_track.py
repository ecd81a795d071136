"""Tracking throughput: fastseg.track vs a dpkt + dict tracker, same input.

The input is synthetic: N client connections to one server, all alive at
once (every SYN first, then every SYN-ACK, ACK, request, response, FINs and
last ACK: 8 segments per connection, interleaved across connections so the
flow table holds N entries).  Segments are built directly in numpy; the
flow key is a stand-in direction-free mix (the tracker only needs it equal
in both directions).  The dpkt peer parses the same segments as Ethernet
frames (built in numpy too) and keeps one dict entry per 4-tuple.

FASTSEG_BENCH_QUICK=1 uses 20k connections (CI); otherwise 100k and 1M.
"""
import os
import time
import tracemalloc

import numpy as np
import pytest

import fastseg
from fastseg.segments import Segments, empty_columns

QUICK = os.environ.get("FASTSEG_BENCH_QUICK", "") not in ("", "0")
SIZES = [20_000] if QUICK else [100_000, 1_000_000]
DPKT_PACKETS = 40_000 if QUICK else 200_000


def synthetic(n_conn: int, seed: int = 0) -> Segments:
    """8 segments per connection; all connections alive at once."""
    rng = np.random.default_rng(seed)
    i = np.arange(n_conn, dtype=np.int64)
    cli = np.zeros((n_conn, 16), np.uint8)
    cli[:, 10:12] = 0xFF
    cli[:, 12] = 10
    cli[:, 13] = (i >> 16) & 0xFF
    cli[:, 14] = (i >> 8) & 0xFF
    cli[:, 15] = i & 0xFF
    srv = np.zeros((n_conn, 16), np.uint8)
    srv[:, 10:12] = 0xFF
    srv[:, 12:16] = (192, 0, 2, 1)
    cport = (1024 + (i * 7919) % 60000).astype(np.uint16)
    isn_c = rng.integers(0, 2**32, n_conn, dtype=np.uint64).astype(np.uint32)
    isn_s = rng.integers(0, 2**32, n_conn, dtype=np.uint64).astype(np.uint32)
    req, resp = 100, 1000
    # (direction: 0 client->server, flags, seq, ack, payload)
    steps = [
        (0, 0x02, isn_c, 0, 0),
        (1, 0x12, isn_s, isn_c + 1, 0),
        (0, 0x10, isn_c + 1, isn_s + 1, 0),
        (0, 0x18, isn_c + 1, isn_s + 1, req),
        (1, 0x18, isn_s + 1, isn_c + 1 + req, resp),
        (0, 0x11, isn_c + 1 + req, isn_s + 1 + resp, 0),
        (1, 0x11, isn_s + 1 + resp, isn_c + 2 + req, 0),
        (0, 0x10, isn_c + 2 + req, isn_s + 2 + resp, 0),
    ]
    n = n_conn * len(steps)
    cols = empty_columns(n)
    order = rng.permutation(n_conn)
    for k, (d, fl, seq, ack, plen) in enumerate(steps):
        sl = slice(k * n_conn, (k + 1) * n_conn)
        cols["src"][sl] = (cli if d == 0 else srv)[order]
        cols["dst"][sl] = (srv if d == 0 else cli)[order]
        cols["sport"][sl] = (cport if d == 0 else 80)[order] if d == 0 else 80
        cols["dport"][sl] = 80 if d == 0 else cport[order]
        cols["seq"][sl] = np.broadcast_to(seq, n_conn)[order]
        cols["ack"][sl] = np.broadcast_to(np.asarray(ack, dtype=np.uint32), n_conn)[order]
        cols["flags"][sl] = fl
        cols["payload_len"][sl] = plen
    cols["ts_ns"][:] = 1_700_000_000_000_000_000 + np.arange(n, dtype=np.int64) * 1000
    cols["frame"][:] = np.arange(1, n + 1)
    cols["ip_version"][:] = 4
    for name, v in {"hdr_len": 20, "window": 65535, "checksum": 0, "urgent": 0, "ttl": 64,
                    "ip_id": 0, "mss": -1, "wscale": -1, "sack_perm": False, "sack_blocks": 0,
                    "tsval": -1, "tsecr": -1, "tfo_cookie_len": -1, "checksum_status": 0,
                    "ip_checksum_status": 0, "fragment": False}.items():
        cols[name][:] = v
    # Stand-in flow key: a symmetric mix of both endpoints.
    with np.errstate(over="ignore"):
        a = cols["src"][:, 12:16].copy().view(">u4").reshape(-1).astype(np.uint64)
        b = cols["dst"][:, 12:16].copy().view(">u4").reshape(-1).astype(np.uint64)
        ea = (a << np.uint64(16)) | cols["sport"].astype(np.uint64)
        eb = (b << np.uint64(16)) | cols["dport"].astype(np.uint64)
        lo, hi = np.minimum(ea, eb), np.maximum(ea, eb)
        fk = lo * np.uint64(0x9E3779B97F4A7C15) ^ hi
        fk ^= fk >> np.uint64(29)
        cols["flow_key"][:] = fk * np.uint64(0xBF58476D1CE4E5B9)
    return Segments(cols)


def frames(seg: Segments, count: int) -> list:
    """Ethernet/IPv4/TCP frames of the first ``count`` segments (payload zeros)."""
    n = min(count, len(seg))
    plen = seg["payload_len"][:n].astype(np.int64)
    out = []
    hdr = np.zeros((n, 54), np.uint8)
    hdr[:, 12:14] = (0x08, 0x00)
    hdr[:, 14] = 0x45
    tot = (40 + plen).astype(">u2").view(np.uint8).reshape(n, 2)
    hdr[:, 16:18] = tot
    hdr[:, 22] = 64
    hdr[:, 23] = 6
    hdr[:, 26:30] = seg["src"][:n, 12:16]
    hdr[:, 30:34] = seg["dst"][:n, 12:16]
    hdr[:, 34:36] = seg["sport"][:n].astype(">u2").view(np.uint8).reshape(n, 2)
    hdr[:, 36:38] = seg["dport"][:n].astype(">u2").view(np.uint8).reshape(n, 2)
    hdr[:, 38:42] = seg["seq"][:n].astype(">u4").view(np.uint8).reshape(n, 4)
    hdr[:, 42:46] = seg["ack"][:n].astype(">u4").view(np.uint8).reshape(n, 4)
    hdr[:, 46] = 0x50
    hdr[:, 47] = seg["flags"][:n] & 0xFF
    hdr[:, 48:50] = 0xFF
    for k in range(n):
        out.append(hdr[k].tobytes() + bytes(int(plen[k])))
    return out


def dpkt_dict_tracker(bufs):
    """The usual pure-Python tracker: dpkt parses, a dict keyed by the
    sorted 4-tuple holds per-connection state."""
    import dpkt

    conns = {}
    for buf in bufs:
        eth = dpkt.ethernet.Ethernet(buf)
        ip = eth.data
        tcp = ip.data
        a, b = (ip.src, tcp.sport), (ip.dst, tcp.dport)
        key = (a, b) if a <= b else (b, a)
        c = conns.get(key)
        fl = tcp.flags
        if c is None:
            c = conns[key] = {"orig": a, "pkts": [0, 0], "bytes": [0, 0], "syn": 0, "fin": [0, 0],
                              "rst": 0, "synack": 0, "hist": []}
        d = 0 if a == c["orig"] else 1
        c["pkts"][d] += 1
        c["bytes"][d] += len(tcp.data)
        if fl & dpkt.tcp.TH_SYN:
            if fl & dpkt.tcp.TH_ACK:
                c["synack"] += 1
            else:
                c["syn"] += 1
        if fl & dpkt.tcp.TH_FIN:
            c["fin"][d] = 1
        if fl & dpkt.tcp.TH_RST:
            c["rst"] = 1
    return conns


@pytest.mark.parametrize("n_conn", SIZES)
def test_fastseg_track(benchmark, n_conn):
    """Whole job: every segment through the state machine (update) and the
    Connections table of every connection (flush)."""
    seg = synthetic(n_conn)
    info = {}

    def run():
        t = fastseg.Tracker()
        t0 = time.perf_counter()
        t.update(seg)
        t1 = time.perf_counter()
        info["bytes"], info["live"] = t.memory_bytes(), t.live
        out = t.flush()
        t2 = time.perf_counter()
        info["update_s"], info["flush_s"] = t1 - t0, t2 - t1
        return out

    out = benchmark.pedantic(run, rounds=1 if n_conn >= 1_000_000 else 3, iterations=1)
    assert len(out) == n_conn and (out["conn_state"] == "SF").all()
    secs = benchmark.stats.stats.min
    per_conn = info["bytes"] / max(info["live"], 1)
    benchmark.extra_info.update(segments=len(seg), segments_per_s=len(seg) / secs,
                                tracking_segments_per_s=len(seg) / info["update_s"],
                                bytes_per_live_connection=per_conn)
    print(f"\nfastseg {n_conn} live conns: {len(seg) / secs / 1e6:.2f} M segments/s end to end, "
          f"{len(seg) / info['update_s'] / 1e6:.2f} M segments/s tracking, "
          f"{info['flush_s'] * 1e9 / n_conn:.0f} ns per connection to finish, "
          f"{per_conn:.0f} B per live connection")


def test_dpkt_dict_tracker(benchmark):
    seg = synthetic(DPKT_PACKETS // 8)
    bufs = frames(seg, DPKT_PACKETS)
    out = benchmark.pedantic(lambda: dpkt_dict_tracker(bufs), rounds=1, iterations=1)
    assert len(out) == DPKT_PACKETS // 8
    secs = benchmark.stats.stats.min
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    held = dpkt_dict_tracker(bufs)
    per_conn = (tracemalloc.get_traced_memory()[0] - base) / len(held)
    tracemalloc.stop()
    benchmark.extra_info.update(segments_per_s=len(bufs) / secs, bytes_per_connection=per_conn)
    print(f"\ndpkt+dict: {len(bufs) / secs / 1e6:.3f} M segments/s, {per_conn:.0f} B per connection")


def test_streaming_memory_is_flat(benchmark):
    """Sequential connections (each closes 8 segments after it opens, one
    per millisecond) through Tracker in batches: the memory held follows
    the connections alive (close_delay 5 s -> ~5000), not the capture."""
    n_conn = 50_000 if QUICK else 1_000_000
    seg = synthetic(n_conn)
    k = np.arange(len(seg)) // n_conn           # step within its connection
    conn = np.empty(n_conn, np.int64)
    conn[np.random.default_rng(0).permutation(n_conn)] = np.arange(n_conn)
    i = conn[np.arange(len(seg)) % n_conn]      # invert synthetic()'s shuffle
    order = np.lexsort((k, i))
    seg = seg[order]
    seg["ts_ns"][:] = 1_700_000_000_000_000_000 + i[order] * 1_000_000 + k[order] * 10_000
    peaks = {}

    def run():
        t = fastseg.Tracker()
        peak_mem = peak_live = emitted = 0
        for lo in range(0, len(seg), 100_000):
            emitted += len(t.update(seg[lo:lo + 100_000]))
            peak_mem = max(peak_mem, t.memory_bytes())
            peak_live = max(peak_live, t.live)
        emitted += len(t.flush())
        peaks.update(mem=peak_mem, live=peak_live, emitted=emitted)

    benchmark.pedantic(run, rounds=1, iterations=1)
    assert peaks["emitted"] == n_conn
    assert peaks["live"] < 20_000
    secs = benchmark.stats.stats.min
    benchmark.extra_info.update(peak_bytes=peaks["mem"], peak_live=peaks["live"],
                                segments_per_s=len(seg) / secs)
    print(f"\nstreaming {n_conn} sequential conns: peak {peaks['live']} live, "
          f"{peaks['mem'] / 1e6:.1f} MB held, {len(seg) / secs / 1e6:.2f} M segments/s")


@pytest.mark.parametrize("keys", ["random", "colliding"])
def test_flow_table_under_chosen_collisions(benchmark, keys):
    """A hostile capture chooses 4-tuples whose flow keys share their low 24
    bits (all land in one bucket of an unkeyed power-of-two table).  The
    tracker remixes flow keys with a per-process secret, so the colliding
    input must track within 2x of the random one."""
    n_conn = 20_000 if QUICK else 200_000
    seg = synthetic(n_conn)
    if keys == "colliding":
        conn_of = np.unique(seg["flow_key"], return_inverse=True)[1].reshape(-1)
        seg["flow_key"] = (conn_of.astype(np.uint64) + np.uint64(1)) << np.uint64(24)
    benchmark.group = "tracking: chosen flow-key collisions"

    def run():
        t = fastseg.Tracker()
        t.update(seg)
        return t.flush()

    out = benchmark.pedantic(run, rounds=3, iterations=1)
    assert len(out) == n_conn
    benchmark.extra_info.update(segments=len(seg))
