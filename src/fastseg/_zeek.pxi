# Zeek's connection state machine over one connection record: endpoint
# states, history letters, handshake measurements, content gaps (the
# reassembler's bookkeeping without the bytes), role flips, and the timers
# that end a connection.  Included by _track.pyx.
#
# The rules follow zeek/src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc
# (Process, UpdateStateMachine and its Update*State helpers, IsReuse, the
# attempt/close/reset timers), TCP_Endpoint.cc (Size, history letters) and
# TCP.cc (WantConnection's role flip, the checksum check that keeps bad
# segments out of the state machine).

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


cdef inline bint zeek_expired(const ZeekConfig* zc, Conn* c, int64_t t) noexcept nogil:
    # Whether the connection is over at time ``t`` (inactivity, attempt,
    # close and reset timers).
    cdef Endp* o = &c.ep[0]
    cdef Endp* r = &c.ep[1]
    if t - c.last_ts >= zc.idle_ns and (not c.long_idle or t - c.last_ts >= PORT_IDLE_NS):
        return True
    # tcp_attempt_delay: an unanswered attempt is removed, so a later SYN
    # starts a new connection.
    if (c.attempt_armed and (o.state == Z_SYN_SENT or o.state == Z_SYN_ACK_SENT)
            and r.state == Z_INACTIVE and t - c.attempt_ts >= zc.attempt_ns):
        return True
    # Close complete (ConnectionClosed) or reset: removed after
    # tcp_close_delay / tcp_reset_delay from the (frozen) last time.
    if (o.did_close or r.did_close) and (
            (o.did_close and r.did_close) or o.state == Z_RESET or r.state == Z_RESET
            or o.state == Z_INACTIVE or r.state == Z_INACTIVE):
        if t - c.last_ts >= zc.close_ns:
            return True
    return False


cdef inline bint zeek_is_reuse(Conn* c, uint16_t flags, uint32_t seq) noexcept nogil:
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


cdef inline void zeek_open(Conn* c, const uint8_t* src, uint16_t sport, const uint8_t* dst,
                           uint16_t dport, uint8_t ipv, int64_t t) noexcept nogil:
    # A new connection in a zeroed record, src as its originator.
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
    c.ep[0].wscale = -1
    c.ep[1].wscale = -1
    c.ep[0].reassem = c.ep[1].reassem = 1
    c.ep[0].trim = c.ep[1].trim = 1
    c.ep[0].mss = -1
    c.ep[1].mss = -1
    c.ep[0].last_seen_ts = c.ep[1].last_seen_ts = -1
    c.ep[0].first_fin_ts = c.ep[1].first_fin_ts = -1


cdef inline int zeek_want_connection(const ZeekConfig* zc, Conn* c, uint16_t flags) noexcept nogil:
    # TCPAnalyzer::WantConnection: a connection that does not start with a
    # plain SYN is turned around when its source looks like the server.
    # Returns the side of the first segment's sender.
    cdef bint flip = False
    cdef uint16_t sport = c.port[0], dport = c.port[1]
    if not ((flags & SYN) and not (flags & ACK)):
        if zc.likely[sport]:
            if zc.likely[dport]:
                flip = (not (flags & SYN)) and sport < dport
            else:
                flip = True
    if flip:
        flip_roles(c)
        return 1
    return 0


cdef inline void zeek_seen(Conn* c, int side, int64_t t, uint16_t flags) noexcept nogil:
    # What the report reads of each side (CLOSE-WAIT, half-open, TIME-WAIT),
    # from every segment the side sent, dropped or not.
    if t > c.ep[side].last_seen_ts:
        c.ep[side].last_seen_ts = t
    if (flags & FIN) and (c.ep[side].first_fin_ts < 0 or t < c.ep[side].first_fin_ts):
        c.ep[side].first_fin_ts = t


cdef inline void zeek_checksum_error(Conn* c, int side) noexcept nogil:
    # The receiver dropped the segment: history only
    # (TCP_Endpoint::ChecksumError).
    scaled_letter(c, side, &c.ep[side].chk, 67)             # 'C'


cdef int zeek_segment(const ZeekConfig* zc, Conn* c, int side, int64_t t, uint16_t flags, uint32_t seq, uint32_t ack,
                      uint32_t plen, uint16_t window, int32_t mss, int16_t wscale, uint8_t sack_perm,
                      int64_t tsval, bint cut, bint* ackfin_out) noexcept nogil:
    # One segment through Zeek's endpoint state machine, history, handshake
    # measurements and reassembly bookkeeping.  Returns the sender's side
    # afterwards (a role flip turns it around); ``ackfin_out``: the segment
    # acknowledges the peer's FIN (for the RFC observer).
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
                    c.long_idle = idles_long(c, zc.likely)
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

    ackfin_out[0] = ackfin
    return side
