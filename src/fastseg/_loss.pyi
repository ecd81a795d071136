"""Types of the loss-analysis kernel (internal; use fastseg.loss)."""
import numpy as np

def sack_block_bytes(data: np.ndarray, l3_off: np.ndarray, l3_caplen: np.ndarray,
                     l4_off: np.ndarray, hdr_len: np.ndarray, out: np.ndarray) -> int: ...

class Engine:
    live: int
    def __init__(self) -> None: ...
    def memory_bytes(self) -> int: ...
    def process(self, conn: np.ndarray, src_key: np.ndarray, ts_ns: np.ndarray,
                seq: np.ndarray, ack: np.ndarray, flags: np.ndarray, payload_len: np.ndarray,
                window: np.ndarray, wscale: np.ndarray, sack_bytes: np.ndarray,
                analysis: np.ndarray, ack_rtt: np.ndarray, bytes_in_flight: np.ndarray,
                dup_ack_num: np.ndarray) -> int: ...
    def finish(self, conn: np.ndarray, orig_key: np.ndarray, counts: np.ndarray,
               seconds: np.ndarray, ttfb: np.ndarray) -> int: ...
