"""Capture reader: pcap / pcapng, plain or gzip / zstd compressed -> PacketBatch.

:func:`open_capture` returns a :class:`CaptureReader`, an iterable of
:class:`PacketBatch` (columnar numpy arrays, one row per packet record).

Formats
    pcap with microsecond (``a1b2c3d4``), nanosecond (``a1b23c4d``) and the
    old "modified" (``a1b2cd34``, 24-byte record header) magics, either byte
    order; the FCS bits of the link-type field are masked off as libpcap does.
    pcapng: SHB (byte order per section; a new section forgets the previous
    section's interfaces), IDB (``if_tsresol`` in both the power-of-10 and the
    power-of-2 form, ``if_tsoffset``), EPB, SPB (interface 0; no timestamp,
    so ``ts_ns`` is 0), obsolete PB; every other block type is skipped by its
    length.  Compression is recognised by magic bytes, not by file name: gzip
    (``1f 8b``, multi-member too) and zstd (``28 b5 2f fd``, needs the optional
    ``zstandard`` package).

Memory
    An uncompressed regular file is memory-mapped and never copied: every
    batch's ``data`` is the same read-only uint8 view of the whole file and
    ``offset`` holds absolute file offsets.  Compressed input, pipes and file
    objects are streamed in chunks of about ``batch_bytes``; each batch owns a
    buffer of whole records (a record cut by a chunk boundary is carried over),
    so memory stays bounded by ``batch_bytes`` plus one record.

Per-record caps (a larger length field is damage, never an allocation)
    * captured length of one packet: 16 MiB (``CAPLEN_MAX``)
    * total length of one pcapng block: 64 MiB (``BLOCK_MAX``)
    * interfaces in one file: 1,048,576 (``INTERFACES_MAX``)

Damage
    Every whole record before the damage is yielded, then
    :class:`fastseg.CaptureError` names the file, the byte offset of the bad
    record (in the decompressed stream for compressed input) and the fault.
    A file that ends inside a record (a killed tcpdump) is not damage: it
    warns :class:`fastseg.TruncatedCaptureWarning` and stops normally.  So
    does compressed input cut short (a failed download): every whole record
    its bytes decompress to is read, as tshark reads them.

Byte ranges
    :func:`index_capture` cuts an uncompressed file into :class:`ByteRange`
    pieces of about ``target_bytes`` at record boundaries, reading only
    record and block headers (the scanner, no packet parsing).  A pcapng
    range names the SHB and IDBs in force at its start;
    ``open_capture(path, byte_range=r)`` reads those blocks, then the
    range's records only, so the ranges of a file read on their own (on
    different machines) give exactly the batches of one pass, frame numbers
    included.

Frames
    ``first_frame`` counts packet records (EPB, SPB, PB, pcap records).
    tshark also numbers pcapng custom, systemd-journal and event blocks as
    frames; in files holding those, frame numbers drift from tshark's.
"""
import io
import mmap
import os
import struct
import sys
import warnings
import zlib
from typing import List, NamedTuple, Optional, Tuple

import numpy as np

from . import _capture
from .errors import CaptureError, TruncatedCaptureWarning

__all__ = ["PacketBatch", "CaptureReader", "open_capture", "ByteRange", "index_capture",
           "CAPLEN_MAX", "BLOCK_MAX", "INTERFACES_MAX", "STDIN"]

STDIN = "-"         # the path that names standard input (as in tcpdump -r -)

CAPLEN_MAX = _capture.CAPLEN_MAX
BLOCK_MAX = _capture.BLOCK_MAX
INTERFACES_MAX = 1 << 20

_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_SHB_TYPE = b"\x0a\x0d\x0d\x0a"
# first four bytes -> (big endian, nanosecond, record header length)
_PCAP_MAGICS = {
    b"\xa1\xb2\xc3\xd4": (True, False, 16),
    b"\xd4\xc3\xb2\xa1": (False, False, 16),
    b"\xa1\xb2\x3c\x4d": (True, True, 16),
    b"\x4d\x3c\xb2\xa1": (False, True, 16),
    b"\xa1\xb2\xcd\x34": (True, False, 24),   # Alexey Kuznetzov's patched libpcap
    b"\x34\xcd\xb2\xa1": (False, False, 24),
}
_PCAP_HEADER_LEN = 24
_READ_PIECE = 1 << 18
_IDB_TYPE = 1
_OPT_IF_NAME, _OPT_IF_DESCRIPTION = 2, 3
_OPT_IF_TSRESOL, _OPT_IF_FCSLEN, _OPT_IF_TSOFFSET = 9, 13, 14

