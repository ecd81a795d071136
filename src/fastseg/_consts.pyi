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
    OUT_TCP_OPTIONS_OVERRUN = 12
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
    LINKTYPE_RAW_OLD = 12
    LINKTYPE_RAW_OLD2 = 14
    LINKTYPE_RAW = 101
    LINKTYPE_LOOP = 108
    LINKTYPE_LINUX_SLL = 113
    LINKTYPE_IPV4 = 228
    LINKTYPE_IPV6 = 229
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
OUT_TCP_OPTIONS_OVERRUN: int
OUT_EMPTY: int
N_OUTCOMES: int
CSUM_OK: int
CSUM_BAD: int
CSUM_UNVERIFIED: int
CSUM_NOT_APPLICABLE: int
LINKTYPE_NULL: int
LINKTYPE_ETHERNET: int
LINKTYPE_RAW_OLD: int
LINKTYPE_RAW_OLD2: int
LINKTYPE_RAW: int
LINKTYPE_LOOP: int
LINKTYPE_LINUX_SLL: int
LINKTYPE_IPV4: int
LINKTYPE_IPV6: int
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
