# One's-complement checksum kernels over packet buffers: TCP over the IPv4 and
# IPv6 pseudo-headers (RFC 9293 3.1, RFC 8200 8.1), the IPv4 header checksum
# (RFC 791), verify / compute / fix in place.  Each def releases the GIL once
# around a C loop; every offset is checked against the buffer before a read,
# so rows that point anywhere cannot make the kernel read or write outside it.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memcmp, memcpy

from fastseg._bytes cimport ld_be16
from fastseg._consts cimport CSUM_OK, CSUM_BAD, CSUM_UNVERIFIED, CSUM_NOT_APPLICABLE

import numpy as np


cdef extern from "_csum.h" nogil:
    uint64_t fs_csum_partial(const uint8_t *p, size_t len)
    uint16_t fs_csum_fold(uint64_t s)
    uint16_t fs_internet_checksum(const uint8_t *p, size_t len)
    int fs_csum_unfilled(uint16_t field, uint64_t pseudo)


# Where one row's TCP segment sits, once proven to lie inside the buffer.
cdef struct TcpSpan:
    Py_ssize_t l3           # IP header
    Py_ssize_t l4           # TCP header
    uint64_t tcp_len        # TCP header + payload, from the IP length
    uint8_t version


cdef inline bint tcp_span(Py_ssize_t data_len, int64_t l3, int64_t l4, uint32_t caplen,
                          uint8_t version, uint8_t hdr_len, uint32_t payload_len,
                          TcpSpan* out) noexcept nogil:
    """True when every byte the TCP checksum covers (pseudo-header addresses
    and the whole segment) was captured and lies in the buffer."""
    cdef Py_ssize_t avail, ip_min
    if version == 4:
        ip_min = 20
    elif version == 6:
        ip_min = 40
    else:
        return False
    if l3 < 0 or l3 > data_len or l4 - l3 < ip_min:
        return False
    avail = data_len - l3
    if <Py_ssize_t>caplen < avail:
        avail = caplen
    out.tcp_len = <uint64_t>hdr_len + payload_len
    # The header must hold the checksum field; its lower bound of 20 bytes is
    # the TCP data offset minimum (RFC 9293 3.1).
    if out.tcp_len < 20 or <uint64_t>(l4 - l3) + out.tcp_len > <uint64_t>avail:
        return False
    out.l3 = l3
    out.l4 = l4
    out.version = version
    return True


cdef inline uint64_t pseudo_sum(const uint8_t* ip, uint8_t version, uint64_t tcp_len) noexcept nogil:
    # Addresses come from the packet bytes, not the columns, so a buffer whose
    # addresses were rewritten (anonymised) is checked as it now stands.  The
    # length is added whole: folding a 32-bit value adds its 16-bit halves,
    # which is the IPv6 pseudo-header's 32-bit length field.
    if version == 4:
        return fs_csum_partial(ip + 12, 8) + 6 + tcp_len
    return fs_csum_partial(ip + 8, 32) + 6 + tcp_len


cdef inline uint16_t without_field(uint64_t total, uint16_t field) noexcept nogil:
    """The checksum that belongs in a field, from the sum taken with the
    field's current value in place: subtracting in one's complement is adding
    the complement (RFC 1624)."""
    return <uint16_t>~fs_csum_fold(total + (<uint16_t>~field))