_REASONS = {
    _capture.ERR_CAPLEN_CAP: "captured length {caplen} over the {cap} byte cap",
    _capture.ERR_BLOCK_SHORT: "bad block length {blen} (less than 12)",
    _capture.ERR_BLOCK_ALIGN: "bad block length {blen} (not a multiple of 4)",
    _capture.ERR_BLOCK_CAP: "bad block length {blen} (over the {bcap} byte cap)",
    _capture.ERR_TRAILER: "bad block length: trailing length {trailer} differs from {blen}",
    _capture.ERR_UNKNOWN_IF: "unknown interface id {if_id} (section has {n_if} interfaces)",
    _capture.ERR_CAPLEN_BLOCK: "captured length {caplen} runs past the end of its {blen} byte block",
    _capture.ERR_BLOCK_BODY: "block length {blen} too short for a block of type {btype}",
}


class PacketBatch:
    """A batch of packet records as columns (numpy arrays of equal length).

    ``data`` (uint8, possibly read-only) holds the bytes; packet ``i`` is
    ``data[offset[i]:offset[i] + caplen[i]]``.  ``caplen`` / ``wirelen``
    (uint32) are the captured and original lengths, ``ts_ns`` (int64) the
    time in ns since the epoch, ``linktype`` (uint16) the LINKTYPE_* of the
    packet's interface, ``record_offset`` (int64) where the record starts in
    the (decompressed) file.  ``first_frame`` is the 1-based frame number of
    row 0; frames count every packet record of the file, as tshark does.
    """

    __slots__ = ("data", "offset", "caplen", "wirelen", "ts_ns", "linktype",
                 "record_offset", "first_frame")

    def __init__(self, data, offset, caplen, wirelen, ts_ns, linktype, record_offset,
                 first_frame=1):
        self.data = data
        self.offset = offset
        self.caplen = caplen
        self.wirelen = wirelen
        self.ts_ns = ts_ns
        self.linktype = linktype
        self.record_offset = record_offset
        self.first_frame = int(first_frame)

    def __len__(self):
        return len(self.offset)

    def packet(self, i):
        """The captured bytes of packet ``i`` (row index in this batch)."""
        start = int(self.offset[i])
        return bytes(self.data[start:start + int(self.caplen[i])])

    @property
    def frame(self):
        """1-based frame numbers of the rows (int64)."""
        return np.arange(self.first_frame, self.first_frame + len(self), dtype=np.int64)

    def __repr__(self):
        return (f"PacketBatch({len(self)} packets, frames {self.first_frame}.."
                f"{self.first_frame + len(self) - 1})")


class ByteRange(NamedTuple):
    """A piece of an uncompressed capture file, readable on its own.

    ``start``/``stop``: file offsets of its first byte (a record or block
    boundary) and one past its last; ``first_frame``: the 1-based frame
    number of its first packet record; ``packets``: its packet records;
    ``ts_first``/``ts_last``: the smallest and largest packet time in it
    (ns, ``None`` without packets); ``header_blocks``: file offsets of the
    pcapng SHB and IDBs in force at ``start`` (empty for pcap);
    ``section``: that SHB's section number (0-based)."""

    start: int
    stop: int
    first_frame: int
    packets: int
    ts_first: Optional[int]
    ts_last: Optional[int]
    header_blocks: Tuple[int, ...] = ()
    section: int = 0


class _Prefixed(io.RawIOBase):
    """A binary stream with bytes already read from it put back in front."""

    def __init__(self, prefix, stream):
        self._prefix = prefix
        self._stream = stream
        self.consumed = len(prefix)     # bytes taken from the underlying stream

    def readable(self):
        return True

    def readinto(self, b):
        if self._prefix:
            k = min(len(b), len(self._prefix))
            b[:k] = self._prefix[:k]
            self._prefix = self._prefix[k:]
            return k
        got = _read_into(self._stream, memoryview(b).cast("B"))
        self.consumed += got
        return got


def _read_into(stream, view):
    """One read of at most len(view) bytes into view; 0 at end of stream."""
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        got = readinto(view)
        return got or 0
    chunk = stream.read(len(view))
    if not chunk:
        return 0
    view[:len(chunk)] = chunk
    return len(chunk)


