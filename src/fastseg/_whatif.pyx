# A Linux listening socket replayed over a capture's SYNs, in one pass.
#
# The rules are those of net/ipv4/tcp_input.c tcp_conn_request(),
# inet_connection_sock.c reqsk_timer_handler() / syn_ack_recalc(),
# tcp_minisocks.c tcp_check_req() and tcp_ipv4.c tcp_v4_syn_recv_sock():
#
# * The SYN queue (request sockets) and the accept queue are both bounded by
#   sk_max_ack_backlog = min(listen backlog, somaxconn).  The SYN queue is full
#   when qlen > backlog (Linux >= 6.14; >= before), the accept queue when
#   its length > backlog.
# * A SYN: unless it hit a TIME-WAIT socket, syncookies=2 or a full SYN queue
#   wants a cookie when syncookies != 0 (TCPReqQFullDoCookies) and is dropped
#   otherwise (TCPReqQFullDrop); then a full accept queue drops it
#   (ListenOverflows); then, without syncookies, the last quarter of
#   tcp_max_syn_backlog is kept for proven peers.  Every drop is a ListenDrop.
# * A request socket's timer fires at 1, 3, 7, 15, 31 s ... (TCP_TIMEOUT_INIT
#   doubled, capped at TCP_RTO_MAX); it expires once it has fired
#   synack_retries times, a limit that pruning lowers (down to 2) while
#   2 * qlen > max(8, backlog) and young requests are a small share.
# * A final ACK while the accept queue is full is dropped (ListenOverflows,
#   ListenDrops) and the request stays, "acked", retransmitting; with
#   tcp_abort_on_overflow it is answered with RST and the request freed.
#
# Timers run on the kernel's timer wheel (kernel/time/timer.c): a timer armed
# ``delta`` jiffies ahead sits in the level whose range holds delta and fires
# at the next multiple of that level's granularity (8 ** level jiffies), never
# early.  With ``tick`` > 0 (1 / HZ) the replay rounds the same way, the wheel's
# jiffy 0 at ``phase`` seconds; with ``tick`` = 0 timers fire exactly.
#
# Every request uses the same timeouts and the rounding is monotone, so the
# requests waiting for their k-th firing form a FIFO in admission order: one
# ring per retry step and no heap.  Client-side events (ACKs one RTT after a
# SYN-ACK, RSTs from attack sources, data retransmissions after a cookie) are
# few and live in a small binary heap.
from libc.stdint cimport uint8_t, int32_t, int64_t
from libc.stdlib cimport malloc, realloc, free
from libc.math cimport INFINITY, floor

from fastseg._consts cimport (
    SV_NOT_SENT, SV_QUEUED, SV_COOKIE, SV_DROP_SYN_QUEUE, SV_DROP_ACCEPT_QUEUE, SV_DROP_UNPROVEN,
    CO_PENDING, CO_OK_QUEUE, CO_OK_COOKIE, CO_OK_AFTER_RETRIES, CO_GAVE_UP, CO_RESET)

cdef enum:
    # client states
    C_WAITING = 0
    C_IN_REQUEST = 1
    C_COOKIE = 2
    C_DONE = 3

    # heap event kinds
    E_ACK_REQUEST = 0       # a legitimate client's ACK of a SYN-ACK reaches the listener
    E_DATA_REQUEST = 1      # ... its data, sent once it believes it is connected
    E_ACK_COOKIE = 2        # ... its ACK of a cookie SYN-ACK, or data after it
    E_RST_REQUEST = 3       # an attack source answers a SYN-ACK with RST

    # counters (nstat names in whatif.py)
    K_LISTEN_OVERFLOWS = 0
    K_LISTEN_DROPS = 1
    K_REQQ_FULL_DROP = 2
    K_REQQ_FULL_DO_COOKIES = 3
    K_SYNCOOKIES_SENT = 4
    K_SYNCOOKIES_RECV = 5
    K_SYN_RETRANS = 6
    K_PASSIVE_OPENS = 7
    K_EXPIRED = 8
    K_EVENTS = 9
    N_COUNTERS = 10

    # series columns
    S_SYNQ = 0
    S_ACCEPTQ = 1
    S_SYNS = 2
    S_DROPS = 3
    S_COOKIES = 4
    S_COMPLETED = 5
    S_LEGIT_SYNS = 6
    N_SERIES = 7

    MAX_RINGS = 64
    # a client that believes it is connected sends its first data at once and
    # retransmits it 8 times (RTO doubling from its one RTT sample; about the
    # 63 s a request lives) before the model stops following it
    DATA_SEGMENTS = 9

