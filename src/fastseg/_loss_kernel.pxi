# The loss-analysis kernel (types in _loss.pxd): included by _loss.pyx (the
# analysis of segments tracked elsewhere) and by _track.pyx (the tracker
# runs it in its own pass), so that each compiles its own copy: a direct
# call the compiler may inline, not one through another module's table.
# The rules, their order and their thresholds are Wireshark's
# (packet-tcp.c, tcp_analyze_sequence_number, as shipped in 4.0) so that
# every flag means what a Wireshark user reads in tcp.analysis.*; where
# Wireshark's code and its manual disagree the code wins.
#
# loss_init once per connection, loss_segment for each of its segments in
# capture order (side: which end sent it; the analysis is symmetric in its
# two sides), loss_gather when the connection ends (naming the
# originator's side), then loss_free.
from libc.math cimport NAN
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memmove, memset

from fastseg._bytes cimport ld_be32
from fastseg._consts cimport (
    FIN, SYN, RST, ACK,
    A_RETRANSMISSION, A_FAST_RETRANSMISSION, A_SPURIOUS_RETRANSMISSION, A_OUT_OF_ORDER,
    A_LOST_SEGMENT, A_ACK_LOST_SEGMENT, A_DUPLICATE_ACK, A_ZERO_WINDOW,
    A_ZERO_WINDOW_PROBE, A_ZERO_WINDOW_PROBE_ACK, A_WINDOW_FULL, A_WINDOW_UPDATE,
    A_KEEP_ALIVE, A_KEEP_ALIVE_ACK,
)
from fastseg._loss cimport (LossState, LossSide, LossStats, LossOut, Unacked, LOSS_RING, LOSS_INLINE,
                            LC_RETRANS_PKTS, LC_RETRANS_BYTES, LC_FAST_RETRANS,
                            LC_SPURIOUS_RETRANS, LC_OUT_OF_ORDER, LC_LOST_SEGMENTS, LC_DUP_ACKS,
                            LC_ZERO_WINDOWS, LC_KEEPALIVES, LC_RTT_SAMPLES, LC_MAX_IN_FLIGHT,
                            LC_FIRST_FLIGHT_BYTES, LC_FIRST_FLIGHT_SEGS, LC_N,
                            LS_ZERO_WINDOW_TIME, LS_RTT_MIN, LS_RTT_AVG, LS_RTT_MAX, LS_N)

cdef enum:
    # Wireshark: fast retransmission within 20 ms of the last duplicate ACK;
    # out-of-order within the iRTT, or 3 ms when the handshake was not seen.
    FAST_RETRANS_NS = 20000000
    OOO_DEFAULT_NS = 3000000
    MAX_WSCALE = 14            # RFC 7323 2.3: larger shifts are taken as 14
    BIF_LIMIT = 2000000000     # Wireshark shows no bytes in flight beyond this

cdef inline bint gt_seq(uint32_t a, uint32_t b) noexcept nogil:
    return <int32_t>(b - a) < 0

cdef inline bint lt_seq(uint32_t a, uint32_t b) noexcept nogil:
    return <int32_t>(a - b) < 0

cdef inline bint le_seq(uint32_t a, uint32_t b) noexcept nogil:
    return <int32_t>(a - b) <= 0


cdef inline void loss_init(LossState* st) noexcept nogil:
    cdef int s
    memset(st, 0, sizeof(LossState))
    st.syn_ts = -1
    for s in range(2):
        st.side[s].win_scale = -1
        st.side[s].ring_cap = LOSS_INLINE
        st.side[s].window = 0xFFFFFFFF
        st.side[s].valid_bif = 1
        st.side[s].zero_window_since = -1
        st.side[s].first_data_ts = -1
        st.side[s].first_flight_open = 1
        st.stats[s].rtt_min = NAN
        st.stats[s].rtt_max = NAN


