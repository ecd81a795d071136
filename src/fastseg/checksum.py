"""Internet checksums in bulk: verify, compute and fix TCP and IPv4 header
checksums of a whole ``Segments`` table at once, and tell sender-side
checksum offload apart from corruption.

Statuses follow ``fastseg._consts.ChecksumStatus`` and Wireshark's
``tcp.checksum.status``: 0 ok, 1 bad, 2 unverified (the captured bytes do not
cover the TCP header + payload, or the packet is a first IP fragment whose
checksum covers bytes in later fragments), 3 not applicable (the IPv4 header
checksum of an IPv6 packet).

The pseudo-header addresses are read from the packet bytes (so a buffer whose
addresses were rewritten is judged as it now stands); the TCP length is
``hdr_len + payload_len``.  For IPv6 packets with a routing header the
pseudo-header destination is the one in the fixed header.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from . import _checksum, _consts
from .segments import CSUM_UNFILLED_UNKNOWN, format_addresses

__all__ = ["internet_checksum", "verify_checksums", "verify_ip_checksums",
           "tcp_checksums", "ip_checksums", "fix_checksums", "offload_pattern",
           "diagnose_offload", "ChecksumVerdict", "OFFLOAD_MIN_SEGMENTS", "OFFLOAD_MIN_SHARE",
           "UNTRUSTED_MIN_SEGMENTS", "UNTRUSTED_MIN_SHARE"]

# A sender is diagnosed as offloading when at least this many of its bad
# segments carry the unfilled (pseudo-header-only) value and they are at least
# this share of its bad segments.  A corrupted checksum matches that value by
# chance with probability 2**-16, so a handful of matches is already
# conclusive; the share keeps a host with real corruption on top of offload
# from being waved through.
OFFLOAD_MIN_SEGMENTS = 3
OFFLOAD_MIN_SHARE = 0.9
# A capture whose checksums are wrong almost everywhere, and not in the offload
# pattern, was rewritten (anonymised addresses, edited payloads) without its
# checksums being fixed: they say nothing about what the receivers accepted.
# Real corruption is rare (well under 1 segment in 1000), so half of the
# checked segments being bad is far outside it.
UNTRUSTED_MIN_SEGMENTS = 10
UNTRUSTED_MIN_SHARE = 0.5

# Columns the kernels read, with the dtype each kernel takes.
_ROW_DTYPES = (
    ("_l3_off", np.int64), ("_l4_off", np.int64), ("_l3_caplen", np.uint32),
    ("ip_version", np.uint8), ("hdr_len", np.uint8), ("payload_len", np.uint32),
)


def internet_checksum(buffer) -> int:
    """The RFC 1071 Internet checksum of ``buffer``: the one's complement of
    the one's complement sum of its bytes taken as big-endian 16-bit words (an
    odd last byte is padded with zero).  Accepts any bytes-like object or
    numpy array (its raw bytes); the sum runs with the GIL released.

    >>> hex(internet_checksum(bytes.fromhex("0001f203f4f5f6f7")))
    '0x220d'
    """
    return _checksum.internet_checksum(_byte_view(buffer))


def _data(segments, data=None) -> np.ndarray:
    if data is None:
        data = getattr(segments, "data", None)
        if data is None:
            raise ValueError(
                "these segments carry no packet bytes (Segments.data is None): "
                "read them with the packet bytes kept to verify or compute checksums")
    return _as_bytes(data, writable=False)


def _byte_view(obj) -> np.ndarray:
    """The raw bytes of a buffer or array as a 1-d uint8 array, without a
    copy when ``obj`` is contiguous."""
    if not isinstance(obj, np.ndarray):
        try:
            return np.frombuffer(obj, dtype=np.uint8)
        except (ValueError, BufferError):
            obj = np.asarray(memoryview(obj))
    return np.ascontiguousarray(obj).reshape(-1).view(np.uint8)


_NOT_WRITABLE = ("the packet buffer must be writable and contiguous to fix checksums in "
                 "place: pass a copy such as np.array(segments.data) or a bytearray")


def _as_bytes(data, writable: bool) -> np.ndarray:
    if not writable:
        return _byte_view(data)
    # Writes must land in the caller's buffer, so no copy may be made here.
    if isinstance(data, np.ndarray):
        if not (data.flags.c_contiguous and data.flags.writeable):
            raise ValueError(_NOT_WRITABLE)
        return data.reshape(-1).view(np.uint8)
    try:
        arr = np.frombuffer(data, dtype=np.uint8)
    except (ValueError, BufferError, TypeError):
        raise ValueError(_NOT_WRITABLE) from None
    if not arr.flags.writeable:
        raise ValueError(_NOT_WRITABLE)
    return arr


def _rows(segments):
    cols = []
    for name, dtype in _ROW_DTYPES:
        try:
            col = segments[name]
        except KeyError:
            raise ValueError(f"segments lack the {name!r} column") from None
        cols.append(np.ascontiguousarray(col, dtype=dtype))
    try:
        frag = segments["fragment"]
    except KeyError:
        frag = None
    if frag is not None:
        frag = np.ascontiguousarray(frag, dtype=np.bool_).view(np.uint8)
    return cols, frag


def _tcp(segments, want_correct=False, want_offload=False):
    data = _data(segments)
    cols, frag = _rows(segments)
    return _checksum.tcp_status(data, *cols, fragment=frag, want_correct=want_correct,
                                want_offload=want_offload)


def verify_checksums(segments) -> np.ndarray:
    """TCP checksum status of every segment, recomputed from the packet bytes:
    a uint8 array of 0 ok, 1 bad, 2 unverified (see the module docstring).
    Raises ``ValueError`` when ``segments.data`` is None."""
    return _tcp(segments)[0]


def verify_ip_checksums(segments) -> np.ndarray:
    """IPv4 header checksum status of every segment: uint8 array of 0 ok,
    1 bad, 2 unverified (header not captured), 3 n/a (IPv6)."""
    data = _data(segments)
    cols, _ = _rows(segments)
    return _checksum.ip_status(data, cols[0], cols[2], cols[3])[0]


def tcp_checksums(segments, with_mask: bool = False):
    """The correct TCP checksum field value of every segment (uint16), 0 where
    the captured bytes do not cover the segment.  With ``with_mask=True``
    returns ``(values, computed)`` where ``computed`` is True for the rows
    whose value was computed (0 is also a valid checksum)."""
    status, correct, _ = _tcp(segments, want_correct=True)
    if with_mask:
        return correct, status != _consts.CSUM_UNVERIFIED
    return correct


def ip_checksums(segments, with_mask: bool = False):
    """The correct IPv4 header checksum of every segment (uint16), 0 for IPv6
    and where the header was not captured; ``with_mask`` as in
    :func:`tcp_checksums`."""
    data = _data(segments)
    cols, _ = _rows(segments)
    status, correct = _checksum.ip_status(data, cols[0], cols[2], cols[3], want_correct=True)
    if with_mask:
        return correct, status <= _consts.CSUM_BAD
    return correct


def fix_checksums(data, segments=None, *, l3_off=None, l4_off=None, l3_caplen=None,
                  ip_version=None, hdr_len=None, payload_len=None, fragment=None) -> int:
    """Rewrite checksums in place in ``data``, a writable buffer laid out like
    ``segments.data`` (a numpy uint8 array such as ``np.array(seg.data)``, a
    bytearray, ...).

    Every row whose IPv4 header was captured gets a correct IPv4 header
    checksum; every row whose whole TCP segment was captured (and that is not
    a first fragment) gets a correct TCP checksum.  Returns the number of TCP
    checksums written.  Without ``segments``, the row arrays are given as
    keywords (``l3_off``, ``l4_off``, ``l3_caplen``, ``ip_version``,
    ``hdr_len``, ``payload_len``, optional ``fragment``).
    """
    buf = _as_bytes(data, writable=True)
    if segments is not None:
        cols, frag = _rows(segments)
    else:
        given = (l3_off, l4_off, l3_caplen, ip_version, hdr_len, payload_len)
        if any(v is None for v in given):
            raise ValueError("fix_checksums needs segments or all of l3_off, l4_off, "
                             "l3_caplen, ip_version, hdr_len, payload_len")
        cols = [np.ascontiguousarray(np.broadcast_to(v, np.shape(l3_off)), dtype=dt)
                for v, (_, dt) in zip(given, _ROW_DTYPES)]
        frag = (None if fragment is None
                else np.ascontiguousarray(fragment, dtype=np.bool_).view(np.uint8))
    return _checksum.fix_in_place(buf, *cols, fragment=frag)


def offload_pattern(segments) -> np.ndarray:
    """True for each segment whose TCP checksum is bad *and* holds exactly the
    folded pseudo-header sum: what Linux leaves in the field for the NIC to
    finish (CHECKSUM_PARTIAL), seen in captures taken on the sending host."""
    return _tcp(segments, want_offload=True)[2].view(np.bool_)


def diagnose_offload(segments, min_segments: int = OFFLOAD_MIN_SEGMENTS,
                     min_share: float = OFFLOAD_MIN_SHARE) -> Dict[str, int]:
    """Senders whose bad TCP checksums are (nearly) all unfilled offload values.

    Returns ``{sender address text: number of its segments with an unfilled
    checksum}`` for every source address with at least ``min_segments`` such
    segments making up at least ``min_share`` of its bad segments (the rule of
    :class:`ChecksumVerdict`, applied to checksums recomputed from the packet
    bytes).  The statuses themselves are not changed: ``verify_checksums``
    still says bad.
    """
    st, _, pattern = _tcp(segments, want_offload=True)
    verdict = ChecksumVerdict("auto", min_segments=min_segments, min_share=min_share)
    verdict.count(np.ascontiguousarray(segments["src"], dtype=np.uint8),
                  np.ascontiguousarray(segments["ip_version"], dtype=np.uint8), st, pattern)
    return {o["host"]: o["segments"] for o in verdict.offload()}


def _col(segments, name, dtype):
    return np.ascontiguousarray(segments[name], dtype=dtype)


class ChecksumVerdict:
    """The one owner of the checksum decision: which senders offload their
    checksums, whether the capture's checksums can be trusted at all, and so
    which bad-checksum segments their receivers dropped.

    ``mode``: ``"verify"`` (every bad checksum was dropped), ``"ignore"``
    (none was), ``"auto"`` (as verify, except the segments of senders
    diagnosed as offloading, and every segment once the capture is found
    untrusted).  A sender offloads when at least ``min_segments`` of its bad
    checksums hold the unfilled pseudo-header sum (the parser records that
    per segment) and they are at least ``min_share`` of its bad checksums; the
    capture is untrusted when the bad checksums no offload explains are at
    least ``UNTRUSTED_MIN_SEGMENTS`` and ``UNTRUSTED_MIN_SHARE`` of the
    checked ones (addresses rewritten by an anonymiser without fixing
    checksums).  Counting is done in C per batch; verdicts accumulate over the
    batches and, once reached, stick.  ``merge`` adds another verdict's
    counts, so verdicts of the parts of a capture combine into the whole's.
    """

    def __init__(self, mode: str = "auto", offload_hosts=None,
                 min_segments: int = OFFLOAD_MIN_SEGMENTS, min_share: float = OFFLOAD_MIN_SHARE):
        if mode not in ("auto", "verify", "ignore"):
            raise ValueError("checksums must be 'auto', 'verify' or 'ignore'")
        self.mode = mode
        self.min_segments = int(min_segments)
        self.min_share = float(min_share)
        self._tally = _checksum.SenderTally()
        if offload_hosts is not None:
            from .segments import parse_addresses
            rows = (offload_hosts if isinstance(offload_hosts, np.ndarray)
                    else parse_addresses(list(offload_hosts)))
            self._tally.force(np.ascontiguousarray(rows, dtype=np.uint8).reshape(-1, 16))

    def count(self, src, ip_version, status, unfilled) -> None:
        """Count one batch of segments (column arrays) and update the verdicts."""
        status = np.ascontiguousarray(status, dtype=np.uint8)
        self._tally.add(src, ip_version, status, np.ascontiguousarray(unfilled, dtype=np.uint8))
        self._decide()

    def dropped(self, segments) -> np.ndarray:
        """Count a batch of segments, then return one uint8 per segment: 1
        where a bad checksum made its receiver drop it."""
        n = len(segments)
        if self.mode == "ignore" or "checksum_status" not in segments:
            return np.zeros(n, dtype=np.uint8)
        status = _col(segments, "checksum_status", np.uint8)
        src = _col(segments, "src", np.uint8)
        unfilled = _col(segments, "_csum_unfilled", np.uint8) if "_csum_unfilled" in segments else None
        if unfilled is not None and not (unfilled == CSUM_UNFILLED_UNKNOWN).any():
            pass
        elif "checksum" in segments and "hdr_len" in segments:
            unfilled = np.empty(n, dtype=np.uint8)
            _checksum.unfilled_from_columns(
                src, _col(segments, "dst", np.uint8), _col(segments, "ip_version", np.uint8),
                _col(segments, "hdr_len", np.uint8), _col(segments, "payload_len", np.uint32),
                _col(segments, "checksum", np.uint16), status, unfilled)
        else:
            unfilled = np.zeros(n, dtype=np.uint8)
        self.count(src, _col(segments, "ip_version", np.uint8), status, unfilled)
        out = np.empty(n, dtype=np.uint8)
        if self.mode == "auto" and self._tally.untrusted:
            out[:] = 0
            return out
        self._tally.drop_mask(src, status, self.mode == "auto", out)
        return out

    def _decide(self) -> None:
        # Only auto mode judges the capture as a whole; verify and ignore are
        # the user's explicit choice.
        untrusted_min = UNTRUSTED_MIN_SEGMENTS if self.mode == "auto" else 1 << 62
        self._tally.decide(self.min_segments, self.min_share, untrusted_min,
                           UNTRUSTED_MIN_SHARE)

    @property
    def untrusted(self) -> bool:
        """True once the capture's checksums are judged meaningless (auto mode
        then ignores them)."""
        return bool(self._tally.untrusted)

    @property
    def ok(self) -> int:
        return int(self._tally.ok)

    @property
    def bad(self) -> int:
        return int(self._tally.bad)

    def offload_rows(self) -> np.ndarray:
        """(n, 16) address rows of the senders treated as offloading."""
        addr, _, _, _, off, _ = self._tally.senders()
        return addr[off]

    def offload(self) -> List[dict]:
        """``[{host, segments}]``: each sender treated as offloading and how
        many of its segments carried the unfilled value, in address order."""
        addr, version, _, unfilled, off, _ = self._tally.senders()
        if not off.any():
            return []
        text = format_addresses(addr[off], version[off])
        return [{"host": str(h), "segments": int(u)} for h, u in zip(text, unfilled[off])]

    def merge(self, other: "ChecksumVerdict") -> "ChecksumVerdict":
        """Add ``other``'s counts into this verdict (and re-derive it)."""
        self._tally.merge(other._tally)
        self._decide()
        return self

    def to_dict(self) -> dict:
        """The verdict's part of the report's ``checksums`` section."""
        return {"offload": self.offload(), "untrusted": self.untrusted, "mode": self.mode}
