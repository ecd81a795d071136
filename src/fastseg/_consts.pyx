"""Python view of the constants declared in _consts.pxd."""

# Every enum member is also a plain int at module level (fastseg._consts.SYN).
for _enum in (TcpFlag, Outcome, ChecksumStatus, LinkType, Absent, SynCookie, ZeekState):
    globals().update({_k: int(_v) for _k, _v in _enum.__members__.items()})
del _enum

OUTCOME_NAMES = {
    OUT_TCP: "tcp",
    OUT_NOT_IP: "not_ip",
    OUT_NOT_TCP: "not_tcp",
    OUT_LATER_FRAGMENT: "later_fragment",
    OUT_FRAGMENT_NO_TCP_HDR: "fragment_without_tcp_header",
    OUT_TRUNCATED: "truncated",
    OUT_BAD_LINK_HEADER: "bad_link_header",
    OUT_UNSUPPORTED_LINKTYPE: "unsupported_link_type",
    OUT_BAD_IP_VERSION: "bad_ip_version",
    OUT_BAD_IP_HEADER: "bad_ip_header",
    OUT_BAD_IP_LENGTH: "bad_ip_length",
    OUT_BAD_TCP_OFFSET: "bad_tcp_data_offset",
    OUT_TCP_OPTIONS_OVERRUN: "tcp_options_overrun",
    OUT_EMPTY: "empty_record",
}

CHECKSUM_STATUS_NAMES = ("ok", "bad", "unverified", "n/a")

FLAG_BITS = (
    (FIN, "FIN"), (SYN, "SYN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"),
    (URG, "URG"), (ECE, "ECE"), (CWR, "CWR"), (NS, "NS"),
)

ZEEK_STATE_NAMES = ("INACTIVE", "SYN_SENT", "SYN_ACK_SENT", "PARTIAL", "ESTABLISHED", "CLOSED",
                    "RESET")

# The MSS tables of Linux's SYN cookies (net/ipv4/syncookies.c msstab,
# net/ipv6/syncookies.c msstab): a cookie carries an index into one of them.
COOKIE_MSS_V4 = (536, 1300, 1440, 1460)
COOKIE_MSS_V6 = (1220, 1420, 1440, 8940)

# Zeek's TCP timers (init-bare.zeek) in nanoseconds: tcp_attempt_delay removes
# an attempt nobody answered, tcp_close_delay a closed or reset connection,
# tcp_inactivity_timeout an idle one.  The tracker takes them as arguments.
TCP_ATTEMPT_DELAY_NS = 5_000_000_000
TCP_CLOSE_DELAY_NS = 5_000_000_000
TCP_INACTIVITY_TIMEOUT_NS = 300_000_000_000

# Nanoseconds per unit: every timestamp column is int64 nanoseconds.
NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_SEC = 1_000_000_000