cdef inline Unacked* _ring(LossState* st, int s) noexcept nogil:
    # a short flight lives inside the state; a longer one on the heap
    if st.side[s].ring == NULL:
        return &st.inline_ring[s * LOSS_INLINE]
    return st.side[s].ring


cdef inline void loss_free(LossState* st) noexcept nogil:
    cdef int s
    for s in range(2):
        if st.side[s].ring != NULL:
            free(st.side[s].ring)
            st.side[s].ring = NULL
        st.side[s].ring_cap = LOSS_INLINE
        st.side[s].n_unacked = 0


cdef inline void _set_window_scale(LossSide* fwd, LossSide* rev, uint16_t flags,
                                   int16_t wscale_opt) noexcept nogil:
    # Wireshark: the SYN's option sets this side's shift; a SYN without it
    # means no scaling either way (-2), and a SYN-ACK with it after a SYN
    # without it does not turn scaling on (verify_tcp_window_scaling).
    if wscale_opt >= 0:
        fwd.win_scale = <int8_t>(wscale_opt if wscale_opt <= MAX_WSCALE else MAX_WSCALE)
    if fwd.win_scale == -1:
        fwd.win_scale = -2
        rev.win_scale = -2
    elif (flags & ACK) and rev.win_scale == -2:
        fwd.win_scale = -2


cdef Unacked* _ring_room(LossState* st, int s) noexcept nogil:
    # The ring of side s is full: double it (up to LOSS_RING entries) or,
    # when it cannot grow, merge its two oldest entries: the union keeps
    # bytes in flight exact and the newer one's time answers an ACK of their
    # common end.  Returns the ring, with room for one more entry.
    cdef LossSide* fwd = &st.side[s]
    cdef int i, n = fwd.n_unacked, cap
    cdef Unacked* grown = NULL
    cdef Unacked* r
    if fwd.ring_cap < LOSS_RING:
        cap = 2 * fwd.ring_cap
        if fwd.ring == NULL:
            grown = <Unacked*>malloc(cap * sizeof(Unacked))
            if grown != NULL:
                memcpy(grown, &st.inline_ring[s * LOSS_INLINE], n * sizeof(Unacked))
        else:
            grown = <Unacked*>realloc(fwd.ring, cap * sizeof(Unacked))
        if grown != NULL:
            fwd.ring = grown
            fwd.ring_cap = <uint16_t>cap
            return grown
    r = _ring(st, s)
    if lt_seq(r[1].seq, r[0].seq):
        r[0].seq = r[1].seq
    if gt_seq(r[1].nextseq, r[0].nextseq):
        r[0].nextseq = r[1].nextseq
    r[0].ts = r[1].ts
    r[0].data = r[0].data | r[1].data
    memmove(&r[1], &r[2], (n - 2) * sizeof(Unacked))
    fwd.n_unacked = <uint16_t>(n - 1)
    return r


cdef inline void _add_unacked(LossState* st, int s, uint32_t seq, uint32_t nextseq, int64_t ts,
                              uint8_t data) noexcept nogil:
    cdef LossSide* fwd = &st.side[s]
    cdef Unacked* r
    if fwd.n_unacked == fwd.ring_cap:
        r = _ring_room(st, s)
    else:
        r = _ring(st, s)
    r += fwd.n_unacked
    r.seq = seq
    r.nextseq = nextseq
    r.ts = ts
    r.data = data
    fwd.n_unacked += 1


