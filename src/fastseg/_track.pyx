# Connection tracking kernel: one pass over the segments in capture order.
# Each concern lives in its own include, as free functions over the plain C
# structs of _track.pxd (one extension module, so the calls inline):
#
#   _flowtable.pxi   records and the flow table (lookup, insert, delete, growth)
#   _zeek.pxi        Zeek's connection state machine over one record
#   _rfc.pxi         the RFC 9293 observer's transition table
#   _gather.pxi      finished records -> numpy columns
#   _loss_kernel.pxi Wireshark's tcp.analysis, a LossState beside each record
#
# Engine below owns the structs and is the Python face (fastseg.track).
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

from fastseg._track cimport (Conn, Endp, FlowTable, ZeekConfig, RfcTable, HIST_MAX, LOSS_UNSET,
                             LOSS_ONE_END, N_RFC_STATES, N_KINDS, N_EVENTS)

cnp.import_array()

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define FS_PREFETCH(p) __builtin_prefetch((const void *)(p), 1, 3)
    #else
    #define FS_PREFETCH(p) ((void)(p))
    #endif
    """
    void FS_PREFETCH(const void* p) noexcept nogil

# How far ahead the loop prefetches: flow-table buckets 2*AHEAD segments
# ahead, the record they point to AHEAD segments ahead.  With a million
# live connections nearly every segment misses the cache twice (bucket,
# record); overlapping those misses is what keeps the loop near memory
# bandwidth instead of memory latency.  The loss states beside the records
# are not prefetched in that loop: measured on a real capture, eleven more
# prefetches per segment cost more than the misses they hide.
cdef enum:
    AHEAD = 8

# Status codes of the kernel (the Python face turns them into exceptions).
cdef enum:
    ST_OK = 0
    ST_NOMEM = 1

include "_loss_kernel.pxi"
include "_flowtable.pxi"
include "_zeek.pxi"
include "_rfc.pxi"
include "_gather.pxi"


# -- one segment ----------------------------------------------------------

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


cdef inline void loss_step(LossState* st, Conn* c, int side, Py_ssize_t i, LossBatch* lb,
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
    loss_segment(st, lside, t, seq, ack, fl, plen, window, wscale, sack, &out)
    lb.analysis[i] = out.analysis
    lb.ack_rtt[i] = out.ack_rtt
    lb.bytes_in_flight[i] = out.bytes_in_flight
    lb.dup_ack_num[i] = out.dup_ack_num


cdef int track_segment(FlowTable* ft, const ZeekConfig* zc, const RfcTable* rt,
                       int64_t* now, Py_ssize_t i, const SegBatch* b,
                       LossBatch* lb) noexcept nogil:
    # Segment i: find or open its connection (a finished or reused one is
    # retired first), then the loss analysis, Zeek's machine and the RFC
    # observer.
    cdef int64_t t = b.ts_ns[i]
    cdef uint64_t fk = b.flow_key[i], pos
    cdef const uint8_t* s = b.src + 16 * i
    cdef const uint8_t* d = b.dst + 16 * i
    cdef int side = 0
    cdef int32_t slot
    cdef Conn* c
    cdef uint16_t fl = b.flags[i]
    cdef bint ackfin
    if t > now[0]:
        now[0] = t
    slot = ft_lookup(ft, fk, s, b.sport[i], d, b.dport[i], &side, &pos)
    if slot >= 0:
        c = &ft.recs[slot]
        if zeek_expired(zc, c, t) or zeek_is_reuse(c, fl, b.seq[i]):
            if ft_finish(ft, slot, pos) != ST_OK:
                return ST_NOMEM
            slot = -1
            pos = ft_empty_pos(ft, fk)
    if slot < 0:
        slot = ft_insert(ft, fk, pos)
        if slot < 0:
            return ST_NOMEM
        c = &ft.recs[slot]
        zeek_open(c, s, b.sport[i], d, b.dport[i], b.ip_version[i], t)
        if ft.with_loss:
            # the state is initialised already (see ft_new_slot, gather_loss_conn)
            c.loss_side0 = (LOSS_ONE_END if b.sport[i] == b.dport[i] and memcmp(s, d, 16) == 0
                            else LOSS_UNSET)
        side = zeek_want_connection(zc, c, fl)
    c = &ft.recs[slot]
    b.conn_out[i] = c.id
    zeek_seen(c, side, t, fl)
    if lb != NULL:
        # every segment the tracker assigns, dropped ones too
        loss_step(&ft.lstates[slot], c, side, i, lb, t, fl, b.seq[i], b.ack[i], b.payload_len[i],
                  b.window[i], b.wscale[i])
    if b.csum_bad[i]:
        zeek_checksum_error(c, side)
        return ST_OK
    side = zeek_segment(zc, c, side, t, fl, b.seq[i], b.ack[i], b.payload_len[i], b.window[i], b.mss[i],
                        b.wscale[i], b.sack_perm[i], b.tsval[i], b.cut[i], &ackfin)
    rfc_step(rt, c, side, fl, b.payload_len[i], ackfin)
    return ST_OK


# -- the Python face --------------------------------------------------------

cdef class Engine:
    """The tracker's state: flow table, Zeek's parameters, the RFC
    observer's table.  Used by fastseg.track; not a public API."""
    cdef FlowTable ft
    cdef ZeekConfig zeek
    cdef RfcTable rfc
    cdef public int64_t now

    def __cinit__(self, uint64_t k0, uint64_t k1, int64_t attempt_ns, int64_t close_ns,
                  int64_t idle_ns, const uint8_t[::1] likely_ports, const uint8_t[:, ::1] transitions,
                  bint loss=False):
        cdef int i, j
        if ft_init(&self.ft, k0, k1, loss) != ST_OK:
            raise MemoryError()
        self.zeek.attempt_ns = attempt_ns
        self.zeek.close_ns = close_ns
        self.zeek.idle_ns = idle_ns
        for i in range(65536):
            self.zeek.likely[i] = likely_ports[i]
        for i in range(N_RFC_STATES):
            for j in range(N_EVENTS):
                self.rfc.next[i][j] = transitions[i, j]
        self.now = -(1 << 62)

    def __dealloc__(self):
        ft_release(&self.ft)

    @property
    def next_id(self):
        return self.ft.next_id

    @next_id.setter
    def next_id(self, int64_t value):
        self.ft.next_id = value

    @property
    def live(self):
        return self.ft.live

    def min_live_id(self):
        """The smallest id among live connections (next_id when none): every
        connection with a smaller id has finished."""
        cdef Py_ssize_t i
        cdef int64_t m = self.ft.next_id
        cdef const Conn* recs = self.ft.recs
        with nogil:
            for i in range(self.ft.nrec):
                if recs[i].live == 1 and recs[i].id < m:
                    m = recs[i].id
        return m

    def memory_bytes(self):
        """Bytes held by records, flow table and slot lists."""
        return ft_memory_bytes(&self.ft)

    @staticmethod
    def record_size():
        return sizeof(Conn)

    @staticmethod
    def loss_state_size():
        return sizeof(LossState)

    @property
    def loss(self):
        return self.ft.with_loss

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
        cdef int64_t now = self.now
        cdef SegBatch b
        cdef LossBatch lb
        cdef LossBatch* lbp = NULL
        cdef FlowTable* ft = &self.ft
        cdef const ZeekConfig* zc = &self.zeek
        cdef const RfcTable* rt = &self.rfc
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
        if self.ft.with_loss and analysis is not None:
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
                # Written out here, not as a function: GCC takes a void
                # function that only reads and prefetches for pure, and
                # drops the call.
                if i + 2 * AHEAD < n:
                    FS_PREFETCH(&ft.index[ft_bucket(ft, b.flow_key[i + 2 * AHEAD])])
                if i + AHEAD < n:
                    ahead_slot = ft.index[ft_bucket(ft, b.flow_key[i + AHEAD])]
                    if ahead_slot >= 0:
                        rec = <const char*>&ft.recs[ahead_slot]
                        FS_PREFETCH(rec)
                        FS_PREFETCH(rec + 64)
                        FS_PREFETCH(rec + 128)
                        FS_PREFETCH(rec + 192)
                        FS_PREFETCH(rec + 256)
                        FS_PREFETCH(rec + 320)
                        FS_PREFETCH(rec + 384)
                        FS_PREFETCH(rec + sizeof(Conn) - 1)
                status = track_segment(ft, zc, rt, &now, i, &b, lbp)
                if status != ST_OK:
                    break
        self.now = now
        return status

    # -- retiring connections -------------------------------------------
    def expire(self, int64_t now):
        """Finish every live connection that has expired at time ``now``."""
        cdef Py_ssize_t i
        cdef int status = ST_OK
        cdef FlowTable* ft = &self.ft
        with nogil:
            for i in range(ft.nrec):
                if ft.recs[i].live == 1 and zeek_expired(&self.zeek, &ft.recs[i], now):
                    status = ft_finish(ft, <int32_t>i, ft_find_pos(ft, <int32_t>i))
                    if status != ST_OK:
                        break
        return status

    def evict(self, Py_ssize_t keep):
        """Finish the least recently active live connections until at most
        ``keep`` remain (a memory budget); returns (status, evicted)."""
        cdef Py_ssize_t i, k = 0, n = self.ft.live
        cdef int status = ST_OK
        cdef FlowTable* ft = &self.ft
        if n <= keep:
            return ST_OK, 0
        last_arr = np.empty(n, dtype=np.int64)
        id_arr = np.empty(n, dtype=np.int64)
        slot_arr = np.empty(n, dtype=np.int32)
        cdef int64_t[::1] last = last_arr
        cdef int64_t[::1] ids = id_arr
        cdef int32_t[::1] slot = slot_arr
        with nogil:
            for i in range(ft.nrec):
                if ft.recs[i].live == 1 and k < n:
                    last[k] = ft.recs[i].last_ts
                    ids[k] = ft.recs[i].id
                    slot[k] = <int32_t>i
                    k += 1
        # oldest activity first; ties by connection id, so the choice does
        # not depend on where records sit in memory
        order = np.lexsort((id_arr[:k], last_arr[:k]))[:n - keep]
        cdef int32_t[::1] victims = np.ascontiguousarray(slot_arr[order])
        cdef Py_ssize_t m = victims.shape[0]
        with nogil:
            for i in range(m):
                status = ft_finish(ft, victims[i], ft_find_pos(ft, victims[i]))
                if status != ST_OK:
                    break
        return status, m

    def finish_all(self):
        """Finish every live connection."""
        cdef int status
        with nogil:
            status = ft_finish_all(&self.ft)
        return status

    def take_done(self):
        """Columns of the finished connections (in id order); their slots are
        freed."""
        cdef FlowTable* ft = &self.ft
        cdef Py_ssize_t n = ft.ndone, k
        cdef int32_t[::1] slots
        order = np.empty(n, dtype=np.int64)
        cdef int64_t[::1] ids = order
        for k in range(n):
            ids[k] = ft.recs[ft.done[k]].id
        arr = np.empty(n, dtype=np.int32)
        slots = arr
        for k in range(n):
            slots[k] = ft.done[k]
        arr = arr[np.argsort(order, kind="stable")]
        slots = arr
        cols = self.gather(&slots[0] if n else NULL, n)
        if ft.with_loss:
            cols.update(self.gather_loss(&slots[0] if n else NULL, n))   # frees the loss states
        for k in range(n):
            if ft_free_slot(ft, slots[k]) != ST_OK:
                raise MemoryError()
        ft.ndone = 0
        return cols

    cdef dict gather(self, const int32_t* slots, Py_ssize_t n):
        cdef ConnColumns out
        cdef Py_ssize_t k
        cdef Conn* recs = self.ft.recs
        cols = conn_columns(n, &out)
        with nogil:
            for k in range(n):
                gather_conn(&recs[slots[k]], &out, k)
        return cols

    cdef dict gather_loss(self, const int32_t* slots, Py_ssize_t n):
        # per side: counters (2, LC_N, n) and seconds (2, LS_N, n); the
        # states are freed and made ready for the slot's next connection
        cdef Py_ssize_t k, j
        cdef const char* ahead
        cdef Conn* recs = self.ft.recs
        cdef LossState* lstates = self.ft.lstates
        counts_arr = np.empty((2, LC_N, n), np.int64)
        seconds_arr = np.empty((2, LS_N, n), np.float64)
        ttfb_arr = np.empty(n, np.float64)
        cdef int64_t* cp = <int64_t*>cnp.PyArray_DATA(counts_arr)    # [side * LC_N + counter][row]
        cdef double* sp = <double*>cnp.PyArray_DATA(seconds_arr)
        cdef double* ttfb = <double*>cnp.PyArray_DATA(ttfb_arr)
        with nogil:
            for k in range(n):
                if k + AHEAD < n:
                    ahead = <const char*>&lstates[slots[k + AHEAD]]
                    for j in range(0, sizeof(LossState), 64):
                        FS_PREFETCH(ahead + j)
                    FS_PREFETCH(&recs[slots[k + AHEAD]].loss_side0)
                gather_loss_conn(&recs[slots[k]], &lstates[slots[k]], cp, sp, ttfb, n, k)
        return {"loss_counts": counts_arr, "loss_seconds": seconds_arr, "ttfb": ttfb_arr}


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
