"""Types of the loss-analysis kernel (internal; use fastseg.loss)."""
import numpy as np

def record_size() -> int: ...
def sack_block_bytes(data: np.ndarray, l3_off: np.ndarray, l3_caplen: np.ndarray,
                     l4_off: np.ndarray, hdr_len: np.ndarray, out: np.ndarray) -> int: ...
def analyze(conn: np.ndarray, side: np.ndarray, ts_ns: np.ndarray, seq: np.ndarray,
            ack: np.ndarray, flags: np.ndarray, payload_len: np.ndarray, window: np.ndarray,
            wscale: np.ndarray, sack_bytes: np.ndarray, n_conns: int,
            analysis: np.ndarray, ack_rtt: np.ndarray, bytes_in_flight: np.ndarray,
            dup_ack_num: np.ndarray, counts: np.ndarray, seconds: np.ndarray,
            ttfb: np.ndarray) -> int: ...
