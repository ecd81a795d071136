"""Constants shared by every kernel (declared in _consts.pxd, exposed by _consts.pyx)."""
from enum import IntEnum
from typing import Dict, Tuple

class TcpFlag(IntEnum):
    FIN = 1
    SYN = 2
    RST = 4
    PSH = 8
    ACK = 16
    URG = 32
    ECE = 64
    CWR = 128
    NS = 256

class Outcome(IntEnum):
    OUT_TCP = 0
    OUT_NOT_IP = 1
    OUT_NOT_TCP = 2
    OUT_LATER_FRAGMENT = 3
    OUT_FRAGMENT_NO_TCP_HDR = 4
    NON_TCP_LAST = 4
    OUT_TRUNCATED = 5
    OUT_BAD_LINK_HEADER = 6
    OUT_UNSUPPORTED_LINKTYPE = 7
    OUT_BAD_IP_VERSION = 8
    OUT_BAD_IP_HEADER = 9
    OUT_BAD_IP_LENGTH = 10
    OUT_BAD_TCP_OFFSET = 11
    OUT_BAD_TUNNEL = 12
    OUT_EMPTY = 13
    N_OUTCOMES = 14

class ChecksumStatus(IntEnum):
    CSUM_OK = 0
    CSUM_BAD = 1
    CSUM_UNVERIFIED = 2
    CSUM_NOT_APPLICABLE = 3

class LinkType(IntEnum):
    LINKTYPE_NULL = 0
    LINKTYPE_ETHERNET = 1
    LINKTYPE_PPP = 9
    LINKTYPE_FDDI = 10
    LINKTYPE_RAW_OLD = 12
    LINKTYPE_RAW_OLD2 = 14
    LINKTYPE_PPP_HDLC = 50
    LINKTYPE_PPP_ETHER = 51
    LINKTYPE_RAW = 101
    LINKTYPE_LOOP = 108
    LINKTYPE_C_HDLC = 104
    LINKTYPE_LINUX_SLL = 113
    LINKTYPE_IPV4 = 228
    LINKTYPE_IPV6 = 229
    LINKTYPE_NFLOG = 239
    LINKTYPE_LINUX_SLL2 = 276

class Absent(IntEnum):
    MSS_ABSENT = -1
    WSCALE_ABSENT = -1
    TS_ABSENT = -1
    TFO_ABSENT = -1
    IP_ID_ABSENT = -1

class SynCookie(IntEnum):
    COOKIEBITS = 24
    COOKIEMASK = 16777215
    COUNTMASK = 255
    MAX_SYNCOOKIE_AGE = 2
    N_COOKIE_MSS = 4

class ZeekState(IntEnum):
    Z_INACTIVE = 0
    Z_SYN_SENT = 1
    Z_SYN_ACK_SENT = 2
    Z_PARTIAL = 3
    Z_ESTABLISHED = 4
    Z_CLOSED = 5
    Z_RESET = 6

class OptStatus(IntEnum):
    OPTS_OK = 0
    OPTS_CUT = 1
    OPTS_BAD = 2

class OptOther(IntEnum):
    OPT_MPTCP = 1
    OPT_MD5 = 2
    OPT_AO = 4
    OPT_UTO = 8
    OPT_UNKNOWN = 128

class TunnelKind(IntEnum):
    TUN_NONE = 0
    TUN_IP = 1
    TUN_GRE = 2
    TUN_VXLAN = 3
    TUN_GENEVE = 4
    TUN_TEREDO = 5
    TUN_GTPV1 = 6
    TUN_AYIYA = 7

class EncapBit(IntEnum):
    ENC_VLAN = 1
    ENC_MPLS = 2
    ENC_PPPOE = 4
    ENC_FABRICPATH = 8
    ENC_PBB = 16
    ENC_LLC_SNAP = 32
    ENC_NFLOG = 64
    ENC_PPP = 128
    ENC_MPLS_PW = 256
    ENC_IPIP = 512
    ENC_GRE = 1024
    ENC_TEB = 2048
    ENC_ERSPAN = 4096
    ENC_VXLAN = 8192
    ENC_GENEVE = 16384
    ENC_TEREDO = 32768
    ENC_GTPV1 = 65536
    ENC_AYIYA = 131072

class SynVerdict(IntEnum):
    SV_NOT_SENT = 0
    SV_QUEUED = 1
    SV_COOKIE = 2
    SV_DROP_SYN_QUEUE = 3
    SV_DROP_ACCEPT_QUEUE = 4
    SV_DROP_UNPROVEN = 5

class ClientOutcome(IntEnum):
    CO_PENDING = 0
    CO_OK_QUEUE = 1
    CO_OK_COOKIE = 2
    CO_OK_AFTER_RETRIES = 3
    CO_GAVE_UP = 4
    CO_RESET = 5