cdef void tcp_rows(const uint8_t* data, Py_ssize_t data_len, Py_ssize_t n,
                   const int64_t* l3_off, const int64_t* l4_off, const uint32_t* l3_caplen,
                   const uint8_t* ip_version, const uint8_t* hdr_len,
                   const uint32_t* payload_len, const uint8_t* fragment,
                   uint8_t* status, uint16_t* correct, uint8_t* offload) noexcept nogil:
    cdef Py_ssize_t i
    cdef TcpSpan span
    cdef uint64_t pseudo, total
    cdef uint16_t field
    cdef uint8_t st
    for i in range(n):
        st = CSUM_UNVERIFIED
        # A first fragment's checksum covers bytes in later fragments.
        if (fragment == NULL or not fragment[i]) and tcp_span(
                data_len, l3_off[i], l4_off[i], l3_caplen[i], ip_version[i],
                hdr_len[i], payload_len[i], &span):
            pseudo = pseudo_sum(data + span.l3, span.version, span.tcp_len)
            total = pseudo + fs_csum_partial(data + span.l4, span.tcp_len)
            field = ld_be16(data + span.l4 + 16)
            st = CSUM_OK if fs_csum_fold(total) == 0xffff else CSUM_BAD
            if correct != NULL:
                correct[i] = without_field(total, field)
            if offload != NULL:
                # Linux CHECKSUM_PARTIAL leaves ~tcp_v4_check(len, saddr,
                # daddr, 0), i.e. the folded pseudo-header sum, for the NIC
                # to finish; a capture on the sender sees that value.
                offload[i] = st == CSUM_BAD and fs_csum_unfilled(field, pseudo)
        else:
            if correct != NULL:
                correct[i] = 0
            if offload != NULL:
                offload[i] = 0
        if status != NULL:
            status[i] = st


cdef inline Py_ssize_t ipv4_header_len(const uint8_t* data, Py_ssize_t data_len, int64_t l3,
                                       uint32_t caplen) noexcept nogil:
    """IHL in bytes when the whole IPv4 header was captured, else 0."""
    cdef Py_ssize_t avail, ihl
    if l3 < 0 or l3 >= data_len:
        return 0
    avail = data_len - l3
    if <Py_ssize_t>caplen < avail:
        avail = caplen
    if avail < 20:
        return 0
    ihl = (data[l3] & 0x0f) * 4
    if ihl < 20 or ihl > avail:
        return 0
    return ihl


cdef void ip_rows(const uint8_t* data, Py_ssize_t data_len, Py_ssize_t n,
                  const int64_t* l3_off, const uint32_t* l3_caplen, const uint8_t* ip_version,
                  uint8_t* status, uint16_t* correct) noexcept nogil:
    cdef Py_ssize_t i, ihl
    cdef uint64_t total
    for i in range(n):
        if ip_version[i] != 4:
            status[i] = CSUM_NOT_APPLICABLE
            if correct != NULL:
                correct[i] = 0
            continue
        ihl = ipv4_header_len(data, data_len, l3_off[i], l3_caplen[i])
        if ihl == 0:
            status[i] = CSUM_UNVERIFIED
            if correct != NULL:
                correct[i] = 0
            continue
        total = fs_csum_partial(data + l3_off[i], ihl)
        status[i] = CSUM_OK if fs_csum_fold(total) == 0xffff else CSUM_BAD
        if correct != NULL:
            correct[i] = without_field(total, ld_be16(data + l3_off[i] + 10))


cdef inline void store_be16(uint8_t* p, uint16_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 8)
    p[1] = <uint8_t>(v & 0xff)


cdef Py_ssize_t fix_rows(uint8_t* data, Py_ssize_t data_len, Py_ssize_t n,
                         const int64_t* l3_off, const int64_t* l4_off, const uint32_t* l3_caplen,
                         const uint8_t* ip_version, const uint8_t* hdr_len,
                         const uint32_t* payload_len, const uint8_t* fragment) noexcept nogil:
    cdef Py_ssize_t i, ihl, fixed = 0
    cdef TcpSpan span
    cdef uint8_t* p
    for i in range(n):
        if ip_version[i] == 4:
            ihl = ipv4_header_len(data, data_len, l3_off[i], l3_caplen[i])
            if ihl:
                p = data + l3_off[i]
                store_be16(p + 10, 0)
                store_be16(p + 10, fs_internet_checksum(p, ihl))
        if (fragment == NULL or not fragment[i]) and tcp_span(
                data_len, l3_off[i], l4_off[i], l3_caplen[i], ip_version[i],
                hdr_len[i], payload_len[i], &span):
            p = data + span.l4
            store_be16(p + 16, 0)
            store_be16(p + 16, <uint16_t>~fs_csum_fold(
                pseudo_sum(data + span.l3, span.version, span.tcp_len)
                + fs_csum_partial(p, span.tcp_len)))
            fixed += 1
    return fixed


