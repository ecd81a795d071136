# SipHash-2-4 in bulk and Linux SYN cookies (net/ipv4/syncookies.c,
# net/ipv6/syncookies.c) over columns.  Inputs are validated and broadcast by
# fastseg.syncookies; the kernels check shapes once, then only loop.
#
# Work goes in blocks of FS_SIP_LANES rows: the rows' messages are staged
# word-major and hashed together by the multi-lane SipHash (AVX2 when the CPU
# has it), so the per-row cost is the hashing, not the call.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from fastseg._bytes cimport ld_le32, ld_le64
from fastseg._consts cimport COOKIEBITS, COOKIEMASK, COUNTMASK, MAX_SYNCOOKIE_AGE, N_COOKIE_MSS

from fastseg import _consts


cdef extern from "_siphash.h" nogil:
    uint64_t fs_siphash24(uint64_t k0, uint64_t k1, const uint8_t *buf, size_t len)


cdef extern from "_siphash_lanes.h" nogil:
    enum: FS_SIP_LANES
    ctypedef void (*fs_sip_lanes_fn)(const uint64_t *k0, const uint64_t *k1,
                                     const uint64_t *m, size_t nw,
                                     const uint64_t *last, uint64_t *out) noexcept nogil
    fs_sip_lanes_fn fs_sip_lanes_select(int allow_simd, int nw)
    int fs_cpu_has_avx2()


cdef uint16_t MSS_V4[N_COOKIE_MSS]
cdef uint16_t MSS_V6[N_COOKIE_MSS]
for _i, (_v4, _v6) in enumerate(zip(_consts.COOKIE_MSS_V4, _consts.COOKIE_MSS_V6)):
    MSS_V4[_i] = _v4
    MSS_V6[_i] = _v6
del _i, _v4, _v6

# The multi-lane SipHash for any length, IPv4 cookies (2 words) and IPv6
# cookies (5 words).
cdef fs_sip_lanes_fn _lanes = fs_sip_lanes_select(1, 0)
cdef fs_sip_lanes_fn _lanes_v4 = fs_sip_lanes_select(1, 2)
cdef fs_sip_lanes_fn _lanes_v6 = fs_sip_lanes_select(1, 5)
cdef bint _simd = _lanes != fs_sip_lanes_select(0, 0)


def simd_available():
    """True when this CPU runs the AVX2 multi-lane SipHash."""
    return bool(fs_cpu_has_avx2())


def simd_enabled():
    """True when the kernels currently use the AVX2 path."""
    return bool(_simd)


def set_simd(bint enabled):
    """Use the AVX2 path (when the CPU has it) or force the scalar one.
    Returns the previous setting.  Results are identical either way."""
    global _lanes, _lanes_v4, _lanes_v6, _simd
    previous = bool(_simd)
    _lanes = fs_sip_lanes_select(enabled, 0)
    _lanes_v4 = fs_sip_lanes_select(enabled, 2)
    _lanes_v6 = fs_sip_lanes_select(enabled, 5)
    _simd = _lanes != fs_sip_lanes_select(0, 0)
    return previous


cdef inline uint16_t _bswap16(uint16_t x) noexcept nogil:
    return <uint16_t>((x >> 8) | (x << 8))


cdef inline uint64_t _ports_word(uint16_t sport, uint16_t dport) noexcept nogil:
    # The kernel combines the raw __be16 port fields as u32s; on a
    # little-endian host each one reads as its byte-swapped value.
    return (<uint64_t>_bswap16(sport) << 16) | _bswap16(dport)


cdef inline int _mss_index(uint16_t mss, const uint16_t *table) noexcept nogil:
    # __cookie_v4_init_sequence: the largest entry not above the MSS, and
    # entry 0 for anything smaller than entry 1.  The table is sorted, so
    # that index is the number of entries 1.. not above the MSS; counting
    # avoids a data-dependent branch per row.
    return (<int>(mss >= table[1])) + (<int>(mss >= table[2])) + (<int>(mss >= table[3]))