class _Inflate(io.RawIOBase):
    """A gzip (every member) or zstd (every frame) stream, decompressed.

    Input that ends inside a member (a download cut short) yields every byte
    it holds, then ``EOFError``; corrupt input raises the decompressor's error
    after the bytes before it (so input is fed in small pieces: a bad CRC
    loses only the last piece).  Output per step is bounded (gzip: 1 MiB;
    zstd: what 4 KiB of input decode to), never a whole member."""

    _IN = 1 << 12
    _GZIP_OUT = 1 << 20

    def __init__(self, raw, zstd=None):
        """``raw``: the compressed bytes; ``zstd``: a ``zstandard.ZstdDecompressor``
        for zstd input, ``None`` for gzip."""
        self._raw = raw
        self._zstd = zstd
        self._kind = "gzip" if zstd is None else "zstd"
        self._tail = b""            # input read but not yet fed
        self._out = memoryview(b"")
        self._done = False
        self._cut = False
        self._new_member()

    def readable(self):
        return True

    def _new_member(self):
        if self._zstd is None:
            self._dec = zlib.decompressobj(16 + zlib.MAX_WBITS)     # gzip framing
        else:
            self._dec = self._zstd.decompressobj()
        self._started = False

    def _step(self):
        pending = self._tail or self._raw.read(1 << 16)
        piece, rest = pending[:self._IN], pending[self._IN:]
        if not pending:
            self._done = True
            if self._started and not self._dec.eof:
                self._cut = True
                if self._kind == "gzip":
                    self._out = memoryview(self._dec.flush())
            return
        if not self._started:
            # members may be followed by zero padding (as gzip(1) accepts)
            pending = pending.lstrip(b"\0")
            self._tail = b""
            if not pending:
                return
            self._started = True
            piece, rest = pending[:self._IN], pending[self._IN:]
        if self._kind == "gzip":
            try:
                out = self._dec.decompress(piece, self._GZIP_OUT)
            except zlib.error as exc:
                if "data check" in str(exc):
                    raise zlib.error("CRC check failed (the member's CRC32 does not "
                                     "match its data)") from None
                raise
            self._tail = self._dec.unconsumed_tail + rest
        else:
            out = self._dec.decompress(piece)
            self._tail = rest
        if self._dec.eof:
            self._tail = self._dec.unused_data + self._tail
            self._new_member()
        self._out = memoryview(out)

    def readinto(self, b):
        while not self._out:
            if self._cut:           # every byte handed out: now say where it ended
                self._cut = False
                raise EOFError(f"the {self._kind} stream is cut short")
            if self._done:
                return 0
            self._step()
        k = min(len(b), len(self._out))
        b[:k] = self._out[:k]
        self._out = self._out[k:]
        return k