DEF TCP_RTO_MAX = 120.0


cdef struct Heap:
    double *t
    int32_t *a
    int32_t *b
    uint8_t *kind
    int64_t n
    int64_t cap


cdef int heap_push(Heap *h, double t, uint8_t kind, int32_t a, int32_t b) noexcept nogil:
    cdef int64_t i, p, cap
    if h.n == h.cap:
        cap = h.cap * 2 + 64
        h.t = <double *>realloc(h.t, cap * sizeof(double))
        h.a = <int32_t *>realloc(h.a, cap * sizeof(int32_t))
        h.b = <int32_t *>realloc(h.b, cap * sizeof(int32_t))
        h.kind = <uint8_t *>realloc(h.kind, cap * sizeof(uint8_t))
        if h.t == NULL or h.a == NULL or h.b == NULL or h.kind == NULL:
            return -1
        h.cap = cap
    i = h.n
    h.n += 1
    while i > 0:
        p = (i - 1) >> 1
        if h.t[p] <= t:
            break
        h.t[i] = h.t[p]; h.a[i] = h.a[p]; h.b[i] = h.b[p]; h.kind[i] = h.kind[p]
        i = p
    h.t[i] = t; h.a[i] = a; h.b[i] = b; h.kind[i] = kind
    return 0


cdef void heap_pop(Heap *h) noexcept nogil:
    cdef int64_t i = 0, c, n
    cdef double t
    h.n -= 1
    n = h.n
    if n == 0:
        return
    t = h.t[n]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and h.t[c + 1] < h.t[c]:
            c += 1
        if t <= h.t[c]:
            break
        h.t[i] = h.t[c]; h.a[i] = h.a[c]; h.b[i] = h.b[c]; h.kind[i] = h.kind[c]
        i = c
    h.t[i] = t; h.a[i] = h.a[n]; h.b[i] = h.b[n]; h.kind[i] = h.kind[n]


cdef struct Listener:
    int64_t backlog
    int syncookies
    int synack_retries
    int64_t max_syn_backlog
    bint abort_on_overflow
    bint full_gt
    double accept_interval      # 0 = accepts at once, INFINITY = never
    int64_t qlen
    int64_t young
    int64_t acc_len
    double acc_next
    double bin_start
    double bin_width
    int64_t n_bins
    double until                # events after it are not replayed (counters read then)
    double tick                 # one jiffy (s), 0 = exact timers
    double phase                # time of a jiffy on every level's grid (s)


cdef struct Work:
    # per request (one slot per SYN that made one)
    double *req_next            # when its timer fires next
    int32_t *req_owner          # the legitimate client it answers, or -1
    int32_t *req_timeouts       # num_timeout: its timer's firings so far
    uint8_t *req_alive
    # per legitimate client
    uint8_t *client_state
    int32_t *client_data_sent   # data segments sent while the listener had no socket for it
    # ring k: the requests whose timer fired k times, oldest first
    int32_t *rings
    int64_t stride
    int n_rings
    int64_t ring_head[MAX_RINGS]
    int64_t ring_tail[MAX_RINGS]


cdef inline double arm(Listener *L, double now, double timeout) noexcept nogil:
    # mod_timer(jiffies + timeout) and calc_wheel_index(): the bucket's expiry
    cdef int64_t j_now, delta, expires, shift = 0
    if L.tick <= 0:
        return now + timeout
    j_now = <int64_t>floor((now - L.phase) / L.tick)
    delta = <int64_t>(timeout / L.tick + 0.5)
    expires = j_now + delta
    # LVL_START(n) = 63 << 3 * (n - 1): levels 0..8 of 64 buckets, 8x apart
    while shift < 24 and delta >= (<int64_t>63 << shift):
        shift += 3
    return L.phase + (((expires >> shift) + 1) << shift) * L.tick


