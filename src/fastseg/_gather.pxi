# Column gathering: finished records written, one row each, into the numpy
# columns take_done hands out (struct of arrays).  Included by _track.pyx.

# Where row 0 of each column starts; a row of an (n, 2) column is 2 values,
# of an address column 16 bytes, of the history HIST_MAX bytes.
cdef struct ConnColumns:
    int64_t* conn
    uint64_t* flow_key
    uint8_t* orig_h
    uint8_t* resp_h
    uint16_t* orig_p
    uint16_t* resp_p
    uint8_t* ip_version
    int64_t* first_ts
    int64_t* last_ts
    int64_t* syn_ts
    int64_t* synack_ts
    int64_t* ack_ts
    int64_t* hs_last_syn
    int64_t* hs_last_synack
    int64_t* pkts
    int64_t* nbytes
    uint8_t* zstate
    uint8_t* rfc
    int64_t* isn
    int32_t* mss
    int16_t* wscale
    uint8_t* opts
    int64_t* syn_count
    int64_t* synack_count
    int64_t* tfo_data
    int8_t* closer
    uint8_t* close
    char* history
    int64_t* missed_bytes
    int64_t* last_seen
    int64_t* first_fin


cdef dict conn_columns(Py_ssize_t n, ConnColumns* out):
    # Empty columns for n rows (the history zeroed: shorter ones stay
    # NUL-padded) and their row-0 pointers.
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
    out.conn = <int64_t*>cnp.PyArray_DATA(cols["_conn"])
    out.flow_key = <uint64_t*>cnp.PyArray_DATA(cols["flow_key"])
    out.orig_h = <uint8_t*>cnp.PyArray_DATA(cols["orig_h"])
    out.resp_h = <uint8_t*>cnp.PyArray_DATA(cols["resp_h"])
    out.orig_p = <uint16_t*>cnp.PyArray_DATA(cols["orig_p"])
    out.resp_p = <uint16_t*>cnp.PyArray_DATA(cols["resp_p"])
    out.ip_version = <uint8_t*>cnp.PyArray_DATA(cols["ip_version"])
    out.first_ts = <int64_t*>cnp.PyArray_DATA(cols["first_ts"])
    out.last_ts = <int64_t*>cnp.PyArray_DATA(cols["last_ts"])
    out.syn_ts = <int64_t*>cnp.PyArray_DATA(cols["syn_ts"])
    out.synack_ts = <int64_t*>cnp.PyArray_DATA(cols["synack_ts"])
    out.ack_ts = <int64_t*>cnp.PyArray_DATA(cols["ack_ts"])
    out.hs_last_syn = <int64_t*>cnp.PyArray_DATA(cols["hs_last_syn"])
    out.hs_last_synack = <int64_t*>cnp.PyArray_DATA(cols["hs_last_synack"])
    out.pkts = <int64_t*>cnp.PyArray_DATA(cols["pkts"])
    out.nbytes = <int64_t*>cnp.PyArray_DATA(cols["bytes"])
    out.zstate = <uint8_t*>cnp.PyArray_DATA(cols["zstate"])
    out.rfc = <uint8_t*>cnp.PyArray_DATA(cols["rfc"])
    out.isn = <int64_t*>cnp.PyArray_DATA(cols["isn"])
    out.mss = <int32_t*>cnp.PyArray_DATA(cols["mss"])
    out.wscale = <int16_t*>cnp.PyArray_DATA(cols["wscale"])
    out.opts = <uint8_t*>cnp.PyArray_DATA(cols["opts"])
    out.syn_count = <int64_t*>cnp.PyArray_DATA(cols["syn_count"])
    out.synack_count = <int64_t*>cnp.PyArray_DATA(cols["synack_count"])
    out.tfo_data = <int64_t*>cnp.PyArray_DATA(cols["tfo_data"])
    out.closer = <int8_t*>cnp.PyArray_DATA(cols["closer"])
    out.close = <uint8_t*>cnp.PyArray_DATA(cols["close"])
    out.history = <char*>cnp.PyArray_DATA(cols["history"])
    out.missed_bytes = <int64_t*>cnp.PyArray_DATA(cols["missed_bytes"])
    out.last_seen = <int64_t*>cnp.PyArray_DATA(cols["last_seen"])
    out.first_fin = <int64_t*>cnp.PyArray_DATA(cols["first_fin"])
    return cols


cdef inline void gather_conn(Conn* c, const ConnColumns* out, Py_ssize_t k) noexcept nogil:
    cdef int j
    out.conn[k] = c.id
    out.flow_key[k] = c.flow_key
    memcpy(out.orig_h + 16 * k, c.addr[0], 16)
    memcpy(out.resp_h + 16 * k, c.addr[1], 16)
    out.orig_p[k] = c.port[0]
    out.resp_p[k] = c.port[1]
    out.ip_version[k] = c.ip_version
    out.first_ts[k] = c.first_ts
    out.last_ts[k] = c.last_ts
    out.syn_ts[k] = c.syn_ts
    out.synack_ts[k] = c.synack_ts
    out.ack_ts[k] = c.ack_ts
    out.hs_last_syn[k] = c.hs_synack_last_syn
    out.hs_last_synack[k] = c.hs_ack_last_synack
    for j in range(2):
        out.pkts[2 * k + j] = c.ep[j].pkts
        out.nbytes[2 * k + j] = endp_size(&c.ep[j], &c.ep[1 - j])
        out.zstate[2 * k + j] = c.ep[j].state
        out.rfc[2 * k + j] = c.ep[j].rfc
        out.isn[2 * k + j] = c.ep[j].isn if c.ep[j].syn_seen else -1
        out.mss[2 * k + j] = c.ep[j].mss
        out.wscale[2 * k + j] = c.ep[j].wscale
        out.opts[2 * k + j] = c.ep[j].opts | (16 if c.ep[j].syn_seen else 0)
        out.last_seen[2 * k + j] = c.ep[j].last_seen_ts
        out.first_fin[2 * k + j] = c.ep[j].first_fin_ts
    out.syn_count[k] = c.syn_count
    out.synack_count[k] = c.synack_count
    out.tfo_data[k] = c.tfo_data
    out.closer[k] = c.closer
    out.close[k] = c.close_kind
    out.missed_bytes[k] = c.missed_bytes
    memcpy(out.history + k * HIST_MAX, c.history, c.hist_len)


cdef inline void gather_loss_conn(const Conn* c, LossState* st, int64_t* counts, double* seconds,
                                  double* ttfb, Py_ssize_t n, Py_ssize_t k) noexcept nogil:
    # Row k of the loss columns: counters (2, LC_N, n) and seconds
    # (2, LS_N, n), the originator first, so that each named column is one
    # contiguous row.  The state is then freed and made ready for the
    # slot's next connection while it is in the cache.
    cdef int j, orig
    cdef uint64_t cbuf[2 * LC_N]
    cdef double sbuf[2 * LS_N]
    # the originator's end is the state's side 1 when the first analysed
    # segment came from the responder
    orig = 1 if c.loss_side0 < LOSS_UNSET and (c.flipped ^ c.loss_side0) == 1 else 0
    loss_gather(st, orig, cbuf, sbuf, &ttfb[k])
    loss_free(st)
    loss_init(st)
    for j in range(2 * LC_N):
        counts[j * n + k] = <int64_t>cbuf[j]
    for j in range(2 * LS_N):
        seconds[j * n + k] = sbuf[j]