cdef inline double _ack_unacked(LossState* st, int s, uint32_t ack, int64_t ts) noexcept nogil:
    # Drop what ``ack`` acknowledges of side s's unacknowledged segments;
    # returns the RTT it measures (NaN: none).  Wireshark walks newest first
    # and the last exact match sets the RTT, i.e. the oldest segment that
    # ends at this ack; here oldest comes first.
    cdef LossSide* rev = &st.side[s]
    cdef LossStats* stats
    cdef int i, k = 0, n = rev.n_unacked
    cdef bint matched = False
    cdef double rtt = NAN
    cdef Unacked* r = _ring(st, s)
    for i in range(n):
        if ack == r[i].nextseq:
            if not matched:
                matched = True
                rtt = (ts - r[i].ts) * 1e-9
                if r[i].data:
                    # RTT statistics belong to the side whose data was acked
                    stats = &st.stats[s]
                    stats.rtt_samples += 1
                    stats.rtt_sum += rtt
                    if not (rtt >= stats.rtt_min):
                        stats.rtt_min = rtt
                    if not (rtt <= stats.rtt_max):
                        stats.rtt_max = rtt
            continue
        if <int32_t>(ack - r[i].nextseq) > 0:       # acked in full
            continue
        if gt_seq(ack, r[i].seq):                   # in part
            r[i].seq = ack
        if k != i:
            r[k] = r[i]
        k += 1
    rev.n_unacked = <uint16_t>k
    return rtt


cdef inline int64_t _bytes_in_flight(LossState* st, int s, const LossSide* rev) noexcept nogil:
    cdef const LossSide* fwd = &st.side[s]
    cdef uint32_t first_seq, last_seq, v, in_flight
    cdef int i
    cdef const Unacked* r = _ring(st, s)
    first_seq = r[0].seq - fwd.base_seq
    last_seq = r[0].nextseq - fwd.base_seq
    for i in range(1, fwd.n_unacked):
        v = r[i].nextseq - fwd.base_seq
        if v > last_seq:
            last_seq = v
        v = r[i].seq - fwd.base_seq
        if v < first_seq:
            first_seq = v
    in_flight = last_seq - first_seq
    if rev.has_sack:
        # Wireshark subtracts what the peer's last SACK option reported
        # delivered; that option is kept until the next one replaces it
        in_flight -= rev.sack_bytes
    if in_flight > 0 and in_flight < BIF_LIMIT:
        return in_flight
    return -1


cdef void _count_flags(LossStats* stats, uint32_t a, uint32_t seglen) noexcept nogil:
    # the per-connection counters of a flagged segment (a rare event)
    if a & A_RETRANSMISSION:
        stats.count[LC_RETRANS_PKTS] += 1
        stats.count[LC_RETRANS_BYTES] += seglen
    if a & A_FAST_RETRANSMISSION:
        stats.count[LC_FAST_RETRANS] += 1
    if a & A_SPURIOUS_RETRANSMISSION:
        stats.count[LC_SPURIOUS_RETRANS] += 1
    if a & A_OUT_OF_ORDER:
        stats.count[LC_OUT_OF_ORDER] += 1
    if a & A_LOST_SEGMENT:
        stats.count[LC_LOST_SEGMENTS] += 1
    if a & A_DUPLICATE_ACK:
        stats.count[LC_DUP_ACKS] += 1
    if a & A_KEEP_ALIVE:
        stats.count[LC_KEEPALIVES] += 1
    if a & A_ZERO_WINDOW:
        stats.count[LC_ZERO_WINDOWS] += 1


cdef inline uint32_t _flags_pure_ack(LossSide* fwd, const LossSide* rev,
                                     uint32_t window) noexcept nogil:
    # a segment without payload at nextseq that repeats the last ack
    # (Wireshark tests each condition in turn; a duplicate ACK's number is
    # fwd.dupacknum)
    cdef uint32_t a = 0
    if window and window != fwd.window:
        a |= A_WINDOW_UPDATE
    if window and window == fwd.window and (rev.lastsegmentflags & A_KEEP_ALIVE):
        return a | A_KEEP_ALIVE_ACK
    if window == 0 and window == fwd.window and (rev.lastsegmentflags & A_ZERO_WINDOW_PROBE):
        return a | A_ZERO_WINDOW_PROBE_ACK
    if window and window == fwd.window:
        fwd.dupacknum += 1
        a |= A_DUPLICATE_ACK
    return a


