"""Python view of the constants declared in _consts.pxd."""

# Every enum member is also a plain int at module level (fastseg._consts.SYN).
for _enum in (TcpFlag, Outcome, ChecksumStatus, LinkType, OptStatus, OptOther, TunnelKind,
              EncapBit):
    globals().update({_k: int(_v) for _k, _v in _enum.__members__.items()})
del _enum

# Column sentinels for options that were absent from a segment.
MSS_ABSENT = -1
WSCALE_ABSENT = -1
TS_ABSENT = -1
TFO_ABSENT = -1
IP_ID_ABSENT = -1

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
)

OPT_OTHER_BITS = (
    (OPT_MPTCP, "mptcp"), (OPT_MD5, "md5"), (OPT_AO, "ao"), (OPT_UTO, "uto"),
    (OPT_UNKNOWN, "unknown"),
)
