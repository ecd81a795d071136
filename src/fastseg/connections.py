"""The Connections table: one row per TCP connection, one numpy array per column."""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from . import _format
from ._format import address_bytes
from .loss import LOSS_COLUMNS
from .segments import format_addresses

__all__ = ["Connections", "CONNECTION_COLUMNS", "CONNECTION_DTYPES", "CONN_NULLS"]

# Public columns in output order (SPEC section 5).
CONNECTION_COLUMNS = [
    "uid", "ts", "duration", "orig_h", "orig_p", "resp_h", "resp_p",
    "orig_pkts", "resp_pkts", "orig_bytes", "resp_bytes", "conn_state", "history",
    "orig_state", "resp_state", "syn_ts", "synack_ts", "ack_ts", "syn_synack",
    "synack_ack", "handshake_rtt", "orig_isn", "resp_isn", "orig_mss", "resp_mss",
    "orig_wscale", "resp_wscale", "sack_ok", "ts_ok", "ecn_ok", "syn_count",
    "synack_count", "tfo_data", "closer", "close", "missed_bytes",
]
# Then, when tracked with loss analysis (the default), fastseg.loss.LOSS_COLUMNS:
# per side (orig_/resp_) retrans_pkts, retrans_bytes, fast_retrans,
# spurious_retrans, out_of_order, lost_segments, dup_acks, zero_windows,
# keepalives, rtt_samples, max_in_flight, first_flight_bytes,
# first_flight_segs, zero_window_time, rtt_min, rtt_avg, rtt_max; and ttfb.

# The dtype of every column (public, then hidden); text widths are those of
# an empty table (a filled one is as wide as its longest value); addresses
# are (n, 16) rows.
CONNECTION_DTYPES = {
    "uid": "U18", "ts": np.float64, "duration": np.float64,
    "orig_h": (np.uint8, 16), "orig_p": np.uint16, "resp_h": (np.uint8, 16), "resp_p": np.uint16,
    "orig_pkts": np.int64, "resp_pkts": np.int64, "orig_bytes": np.int64, "resp_bytes": np.int64,
    "conn_state": "U6", "history": "U23", "orig_state": "U12", "resp_state": "U12",
    "syn_ts": np.float64, "synack_ts": np.float64, "ack_ts": np.float64,
    "syn_synack": np.float64, "synack_ack": np.float64, "handshake_rtt": np.float64,
    "orig_isn": np.int64, "resp_isn": np.int64, "orig_mss": np.int32, "resp_mss": np.int32,
    "orig_wscale": np.int16, "resp_wscale": np.int16,
    "sack_ok": np.bool_, "ts_ok": np.bool_, "ecn_ok": np.bool_,
    "syn_count": np.int64, "synack_count": np.int64, "tfo_data": np.int64,
    "closer": "U4", "close": "U3", "missed_bytes": np.int64,
    **{name: (np.float64 if name.endswith(("_time", "_min", "_avg", "_max")) or name == "ttfb"
              else np.int64) for name in LOSS_COLUMNS},
    "_conn": np.int64, "ip_version": np.uint8, "flow_key": np.uint64, "ts_ns": np.int64,
}

# How "absent" is stored in each nullable column (null in pandas/Arrow):
# NaN for the float seconds columns, -1 for integers, "" for text.
CONN_NULLS = {
    "syn_ts": "nan", "synack_ts": "nan", "ack_ts": "nan", "syn_synack": "nan",
    "synack_ack": "nan", "handshake_rtt": "nan",
    "orig_isn": -1, "resp_isn": -1, "orig_mss": -1, "resp_mss": -1,
    "orig_wscale": -1, "resp_wscale": -1, "closer": "", "close": "",
    # loss columns (fastseg.loss.LOSS_COLUMNS): no RTT sample / no data both ways
    **{f"{side}_rtt_{k}": "nan" for side in ("orig", "resp") for k in ("min", "avg", "max")},
    "ttfb": "nan",
}

_ADDRESS_COLUMNS = ("orig_h", "resp_h")
_CATEGORICAL = ("conn_state", "orig_state", "resp_state", "closer", "close")
# Rows formatted per call of the text kernel: bounds the text held at once.
_FORMAT_CHUNK = 65536


def _ascii_bytes(col) -> np.ndarray:
    """An ASCII text column as fixed-width bytes ('S' dtype), converted by
    numpy in one pass (no Python per item)."""
    col = np.asarray(col)
    return col if col.dtype.kind == "S" else col.astype("S")


