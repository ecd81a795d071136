# Record scanners for pcap and pcapng.
#
# Each scanner walks one buffer of whole-file (or decompressed-stream) bytes
# from `pos`, writes one row per packet record into the caller's column arrays
# from row `n` on, and stops at the first of: the batch is full, the byte
# budget is spent, the buffer ends (cleanly or inside a record), a block that
# Python must interpret (pcapng SHB / IDB), or damage.  It returns a status
# code and where it stopped; the Python face turns codes into batches,
# refills, warnings and CaptureError.  Nothing here allocates, raises or
# touches a Python object, so the loop runs with the GIL released.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t

from fastseg._bytes cimport ld32, ld16

# Per-record caps: a larger length field is damage, never an allocation.
cdef enum:
    CAPLEN_CAP = 16 << 20
    BLOCK_CAP = 64 << 20

# pcapng block types (the SHB type reads the same in both byte orders).
cdef enum:
    BT_SHB = 0x0A0D0D0A
    BT_IDB = 1
    BT_PB = 2
    BT_SPB = 3
    BT_EPB = 6

cpdef enum ScanStatus:
    ST_FULL = 0           # batch capacity or byte budget reached; more records follow
    ST_END = 1            # buffer consumed exactly at a record boundary
    ST_PARTIAL = 2        # buffer ends inside the record at pos; `need` bytes make it whole
    ST_SHB = 3            # section header block at pos (Python reads it)
    ST_IDB = 4            # interface description block at pos, whole (Python reads it)
    ERR_CAPLEN_CAP = 10   # pcap caplen or pcapng captured length over CAPLEN_CAP
    ERR_BLOCK_SHORT = 11  # pcapng block total length < 12
    ERR_BLOCK_ALIGN = 12  # block total length not a multiple of 4
    ERR_BLOCK_CAP = 13    # block total length over BLOCK_CAP
    ERR_TRAILER = 14      # trailing block length differs from the leading one
    ERR_UNKNOWN_IF = 15   # packet names an interface no IDB of this section described
    ERR_CAPLEN_BLOCK = 16 # captured length runs past the end of its block
    ERR_BLOCK_BODY = 17   # block too short for its fixed fields

CAPLEN_MAX = CAPLEN_CAP
BLOCK_MAX = BLOCK_CAP
# Status codes as plain module-level ints too (fastseg._capture.ST_END).
globals().update({_k: int(_v) for _k, _v in ScanStatus.__members__.items()})


cdef struct Rows:
    int64_t* offset
    uint32_t* caplen
    uint32_t* wirelen
    int64_t* ts_ns
    uint16_t* linktype
    int64_t* record_offset
    Py_ssize_t n
    Py_ssize_t cap


cdef struct Interfaces:
    const uint16_t* linktype
    const uint32_t* snaplen
    const uint64_t* ts_mul     # ns = ticks * ts_mul / ts_div + ts_off_ns
    const uint64_t* ts_div
    const int64_t* ts_off_ns
    Py_ssize_t count


cdef inline int64_t ticks_to_ns(uint64_t ticks, uint64_t mul, uint64_t div) noexcept nogil:
    # ns = floor(ticks * mul / div), exact, wrapping like int64 arithmetic.
    # Decimal resolutions have mul == 1 or div == 1; only 2^-k with k >= 35
    # (mul = 10^9, div = 2^k) overflows rem * mul and takes the split path.
    cdef uint64_t whole = ticks / div
    cdef uint64_t rem = ticks - whole * div
    cdef uint64_t frac, mid, lo
    cdef int k = 0
    if mul == 0 or rem <= (<uint64_t>0xFFFFFFFFFFFFFFFF) / mul:
        frac = rem * mul / div
    else:
        # rem * mul = mid * 2^32 + lo, and div = 2^k with k > 32 here.
        while k < 63 and (div >> k) > 1:
            k += 1
        mid = (rem >> 32) * mul
        lo = ((rem << 32) >> 32) * mul
        frac = (mid + (lo >> 32)) >> (k - 32)
    return <int64_t>(whole * mul + frac)


cdef inline void put_row(Rows* rows, int64_t off, uint32_t caplen, uint32_t wirelen,
                         int64_t ts, uint16_t lt, int64_t rec) noexcept nogil:
    cdef Py_ssize_t i = rows.n
    rows.offset[i] = off
    rows.caplen[i] = caplen
    rows.wirelen[i] = wirelen
    rows.ts_ns[i] = ts
    rows.linktype[i] = lt
    rows.record_offset[i] = rec
    rows.n = i + 1


