"""Parser face: packet batches -> Segments.

The work happens in :mod:`fastseg._parse` (one GIL-free pass per batch); this
module adapts its inputs (capture batches, lists of packets, raw arrays) and
keeps the capture accounting.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Optional

import numpy as np

from . import _consts, _parse
from .errors import CaptureError
from .segments import CaptureStats, Segments

__all__ = ["open", "read_segments", "parse_packets", "parse_batch", "CaptureFile"]


def _segments(data: np.ndarray, offset, caplen, wirelen, ts_ns, linktype,
              first_frame: int) -> Segments:
    cols, outcome = _parse.parse_batch(data, offset, caplen, wirelen, ts_ns, linktype,
                                       int(first_frame))
    counts = np.bincount(outcome, minlength=_consts.N_OUTCOMES)
    not_decoded = {}
    if counts[_consts.OUT_UNSUPPORTED_LINKTYPE]:
        lt = np.bincount(np.asarray(linktype)[outcome == _consts.OUT_UNSUPPORTED_LINKTYPE])
        not_decoded = {int(k): int(lt[k]) for k in np.flatnonzero(lt)}
    stats = CaptureStats(counts, not_decoded,
                         np.bincount(cols["opt_status"], minlength=len(_consts.OPT_STATUS_NAMES)))
    return Segments(cols, data, stats)


def _byte_array(buf) -> np.ndarray:
    # The same object comes back for a 1-D uint8 array, so batches that share
    # one memory map are recognised by identity.
    if isinstance(buf, np.ndarray) and buf.dtype == np.uint8 and buf.ndim == 1 \
            and buf.flags.c_contiguous:
        return buf
    arr = buf if isinstance(buf, np.ndarray) else np.frombuffer(buf, dtype=np.uint8)
    return np.ascontiguousarray(arr).reshape(-1).view(np.uint8)


def parse_batch(batch) -> Segments:
    """Parse one :class:`fastseg.PacketBatch` (anything with ``data``,
    ``offset``, ``caplen``, ``wirelen``, ``ts_ns``, ``linktype`` and
    ``first_frame``).  The rows point into ``batch.data``."""
    data = _byte_array(batch.data)
    n = len(batch.offset)
    return _segments(
        data,
        np.ascontiguousarray(batch.offset, dtype=np.int64),
        np.ascontiguousarray(batch.caplen, dtype=np.uint32),
        np.ascontiguousarray(batch.wirelen, dtype=np.uint32),
        np.ascontiguousarray(batch.ts_ns, dtype=np.int64),
        np.ascontiguousarray(np.broadcast_to(batch.linktype, (n,)), dtype=np.uint16),
        batch.first_frame,
    )


def parse_packets(packets: Optional[Iterable[bytes]] = None, *, linktype=1, ts_ns=None,
                  first_frame: int = 1, data=None, offset=None, caplen=None,
                  wirelen=None) -> Segments:
    """Parse packets held in memory into a :class:`Segments` table.

    Either ``packets``, an iterable of bytes-like packets (each one whole
    captured record starting at its link-layer header), or the raw arrays
    ``data`` (uint8 buffer), ``offset`` (start of each packet in ``data``) and
    ``caplen`` (captured bytes).  ``wirelen`` defaults to ``caplen``;
    ``linktype`` (a LINKTYPE_* value, scalar or per packet) defaults to
    Ethernet; ``ts_ns`` (ns since the epoch, scalar or per packet) to 0.
    Frame numbers start at ``first_frame``.  The result's ``stats`` accounts
    for every packet and its ``data`` is the buffer the rows point into.
    """
    if packets is not None:
        if data is not None or offset is not None or caplen is not None:
            raise TypeError("give either packets or data/offset/caplen, not both")
        chunks = [memoryview(p).cast("B") for p in packets]
        lengths = np.fromiter((len(p) for p in chunks), dtype=np.int64, count=len(chunks))
        data = np.frombuffer(b"".join(chunks), dtype=np.uint8)
        offset = np.zeros(len(chunks), dtype=np.int64)
        if len(chunks) > 1:
            np.cumsum(lengths[:-1], out=offset[1:])
        caplen = lengths.astype(np.uint32)
    else:
        if data is None or offset is None or caplen is None:
            raise TypeError("parse_packets needs packets, or data, offset and caplen")
        data = _byte_array(data)
        offset = np.ascontiguousarray(offset, dtype=np.int64).reshape(-1)
        caplen = np.ascontiguousarray(caplen, dtype=np.uint32).reshape(-1)
    n = len(offset)
    if wirelen is None:
        wirelen = caplen
    wirelen = np.ascontiguousarray(np.broadcast_to(wirelen, (n,)), dtype=np.uint32)
    ts = np.ascontiguousarray(np.broadcast_to(0 if ts_ns is None else ts_ns, (n,)), dtype=np.int64)
    lt = np.ascontiguousarray(np.broadcast_to(linktype, (n,)), dtype=np.uint16)
    return _segments(data, offset, caplen, wirelen, ts, lt, first_frame)


class CaptureFile:
    """An open capture, parsed batch by batch in bounded memory.

    ``with fastseg.open(path) as cap: for seg in cap.batches(): ...``; each
    batch is a :class:`Segments` table; ``stats`` is the running accounting
    of the packets parsed so far.
    """

    def __init__(self, path, **reader_kwargs):
        from .capture import open_capture

        self.path = path
        self.stats = CaptureStats()
        self._reader = open_capture(path, **reader_kwargs)

    def batches(self) -> Iterator[Segments]:
        """One :class:`Segments` per packet batch of the file.  A damaged
        file raises :class:`fastseg.CaptureError` after the good batches."""
        for batch in self._reader:
            seg = parse_batch(batch)
            self.stats += seg.stats
            yield seg

    __iter__ = batches

    @property
    def reader(self):
        """The underlying CaptureReader (format, interfaces, bytes read)."""
        return self._reader

    def close(self) -> None:
        """Release the file (and its memory map)."""
        close = getattr(self._reader, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> "CaptureFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<CaptureFile {self.path!r} {self.stats!r}>"


def open(path, **reader_kwargs) -> CaptureFile:  # noqa: A001 - fastseg.open by design
    """Open a pcap/pcapng (optionally .gz/.zst) capture for batch-wise parsing.
    Keyword arguments go to :func:`fastseg.open_capture` (``batch_packets``,
    ``batch_bytes``)."""
    return CaptureFile(path, **reader_kwargs)


def read_segments(path, *, keep_bytes: Optional[bool] = None, **reader_kwargs) -> Segments:
    """Every TCP segment of a capture file as one :class:`Segments` table.

    ``keep_bytes``: ``None`` keeps the packet bytes (``Segments.data``) when
    every batch points into one buffer (an uncompressed file's memory map) and
    drops them otherwise; ``True`` always keeps them (joining buffers);
    ``False`` never does.  A damaged file raises :class:`fastseg.CaptureError`
    whose ``partial`` holds the segments read before the damage; a file cut
    off mid-record reads to its last whole record with a
    :class:`fastseg.TruncatedCaptureWarning`.
    """
    parts = []
    shared = True
    first_data = None

    def add(seg: Segments) -> None:
        nonlocal shared, first_data
        if not parts:
            first_data = seg.data
        elif seg.data is not first_data and shared:
            shared = False
            if keep_bytes is not True:
                for p in parts:
                    p.data = None
        if not shared and keep_bytes is not True:
            seg.data = None
        parts.append(seg)

    def result() -> Segments:
        out = Segments.concat(parts, keep_bytes=bool(keep_bytes))
        if keep_bytes is False or (not shared and keep_bytes is not True):
            out.data = None
        return out

    with CaptureFile(path, **reader_kwargs) as cap:
        try:
            for seg in cap.batches():
                add(seg)
        except CaptureError as err:
            raise CaptureError(err.path, err.offset, err.reason, partial=result()) from err
    return result()
