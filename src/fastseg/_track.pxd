# Connection records and the flow table of the tracker.
#
# A record is one C struct per connection (array of structs): every segment
# touches one record at a random place in memory, so keeping its fields
# together costs a few cache lines per segment instead of one miss per column.
# Results leave the tracker as struct-of-arrays numpy columns.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from fastseg._loss cimport LossState

# Longest history string kept; longer histories are cut (a trailing '+' is
# never added: the string is simply truncated).
cdef enum:
    HIST_MAX = 23

cdef enum:
    LOSS_UNSET = 2
    LOSS_ONE_END = 3

# RFC 9293 observer: states, segment kinds, and events (a kind seen by the
# sender, or + N_KINDS by its peer); see fastseg.track.TRANSITIONS.
cdef enum:
    N_RFC_STATES = 11
    N_KINDS = 7
    N_EVENTS = 14

cdef struct Endp:
    uint32_t start_seq
    uint32_t hist_last_syn
    uint32_t hist_last_fin
    uint32_t hist_last_rst
    uint32_t fin_end          # sequence number just past this side's FIN
    uint32_t isn              # sequence number of this side's last SYN
    int64_t last_rel          # highest sequence end sent, relative to start_seq
    int64_t last_seen_ts      # latest segment from this side (bad checksums too), -1 none
    int64_t first_fin_ts      # earliest FIN from this side (bad checksums too), -1 none
    int64_t ack_rel           # highest ack the peer sent for this side's data
    uint32_t pkts
    uint32_t rxmit
    uint32_t zwin
    uint32_t chk
    int32_t mss
    int8_t wscale
    uint8_t state             # _consts.ZeekState
    uint8_t prev_state
    uint8_t rfc               # RFC 9293 state as an observer infers it
    uint8_t did_close
    uint8_t fin_cnt           # saturating
    uint8_t opts              # bit0 SACK-permitted, bit1 timestamps, bit2 ECE, bit3 CWR on the SYN
    uint8_t syn_seen
    uint8_t rfc_open          # has left CLOSED (or seen a RST): CLOSED is then final
    # Zeek's TCP_Reassembler over this side's data, without the bytes
    # (relative sequence numbers, the first data byte is 1):
    int64_t reassem           # last_reassem_seq: everything below it delivered or skipped
    int64_t trim              # trim_seq: highest acknowledgement applied
    int64_t blk_lo            # data buffered above a hole (its hull); blk_hi == 0: none
    int64_t blk_hi
    int64_t fin_rel           # FIN_seq: relative sequence number just past the FIN
    uint32_t gaps             # content gaps (Zeek's gap_cnt)
    uint8_t skip              # skip_deliveries

cdef struct Conn:
    int64_t id
    uint64_t flow_key
    uint8_t addr[2][16]       # [0] originator, [1] responder
    uint16_t port[2]
    int64_t first_ts
    int64_t last_ts
    int64_t attempt_ts
    int64_t syn_ts
    int64_t last_syn_ts
    int64_t synack_ts
    int64_t last_synack_ts
    int64_t ack_ts
    int64_t hs_synack_last_syn   # last SYN before the matching SYN-ACK
    int64_t hs_ack_last_synack   # last SYN-ACK before the completing ACK
    Endp ep[2]
    uint32_t hist_seen
    uint32_t syn_count
    uint32_t synack_count
    uint32_t tfo_data
    uint32_t synack_isn
    int64_t missed_bytes      # bytes in content gaps (conn.log missed_bytes)
    uint8_t ip_version
    uint8_t live              # 0 free slot, 1 in the table, 2 finished and waiting to be emitted
    uint8_t hist_len
    int8_t closer             # -1, 0 orig, 1 resp
    uint8_t close_kind        # 0 none, 1 FIN, 2 RST
    uint8_t attempt_armed
    uint8_t synack_side       # side that sent the matched SYN-ACK (valid when synack_ts >= 0)
    uint8_t flipped
    uint8_t partial           # Zeek's is_partial: did not start with a handshake
    uint8_t seen_resp         # a packet from the responder was seen (first_packet_seen)
    uint8_t long_idle         # established on a port of Zeek's Conn::port_inactivity_timeouts
    # Which end the loss state's side 0 is: the sender of its first analysed
    # segment, as an end "as created" (0: the first segment's sender; the
    # end's side now is that ^ flipped).  LOSS_UNSET before the first
    # analysed segment, LOSS_ONE_END when both ends are the same address and
    # port (a self-connection: one side).
    uint8_t loss_side0
    char history[HIST_MAX]


# The flow table (_flowtable.pxi): the records, the loss states beside them
# (same slot), and an open-addressing index from flow key to slot.
cdef struct FlowTable:
    Conn* recs
    Py_ssize_t cap, nrec
    int32_t* free_slots       # slots of emitted records, reused first
    Py_ssize_t nfree, free_cap
    int32_t* done             # slots of finished records waiting to be emitted
    Py_ssize_t ndone, done_cap
    int32_t* index            # bucket -> slot, -1 empty (linear probing)
    uint64_t mask
    int bits
    Py_ssize_t used
    uint64_t k0, k1           # per-process key of the bucket hash
    Py_ssize_t live           # records in the index
    int64_t next_id           # id of the next new connection
    LossState* lstates        # NULL without the loss analysis
    Py_ssize_t lcap
    bint with_loss

# Zeek's parameters (_zeek.pxi): the connection timers and the ports
# WantConnection takes for servers.
cdef struct ZeekConfig:
    int64_t attempt_ns
    int64_t close_ns
    int64_t idle_ns
    uint8_t likely[65536]

# The RFC 9293 observer's transition table (_rfc.pxi).
cdef struct RfcTable:
    uint8_t next[N_RFC_STATES][N_EVENTS]
