"""fastseg.dask: many files as Dask DataFrames; connections across file boundaries."""
import collections

import pytest

dd = pytest.importorskip("dask.dataframe")

import fastseg
from fastseg import synth


def _split(path, out1, out2):
    """Write the first and second half (by packet) of a pcap to two files,
    as a rotating capture would."""
    import dpkt
    with open(path, "rb") as fh:
        pkts = list(dpkt.pcap.Reader(fh))
    half = len(pkts) // 2
    for out, part in ((out1, pkts[:half]), (out2, pkts[half:])):
        with open(out, "wb") as fh:
            w = dpkt.pcap.Writer(fh, nano=False)
            for ts, buf in part:
                w.writepkt(buf, ts)
    return half


@pytest.fixture(scope="module")
def rotated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dask")
    whole = tmp / "whole.pcap"
    synth.generate(str(whole), connections=600, seed=11)
    a, b = tmp / "a.pcap", tmp / "b.pcap"
    _split(whole, a, b)
    return whole, [a, b]


def test_segments_one_partition_per_file(rotated):
    from fastseg import dask as fdask
    whole, parts = rotated
    frame = fdask.segments(parts)
    assert frame.npartitions == 2
    df = frame.compute()
    ref = fastseg.read_segments(str(whole))
    assert len(df) == len(ref)
    assert list(df["seq"]) == ref["seq"].tolist()
    assert df["src"].iloc[0] == ref.src_text()[0]


def test_connections_across_file_boundaries_equal_one_pass(rotated):
    from fastseg import dask as fdask
    whole, parts = rotated
    got = fdask.connections(parts, npartitions=3).compute()
    ref = fastseg.track(fastseg.read_segments(str(whole)))
    assert len(got) == len(ref)
    assert sorted(got["uid"]) == sorted(ref["uid"].tolist())
    assert collections.Counter(got["conn_state"].astype(str)) == \
        collections.Counter(ref["conn_state"].tolist())
    by_uid = dict(zip(got["uid"], got["history"].astype(str)))
    assert all(by_uid[u] == h for u, h in zip(ref["uid"].tolist(), ref["history"].tolist()))
