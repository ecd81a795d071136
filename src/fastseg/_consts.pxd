# Constants shared by every kernel: TCP flags, packet outcomes, checksum
# statuses, link types, absent-option sentinels, Zeek's endpoint states and
# timers.  _consts.pyx exposes the same names to Python (with the tables that
# are not integers), _consts.pyi types them; nothing else defines them.

cpdef enum TcpFlag:
    FIN = 0x001
    SYN = 0x002
    RST = 0x004
    PSH = 0x008
    ACK = 0x010
    URG = 0x020
    ECE = 0x040
    CWR = 0x080
    NS = 0x100

# What became of one captured packet.  0 is a TCP segment; 1..NON_TCP_LAST are
# well-formed packets that are not TCP segments; the rest are malformed.
# packets == tcp + non_tcp + malformed always holds.
cpdef enum Outcome:
    OUT_TCP = 0
    # non-TCP
    OUT_NOT_IP = 1              # ethertype / family / SLL protocol that is not IPv4/IPv6 (ARP, LLDP, ...)
    OUT_NOT_TCP = 2             # IP carrying another protocol (UDP, ICMP, ...)
    OUT_LATER_FRAGMENT = 3      # IP fragment with offset > 0 (not reassembled)
    OUT_FRAGMENT_NO_TCP_HDR = 4 # first fragment too short to hold the whole TCP header
    NON_TCP_LAST = 4
    # malformed
    OUT_TRUNCATED = 5           # headers cut by the snapshot length
    OUT_BAD_LINK_HEADER = 6     # link-layer header shorter than it must be / bad
    OUT_UNSUPPORTED_LINKTYPE = 7
    OUT_BAD_IP_VERSION = 8      # version nibble disagrees with the link layer
    OUT_BAD_IP_HEADER = 9       # IHL < 5, IPv4 options overrun, IPv6 extension chain overrun
    OUT_BAD_IP_LENGTH = 10      # IP total/payload length inconsistent with the headers
    OUT_BAD_TCP_OFFSET = 11     # TCP data offset < 5 or beyond the IP payload
    OUT_BAD_TUNNEL = 12         # encapsulation header bad (GRE version/routing, Geneve version,
                                # GTP extension chain, nesting deeper than MAX_LAYERS, ...)
    OUT_EMPTY = 13              # zero-length record
    N_OUTCOMES = 14

cpdef enum ChecksumStatus:
    CSUM_OK = 0
    CSUM_BAD = 1
    CSUM_UNVERIFIED = 2         # captured bytes do not cover the segment (snaplen, fragment)
    CSUM_NOT_APPLICABLE = 3     # e.g. the IPv4 header checksum of an IPv6 packet

# libpcap LINKTYPE_* values (pcap header / pcapng IDB).
cpdef enum LinkType:
    LINKTYPE_NULL = 0
    LINKTYPE_ETHERNET = 1
    LINKTYPE_PPP = 9            # PPP, optionally with the HDLC address/control bytes
    LINKTYPE_FDDI = 10          # FDDI: frame control, MACs, then 802.2 LLC/SNAP
    LINKTYPE_RAW_OLD = 12       # DLT_RAW on some BSDs
    LINKTYPE_RAW_OLD2 = 14
    LINKTYPE_PPP_HDLC = 50      # PPP in HDLC-like framing (RFC 1662)
    LINKTYPE_PPP_ETHER = 51     # PPPoE session header, no Ethernet header
    LINKTYPE_RAW = 101
    LINKTYPE_LOOP = 108
    LINKTYPE_C_HDLC = 104       # Cisco HDLC: address, control, ethertype
    LINKTYPE_IEEE802_11 = 105   # 802.11 frames without a radio header
    LINKTYPE_LINUX_SLL = 113
    LINKTYPE_IPV4 = 228
    LINKTYPE_IPV6 = 229
    LINKTYPE_NFLOG = 239        # Linux NFLOG: family, version, resource id, TLVs
    LINKTYPE_LINUX_SLL2 = 276

# How the options of a segment were read (the `opt_status` column).
cpdef enum OptStatus:
    OPTS_OK = 0
    OPTS_CUT = 1                # the snapshot length cut the options: decoded as far as captured
    OPTS_BAD = 2                # an option length below 2, past the header, or wrong for its kind

# Options decoded that have no column of their own (bits of `opt_other`);
# MSS, window scale, SACK, timestamps and TFO show in their columns.
cpdef enum OptOther:
    OPT_MPTCP = 0x01
    OPT_MD5 = 0x02
    OPT_AO = 0x04
    OPT_UTO = 0x08
    OPT_UNKNOWN = 0x80          # any other kind (experimental, obsolete, unassigned)