cdef inline void _stage(uint64_t *m, int lane, bint v6, const uint8_t *saddr,
                        const uint8_t *daddr, uint16_t sport,
                        uint16_t dport) noexcept nogil:
    # The hashed message with count = 0.  IPv4: siphash_4u32(saddr, daddr,
    # ports, count) = 16 bytes saddr|daddr|ports(LE u32)|count(LE u32).
    # IPv6: the 40-byte struct {saddr, daddr, u32 count, be16 sport,
    # be16 dport}.  _count_word() says where the count goes.
    if v6:
        m[0 * FS_SIP_LANES + lane] = ld_le64(saddr)
        m[1 * FS_SIP_LANES + lane] = ld_le64(saddr + 8)
        m[2 * FS_SIP_LANES + lane] = ld_le64(daddr)
        m[3 * FS_SIP_LANES + lane] = ld_le64(daddr + 8)
        m[4 * FS_SIP_LANES + lane] = ((<uint64_t>_bswap16(dport) << 48)
                                      | (<uint64_t>_bswap16(sport) << 32))
    else:
        m[0 * FS_SIP_LANES + lane] = (<uint64_t>ld_le32(saddr)
                                      | (<uint64_t>ld_le32(daddr) << 32))
        m[1 * FS_SIP_LANES + lane] = _ports_word(sport, dport)


cdef inline void _set_count(uint64_t *m, int lane, bint v6, uint32_t count) noexcept nogil:
    if v6:
        m[4 * FS_SIP_LANES + lane] = ((m[4 * FS_SIP_LANES + lane] & <uint64_t>0xFFFFFFFF00000000ULL)
                                      | count)
    else:
        m[1 * FS_SIP_LANES + lane] = ((m[1 * FS_SIP_LANES + lane] & 0xFFFFFFFFULL)
                                      | (<uint64_t>count << 32))


cdef int _check_shapes(Py_ssize_t n, bint v6, const uint8_t[:, :] saddr,
                       const uint8_t[:, :] daddr, tuple columns) except -1:
    # The kernels index without bounds checks: refuse anything that would
    # let them read past a buffer.
    cdef Py_ssize_t width = 16 if v6 else 4
    if (saddr.shape[0] != n or daddr.shape[0] != n or saddr.shape[1] != width
            or daddr.shape[1] != width or (n and (saddr.strides[1] != 1 or daddr.strides[1] != 1))):
        raise ValueError(f"addresses must be ({n}, {width}) rows of contiguous bytes")
    for col in columns:
        if col.shape[0] != n:
            raise ValueError(f"every column needs {n} rows")
    return 0


cdef inline void _fill_keys(uint64_t *k0, uint64_t *k1, uint64_t a, uint64_t b) noexcept nogil:
    cdef int lane
    for lane in range(FS_SIP_LANES):
        k0[lane] = a
        k1[lane] = b


