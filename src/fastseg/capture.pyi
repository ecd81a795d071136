from os import PathLike
from typing import IO, Any, Iterator, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

CAPLEN_MAX: int
BLOCK_MAX: int
INTERFACES_MAX: int
STDIN: str

class PacketBatch:
    data: npt.NDArray[np.uint8]
    offset: npt.NDArray[np.int64]
    caplen: npt.NDArray[np.uint32]
    wirelen: npt.NDArray[np.uint32]
    ts_ns: npt.NDArray[np.int64]
    linktype: npt.NDArray[np.uint16]
    record_offset: npt.NDArray[np.int64]
    first_frame: int
    def __init__(
        self,
        data: npt.NDArray[np.uint8],
        offset: npt.NDArray[np.int64],
        caplen: npt.NDArray[np.uint32],
        wirelen: npt.NDArray[np.uint32],
        ts_ns: npt.NDArray[np.int64],
        linktype: npt.NDArray[np.uint16],
        record_offset: npt.NDArray[np.int64],
        first_frame: int = ...,
    ) -> None: ...
    def __len__(self) -> int: ...
    def packet(self, i: int) -> bytes: ...
    @property
    def frame(self) -> npt.NDArray[np.int64]: ...

class ByteRange(NamedTuple):
    start: int
    stop: int
    first_frame: int
    packets: int
    ts_first: Optional[int]
    ts_last: Optional[int]
    header_blocks: Tuple[int, ...] = ...
    section: int = ...

class CaptureReader:
    path: str
    format: Optional[str]
    compression: Optional[str]
    interfaces: list[dict[str, Any]]
    bytes_read: int
    packets_read: int
    size: Optional[int]
    @property
    def raw_bytes_read(self) -> int: ...
    def __init__(
        self,
        path: Union[str, bytes, PathLike[str], IO[bytes]],
        *,
        batch_packets: int = ...,
        batch_bytes: int = ...,
        use_mmap: bool = ...,
        byte_range: Optional[ByteRange] = ...,
    ) -> None: ...
    def __iter__(self) -> Iterator[PacketBatch]: ...
    def close(self) -> None: ...
    def __enter__(self) -> "CaptureReader": ...
    def __exit__(self, *exc: object) -> None: ...

def open_capture(
    path: Union[str, bytes, PathLike[str], IO[bytes]],
    *,
    batch_packets: int = 262144,
    batch_bytes: int = 67108864,
    use_mmap: bool = True,
    byte_range: Optional[ByteRange] = None,
) -> CaptureReader: ...

def index_capture(
    path: Union[str, bytes, PathLike[str]],
    target_bytes: int = 134217728,
    *,
    batch_packets: int = 65536,
    batch_bytes: int = 67108864,
) -> Optional[List[ByteRange]]: ...
