from typing import Optional, Tuple

import numpy as np
import numpy.typing as npt

def internet_checksum(buffer: npt.ArrayLike | bytes | bytearray | memoryview) -> int: ...
def tcp_status(
    data: npt.NDArray[np.uint8],
    l3_off: npt.NDArray[np.int64],
    l4_off: npt.NDArray[np.int64],
    l3_caplen: npt.NDArray[np.uint32],
    ip_version: npt.NDArray[np.uint8],
    hdr_len: npt.NDArray[np.uint8],
    payload_len: npt.NDArray[np.uint32],
    fragment: Optional[npt.NDArray[np.uint8]] = ...,
    want_correct: bool = ...,
    want_offload: bool = ...,
) -> Tuple[npt.NDArray[np.uint8], Optional[npt.NDArray[np.uint16]], Optional[npt.NDArray[np.uint8]]]: ...
def ip_status(
    data: npt.NDArray[np.uint8],
    l3_off: npt.NDArray[np.int64],
    l3_caplen: npt.NDArray[np.uint32],
    ip_version: npt.NDArray[np.uint8],
    want_correct: bool = ...,
) -> Tuple[npt.NDArray[np.uint8], Optional[npt.NDArray[np.uint16]]]: ...
def fix_in_place(
    data: npt.NDArray[np.uint8],
    l3_off: npt.NDArray[np.int64],
    l4_off: npt.NDArray[np.int64],
    l3_caplen: npt.NDArray[np.uint32],
    ip_version: npt.NDArray[np.uint8],
    hdr_len: npt.NDArray[np.uint8],
    payload_len: npt.NDArray[np.uint32],
    fragment: Optional[npt.NDArray[np.uint8]] = ...,
) -> int: ...
