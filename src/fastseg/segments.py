"""The Segments table: one row per TCP segment, one numpy array per column."""
from __future__ import annotations

import ipaddress
from typing import Dict, Iterable, List, Optional

import numpy as np

from . import _consts
from ._format import address_text

__all__ = ["Segments", "CaptureStats", "SEGMENT_DTYPES", "NULL_SENTINELS",
           "format_addresses", "parse_addresses"]

# Public columns, in output order.  Addresses are (n, 16) uint8 rows of
# network-order bytes; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) and
# ``ip_version`` says which it is.
SEGMENT_DTYPES: Dict[str, object] = {
    "frame": np.int64,             # 1-based position in the capture (tshark frame.number)
    "ts_ns": np.int64,             # ns since the epoch
    "ip_version": np.uint8,
    "src": (np.uint8, 16),
    "dst": (np.uint8, 16),
    "sport": np.uint16,
    "dport": np.uint16,
    "seq": np.uint32,
    "ack": np.uint32,
    "flags": np.uint16,            # FIN SYN RST PSH ACK URG ECE CWR NS = bits 0..8, reserved 9..11
    "hdr_len": np.uint8,           # TCP header bytes
    "payload_len": np.uint32,      # from the IP length, not the captured length
    "window": np.uint16,           # raw, unscaled
    "checksum": np.uint16,         # raw field
    "urgent": np.uint16,
    "ttl": np.uint8,               # IPv4 TTL / IPv6 hop limit
    "ip_id": np.int32,             # IPv4 identification; -1 for IPv6
    "mss": np.int32,               # -1 when absent
    "wscale": np.int16,            # -1 when absent
    "sack_perm": np.bool_,
    "sack_blocks": np.uint8,       # number of SACK blocks (0 when absent)
    "tsval": np.int64,             # -1 when absent
    "tsecr": np.int64,             # -1 when absent
    "tfo_cookie_len": np.int16,    # -1 when absent; 0 = cookie request
    "checksum_status": np.uint8,   # 0 ok, 1 bad, 2 unverified
    "ip_checksum_status": np.uint8,  # IPv4 header: 0 ok, 1 bad, 2 unverified, 3 n/a (IPv6)
    "fragment": np.bool_,          # first fragment of a fragmented IP packet
    "opt_status": np.uint8,        # options: 0 ok, 1 cut by the snapshot length, 2 bad length
    "opt_other": np.uint8,         # options with no column of their own: OPT_* bits of _consts
    "tunnel": np.uint8,            # outermost IP tunnel: TUN_* of fastseg._consts, 0 = none
    "tunnel_id": np.uint32,        # direction-free id of that tunnel's endpoints (and VNI); 0 = none
    "encap": np.uint32,            # every encapsulation crossed: ENC_* bits of fastseg._consts
    "flow_key": np.uint64,         # direction-free 4-tuple hash, stable everywhere
}

# Columns that are not part of the public table but travel with each row:
# where the IP and TCP headers sit in ``Segments.data`` and how many bytes of
# the packet from the IP header on were captured.
HIDDEN_DTYPES: Dict[str, object] = {
    "_l3_off": np.int64,
    "_l4_off": np.int64,
    "_l3_caplen": np.uint32,
    # 1 when a bad checksum holds the unfilled pseudo-header sum (offload),
    # set by the parser; CSUM_UNFILLED_UNKNOWN until something computes it.
    "_csum_unfilled": np.uint8,
}
CSUM_UNFILLED_UNKNOWN = 2

# The value that stands for "absent" in each nullable column; null in pandas,
# Arrow, JSON and CSV output.
NULL_SENTINELS = {
    "ip_id": _consts.IP_ID_ABSENT, "mss": _consts.MSS_ABSENT, "wscale": _consts.WSCALE_ABSENT,
    "tsval": _consts.TS_ABSENT, "tsecr": _consts.TS_ABSENT, "tfo_cookie_len": _consts.TFO_ABSENT,
}
# The same for the loss-analysis columns a tracked table may carry.
_NULLS = {**NULL_SENTINELS, "bytes_in_flight": -1}