# ---------------------------------------------------------------- Python faces

def internet_checksum(const uint8_t[::1] buffer) -> int:
    """RFC 1071 checksum of a contiguous byte buffer (GIL released)."""
    cdef Py_ssize_t n = buffer.shape[0]
    cdef uint16_t value = 0xffff
    if n:
        with nogil:
            value = fs_internet_checksum(&buffer[0], n)
    return value


cdef uint8_t _no_bytes[1]


cdef inline const uint8_t* bytes_ptr(const uint8_t[::1] data) noexcept:
    # A zero-length buffer has no element 0; any valid pointer will do since
    # every span check then fails before a read.
    return &data[0] if data.shape[0] else _no_bytes


def tcp_status(const uint8_t[::1] data, const int64_t[::1] l3_off, const int64_t[::1] l4_off,
               const uint32_t[::1] l3_caplen, const uint8_t[::1] ip_version,
               const uint8_t[::1] hdr_len, const uint32_t[::1] payload_len,
               const uint8_t[::1] fragment=None, bint want_correct=False,
               bint want_offload=False):
    """TCP checksum status of each row (0 ok, 1 bad, 2 unverified), plus the
    correct field values (0 where bytes are missing) and the offload-pattern
    flags when asked: returns ``(status, correct or None, offload or None)``.
    Every array has one entry per row; ``fragment`` may be None."""
    cdef Py_ssize_t n = l3_off.shape[0]
    _check_rows(n, l4_off.shape[0], l3_caplen.shape[0], ip_version.shape[0],
                hdr_len.shape[0], payload_len.shape[0],
                n if fragment is None else fragment.shape[0])
    status = np.empty(n, dtype=np.uint8)
    correct = np.empty(n, dtype=np.uint16) if want_correct else None
    offload = np.empty(n, dtype=np.uint8) if want_offload else None
    cdef uint8_t[::1] st = status
    cdef uint16_t[::1] co
    cdef uint8_t[::1] of
    cdef uint16_t* co_p = NULL
    cdef uint8_t* of_p = NULL
    cdef const uint8_t* frag_p = NULL
    if n == 0:
        return status, correct, offload
    if want_correct:
        co = correct
        co_p = &co[0]
    if want_offload:
        of = offload
        of_p = &of[0]
    if fragment is not None:
        frag_p = &fragment[0]
    cdef const uint8_t* base = bytes_ptr(data)
    with nogil:
        tcp_rows(base, data.shape[0], n, &l3_off[0], &l4_off[0], &l3_caplen[0],
                 &ip_version[0], &hdr_len[0], &payload_len[0], frag_p,
                 &st[0], co_p, of_p)
    return status, correct, offload


def ip_status(const uint8_t[::1] data, const int64_t[::1] l3_off,
              const uint32_t[::1] l3_caplen, const uint8_t[::1] ip_version,
              bint want_correct=False):
    """IPv4 header checksum status of each row (0 ok, 1 bad, 2 unverified,
    3 n/a for IPv6) and, when asked, the correct field values:
    returns ``(status, correct or None)``."""
    cdef Py_ssize_t n = l3_off.shape[0]
    _check_rows(n, l3_caplen.shape[0], ip_version.shape[0])
    status = np.empty(n, dtype=np.uint8)
    correct = np.empty(n, dtype=np.uint16) if want_correct else None
    cdef uint8_t[::1] st = status
    cdef uint16_t[::1] co
    cdef uint16_t* co_p = NULL
    if n == 0:
        return status, correct
    if want_correct:
        co = correct
        co_p = &co[0]
    cdef const uint8_t* base = bytes_ptr(data)
    with nogil:
        ip_rows(base, data.shape[0], n, &l3_off[0], &l3_caplen[0], &ip_version[0],
                &st[0], co_p)
    return status, correct