cdef ScanStatus scan_pcap_records(const uint8_t* buf, Py_ssize_t size, Py_ssize_t* pos_io,
                                  Py_ssize_t limit_pos, bint big, uint64_t frac_mul,
                                  Py_ssize_t hdr_len, uint16_t linktype,
                                  int64_t data_base, int64_t file_base,
                                  Rows* rows, Py_ssize_t* need) noexcept nogil:
    cdef Py_ssize_t pos = pos_io[0]
    cdef const uint8_t* p
    cdef uint32_t caplen
    cdef uint64_t sec, frac
    cdef ScanStatus st = ST_END
    while True:
        if rows.n >= rows.cap or pos >= limit_pos:
            st = ST_FULL if pos < size else ST_END
            break
        if pos == size:
            st = ST_END
            break
        if size - pos < hdr_len:
            need[0] = hdr_len
            st = ST_PARTIAL
            break
        p = buf + pos
        caplen = ld32(p + 8, big)
        if caplen > CAPLEN_CAP:
            st = ERR_CAPLEN_CAP
            break
        if size - pos - hdr_len < <Py_ssize_t>caplen:
            need[0] = hdr_len + caplen
            st = ST_PARTIAL
            break
        sec = ld32(p, big)
        frac = ld32(p + 4, big)
        put_row(rows, data_base + pos + hdr_len, caplen, ld32(p + 12, big),
                <int64_t>(sec * 1000000000ULL + frac * frac_mul), linktype, file_base + pos)
        pos += hdr_len + caplen
    pos_io[0] = pos
    return st


cdef ScanStatus scan_pcapng_blocks(const uint8_t* buf, Py_ssize_t size, Py_ssize_t* pos_io,
                                   Py_ssize_t limit_pos, bint big, const Interfaces* ifs,
                                   int64_t data_base, int64_t file_base,
                                   Rows* rows, Py_ssize_t* need) noexcept nogil:
    cdef Py_ssize_t pos = pos_io[0]
    cdef const uint8_t* p
    cdef uint32_t btype, blen, if_id, caplen, wirelen, room, snap
    cdef uint64_t ticks
    cdef int64_t ts
    cdef ScanStatus st = ST_END
    while True:
        if rows.n >= rows.cap or pos >= limit_pos:
            st = ST_FULL if pos < size else ST_END
            break
        if pos == size:
            st = ST_END
            break
        if size - pos < 4:
            need[0] = 8
            st = ST_PARTIAL
            break
        p = buf + pos
        btype = ld32(p, big)
        if btype == BT_SHB:
            st = ST_SHB           # its own byte-order magic decides how to read it
            break
        if size - pos < 8:
            need[0] = 8
            st = ST_PARTIAL
            break
        blen = ld32(p + 4, big)
        if blen < 12:
            st = ERR_BLOCK_SHORT
            break
        if blen & 3:
            st = ERR_BLOCK_ALIGN
            break
        if blen > BLOCK_CAP:
            st = ERR_BLOCK_CAP
            break
        if size - pos < <Py_ssize_t>blen:
            need[0] = blen
            st = ST_PARTIAL
            break
        if ld32(p + blen - 4, big) != blen:
            st = ERR_TRAILER
            break
        if btype == BT_EPB or btype == BT_PB:
            if blen < 32:
                st = ERR_BLOCK_BODY
                break
            if btype == BT_EPB:
                if_id = ld32(p + 8, big)
            else:
                if_id = ld16(p + 8, big)
            if if_id >= <uint64_t>ifs.count:
                st = ERR_UNKNOWN_IF
                break
            caplen = ld32(p + 20, big)
            wirelen = ld32(p + 24, big)
            if caplen > CAPLEN_CAP:
                st = ERR_CAPLEN_CAP
                break
            if caplen > blen - 32:
                st = ERR_CAPLEN_BLOCK
                break
            ticks = ((<uint64_t>ld32(p + 12, big)) << 32) | ld32(p + 16, big)
            ts = ticks_to_ns(ticks, ifs.ts_mul[if_id], ifs.ts_div[if_id]) + ifs.ts_off_ns[if_id]
            put_row(rows, data_base + pos + 28, caplen, wirelen, ts,
                    ifs.linktype[if_id], file_base + pos)
        elif btype == BT_SPB:
            if blen < 16:
                st = ERR_BLOCK_BODY
                break
            if ifs.count == 0:
                st = ERR_UNKNOWN_IF
                break
            # RFC draft: the captured length is implied by the block length,
            # the original length and the interface's snapshot length.
            wirelen = ld32(p + 8, big)
            room = blen - 16
            caplen = wirelen
            snap = ifs.snaplen[0]
            if snap != 0 and caplen > snap:
                caplen = snap
            if caplen > room:
                caplen = room
            if caplen > CAPLEN_CAP:
                st = ERR_CAPLEN_CAP
                break
            put_row(rows, data_base + pos + 12, caplen, wirelen, 0,
                    ifs.linktype[0], file_base + pos)
        elif btype == BT_IDB:
            st = ST_IDB
            break
        pos += blen
    pos_io[0] = pos
    return st