# Kind of the outermost IP-level tunnel a segment came through (`tunnel`);
# Zeek's Tunnel::Type names.  Link-level carriers (VLAN, MPLS, PPPoE, ...)
# are not tunnels: they show in `encap` only.
cpdef enum TunnelKind:
    TUN_NONE = 0
    TUN_IP = 1                  # IP-in-IP: 4in4, 6in4, 4in6, 6in6
    TUN_GRE = 2                 # GRE (also over UDP 4754), incl. ERSPAN and TEB
    TUN_VXLAN = 3
    TUN_GENEVE = 4
    TUN_TEREDO = 5
    TUN_GTPV1 = 6
    TUN_AYIYA = 7

# Every layer a segment crossed (bits of the `encap` column).
cpdef enum EncapBit:
    ENC_VLAN = 0x00001
    ENC_MPLS = 0x00002
    ENC_PPPOE = 0x00004
    ENC_FABRICPATH = 0x00008
    ENC_PBB = 0x00010
    ENC_LLC_SNAP = 0x00020
    ENC_NFLOG = 0x00040
    ENC_PPP = 0x00080
    ENC_MPLS_PW = 0x00100       # Ethernet pseudowire (control word) under MPLS
    ENC_IPIP = 0x00200
    ENC_GRE = 0x00400
    ENC_TEB = 0x00800           # Ethernet inside GRE (transparent Ethernet bridging)
    ENC_ERSPAN = 0x01000
    ENC_VXLAN = 0x02000
    ENC_GENEVE = 0x04000
    ENC_TEREDO = 0x08000
    ENC_GTPV1 = 0x10000
    ENC_AYIYA = 0x20000
    ENC_IEEE80211 = 0x40000     # 802.11 data frame (link type 105, or Aruba's GRE)

# The value a column holds when its option or field was absent from a segment
# (null in pandas, Arrow, JSON and CSV output).
cpdef enum Absent:
    MSS_ABSENT = -1
    WSCALE_ABSENT = -1
    TS_ABSENT = -1
    TFO_ABSENT = -1
    IP_ID_ABSENT = -1

# Linux SYN cookies (include/net/tcp.h, net/ipv4/syncookies.c): an 8-bit
# minute counter above a 24-bit hash, an index into a 4-entry MSS table
# (COOKIE_MSS_V4 / COOKIE_MSS_V6 in _consts.pyx).
cpdef enum SynCookie:
    COOKIEBITS = 24
    COOKIEMASK = 0xFFFFFF
    COUNTMASK = 0xFF            # (u32)-1 >> COOKIEBITS
    MAX_SYNCOOKIE_AGE = 2
    N_COOKIE_MSS = 4

# Zeek's endpoint states (TCP_Endpoint.h), in Zeek's order.
cpdef enum ZeekState:
    Z_INACTIVE = 0
    Z_SYN_SENT = 1
    Z_SYN_ACK_SENT = 2
    Z_PARTIAL = 3
    Z_ESTABLISHED = 4
    Z_CLOSED = 5
    Z_RESET = 6

# fastseg.whatif: what the listen-queue model did with a SYN, and what became
# of a legitimate client.
cpdef enum SynVerdict:
    SV_NOT_SENT = 0             # a legitimate client's attempt it never had to make
    SV_QUEUED = 1               # a request socket was made, SYN-ACK sent
    SV_COOKIE = 2               # answered with a SYN cookie, no state kept
    SV_DROP_SYN_QUEUE = 3       # SYN queue full, syncookies off
    SV_DROP_ACCEPT_QUEUE = 4    # accept queue full
    SV_DROP_UNPROVEN = 5        # last quarter of tcp_max_syn_backlog, peer unproven

cpdef enum ClientOutcome:
    CO_PENDING = 0              # the replay stopped (until) before it was decided
    CO_OK_QUEUE = 1             # served through the SYN queue at the first try
    CO_OK_COOKIE = 2            # served through a SYN cookie
    CO_OK_AFTER_RETRIES = 3     # served after SYN retries or SYN-ACK retransmissions
    CO_GAVE_UP = 4              # ran out of SYN retries (or its data went unheard)
    CO_RESET = 5                # its connection was reset (request expired, abort_on_overflow)

# tcp.analysis flags of one segment, named as Wireshark's fields
# (epan/dissectors/packet-tcp.c); fastseg.ANALYSIS_FLAGS maps name -> bit.
cpdef enum AnalysisFlag:
    A_RETRANSMISSION = 0x0001
    A_FAST_RETRANSMISSION = 0x0002
    A_SPURIOUS_RETRANSMISSION = 0x0004
    A_OUT_OF_ORDER = 0x0008
    A_LOST_SEGMENT = 0x0010
    A_ACK_LOST_SEGMENT = 0x0020
    A_DUPLICATE_ACK = 0x0040
    A_ZERO_WINDOW = 0x0080
    A_ZERO_WINDOW_PROBE = 0x0100
    A_ZERO_WINDOW_PROBE_ACK = 0x0200
    A_WINDOW_FULL = 0x0400
    A_WINDOW_UPDATE = 0x0800
    A_KEEP_ALIVE = 0x1000
    A_KEEP_ALIVE_ACK = 0x2000