def encode(tuple secret, bint v6,
           const uint8_t[:, :] saddr, const uint8_t[:, :] daddr,
           const uint16_t[:] sport, const uint16_t[:] dport,
           const uint32_t[:] isn, const uint16_t[:] mss,
           const uint32_t[:] count,
           uint32_t[::1] cookie_out, uint16_t[::1] mss_out):
    """secure_tcp_syn_cookie for every row: cookie_out, and the MSS the cookie
    encodes in mss_out.  secret = (k0, k1) of key 0 then key 1 as four ints;
    every array has len(cookie_out) rows (stride 0 for broadcast scalars);
    addresses are 4 (IPv4) or 16 (IPv6) network-order bytes per row."""
    cdef Py_ssize_t n = cookie_out.shape[0], i0, i
    cdef int lane, nb, nw = 5 if v6 else 2
    cdef const uint16_t *table = &MSS_V4[0]
    cdef uint64_t k00 = secret[0], k01 = secret[1], k10 = secret[2], k11 = secret[3]
    cdef uint64_t kc0[FS_SIP_LANES]
    cdef uint64_t kc1[FS_SIP_LANES]
    cdef uint64_t kd0[FS_SIP_LANES]
    cdef uint64_t kd1[FS_SIP_LANES]
    cdef uint64_t m[5 * FS_SIP_LANES]
    cdef uint64_t last[FS_SIP_LANES]
    cdef uint64_t h0[FS_SIP_LANES]
    cdef uint64_t h1[FS_SIP_LANES]
    cdef int mssind[FS_SIP_LANES]
    cdef uint32_t c
    cdef fs_sip_lanes_fn lanes = _lanes_v6 if v6 else _lanes_v4
    _check_shapes(n, v6, saddr, daddr, (sport, dport, isn, mss, count, mss_out))
    if v6:
        table = &MSS_V6[0]
    with nogil:
        _fill_keys(kc0, kc1, k00, k01)
        _fill_keys(kd0, kd1, k10, k11)
        memset(m, 0, sizeof(m))
        for lane in range(FS_SIP_LANES):
            last[lane] = (<uint64_t>(nw * 8)) << 56
        i0 = 0
        while i0 < n:
            nb = FS_SIP_LANES if n - i0 >= FS_SIP_LANES else <int>(n - i0)
            for lane in range(nb):
                i = i0 + lane
                _stage(m, lane, v6, &saddr[i, 0], &daddr[i, 0], sport[i], dport[i])
                mssind[lane] = _mss_index(mss[i], table)
            lanes(kc0, kc1, m, nw, last, h0)
            for lane in range(nb):
                _set_count(m, lane, v6, count[i0 + lane])
            lanes(kd0, kd1, m, nw, last, h1)
            for lane in range(nb):
                i = i0 + lane
                c = count[i]
                cookie_out[i] = (<uint32_t>h0[lane] + isn[i] + (c << COOKIEBITS)
                                 + ((<uint32_t>h1[lane] + <uint32_t>mssind[lane])
                                    & COOKIEMASK))
                mss_out[i] = table[mssind[lane]]
            i0 += nb


def check(tuple secret, bint v6,
          const uint8_t[:, :] saddr, const uint8_t[:, :] daddr,
          const uint16_t[:] sport, const uint16_t[:] dport,
          const uint32_t[:] seq, const uint32_t[:] ack,
          const uint32_t[:] count, uint16_t[::1] mss_out):
    """__cookie_v4_check / __cookie_v6_check for every row: the MSS the
    cookie (ack - 1) encodes for the client ISN (seq - 1), or 0 when the
    cookie is not valid at minute counter ``count``."""
    cdef Py_ssize_t n = mss_out.shape[0], i0, i
    cdef int lane, nb, nw = 5 if v6 else 2
    cdef const uint16_t *table = &MSS_V4[0]
    cdef uint64_t k00 = secret[0], k01 = secret[1], k10 = secret[2], k11 = secret[3]
    cdef uint64_t kc0[FS_SIP_LANES]
    cdef uint64_t kc1[FS_SIP_LANES]
    cdef uint64_t kd0[FS_SIP_LANES]
    cdef uint64_t kd1[FS_SIP_LANES]
    cdef uint64_t m[5 * FS_SIP_LANES]
    cdef uint64_t last[FS_SIP_LANES]
    cdef uint64_t h[FS_SIP_LANES]
    cdef uint32_t rest[FS_SIP_LANES]
    cdef uint32_t diff[FS_SIP_LANES]
    cdef uint32_t cookie, idx
    cdef fs_sip_lanes_fn lanes = _lanes_v6 if v6 else _lanes_v4
    _check_shapes(n, v6, saddr, daddr, (sport, dport, seq, ack, count))
    if v6:
        table = &MSS_V6[0]
    with nogil:
        _fill_keys(kc0, kc1, k00, k01)
        _fill_keys(kd0, kd1, k10, k11)
        memset(m, 0, sizeof(m))
        for lane in range(FS_SIP_LANES):
            last[lane] = (<uint64_t>(nw * 8)) << 56
        i0 = 0
        while i0 < n:
            nb = FS_SIP_LANES if n - i0 >= FS_SIP_LANES else <int>(n - i0)
            for lane in range(nb):
                i = i0 + lane
                _stage(m, lane, v6, &saddr[i, 0], &daddr[i, 0], sport[i], dport[i])
            lanes(kc0, kc1, m, nw, last, h)
            for lane in range(nb):
                i = i0 + lane
                # check_tcp_syn_cookie: strip hash 0 and the ISN, leaving
                # (count << 24) + (hash 1 + mss index) mod 2^24.
                cookie = (ack[i] - 1) - (<uint32_t>h[lane] + (seq[i] - 1))
                diff[lane] = (count[i] - (cookie >> COOKIEBITS)) & COUNTMASK
                rest[lane] = cookie
                _set_count(m, lane, v6, count[i] - diff[lane])
            lanes(kd0, kd1, m, nw, last, h)
            for lane in range(nb):
                i = i0 + lane
                idx = (rest[lane] - <uint32_t>h[lane]) & COOKIEMASK
                if diff[lane] >= MAX_SYNCOOKIE_AGE or idx >= N_COOKIE_MSS:
                    mss_out[i] = 0
                else:
                    mss_out[i] = table[idx]
            i0 += nb