cdef Rows make_rows(int64_t[::1] offset, uint32_t[::1] caplen, uint32_t[::1] wirelen,
                    int64_t[::1] ts_ns, uint16_t[::1] linktype, int64_t[::1] record_offset,
                    Py_ssize_t n):
    cdef Rows rows
    cdef Py_ssize_t cap = offset.shape[0]
    if not (caplen.shape[0] == cap and wirelen.shape[0] == cap and ts_ns.shape[0] == cap
            and linktype.shape[0] == cap and record_offset.shape[0] == cap):
        raise ValueError("row arrays differ in length")
    if n < 0 or n > cap:
        raise ValueError("row index out of range")
    rows.offset = &offset[0] if cap else NULL
    rows.caplen = &caplen[0] if cap else NULL
    rows.wirelen = &wirelen[0] if cap else NULL
    rows.ts_ns = &ts_ns[0] if cap else NULL
    rows.linktype = &linktype[0] if cap else NULL
    rows.record_offset = &record_offset[0] if cap else NULL
    rows.n = n
    rows.cap = cap
    return rows


def scan_pcap(const uint8_t[::1] buf, Py_ssize_t pos, Py_ssize_t limit_pos, bint big,
              bint nanosecond, Py_ssize_t hdr_len, uint16_t linktype,
              int64_t data_base, int64_t file_base,
              int64_t[::1] offset, uint32_t[::1] caplen, uint32_t[::1] wirelen,
              int64_t[::1] ts_ns, uint16_t[::1] linktype_out, int64_t[::1] record_offset,
              Py_ssize_t n):
    """Scan pcap records of ``buf`` from ``pos``; fill rows from ``n`` on.

    Returns ``(status, pos, n, need)``: a :class:`ScanStatus`, where scanning
    stopped, the rows filled so far, and for ``ST_PARTIAL`` the byte count the
    record at ``pos`` needs.  ``offset`` rows are ``data_base + index in buf``;
    ``record_offset`` rows are ``file_base + index in buf``.
    """
    cdef Rows rows = make_rows(offset, caplen, wirelen, ts_ns, linktype_out, record_offset, n)
    cdef Py_ssize_t size = buf.shape[0]
    cdef Py_ssize_t need = 0
    cdef ScanStatus st
    cdef const uint8_t* base = &buf[0] if size else NULL
    if pos < 0 or pos > size or hdr_len < 16:
        raise ValueError("scan position out of range")
    with nogil:
        st = scan_pcap_records(base, size, &pos, limit_pos, big,
                               1 if nanosecond else 1000, hdr_len, linktype,
                               data_base, file_base, &rows, &need)
    return <int>st, pos, rows.n, need


def scan_pcapng(const uint8_t[::1] buf, Py_ssize_t pos, Py_ssize_t limit_pos, bint big,
                const uint16_t[::1] if_linktype, const uint32_t[::1] if_snaplen,
                const uint64_t[::1] if_ts_mul, const uint64_t[::1] if_ts_div,
                const int64_t[::1] if_ts_off_ns,
                int64_t data_base, int64_t file_base,
                int64_t[::1] offset, uint32_t[::1] caplen, uint32_t[::1] wirelen,
                int64_t[::1] ts_ns, uint16_t[::1] linktype_out, int64_t[::1] record_offset,
                Py_ssize_t n):
    """Scan pcapng blocks of ``buf`` from ``pos``; like :func:`scan_pcap`.

    The ``if_*`` arrays describe the interfaces of the current section
    (``ts_div`` entries must be non-zero).  Stops with ``ST_SHB`` / ``ST_IDB``
    at blocks the caller interprets.
    """
    cdef Rows rows = make_rows(offset, caplen, wirelen, ts_ns, linktype_out, record_offset, n)
    cdef Interfaces ifs
    cdef Py_ssize_t size = buf.shape[0]
    cdef Py_ssize_t need = 0
    cdef Py_ssize_t i
    cdef ScanStatus st
    cdef const uint8_t* base = &buf[0] if size else NULL
    ifs.count = if_linktype.shape[0]
    if not (if_snaplen.shape[0] == ifs.count and if_ts_mul.shape[0] == ifs.count
            and if_ts_div.shape[0] == ifs.count and if_ts_off_ns.shape[0] == ifs.count):
        raise ValueError("interface arrays differ in length")
    for i in range(ifs.count):
        if if_ts_div[i] == 0:
            raise ValueError("interface timestamp divisor is zero")
    ifs.linktype = &if_linktype[0] if ifs.count else NULL
    ifs.snaplen = &if_snaplen[0] if ifs.count else NULL
    ifs.ts_mul = &if_ts_mul[0] if ifs.count else NULL
    ifs.ts_div = &if_ts_div[0] if ifs.count else NULL
    ifs.ts_off_ns = &if_ts_off_ns[0] if ifs.count else NULL
    if pos < 0 or pos > size:
        raise ValueError("scan position out of range")
    with nogil:
        st = scan_pcapng_blocks(base, size, &pos, limit_pos, big, &ifs,
                                data_base, file_base, &rows, &need)
    return <int>st, pos, rows.n, need
