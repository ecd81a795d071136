# The analysis of segments tracked elsewhere (fastseg.loss.LossAnalyzer):
# the kernel of _loss_kernel.pxi over a table of states keyed by connection
# id.  The tracker runs the same kernel in its own pass.
from libc.math cimport NAN
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, realloc

import numpy as np

include "_loss_kernel.pxi"


def sack_block_bytes(const uint8_t[::1] data, const int64_t[::1] l3_off,
                     const uint32_t[::1] l3_caplen, const int64_t[::1] l4_off,
                     const uint8_t[::1] hdr_len, int64_t[::1] out):
    """Per segment, the bytes covered by the SACK blocks Wireshark keeps
    for bytes in flight (dissect_tcpopt_sack stores blocks 1..3 of an
    option and never the 4th), mod 2**32; -1 when no block was captured."""
    cdef Py_ssize_t n = l4_off.shape[0], i
    cdef const uint8_t* base = &data[0] if data.shape[0] else NULL
    with nogil:
        for i in range(n):
            out[i] = sack_bytes_at(base, data.shape[0], l3_off[i], l3_caplen[i], l4_off[i],
                                   hdr_len[i])
    return 0


# -- streaming driver: one LossState per live connection ----------------

cdef class Engine:
    """Loss states of the connections in progress, keyed by connection id.

    ``process`` runs a batch of segments (capture order) and fills the
    per-segment columns; ``finish`` gathers the per-connection columns of
    finished connections and frees their states.  A state's side 0 is the
    first sender seen; ``finish`` turns it to the originator's."""

    cdef LossState* states
    cdef uint64_t* first_key     # per slot: endpoint key of side 0
    cdef int32_t* slot_of        # per connection id; -1 none
    cdef int32_t* free_slots
    cdef int64_t n_ids
    cdef int32_t n_slots, cap, n_free

    def __cinit__(self):
        self.states = NULL
        self.first_key = NULL
        self.slot_of = NULL
        self.free_slots = NULL
        self.n_ids = 0
        self.n_slots = 0
        self.cap = 0
        self.n_free = 0

    def __dealloc__(self):
        cdef int32_t i
        if self.slot_of != NULL:
            for i in range(self.n_ids):
                if self.slot_of[i] >= 0:
                    loss_free(&self.states[self.slot_of[i]])
        free(self.states)
        free(self.first_key)
        free(self.slot_of)
        free(self.free_slots)

    @property
    def live(self):
        return self.n_slots - self.n_free

    def memory_bytes(self):
        return (self.cap * (sizeof(LossState) + sizeof(uint64_t) + sizeof(int32_t))
                + self.n_ids * sizeof(int32_t))

    cdef int _grow_ids(self, int64_t top) noexcept nogil:
        cdef int64_t n = self.n_ids, i
        cdef int32_t* grown
        if top <= n:
            return 0
        if top < 2 * n:
            top = 2 * n
        grown = <int32_t*>realloc(self.slot_of, top * sizeof(int32_t))
        if grown == NULL:
            return -1
        self.slot_of = grown
        for i in range(n, top):
            self.slot_of[i] = -1
        self.n_ids = top
        return 0

    cdef int32_t _new_slot(self) noexcept nogil:
        cdef int32_t cap
        cdef LossState* st
        cdef uint64_t* keys
        cdef int32_t* fr
        if self.n_free:
            self.n_free -= 1
            return self.free_slots[self.n_free]
        if self.n_slots == self.cap:
            cap = 64 if self.cap == 0 else self.cap * 2
            st = <LossState*>realloc(self.states, cap * sizeof(LossState))
            if st == NULL:
                return -1
            self.states = st
            keys = <uint64_t*>realloc(self.first_key, cap * sizeof(uint64_t))
            if keys == NULL:
                return -1
            self.first_key = keys
            fr = <int32_t*>realloc(self.free_slots, cap * sizeof(int32_t))
            if fr == NULL:
                return -1
            self.free_slots = fr
            self.cap = cap
        self.n_slots += 1
        return self.n_slots - 1

    def process(self, const int64_t[::1] conn, const uint64_t[::1] src_key,
                const int64_t[::1] ts_ns, const uint32_t[::1] seq, const uint32_t[::1] ack,
                const uint16_t[::1] flags, const uint32_t[::1] payload_len,
                const uint16_t[::1] window, const int16_t[::1] wscale,
                const int64_t[::1] sack_bytes, uint32_t[::1] analysis, double[::1] ack_rtt,
                int64_t[::1] bytes_in_flight, uint32_t[::1] dup_ack_num):
        """Returns 0, or -1 when out of memory.  ``src_key`` identifies the
        sending endpoint (address and port) of each segment."""
        cdef Py_ssize_t n = conn.shape[0], i
        cdef int64_t c, top = 0
        cdef int32_t slot
        cdef LossOut out
        cdef int status = 0
        with nogil:
            for i in range(n):
                if conn[i] >= top:
                    top = conn[i] + 1
            if self._grow_ids(top) != 0:
                status = -1
            for i in range(n):
                if status != 0:
                    break
                analysis[i] = 0
                ack_rtt[i] = NAN
                bytes_in_flight[i] = -1
                dup_ack_num[i] = 0
                c = conn[i]
                if c < 0:
                    continue
                slot = self.slot_of[c]
                if slot < 0:
                    slot = self._new_slot()
                    if slot < 0:
                        status = -1
                        break
                    self.slot_of[c] = slot
                    loss_init(&self.states[slot])
                    self.first_key[slot] = src_key[i]
                loss_segment(&self.states[slot], 0 if src_key[i] == self.first_key[slot] else 1,
                             ts_ns[i], seq[i], ack[i], flags[i], payload_len[i], window[i],
                             wscale[i], sack_bytes[i], &out)
                analysis[i] = out.analysis
                ack_rtt[i] = out.ack_rtt
                bytes_in_flight[i] = out.bytes_in_flight
                dup_ack_num[i] = out.dup_ack_num
        return status

    def finish(self, const int64_t[::1] conn, const uint64_t[::1] orig_key,
               uint64_t[:, :, ::1] counts, double[:, :, ::1] seconds, double[::1] ttfb):
        """Per-connection columns of the finished connections ``conn``
        (side 0 = the originator, whose endpoint key is ``orig_key``);
        their states are freed.  A connection without state gets zeros."""
        cdef Py_ssize_t n = conn.shape[0], i, k
        cdef int64_t c
        cdef int32_t slot
        cdef LossState* st
        with nogil:
            for i in range(n):
                c = conn[i]
                slot = self.slot_of[c] if 0 <= c < self.n_ids else -1
                if slot < 0:
                    for k in range(LC_N):
                        counts[i, 0, k] = 0
                        counts[i, 1, k] = 0
                    for k in range(LS_N):
                        seconds[i, 0, k] = 0.0 if k == LS_ZERO_WINDOW_TIME else NAN
                        seconds[i, 1, k] = 0.0 if k == LS_ZERO_WINDOW_TIME else NAN
                    ttfb[i] = NAN
                    continue
                st = &self.states[slot]
                # side 0 is the first sender, maybe the responder
                loss_gather(st, 0 if self.first_key[slot] == orig_key[i] else 1,
                            &counts[i, 0, 0], &seconds[i, 0, 0], &ttfb[i])
                loss_free(st)
                self.slot_of[c] = -1
                self.free_slots[self.n_free] = slot
                self.n_free += 1
        return 0