_STATUS_CATEGORIES = list(_consts.CHECKSUM_STATUS_NAMES)
_ADDRESS_COLUMNS = ("src", "dst")


# Columns that are zero for plain traffic: allocated zero-filled (untouched
# pages cost nothing) and written by the parser only where they are not.
ZEROED_COLUMNS = ("opt_status", "opt_other", "tunnel", "tunnel_id", "encap")


def empty_columns(n: int, hidden: bool = True) -> Dict[str, np.ndarray]:
    """Arrays for ``n`` rows of every column: uninitialised, except the
    ZEROED_COLUMNS, which are zero."""
    specs = dict(SEGMENT_DTYPES)
    if hidden:
        specs.update(HIDDEN_DTYPES)
    out = {}
    for name, dt in specs.items():
        if isinstance(dt, tuple):
            out[name] = np.empty((n, dt[1]), dtype=dt[0])
        elif name in ZEROED_COLUMNS:
            out[name] = np.zeros(n, dtype=dt)
        else:
            out[name] = np.empty(n, dtype=dt)
    if "_csum_unfilled" in out:
        out["_csum_unfilled"][:] = CSUM_UNFILLED_UNKNOWN
    return out


def format_addresses(addrs: np.ndarray, ip_version: np.ndarray) -> np.ndarray:
    """Text form of (n, 16) address rows, an object array of ``str``: dotted
    quad for IPv4, RFC 5952 for IPv6 (the text of Python's ``ipaddress``),
    formatted by a C kernel."""
    return address_text(addrs, ip_version)


def parse_addresses(texts: Iterable[str]) -> np.ndarray:
    """(n, 16) uint8 rows from address strings (IPv4 stored IPv4-mapped)."""
    rows = []
    for t in texts:
        a = ipaddress.ip_address(t)
        if a.version == 4:
            rows.append(b"\0" * 10 + b"\xff\xff" + a.packed)
        else:
            rows.append(a.packed)
    if not rows:
        return np.empty((0, 16), dtype=np.uint8)
    return np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 16).copy()


class CaptureStats:
    """What became of every packet of a capture.

    ``packets == tcp + non_tcp + malformed`` always; ``counts`` holds one
    count per outcome code of ``fastseg._consts.Outcome``; ``not_decoded``
    maps each link type the parser does not decode to its packets (they are
    counted as ``unsupported_link_type``).  Segments whose options the
    snapshot length cut or whose option lengths are bad are ``tcp``, counted
    again in ``options`` (one count per ``OptStatus``).
    """

    def __init__(self, counts=None, not_decoded=None, options=None):
        self.counts = (np.zeros(_consts.N_OUTCOMES, dtype=np.int64) if counts is None
                       else np.asarray(counts, dtype=np.int64).copy())
        self.not_decoded: Dict[int, int] = dict(not_decoded or {})
        self.options = (np.zeros(len(_consts.OPT_STATUS_NAMES), dtype=np.int64) if options is None
                        else np.asarray(options, dtype=np.int64).copy())

    def __iadd__(self, other: "CaptureStats"):
        self.counts += other.counts
        self.options += other.options
        for linktype, n in other.not_decoded.items():
            self.not_decoded[linktype] = self.not_decoded.get(linktype, 0) + n
        return self

    def __add__(self, other: "CaptureStats") -> "CaptureStats":
        out = CaptureStats(self.counts, self.not_decoded, self.options)
        out += other
        return out

    @property
    def link_types_not_decoded(self) -> List[dict]:
        """``[{"link_type", "name", "packets"}]``, most packets first."""
        return [{"link_type": lt, "name": _consts.linktype_name(lt), "packets": n}
                for lt, n in sorted(self.not_decoded.items(), key=lambda kv: (-kv[1], kv[0]))]

    @property
    def packets(self) -> int:
        return int(self.counts.sum())

    @property
    def tcp(self) -> int:
        return int(self.counts[_consts.OUT_TCP])

    @property
    def non_tcp(self) -> int:
        return int(self.counts[1:_consts.NON_TCP_LAST + 1].sum())

    @property
    def malformed(self) -> int:
        return int(self.counts[_consts.NON_TCP_LAST + 1:].sum())

    def _named(self, lo, hi):
        return {_consts.OUTCOME_NAMES[i]: int(self.counts[i])
                for i in range(lo, hi) if self.counts[i]}

    @property
    def non_tcp_by_reason(self) -> Dict[str, int]:
        return self._named(1, _consts.NON_TCP_LAST + 1)

    @property
    def malformed_by_reason(self) -> Dict[str, int]:
        return self._named(_consts.NON_TCP_LAST + 1, _consts.N_OUTCOMES)

    def to_dict(self) -> dict:
        return {
            "packets": self.packets, "tcp": self.tcp, "non_tcp": self.non_tcp,
            "malformed": self.malformed,
            "non_tcp_by_reason": self.non_tcp_by_reason,
            "malformed_by_reason": self.malformed_by_reason,
            "tcp_options": {"cut": int(self.options[_consts.OPTS_CUT]),
                            "bad": int(self.options[_consts.OPTS_BAD])},
            "link_types_not_decoded": self.link_types_not_decoded,
        }

    def __repr__(self):
        return (f"CaptureStats(packets={self.packets}, tcp={self.tcp}, "
                f"non_tcp={self.non_tcp}, malformed={self.malformed})")


