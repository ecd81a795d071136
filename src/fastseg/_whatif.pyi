"""Kernel behind fastseg.whatif (inputs are prepared and checked there)."""
import numpy as np
import numpy.typing as npt

def replay(
    syn_t: npt.NDArray[np.float64],
    syn_client: npt.NDArray[np.int32],
    syn_tw: npt.NDArray[np.uint8],
    syn_rst_delay: npt.NDArray[np.float64],
    syn_proven_src: npt.NDArray[np.uint8],
    client_rtt: npt.NDArray[np.float64],
    client_data_first: npt.NDArray[np.uint8],
    client_first: npt.NDArray[np.float64],
    client_give_up: npt.NDArray[np.float64],
    backlog: int,
    syncookies: int,
    synack_retries: int,
    max_syn_backlog: int,
    abort_on_overflow: bool,
    full_gt: bool,
    accept_interval: float,
    bin_start: float,
    bin_width: float,
    until: float,
    tick: float,
    phase: float,
    syn_verdict: npt.NDArray[np.uint8],
    client_outcome: npt.NDArray[np.uint8],
    client_done: npt.NDArray[np.float64],
    client_attempts: npt.NDArray[np.int32],
    client_synack_rtx: npt.NDArray[np.int32],
    counters: npt.NDArray[np.int64],
    series: npt.NDArray[np.int32],
) -> int: ...
