# Loss, retransmission and stall analysis of one connection, segment by
# segment, as Wireshark's tcp_analyze_sequence_number does it
# (epan/dissectors/packet-tcp.c, 4.0): one LossState per connection (about
# 700 bytes, plus 24 per unacknowledged segment beyond four) holds both
# endpoints, what every segment touches first.  The functions over it are in
# _loss_kernel.pxi, which each user includes.
from libc.stdint cimport int8_t, int16_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef enum:
    # Most unacknowledged segments kept per endpoint (Wireshark keeps up to
    # 10000 in a list).  The ring starts inside the state (LOSS_INLINE
    # entries) and moves to the heap, doubling on demand;
    # when it is full its two oldest entries are merged (bytes in flight
    # stay exact, the RTT of an ACK that ends exactly at the merged
    # boundary is lost).
    LOSS_RING = 512
    LOSS_INLINE = 4            # entries held inside the state before the heap

# Per-side counters written by loss_gather, in this order; the flag counters
# come first (LossStats.count holds those before LC_RTT_SAMPLES).
cdef enum:  # LossCount
    LC_RETRANS_PKTS = 0
    LC_RETRANS_BYTES
    LC_FAST_RETRANS
    LC_SPURIOUS_RETRANS
    LC_OUT_OF_ORDER
    LC_LOST_SEGMENTS
    LC_DUP_ACKS
    LC_ZERO_WINDOWS
    LC_KEEPALIVES
    LC_RTT_SAMPLES
    LC_MAX_IN_FLIGHT
    LC_FIRST_FLIGHT_BYTES
    LC_FIRST_FLIGHT_SEGS
    LC_N

# Per-side seconds written by loss_gather (NaN when there is no sample).
cdef enum:  # LossSeconds
    LS_ZERO_WINDOW_TIME = 0
    LS_RTT_MIN
    LS_RTT_AVG
    LS_RTT_MAX
    LS_N

cdef struct Unacked:
    uint32_t seq
    uint32_t nextseq
    int64_t ts
    uint8_t data               # carries payload (its ACK is an RTT sample)

cdef struct LossSide:
    # What (nearly) every segment reads or writes of one endpoint, packed so
    # that both endpoints share three cache lines: Wireshark's tcp_flow_t /
    # tcp_analyze_seq_info for this endpoint's data, and the summary fields
    # every data segment touches.
    uint32_t base_seq
    uint32_t nextseq           # 0 = unknown, as in Wireshark
    uint32_t maxseqtobeacked
    uint32_t lastack           # last ack number this endpoint sent
    uint32_t window            # last window it advertised, scaled
    uint32_t dupacknum
    uint32_t sack_bytes        # bytes in the blocks Wireshark keeps of it
    uint32_t data_base         # first data sequence number (SYN + 1)
    uint32_t max_in_flight     # bytes in flight are below 2**31
    uint16_t lastsegmentflags  # analysis flags of its previous segment
    uint16_t n_unacked
    uint16_t ring_cap
    int8_t win_scale           # -1 unknown, -2 not used, else the shift
    uint8_t base_seq_set
    uint8_t valid_bif
    uint8_t has_sack           # its last segment carried a SACK block
    uint8_t data_base_set
    uint8_t first_flight_open
    int64_t nextseq_ts
    int64_t lastack_ts
    int64_t last_ts
    int64_t first_data_ts      # -1 until this side sends data
    int64_t zero_window_since  # -1 when the window is open
    Unacked* ring              # unacknowledged segments, oldest first, on the heap;
                               # NULL while LossState.inline_ring holds them

cdef struct LossStats:
    # per-connection summary of one endpoint beyond LossSide's: first what
    # ACKs of its data and its first flight touch, then what its flagged
    # segments count
    double rtt_sum
    double rtt_min
    double rtt_max
    uint64_t rtt_samples
    uint64_t first_flight_bytes
    uint64_t first_flight_segs
    int64_t zero_window_ns
    uint64_t count[LC_RTT_SAMPLES]   # the flag counters (LossCount up to
                                     # LC_KEEPALIVES); the others are the fields
                                     # above and LossSide.max_in_flight

cdef struct LossState:
    LossSide side[2]
    int64_t syn_ts             # most recent SYN (Wireshark's ts_mru_syn); -1 none
    int64_t irtt_ns            # first SYN-to-ACK time (ts_first_rtt); 0 unknown
    Unacked inline_ring[2 * LOSS_INLINE]   # side s: [s * LOSS_INLINE, (s + 1) * LOSS_INLINE)
    LossStats stats[2]

cdef struct LossOut:
    uint32_t analysis          # AnalysisFlag bits
    double ack_rtt             # seconds; NaN when this segment acks no segment
    int64_t bytes_in_flight    # -1 when not computed
    uint32_t dup_ack_num       # 0 unless a duplicate ACK