def fix_in_place(uint8_t[::1] data, const int64_t[::1] l3_off, const int64_t[::1] l4_off,
                 const uint32_t[::1] l3_caplen, const uint8_t[::1] ip_version,
                 const uint8_t[::1] hdr_len, const uint32_t[::1] payload_len,
                 const uint8_t[::1] fragment=None) -> int:
    """Rewrite checksums in a writable buffer: the IPv4 header checksum of
    every row whose IPv4 header was captured, and the TCP checksum of every
    row whose whole segment was captured (not a fragment).  Returns the number
    of TCP checksums written."""
    cdef Py_ssize_t n = l3_off.shape[0]
    _check_rows(n, l4_off.shape[0], l3_caplen.shape[0], ip_version.shape[0],
                hdr_len.shape[0], payload_len.shape[0],
                n if fragment is None else fragment.shape[0])
    if n == 0 or data.shape[0] == 0:
        return 0
    cdef const uint8_t* frag_p = NULL
    if fragment is not None:
        frag_p = &fragment[0]
    cdef Py_ssize_t fixed
    with nogil:
        fixed = fix_rows(&data[0], data.shape[0], n, &l3_off[0], &l4_off[0], &l3_caplen[0],
                         &ip_version[0], &hdr_len[0], &payload_len[0], frag_p)
    return fixed


def _check_rows(Py_ssize_t n, *others):
    for m in others:
        if m != n:
            raise ValueError(f"row arrays differ in length ({n} and {m})")


# -- the checksum verdict: which senders offload, whether the capture's
# checksums can be trusted at all --------------------------------------------

def unfilled_from_columns(const uint8_t[:, ::1] src, const uint8_t[:, ::1] dst,
                          const uint8_t[::1] ip_version, const uint8_t[::1] hdr_len,
                          const uint32_t[::1] payload_len, const uint16_t[::1] checksum,
                          const uint8_t[::1] status, uint8_t[::1] out):
    """The parser's unfilled-checksum flag recomputed from columns (for
    segments built without it): 1 where a bad checksum field holds the
    pseudo-header sum of the row's addresses and TCP length."""
    cdef Py_ssize_t i, n = status.shape[0]
    _check_rows(n, src.shape[0], dst.shape[0], ip_version.shape[0], hdr_len.shape[0],
                payload_len.shape[0], checksum.shape[0], out.shape[0])
    if n and (src.shape[1] != 16 or dst.shape[1] != 16):
        raise ValueError("addresses must be (n, 16) rows")
    cdef uint64_t pseudo, tcp_len
    with nogil:
        for i in range(n):
            out[i] = 0
            if status[i] != CSUM_BAD:
                continue
            tcp_len = <uint64_t>hdr_len[i] + payload_len[i]
            if ip_version[i] == 4:
                pseudo = fs_csum_partial(&src[i, 12], 4) + fs_csum_partial(&dst[i, 12], 4)
            else:
                pseudo = fs_csum_partial(&src[i, 0], 16) + fs_csum_partial(&dst[i, 0], 16)
            pseudo += 6 + tcp_len
            out[i] = fs_csum_unfilled(checksum[i], pseudo)


cdef struct Sender:
    uint8_t addr[16]
    uint8_t used
    uint8_t version
    uint8_t offloading        # sticky once diagnosed (or named by the user)
    uint8_t forced
    int64_t bad
    int64_t unfilled


cdef inline uint64_t addr_hash(const uint8_t* a) noexcept nogil:
    cdef uint64_t w0, w1, x
    memcpy(&w0, a, 8)
    memcpy(&w1, a + 8, 8)
    x = w0 * 0x9E3779B97F4A7C15ULL ^ w1
    x ^= x >> 31
    x *= 0xBF58476D1CE4E5B9ULL
    x ^= x >> 29
    return x