def siphash24_bytes(uint64_t k0, uint64_t k1, const uint8_t[::1] data):
    """SipHash-2-4 of one message under the key (k0, k1)."""
    cdef uint8_t empty = 0
    if data.shape[0] == 0:
        return fs_siphash24(k0, k1, &empty, 0)
    return fs_siphash24(k0, k1, &data[0], data.shape[0])


def siphash24_rows(uint64_t k0, uint64_t k1, const uint8_t[:, ::1] rows,
                   uint64_t[::1] out):
    """SipHash-2-4 of every row of an (n, L) array under one key."""
    cdef Py_ssize_t n = rows.shape[0], length = rows.shape[1], i0, i
    cdef Py_ssize_t nw = length >> 3, w, t
    cdef int lane, nb
    cdef uint64_t kk0[FS_SIP_LANES]
    cdef uint64_t kk1[FS_SIP_LANES]
    cdef uint64_t last[FS_SIP_LANES]
    cdef uint64_t h[FS_SIP_LANES]
    cdef uint64_t tail
    cdef const uint8_t *p
    cdef fs_sip_lanes_fn lanes = _lanes
    if out.shape[0] != n:
        raise ValueError(f"out needs {n} rows")
    cdef size_t staging_bytes = (nw if nw > 0 else 1) * FS_SIP_LANES * sizeof(uint64_t)
    cdef uint64_t *m = <uint64_t *>malloc(staging_bytes)
    if m == NULL:
        raise MemoryError()
    try:
        with nogil:
            _fill_keys(kk0, kk1, k0, k1)
            memset(m, 0, staging_bytes)
            memset(last, 0, sizeof(last))
            i0 = 0
            while i0 < n:
                nb = FS_SIP_LANES if n - i0 >= FS_SIP_LANES else <int>(n - i0)
                for lane in range(nb):
                    if length == 0:
                        last[lane] = 0
                        continue
                    p = &rows[i0 + lane, 0]
                    for w in range(nw):
                        m[w * FS_SIP_LANES + lane] = ld_le64(p + 8 * w)
                    tail = (<uint64_t>(length & 0xff)) << 56
                    for t in range(length & 7):
                        tail |= (<uint64_t>p[8 * nw + t]) << (8 * t)
                    last[lane] = tail
                lanes(kk0, kk1, m, <size_t>nw, last, h)
                for lane in range(nb):
                    out[i0 + lane] = h[lane]
                i0 += nb
    finally:
        free(m)