cdef inline void drain(Listener *L, double t) noexcept nogil:
    if L.accept_interval == 0.0:
        L.acc_len = 0
        return
    while L.acc_len > 0 and L.acc_next <= t:
        L.acc_len -= 1
        L.acc_next += L.accept_interval


cdef inline void accept_push(Listener *L, double t) noexcept nogil:
    if L.accept_interval == 0.0:
        return
    if L.acc_len == 0:
        L.acc_next = t + L.accept_interval
    L.acc_len += 1


cdef inline bint synq_full(Listener *L) noexcept nogil:
    if L.full_gt:
        return L.qlen > L.backlog
    return L.qlen >= L.backlog


cdef inline int64_t bin_of(Listener *L, double t) noexcept nogil:
    cdef int64_t b
    if L.n_bins <= 0:
        return -1
    b = <int64_t>floor((t - L.bin_start) / L.bin_width)
    if b < 0:
        return 0
    if b >= L.n_bins:
        return L.n_bins - 1
    return b


cdef inline void note_occupancy(Listener *L, int32_t[:, ::1] series, double t) noexcept nogil:
    cdef int64_t b = bin_of(L, t)
    if b < 0:
        return
    if series[b, S_SYNQ] < L.qlen:
        series[b, S_SYNQ] = <int32_t>L.qlen
    if series[b, S_ACCEPTQ] < L.acc_len:
        series[b, S_ACCEPTQ] = <int32_t>L.acc_len


cdef inline void bump(Listener *L, int32_t[:, ::1] series, double t, int col) noexcept nogil:
    cdef int64_t b = bin_of(L, t)
    if b >= 0:
        series[b, col] += 1


def replay(const double[::1] syn_t, const int32_t[::1] syn_client, const uint8_t[::1] syn_tw,
           const double[::1] syn_rst_delay, const uint8_t[::1] syn_proven_src,
           const double[::1] client_rtt, const uint8_t[::1] client_data_first,
           const double[::1] client_first, const double[::1] client_give_up,
           int64_t backlog, int syncookies, int synack_retries, int64_t max_syn_backlog,
           bint abort_on_overflow, bint full_gt, double accept_interval,
           double bin_start, double bin_width, double until, double tick, double phase,
           uint8_t[::1] syn_verdict, uint8_t[::1] client_outcome, double[::1] client_done,
           int32_t[::1] client_attempts, int32_t[::1] client_synack_rtx,
           int64_t[::1] counters, int32_t[:, ::1] series):
    """Replay SYN arrivals (sorted by time) against one listener; fill the
    verdict of each SYN, the outcome of each legitimate client, the nstat-like
    counters and the per-bin series.  Returns 0, or -1 when memory ran out."""
    cdef Py_ssize_t n_syn = syn_t.shape[0], n_client = client_rtt.shape[0]
    cdef Listener L
    cdef Heap h
    cdef int rc = 0
    cdef int n_rings = synack_retries + 1
    if n_rings > MAX_RINGS:
        n_rings = MAX_RINGS
    if n_rings < 1:
        n_rings = 1
    L.backlog = backlog
    L.syncookies = syncookies
    L.synack_retries = synack_retries
    L.max_syn_backlog = max_syn_backlog
    L.abort_on_overflow = abort_on_overflow
    L.full_gt = full_gt
    L.accept_interval = accept_interval
    L.qlen = 0
    L.young = 0
    L.acc_len = 0
    L.acc_next = INFINITY
    L.bin_start = bin_start
    L.bin_width = bin_width if bin_width > 0 else 1.0
    L.n_bins = series.shape[0]
    L.until = until
    L.tick = tick
    L.phase = phase
    h.t = NULL; h.a = NULL; h.b = NULL; h.kind = NULL; h.n = 0; h.cap = 0

    cdef Work W
    W.n_rings = n_rings
    W.stride = n_syn + 1
    W.req_next = <double *>malloc(W.stride * sizeof(double))
    W.req_owner = <int32_t *>malloc(W.stride * sizeof(int32_t))
    W.req_timeouts = <int32_t *>malloc(W.stride * sizeof(int32_t))
    W.req_alive = <uint8_t *>malloc(W.stride * sizeof(uint8_t))
    W.client_state = <uint8_t *>malloc((n_client + 1) * sizeof(uint8_t))
    W.client_data_sent = <int32_t *>malloc((n_client + 1) * sizeof(int32_t))
    W.rings = <int32_t *>malloc(n_rings * W.stride * sizeof(int32_t))
    if (W.req_next == NULL or W.req_owner == NULL or W.req_timeouts == NULL
            or W.req_alive == NULL or W.client_state == NULL or W.client_data_sent == NULL
            or W.rings == NULL):
        rc = -1
    else:
        with nogil:
            rc = _run(&L, &h, &W, syn_t, syn_client, syn_tw, syn_rst_delay, syn_proven_src,
                      client_rtt, client_data_first, client_first, client_give_up,
                      syn_verdict, client_outcome, client_done, client_attempts,
                      client_synack_rtx, counters, series)
    free(W.req_next); free(W.req_owner); free(W.req_timeouts); free(W.req_alive)
    free(W.client_state); free(W.client_data_sent); free(W.rings)
    free(h.t); free(h.a); free(h.b); free(h.kind)
    return rc


