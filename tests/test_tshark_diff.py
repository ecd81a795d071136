"""Differential test of the parser: every column of every TCP segment of every
committed capture, compared with what tshark dissects (tests/oracle.py)."""
import functools
import sys
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


# ---------------------------------------------------------------------------
# The parser alone: classic pcap records read by the tests' own small reader
# (tests/data/pcapconv.py) and handed to fastseg.parse_packets, so a parser
# mismatch is told apart from a capture-reader one.
CLASSIC_PCAPS = [n for n in CAPTURES if n.endswith(".pcap")]


def parse_with_test_reader(name, first_frame=1, records=None):
    sys.path.insert(0, str(DATA))
    import pcapconv
    cap = pcapconv.read_pcap(DATA / name)
    records = cap.records if records is None else [cap.records[i] for i in records]
    try:
        return fastseg.parse_packets(
            [r.data for r in records], linktype=cap.linktype,
            ts_ns=np.array([r.ts_ns for r in records], dtype=np.int64),
            wirelen=np.array([r.orig_len for r in records], dtype=np.int64),
            first_frame=first_frame)
    except NotImplementedError:
        pytest.skip("fastseg.parse_packets is not implemented in this build")


@pytest.mark.parametrize("name", CLASSIC_PCAPS)
def test_parse_packets_matches_tshark(tshark, name):
    """Every column of every segment, parser fed record by record."""
    seg = parse_with_test_reader(name)
    ref = tshark_tcp_fields(DATA / name)
    np.testing.assert_array_equal(np.asarray(seg["frame"]), ref["frame"])
    problems = []
    for col in ORACLE_COLUMNS:
        ours = column(seg, col)
        theirs = ref[col]
        if col not in ("src", "dst"):
            ours, theirs = ours.astype(np.int64), theirs.astype(np.int64)
        if not np.array_equal(ours, theirs):
            problems.append(f"{col}: " + describe(ref["frame"], ours, theirs, limit=3))
    assert not problems, f"{name}: " + "; ".join(problems)


# What each crafted frame is (tests/data/README.md): outcome names of
# fastseg._consts.OUTCOME_NAMES, "tcp" for a segment.
FRAME_OUTCOMES = {
    "synth_malformed.pcap": [
        "tcp", "tcp", "tcp",
        "bad_tcp_data_offset", "bad_tcp_data_offset", "bad_ip_header", "bad_ip_length",
        "bad_ip_length", "bad_link_header", "bad_ip_header", "bad_ip_version", "tcp",
        "empty_record"],
    "synth_frag.pcap": [
        "not_ip", "not_tcp", "not_tcp", "tcp", "tcp", "later_fragment", "later_fragment",
        "fragment_without_tcp_header", "later_fragment", "tcp", "tcp", "later_fragment",
        "tcp", "tcp", "tcp", "tcp", "tcp"],
}


@pytest.mark.parametrize("name", sorted(FRAME_OUTCOMES))
def test_each_crafted_frame_is_accounted_for_its_reason(name):
    got = []
    for i in range(len(FRAME_OUTCOMES[name])):
        stats = parse_with_test_reader(name, first_frame=i + 1, records=[i]).stats
        reasons = dict(stats.non_tcp_by_reason, **stats.malformed_by_reason)
        if stats.tcp:
            reasons["tcp"] = stats.tcp
        got.append(",".join(sorted(reasons)))
    assert got == FRAME_OUTCOMES[name]


def test_snaplen_cut_options_are_segments_not_dropped():
    seg = parse_with_test_reader("lo_snap80.pcap")
    assert seg.stats.malformed == 0
    assert seg.stats.non_tcp_by_reason == {"not_tcp": 4}
    assert seg.stats.to_dict()["tcp_options"] == {"cut": 32, "bad": 0}
    assert np.count_nonzero(seg["opt_status"] == 1) == 32