FIN: int
SYN: int
RST: int
PSH: int
ACK: int
URG: int
ECE: int
CWR: int
NS: int
OUT_TCP: int
OUT_NOT_IP: int
OUT_NOT_TCP: int
OUT_LATER_FRAGMENT: int
OUT_FRAGMENT_NO_TCP_HDR: int
NON_TCP_LAST: int
OUT_TRUNCATED: int
OUT_BAD_LINK_HEADER: int
OUT_UNSUPPORTED_LINKTYPE: int
OUT_BAD_IP_VERSION: int
OUT_BAD_IP_HEADER: int
OUT_BAD_IP_LENGTH: int
OUT_BAD_TCP_OFFSET: int
OUT_BAD_TUNNEL: int
OUT_EMPTY: int
N_OUTCOMES: int
CSUM_OK: int
CSUM_BAD: int
CSUM_UNVERIFIED: int
CSUM_NOT_APPLICABLE: int
LINKTYPE_NULL: int
LINKTYPE_ETHERNET: int
LINKTYPE_PPP: int
LINKTYPE_FDDI: int
LINKTYPE_RAW_OLD: int
LINKTYPE_RAW_OLD2: int
LINKTYPE_PPP_HDLC: int
LINKTYPE_PPP_ETHER: int
LINKTYPE_RAW: int
LINKTYPE_LOOP: int
LINKTYPE_C_HDLC: int
LINKTYPE_LINUX_SLL: int
LINKTYPE_IPV4: int
LINKTYPE_IPV6: int
LINKTYPE_NFLOG: int
LINKTYPE_LINUX_SLL2: int
MSS_ABSENT: int
WSCALE_ABSENT: int
TS_ABSENT: int
TFO_ABSENT: int
IP_ID_ABSENT: int
COOKIEBITS: int
COOKIEMASK: int
COUNTMASK: int
MAX_SYNCOOKIE_AGE: int
N_COOKIE_MSS: int
Z_INACTIVE: int
Z_SYN_SENT: int
Z_SYN_ACK_SENT: int
Z_PARTIAL: int
Z_ESTABLISHED: int
Z_CLOSED: int
Z_RESET: int
OPTS_OK: int
OPTS_CUT: int
OPTS_BAD: int
OPT_MPTCP: int
OPT_MD5: int
OPT_AO: int
OPT_UTO: int
OPT_UNKNOWN: int
TUN_NONE: int
TUN_IP: int
TUN_GRE: int
TUN_VXLAN: int
TUN_GENEVE: int
TUN_TEREDO: int
TUN_GTPV1: int
TUN_AYIYA: int
ENC_VLAN: int
ENC_MPLS: int
ENC_PPPOE: int
ENC_FABRICPATH: int
ENC_PBB: int
ENC_LLC_SNAP: int
ENC_NFLOG: int
ENC_PPP: int
ENC_MPLS_PW: int
ENC_IPIP: int
ENC_GRE: int
ENC_TEB: int
ENC_ERSPAN: int
ENC_VXLAN: int
ENC_GENEVE: int
ENC_TEREDO: int
ENC_GTPV1: int
ENC_AYIYA: int

SV_NOT_SENT: int
SV_QUEUED: int
SV_COOKIE: int
SV_DROP_SYN_QUEUE: int
SV_DROP_ACCEPT_QUEUE: int
SV_DROP_UNPROVEN: int
CO_PENDING: int
CO_OK_QUEUE: int
CO_OK_COOKIE: int
CO_OK_AFTER_RETRIES: int
CO_GAVE_UP: int
CO_RESET: int

OUTCOME_NAMES: Dict[int, str]
CHECKSUM_STATUS_NAMES: Tuple[str, ...]
FLAG_BITS: Tuple[Tuple[int, str], ...]
OPT_STATUS_NAMES: Tuple[str, ...]
TUNNEL_NAMES: Tuple[str, ...]
ENCAP_BITS: Tuple[Tuple[int, str], ...]
OPT_OTHER_BITS: Tuple[Tuple[int, str], ...]
ZEEK_STATE_NAMES: Tuple[str, ...]
SYN_VERDICT_NAMES: Tuple[str, ...]
CLIENT_OUTCOME_NAMES: Tuple[str, ...]
COOKIE_MSS_V4: Tuple[int, int, int, int]
COOKIE_MSS_V6: Tuple[int, int, int, int]
TCP_ATTEMPT_DELAY_NS: int
TCP_CLOSE_DELAY_NS: int
TCP_INACTIVITY_TIMEOUT_NS: int
NS_PER_US: int
NS_PER_MS: int
NS_PER_SEC: int
LINKTYPE_NAMES: Dict[int, str]

def linktype_name(linktype: int) -> str: ...
