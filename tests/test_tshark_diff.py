"""Differential test of the parser: every column of every TCP segment of every
committed capture, compared with what tshark dissects (tests/oracle.py)."""
import functools
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastseg
from fastseg.segments import format_addresses

from oracle import ORACLE_COLUMNS, tshark_tcp_fields

DATA = Path(__file__).parent / "data"

CAPTURES = sorted(p.name for p in DATA.iterdir()
                  if p.name.endswith((".pcap", ".pcapng", ".gz", ".zst")))


@functools.lru_cache(maxsize=None)
def parsed(name):
    with warnings.catch_warnings():
        # lo_cut.pcap ends mid-record on purpose; the reader warns about it.
        warnings.simplefilter("ignore", fastseg.TruncatedCaptureWarning)
        try:
            return fastseg.read_segments(DATA / name)
        except NotImplementedError:
            return None


def ours_and_theirs(name):
    seg = parsed(name)
    if seg is None:
        pytest.skip("fastseg.read_segments is not implemented in this build")
    return seg, tshark_tcp_fields(DATA / name)


def column(seg, name):
    if name in ("src", "dst"):
        return format_addresses(seg[name], seg["ip_version"])
    return np.asarray(seg[name])


def describe(frames, ours, theirs, limit=8):
    bad = np.flatnonzero(ours != theirs)
    rows = ", ".join(f"frame {frames[i]}: fastseg {ours[i].item()!r} tshark {theirs[i].item()!r}"
                     for i in bad[:limit])
    return f"{len(bad)} of {len(frames)} rows differ: {rows}"


def test_captures_are_present():
    assert len(CAPTURES) >= 20, CAPTURES


@pytest.mark.parametrize("name", CAPTURES)
def test_segment_frames_match_tshark(tshark, name):
    """The parser makes a row for exactly the frames tshark dissects as a
    whole TCP header, in frame order."""
    seg, ref = ours_and_theirs(name)
    ours = np.asarray(seg["frame"])
    missing = sorted(set(ref["frame"].tolist()) - set(ours.tolist()))
    extra = sorted(set(ours.tolist()) - set(ref["frame"].tolist()))
    assert not missing and not extra, (
        f"{name}: frames tshark has but fastseg lacks {missing[:20]}, "
        f"fastseg has but tshark lacks {extra[:20]}")
    np.testing.assert_array_equal(ours, ref["frame"])


@pytest.mark.parametrize("col", [c for c in ORACLE_COLUMNS if c != "frame"])
@pytest.mark.parametrize("name", CAPTURES)
def test_column_matches_tshark(tshark, name, col):
    """Each column agrees with tshark on every frame both sides call a
    segment (frame-set differences are reported by the test above)."""
    seg, ref = ours_and_theirs(name)
    frames = np.asarray(seg["frame"])
    common, i_ours, i_ref = np.intersect1d(frames, ref["frame"], return_indices=True)
    ours = column(seg, col)[i_ours]
    theirs = ref[col][i_ref]
    if col not in ("src", "dst"):
        ours = ours.astype(np.int64)
        theirs = theirs.astype(np.int64)
    if col == "ts_ns":
        # A pcapng Simple Packet Block has no timestamp (tshark shows none);
        # what a reader puts there is its own choice.
        stamped = theirs != -1
        common, ours, theirs = common[stamped], ours[stamped], theirs[stamped]
    if not np.array_equal(ours, theirs):
        pytest.fail(f"{name} {col}: " + describe(common, ours, theirs))


# Frames tshark reads, per capture; lo_cut.pcap's last record is cut short.
@pytest.mark.parametrize("name", CAPTURES)
def test_capture_accounting_matches_tshark(tshark, name):
    """Every frame tshark reads is accounted for once, and the TCP count is
    the number of segments tshark dissects."""
    from oracle import tshark_frame_count
    seg, ref = ours_and_theirs(name)
    stats = seg.stats
    assert stats.packets == tshark_frame_count(DATA / name)
    assert stats.tcp == len(ref["frame"]) == len(seg)
    assert stats.packets == stats.tcp + stats.non_tcp + stats.malformed
