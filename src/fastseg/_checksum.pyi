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
def unfilled_from_columns(
    src: npt.NDArray[np.uint8],
    dst: npt.NDArray[np.uint8],
    ip_version: npt.NDArray[np.uint8],
    hdr_len: npt.NDArray[np.uint8],
    payload_len: npt.NDArray[np.uint32],
    checksum: npt.NDArray[np.uint16],
    status: npt.NDArray[np.uint8],
    out: npt.NDArray[np.uint8],
) -> None: ...

class SenderTally:
    ok: int
    bad: int
    untrusted: bool
    def add(self, src: npt.NDArray[np.uint8], ip_version: npt.NDArray[np.uint8],
            status: npt.NDArray[np.uint8], unfilled: npt.NDArray[np.uint8]) -> None: ...
    def force(self, hosts: npt.NDArray[np.uint8]) -> None: ...
    def decide(self, min_segments: int, min_share: float, untrusted_min: int,
               untrusted_share: float) -> int: ...
    def drop_mask(self, src: npt.NDArray[np.uint8], status: npt.NDArray[np.uint8],
                  excuse_offload: bool, out: npt.NDArray[np.uint8]) -> None: ...
    def merge(self, other: "SenderTally") -> None: ...
    def restore(self, addr: npt.NDArray[np.uint8], version: npt.NDArray[np.uint8],
                bad: npt.NDArray[np.int64], unfilled: npt.NDArray[np.int64],
                offloading: npt.NDArray[np.bool_], forced: npt.NDArray[np.bool_]) -> None: ...
    def senders(self) -> Tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.int64],
                               npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]: ...