cdef inline uint32_t _retransmission_type(const LossState* st, const LossSide* fwd,
                                          const LossSide* rev, int64_t ts_ns, uint32_t seq,
                                          uint32_t seglen, bint syn_or_fin) noexcept nogil:
    # Wireshark's retransmission checks of a segment that carries data, SYN
    # or FIN and is no keep-alive
    cdef bint seq_not_advanced = fwd.nextseq != 0 and lt_seq(seq, fwd.nextseq)
    cdef uint64_t ooo_thres
    # data the peer has already acked is spurious before anything else
    if seglen > 0 and rev.lastack and le_seq(seq + seglen, rev.lastack):
        return A_SPURIOUS_RETRANSMISSION | A_RETRANSMISSION
    # one byte short of nextseq with more than one byte is new data
    # after a (possible) zero-window probe, not a retransmission
    if not seq_not_advanced or (seglen > 1 and fwd.nextseq - 1 == seq):
        return 0
    if (rev.dupacknum >= 2 and rev.lastack == seq
            and <uint64_t>(ts_ns - rev.lastack_ts) < FAST_RETRANS_NS):
        return A_FAST_RETRANSMISSION | A_RETRANSMISSION
    ooo_thres = <uint64_t>st.irtt_ns if st.irtt_ns != 0 else OOO_DEFAULT_NS
    if (<uint64_t>(ts_ns - fwd.nextseq_ts) < ooo_thres
            and fwd.nextseq != seq + seglen + (1 if syn_or_fin else 0)):
        return A_OUT_OF_ORDER
    return A_RETRANSMISSION