cdef class SenderTally:
    """Per sender address: bad TCP checksums and how many of them hold the
    unfilled (offloaded) value; plus capture-wide ok/bad counts.  Open
    addressing over 16-byte address rows, updated in nogil loops.  The rule
    that turns counts into a verdict lives in ``decide`` and nowhere else."""
    cdef Sender* table
    cdef Py_ssize_t cap, size
    cdef public int64_t ok, bad
    cdef public bint untrusted

    def __cinit__(self):
        self.cap = 64
        self.size = 0
        self.table = <Sender*>calloc(self.cap, sizeof(Sender))
        if self.table == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.table)

    cdef Sender* slot(self, const uint8_t* addr) noexcept nogil:
        """The entry of addr (used == 0 when absent, ready to be filled)."""
        cdef uint64_t mask = self.cap - 1
        cdef uint64_t j = addr_hash(addr) & mask
        while self.table[j].used and memcmp(self.table[j].addr, addr, 16) != 0:
            j = (j + 1) & mask
        return &self.table[j]

    cdef int grow(self) noexcept nogil:
        cdef Sender* old = self.table
        cdef Py_ssize_t i, old_cap = self.cap
        cdef Sender* e
        self.table = <Sender*>calloc(old_cap * 2, sizeof(Sender))
        if self.table == NULL:
            self.table = old
            return -1
        self.cap = old_cap * 2
        for i in range(old_cap):
            if old[i].used:
                e = self.slot(old[i].addr)
                e[0] = old[i]
        free(old)
        return 0

    cdef Sender* entry(self, const uint8_t* addr, uint8_t version) noexcept nogil:
        cdef Sender* e
        if 2 * (self.size + 1) > self.cap and self.grow() != 0:
            return NULL
        e = self.slot(addr)
        if not e.used:
            memcpy(e.addr, addr, 16)
            e.used = 1
            e.version = version
            self.size += 1
        return e

    def add(self, const uint8_t[:, ::1] src, const uint8_t[::1] ip_version,
            const uint8_t[::1] status, const uint8_t[::1] unfilled):
        """Count one batch: every segment's status, and per sender its bad
        checksums and unfilled ones."""
        cdef Py_ssize_t i, n = status.shape[0]
        _check_rows(n, src.shape[0], ip_version.shape[0], unfilled.shape[0])
        if n and src.shape[1] != 16:
            raise ValueError("addresses must be (n, 16) rows")
        cdef Sender* e
        cdef int failed = 0
        with nogil:
            for i in range(n):
                if status[i] == CSUM_OK:
                    self.ok += 1
                elif status[i] == CSUM_BAD:
                    self.bad += 1
                    e = self.entry(&src[i, 0], ip_version[i])
                    if e == NULL:
                        failed = 1
                        break
                    e.bad += 1
                    e.unfilled += unfilled[i]
        if failed:
            raise MemoryError("checksum tally: out of memory")

    def force(self, const uint8_t[:, ::1] hosts):
        """Treat these senders as offloading whatever their counts."""
        cdef Py_ssize_t i
        cdef Sender* e
        for i in range(hosts.shape[0]):
            e = self.entry(&hosts[i, 0], 4 if hosts[i, 10] == 0xFF and hosts[i, 11] == 0xFF else 6)
            if e == NULL:
                raise MemoryError("checksum tally: out of memory")
            e.offloading = 1
            e.forced = 1

    def decide(self, int64_t min_segments, double min_share, int64_t untrusted_min,
               double untrusted_share):
        """The one offload rule: a sender offloads when at least
        ``min_segments`` of its bad checksums are unfilled and they are at
        least ``min_share`` of its bad checksums.  The capture's checksums are
        untrusted when the bad checksums no offload explains number at least
        ``untrusted_min`` and at least ``untrusted_share`` of all checked
        (ok + unexplained bad) ones.  Both verdicts are sticky: what tracking
        once excused stays excused, so the report names the same hosts."""
        cdef Py_ssize_t i
        cdef Sender* e
        cdef int64_t unexplained = 0
        with nogil:
            for i in range(self.cap):
                e = &self.table[i]
                if not e.used:
                    continue
                if not e.offloading and e.unfilled >= min_segments and e.unfilled >= min_share * e.bad:
                    e.offloading = 1
                if not e.offloading:
                    unexplained += e.bad
        if (not self.untrusted and unexplained >= untrusted_min
                and unexplained >= untrusted_share * (self.ok + unexplained)):
            self.untrusted = True
        return unexplained

    def drop_mask(self, const uint8_t[:, ::1] src, const uint8_t[::1] status,
                  bint excuse_offload, uint8_t[::1] out):
        """1 for each bad-checksum segment whose receiver dropped it: every bad
        one, or (``excuse_offload``) those whose sender is not offloading."""
        cdef Py_ssize_t i, n = status.shape[0]
        _check_rows(n, src.shape[0], out.shape[0])
        cdef Sender* e
        with nogil:
            for i in range(n):
                out[i] = 0
                if status[i] != CSUM_BAD:
                    continue
                if excuse_offload:
                    e = self.slot(&src[i, 0])
                    if e.used and e.offloading:
                        continue
                out[i] = 1

    def merge(self, SenderTally other):
        """Add another tally's counts (its verdicts are re-derived by decide)."""
        cdef Py_ssize_t i
        cdef Sender* e
        cdef Sender* o
        for i in range(other.cap):
            o = &other.table[i]
            if not o.used:
                continue
            e = self.entry(o.addr, o.version)
            if e == NULL:
                raise MemoryError("checksum tally: out of memory")
            e.bad += o.bad
            e.unfilled += o.unfilled
            e.offloading |= o.offloading
            e.forced |= o.forced
        self.ok += other.ok
        self.bad += other.bad
        self.untrusted = self.untrusted or other.untrusted

    def __reduce__(self):
        return (_tally_from_state, (self.senders(), self.ok, self.bad, self.untrusted))

    def restore(self, const uint8_t[:, ::1] addr, const uint8_t[::1] version,
                const int64_t[::1] bad, const int64_t[::1] unfilled, offloading, forced):
        """Add senders as ``senders()`` returns them (for pickling)."""
        cdef Py_ssize_t i
        cdef Sender* e
        for i in range(addr.shape[0]):
            e = self.entry(&addr[i, 0], version[i])
            if e == NULL:
                raise MemoryError("checksum tally: out of memory")
            e.bad += bad[i]
            e.unfilled += unfilled[i]
            e.offloading |= <uint8_t>bool(offloading[i])
            e.forced |= <uint8_t>bool(forced[i])

    def senders(self):
        """``(addr (n, 16) uint8, version, bad, unfilled, offloading, forced)``
        for every sender with bad checksums (or named), in address order."""
        cdef Py_ssize_t i, k = 0
        addr = np.empty((self.size, 16), np.uint8)
        version = np.empty(self.size, np.uint8)
        bad = np.empty(self.size, np.int64)
        unfilled = np.empty(self.size, np.int64)
        offloading = np.empty(self.size, np.bool_)
        forced = np.empty(self.size, np.bool_)
        cdef uint8_t[:, ::1] a = addr
        for i in range(self.cap):
            if self.table[i].used:
                memcpy(&a[k, 0], self.table[i].addr, 16)
                version[k] = self.table[i].version
                bad[k] = self.table[i].bad
                unfilled[k] = self.table[i].unfilled
                offloading[k] = self.table[i].offloading
                forced[k] = self.table[i].forced
                k += 1
        order = np.lexsort(addr.T[::-1]) if k else np.zeros(0, np.intp)
        return (addr[order], version[order], bad[order], unfilled[order],
                offloading[order], forced[order])


def _tally_from_state(senders, ok, bad, untrusted):
    t = SenderTally()
    t.restore(*senders)
    t.ok = ok
    t.bad = bad
    t.untrusted = untrusted
    return t
