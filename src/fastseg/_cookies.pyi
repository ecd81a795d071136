"""Kernels behind fastseg.syncookies (shapes and dtypes are checked there)."""
from typing import Tuple

import numpy as np
import numpy.typing as npt

def simd_available() -> bool: ...
def simd_enabled() -> bool: ...
def set_simd(enabled: bool) -> bool: ...
def encode(
    secret: Tuple[int, int, int, int],
    v6: bool,
    saddr: npt.NDArray[np.uint8],
    daddr: npt.NDArray[np.uint8],
    sport: npt.NDArray[np.uint16],
    dport: npt.NDArray[np.uint16],
    isn: npt.NDArray[np.uint32],
    mss: npt.NDArray[np.uint16],
    count: npt.NDArray[np.uint32],
    cookie_out: npt.NDArray[np.uint32],
    mss_out: npt.NDArray[np.uint16],
) -> None: ...
def check(
    secret: Tuple[int, int, int, int],
    v6: bool,
    saddr: npt.NDArray[np.uint8],
    daddr: npt.NDArray[np.uint8],
    sport: npt.NDArray[np.uint16],
    dport: npt.NDArray[np.uint16],
    seq: npt.NDArray[np.uint32],
    ack: npt.NDArray[np.uint32],
    count: npt.NDArray[np.uint32],
    mss_out: npt.NDArray[np.uint16],
) -> None: ...
def siphash24_bytes(k0: int, k1: int, data: npt.NDArray[np.uint8]) -> int: ...
def siphash24_rows(
    k0: int, k1: int, rows: npt.NDArray[np.uint8], out: npt.NDArray[np.uint64]
) -> None: ...
