"""Segments and Connections tables: an empty table has the dtypes of a full one."""
from pathlib import Path

import numpy as np
import pytest

import fastseg
from fastseg.segments import Segments

DATA = Path(__file__).parent / "data"


def _dtypes(frame):
    out = {}
    for name, dtype in frame.dtypes.items():
        out[name] = str(dtype)
        if str(dtype) == "category":
            out[name] += "/" + str(frame[name].cat.categories.dtype)
    return out


def test_empty_connections_to_pandas_has_the_dtypes_of_a_full_one():
    pytest.importorskip("pandas")
    full = fastseg.analyze(str(DATA / "lo_conv.pcap"), keep_connections=True).connections
    empty = fastseg.track(Segments.empty())
    assert len(empty) == 0 and len(full) > 10
    assert _dtypes(empty.to_pandas()) == _dtypes(full.to_pandas())
    assert _dtypes(full[:1].to_pandas()) == _dtypes(full.to_pandas())
    frame = full.to_pandas()
    assert frame["close"].isna().sum() == int((full["close"].astype(str) == "").sum())


def test_empty_segments_to_pandas_has_the_dtypes_of_a_full_one():
    pytest.importorskip("pandas")
    full = fastseg.read_segments(str(DATA / "lo_conv.pcap"))
    assert _dtypes(Segments.empty().to_pandas()) == _dtypes(full.to_pandas())


def test_tables_pickle_round_trip():
    """Segments and Connections cross process boundaries (Dask workers)."""
    import pickle
    seg = fastseg.read_segments(str(DATA / "lo_conv.pcap"))
    conns = fastseg.track(seg)
    seg2, conns2 = pickle.loads(pickle.dumps((seg, conns)))
    assert seg2.columns == seg.columns and len(seg2) == len(seg)
    np.testing.assert_array_equal(seg2["seq"], seg["seq"])
    assert seg2.stats.to_dict() == seg.stats.to_dict()
    assert conns2.columns == conns.columns
    assert conns2["uid"].tolist() == conns["uid"].tolist()
