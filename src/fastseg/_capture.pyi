# Record scanners (internal; the face is fastseg.capture).
from enum import IntEnum

import numpy as np
import numpy.typing as npt

class ScanStatus(IntEnum):
    ST_FULL = 0
    ST_END = 1
    ST_PARTIAL = 2
    ST_SHB = 3
    ST_IDB = 4
    ERR_CAPLEN_CAP = 10
    ERR_BLOCK_SHORT = 11
    ERR_BLOCK_ALIGN = 12
    ERR_BLOCK_CAP = 13
    ERR_TRAILER = 14
    ERR_UNKNOWN_IF = 15
    ERR_CAPLEN_BLOCK = 16
    ERR_BLOCK_BODY = 17

CAPLEN_MAX: int
BLOCK_MAX: int
ST_FULL: int
ST_END: int
ST_PARTIAL: int
ST_SHB: int
ST_IDB: int
ERR_CAPLEN_CAP: int
ERR_BLOCK_SHORT: int
ERR_BLOCK_ALIGN: int
ERR_BLOCK_CAP: int
ERR_TRAILER: int
ERR_UNKNOWN_IF: int
ERR_CAPLEN_BLOCK: int
ERR_BLOCK_BODY: int

def scan_pcap(
    buf: npt.NDArray[np.uint8], pos: int, limit_pos: int, big: bool, nanosecond: bool,
    hdr_len: int, linktype: int, data_base: int, file_base: int,
    offset: npt.NDArray[np.int64], caplen: npt.NDArray[np.uint32],
    wirelen: npt.NDArray[np.uint32], ts_ns: npt.NDArray[np.int64],
    linktype_out: npt.NDArray[np.uint16], record_offset: npt.NDArray[np.int64], n: int,
) -> tuple[int, int, int, int]: ...
def scan_pcapng(
    buf: npt.NDArray[np.uint8], pos: int, limit_pos: int, big: bool,
    if_linktype: npt.NDArray[np.uint16], if_snaplen: npt.NDArray[np.uint32],
    if_ts_mul: npt.NDArray[np.uint64], if_ts_div: npt.NDArray[np.uint64],
    if_ts_off_ns: npt.NDArray[np.int64], data_base: int, file_base: int,
    offset: npt.NDArray[np.int64], caplen: npt.NDArray[np.uint32],
    wirelen: npt.NDArray[np.uint32], ts_ns: npt.NDArray[np.int64],
    linktype_out: npt.NDArray[np.uint16], record_offset: npt.NDArray[np.int64], n: int,
) -> tuple[int, int, int, int]: ...