class Segments:
    """One row per TCP segment; columns are numpy arrays (see SEGMENT_DTYPES).

    ``seg["seq"]`` gives a column, ``seg[mask]`` / ``seg[10:20]`` a new table
    sharing nothing mutable with this one except the packet bytes.  ``data`` is
    the buffer the rows point into (a read-only memory map for uncompressed
    files), or ``None`` when the bytes were not kept.  ``stats`` is the
    capture accounting of the packets these rows came from.
    """

    __slots__ = ("_cols", "data", "stats")

    def __init__(self, columns: Dict[str, np.ndarray], data: Optional[np.ndarray] = None,
                 stats: Optional[CaptureStats] = None):
        self._cols = dict(columns)
        self.data = data
        self.stats = stats if stats is not None else CaptureStats()
        n = None
        for name, col in self._cols.items():
            if n is None:
                n = len(col)
            elif len(col) != n:
                raise ValueError(f"column {name!r} has {len(col)} rows, expected {n}")

    @classmethod
    def empty(cls) -> "Segments":
        return cls(empty_columns(0))

    # -- table protocol -------------------------------------------------
    def __len__(self) -> int:
        for col in self._cols.values():
            return len(col)
        return 0

    @property
    def columns(self) -> List[str]:
        """Public column names (hidden ``_``-prefixed ones excluded)."""
        return [c for c in self._cols if not c.startswith("_")]

    def __contains__(self, name) -> bool:
        return name in self._cols

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._cols[key]
        if isinstance(key, (int, np.integer)):
            key = slice(int(key), int(key) + 1 if int(key) != -1 else None)
        return Segments({k: v[key] for k, v in self._cols.items()}, self.data, self.stats)

    def __setitem__(self, name: str, values) -> None:
        values = np.asarray(values)
        if len(values) != len(self):
            raise ValueError(f"column {name!r} needs {len(self)} rows, got {len(values)}")
        self._cols[name] = values

    def __getattr__(self, name):
        if name == "_cols" or name.startswith("__"):
            # not set yet (an instance being unpickled) or a protocol name
            raise AttributeError(name)
        try:
            return self._cols[name]
        except KeyError:
            raise AttributeError(name) from None

    def __repr__(self) -> str:
        return f"<Segments: {len(self)} rows, {len(self.columns)} columns>"

    def __iter__(self):
        return iter(self.columns)

    def keys(self):
        return self.columns

    # -- helpers --------------------------------------------------------
    def src_text(self) -> np.ndarray:
        """Source addresses as strings."""
        return format_addresses(self._cols["src"], self._cols["ip_version"])

    def dst_text(self) -> np.ndarray:
        """Destination addresses as strings."""
        return format_addresses(self._cols["dst"], self._cols["ip_version"])

    def null_mask(self, name: str) -> Optional[np.ndarray]:
        """True where the column holds its absent-value sentinel."""
        if name not in _NULLS:
            return None
        return self._cols[name] == _NULLS[name]

    @staticmethod
    def concat(parts: List["Segments"], keep_bytes: bool = True) -> "Segments":
        """Stack tables row-wise.  Packet bytes are kept when every part shares
        one buffer (or when ``keep_bytes`` asks and they can be joined)."""
        parts = list(parts)
        if not parts:
            return Segments.empty()
        stats = CaptureStats()
        for p in parts:
            stats += p.stats
        names = list(parts[0]._cols)
        cols = {n: np.concatenate([p._cols[n] for p in parts]) for n in names}
        datas = [p.data for p in parts]
        data = None
        if all(d is datas[0] for d in datas) or len(parts) == 1:
            data = datas[0]
        elif keep_bytes and all(d is not None for d in datas) and "_l3_off" in cols:
            shift, pos = [], 0
            for d in datas:
                shift.append(pos)
                pos += len(d)
            rep = np.repeat(np.array(shift, dtype=np.int64), [len(p) for p in parts])
            cols["_l3_off"] = cols["_l3_off"] + rep
            cols["_l4_off"] = cols["_l4_off"] + rep
            data = np.concatenate(datas)
        return Segments(cols, data, stats)

    # -- conversions ----------------------------------------------------
    def to_numpy(self) -> np.ndarray:
        """A structured array with one field per public column."""
        fields = []
        for name in self.columns:
            col = self._cols[name]
            if col.ndim == 2:
                fields.append((name, col.dtype, (col.shape[1],)))
            else:
                fields.append((name, col.dtype))
        out = np.empty(len(self), dtype=fields)
        for name in self.columns:
            out[name] = self._cols[name]
        return out

    def to_pandas(self):
        """A pandas DataFrame: addresses as text, absent options as <NA>,
        checksum statuses as a categorical.  Numeric columns are not copied."""
        import pandas as pd

        text = pd.Series(["x"]).dtype       # as for a full table when empty too
        data = {}
        for name in self.columns:
            col = self._cols[name]
            if name in _ADDRESS_COLUMNS:
                data[name] = pd.Series(format_addresses(col, self._cols["ip_version"]), dtype=text)
            elif name in ("checksum_status", "ip_checksum_status"):
                data[name] = pd.Categorical.from_codes(col.astype(np.int8), _STATUS_CATEGORIES)
            elif name in _NULLS:
                data[name] = pd.arrays.IntegerArray(col, col == _NULLS[name])
            elif name == "analysis":
                from .loss import flag_names
                data[name] = flag_names(col)
            else:
                data[name] = col
        return pd.DataFrame(data, copy=False)

    def to_arrow(self):
        """A pyarrow Table: addresses as strings, absent options as nulls,
        checksum statuses dictionary-encoded."""
        import pyarrow as pa

        arrays, names = [], []
        for name in self.columns:
            col = self._cols[name]
            if name in _ADDRESS_COLUMNS:
                arr = pa.array(format_addresses(col, self._cols["ip_version"]), type=pa.string())
            elif name in ("checksum_status", "ip_checksum_status"):
                arr = pa.DictionaryArray.from_arrays(
                    pa.array(col.astype(np.int8)), pa.array(_STATUS_CATEGORIES))
            elif name in _NULLS:
                arr = pa.array(col, mask=col == _NULLS[name])
            elif name == "analysis":
                from .loss import flag_names_arrow
                arr = flag_names_arrow(col)
            elif name == "ack_rtt":
                arr = pa.array(col, from_pandas=True)      # NaN: no RTT -> null
            else:
                arr = pa.array(col)
            arrays.append(arr)
            names.append(name)
        return pa.Table.from_arrays(arrays, names=names)
