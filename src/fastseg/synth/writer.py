"""Capture files: pcap and pcapng headers and records, plain or compressed.

``records`` turns header rows plus slices of a payload buffer into file bytes
(the copy is the ``_synth.assemble`` kernel); ``capture_bytes`` and
``write_capture`` do the same for a list of ready frames, which is how the
tests, the benchmarks and the fuzz corpus write their captures.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np

from .. import _consts
from .._synth import assemble

_US = _consts.NS_PER_US
_SEC = _consts.NS_PER_SEC
PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D


def file_header(fmt: str, nanosecond: bool, snaplen: int,
                linktype: int = _consts.LINKTYPE_ETHERNET) -> bytes:
    """The pcap file header, or a pcapng Section Header Block and one Interface
    Description Block (``if_tsresol`` = 9 for nanoseconds), little-endian."""
    if fmt == "pcap":
        magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
        return np.array([magic], "<u4").tobytes() + np.array([2, 4], "<u2").tobytes() + \
            np.array([0, 0, snaplen, linktype], "<u4").tobytes()
    shb = (np.array([0x0A0D0D0A, 28, 0x1A2B3C4D], "<u4").tobytes()
           + np.array([1, 0], "<u2").tobytes()
           + np.array([-1], "<i8").tobytes() + np.array([28], "<u4").tobytes())
    opts = b""
    if nanosecond:
        # if_tsresol = 9: timestamps in nanoseconds (default is microseconds).
        opts = np.array([9, 1], "<u2").tobytes() + b"\x09\x00\x00\x00" + \
            np.array([0, 0], "<u2").tobytes()
    blen = 20 + len(opts)
    idb = (np.array([1, blen], "<u4").tobytes()
           + np.array([linktype, 0], "<u2").tobytes()
           + np.array([snaplen], "<u4").tobytes() + opts + np.array([blen], "<u4").tobytes())
    return shb + idb


def records(fmt, nanosecond, snaplen, head, hlen, plen, pattern, pay_off, ts, wirelen=None):
    """File bytes for a run of packets (already in time order): packet i is
    ``head[i, :hlen[i]]`` then ``pattern[pay_off[i]:pay_off[i] + plen[i]]``,
    cut to ``snaplen``; ``ts`` in nanoseconds; ``wirelen`` the original
    lengths (default: the packets' full lengths)."""
    n = len(ts)
    full = hlen.astype(np.int64) + plen
    orig = full if wirelen is None else wirelen
    cap = np.minimum(full, snaplen)
    head_cap = np.minimum(hlen, cap).astype(np.int32)
    pay_cap = (cap - head_cap).astype(np.int32)
    if fmt == "pcap":
        pre = np.empty((n, 4), "<u4")
        pre[:, 0] = ts // _SEC
        pre[:, 1] = (ts % _SEC) if nanosecond else (ts % _SEC) // _US
        pre[:, 2] = cap
        pre[:, 3] = orig
        pre_len, trailer = 16, 0
    else:
        units = ts if nanosecond else ts // _US
        pad = (-cap) % 4
        pre = np.empty((n, 7), "<u4")
        pre[:, 0] = 6
        pre[:, 1] = 32 + cap + pad
        pre[:, 2] = 0
        pre[:, 3] = units >> 32
        pre[:, 4] = units & 0xffffffff
        pre[:, 5] = cap
        pre[:, 6] = orig
        pre_len, trailer = 28, 4
    total = int(n * (pre_len + trailer) + cap.sum() + (((-cap) % 4).sum() if trailer else 0))
    out = np.empty(total, np.uint8)
    pre8 = pre.view(np.uint8).reshape(n, pre_len)
    w = assemble(out, pre8, pre_len, head, head_cap, pattern, pay_off.astype(np.int64),
                 pay_cap, fmt == "pcapng")
    assert w == total
    return out


def open_output(path: str):
    """The capture file, compressed when its name ends in .gz (stdlib) or .zst
    (needs the optional ``zstandard`` package)."""
    low = path.lower()
    if low.endswith(".gz"):
        import gzip
        return gzip.open(path, "wb", compresslevel=1)
    if low.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise ValueError(f"{path}: writing .zst needs the 'zstandard' package") from None
        return zstandard.ZstdCompressor(level=1).stream_writer(open(path, "wb"),
                                                               closefd=True)
    return open(path, "wb")


def capture_bytes(frames, ts_ns: Optional[Sequence[int]] = None, *,
                  linktype: int = _consts.LINKTYPE_ETHERNET, format: str = "pcap",
                  nanosecond: bool = False, snaplen: int = 262144,
                  wirelen=None) -> bytes:
    """A whole capture file holding ``frames`` in order: a sequence of
    link-layer ``bytes``, or an (n, L) uint8 array of n frames of L bytes.

    ``ts_ns``: nanosecond timestamps (default: frame i at i microseconds);
    ``wirelen``: original lengths when they differ from the frames' lengths."""
    n = len(frames)
    ts = (np.arange(n, dtype=np.int64) * _US if ts_ns is None
          else np.broadcast_to(np.asarray(ts_ns, np.int64), (n,)))
    orig = None if wirelen is None else np.broadcast_to(np.asarray(wirelen, np.int64), (n,))
    if isinstance(frames, np.ndarray) and frames.ndim == 2:
        # Equal-length frames: each row is a whole "header", no payload.
        head = np.ascontiguousarray(frames, np.uint8)
        hlen = np.full(n, head.shape[1], np.int32)
        lens = np.zeros(n, np.int64)
        pattern = np.zeros(1, np.uint8)
        pay_off = np.zeros(n, np.int64)
    else:
        lens = np.fromiter((len(f) for f in frames), np.int64, n)
        pattern = np.frombuffer(b"".join(bytes(f) for f in frames) or b"\0", np.uint8)
        pay_off = np.zeros(n, np.int64)
        if n:
            pay_off[1:] = np.cumsum(lens[:-1])
        # Every byte comes from the pattern; ``head`` is one unused column.
        head = np.zeros((n, 1), np.uint8)
        hlen = np.zeros(n, np.int32)
    body = records(format, nanosecond, snaplen, head, hlen, lens, pattern, pay_off, ts,
                   orig) if n else b""
    return file_header(format, nanosecond, snaplen, linktype) + bytes(body)


def write_capture(path: Union[str, os.PathLike], frames: Sequence[bytes],
                  ts_ns: Optional[Sequence[int]] = None, **kwargs) -> None:
    """Write ``capture_bytes(frames, ts_ns, **kwargs)`` to ``path`` (compressed
    when the name ends in .gz or .zst)."""
    data = capture_bytes(frames, ts_ns, **kwargs)
    with open_output(os.fspath(path)) as f:
        f.write(data)
