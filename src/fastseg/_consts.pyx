"""Python view of the constants declared in _consts.pxd."""

# Every enum member is also a plain int at module level (fastseg._consts.SYN).
for _enum in (TcpFlag, Outcome, ChecksumStatus, LinkType, Absent, SynCookie, ZeekState,
              OptStatus, OptOther, TunnelKind, EncapBit, SynVerdict, ClientOutcome,
              AnalysisFlag):
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
    OUT_BAD_TUNNEL: "bad_tunnel_header",
    OUT_EMPTY: "empty_record",
}

CHECKSUM_STATUS_NAMES = ("ok", "bad", "unverified", "n/a")

FLAG_BITS = (
    (FIN, "FIN"), (SYN, "SYN"), (RST, "RST"), (PSH, "PSH"), (ACK, "ACK"),
    (URG, "URG"), (ECE, "ECE"), (CWR, "CWR"), (NS, "NS"),
)

OPT_STATUS_NAMES = ("ok", "cut", "bad")

TUNNEL_NAMES = ("", "ip", "gre", "vxlan", "geneve", "teredo", "gtpv1", "ayiya")

ENCAP_BITS = (
    (ENC_VLAN, "vlan"), (ENC_MPLS, "mpls"), (ENC_PPPOE, "pppoe"), (ENC_FABRICPATH, "fabricpath"),
    (ENC_PBB, "pbb"), (ENC_LLC_SNAP, "llc_snap"), (ENC_NFLOG, "nflog"), (ENC_PPP, "ppp"),
    (ENC_MPLS_PW, "mpls_pw"), (ENC_IPIP, "ipip"), (ENC_GRE, "gre"), (ENC_TEB, "teb"),
    (ENC_ERSPAN, "erspan"), (ENC_VXLAN, "vxlan"), (ENC_GENEVE, "geneve"),
    (ENC_TEREDO, "teredo"), (ENC_GTPV1, "gtpv1"), (ENC_AYIYA, "ayiya"),
    (ENC_IEEE80211, "ieee80211"),
)

OPT_OTHER_BITS = (
    (OPT_MPTCP, "mptcp"), (OPT_MD5, "md5"), (OPT_AO, "ao"), (OPT_UTO, "uto"),
    (OPT_UNKNOWN, "unknown"),
)

# libpcap's LINKTYPE_* names (www.tcpdump.org/linktypes.html), for saying
# which link types a capture holds that are not decoded.
LINKTYPE_NAMES = {
    0: "NULL", 1: "ETHERNET", 3: "AX25", 6: "IEEE802_5", 7: "ARCNET_BSD", 8: "SLIP",
    9: "PPP", 10: "FDDI", 12: "RAW", 14: "RAW", 50: "PPP_HDLC", 51: "PPP_ETHER",
    100: "ATM_RFC1483", 101: "RAW", 104: "C_HDLC", 105: "IEEE802_11", 107: "FRELAY",
    108: "LOOP", 113: "LINUX_SLL", 114: "LTALK", 117: "PFLOG", 119: "IEEE802_11_PRISM",
    122: "IP_OVER_FC", 123: "SUNATM", 127: "IEEE802_11_RADIOTAP", 129: "ARCNET_LINUX",
    138: "APPLE_IP_OVER_IEEE1394", 139: "MTP2_WITH_PHDR", 140: "MTP2", 141: "MTP3",
    142: "SCCP", 143: "DOCSIS", 144: "LINUX_IRDA",
    **{147 + i: f"USER{i}" for i in range(16)},
    163: "IEEE802_11_AVS", 165: "BACNET_MS_TP", 166: "PPP_PPPD", 169: "GPRS_LLC",
    177: "LINUX_LAPD", 187: "BLUETOOTH_HCI_H4", 189: "USB_LINUX", 192: "PPI",
    195: "IEEE802_15_4_WITHFCS", 197: "ERF", 201: "BLUETOOTH_HCI_H4_WITH_PHDR",
    202: "AX25_KISS", 203: "LAPD", 204: "PPP_WITH_DIR", 205: "C_HDLC_WITH_DIR",
    206: "FRELAY_WITH_DIR", 209: "IPMB_LINUX", 215: "IEEE802_15_4_NONASK_PHY",
    220: "USB_LINUX_MMAPPED", 224: "FC_2", 226: "IPNET", 227: "CAN_SOCKETCAN",
    228: "IPV4", 229: "IPV6", 230: "IEEE802_15_4_NOFCS", 231: "DBUS", 239: "NFLOG",
    240: "NETANALYZER", 241: "NETANALYZER_TRANSPARENT", 242: "IPOIB", 243: "MPEG_2_TS",
    247: "INFINIBAND", 248: "SCTP", 249: "USBPCAP", 251: "BLUETOOTH_LE_LL",
    253: "NETLINK", 254: "BLUETOOTH_LINUX_MONITOR", 256: "BLUETOOTH_LE_LL_WITH_PHDR",
    258: "PKTAP", 266: "USB_DARWIN", 270: "LORATAP", 271: "VSOCK", 272: "NORDIC_BLE",
    274: "ETHERNET_MPACKET", 276: "LINUX_SLL2", 279: "EBHSCR", 283: "IEEE802_15_4_TAP",
    288: "USB_2_0", 290: "ETW",
}


def linktype_name(linktype: int) -> str:
    """libpcap's name of a LINKTYPE_* value, or ``UNKNOWN``."""
    return LINKTYPE_NAMES.get(int(linktype), "UNKNOWN")


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

# fastseg.whatif names, indexed by SynVerdict / ClientOutcome
SYN_VERDICT_NAMES = ("not_sent", "queued", "cookie", "drop_syn_queue_full",
                     "drop_accept_queue_full", "drop_unproven_peer")
CLIENT_OUTCOME_NAMES = ("pending", "ok_queue", "ok_cookie", "ok_after_retries", "gave_up", "reset")

# tcp.analysis.<name> -> bit of the Segments ``analysis`` column, in bit order.
ANALYSIS_FLAGS = {_k[2:].lower(): int(_v) for _k, _v in AnalysisFlag.__members__.items()}
