# Connection tracking kernel: flow table, Zeek's endpoint state machine and
# history, the RFC 9293 observer state machine (a transition table) and the
# handshake measurements, in one pass over the segments in capture order.
#
# The Zeek rules follow zeek/src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc
# (Process, UpdateStateMachine and its Update*State helpers, IsReuse, the
# attempt/close/reset timers), TCP_Endpoint.cc (Size, history letters) and
# TCP.cc (WantConnection's role flip, the checksum check that keeps bad
# segments out of the state machine).
cimport cython
from libc.math cimport NAN
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memcmp, memcpy, memset

import numpy as np
cimport numpy as cnp

from fastseg._consts cimport (ACK, CWR, ECE, FIN, RST, SYN, Z_INACTIVE, Z_SYN_SENT,
                              Z_SYN_ACK_SENT, Z_PARTIAL, Z_ESTABLISHED, Z_CLOSED, Z_RESET,
                              OPTS_CUT)

from fastseg._track cimport Conn, Endp, HIST_MAX, LOSS_UNSET, LOSS_ONE_END

cnp.import_array()

include "_loss_kernel.pxi"

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FS_PREFETCH(p) __builtin_prefetch((const void *)(p), 1, 3)
    #else
    #define FS_PREFETCH(p) ((void)(p))
    #endif
    """
    void FS_PREFETCH(const void* p) noexcept nogil

# Growing the record array: on Linux an anonymous mapping grown with
# mremap (pages move, bytes are not copied) and backed by transparent huge
# pages where allowed (one fault per 2 MiB instead of per 4 KiB);
# elsewhere realloc.
cdef extern from *:
    """
    #include <stdlib.h>
    #if defined(__linux__)
    #ifndef _GNU_SOURCE
    #define _GNU_SOURCE
    #endif
    #include <sys/mman.h>
    static void *fs_grow(void *old, size_t old_size, size_t new_size) {
        void *p;
        if (old == NULL) {
            p = mmap(NULL, new_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        } else {
            p = mremap(old, old_size, new_size, MREMAP_MAYMOVE);
        }
        if (p == MAP_FAILED)
            return NULL;
    #ifdef MADV_HUGEPAGE
        madvise(p, new_size, MADV_HUGEPAGE);
    #endif
        return p;
    }
    static void fs_release(void *p, size_t size) {
        if (p != NULL)
            munmap(p, size);
    }
    #else
    static void *fs_grow(void *old, size_t old_size, size_t new_size) {
        (void)old_size;
        return realloc(old, new_size);
    }
    static void fs_release(void *p, size_t size) {
        (void)size;
        free(p);
    }
    #endif
    """
    void* fs_grow(void* old, size_t old_size, size_t new_size) noexcept nogil
    void fs_release(void* p, size_t size) noexcept nogil

# How far ahead the loop prefetches: flow-table buckets 2*AHEAD segments
# ahead, the record they point to AHEAD segments ahead.  With a million
# live connections nearly every segment misses the cache twice (bucket,
# record); overlapping those misses is what keeps the loop near memory
# bandwidth instead of memory latency.  The loss states beside the records
# are not prefetched in that loop: measured on a real capture, eleven more
# prefetches per segment cost more than the misses they hide.
cdef enum:
    AHEAD = 8

# History "seen" bits (Connection::CheckHistory); the responder's are << 16.
cdef enum:
    H_SYN = 0x1
    H_FIN = 0x2
    H_RST = 0x4
    H_FIN_RST = 0x8
    H_DATA = 0x10
    H_ACK = 0x20
    H_MULTI = 0x40

# Zeek's TOO_LARGE_SEQ_DELTA: SYN/RST sequence jumps beyond it are not trusted.
cdef enum:
    TOO_LARGE_SEQ_DELTA = 1048576

# Zeek's tcp_max_above_hole_without_any_acks (init-bare.zeek): buffered data
# above a hole, with nothing of this side acknowledged yet, beyond which the
# reassembler gives up on the direction (skip_deliveries).
cdef enum:
    MAX_ABOVE_HOLE_WITHOUT_ACKS = 16384

# RFC 9293 states and observer events (see fastseg.track.TRANSITIONS).
cdef enum:
    N_RFC_STATES = 11
    N_KINDS = 7
    N_EVENTS = 14
    K_SYN = 0
    K_SYNACK = 1
    K_FIN = 2
    K_ACKFIN = 3
    K_RST = 4
    K_DATA = 5
    K_ACK = 6

# Status codes of the kernel (the Python face turns them into exceptions).
cdef enum:
    ST_OK = 0
    ST_NOMEM = 1


# One batch's columns as the per-segment step reads them (raw pointers: a
# step that took typed memoryviews would copy them at every call the
# compiler does not inline).
cdef struct SegBatch:
    const int64_t* ts_ns
    const uint8_t* src            # n x 16
    const uint8_t* dst
    const uint16_t* sport
    const uint16_t* dport
    const uint32_t* seq
    const uint32_t* ack
    const uint16_t* flags
    const uint32_t* payload_len
    const uint16_t* window
    const int32_t* mss
    const int16_t* wscale
    const uint8_t* sack_perm
    const int64_t* tsval
    const uint8_t* ip_version
    const uint64_t* flow_key
    const uint8_t* csum_bad
    const uint8_t* cut
    int64_t* conn_out


# One batch's columns for the loss analysis (Wireshark's tcp.analysis): the
# inputs the tracker itself does not read, and the per-segment outputs.
cdef struct LossBatch:
    const uint8_t* opt_status     # NULL: no option was cut
    const uint8_t* sack_blocks    # NULL: no SACK block anywhere
    const uint8_t* data           # the captured bytes (NULL: not kept)
    int64_t data_size
    const int64_t* l3_off
    const uint32_t* l3_caplen
    const int64_t* l4_off
    const uint8_t* hdr_len
    uint32_t* analysis
    double* ack_rtt
    int64_t* bytes_in_flight
    uint32_t* dup_ack_num


cdef inline int32_t seq_delta(uint32_t a, uint32_t b) noexcept nogil:
    return <int32_t>(a - b)


cdef inline bint is_pow10(uint32_t n) noexcept nogil:
    # Zeek's ScaledHistoryEntry logs a letter at the 1st, 10th, 100th... event.
    while n >= 10 and n % 10 == 0:
        n //= 10
    return n == 1


cdef inline char lower(char code) noexcept nogil:
    if code >= 65 and code <= 90:
        return code + 32
    return code


cdef inline void add_history(Conn* c, char code) noexcept nogil:
    if c.hist_len < HIST_MAX:
        c.history[c.hist_len] = code
        c.hist_len += 1


cdef inline void add_endp_history(Conn* c, int side, char code) noexcept nogil:
    add_history(c, code if side == 0 else lower(code))


cdef inline bint check_history(Conn* c, int side, uint32_t mask, char code) noexcept nogil:
    # True when the letter was already logged for this direction.
    if side != 0:
        mask <<= 16
        code = lower(code)
    if c.hist_seen & mask:
        return True
    c.hist_seen |= mask
    add_history(c, code)
    return False


cdef inline void scaled_letter(Conn* c, int side, uint32_t* counter, char code) noexcept nogil:
    counter[0] += 1
    if is_pow10(counter[0]):
        add_endp_history(c, side, code)


cdef inline void set_state(Endp* e, uint8_t s) noexcept nogil:
    if s != e.state:
        e.prev_state = e.state
        e.state = s


cdef inline void flip_roles(Conn* c) noexcept nogil:
    cdef Endp tmp_e
    cdef uint8_t tmp_a[16]
    cdef uint16_t tmp_p
    tmp_e = c.ep[0]
    c.ep[0] = c.ep[1]
    c.ep[1] = tmp_e
    memcpy(tmp_a, c.addr[0], 16)
    memcpy(c.addr[0], c.addr[1], 16)
    memcpy(c.addr[1], tmp_a, 16)
    tmp_p = c.port[0]
    c.port[0] = c.port[1]
    c.port[1] = tmp_p
    c.hist_seen = ((c.hist_seen & 0xffff) << 16) | (c.hist_seen >> 16)
    if c.closer >= 0:
        c.closer ^= 1
    c.synack_side ^= 1
    c.flipped ^= 1
    c.seen_resp = ((c.seen_resp & 1) << 1) | ((c.seen_resp & 2) >> 1)   # first_packet_seen
    c.partial = 0
    add_history(c, 94)  # '^'


# Zeek's Conn::port_inactivity_timeouts (base/protocols/conn/inactivity.zeek):
# once connection_established, FTP, SSH, telnet and rlogin idle for an hour.
cdef int64_t PORT_IDLE_NS = <int64_t>3600 * 1000000000


cdef inline bint idles_long(Conn* c, const uint8_t* likely) noexcept nogil:
    # The service port is the responder's, or on a half-established
    # connection the originator's when only that one is a likely server port.
    cdef uint16_t port = c.port[1]
    if c.ep[0].state == Z_INACTIVE and not likely[port] and likely[c.port[0]]:
        port = c.port[0]
    return port == 21 or port == 22 or port == 23 or port == 513


cdef inline bint is_clean(Endp* a) noexcept nogil:
    return a.state == Z_ESTABLISHED or (a.state == Z_CLOSED and a.prev_state == Z_ESTABLISHED)


cdef inline void content_gap(Conn* c, int side, int64_t length) noexcept nogil:
    # TCP_Reassembler::Gap: counted (history G/g, conn.log missed_bytes via
    # the content_gap event) only while both sides are established or
    # cleanly closing; gaps at a RST or on half-open connections are not.
    if is_clean(&c.ep[side]) and is_clean(&c.ep[1 - side]):
        scaled_letter(c, side, &c.ep[side].gaps, 71)           # 'G'
        c.missed_bytes += length


cdef inline void ack_received(Conn* c, int side, int64_t seq) noexcept nogil:
    # TCP_Reassembler::AckReceived -> TrimToSeq -> Undelivered for the data
    # of ``side``: an acknowledgement beyond what was delivered skips the
    # hole (a gap), delivering buffered data on the way.
    cdef Endp* e = &c.ep[side]
    if e.fin_cnt > 0 and seq >= e.fin_rel:
        seq = e.fin_rel - 1
    if seq <= e.trim:
        return
    if seq > e.reassem:
        # A partial connection's faked ISN: an ack of 1 or 2 is no gap.
        if not (seq <= 2 and c.partial):
            if not e.skip:
                if e.blk_hi > 0 and e.blk_lo < seq:
                    if e.blk_lo > e.reassem:
                        content_gap(c, side, e.blk_lo - e.reassem)
                    if e.blk_hi > e.reassem:
                        e.reassem = e.blk_hi
                    e.blk_hi = 0
                if seq > e.reassem:
                    content_gap(c, side, seq - e.reassem)
            if seq > e.reassem:
                e.reassem = seq
    if e.blk_hi > 0 and e.blk_hi <= seq:
        e.blk_hi = 0
    e.trim = seq


cdef inline void data_sent(Endp* e, int64_t lo, int64_t hi) noexcept nogil:
    # TCP_Reassembler::DataSent + NewBlock + BlockInserted over sequence
    # ranges: in-order data moves the delivered edge, data above a hole is
    # buffered (as one hull) until the hole fills or an ack skips it.
    if e.skip:
        return
    if lo < e.ack_rel:
        if hi <= e.ack_rel:
            return
        lo = e.ack_rel
    if hi <= e.trim:
        return
    if lo < e.trim:
        lo = e.trim
    if lo <= e.reassem:
        if hi > e.reassem:
            e.reassem = hi
            if e.blk_hi > 0 and e.blk_lo <= e.reassem:
                if e.blk_hi > e.reassem:
                    e.reassem = e.blk_hi
                e.blk_hi = 0
    elif e.blk_hi == 0:
        e.blk_lo = lo
        e.blk_hi = hi
    else:
        if lo < e.blk_lo:
            e.blk_lo = lo
        if hi > e.blk_hi:
            e.blk_hi = hi
    if e.ack_rel <= 1 and e.blk_hi > 0 and e.blk_hi - e.reassem > MAX_ABOVE_HOLE_WITHOUT_ACKS:
        # above_hole_data_without_any_acks
        e.skip = 1
        e.blk_hi = 0


cdef inline int64_t endp_size(Endp* e, Endp* p) noexcept nogil:
    # TCP_Endpoint::Size: payload bytes from sequence space, the larger of
    # what was sent and what the peer acknowledged, minus the SYN and FIN.
    cdef int64_t size
    if e.prev_state == Z_SYN_SENT and e.state == Z_RESET and p.state == Z_INACTIVE and e.ack_rel != 0:
        return 0
    size = e.last_rel if e.last_rel > e.ack_rel else e.ack_rel
    if size > 0:
        size -= 1
    if e.fin_cnt > 0 and size > 0:
        size -= 1
    return size


cdef class Engine:
    """The tracker's state: records, flow table and parameters.  Used by
    fastseg.track; not a public API."""
    cdef Conn* recs
    cdef Py_ssize_t cap, nrec
    cdef int32_t* free_slots
    cdef Py_ssize_t nfree, free_cap
    cdef int32_t* done
    cdef Py_ssize_t ndone, done_cap
    cdef int32_t* table
    cdef uint64_t tmask
    cdef int tbits
    cdef Py_ssize_t tused
    cdef uint64_t k0, k1
    cdef public int64_t next_id
    cdef public int64_t now
    cdef public Py_ssize_t live
    cdef int64_t attempt_ns, close_ns, idle_ns
    # The loss analysis of each record, beside it (same slot); NULL without it.
    cdef LossState* lstates
    cdef Py_ssize_t lcap
    cdef bint with_loss
    cdef uint8_t likely[65536]
    cdef uint8_t trans[N_RFC_STATES][N_EVENTS]

    def __cinit__(self, uint64_t k0, uint64_t k1, int64_t attempt_ns, int64_t close_ns,
                  int64_t idle_ns, const uint8_t[::1] likely_ports, const uint8_t[:, ::1] transitions,
                  bint loss=False):
        cdef int i, j
        self.with_loss = loss
        self.lstates = NULL
        self.lcap = 0
        self.k0 = k0
        self.k1 = k1 | 1
        self.attempt_ns = attempt_ns
        self.close_ns = close_ns
        self.idle_ns = idle_ns
        for i in range(65536):
            self.likely[i] = likely_ports[i]
        for i in range(N_RFC_STATES):
            for j in range(N_EVENTS):
                self.trans[i][j] = transitions[i, j]
        self.cap = 0
        self.nrec = 0
        self.recs = NULL
        self.free_slots = NULL
        self.nfree = self.free_cap = 0
        self.done = NULL
        self.ndone = self.done_cap = 0
        self.tbits = 10
        self.tmask = (1 << self.tbits) - 1
        self.table = <int32_t*>malloc(sizeof(int32_t) * (self.tmask + 1))
        if self.table == NULL:
            raise MemoryError()
        memset(self.table, 0xff, sizeof(int32_t) * (self.tmask + 1))
        self.tused = 0
        self.next_id = 0
        self.now = -(1 << 62)
        self.live = 0

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.lstates != NULL:
            for i in range(self.nrec):
                if self.recs[i].live != 0:
                    loss_free(&self.lstates[i])
        fs_release(self.lstates, self.lcap * sizeof(LossState))
        fs_release(self.recs, self.cap * sizeof(Conn))
        free(self.free_slots)
        free(self.done)
        free(self.table)

    def min_live_id(self):
        """The smallest id among live connections (next_id when none): every
        connection with a smaller id has finished."""
        cdef Py_ssize_t i
        cdef int64_t m = self.next_id
        with nogil:
            for i in range(self.nrec):
                if self.recs[i].live == 1 and self.recs[i].id < m:
                    m = self.recs[i].id
        return m

    def min_live_first_ts(self):
        """The earliest first_ts (ns) among live connections (-1 when none):
        every connection emitted later starts at or after it, or at or
        after the latest segment seen."""
        cdef Py_ssize_t i
        cdef int64_t m = -1
        with nogil:
            for i in range(self.nrec):
                if self.recs[i].live == 1 and (m < 0 or self.recs[i].first_ts < m):
                    m = self.recs[i].first_ts
        return m

    def memory_bytes(self):
        """Bytes held by records, flow table and slot lists."""
        return (self.cap * sizeof(Conn) + (self.tmask + 1) * sizeof(int32_t)
                + (self.free_cap + self.done_cap) * sizeof(int32_t)
                + self.lcap * sizeof(LossState))

    @staticmethod
    def record_size():
        return sizeof(Conn)

    @staticmethod
    def loss_state_size():
        return sizeof(LossState)

    @property
    def loss(self):
        return self.with_loss

    # -- flow table -------------------------------------------------------
    cdef inline uint64_t bucket(self, uint64_t fk) noexcept nogil:
        # Keyed multiply-shift over the (public) flow key: without the
        # per-process secret a capture cannot aim its tuples at one bucket.
        return ((fk ^ self.k0) * self.k1) >> (64 - self.tbits)

    cdef int grow_table(self) noexcept nogil:
        # Rebuilt by walking the records in memory order (sequential reads)
        # rather than the old table (a random read per entry).
        cdef int32_t* old = self.table
        cdef uint64_t pos
        cdef Py_ssize_t i
        self.tbits += 1
        self.tmask = (1 << self.tbits) - 1
        self.table = <int32_t*>malloc(sizeof(int32_t) * (self.tmask + 1))
        if self.table == NULL:
            self.table = old
            self.tbits -= 1
            self.tmask = (1 << self.tbits) - 1
            return ST_NOMEM
        memset(self.table, 0xff, sizeof(int32_t) * (self.tmask + 1))
        for i in range(self.nrec):
            if self.recs[i].live == 1:
                pos = self.bucket(self.recs[i].flow_key)
                while self.table[pos] >= 0:
                    pos = (pos + 1) & self.tmask
                self.table[pos] = <int32_t>i
        free(old)
        return ST_OK

    cdef int32_t lookup(self, uint64_t fk, const uint8_t* src, uint16_t sport,
                        const uint8_t* dst, uint16_t dport, int* side, uint64_t* where) noexcept nogil:
        cdef uint64_t pos = self.bucket(fk)
        cdef int32_t slot
        cdef Conn* c
        while True:
            slot = self.table[pos]
            if slot < 0:
                where[0] = pos
                return -1
            c = &self.recs[slot]
            if c.flow_key == fk:
                if (c.port[0] == sport and c.port[1] == dport and memcmp(c.addr[0], src, 16) == 0
                        and memcmp(c.addr[1], dst, 16) == 0):
                    side[0] = 0
                    where[0] = pos
                    return slot
                if (c.port[1] == sport and c.port[0] == dport and memcmp(c.addr[1], src, 16) == 0
                        and memcmp(c.addr[0], dst, 16) == 0):
                    side[0] = 1
                    where[0] = pos
                    return slot
            pos = (pos + 1) & self.tmask

    cdef void table_delete(self, uint64_t pos) noexcept nogil:
        # Backward-shift deletion keeps linear probing free of tombstones.
        cdef uint64_t hole = pos, nxt = pos, home
        cdef int32_t slot
        self.table[hole] = -1
        while True:
            nxt = (nxt + 1) & self.tmask
            slot = self.table[nxt]
            if slot < 0:
                break
            home = self.bucket(self.recs[slot].flow_key)
            # Move the entry into the hole when its home is not in (hole, nxt].
            if ((nxt - home) & self.tmask) >= ((nxt - hole) & self.tmask):
                self.table[hole] = slot
                self.table[nxt] = -1
                hole = nxt
        self.tused -= 1

    cdef uint64_t find_pos(self, int32_t slot) noexcept nogil:
        cdef uint64_t pos = self.bucket(self.recs[slot].flow_key)
        while self.table[pos] != slot:
            pos = (pos + 1) & self.tmask
        return pos

    # -- records -----------------------------------------------------------
    cdef int push(self, int32_t** arr, Py_ssize_t* n, Py_ssize_t* cap, int32_t v) noexcept nogil:
        cdef Py_ssize_t newcap
        cdef int32_t* p
        if n[0] == cap[0]:
            newcap = cap[0] * 2 if cap[0] else 1024
            p = <int32_t*>realloc(arr[0], newcap * sizeof(int32_t))
            if p == NULL:
                return ST_NOMEM
            arr[0] = p
            cap[0] = newcap
        arr[0][n[0]] = v
        n[0] += 1
        return ST_OK

    cdef int finish(self, int32_t slot, uint64_t pos) noexcept nogil:
        self.table_delete(pos)
        self.recs[slot].live = 2
        self.live -= 1
        return self.push(&self.done, &self.ndone, &self.done_cap, slot)

    cdef int32_t new_slot(self) noexcept nogil:
        cdef Py_ssize_t newcap
        cdef Conn* p
        cdef LossState* lp
        if self.nfree > 0:
            self.nfree -= 1
            return self.free_slots[self.nfree]
        if self.nrec == self.cap:
            newcap = self.cap * 2 if self.cap else 1024
            if newcap > 0x7fffffff:
                return -1
            if self.with_loss and self.lcap < newcap:
                lp = <LossState*>fs_grow(self.lstates, self.lcap * sizeof(LossState),
                                         newcap * sizeof(LossState))
                if lp == NULL:
                    return -1
                self.lstates = lp
                self.lcap = newcap
            p = <Conn*>fs_grow(self.recs, self.cap * sizeof(Conn), newcap * sizeof(Conn))
            if p == NULL:
                return -1
            self.recs = p
            self.cap = newcap
        if self.with_loss:
            loss_init(&self.lstates[self.nrec])
        self.nrec += 1
        return <int32_t>(self.nrec - 1)

    cdef inline bint expired(self, Conn* c, int64_t t) noexcept nogil:
        cdef Endp* o = &c.ep[0]
        cdef Endp* r = &c.ep[1]
        if t - c.last_ts >= self.idle_ns and (not c.long_idle or t - c.last_ts >= PORT_IDLE_NS):
            return True
        # tcp_attempt_delay: an unanswered attempt is removed, so a later SYN
        # starts a new connection.
        if (c.attempt_armed and (o.state == Z_SYN_SENT or o.state == Z_SYN_ACK_SENT)
                and r.state == Z_INACTIVE and t - c.attempt_ts >= self.attempt_ns):
            return True
        # Close complete (ConnectionClosed) or reset: removed after
        # tcp_close_delay / tcp_reset_delay from the (frozen) last time.
        if (o.did_close or r.did_close) and (
                (o.did_close and r.did_close) or o.state == Z_RESET or r.state == Z_RESET
                or o.state == Z_INACTIVE or r.state == Z_INACTIVE):
            if t - c.last_ts >= self.close_ns:
                return True
        return False

    cdef inline bint is_reuse(self, Conn* c, uint16_t flags, uint32_t seq) noexcept nogil:
        # TCPSessionAdapter::IsReuse: only a SYN (or, on a half connection,
        # a SYN-ACK) can start a new connection on a live 4-tuple.
        cdef Endp* conn_orig = &c.ep[0]
        if not (flags & SYN):
            return False
        if flags & ACK:
            if c.ep[0].state != Z_INACTIVE:
                return False
            conn_orig = &c.ep[1]
        if not (c.ep[0].did_close or c.ep[1].did_close):
            if seq == conn_orig.start_seq:
                return False
            if (not (flags & ACK) and conn_orig.state == Z_SYN_ACK_SENT
                    and c.ep[1].state == Z_INACTIVE and seq == c.ep[1].start_seq):
                return False
            return True
        return True

    cdef int32_t new_conn(self, uint64_t fk, const uint8_t* src, uint16_t sport, const uint8_t* dst,
                          uint16_t dport, uint8_t ipv, uint16_t flags, int64_t t, uint64_t pos,
                          int* side) noexcept nogil:
        cdef int32_t slot
        cdef Conn* c
        cdef bint flip = False
        if self.tused * 2 >= <Py_ssize_t>(self.tmask + 1):
            if self.grow_table() != ST_OK:
                return -1
            pos = self.bucket(fk)
            while self.table[pos] >= 0:
                pos = (pos + 1) & self.tmask
        slot = self.new_slot()
        if slot < 0:
            return -1
        c = &self.recs[slot]
        memset(c, 0, sizeof(Conn))
        c.id = self.next_id
        self.next_id += 1
        c.flow_key = fk
        memcpy(c.addr[0], src, 16)
        memcpy(c.addr[1], dst, 16)
        c.port[0] = sport
        c.port[1] = dport
        c.ip_version = ipv
        c.first_ts = t
        c.last_ts = t
        c.syn_ts = c.last_syn_ts = c.synack_ts = c.last_synack_ts = c.ack_ts = -1
        c.hs_synack_last_syn = c.hs_ack_last_synack = -1
        c.closer = -1
        c.live = 1
        c.ep[0].wscale = -1
        c.ep[1].wscale = -1
        c.ep[0].reassem = c.ep[1].reassem = 1
        c.ep[0].trim = c.ep[1].trim = 1
        c.ep[0].mss = -1
        c.ep[1].mss = -1
        c.ep[0].last_seen_ts = c.ep[1].last_seen_ts = -1
        c.ep[0].first_fin_ts = c.ep[1].first_fin_ts = -1
        if self.with_loss:
            # the state is initialised already (see new_slot, gather_loss)
            c.loss_side0 = (LOSS_ONE_END if sport == dport and memcmp(src, dst, 16) == 0
                            else LOSS_UNSET)
        self.table[pos] = slot
        self.tused += 1
        self.live += 1
        # TCPAnalyzer::WantConnection: a connection that does not start with
        # a plain SYN is turned around when its source looks like the server.
        side[0] = 0
        if not ((flags & SYN) and not (flags & ACK)):
            if self.likely[sport]:
                if self.likely[dport]:
                    flip = (not (flags & SYN)) and sport < dport
                else:
                    flip = True
        if flip:
            flip_roles(c)
            side[0] = 1
        return slot

    # -- one segment -----------------------------------------------------
    cdef inline void rfc_apply(self, Endp* e, int event) noexcept nogil:
        # CLOSED is final once an endpoint has been open: the table's
        # midstream rules out of CLOSED are for endpoints first seen now.
        if e.rfc == 0 and e.rfc_open:
            return
        e.rfc = self.trans[e.rfc][event]
        if e.rfc != 0 or event == K_RST or event == K_RST + N_KINDS:
            e.rfc_open = 1

    cdef void rfc_step(self, Conn* c, int side, uint16_t flags, uint32_t plen, bint ackfin) noexcept nogil:
        cdef int kind = -1
        cdef Endp* e = &c.ep[side]
        cdef Endp* p = &c.ep[1 - side]
        if ackfin:
            self.rfc_apply(e, K_ACKFIN)
            self.rfc_apply(p, K_ACKFIN + N_KINDS)
        if flags & RST:
            kind = K_RST
        elif (flags & SYN) and (flags & ACK):
            kind = K_SYNACK
        elif flags & SYN:
            kind = K_SYN
        elif flags & FIN:
            kind = K_FIN
        elif plen > 0:
            kind = K_DATA
        elif (flags & ACK) and not ackfin:
            kind = K_ACK
        if kind >= 0:
            self.rfc_apply(e, kind)
            self.rfc_apply(p, kind + N_KINDS)

    cdef void segment(self, Conn* c, int side, int64_t t, uint16_t flags, uint32_t seq, uint32_t ack,
                      uint32_t plen, uint16_t window, int32_t mss, int16_t wscale, uint8_t sack_perm,
                      int64_t tsval, bint cut) noexcept nogil:
        cdef Endp* e = &c.ep[side]
        cdef Endp* p = &c.ep[1 - side]
        cdef bint syn = (flags & SYN) != 0
        cdef bint fin = (flags & FIN) != 0
        cdef bint rst = (flags & RST) != 0
        cdef bint ackf = (flags & ACK) != 0
        cdef int64_t seg_len = <int64_t>plen + syn + fin - (plen if rst else 0)
        cdef uint32_t seq_end = seq + <uint32_t>seg_len
        cdef uint32_t last_init
        cdef int32_t rel_seq, d, delta_last
        cdef int bits
        cdef char code
        cdef bint do_close = False, ackfin
        cdef uint8_t opts
        cdef int64_t rel64, rel_ack = 0

        ackfin = ackf and p.fin_cnt > 0 and seq_delta(ack, p.fin_end) >= 0

        # init_endpoint
        if e.state == Z_INACTIVE:
            last_init = seq_end
            if syn:
                e.start_seq = seq
            else:
                # Partial connection: number as if a SYN had come first.
                e.start_seq = seq - 1
                last_init = seq
            e.ack_rel = 0
            e.last_rel = seq_delta(last_init, e.start_seq)
        elif syn and (((e.state == Z_SYN_SENT or e.state == Z_SYN_ACK_SENT) and seq != e.start_seq)
                      or e.state == Z_ESTABLISHED or e.state == Z_PARTIAL
                      or (e.state == Z_RESET and e.prev_state == Z_INACTIVE)):
            e.start_seq = seq
            e.ack_rel = 0
            e.last_rel = seg_len

        rel_seq = seq_delta(seq, e.start_seq)
        # 64-bit relative sequence number (past 2 GiB the 32-bit one wraps)
        rel64 = e.last_rel + seq_delta(seq, e.start_seq + <uint32_t>e.last_rel)

        # SetPartialStatus: a side whose first packet is no SYN (for the
        # originator: no plain SYN) makes the connection partial.
        if side == 0:
            if not (c.seen_resp & 1):
                c.partial = (not syn) or ackf
                c.seen_resp |= 1
        elif not (c.seen_resp & 2):
            if not c.partial:
                c.partial = not syn
            c.seen_resp |= 2

        # update_history
        bits = syn + fin + rst
        if bits > 1:
            if fin and rst:
                check_history(c, side, H_FIN_RST, 73)           # 'I'
            else:
                check_history(c, side, H_MULTI, 81)             # 'Q'
        elif bits == 1:
            if syn:
                code = 72 if ackf else 83                       # 'H' / 'S'
                if check_history(c, side, H_SYN, code) and <uint32_t>rel_seq != e.hist_last_syn:
                    add_endp_history(c, side, code)
                e.hist_last_syn = <uint32_t>rel_seq
            if fin:
                # A FIN's sequence number is that of its end.
                if (check_history(c, side, H_FIN, 70)
                        and <uint32_t>(rel_seq + plen) != e.hist_last_fin):
                    add_endp_history(c, side, 70)               # 'F'
                e.hist_last_fin = <uint32_t>(rel_seq + plen)
            if rst:
                if check_history(c, side, H_RST, 82) and <uint32_t>rel_seq != e.hist_last_rst:
                    add_endp_history(c, side, 82)               # 'R'
                e.hist_last_rst = <uint32_t>rel_seq
        else:
            if (plen or ackf) and c.hist_len == 1 and c.history[0] == 72:
                # TCP_Endpoint::CheckHistory: a connection that began with
                # a SYN-ACK (not flipped then: stealth scans) now carries
                # an ACK or data, so the SYN-ACK's sender was the server.
                # The history becomes "^h", as if the SYN had been seen.
                flip_roles(c)
                c.history[0] = 94                               # '^'
                c.history[1] = 104                              # 'h'
                c.hist_len = 2
                side = 1 - side
                e = &c.ep[side]
                p = &c.ep[1 - side]
                c.seen_resp |= 1
            if plen:
                check_history(c, side, H_DATA, 68)              # 'D'
            elif ackf:
                check_history(c, side, H_ACK, 65)               # 'A'

        # update_window: zero windows, except with or after a RST and after
        # the peer's FIN.
        if window == 0 and not rst and p.state != Z_CLOSED and e.state != Z_RESET:
            scaled_letter(c, side, &e.zwin, 87)                 # 'W'

        # Duration stops once both sides have closed.
        if not (c.ep[0].did_close and c.ep[1].did_close):
            c.last_ts = t

        # Handshake measurements, matched by sequence numbers.
        if syn:
            opts = (1 if sack_perm else 0) | (2 if tsval >= 0 else 0) | (4 if flags & ECE else 0) \
                | (8 if flags & CWR else 0)
            e.isn = seq
            e.syn_seen = 1
            e.mss = mss
            e.wscale = <int8_t>wscale if wscale >= -1 and wscale < 128 else -1
            e.opts = opts
            if not ackf:
                c.syn_count += 1
                if c.syn_ts < 0:
                    c.syn_ts = t
                c.last_syn_ts = t
                if plen > 0:
                    c.tfo_data = plen
            else:
                c.synack_count += 1
                # The SYN-ACK acknowledges the SYN, and with TCP Fast Open
                # (RFC 7413) possibly the data the SYN carried as well.
                if (c.synack_ts < 0 and p.syn_seen and seq_delta(ack, p.isn + 1) >= 0
                        and seq_delta(ack, p.isn + 1) <= c.tfo_data):
                    c.synack_ts = t
                    c.hs_synack_last_syn = c.last_syn_ts
                    c.synack_side = side
                    c.synack_isn = seq
                c.last_synack_ts = t
        elif (ackf and not rst and c.synack_ts >= 0 and c.ack_ts < 0 and side != c.synack_side
              and seq_delta(ack, c.synack_isn + 1) >= 0):
            c.ack_ts = t
            c.hs_ack_last_synack = c.last_synack_ts

        if fin:
            if e.fin_cnt < 255:
                e.fin_cnt += 1
            e.fin_end = seq + plen + syn + 1
            e.fin_rel = rel64 + seg_len
        if (fin or rst) and c.close_kind == 0:
            c.closer = side
            c.close_kind = 2 if rst else 1

        # Acknowledgements move the peer's acked edge.
        if ackf:
            if p.state == Z_INACTIVE:
                p.start_seq = ack - 1
                p.ack_rel = 0
                p.last_rel = 0
                rel_ack = 1
            else:
                rel_ack = p.ack_rel + seq_delta(ack, p.start_seq + <uint32_t>p.ack_rel)
                if rel_ack < 0:
                    rel_ack = 0     # TCP_ack_underflow_or_misorder
            if p.state != Z_INACTIVE and seq_delta(ack, p.start_seq) >= 0 and not rst:
                d = seq_delta(ack, p.start_seq + <uint32_t>p.ack_rel)
                if ack == 0 and d > TOO_LARGE_SEQ_DELTA:
                    pass
                elif d > 0:
                    p.ack_rel += d

        # update_last_seq
        delta_last = seq_delta(seq_end, e.start_seq + <uint32_t>e.last_rel)
        if (syn or rst) and (delta_last > TOO_LARGE_SEQ_DELTA or delta_last < -TOO_LARGE_SEQ_DELTA):
            pass
        elif fin and e.last_rel == 1:
            e.last_rel += delta_last
        elif e.state == Z_RESET:
            pass
        elif delta_last > 0:
            e.last_rel += delta_last
        elif plen > 0:
            scaled_letter(c, side, &e.rxmit, 84)                # 'T'

        # UpdateStateMachine
        if e.state == Z_INACTIVE:
            if syn:
                if side == 0:
                    set_state(e, Z_SYN_ACK_SENT if ackf else Z_SYN_SENT)
                    c.attempt_armed = 1
                    c.attempt_ts = t
                else:
                    if (not ackf) and p.state == Z_SYN_ACK_SENT and seq == e.start_seq:
                        # SYN and SYN-ACK seen in reverse order: turn the
                        # connection around; this side is now the originator.
                        flip_roles(c)
                        side = 1 - side
                        e = &c.ep[side]
                        p = &c.ep[1 - side]
                        set_state(p, Z_ESTABLISHED)
                    if p.state == Z_SYN_SENT:
                        set_state(p, Z_ESTABLISHED)
                    set_state(e, Z_ESTABLISHED)
                    if p.state != Z_PARTIAL:     # connection_established
                        c.long_idle = idles_long(c, self.likely)
            if fin:
                set_state(e, Z_CLOSED)
                do_close = True
            if rst:
                set_state(e, Z_RESET)
                do_close = True
            if e.state == Z_INACTIVE:
                if side != 0 and plen == 0 and c.ep[0].state == Z_SYN_SENT:
                    # An ACK of the SYN before the SYN-ACK is not a partial
                    # connection.
                    pass
                elif ackf and p.state == Z_ESTABLISHED:
                    set_state(e, Z_ESTABLISHED)
                else:
                    set_state(e, Z_PARTIAL)
        elif e.state == Z_SYN_SENT or e.state == Z_SYN_ACK_SENT:
            if fin:
                set_state(e, Z_CLOSED)
                do_close = True
            if rst:
                set_state(e, Z_RESET)
                do_close = True
        elif e.state == Z_ESTABLISHED or e.state == Z_PARTIAL:
            if syn and e.state == Z_PARTIAL and p.state == Z_INACTIVE and not ackf:
                set_state(e, Z_SYN_SENT)
            if fin and not rst:
                set_state(e, Z_CLOSED)
                if p.state == Z_RESET and p.prev_state == Z_CLOSED:
                    # FIN then RST from the peer was a normal close.
                    set_state(p, Z_CLOSED)
                do_close = True
            if rst:
                set_state(e, Z_RESET)
                do_close = True
        elif e.state == Z_CLOSED:
            if rst and p.state != Z_CLOSED:
                set_state(e, Z_RESET)
                if not e.did_close:
                    do_close = True

        if do_close:
            e.did_close = 1
        e.pkts += 1

        # Reassembly (after the state machine, as in Zeek: a gap revealed by
        # the segment that closes or resets is judged by the new states).
        if ackf and rel_ack > 0:
            ack_received(c, 1 - side, rel_ack)
        # A payload not captured in full never reaches the reassembler
        # (TCP_Endpoint::DataSent, truncated_tcp_payload): acks beyond it
        # then reveal a gap.
        if plen > 0 and not rst and not cut and rel64 + syn >= 0:
            data_sent(e, rel64 + syn, rel64 + syn + plen)

        self.rfc_step(c, side, flags, plen, ackfin)

    def process(self, const int64_t[::1] ts_ns, const uint8_t[:, ::1] src, const uint8_t[:, ::1] dst,
                const uint16_t[::1] sport, const uint16_t[::1] dport, const uint32_t[::1] seq,
                const uint32_t[::1] ack, const uint16_t[::1] flags, const uint32_t[::1] payload_len,
                const uint16_t[::1] window, const int32_t[::1] mss, const int16_t[::1] wscale,
                const uint8_t[::1] sack_perm, const int64_t[::1] tsval, const uint8_t[::1] ip_version,
                const uint64_t[::1] flow_key, const uint8_t[::1] csum_bad, const uint8_t[::1] cut,
                int64_t[::1] conn_out, const uint8_t[::1] opt_status=None,
                const uint8_t[::1] sack_blocks=None, const uint8_t[::1] data=None,
                const int64_t[::1] l3_off=None, const uint32_t[::1] l3_caplen=None,
                const int64_t[::1] l4_off=None, const uint8_t[::1] hdr_len=None,
                uint32_t[::1] analysis=None, double[::1] ack_rtt=None,
                int64_t[::1] bytes_in_flight=None, uint32_t[::1] dup_ack_num=None):
        """Track every segment in order; returns a status code.  ``csum_bad``
        marks segments the receiver dropped, ``cut`` those whose payload was
        not captured in full.

        With the loss analysis on, the same pass fills ``analysis``,
        ``ack_rtt``, ``bytes_in_flight`` and ``dup_ack_num`` (one entry per
        segment; all four or none).  Segments whose options the snapshot
        length cut (``opt_status``) are left out of it; the bytes of SACK
        blocks are read from ``data`` at ``l4_off`` for segments with
        ``sack_blocks`` (all of ``sack_blocks``, ``data``, ``l3_off``,
        ``l3_caplen``, ``l4_off``, ``hdr_len`` or none of them)."""
        cdef Py_ssize_t n = ts_ns.shape[0], i
        cdef int status
        cdef int32_t ahead_slot
        cdef const char* rec
        cdef SegBatch b
        cdef LossBatch lb
        cdef LossBatch* lbp = NULL
        if n == 0:
            return ST_OK
        for rows in (src.shape[0], dst.shape[0], sport.shape[0], dport.shape[0], seq.shape[0],
                     ack.shape[0], flags.shape[0], payload_len.shape[0], window.shape[0],
                     mss.shape[0], wscale.shape[0], sack_perm.shape[0], tsval.shape[0],
                     ip_version.shape[0], flow_key.shape[0], csum_bad.shape[0], cut.shape[0],
                     conn_out.shape[0]):
            if rows != n:
                raise ValueError("every column must have one entry per segment")
        if src.shape[1] != 16 or dst.shape[1] != 16:
            raise ValueError("addresses must be (n, 16) rows")
        b.ts_ns = &ts_ns[0]
        b.src = &src[0, 0]
        b.dst = &dst[0, 0]
        b.sport = &sport[0]
        b.dport = &dport[0]
        b.seq = &seq[0]
        b.ack = &ack[0]
        b.flags = &flags[0]
        b.payload_len = &payload_len[0]
        b.window = &window[0]
        b.mss = &mss[0]
        b.wscale = &wscale[0]
        b.sack_perm = &sack_perm[0]
        b.tsval = &tsval[0]
        b.ip_version = &ip_version[0]
        b.flow_key = &flow_key[0]
        b.csum_bad = &csum_bad[0]
        b.cut = &cut[0]
        b.conn_out = &conn_out[0]
        if self.with_loss and analysis is not None:
            if (ack_rtt is None or bytes_in_flight is None or dup_ack_num is None
                    or analysis.shape[0] != n or ack_rtt.shape[0] != n
                    or bytes_in_flight.shape[0] != n or dup_ack_num.shape[0] != n):
                raise ValueError("loss outputs must have one entry per segment")
            memset(&lb, 0, sizeof(LossBatch))
            if n:
                lb.analysis = &analysis[0]
                lb.ack_rtt = &ack_rtt[0]
                lb.bytes_in_flight = &bytes_in_flight[0]
                lb.dup_ack_num = &dup_ack_num[0]
            if opt_status is not None:
                if opt_status.shape[0] != n:
                    raise ValueError("opt_status must have one entry per segment")
                if n:
                    lb.opt_status = &opt_status[0]
            if sack_blocks is not None and data is not None and data.shape[0]:
                if (l3_off is None or l3_caplen is None or l4_off is None or hdr_len is None
                        or sack_blocks.shape[0] != n or l3_off.shape[0] != n
                        or l3_caplen.shape[0] != n or l4_off.shape[0] != n
                        or hdr_len.shape[0] != n):
                    raise ValueError("SACK columns must have one entry per segment")
                if n:
                    lb.sack_blocks = &sack_blocks[0]
                    lb.data = &data[0]
                    lb.data_size = data.shape[0]
                    lb.l3_off = &l3_off[0]
                    lb.l3_caplen = &l3_caplen[0]
                    lb.l4_off = &l4_off[0]
                    lb.hdr_len = &hdr_len[0]
            lbp = &lb
        with nogil:
            status = ST_OK
            for i in range(n):
                if i + 2 * AHEAD < n:
                    FS_PREFETCH(&self.table[self.bucket(flow_key[i + 2 * AHEAD])])
                if i + AHEAD < n:
                    ahead_slot = self.table[self.bucket(flow_key[i + AHEAD])]
                    if ahead_slot >= 0:
                        rec = <const char*>&self.recs[ahead_slot]
                        FS_PREFETCH(rec)
                        FS_PREFETCH(rec + 64)
                        FS_PREFETCH(rec + 128)
                        FS_PREFETCH(rec + 192)
                        FS_PREFETCH(rec + 256)
                        FS_PREFETCH(rec + 320)
                        FS_PREFETCH(rec + 384)
                        FS_PREFETCH(rec + sizeof(Conn) - 1)
                status = self.one(i, &b, lbp)
                if status != ST_OK:
                    break
        return status

    cdef inline int one(self, Py_ssize_t i, const SegBatch* b, LossBatch* lb) noexcept nogil:
        cdef int64_t t = b.ts_ns[i]
        cdef uint64_t fk = b.flow_key[i], pos
        cdef const uint8_t* s = b.src + 16 * i
        cdef const uint8_t* d = b.dst + 16 * i
        cdef int side = 0
        cdef int32_t slot
        cdef Conn* c
        cdef uint16_t fl = b.flags[i]
        if t > self.now:
            self.now = t
        slot = self.lookup(fk, s, b.sport[i], d, b.dport[i], &side, &pos)
        if slot >= 0:
            c = &self.recs[slot]
            if self.expired(c, t) or self.is_reuse(c, fl, b.seq[i]):
                if self.finish(slot, pos) != ST_OK:
                    return ST_NOMEM
                slot = -1
                pos = self.bucket(fk)
                while self.table[pos] >= 0:
                    pos = (pos + 1) & self.tmask
        if slot < 0:
            slot = self.new_conn(fk, s, b.sport[i], d, b.dport[i], b.ip_version[i], fl, t, pos,
                                 &side)
            if slot < 0:
                return ST_NOMEM
        c = &self.recs[slot]
        b.conn_out[i] = c.id
        # What the report reads of each side (CLOSE-WAIT, half-open,
        # TIME-WAIT), from every segment the side sent, dropped or not.
        if t > c.ep[side].last_seen_ts:
            c.ep[side].last_seen_ts = t
        if (fl & FIN) and (c.ep[side].first_fin_ts < 0 or t < c.ep[side].first_fin_ts):
            c.ep[side].first_fin_ts = t
        if lb != NULL:
            # every segment the tracker assigns, dropped ones too
            self.analyse(c, slot, side, i, lb, t, fl, b.seq[i], b.ack[i], b.payload_len[i],
                         b.window[i], b.wscale[i])
        if b.csum_bad[i]:
            # The receiver dropped it: history only (TCP_Endpoint::ChecksumError).
            scaled_letter(c, side, &c.ep[side].chk, 67)         # 'C'
            return ST_OK
        self.segment(c, side, t, fl, b.seq[i], b.ack[i], b.payload_len[i], b.window[i], b.mss[i],
                     b.wscale[i], b.sack_perm[i], b.tsval[i], b.cut[i])
        return ST_OK

    cdef inline void analyse(self, Conn* c, int32_t slot, int side, Py_ssize_t i, LossBatch* lb,
                             int64_t t, uint16_t fl, uint32_t seq, uint32_t ack, uint32_t plen,
                             uint16_t window, int16_t wscale) noexcept nogil:
        # Wireshark's tcp.analysis of one segment, from the connection's
        # LossState.  Its sides are ends, not roles: a role flip leaves them.
        cdef LossOut out
        cdef int end, lside
        cdef int64_t sack = -1
        if lb.opt_status != NULL and lb.opt_status[i] == OPTS_CUT:
            # tshark's dissector stops at options cut by the snapshot
            # length, before its sequence analysis: such a segment neither
            # gets nor changes any analysis
            lb.analysis[i] = 0
            lb.ack_rtt[i] = NAN
            lb.bytes_in_flight[i] = -1
            lb.dup_ack_num[i] = 0
            return
        if c.loss_side0 == LOSS_ONE_END:
            lside = 0
        else:
            end = side ^ c.flipped
            if c.loss_side0 == LOSS_UNSET:
                c.loss_side0 = <uint8_t>end
            lside = end ^ c.loss_side0
        if lb.sack_blocks != NULL and lb.sack_blocks[i]:
            sack = sack_bytes_at(lb.data, lb.data_size, lb.l3_off[i], lb.l3_caplen[i],
                                 lb.l4_off[i], lb.hdr_len[i])
        loss_segment(&self.lstates[slot], lside, t, seq, ack, fl, plen, window, wscale, sack, &out)
        lb.analysis[i] = out.analysis
        lb.ack_rtt[i] = out.ack_rtt
        lb.bytes_in_flight[i] = out.bytes_in_flight
        lb.dup_ack_num[i] = out.dup_ack_num

    # -- retiring connections -------------------------------------------
    def expire(self, int64_t now):
        """Finish every live connection that has expired at time ``now``."""
        cdef Py_ssize_t i
        cdef int status = ST_OK
        with nogil:
            for i in range(self.nrec):
                if self.recs[i].live == 1 and self.expired(&self.recs[i], now):
                    status = self.finish(<int32_t>i, self.find_pos(<int32_t>i))
                    if status != ST_OK:
                        break
        return status

    def evict(self, Py_ssize_t keep):
        """Finish the least recently active live connections until at most
        ``keep`` remain (a memory budget); returns (status, evicted)."""
        cdef Py_ssize_t i, k = 0, n = self.live
        cdef int status = ST_OK
        if n <= keep:
            return ST_OK, 0
        last_arr = np.empty(n, dtype=np.int64)
        id_arr = np.empty(n, dtype=np.int64)
        slot_arr = np.empty(n, dtype=np.int32)
        cdef int64_t[::1] last = last_arr
        cdef int64_t[::1] ids = id_arr
        cdef int32_t[::1] slot = slot_arr
        with nogil:
            for i in range(self.nrec):
                if self.recs[i].live == 1 and k < n:
                    last[k] = self.recs[i].last_ts
                    ids[k] = self.recs[i].id
                    slot[k] = <int32_t>i
                    k += 1
        # oldest activity first; ties by connection id, so the choice does
        # not depend on where records sit in memory
        order = np.lexsort((id_arr[:k], last_arr[:k]))[:n - keep]
        cdef int32_t[::1] victims = np.ascontiguousarray(slot_arr[order])
        cdef Py_ssize_t m = victims.shape[0]
        with nogil:
            for i in range(m):
                status = self.finish(victims[i], self.find_pos(victims[i]))
                if status != ST_OK:
                    break
        return status, m

    def finish_all(self):
        """Finish every live connection."""
        cdef Py_ssize_t i
        cdef int status = ST_OK
        with nogil:
            for i in range(self.nrec):
                if self.recs[i].live == 1:
                    self.recs[i].live = 2
                    status = self.push(&self.done, &self.ndone, &self.done_cap, <int32_t>i)
                    if status != ST_OK:
                        break
            if status == ST_OK:
                # Everything left the table at once: clear it instead of
                # deleting entry by entry.
                memset(self.table, 0xff, sizeof(int32_t) * (self.tmask + 1))
                self.tused = 0
                self.live = 0
        return status

    def take_done(self):
        """Columns of the finished connections (in id order); their slots are
        freed."""
        cdef Py_ssize_t n = self.ndone, k
        cdef int32_t[::1] slots
        order = np.empty(n, dtype=np.int64)
        cdef int64_t[::1] ids = order
        for k in range(n):
            ids[k] = self.recs[self.done[k]].id
        arr = np.empty(n, dtype=np.int32)
        slots = arr
        for k in range(n):
            slots[k] = self.done[k]
        arr = arr[np.argsort(order, kind="stable")]
        slots = arr
        cols = self.gather(slots)
        if self.with_loss:
            cols.update(self.gather_loss(slots))     # frees the loss states
        for k in range(n):
            self.recs[slots[k]].live = 0
            if self.push(&self.free_slots, &self.nfree, &self.free_cap, slots[k]) != ST_OK:
                raise MemoryError()
        self.ndone = 0
        return cols

    cdef dict gather_loss(self, const int32_t[::1] slots):
        # per side: counters (2, LC_N, n) and seconds (2, LS_N, n), the
        # originator first, so that each named column is one contiguous row;
        # the states are freed and made ready for the slot's next connection
        cdef Py_ssize_t n = slots.shape[0], k, j
        cdef int s, orig
        cdef Conn* c
        cdef LossState* st
        cdef const char* ahead
        cdef uint64_t cbuf[2 * LC_N]
        cdef double sbuf[2 * LS_N]
        counts_arr = np.empty((2, LC_N, n), np.int64)
        seconds_arr = np.empty((2, LS_N, n), np.float64)
        ttfb_arr = np.empty(n, np.float64)
        cdef int64_t[:, :, ::1] counts = counts_arr
        cdef double[:, :, ::1] seconds = seconds_arr
        cdef double[::1] ttfb = ttfb_arr
        cdef int64_t* cp
        cdef double* sp
        if n == 0:
            return {"loss_counts": counts_arr, "loss_seconds": seconds_arr, "ttfb": ttfb_arr}
        cp = &counts[0, 0, 0]       # [side * LC_N + counter][row]
        sp = &seconds[0, 0, 0]
        with nogil:
            for k in range(n):
                if k + AHEAD < n:
                    ahead = <const char*>&self.lstates[slots[k + AHEAD]]
                    for j in range(0, sizeof(LossState), 64):
                        FS_PREFETCH(ahead + j)
                    FS_PREFETCH(&self.recs[slots[k + AHEAD]].loss_side0)
                c = &self.recs[slots[k]]
                st = &self.lstates[slots[k]]
                # the originator's end is the state's side 1 when the
                # first analysed segment came from the responder
                orig = 1 if c.loss_side0 < LOSS_UNSET and (c.flipped ^ c.loss_side0) == 1 else 0
                loss_gather(st, orig, cbuf, sbuf, &ttfb[k])
                # ready for the slot's next connection while in the cache
                loss_free(st)
                loss_init(st)
                for j in range(2 * LC_N):
                    cp[j * n + k] = <int64_t>cbuf[j]
                for j in range(2 * LS_N):
                    sp[j * n + k] = sbuf[j]
        return {"loss_counts": counts_arr, "loss_seconds": seconds_arr, "ttfb": ttfb_arr}

    cdef dict gather(self, const int32_t[::1] slots):
        cdef Py_ssize_t n = slots.shape[0], k, j
        cdef Conn* c
        cols = {
            "_conn": np.empty(n, np.int64), "flow_key": np.empty(n, np.uint64),
            "orig_h": np.empty((n, 16), np.uint8), "resp_h": np.empty((n, 16), np.uint8),
            "orig_p": np.empty(n, np.uint16), "resp_p": np.empty(n, np.uint16),
            "ip_version": np.empty(n, np.uint8),
            "first_ts": np.empty(n, np.int64), "last_ts": np.empty(n, np.int64),
            "syn_ts": np.empty(n, np.int64), "synack_ts": np.empty(n, np.int64),
            "ack_ts": np.empty(n, np.int64), "hs_last_syn": np.empty(n, np.int64),
            "hs_last_synack": np.empty(n, np.int64),
            "pkts": np.empty((n, 2), np.int64), "bytes": np.empty((n, 2), np.int64),
            "zstate": np.empty((n, 2), np.uint8), "rfc": np.empty((n, 2), np.uint8),
            "isn": np.empty((n, 2), np.int64), "mss": np.empty((n, 2), np.int32),
            "wscale": np.empty((n, 2), np.int16), "opts": np.empty((n, 2), np.uint8),
            "syn_count": np.empty(n, np.int64), "synack_count": np.empty(n, np.int64),
            "tfo_data": np.empty(n, np.int64), "closer": np.empty(n, np.int8),
            "close": np.empty(n, np.uint8), "history": np.zeros(n, "S%d" % HIST_MAX),
            "missed_bytes": np.empty(n, np.int64),
            "last_seen": np.empty((n, 2), np.int64), "first_fin": np.empty((n, 2), np.int64),
        }
        cdef int64_t[::1] cid = cols["_conn"], first = cols["first_ts"], last = cols["last_ts"]
        cdef int64_t[::1] syn_ts = cols["syn_ts"], synack_ts = cols["synack_ts"], ack_ts = cols["ack_ts"]
        cdef int64_t[::1] hs1 = cols["hs_last_syn"], hs2 = cols["hs_last_synack"]
        cdef uint64_t[::1] fk = cols["flow_key"]
        cdef uint8_t[:, ::1] oh = cols["orig_h"], rh = cols["resp_h"]
        cdef uint16_t[::1] op = cols["orig_p"], rp = cols["resp_p"]
        cdef uint8_t[::1] ipv = cols["ip_version"], close = cols["close"]
        cdef int64_t[:, ::1] pkts = cols["pkts"], nbytes = cols["bytes"], isn = cols["isn"]
        cdef int64_t[:, ::1] seen = cols["last_seen"], ffin = cols["first_fin"]
        cdef uint8_t[:, ::1] zs = cols["zstate"], rfc = cols["rfc"], opts = cols["opts"]
        cdef int32_t[:, ::1] mssv = cols["mss"]
        cdef int16_t[:, ::1] wsv = cols["wscale"]
        cdef int64_t[::1] sc = cols["syn_count"], sac = cols["synack_count"], tfo = cols["tfo_data"]
        cdef int8_t[::1] closer = cols["closer"]
        cdef int64_t[::1] missed = cols["missed_bytes"]
        cdef char* hist = cnp.PyArray_BYTES(cols["history"])
        with nogil:
            for k in range(n):
                c = &self.recs[slots[k]]
                cid[k] = c.id
                fk[k] = c.flow_key
                memcpy(&oh[k, 0], c.addr[0], 16)
                memcpy(&rh[k, 0], c.addr[1], 16)
                op[k] = c.port[0]
                rp[k] = c.port[1]
                ipv[k] = c.ip_version
                first[k] = c.first_ts
                last[k] = c.last_ts
                syn_ts[k] = c.syn_ts
                synack_ts[k] = c.synack_ts
                ack_ts[k] = c.ack_ts
                hs1[k] = c.hs_synack_last_syn
                hs2[k] = c.hs_ack_last_synack
                for j in range(2):
                    pkts[k, j] = c.ep[j].pkts
                    nbytes[k, j] = endp_size(&c.ep[j], &c.ep[1 - j])
                    zs[k, j] = c.ep[j].state
                    rfc[k, j] = c.ep[j].rfc
                    isn[k, j] = c.ep[j].isn if c.ep[j].syn_seen else -1
                    mssv[k, j] = c.ep[j].mss
                    wsv[k, j] = c.ep[j].wscale
                    opts[k, j] = c.ep[j].opts | (16 if c.ep[j].syn_seen else 0)
                    seen[k, j] = c.ep[j].last_seen_ts
                    ffin[k, j] = c.ep[j].first_fin_ts
                sc[k] = c.syn_count
                sac[k] = c.synack_count
                tfo[k] = c.tfo_data
                closer[k] = c.closer
                close[k] = c.close_kind
                missed[k] = c.missed_bytes
                memcpy(hist + k * HIST_MAX, c.history, c.hist_len)
        return cols


def apply_transitions(const uint8_t[:, ::1] table, const uint8_t[::1] states, const uint8_t[::1] events,
                      uint8_t[::1] out):
    """out[i] = table[states[i], events[i]] (inputs already range-checked)."""
    cdef Py_ssize_t n = states.shape[0], i
    with nogil:
        for i in range(n):
            out[i] = table[states[i], events[i]]


cdef inline uint64_t mix64(uint64_t x) noexcept nogil:
    # splitmix64 finaliser (a bijection).
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL
    return x ^ (x >> 31)


def uid_bytes(const uint64_t[::1] flow_key, const int64_t[::1] first_ts, uint8_t[:, ::1] out):
    """out[i] = 'C' + 17 base62 digits of a 128-bit mix of (flow_key, first_ts)."""
    cdef const char* digits = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    cdef Py_ssize_t n = flow_key.shape[0], i, j
    cdef uint64_t h1, h2
    with nogil:
        for i in range(n):
            h1 = mix64(flow_key[i] ^ mix64(<uint64_t>first_ts[i]))
            h2 = mix64(h1 ^ 0x9E3779B97F4A7C15ULL ^ <uint64_t>first_ts[i])
            out[i, 0] = 67  # 'C'
            for j in range(11):
                out[i, 1 + j] = digits[h1 % 62]
                h1 //= 62
            for j in range(6):
                out[i, 12 + j] = digits[h2 % 62]
                h2 //= 62
