"""Linux-compatible SYN cookies and SipHash-2-4, in bulk.

Bit-compatible with net/ipv4/syncookies.c and net/ipv6/syncookies.c on a
little-endian host: the 32-byte secret is the kernel's ``syncookie_secret[2]``
(two 16-byte SipHash keys), a cookie is

    hash(key 0, count 0) + client ISN + (count << 24)
        + ((hash(key 1, count) + mss_index) mod 2^24)

where ``count`` is the minute counter (``jiffies / (60 * HZ)``) and the hash
is the low 32 bits of SipHash-2-4 over the addresses, ports and count laid
out exactly as the kernel lays them out.  A cookie is accepted while the
counter has advanced by less than MAX_SYNCOOKIE_AGE (2).

Addresses are (n, 4) or (n, 16) uint8 arrays of network-order bytes, a single
4- or 16-byte address, or address strings; every other argument is an
integer array or scalar, and all of them broadcast together.  Results are
uint32 cookies and uint16 MSS values (0 = invalid); when every input is a
scalar the results are numpy scalars.
"""
from __future__ import annotations

import ipaddress
import os
from typing import Tuple

import numpy as np

from . import _consts
from . import _cookies

__all__ = [
    "encode", "check", "count_from_time", "encode_ts_options", "decode_ts_options",
    "siphash24", "cookies_for_syns", "check_acks", "split_secret",
    "MSS_TABLE_V4", "MSS_TABLE_V6", "MAX_SYNCOOKIE_AGE", "COOKIEBITS",
    "SYNCOOKIE_PERIOD_S", "TS_OPT_WSCALE_MASK", "TS_OPT_SACK", "TS_OPT_ECN", "TSBITS",
    "TCP_MSS_DEFAULT",
]

MSS_TABLE_V4 = _consts.COOKIE_MSS_V4
MSS_TABLE_V6 = _consts.COOKIE_MSS_V6
MAX_SYNCOOKIE_AGE = _consts.MAX_SYNCOOKIE_AGE
COOKIEBITS = _consts.COOKIEBITS
SYNCOOKIE_PERIOD_S = 60          # TCP_SYNCOOKIE_PERIOD = 60 * HZ
TSBITS = 6                       # low TSval bits that carry the options
TS_OPT_WSCALE_MASK = 0xF         # 0xF = the SYN had no window scale option
TS_OPT_SACK = 1 << 4
TS_OPT_ECN = 1 << 5
TCP_MAX_WSCALE = 14              # tcp_parse_options clamps larger shifts
TCP_MSS_DEFAULT = 536            # the MSS assumed when a SYN carries none

if os.environ.get("FASTSEG_NO_SIMD", "") not in ("", "0"):
    _cookies.set_simd(False)


# -- inputs --------------------------------------------------------------------

def split_secret(secret) -> Tuple[int, int, int, int]:
    """The 32-byte secret as (k0, k1) of key 0 then key 1 (little-endian
    64-bit words, as ``siphash_key_t`` holds them on a little-endian host)."""
    raw = bytes(secret) if not isinstance(secret, str) else bytes.fromhex(secret)
    if len(raw) != 32:
        raise ValueError(f"secret must be 32 bytes (two 16-byte SipHash keys), got {len(raw)}")
    return tuple(int.from_bytes(raw[i:i + 8], "little") for i in range(0, 32, 8))


def _text_rows(texts):
    rows, version = [], []
    for t in texts:
        try:
            a = ipaddress.ip_address(t)
        except ValueError:
            raise ValueError(f"not an IP address: {t!r}") from None
        version.append(a.version)
        rows.append(b"\0" * 12 + a.packed if a.version == 4 else a.packed)
    buf = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, 16)
    return buf, np.array(version, dtype=np.uint8)


def _addresses(value, name):
    """(rows, version, scalar): rows (n, 4) or (n, 16) uint8; version None
    when the width says it, else a per-row array of 4/6 (text input)."""
    if isinstance(value, str) or isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        rows, version = _text_rows([str(value)])
        if version[0] == 4:
            return rows[:, 12:], None, True
        return rows, None, True
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if len(raw) not in (4, 16):
            raise ValueError(f"{name}: an address is 4 or 16 bytes, got {len(raw)}")
        return np.frombuffer(raw, dtype=np.uint8).reshape(1, -1), None, True
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (str, ipaddress.IPv4Address, ipaddress.IPv6Address)) for v in value):
        rows, version = _text_rows([str(v) for v in value])
        if (version == 4).all():
            return rows[:, 12:], None, False
        if (version == 6).all():
            return rows, None, False
        return rows, version, False
    arr = np.asarray(value)
    if arr.dtype.kind in "UO" and arr.ndim == 1:
        return _addresses(arr.tolist(), name)
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "iu" or arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f"{name}: address bytes must be a uint8 array")
        arr = arr.astype(np.uint8)
    if arr.ndim == 1 and arr.shape[0] in (4, 16):
        return arr.reshape(1, -1), None, True
    if arr.ndim != 2 or arr.shape[1] not in (4, 16):
        raise ValueError(f"{name}: expected an (n, 4) or (n, 16) uint8 array, got shape {arr.shape}")
    return arr, None, False


