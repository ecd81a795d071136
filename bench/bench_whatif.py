"""whatif: the listen-queue replay on a 1M-SYN flood capture (1M spoofed SYNs
in 10 s plus 2,000 legitimate handshakes against one listener).

Reports replay events/s of the Cython kernel (one core) and the wall time of
the default 9-scenario grid (syncookies 0/1/2 x backlog 128/511/4096),
reading the capture included.

    PYTHONPATH=src python3 -m pytest -q bench/bench_whatif.py
"""
import os
import struct
import time

import numpy as np
import pytest

from fastseg import read_segments, whatif

QUICK = os.environ.get("FASTSEG_BENCH_QUICK", "") not in ("", "0")
N_ATTACK = 100_000 if QUICK else 1_000_000
N_LEGIT = 2_000


def _packets(t, src, sport, dst, dport, seq, ack, flags):
    """Ethernet + IPv4 + 20-byte TCP records (pcap, microseconds)."""
    n = len(t)
    rec = np.zeros((n, 16 + 54), np.uint8)
    sec = t.astype(np.int64)
    usec = ((t - sec) * 1e6).astype(np.int64)
    hdr = rec[:, :16].view("<u4").reshape(n, 4)
    hdr[:, 0], hdr[:, 1], hdr[:, 2], hdr[:, 3] = sec, usec, 54, 54
    p = rec[:, 16:]
    p[:, 12:14] = (8, 0)
    p[:, 14] = 0x45
    p[:, 16:18] = (0, 40)
    p[:, 22] = 64
    p[:, 23] = 6
    p[:, 26:30] = src.view(np.uint8).reshape(n, 4)[:, ::-1]
    p[:, 30:34] = dst.view(np.uint8).reshape(n, 4)[:, ::-1]
    p[:, 34:36] = sport.astype(">u2").view(np.uint8).reshape(n, 2)
    p[:, 36:38] = dport.astype(">u2").view(np.uint8).reshape(n, 2)
    p[:, 38:42] = seq.astype(">u4").view(np.uint8).reshape(n, 4)
    p[:, 42:46] = ack.astype(">u4").view(np.uint8).reshape(n, 4)
    p[:, 46] = 0x50
    p[:, 47] = flags
    p[:, 48:50] = (0xFF, 0xFF)
    return rec


@pytest.fixture(scope="module")
def flood_pcap(tmp_path_factory):
    rng = np.random.default_rng(1)
    server = np.uint32(0x0A000002)
    t_a = np.sort(rng.uniform(0, 10, N_ATTACK)) + 1e9
    a = _packets(t_a, rng.integers(0xC6120000, 0xC613FFFF, N_ATTACK).astype(np.uint32),
                 rng.integers(1024, 65535, N_ATTACK), np.full(N_ATTACK, server), np.full(N_ATTACK, 80),
                 rng.integers(0, 2**32, N_ATTACK).astype(np.uint32), np.zeros(N_ATTACK, np.uint32),
                 np.full(N_ATTACK, 0x02))
    t_l = np.sort(rng.uniform(0, 10, N_LEGIT)) + 1e9
    src = (0x0B000000 + np.arange(N_LEGIT)).astype(np.uint32)
    sport = np.full(N_LEGIT, 40000)
    isn = rng.integers(0, 2**32 - 2, N_LEGIT).astype(np.uint32)
    srv = np.full(N_LEGIT, server)
    parts = [
        (t_a, a),
        (t_l, _packets(t_l, src, sport, srv, np.full(N_LEGIT, 80), isn, np.zeros(N_LEGIT, np.uint32),
                       np.full(N_LEGIT, 0x02))),
        (t_l + 1e-4, _packets(t_l + 1e-4, srv, np.full(N_LEGIT, 80), src, sport, np.full(N_LEGIT, 7, np.uint32),
                              isn + 1, np.full(N_LEGIT, 0x12))),
        (t_l + 0.02, _packets(t_l + 0.02, src, sport, srv, np.full(N_LEGIT, 80), isn + 1,
                              np.full(N_LEGIT, 8, np.uint32), np.full(N_LEGIT, 0x10))),
    ]
    t = np.concatenate([p[0] for p in parts])
    recs = np.concatenate([p[1] for p in parts])[np.argsort(t, kind="stable")]
    path = tmp_path_factory.mktemp("whatif") / "flood_1m.pcap"
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        f.write(recs.tobytes())
    return path


def test_grid_on_a_1m_syn_flood(flood_pcap, capsys, monkeypatch):
    t0 = time.perf_counter()
    seg = read_segments(str(flood_pcap), keep_bytes=False)
    t_read = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = whatif.listen_queue(seg, backlog=list(whatif.DEFAULT_BACKLOGS),
                                 syncookies=list(whatif.DEFAULT_SYNCOOKIES))
    t_grid = time.perf_counter() - t1
    # the Cython kernel alone: time every call the grid makes
    spent, events = [0.0], [0]
    kernel = whatif._whatif.replay

    def timed(*args):
        t = time.perf_counter()
        rc = kernel(*args)
        spent[0] += time.perf_counter() - t
        events[0] += int(args[-2][9])
        return rc

    monkeypatch.setattr(whatif._whatif, "replay", timed)
    whatif.listen_queue(seg, backlog=list(whatif.DEFAULT_BACKLOGS),
                        syncookies=list(whatif.DEFAULT_SYNCOOKIES))
    assert len(result) == 9
    assert result.real[0]["syns"] == N_ATTACK + N_LEGIT
    with capsys.disabled():
        print(f"\nwhatif, {N_ATTACK + N_LEGIT:,} SYNs: read {t_read:.2f} s, grid of 9 scenarios "
              f"{t_grid:.2f} s (read + grid {t_read + t_grid:.2f} s); "
              f"replay kernel {events[0] / spent[0] / 1e6:.1f}M events/s ({events[0]:,} events)")