class _MappedSource:
    """The whole file as one read-only buffer."""

    eof = True
    base = 0
    error = None
    truncated = None

    def __init__(self, fileobj):
        self._map = mmap.mmap(fileobj.fileno(), 0, access=mmap.ACCESS_READ)
        if hasattr(self._map, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
            # One forward pass over headers: let the kernel read ahead and drop behind.
            self._map.madvise(mmap.MADV_SEQUENTIAL)
        self.buf = np.frombuffer(self._map, dtype=np.uint8)
        self._released = 0

    def release(self, upto):
        """Drop the pages before ``upto`` from this process's memory once
        their batches are handed out, so a long pass keeps its resident set
        bounded.  The mapping is read-only and file-backed: a later access to
        those bytes (a Segments table still viewing them) faults them back in."""
        start = self._released
        end = (int(upto) // mmap.PAGESIZE) * mmap.PAGESIZE
        if end - start >= (8 << 20) and hasattr(mmap, "MADV_DONTNEED"):
            try:
                self._map.madvise(mmap.MADV_DONTNEED, start, end - start)
                self._released = end
            except (OSError, ValueError):
                pass

    def close(self):
        self.buf = None
        try:
            self._map.close()
        except BufferError:
            pass        # batches still view the map; it closes with the last of them


class _StreamSource:
    """Sequential chunks of a (decompressed) stream, with partial records carried over."""

    def __init__(self, stream, chunk, closers=()):
        self._stream = stream
        self._chunk = max(int(chunk), 1 << 16)
        self._closers = closers
        self.buf = np.empty(0, np.uint8)
        self.base = 0           # stream offset of buf[0]
        self.eof = False
        self.error = None       # (stream offset, reason) of a damaged compressed stream
        self.truncated = None   # reason the compressed stream ended early

    def refill(self, keep_from, need=0):
        """Drop buf[:keep_from], append at least ``need`` bytes past the kept ones
        (if the stream has them); returns the new position of the kept bytes (0)."""
        carry = self.buf[keep_from:]
        want = max(self._chunk, need - len(carry))
        arr = np.empty(len(carry) + want, np.uint8)
        arr[:len(carry)] = carry
        filled = len(carry)
        view = memoryview(arr)
        goal = len(carry) + max(need - len(carry), 1)
        try:
            while filled < len(arr):
                # Bounded reads: a decompressor that fails (bad CRC, corrupt
                # data) loses only the piece it was producing.
                got = _read_into(self._stream, view[filled:filled + _READ_PIECE])
                if got <= 0:
                    self.eof = True
                    break
                filled += got
                if filled >= goal and filled >= len(carry) + (want >> 1):
                    break
        except EOFError as exc:         # compressed stream cut short
            self.eof = True
            self.truncated = str(exc) or "compressed stream ends early"
        except Exception as exc:        # zlib.error, BadGzipFile, ZstdError, OSError
            self.eof = True
            self.error = (self.base + keep_from + filled, f"damaged compressed stream: {exc}")
        self.base += keep_from
        self.buf = arr[:filled]
        return 0

    def close(self):
        self.buf = None
        for closer in self._closers:
            try:
                closer()
            except Exception:
                pass


class CaptureReader:
    """An open capture: iterate it for :class:`PacketBatch` objects (one pass).

    Attributes: ``path``, ``format`` (``"pcap"`` or ``"pcapng"``),
    ``compression`` (``None``, ``"gzip"`` or ``"zstd"``), ``interfaces`` (a
    dict per interface: ``linktype``, ``snaplen``, ``tsresol`` (ns per
    timestamp tick), ``tsoffset`` (seconds), ``fcs_len``, ``name``,
    ``description``, ``section``), ``bytes_read`` (bytes of the
    (decompressed) file consumed so far), ``packets_read``, ``size`` (bytes
    on disk, ``None`` for streams) and ``raw_bytes_read`` (file bytes
    consumed, compressed ones for .gz/.zst).  Use as a context manager or
    call :meth:`close`.
    """

    def __init__(self, path, *, batch_packets=262144, batch_bytes=64 << 20, use_mmap=True,
                 byte_range: Optional[ByteRange] = None):
        if int(batch_packets) < 1 or int(batch_bytes) < 1:
            raise ValueError("batch_packets and batch_bytes must be positive")
        self._batch_packets = int(batch_packets)
        self._batch_bytes = int(batch_bytes)
        self.format = None
        self.compression = None
        self.interfaces = []
        self.bytes_read = 0
        self.packets_read = 0
        self.size = None
        self._src = None
        self._raw = None
        self._iterated = False
        self._section = -1
        self._blocks: List[int] = []    # offsets of the SHB and IDBs in force
        self._big = False
        if isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path) == STDIN:
            # as libpcap's pcap_open_offline("-"): standard input, streamed
            self.path = STDIN
            fileobj = sys.stdin.buffer
            owned = False
        elif isinstance(path, (str, bytes, os.PathLike)):
            self.path = os.fsdecode(path)
            fileobj = open(path, "rb", buffering=0)
            owned = True
        else:
            fileobj = path
            self.path = str(getattr(path, "name", "<stream>"))
            owned = False
        try:
            self._src = self._open_source(fileobj, owned, use_mmap)
            self._read_file_header()
            if byte_range is not None:
                self._enter_range(byte_range)
        except BaseException:
            self.close()
            if owned:
                fileobj.close()
            raise

    # -- opening ---------------------------------------------------------
    def _open_source(self, fileobj, owned, use_mmap):
        closers = (fileobj.close,) if owned else ()
        regular = False
        try:
            st = os.fstat(fileobj.fileno())
            regular = st.st_mode & 0o170000 == 0o100000
            if regular:
                self.size = st.st_size
        except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
            pass
        if regular and st.st_size == 0:
            raise CaptureError(self.path, 0, "empty file")
        head = b""
        while len(head) < 4:
            got = fileobj.read(4 - len(head))
            if not got:
                break
            head += got
        if not head:
            raise CaptureError(self.path, 0, "empty file")
        if head[:2] == _GZIP_MAGIC or head == _ZSTD_MAGIC:
            raw = _Prefixed(head, fileobj)
            self.compression = "gzip" if head[:2] == _GZIP_MAGIC else "zstd"
            zstd = None
            if self.compression == "zstd":
                try:
                    import zstandard
                except ImportError:
                    raise CaptureError(self.path, 0, "zstd-compressed capture: install the "
                                       "`zstandard` package (pip install zstandard) to read it") from None
                zstd = zstandard.ZstdDecompressor()
            self._raw = raw
            return _StreamSource(_Inflate(raw, zstd), self._batch_bytes, closers)
        if regular and use_mmap and owned:
            src = _MappedSource(fileobj)
            if owned:
                fileobj.close()          # the map holds its own reference to the file
            return src
        return _StreamSource(_Prefixed(head, fileobj), self._batch_bytes, closers)

    def _ensure(self, pos, need):
        """Make buf[pos:pos + need] available if the stream has it; returns the new pos."""
        src = self._src
        if len(src.buf) - pos < need and not src.eof:
            pos = src.refill(pos, need)
            while len(src.buf) - pos < need and not src.eof:
                pos = src.refill(pos, need)
        return pos

    def _read_file_header(self):
        pos = self._ensure(0, 4)
        buf = self._src.buf
        head = bytes(buf[:4])
        if self._src.error and len(buf) < 4:
            raise CaptureError(self.path, 0, self._src.error[1])
        if len(head) == 0:
            raise CaptureError(self.path, 0, "empty file" if self.compression is None
                               else f"{self.compression} stream holds no data "
                                    "(empty, or cut short before its first block)")
        if head in _PCAP_MAGICS:
            self.format = "pcap"
            self._read_pcap_header()
        elif head == _SHB_TYPE:
            self.format = "pcapng"
            self._pos = 0
            self._read_pcapng_header()
        elif len(head) < 4:
            raise CaptureError(self.path, 0, f"file header cut short ({len(head)} bytes)")
        else:
            raise CaptureError(self.path, 0, f"bad magic 0x{head.hex()}: not a pcap or pcapng file")

    def _read_pcap_header(self):
        pos = self._ensure(0, _PCAP_HEADER_LEN)
        buf = self._src.buf
        if len(buf) - pos < _PCAP_HEADER_LEN:
            raise CaptureError(self.path, 0, f"pcap file header cut short "
                               f"({len(buf) - pos} of {_PCAP_HEADER_LEN} bytes)")
        big, ns, hdr_len = _PCAP_MAGICS[bytes(buf[pos:pos + 4])]
        _, vmaj, vmin, _, _, snaplen, ltfield = struct.unpack(
            (">" if big else "<") + "IHHiIII", bytes(buf[pos:pos + 24]))
        # LINKTYPE field: low 16 bits the link type, bit 26 "FCS length
        # present", bits 28-31 the FCS length in 16-bit words.
        fcs_len = ((ltfield >> 28) & 0xF) * 2 if ltfield & 0x04000000 else None
        self._big, self._ns, self._hdr_len = big, ns, hdr_len
        self._linktype = ltfield & 0xFFFF
        self.version = (vmaj, vmin)
        self.interfaces.append({
            "linktype": self._linktype, "snaplen": snaplen,
            "tsresol": 1.0 if ns else 1000.0, "tsoffset": 0, "fcs_len": fcs_len,
            "name": None, "description": None, "section": 0})
        self._pos = pos + _PCAP_HEADER_LEN
        self.bytes_read = self._pos

    def _read_pcapng_header(self):
        need = 12
        while True:
            self._ensure(0, need)
            pos, more, err = self._read_shb(0)
            if err is not None or not more or more == need or self._src.eof:
                break
            need = more
        need = more
        if err is not None or need:
            if err is None:
                err = (f"section header block cut short ({len(self._src.buf)} bytes, "
                       f"need {need})")
            raise CaptureError(self.path, 0, err)
        # Leading IDBs are read now so that `interfaces` is filled on open.
        while True:
            pos = self._ensure(pos, 8)
            buf = self._src.buf
            if len(buf) - pos < 8 or struct.unpack_from(
                    ">I" if self._big else "<I", buf, pos)[0] != _IDB_TYPE:
                break
            new_pos, need, err = self._read_idb(pos)
            if err is not None:
                raise CaptureError(self.path, self._src.base + pos, err)
            if need:
                pos = self._ensure(pos, need)
                if len(self._src.buf) - pos < need:
                    break       # cut short: iteration reports it
                continue
            pos = new_pos
        self._pos = pos
        self.bytes_read = self._src.base + pos

    def _enter_range(self, rng: ByteRange):
        """Position the reader on ``rng``: its header blocks read, the buffer
        ending at its stop."""
        src = self._src
        if not isinstance(src, _MappedSource):
            raise ValueError(f"{self.path}: byte ranges need an uncompressed regular file")
        start, stop = int(rng.start), int(rng.stop)
        if not 0 <= start <= stop <= len(src.buf):
            raise ValueError(f"{self.path}: byte range {start}..{stop} outside the file "
                             f"({len(src.buf)} bytes)")
        if self.format == "pcapng" and rng.header_blocks:
            self.interfaces = []
            self._section = int(rng.section) - 1
            for off in rng.header_blocks:
                off = int(off)
                read = self._read_shb if bytes(src.buf[off:off + 4]) == _SHB_TYPE \
                    else self._read_idb
                _, need, err = read(off)
                if err is not None or need:
                    raise CaptureError(self.path, off, err or "header block cut short")
        src.buf = src.buf[:stop]
        self._pos = max(start, self._pos)
        self.bytes_read = self._pos
        self.packets_read = int(rng.first_frame) - 1

    # -- pcapng blocks Python interprets -------------------------------------
    def _block_len(self, pos, big):
        """Validated total length of the block at pos, or (None, reason)."""
        buf = self._src.buf
        blen = struct.unpack_from(">I" if big else "<I", buf, pos + 4)[0]
        if blen < 12:
            return None, f"bad block length {blen} (less than 12)"
        if blen & 3:
            return None, f"bad block length {blen} (not a multiple of 4)"
        if blen > BLOCK_MAX:
            return None, f"bad block length {blen} (over the {BLOCK_MAX} byte cap)"
        return blen, None

    def _read_shb(self, pos):
        """Read the SHB at pos: returns (next pos, bytes needed, error reason)."""
        buf = self._src.buf
        if len(buf) - pos < 12:
            return pos, 12, None
        bom = bytes(buf[pos + 8:pos + 12])
        if bom == b"\x1a\x2b\x3c\x4d":
            big = True
        elif bom == b"\x4d\x3c\x2b\x1a":
            big = False
        else:
            return pos, 0, f"bad byte-order magic 0x{bom.hex()} in section header block"
        blen, err = self._block_len(pos, big)
        if err:
            return pos, 0, err
        if blen < 28:
            return pos, 0, f"bad block length {blen} (section header block needs 28)"
        if len(buf) - pos < blen:
            return pos, blen, None
        fmt = ">" if big else "<"
        if struct.unpack_from(fmt + "I", buf, pos + blen - 4)[0] != blen:
            trailer = struct.unpack_from(fmt + "I", buf, pos + blen - 4)[0]
            return pos, 0, f"bad block length: trailing length {trailer} differs from {blen}"
        major, minor = struct.unpack_from(fmt + "HH", buf, pos + 12)
        if major != 1:
            return pos, 0, f"unsupported pcapng version {major}.{minor}"
        self._big = big
        self._section += 1
        n = 4
        self._if = {"linktype": np.zeros(n, np.uint16), "snaplen": np.zeros(n, np.uint32),
                    "ts_mul": np.zeros(n, np.uint64), "ts_div": np.ones(n, np.uint64),
                    "ts_off_ns": np.zeros(n, np.int64)}
        self._n_if = 0
        self._blocks = [self._src.base + pos]
        return pos + blen, 0, None

    def _read_idb(self, pos):
        """Read the IDB at pos: returns (next pos, bytes needed, error reason)."""
        buf = self._src.buf
        big = self._big
        fmt = ">" if big else "<"
        if len(buf) - pos < 8:
            return pos, 8, None
        blen, err = self._block_len(pos, big)
        if err:
            return pos, 0, err
        if blen < 20:
            return pos, 0, f"block length {blen} too short for an interface description block"
        if len(buf) - pos < blen:
            return pos, blen, None
        trailer = struct.unpack_from(fmt + "I", buf, pos + blen - 4)[0]
        if trailer != blen:
            return pos, 0, f"bad block length: trailing length {trailer} differs from {blen}"
        if len(self.interfaces) >= INTERFACES_MAX:
            return pos, 0, f"more than {INTERFACES_MAX} interfaces"
        linktype, _, snaplen = struct.unpack_from(fmt + "HHI", buf, pos + 8)
        info = {"linktype": linktype, "snaplen": snaplen, "tsresol": 1000.0, "tsoffset": 0,
                "fcs_len": None, "name": None, "description": None,
                "section": self._section}
        mul, div = 1000, 1
        seen = set()
        opt, end = pos + 16, pos + blen - 4
        while end - opt >= 4:
            code, olen = struct.unpack_from(fmt + "HH", buf, opt)
            if code == 0:
                break
            padded = (olen + 3) & ~3
            if padded > end - opt - 4:
                return pos, 0, f"interface option {code} (length {olen}) runs past its block"
            value = bytes(buf[opt + 4:opt + 4 + olen])
            first = code not in seen
            seen.add(code)
            if code == _OPT_IF_TSRESOL and olen >= 1 and first:
                res = value[0]
                exp = res & 0x7F
                if res & 0x80:
                    if exp > 63:
                        return pos, 0, f"unsupported if_tsresol 2^-{exp}"
                    mul, div = 10 ** 9, 1 << exp
                    info["tsresol"] = 1e9 / (1 << exp)
                else:
                    if exp > 28:
                        return pos, 0, f"unsupported if_tsresol 10^-{exp}"
                    if exp <= 9:
                        mul, div = 10 ** (9 - exp), 1
                    else:
                        mul, div = 1, 10 ** (exp - 9)
                    info["tsresol"] = 10.0 ** (9 - exp)
            elif code == _OPT_IF_TSOFFSET and olen >= 8 and first:
                info["tsoffset"] = struct.unpack(fmt + "q", value[:8])[0]
            elif code == _OPT_IF_FCSLEN and olen >= 1 and first:
                info["fcs_len"] = value[0]
            elif code == _OPT_IF_NAME and first:
                info["name"] = value.rstrip(b"\0").decode("utf-8", "replace")
            elif code == _OPT_IF_DESCRIPTION and first:
                info["description"] = value.rstrip(b"\0").decode("utf-8", "replace")
            opt += 4 + padded
        i = self._n_if
        if i == len(self._if["linktype"]):
            for key, arr in self._if.items():
                grown = np.ones(2 * i, arr.dtype)
                grown[:i] = arr
                self._if[key] = grown
        off_ns = (info["tsoffset"] * 10 ** 9 + (1 << 63)) % (1 << 64) - (1 << 63)
        self._if["linktype"][i] = linktype
        self._if["snaplen"][i] = snaplen
        self._if["ts_mul"][i] = mul
        self._if["ts_div"][i] = div
        self._if["ts_off_ns"][i] = off_ns
        self._n_if = i + 1
        self.interfaces.append(info)
        self._blocks.append(self._src.base + pos)
        return pos + blen, 0, None

    # -- iteration ---------------------------------------------------------
    def __iter__(self):
        if self._iterated:
            raise RuntimeError(f"{self.path}: a CaptureReader is iterable once; open it again")
        self._iterated = True
        return self._batches()

    def _scan(self, pos, limit, rows, n):
        src = self._src
        base = src.base
        # mapped: offsets are absolute file offsets; streamed: relative to the batch buffer
        if self.format == "pcap":
            return _capture.scan_pcap(src.buf, pos, limit, self._big, self._ns, self._hdr_len,
                                      self._linktype, 0, base, *rows, n)
        k = self._n_if
        ifa = self._if
        return _capture.scan_pcapng(src.buf, pos, limit, self._big,
                                    ifa["linktype"][:k], ifa["snaplen"][:k], ifa["ts_mul"][:k],
                                    ifa["ts_div"][:k], ifa["ts_off_ns"][:k], 0, base, *rows, n)

    def _new_rows(self, pos):
        left = len(self._src.buf) - pos
        cap = min(self._batch_packets, left // 16 + 1)
        return (np.empty(cap, np.int64), np.empty(cap, np.uint32), np.empty(cap, np.uint32),
                np.empty(cap, np.int64), np.empty(cap, np.uint16), np.empty(cap, np.int64))

    def _batch(self, rows, n, end):
        data = self._src.buf
        if isinstance(self._src, _StreamSource):
            data = data[:end]
        batch = PacketBatch(data, *(col[:n] for col in rows), first_frame=self.packets_read + 1)
        self.packets_read += n
        return batch

    def _damage(self, status, pos):
        """The reason for a scanner error code, with the offending values."""
        buf = self._src.buf
        fmt = ">" if self._big else "<"

        def field(off, code="I"):
            at = pos + off
            if off < 0 or at + struct.calcsize(code) > len(buf):
                return "?"
            return struct.unpack_from(fmt + code, buf, at)[0]

        vals = {"cap": CAPLEN_MAX, "bcap": BLOCK_MAX, "n_if": getattr(self, "_n_if", 1)}
        if self.format == "pcap":
            vals["caplen"] = field(8)
        else:
            btype, blen = field(0), field(4)
            vals.update(btype=btype, blen=blen, caplen=field(20),
                        if_id=0 if btype == 3 else field(8, "I" if btype == 6 else "H"))
            if status == _capture.ERR_TRAILER:
                vals["trailer"] = field(blen - 4)
        return _REASONS[status].format(**vals)

    def _batches(self):
        src = self._src
        pos = self._pos
        rows = None
        n = 0
        batch_start = pos
        while True:
            if rows is None:
                rows = self._new_rows(pos)
                n = 0
                batch_start = pos
            limit = max(batch_start + self._batch_bytes, pos + 1)
            status, pos, n, need = self._scan(pos, limit, rows, n)
            self.bytes_read = src.base + pos
            if status == _capture.ST_FULL:
                yield self._batch(rows, n, pos)
                rows = None
                if isinstance(src, _MappedSource):
                    src.release(batch_start)
                continue
            err = None
            if status == _capture.ST_SHB or status == _capture.ST_IDB:
                reader = self._read_shb if status == _capture.ST_SHB else self._read_idb
                new_pos, need, err = reader(pos)
                if err is None and not need:
                    pos = new_pos
                    self.bytes_read = src.base + pos
                    continue
                status = _capture.ST_PARTIAL
            elif status >= _capture.ERR_CAPLEN_CAP:
                err = self._damage(status, pos)
            if err is not None:
                if n:
                    yield self._batch(rows, n, pos)
                raise CaptureError(self.path, src.base + pos, err)
            # ST_END or ST_PARTIAL: the buffer is used up
            if not src.eof:
                if n:
                    yield self._batch(rows, n, pos)
                    rows = None
                pos = src.refill(pos, need)
                rows = None     # sized for the new buffer
                continue
            if n:
                yield self._batch(rows, n, pos)
            if src.error is not None:
                raise CaptureError(self.path, src.error[0], src.error[1])
            if status == _capture.ST_PARTIAL or pos < len(src.buf) or src.truncated:
                at = src.base + pos
                what = (f"ends inside a record at byte offset {at}" if pos < len(src.buf)
                        else f"compressed stream ends early ({src.truncated}) at byte offset {at}")
                warnings.warn(TruncatedCaptureWarning(
                    f"{self.path}: {what}; read {self.packets_read} packets"), stacklevel=2)
            return

    @property
    def raw_bytes_read(self):
        """Bytes of the file itself consumed so far (compressed bytes for
        .gz/.zst input; else ``bytes_read``): with ``size``, a progress measure."""
        if self._raw is not None:
            return self._raw.consumed
        return self.bytes_read

    # -- lifetime ----------------------------------------------------------
    def close(self):
        """Release the file (a memory map stays alive while batches view it)."""
        if self._src is not None:
            self._src.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"CaptureReader({self.path!r}, format={self.format!r}, "
                f"compression={self.compression!r}, interfaces={len(self.interfaces)})")


def open_capture(path, *, batch_packets=262144, batch_bytes=64 << 20, use_mmap=True,
                 byte_range: Optional[ByteRange] = None):
    """Open a pcap / pcapng capture (plain, gzip or zstd) for batch reading.

    ``path`` is a file path, ``"-"`` for standard input (as tcpdump's
    ``-r -``; a file named ``-`` is ``./-``) or a binary file object.  Uncompressed regular
    files named by path are memory-mapped (``use_mmap=False`` streams them
    instead); file objects, pipes and compressed input are streamed.
    Batches hold at most ``batch_packets`` packets and about ``batch_bytes``
    bytes of records.  ``byte_range`` (from :func:`index_capture`) reads
    only that piece of the file.
    Raises :class:`fastseg.CaptureError` when the file is empty, cut inside
    its header or not a capture.
    """
    return CaptureReader(path, batch_packets=batch_packets, batch_bytes=batch_bytes,
                         use_mmap=use_mmap, byte_range=byte_range)


def index_capture(path, target_bytes: int = 128 << 20, *, batch_packets: int = 65536,
                  batch_bytes: int = 64 << 20) -> Optional[List[ByteRange]]:
    """Cut an uncompressed capture file into byte ranges of about
    ``target_bytes`` at record boundaries, in one pass over the record and
    block headers; ``None`` when the file cannot be read by ranges
    (compressed input, not a regular file).  The ranges cover the file from
    the end of its header to its end, in order.  Ranges end where a reader
    with ``batch_packets`` and ``batch_bytes`` ends a batch, so reading the
    ranges with those gives the batches of one pass over the file.  Damage
    stops the pass as it stops reading (:class:`fastseg.CaptureError`)."""
    target = max(int(target_bytes), 1)
    ranges: List[ByteRange] = []
    with CaptureReader(path, batch_packets=batch_packets, batch_bytes=batch_bytes) as reader:
        if reader.compression is not None or not isinstance(reader._src, _MappedSource):
            return None
        start, frame, blocks, section = reader.bytes_read, 1, tuple(reader._blocks), \
            max(reader._section, 0)
        packets, lo, hi = 0, None, None
        for batch in reader:
            if len(batch):
                packets += len(batch)
                b_lo, b_hi = int(batch.ts_ns.min()), int(batch.ts_ns.max())
                lo = b_lo if lo is None else min(lo, b_lo)
                hi = b_hi if hi is None else max(hi, b_hi)
            end = reader.bytes_read
            if end - start >= target:
                ranges.append(ByteRange(start, end, frame, packets, lo, hi, blocks, section))
                start, frame, packets, lo, hi = end, frame + packets, 0, None, None
                blocks, section = tuple(reader._blocks), max(reader._section, 0)
        stop = reader.size if reader.size is not None else reader.bytes_read
        if packets or start < stop or not ranges:
            ranges.append(ByteRange(start, stop, frame, packets, lo, hi, blocks, section))
    return ranges