cdef inline double data_gap(double rtt, int32_t sent) noexcept nogil:
    # the first data right behind the ACK; then tcp_retransmit_timer(): the
    # RTO from one RTT sample is srtt + max(4 * rttvar, tcp_rto_min) =
    # rtt + max(2 * rtt, 200 ms), doubled each time
    cdef double rto
    if sent == 0:
        return 0.0
    rto = 3.0 * rtt
    if rto < rtt + 0.2:
        rto = rtt + 0.2
    return rto * (1 << (sent - 1))


cdef inline void free_request(Listener *L, Work *W, int32_t r) noexcept nogil:
    # reqsk_queue_removed(): young counts requests whose timer never fired
    W.req_alive[r] = 0
    L.qlen -= 1
    if W.req_timeouts[r] == 0:
        L.young -= 1


cdef int _run(Listener *L, Heap *h, Work *W,
              const double[::1] syn_t, const int32_t[::1] syn_client, const uint8_t[::1] syn_tw,
              const double[::1] syn_rst_delay, const uint8_t[::1] syn_proven_src,
              const double[::1] client_rtt, const uint8_t[::1] client_data_first,
              const double[::1] client_first, const double[::1] client_give_up,
              uint8_t[::1] syn_verdict, uint8_t[::1] client_outcome, double[::1] client_done,
              int32_t[::1] client_attempts, int32_t[::1] client_synack_rtx,
              int64_t[::1] counters, int32_t[:, ::1] series) noexcept nogil:
    cdef Py_ssize_t n_syn = syn_t.shape[0], n_client = client_rtt.shape[0]
    cdef Py_ssize_t i = 0
    cdef int64_t stride = W.stride
    cdef int n_rings = W.n_rings
    cdef int64_t n_req = 0, qlen2, young2
    cdef int k, best_ring, thresh
    cdef int32_t r, c
    cdef double t, t_ring, t_heap, timeout
    cdef uint8_t kind, v
    cdef bint want_cookie, tw, stopped = False

    for k in range(n_rings):
        W.ring_head[k] = 0
        W.ring_tail[k] = 0
    for k in range(N_COUNTERS):
        counters[k] = 0
    for c in range(n_client):
        W.client_state[c] = C_WAITING
        W.client_data_sent[c] = 0
        client_outcome[c] = CO_PENDING
        client_done[c] = -1.0
        client_attempts[c] = 0
        client_synack_rtx[c] = 0

    while True:
        # the next event: a SYN, the earliest ring head, or the heap top
        t = INFINITY
        if i < n_syn:
            t = syn_t[i]
        best_ring = -1
        t_ring = INFINITY
        for k in range(n_rings):
            # requests freed early (completed, RST) leave the ring lazily
            while (W.ring_head[k] < W.ring_tail[k]
                   and not W.req_alive[W.rings[k * stride + W.ring_head[k]]]):
                W.ring_head[k] += 1
            if W.ring_head[k] < W.ring_tail[k]:
                r = W.rings[k * stride + W.ring_head[k]]
                if W.req_next[r] < t_ring:
                    t_ring = W.req_next[r]
                    best_ring = k
        t_heap = h.t[0] if h.n > 0 else INFINITY
        if t_ring < t:
            t = t_ring
        if t_heap < t:
            t = t_heap
        if t == INFINITY:
            break
        if t > L.until:
            stopped = True
            break
        t = syn_t[i] if i < n_syn else INFINITY
        counters[K_EVENTS] += 1

        if t_heap <= t and t_heap <= t_ring:
            # ---- a client-side segment reaches the listener
            t = t_heap
            kind = h.kind[0]
            c = h.a[0]
            r = h.b[0]
            heap_pop(h)
            drain(L, t)
            if kind == E_RST_REQUEST:
                if W.req_alive[r]:
                    free_request(L, W, r)
            elif kind == E_ACK_REQUEST or kind == E_DATA_REQUEST:
                if not W.req_alive[r] or W.client_state[c] != C_IN_REQUEST:
                    continue
                if L.acc_len > L.backlog:
                    counters[K_LISTEN_OVERFLOWS] += 1
                    counters[K_LISTEN_DROPS] += 1
                    if L.abort_on_overflow:
                        free_request(L, W, r)
                        W.client_state[c] = C_DONE
                        client_outcome[c] = CO_RESET
                        client_done[c] = t
                        continue
                    # the request stays ("acked"); the client's next segment
                    # (its data, or its ACK of a retransmitted SYN-ACK) tries again
                    if (client_data_first[c] and W.client_data_sent[c] < DATA_SEGMENTS
                            and (kind == E_DATA_REQUEST or W.client_data_sent[c] == 0)):
                        if heap_push(h, t + data_gap(client_rtt[c], W.client_data_sent[c]),
                                     E_DATA_REQUEST, c, r) != 0:
                            return -1
                        W.client_data_sent[c] += 1
                    continue
                free_request(L, W, r)
                accept_push(L, t)
                counters[K_PASSIVE_OPENS] += 1
                W.client_state[c] = C_DONE
                client_done[c] = t
                if (client_attempts[c] == 1 and client_synack_rtx[c] == 0
                        and W.client_data_sent[c] <= 1):
                    client_outcome[c] = CO_OK_QUEUE
                else:
                    client_outcome[c] = CO_OK_AFTER_RETRIES
                bump(L, series, t, S_COMPLETED)
            else:  # E_ACK_COOKIE: cookie_v4_check() accepts it, then the accept queue decides
                if W.client_state[c] != C_COOKIE:
                    continue
                counters[K_SYNCOOKIES_RECV] += 1
                if L.acc_len > L.backlog:
                    counters[K_LISTEN_OVERFLOWS] += 1
                    counters[K_LISTEN_DROPS] += 1
                    if L.abort_on_overflow:
                        W.client_state[c] = C_DONE
                        client_outcome[c] = CO_RESET
                        client_done[c] = t
                    elif client_data_first[c] and W.client_data_sent[c] < DATA_SEGMENTS:
                        # the client believes it is connected: its data
                        # follows, each segment another cookie check
                        if heap_push(h, t + data_gap(client_rtt[c], W.client_data_sent[c]),
                                     E_ACK_COOKIE, c, -1) != 0:
                            return -1
                        W.client_data_sent[c] += 1
                    else:
                        W.client_state[c] = C_DONE
                        client_outcome[c] = CO_GAVE_UP
                        client_done[c] = t
                    continue
                accept_push(L, t)
                counters[K_PASSIVE_OPENS] += 1
                W.client_state[c] = C_DONE
                client_done[c] = t
                client_outcome[c] = CO_OK_COOKIE
                bump(L, series, t, S_COMPLETED)
            note_occupancy(L, series, t)
            continue

        if t_ring <= t:
            # ---- reqsk_timer_handler() for the oldest request of ring best_ring
            t = t_ring
            k = best_ring
            r = W.rings[k * stride + W.ring_head[k]]
            W.ring_head[k] += 1
            drain(L, t)
            thresh = L.synack_retries
            qlen2 = L.qlen << 1
            if qlen2 > (8 if L.backlog < 8 else L.backlog):
                young2 = L.young << 1
                while thresh > 2:
                    if L.qlen < young2:
                        break
                    thresh -= 1
                    young2 <<= 1
            if W.req_timeouts[r] >= thresh or k + 1 >= n_rings:
                free_request(L, W, r)
                counters[K_EXPIRED] += 1
                c = W.req_owner[r]
                if c >= 0 and W.client_state[c] == C_IN_REQUEST:
                    # the client got a SYN-ACK and believes it is connected;
                    # its next segment meets no socket and is answered by RST
                    W.client_state[c] = C_DONE
                    client_outcome[c] = CO_RESET
                    client_done[c] = t
            else:
                counters[K_SYN_RETRANS] += 1
                if W.req_timeouts[r] == 0:
                    L.young -= 1
                W.req_timeouts[r] += 1
                # reqsk_timeout(): TCP_TIMEOUT_INIT << num_timeout, at most TCP_RTO_MAX
                timeout = 1.0 * (<int64_t>1 << (k + 1)) if k < 8 else TCP_RTO_MAX
                if timeout > TCP_RTO_MAX:
                    timeout = TCP_RTO_MAX
                W.req_next[r] = arm(L, t, timeout)
                W.rings[(k + 1) * stride + W.ring_tail[k + 1]] = r
                W.ring_tail[k + 1] += 1
                c = W.req_owner[r]
                if c >= 0 and W.client_state[c] == C_IN_REQUEST:
                    client_synack_rtx[c] += 1
                    if heap_push(h, t + client_rtt[c], E_ACK_REQUEST, c, r) != 0:
                        return -1
            note_occupancy(L, series, t)
            continue

        # ---- a SYN
        c = syn_client[i]
        drain(L, t)
        if c >= 0:
            if W.client_state[c] != C_WAITING or t > client_give_up[c]:
                syn_verdict[i] = SV_NOT_SENT
                i += 1
                continue
            client_attempts[c] += 1
            bump(L, series, t, S_LEGIT_SYNS)
        bump(L, series, t, S_SYNS)
        tw = syn_tw[i] != 0
        want_cookie = False
        v = SV_QUEUED
        if not tw and (L.syncookies == 2 or synq_full(L)):
            if L.syncookies != 0:
                want_cookie = True
                counters[K_REQQ_FULL_DO_COOKIES] += 1
            else:
                counters[K_REQQ_FULL_DROP] += 1
                v = SV_DROP_SYN_QUEUE
        if v == SV_QUEUED and L.acc_len > L.backlog:
            counters[K_LISTEN_OVERFLOWS] += 1
            v = SV_DROP_ACCEPT_QUEUE
        if (v == SV_QUEUED and not want_cookie and not tw and L.syncookies == 0
                and L.max_syn_backlog - L.qlen < (L.max_syn_backlog >> 2)
                and not syn_proven_src[i]):
            v = SV_DROP_UNPROVEN
        if v != SV_QUEUED:
            counters[K_LISTEN_DROPS] += 1
            bump(L, series, t, S_DROPS)
        elif want_cookie:
            v = SV_COOKIE
            counters[K_SYNCOOKIES_SENT] += 1
            bump(L, series, t, S_COOKIES)
            if c >= 0:
                W.client_state[c] = C_COOKIE
                if heap_push(h, t + client_rtt[c], E_ACK_COOKIE, c, -1) != 0:
                    return -1
        else:
            r = <int32_t>n_req
            n_req += 1
            W.req_next[r] = arm(L, t, 1.0)
            W.req_owner[r] = c
            W.req_timeouts[r] = 0
            W.req_alive[r] = 1
            L.qlen += 1
            L.young += 1
            W.rings[W.ring_tail[0]] = r
            W.ring_tail[0] += 1
            if c >= 0:
                W.client_state[c] = C_IN_REQUEST
                if heap_push(h, t + client_rtt[c], E_ACK_REQUEST, c, r) != 0:
                    return -1
            elif syn_rst_delay[i] >= 0:
                if heap_push(h, t + syn_rst_delay[i], E_RST_REQUEST, -1, r) != 0:
                    return -1
        syn_verdict[i] = v
        note_occupancy(L, series, t)
        i += 1

    for c in range(n_client):
        if W.client_state[c] == C_WAITING and client_attempts[c] > 0 and not stopped:
            client_outcome[c] = CO_GAVE_UP
    while i < n_syn:
        syn_verdict[i] = SV_NOT_SENT
        i += 1
    return 0