cdef inline void loss_segment(LossState* st, int side, int64_t ts_ns, uint32_t seq, uint32_t ack,
                              uint16_t flags, uint32_t seglen, uint16_t raw_window,
                              int16_t wscale_opt, int64_t sack_bytes, LossOut* out) noexcept nogil:
    # sack_bytes: see sack_block_bytes; -1 when the segment has no SACK block
    # (Wireshark's bytes in flight subtract the peer's latest SACK blocks;
    # a segment without them clears them)
    cdef LossSide* fwd = &st.side[side]
    cdef LossSide* rev = &st.side[1 - side]
    cdef uint32_t a = 0, window, nextseq, fwd_nextseq = fwd.nextseq
    cdef bint syn_or_fin = (flags & (SYN | FIN)) != 0
    cdef bint no_sfr = (flags & (SYN | FIN | RST)) == 0
    cdef int64_t bif = -1
    cdef double rtt = NAN

    if not no_sfr:
        if flags & SYN:
            # iRTT: most recent SYN to the first ACK without SYN (ts_first_rtt)
            if not (flags & ACK):
                st.syn_ts = ts_ns
            _set_window_scale(fwd, rev, flags, wscale_opt)
            if not fwd.data_base_set:
                # tcptrace's first data byte (SYN + 1)
                fwd.data_base = seq + 1
                fwd.data_base_set = 1
    if (flags & (SYN | ACK)) == ACK and st.irtt_ns == 0 and st.syn_ts >= 0:
        st.irtt_ns = ts_ns - st.syn_ts

    if flags & SYN:
        window = raw_window
    elif fwd.win_scale >= 0:
        window = (<uint32_t>raw_window) << fwd.win_scale
    else:
        window = raw_window

    if not fwd.base_seq_set:
        fwd.base_seq = seq if (flags & SYN) else seq - 1
        fwd.base_seq_set = 1
    if (flags & ACK) and not rev.base_seq_set:
        rev.base_seq = ack - 1
        rev.base_seq_set = 1

    # Wireshark's checks up to "finished_fwd"; a break skips the rest
    while True:
        if seq == fwd_nextseq and fwd_nextseq != 0:
            # the common case: the next segment in order (no lost segment,
            # no keep-alive)
            if seglen == 1 and rev.window == 0:
                a = A_ZERO_WINDOW_PROBE
                break
            if window == 0 and no_sfr:
                a = A_ZERO_WINDOW
            if seglen > 0:
                if (no_sfr and rev.win_scale != -1
                        and seq + seglen == rev.lastack + rev.window):
                    a |= A_WINDOW_FULL
            elif ack == fwd.lastack and no_sfr:
                a |= _flags_pure_ack(fwd, rev, window)
            break
        if seglen == 1 and seq == fwd_nextseq and rev.window == 0:
            a = A_ZERO_WINDOW_PROBE
            break
        if window == 0 and no_sfr:
            a = A_ZERO_WINDOW
        if fwd_nextseq and gt_seq(seq, fwd_nextseq) and not (flags & RST):
            a |= A_LOST_SEGMENT
            fwd.valid_bif = 0
        if seglen <= 1 and seq == fwd_nextseq - 1 and no_sfr:
            a |= A_KEEP_ALIVE
        if seglen > 0:
            if (rev.win_scale != -1 and no_sfr
                    and seq + seglen == rev.lastack + rev.window):
                a |= A_WINDOW_FULL
            break
        if seq == fwd_nextseq and ack == fwd.lastack and no_sfr:
            a |= _flags_pure_ack(fwd, rev, window)
        break

    # finished_fwd
    if ack != fwd.lastack:
        fwd.dupacknum = 0

    if (flags & ACK) and rev.maxseqtobeacked and gt_seq(ack, rev.maxseqtobeacked):
        a |= A_ACK_LOST_SEGMENT
        rev.maxseqtobeacked = rev.nextseq

    nextseq = seq + seglen
    if seglen or syn_or_fin:
        if not (a & A_KEEP_ALIVE):
            a |= _retransmission_type(st, fwd, rev, ts_ns, seq, seglen, syn_or_fin)
        # finished_checking_retransmission_type
        if syn_or_fin:
            nextseq += 1
        _add_unacked(st, side, seq, nextseq, ts_ns, seglen > 0)
    if not (a & A_ZERO_WINDOW_PROBE):
        if gt_seq(nextseq, fwd_nextseq) or not fwd_nextseq:
            fwd.nextseq = nextseq
            fwd.nextseq_ts = ts_ns
        if seq == fwd.maxseqtobeacked or not fwd.maxseqtobeacked:
            fwd.maxseqtobeacked = fwd.nextseq

    fwd.window = window
    fwd.lastack = ack
    fwd.lastack_ts = ts_ns
    fwd.last_ts = ts_ns
    fwd.lastsegmentflags = <uint16_t>a
    fwd.has_sack = sack_bytes >= 0
    fwd.sack_bytes = <uint32_t>sack_bytes
    if flags & ACK:
        rev.valid_bif = 1

    if rev.n_unacked:
        rtt = _ack_unacked(st, 1 - side, ack, ts_ns)

    if seglen != 0:
        if fwd.n_unacked and fwd.valid_bif:
            bif = _bytes_in_flight(st, side, rev)
            if bif > 0:
                if syn_or_fin:
                    # the SYN or FIN is not a byte on the wire
                    bif -= 1
                if bif > fwd.max_in_flight:
                    fwd.max_in_flight = <uint32_t>bif
        # tcptrace's initial window: data sent before any of it is acked
        if fwd.first_data_ts < 0:
            fwd.first_data_ts = ts_ns
        if not fwd.data_base_set:
            fwd.data_base = seq
            fwd.data_base_set = 1
    out.analysis = a
    out.ack_rtt = rtt
    out.bytes_in_flight = bif
    out.dup_ack_num = fwd.dupacknum if (a & A_DUPLICATE_ACK) else 0

    # -- per-connection summary ------------------------------------------
    if a:
        _count_flags(&st.stats[side], a, seglen)
    if a & A_ZERO_WINDOW:
        if fwd.zero_window_since < 0:
            fwd.zero_window_since = ts_ns
    elif raw_window != 0 and fwd.zero_window_since >= 0:
        st.stats[side].zero_window_ns += ts_ns - fwd.zero_window_since
        fwd.zero_window_since = -1
    # (an ACK of anything past the SYN ends the peer's first flight)
    if (flags & ACK) and rev.first_flight_open and rev.data_base_set and gt_seq(ack, rev.data_base):
        rev.first_flight_open = 0
    if seglen > 0 and fwd.first_flight_open and not (a & A_RETRANSMISSION):
        st.stats[side].first_flight_bytes += seglen
        st.stats[side].first_flight_segs += 1


