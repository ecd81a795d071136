"""Tracking with the loss analysis (fastseg.Tracker(loss=True), the default)
against tracking alone (loss=False), same input, same run: the analysis
should keep at least 80% of the tracker's speed.

Inputs: the real loopback HTTP capture scaled to 6M packets (600k quick),
read batch by batch as ``fastseg summary`` reads it, each batch tracked by
both trackers in turn; the synthetic short connections of the summary bench
(synth, ~10 segments each, realistic RTTs) and bench_track's
all-alive-at-once connections (8 segments each; every connection in
progress at once, the worst case for the loss states' memory)."""
import time

import numpy as np
import pytest

import fastseg
from bench_track import SIZES, synthetic


def _track_seconds(seg, loss: bool, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        t = fastseg.Tracker(loss=loss)
        t.update(seg)
        t.flush()
        best = min(best, time.perf_counter() - t0)
    return best


def _stream_seconds(path):
    """Seconds in Tracker.update_columns/flush_columns without and with the
    loss analysis over the batches of ``path`` (each batch read once and
    given to both, which goes first alternating), and the segments."""
    trackers = (fastseg.Tracker(loss=False), fastseg.Tracker(loss=True))
    spent = [0.0, 0.0]
    n = 0
    with fastseg.open(str(path), batch_packets=65536) as cap:
        for k, seg in enumerate(cap.batches()):
            for which in ((0, 1) if k % 2 == 0 else (1, 0)):
                t0 = time.perf_counter()
                trackers[which].update_columns(seg)
                spent[which] += time.perf_counter() - t0
            n += len(seg)
    for which in (0, 1):
        t0 = time.perf_counter()
        trackers[which].flush_columns()
        spent[which] += time.perf_counter() - t0
    return spent[0], spent[1], n


def test_loss_on_real_capture(benchmark, real_capture):
    path, _ = real_capture
    benchmark.group = "tracking with loss analysis"
    plain, with_loss, n = benchmark.pedantic(lambda: _stream_seconds(path), rounds=1,
                                             iterations=1)
    ratio = plain / with_loss
    benchmark.extra_info.update(segments=n, segments_per_s=n / with_loss,
                                tracking_alone_segments_per_s=n / plain, speed_ratio=ratio)
    print(f"\nreal capture: tracking {n / plain / 1e6:.2f} M segments/s alone, "
          f"{n / with_loss / 1e6:.2f} M segments/s with loss analysis ({ratio:.0%})")
    assert ratio > 0.25        # a sanity bound; the target (0.8) is reported, not asserted


def _compare(benchmark, seg, label):
    plain = _track_seconds(seg, loss=False)
    with_loss = benchmark.pedantic(lambda: _track_seconds(seg, loss=True, rounds=1),
                                   rounds=3, iterations=1)
    del with_loss
    loss_s = benchmark.stats.stats.min
    ratio = plain / loss_s
    benchmark.extra_info.update(segments=len(seg), segments_per_s=len(seg) / loss_s,
                                tracking_alone_segments_per_s=len(seg) / plain,
                                speed_ratio=ratio)
    print(f"\n{label}: tracking {len(seg) / plain / 1e6:.2f} M segments/s alone, "
          f"{len(seg) / loss_s / 1e6:.2f} M segments/s with loss analysis ({ratio:.0%})")
    return ratio


def test_loss_on_synth_capture(benchmark, capture_1m):
    path, _ = capture_1m
    seg = fastseg.read_segments(str(path))
    benchmark.group = "tracking with loss analysis"
    ratio = _compare(benchmark, seg, "synth capture")
    assert ratio > 0.25        # a sanity bound; the target (0.8) is reported, not asserted


@pytest.mark.parametrize("n_conn", SIZES[:1])
def test_loss_all_alive(benchmark, n_conn):
    seg = synthetic(n_conn)
    benchmark.group = "tracking with loss analysis"
    ratio = _compare(benchmark, seg, f"{n_conn} connections alive at once")
    t = fastseg.Tracker()
    t.update(seg)
    assert (seg["analysis"] == 0).all() and np.isfinite(seg["ack_rtt"]).sum() > 0
    assert ratio > 0.25        # a sanity bound; the target (0.8) is reported, not asserted
