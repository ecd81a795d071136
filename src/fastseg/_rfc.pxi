# The RFC 9293 observer: each endpoint's state as a passive observer infers
# it, driven by a transition table (fastseg.track.TRANSITIONS) indexed by
# state and event.  Included by _track.pyx.

# Segment kinds; an event is a kind as its sender sees it, or the same kind
# + N_KINDS as its peer sees it.
cdef enum:
    K_SYN = 0
    K_SYNACK = 1
    K_FIN = 2
    K_ACKFIN = 3
    K_RST = 4
    K_DATA = 5
    K_ACK = 6


cdef inline void rfc_apply(const RfcTable* rt, Endp* e, int event) noexcept nogil:
    # CLOSED is final once an endpoint has been open: the table's
    # midstream rules out of CLOSED are for endpoints first seen now.
    if e.rfc == 0 and e.rfc_open:
        return
    e.rfc = rt.next[e.rfc][event]
    if e.rfc != 0 or event == K_RST or event == K_RST + N_KINDS:
        e.rfc_open = 1


cdef void rfc_step(const RfcTable* rt, Conn* c, int side, uint16_t flags, uint32_t plen,
                   bint ackfin) noexcept nogil:
    # One segment from ``side``; ``ackfin``: it acknowledges the peer's FIN.
    cdef int kind = -1
    cdef Endp* e = &c.ep[side]
    cdef Endp* p = &c.ep[1 - side]
    if ackfin:
        rfc_apply(rt, e, K_ACKFIN)
        rfc_apply(rt, p, K_ACKFIN + N_KINDS)
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
        rfc_apply(rt, e, kind)
        rfc_apply(rt, p, kind + N_KINDS)