cdef inline void loss_gather(const LossState* st, int orig, uint64_t* counts,
                             double* seconds, double* ttfb) noexcept nogil:
    """Per-side counters (2 x LC_N) and seconds (2 x LS_N), the
    originator's (side ``orig``) first; ``ttfb`` from the originator's first
    data to the responder's."""
    cdef int s, i, e
    cdef const LossSide* sd
    cdef const LossStats* ss
    cdef const LossSide* o = &st.side[orig]
    cdef const LossSide* r = &st.side[1 - orig]
    cdef int64_t end = st.side[0].last_ts
    if st.side[1].last_ts > end:
        end = st.side[1].last_ts
    for s in range(2):
        e = orig if s == 0 else 1 - orig
        sd = &st.side[e]
        ss = &st.stats[e]
        for i in range(LC_RTT_SAMPLES):
            counts[s * LC_N + i] = ss.count[i]
        counts[s * LC_N + LC_RTT_SAMPLES] = ss.rtt_samples
        counts[s * LC_N + LC_MAX_IN_FLIGHT] = sd.max_in_flight
        counts[s * LC_N + LC_FIRST_FLIGHT_BYTES] = ss.first_flight_bytes
        counts[s * LC_N + LC_FIRST_FLIGHT_SEGS] = ss.first_flight_segs
        seconds[s * LS_N + LS_ZERO_WINDOW_TIME] = (
            ss.zero_window_ns + (end - sd.zero_window_since if sd.zero_window_since >= 0 else 0)
        ) * 1e-9
        seconds[s * LS_N + LS_RTT_MIN] = ss.rtt_min
        seconds[s * LS_N + LS_RTT_MAX] = ss.rtt_max
        seconds[s * LS_N + LS_RTT_AVG] = (ss.rtt_sum / ss.rtt_samples
                                          if ss.rtt_samples else NAN)
    if o.first_data_ts >= 0 and r.first_data_ts >= o.first_data_ts:
        ttfb[0] = (r.first_data_ts - o.first_data_ts) * 1e-9
    else:
        ttfb[0] = NAN


cdef inline int64_t sack_bytes_at(const uint8_t* data, int64_t size, int64_t l3_off,
                                  uint32_t l3_caplen, int64_t l4_off, uint8_t hdr_len) noexcept nogil:
    """The bytes covered by the SACK blocks Wireshark keeps for bytes in
    flight (dissect_tcpopt_sack stores blocks 1..3 of an option and never
    the 4th) in the TCP options at ``l4_off`` of ``data`` (``size`` bytes),
    mod 2**32; -1 when no block was captured."""
    cdef int64_t p, end, k, out = -1
    cdef uint8_t kind, olen
    cdef uint32_t total
    cdef int blocks
    if l4_off < 0:
        return -1
    end = l4_off + hdr_len
    if end > l3_off + l3_caplen:
        end = l3_off + l3_caplen
    if end > size:
        end = size
    p = l4_off + 20
    while p < end:
        kind = data[p]
        if kind == 0:
            break
        if kind == 1:
            p += 1
            continue
        if p + 1 >= end:
            break
        olen = data[p + 1]
        if olen < 2 or p + olen > end:
            break
        if kind == 5:
            total = 0
            blocks = 0
            k = p + 2
            while k + 8 <= p + olen and blocks < 3:
                total += ld_be32(&data[k + 4]) - ld_be32(&data[k])
                blocks += 1
                k += 8
            if blocks:
                out = total
        p += olen
    return out