class Connections:
    """One row per connection; columns are numpy arrays (CONNECTION_COLUMNS).

    Times (``ts``, ``syn_ts``, ...) are float seconds since the epoch and
    intervals float seconds; absent values are NaN, -1 or "" (see
    ``CONN_NULLS``) and null in pandas/Arrow.  ``orig_h``/``resp_h`` are
    (n, 16) uint8 rows like ``Segments.src`` (text in pandas/Arrow and via
    ``orig_text()``).  Hidden columns: ``_conn`` (the connection index that
    ``Segments["conn"]`` refers to), ``ip_version``, ``flow_key``, ``ts_ns``.
    """

    __slots__ = ("_cols",)

    def __init__(self, columns: Dict[str, np.ndarray]):
        self._cols = dict(columns)
        n = None
        for name, col in self._cols.items():
            if n is None:
                n = len(col)
            elif len(col) != n:
                raise ValueError(f"column {name!r} has {len(col)} rows, expected {n}")

    @classmethod
    def empty(cls) -> "Connections":
        """A table with every column and no rows."""
        return cls({name: np.empty((0, dt[1]) if isinstance(dt, tuple) else 0,
                                   dtype=dt[0] if isinstance(dt, tuple) else dt)
                    for name, dt in CONNECTION_DTYPES.items()})

    @classmethod
    def concat(cls, parts: List["Connections"]) -> "Connections":
        """Stack tables row-wise."""
        parts = [p for p in parts if p is not None]
        if not parts:
            return cls.empty()
        # empty parts may lack optional columns (the loss analysis'): skip them
        parts = [p for p in parts if len(p)] or parts[:1]
        names = [n for n in parts[0]._cols if all(n in p._cols for p in parts)]
        return cls({n: np.concatenate([p._cols[n] for p in parts]) for n in names})

    def __len__(self) -> int:
        for col in self._cols.values():
            return len(col)
        return 0

    @property
    def columns(self) -> List[str]:
        """Public column names."""
        return [c for c in self._cols if not c.startswith("_") and c not in ("ip_version", "flow_key", "ts_ns")]

    def __contains__(self, name) -> bool:
        return name in self._cols

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._cols[key]
        if isinstance(key, (int, np.integer)):
            key = slice(int(key), int(key) + 1 if int(key) != -1 else None)
        return Connections({k: v[key] for k, v in self._cols.items()})

    def __getattr__(self, name):
        if name == "_cols" or name.startswith("__"):
            # not set yet (an instance being unpickled) or a protocol name
            raise AttributeError(name)
        try:
            return self._cols[name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self):
        return iter(self.columns)

    def keys(self):
        return self.columns

    def __repr__(self) -> str:
        return f"<Connections: {len(self)} rows, {len(self.columns)} columns>"

    def orig_text(self) -> np.ndarray:
        """Originator addresses as strings."""
        return format_addresses(self._cols["orig_h"], self._cols["ip_version"])

    def resp_text(self) -> np.ndarray:
        """Responder addresses as strings."""
        return format_addresses(self._cols["resp_h"], self._cols["ip_version"])

    def text_bytes(self, name: str) -> np.ndarray:
        """A text column as fixed-width ASCII bytes ('S' dtype), as the
        text writers take it."""
        return _ascii_bytes(self._cols.get("_b_" + name, self._cols[name]))

    def null_mask(self, name: str):
        """True where the column holds its absent value (None if never absent)."""
        if name not in CONN_NULLS:
            return None
        col = self._cols[name]
        null = CONN_NULLS[name]
        if null == "nan":
            return np.isnan(col)
        return col == null

    def to_numpy(self) -> np.ndarray:
        """A structured array with one field per public column."""
        fields = []
        for name in self.columns:
            col = self._cols[name]
            fields.append((name, col.dtype, col.shape[1:]) if col.ndim == 2 else (name, col.dtype))
        out = np.empty(len(self), dtype=fields)
        for name in self.columns:
            out[name] = self._cols[name]
        return out

    def to_pandas(self):
        """A pandas DataFrame: addresses as text, nulls as NaN/<NA>, states
        as categoricals."""
        import pandas as pd

        # the dtype pandas gives text (object, or str from pandas 3), fixed so
        # that an empty table has the dtypes of a full one
        text = pd.Series(["x"]).dtype
        data = {}
        for name in self.columns:
            col = self._cols[name]
            mask = self.null_mask(name)
            if name in _ADDRESS_COLUMNS:
                data[name] = pd.Series(format_addresses(col, self._cols["ip_version"]),
                                       dtype=text)
            elif name in _CATEGORICAL:
                values = col.astype(object)
                if mask is not None:
                    values[mask] = None
                cats = pd.Index(sorted(set(values.tolist()) - {None}), dtype=text)
                data[name] = pd.Categorical(values, categories=cats)
            elif mask is not None and col.dtype.kind in "iu":
                data[name] = pd.arrays.IntegerArray(col, mask)
            elif col.dtype.kind == "U":
                data[name] = pd.Series(col.astype(object), dtype=text)
            else:
                data[name] = col
        return pd.DataFrame(data, copy=False)

    def to_zeek(self, out, header: bool = True, footer: bool = True) -> None:
        """Write a Zeek conn.log (TSV with the ``#fields`` header that
        zeek-cut reads) to a text file object.  As Zeek does, duration and
        byte counts are unset (``-``) when the duration is 0; fields fastseg
        does not have (service, local_*, *_ip_bytes,
        tunnel_parents) are unset too.  ``header``/``footer`` off write the
        rows alone, so a log can be written in chunks."""
        import time as _time

        fields = ["ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "service",
                  "duration", "orig_bytes", "resp_bytes", "conn_state", "local_orig", "local_resp",
                  "missed_bytes", "history", "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes",
                  "tunnel_parents"]
        types = ["time", "string", "addr", "port", "addr", "port", "enum", "string", "interval", "count",
                 "count", "string", "bool", "bool", "count", "string", "count", "count", "count", "count",
                 "set[string]"]
        stamp = _time.strftime("%Y-%m-%d-%H-%M-%S", _time.gmtime())
        if header:
            out.write("#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n"
                      f"#path\tconn\n#open\t{stamp}\n#fields\t" + "\t".join(fields) + "\n#types\t"
                      + "\t".join(types) + "\n")
        c = self._cols
        has = np.asarray(c["duration"], dtype=np.float64) > 0
        unset = ~has
        empty_history = np.asarray(c["history"]) == ""
        dash = ("const", b"-", 0, None)
        texts = {name: self.text_bytes(name) for name in ("uid", "conn_state", "history")}
        for lo in range(0, len(self), _FORMAT_CHUNK):
            part = slice(lo, lo + _FORMAT_CHUNK)
            text = lambda name: texts[name][part]  # noqa: E731
            cols = [("float", c["ts"][part], 6, None), ("bytes", text("uid"), 0, None),
                    ("bytes", address_bytes(c["orig_h"][part], c["ip_version"][part]), 0, None),
                    ("int", c["orig_p"][part], 0, None),
                    ("bytes", address_bytes(c["resp_h"][part], c["ip_version"][part]), 0, None),
                    ("int", c["resp_p"][part], 0, None), ("const", b"tcp", 0, None), dash,
                    ("float", c["duration"][part], 6, unset[part]),
                    ("int", c["orig_bytes"][part], 0, unset[part]),
                    ("int", c["resp_bytes"][part], 0, unset[part]),
                    ("bytes", text("conn_state"), 0, None), dash, dash,
                    ("int", c["missed_bytes"][part], 0, None),
                    ("bytes", text("history"), 0, empty_history[part]),
                    ("int", c["orig_pkts"][part], 0, None), dash,
                    ("int", c["resp_pkts"][part], 0, None), dash, dash]
            out.write(_format.format_rows(cols).decode("ascii"))
        if footer:
            out.write(f"#close\t{_time.strftime('%Y-%m-%d-%H-%M-%S', _time.gmtime())}\n")

    def to_arrow(self):
        """A pyarrow Table: addresses as strings, nulls as nulls, states
        dictionary-encoded."""
        import pyarrow as pa

        arrays, names = [], []
        for name in self.columns:
            col = self._cols[name]
            mask = self.null_mask(name)
            if name in _ADDRESS_COLUMNS:
                arr = pa.array(format_addresses(col, self._cols["ip_version"]), type=pa.string())
            elif col.dtype.kind == "U":
                arr = pa.array(col.astype(object), type=pa.string(), mask=mask)
                if name in _CATEGORICAL:
                    arr = arr.dictionary_encode()
            else:
                arr = pa.array(col, mask=mask)
            arrays.append(arr)
            names.append(name)
        return pa.Table.from_arrays(arrays, names=names)
