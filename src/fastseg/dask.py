"""Many capture files as Dask DataFrames (needs the ``dask`` extra).

``segments(paths)`` reads one partition per file (``dask.dataframe.from_map``
with an explicit ``meta``).  ``connections(paths)`` shuffles the segments of
all files on ``flow_key`` so that every connection lands whole in one
partition, whatever file boundaries it crossed, restores capture order inside
each partition and runs the tracker there.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["segments", "connections"]

_ADDR_PARTS = ("src_hi", "src_lo", "dst_hi", "dst_lo")


def _read_pandas(path: str):
    from .parse import read_segments
    return read_segments(path).to_pandas()


def _read_numeric(args):
    """Segments of one file with addresses as two big-endian uint64 halves, so
    a partition can be turned back into a Segments table without text."""
    import pandas as pd
    from .parse import read_segments

    index, path = args
    seg = read_segments(path)
    data = {}
    for name in seg.columns:
        col = seg[name]
        if col.ndim == 2:
            halves = np.ascontiguousarray(col).view(">u8").reshape(-1, 2).astype(np.uint64)
            data[name + "_hi"] = halves[:, 0]
            data[name + "_lo"] = halves[:, 1]
        else:
            data[name] = col
    data["file"] = np.full(len(seg), index, dtype=np.int32)
    return pd.DataFrame(data)


def _segments_from_frame(df):
    from .segments import SEGMENT_DTYPES, Segments, empty_columns

    cols = empty_columns(len(df))
    for name, dt in SEGMENT_DTYPES.items():
        if isinstance(dt, tuple):
            hi = df[name + "_hi"].to_numpy(np.uint64)
            lo = df[name + "_lo"].to_numpy(np.uint64)
            both = np.stack([hi, lo], axis=1).astype(">u8")
            cols[name] = both.view(np.uint8).reshape(-1, 16).copy()
        else:
            cols[name] = df[name].to_numpy().astype(dt, copy=False)
    for hidden in ("_l3_off", "_l4_off", "_l3_caplen"):
        cols[hidden][:] = 0
    return Segments(cols)


def _track_partition(df, track_kwargs):
    from .track import track

    if len(df) == 0:
        return _connections_meta(track_kwargs)
    df = df.sort_values(["ts_ns", "file", "frame"], kind="stable")
    conns = track(_segments_from_frame(df), **track_kwargs)
    return conns.to_pandas()


def _connections_meta(track_kwargs):
    from .segments import Segments
    from .track import track

    return track(Segments.empty(), **track_kwargs).to_pandas().iloc[:0]


def segments(paths: Sequence[str]):
    """A Dask DataFrame of the segments of every file, one partition per file
    (addresses as text, absent options as <NA>, as ``Segments.to_pandas``)."""
    import dask.dataframe as dd
    from .segments import Segments

    meta = Segments.empty().to_pandas()
    return dd.from_map(_read_pandas, [str(p) for p in paths], meta=meta,
                       enforce_metadata=False)


def connections(paths: Sequence[str], npartitions: int = None, **track_kwargs):
    """A Dask DataFrame of the connections of every file, computed correctly
    across file boundaries (files are read as one capture: list them in time
    order, as rotated captures are)."""
    import dask.dataframe as dd

    paths = [str(p) for p in paths]
    sample = _read_numeric((0, paths[0])).iloc[:0]
    frames = dd.from_map(_read_numeric, list(enumerate(paths)), meta=sample,
                         enforce_metadata=False)
    shuffled = frames.shuffle(on="flow_key", npartitions=npartitions or len(paths))
    meta = _connections_meta(track_kwargs)
    return shuffled.map_partitions(_track_partition, track_kwargs, meta=meta)