def _ints(value, name, dtype, limit):
    arr = np.asarray(value)
    if arr.dtype == dtype:
        return arr
    if arr.dtype.kind not in "iub":
        raise ValueError(f"{name}: expected integers, got {arr.dtype}")
    if arr.ndim > 1:
        raise ValueError(f"{name}: expected a scalar or a 1-d array, got shape {arr.shape}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) > limit):
        raise ValueError(f"{name}: values must lie in 0..{limit}")
    return arr.astype(dtype)


def _prepare(secret, saddr, daddr, numbers, ip_version):
    """Validate and broadcast; returns (key, src, dst, version-or-None, n,
    scalar, list of broadcast number arrays)."""
    key = split_secret(secret)
    src, sver, s_scalar = _addresses(saddr, "saddr")
    dst, dver, d_scalar = _addresses(daddr, "daddr")
    if src.shape[1] != dst.shape[1]:
        raise ValueError("saddr and daddr must be the same family (4 or 16 bytes each)")
    arrays = [_ints(v, name, dt, lim) for name, v, dt, lim in numbers]
    scalar = s_scalar and d_scalar and all(a.ndim == 0 for a in arrays)
    version = sver if sver is not None else dver
    if sver is not None and dver is not None:
        version = np.broadcast_to(sver, np.broadcast_shapes(sver.shape, dver.shape))
        if (version != np.broadcast_to(dver, version.shape)).any():
            raise ValueError("saddr and daddr must be the same family in every row")
    if ip_version is not None:
        if src.shape[1] == 4:
            if np.any(np.asarray(ip_version) != 4):
                raise ValueError("4-byte addresses are IPv4; ip_version must be 4")
        else:
            version = _ints(ip_version, "ip_version", np.uint8, 255)
            if np.any((version != 4) & (version != 6)):
                raise ValueError("ip_version must be 4 or 6")
    lengths = [src.shape[0], dst.shape[0]] + [a.shape[0] for a in arrays if a.ndim]
    if version is not None and version.ndim:
        lengths.append(version.shape[0])
    try:
        n = np.broadcast_shapes(*[(m,) for m in lengths])[0]
    except ValueError:
        raise ValueError(f"inputs do not broadcast to one length: {sorted(set(lengths))}") from None
    src = np.broadcast_to(src, (n, src.shape[1]))
    dst = np.broadcast_to(dst, (n, dst.shape[1]))
    arrays = [np.broadcast_to(a, (n,)) for a in arrays]
    if version is not None:
        version = np.broadcast_to(version, (n,))
    return key, src, dst, version, n, scalar, arrays


def _run_by_family(kernel, key, src, dst, version, arrays, outs):
    """Run ``kernel`` once per address family present.  16-byte rows whose
    version is 4 hold IPv4-mapped addresses; their last 4 bytes are hashed."""
    if src.shape[1] == 4:
        kernel(key, False, src, dst, *arrays, *outs)
        return
    if version is None:
        kernel(key, True, src, dst, *arrays, *outs)
        return
    is4 = version == 4
    if is4.all():
        kernel(key, False, src[:, 12:], dst[:, 12:], *arrays, *outs)
        return
    if not is4.any():
        kernel(key, True, src, dst, *arrays, *outs)
        return
    for rows, v6 in ((np.flatnonzero(is4), False), (np.flatnonzero(~is4), True)):
        if not len(rows):
            continue
        s = src[rows][:, 12:] if not v6 else src[rows]
        d = dst[rows][:, 12:] if not v6 else dst[rows]
        part = [np.empty(len(rows), dtype=o.dtype) for o in outs]
        kernel(key, v6, s, d, *[a[rows] for a in arrays], *part)
        for o, p in zip(outs, part):
            o[rows] = p


# -- cookies -------------------------------------------------------------------

def encode(secret, saddr, daddr, sport, dport, isn, mss, count, *, ip_version=None):
    """SYN cookies for SYNs from (saddr, sport) to (daddr, dport) with client
    ISN ``isn`` and announced ``mss``, at minute counter ``count``.

    Returns ``(cookies, mss)``: the uint32 server ISNs the kernel would send
    and the uint16 MSS each cookie encodes (the announced MSS rounded down to
    the family's table; values below the second entry encode the first).
    ``ip_version`` (4/6 per row) is needed only for (n, 16) arrays that hold
    IPv4-mapped IPv4 addresses, as Segments tables do.
    """
    key, src, dst, version, n, scalar, arrays = _prepare(secret, saddr, daddr, [
        ("sport", sport, np.uint16, 0xFFFF), ("dport", dport, np.uint16, 0xFFFF),
        ("isn", isn, np.uint32, 0xFFFFFFFF), ("mss", mss, np.uint16, 0xFFFF),
        ("count", count, np.uint32, 0xFFFFFFFF)], ip_version)
    cookies = np.empty(n, dtype=np.uint32)
    mss_out = np.empty(n, dtype=np.uint16)
    _run_by_family(_cookies.encode, key, src, dst, version, arrays, [cookies, mss_out])
    if scalar:
        return cookies[0], mss_out[0]
    return cookies, mss_out


def check(secret, saddr, daddr, sport, dport, seq, ack, count, *, ip_version=None):
    """Verdicts for the client's final handshake ACKs: ``seq`` and ``ack`` of
    the ACK (ISN + 1, cookie + 1), checked at minute counter ``count``.

    Returns uint16 MSS values, 0 where the cookie is invalid or older than
    MAX_SYNCOOKIE_AGE counter steps.  Addresses and ports are those of the
    ACK (client -> server), the same as the SYN's.
    """
    key, src, dst, version, n, scalar, arrays = _prepare(secret, saddr, daddr, [
        ("sport", sport, np.uint16, 0xFFFF), ("dport", dport, np.uint16, 0xFFFF),
        ("seq", seq, np.uint32, 0xFFFFFFFF), ("ack", ack, np.uint32, 0xFFFFFFFF),
        ("count", count, np.uint32, 0xFFFFFFFF)], ip_version)
    mss_out = np.empty(n, dtype=np.uint16)
    _run_by_family(_cookies.check, key, src, dst, version, arrays, [mss_out])
    if scalar:
        return mss_out[0]
    return mss_out


def count_from_time(seconds):
    """The kernel's minute counter for a time in seconds:
    ``floor(seconds / 60) mod 2^32`` (tcp_cookie_time()).

    The kernel counts ``jiffies_64 / (60 * HZ)``, a clock that starts near
    boot, not at the epoch: to match a particular host, pass seconds of that
    clock or give ``count`` explicitly.  Scalars give an int, arrays uint32.
    """
    arr = np.asarray(seconds)
    if arr.dtype.kind in "iu":
        out = (arr.astype(np.int64) // SYNCOOKIE_PERIOD_S) & 0xFFFFFFFF
    elif arr.dtype.kind == "f":
        out = np.floor(arr / SYNCOOKIE_PERIOD_S).astype(np.int64) & 0xFFFFFFFF
    else:
        raise ValueError(f"seconds must be numbers, got {arr.dtype}")
    if arr.ndim == 0:
        return int(out)
    return out.astype(np.uint32)


def encode_ts_options(ts_now, wscale=-1, sack=False, ecn=False):
    """TSval of a cookie SYN-ACK carrying the SYN's options
    (cookie_init_timestamp): the clock ``ts_now`` (TCP timestamp ticks,
    before the per-connection offset) with its low 6 bits replaced by
    wscale (0xF when ``wscale`` < 0, i.e. absent; shifts above 14 are
    clamped to 14 as tcp_parse_options does), SACK (bit 4) and ECN (bit 5),
    moved back by 64 ticks when that would run ahead of the clock.
    Returns uint32 (an int for scalar inputs)."""
    now = np.asarray(ts_now)
    if now.dtype.kind not in "iu" or (now.size and now.min() < 0):
        raise ValueError("ts_now must be non-negative integers")
    now = now.astype(np.uint64)
    ws = np.asarray(wscale).astype(np.int64)
    options = np.where(ws < 0, TS_OPT_WSCALE_MASK, np.minimum(ws, TCP_MAX_WSCALE)).astype(np.uint64)
    options |= np.where(np.asarray(sack, dtype=bool), TS_OPT_SACK, 0).astype(np.uint64)
    options |= np.where(np.asarray(ecn, dtype=bool), TS_OPT_ECN, 0).astype(np.uint64)
    ts = ((now >> np.uint64(TSBITS)) << np.uint64(TSBITS)) | options
    ts = np.where(ts > now, ts - np.uint64(1 << TSBITS), ts)
    out = (ts & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    if out.ndim == 0:
        return int(out)
    return out


def decode_ts_options(tsecr, ts_off=0):
    """The SYN options a cookie ACK's echoed timestamp carries
    (cookie_timestamp_decode): ``(wscale, sack, ecn)`` with wscale -1 when
    the SYN had none.  ``ts_off`` is the per-connection TSval offset the
    server added (the kernel subtracts it first); negative ``tsecr`` means
    the ACK had no timestamp option, which decodes to no options at all.
    Arrays give (int16, bool, bool) arrays, scalars give a tuple of Python
    values."""
    raw = np.asarray(tsecr).astype(np.int64)
    present = raw >= 0
    options = (raw - np.asarray(ts_off, dtype=np.int64)) & 0xFFFFFFFF
    ws = options & TS_OPT_WSCALE_MASK
    wscale = np.where(present & (ws != TS_OPT_WSCALE_MASK), ws, -1).astype(np.int16)
    sack = present & ((options & TS_OPT_SACK) != 0)
    ecn = present & ((options & TS_OPT_ECN) != 0)
    if wscale.ndim == 0:
        return int(wscale), bool(sack), bool(ecn)
    return wscale, sack, ecn


# -- SipHash -------------------------------------------------------------------

def siphash24(key, data):
    """SipHash-2-4 under a 16-byte key: of one message (bytes-like) -> int,
    or of every row of an (n, L) uint8 array -> uint64 array (GIL released,
    AVX2 multi-lane when the CPU has it)."""
    raw = bytes(key)
    if len(raw) != 16:
        raise ValueError(f"key must be 16 bytes, got {len(raw)}")
    k0 = int.from_bytes(raw[:8], "little")
    k1 = int.from_bytes(raw[8:], "little")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return _cookies.siphash24_bytes(k0, k1, np.frombuffer(bytes(data), dtype=np.uint8))
    rows = np.asarray(data)
    if rows.dtype != np.uint8 or rows.ndim != 2:
        raise ValueError(f"data must be bytes or an (n, L) uint8 array, got {rows.dtype} {rows.shape}")
    rows = np.ascontiguousarray(rows)
    out = np.empty(rows.shape[0], dtype=np.uint64)
    _cookies.siphash24_rows(k0, k1, rows, out)
    return out


# -- Segments helpers ----------------------------------------------------------

def _count_for(segments, rows, count):
    if count is None:
        return count_from_time(segments["ts_ns"][rows] // 1_000_000_000).astype(np.uint32)
    return count


def cookies_for_syns(secret, segments, count=None):
    """Cookies the server would answer each SYN (SYN without ACK or RST) of
    a Segments table with.  ``count`` defaults to each SYN's own minute
    (count_from_time of its timestamp); a SYN without an MSS option is
    taken at the default 536.  Returns ``(cookies, mss, rows)``: uint32
    cookies, uint16 encoded MSS, and the int64 row indices they belong to."""
    flags = segments["flags"]
    rows = np.flatnonzero((flags & (_consts.SYN | _consts.ACK | _consts.RST)) == _consts.SYN)
    mss = segments["mss"][rows]
    mss = np.where(mss < 0, TCP_MSS_DEFAULT, np.minimum(mss, 0xFFFF)).astype(np.uint16)
    cookies, enc = encode(secret, segments["src"][rows], segments["dst"][rows],
                          segments["sport"][rows], segments["dport"][rows],
                          segments["seq"][rows], mss, _count_for(segments, rows, count),
                          ip_version=segments["ip_version"][rows])
    return cookies, enc, rows


def check_acks(secret, segments, count=None):
    """Cookie verdicts for every ACK without SYN or RST of a Segments table,
    as if it were the final ACK of a cookie handshake.  ``count`` defaults to
    each ACK's own minute.  Returns ``(mss, rows)``: uint16 MSS (0 = not a
    valid cookie) and the int64 row indices."""
    flags = segments["flags"]
    rows = np.flatnonzero((flags & (_consts.SYN | _consts.ACK | _consts.RST)) == _consts.ACK)
    mss = check(secret, segments["src"][rows], segments["dst"][rows],
                segments["sport"][rows], segments["dport"][rows],
                segments["seq"][rows], segments["ack"][rows],
                _count_for(segments, rows, count), ip_version=segments["ip_version"][rows])
    return mss, rows
